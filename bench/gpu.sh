#!/usr/bin/env bash
# GPU figures on a real-size random-weight model (Qwen2.5-1.5B's shape), one run of at most
# 8 minutes (each step has its own time limit; a step that runs over says so and the rest go on):
#
#   bash bench/gpu.sh
#
# Needs a CUDA torch and one GPU. The model's offline tokenizer and the test models come
# from .test-cache/models (built by the tests or bench/speed.py; building them needs
# ../shared). On a machine without network, WHEELS=folder installs the project's missing
# Python packages from wheels first (jsonschema, readability-lxml, lxml_html_clean,
# websockets, pytest-asyncio, pypdf and their dependencies).
#
# Prints, each after the command that measured it: TTFT on a ~4k-token page, tok/s per
# stream with 1, 8 and 32 requests at once (grouped attention, then transformers' SDPA, for
# comparison), cancel during decode and prefill, peak memory (RSS and GPU), and the
# batching equality tests on CUDA (fp32 token for token, bf16 within a tolerance).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODEL=${MODEL_DIR:-/tmp/tiangong-qwen2.5-1.5b-random}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="backend:.${PYTHONPATH:+:$PYTHONPATH}"
status=0

if [ -n "${WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --target /tmp/tiangong-site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/tiangong-site"
fi

step() {  # step SECONDS COMMAND...: print the command, run it under a time limit
  local limit=$1
  shift
  echo
  echo "\$ $*"
  timeout "$limit" "$@"
  local rc=$?
  if [ $rc -eq 124 ]; then echo "(stopped after ${limit} s)"; fi
  if [ $rc -ne 0 ]; then status=1; fi
}

$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')" || exit 1
$PY - <<'EOF' || exit 1
import importlib.util, sys
needed = ["transformers", "aiohttp", "jsonschema", "readability", "lxml_html_clean",
          "websockets", "pytest", "pytest_asyncio", "pypdf", "sentencepiece", "tokenizers"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (install them, or WHEELS=folder)")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

[ -f "$MODEL/config.json" ] || step 120 $PY bench/make_random_model.py "$MODEL"
SPEED=($PY bench/speed.py --model "$MODEL" --device cuda --dtype bfloat16 --reps 3 --max-batch 32)
step 150 "${SPEED[@]}" --only memory ttft streams cancel
step 60 "${SPEED[@]}" --only streams --attention sdpa --streams 8,32
step 120 $PY -m pytest -q -p no:cacheprovider tests/engine/test_attention_paths.py \
  tests/engine/test_engine_batching_cache.py
exit $status
