#!/usr/bin/env bash
# GPU figures on a real-size random-weight model (Qwen2.5-1.5B's shape), one run:
#   bash bench/gpu.sh            (needs a CUDA torch and one GPU; about 5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
MODEL=${MODEL_DIR:-/tmp/tiangong-qwen2.5-1.5b-random}
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
[ -f "$MODEL/config.json" ] || $PY bench/make_random_model.py "$MODEL"
$PY bench/speed.py --model "$MODEL" --device cuda --dtype bfloat16 --reps 3 \
  --only memory followup concurrent cancel websocket long --long-sizes 5000,20000
