#!/usr/bin/env bash
# Install PyTorch into the given Python environment before anything else asks for it:
# the CUDA build where an NVIDIA GPU is present, the CPU build everywhere else (a bare
# `torch` requirement would pull a multi-GB CUDA build onto a machine that cannot use it).
set -euo pipefail
python=${1:?usage: install_torch.sh PYTHON}
version=${TORCH_VERSION:-2.13.0}

if "$python" -c "import torch" 2>/dev/null; then
  echo "torch $("$python" -c 'import torch; print(torch.__version__)') already installed"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "NVIDIA GPU found: installing torch $version with CUDA"
  exec "$python" -m pip install "torch==$version"
fi
# A CPU wheel provided locally (pip's find-links) is preferred; otherwise PyTorch's CPU index.
for dir in ${PIP_FIND_LINKS:-} $("$python" -m pip config get global.find-links 2>/dev/null || true); do
  if compgen -G "$dir/torch-$version*cpu*.whl" >/dev/null || compgen -G "$dir/torch-$version-*.whl" >/dev/null; then
    echo "no GPU: installing torch $version (CPU build from $dir)"
    exec "$python" -m pip install "torch==$version"
  fi
done
echo "no GPU: installing torch $version (CPU build)"
exec "$python" -m pip install "torch==$version" \
  --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
