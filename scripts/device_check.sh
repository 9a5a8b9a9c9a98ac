#!/usr/bin/env bash
# GPU speed table for napari-cnnjpeg, on a machine with CUDA (or the CPU, if none).
#
# Usage: bash scripts/device_check.sh [OUT_DIR]      (from the repository root)
#
# Needs only python3 with torch, numpy, Pillow, safetensors and scikit-image, plus jpeglib
# (`pip download jpeglib --no-deps -d dist/` here, carry `dist`, and there
# `pip install --no-deps dist/jpeglib*.whl`: the wheel is about 22 MiB, the tracked files about 22 MiB)
# for the default model's trellis encoder: the package
# runs from src/ without being installed (no imagecodecs, napari, onnxruntime needed).
# Prints the speed table (docs/benchmarks-speed.md has the same columns) and writes
# OUT_DIR/benchmarks-speed-gpu.{md,json}. Takes about 2 minutes on one GPU.
# Arguments after OUT_DIR go on to bench_speed (the last of a repeated flag wins), and BENCH_TIMEOUT
# (seconds, default 400) bounds it: a dry run on a small CPU, e.g.
#   BENCH_TIMEOUT=1200 bash scripts/device_check.sh /tmp/out --megapixels 1
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-device-check}}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
timeout "${BENCH_TIMEOUT:-400}" python3 -m napari_cnnjpeg.eval.bench_speed --out "$OUT" --name benchmarks-speed-gpu --repeats 3 "${@:2}"
