#!/usr/bin/env bash
# GPU speed table for napari-cnnjpeg, on a machine with CUDA (or the CPU, if none).
#
# Usage: bash scripts/device_check.sh [OUT_DIR]      (from the repository root)
#
# Needs only python3 with torch, numpy, Pillow, safetensors and scikit-image, plus jpeglib
# (pip install --no-deps a carried jpeglib wheel) for the default model's trellis encoder: the package
# runs from src/ without being installed (no imagecodecs, napari, onnxruntime needed).
# Prints the speed table (docs/benchmarks-speed.md has the same columns) and writes
# OUT_DIR/benchmarks-speed-gpu.{md,json}. Takes about 2 minutes on one GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-device-check}}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
timeout 280 python3 -m napari_cnnjpeg.eval.bench_speed --out "$OUT" --name benchmarks-speed-gpu --repeats 3
