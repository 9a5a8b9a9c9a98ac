"""Measure each model's monotone quality range on the held-out training photos (never Kodak).

Usage: python scripts/quality_range.py MODEL_ID ... [--write]

Codes centre crops of the held-out images (the last ``--val-images`` files of the model's
training folder by name; for a 12-bit model, the planes of those TIFFs) at every quality 1-100 and finds the widest range [lo, hi] over which
PSNR and bits per pixel never fall (within ``--tolerance``, stricter than the tests'
0.05 dB) on any crop. Qualities outside it are coded at its nearest end
(``models.ModelInfo.effective_quality``), so a model's quality is monotone from 1 to 100.
``--write`` records the ranges as ``quality_range`` in ``weights/zoo.json``.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np

from napari_cnnjpeg.codec import decode, encode
from napari_cnnjpeg.eval.metrics import bpp, psnr
from napari_cnnjpeg.format.container import write_atomic
from napari_cnnjpeg.nn.models import ModelInfo, load_stages, model_info
from napari_cnnjpeg.training import _center_crop, load_images, split_held_out

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "src" / "napari_cnnjpeg" / "weights" / "zoo.json"


def curves(model: str, crops: list[np.ndarray]) -> np.ndarray:
    """(crops, 100, 2): PSNR and bpp of each crop at qualities 1-100, coded exactly as asked."""
    stages = load_stages(model)  # stages, not the id: no clamping while measuring
    out = np.empty((len(crops), 100, 2))
    for i, crop in enumerate(crops):
        for q in range(1, 101):
            data = encode(crop, quality=q, model=stages)
            out[i, q - 1] = psnr(crop, decode(data, model=stages)), bpp(len(data), crop.shape)
    return out


def monotone_range(values: np.ndarray, tol: float) -> tuple[int, int]:
    """Widest [lo, hi] (qualities) over which no curve falls by more than ``tol`` (bpp: by any amount).

    ``values``: (curves, 100, 2) PSNR and bpp at qualities 1-100. Ties go to the higher range.
    """
    tols = np.array([tol, 0.0])
    values = np.where(np.isposinf(values), 1e3, values)  # a lossless crop (infinite PSNR) counts as the best
    best = (1, 1)
    for lo in range(100):
        drops = np.maximum.accumulate(values[:, lo:], axis=1) - values[:, lo:] > tols
        bad = np.flatnonzero(drops.any(axis=(0, 2)))
        hi = lo + (int(bad[0]) if bad.size else 100 - lo)  # index of the first fall = last good quality
        if hi - lo >= best[1] - best[0] + 1:
            best = (lo + 1, hi)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--data", default=None, help="training folder (default: each model card's)")
    p.add_argument("--val-images", type=int, default=4)
    p.add_argument("--crop", type=int, default=320)
    p.add_argument("--tolerance", type=float, default=0.02, help="dB a PSNR curve may dip")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write", action="store_true", help="record the ranges in weights/zoo.json")
    args = p.parse_args()
    os.chdir(ROOT)
    import torch

    torch.set_num_threads(args.threads)
    ranges = {}
    for model in args.models:
        info = model_info(model)
        folder = args.data or info.card.get("config", {}).get("data", "../shared/data/train")
        images = split_held_out(load_images(folder, info.bits), args.val_images)[1]
        crops = [_center_crop(im, args.crop) for _, im in images]
        print(f"held-out crops ({args.crop} px): {', '.join(n for n, _ in images)}")
        values = curves(model, crops)
        ranges[model] = monotone_range(values, args.tolerance)
        lo, hi = ranges[model]
        print(f"{model}: quality_range {lo}-{hi}; mean PSNR at {lo}: {values[:, lo - 1, 0].mean():.2f} dB, "
              f"at {hi}: {values[:, hi - 1, 0].mean():.2f} dB ({values[:, hi - 1, 1].mean():.2f} bpp), "
              f"at 100 as asked: {values[:, 99, 0].mean():.2f} dB", flush=True)
    if args.write:
        zoo = json.loads(ZOO.read_text())
        for entry in zoo:
            if entry["id"] in ranges:
                entry["quality_range"] = list(ranges[entry["id"]])
        write_atomic(ZOO, (json.dumps(zoo, indent=2) + "\n").encode())
    for model in ranges.keys() - {e["id"] for e in json.loads(ZOO.read_text())}:
        print(f"{model} is built in (models.registry): set its quality_range there to {ranges[model]}"
              if ranges[model] != ModelInfo.quality_range else f"{model}: the full range, nothing to record")


if __name__ == "__main__":
    main()
