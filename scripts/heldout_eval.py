"""Compare training runs on the held-out training photos (never Kodak), to choose what ships.

Usage: python scripts/heldout_eval.py configs/restore-3.json configs/joint-2.json ... [--shipped ID ...]
       [--tables 0.3,0.4 ...]

For each run (its latest checkpoint) and each shipped model id, prints the BD-rate
(PSNR and SSIM) and BD-PSNR against plain JPEG at qualities 10-90, and the BD-PSNR and
SSIM BD-rate of the payload as a stock viewer shows it (decoded with no network), on
the full held-out images of the run's data folder (the last ``val_images`` by name),
averaged over the images. A run's files carry no model id and hash in their metadata
(a shipped model's do: 30 bytes more in format 3, 44 in format 2), so a run reads a little
better on these small photos than the same weights once registered: compare like with like.
"""

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

from napari_cnnjpeg.codec import decode, encode
from napari_cnnjpeg.eval.bd import bd_psnr, bd_rate
from napari_cnnjpeg.eval.metrics import bpp, psnr, ssim
from napari_cnnjpeg.nn.models import ModelStages
from napari_cnnjpeg.training import TrainConfig, Trainer, load_images

ROOT = Path(__file__).resolve().parent.parent
QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def curve(image: np.ndarray, stages: str | ModelStages) -> tuple[list[float], ...]:
    """bpp; PSNR and SSIM of the decoded output; PSNR and SSIM of the payload as a stock viewer shows it."""
    rates, dists, ssims, views, view_ssims = [], [], [], [], []
    for q in QUALITIES:
        data = encode(image, quality=q, model=stages)
        rates.append(bpp(len(data), image.shape))
        out, plain = decode(data, model=stages), decode(data, model="jpeg")
        dists.append(psnr(image, out))
        ssims.append(float(ssim(image, out)))
        views.append(psnr(image, plain))
        view_ssims.append(float(ssim(image, plain)))
    return rates, dists, ssims, views, view_ssims


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*")
    p.add_argument("--shipped", nargs="*", default=[])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tables", nargs="*", default=[], metavar="FLATNESS,CHROMA_SCALE",
                   help="also evaluate each run with these quantisation-table tunings (its networks unchanged)")
    args = p.parse_args()
    os.chdir(ROOT)
    import torch

    candidates = {m: m for m in args.shipped}
    data, n_val = "../shared/data/train", 4
    for path in args.configs:
        cfg = TrainConfig.load(path)
        data, n_val = cfg.data, cfg.val_images
        t = Trainer(cfg, device="cpu")
        for net in t.nets.values():
            net.eval()
        label, stages = f"{Path(path).stem}@{t.step}", t.stages()
        candidates[label] = stages
        for tuning in args.tables:
            flatness, chroma_scale = map(float, tuning.split(","))
            tables = {"flatness": flatness, "chroma_scale": chroma_scale}
            candidates[f"{label} tables {tuning}"] = dataclasses.replace(stages, tables=tables)
    torch.set_num_threads(args.threads)  # after the trainers, which set their own
    images = load_images(data)[-n_val:]
    base = {name: curve(im, "jpeg") for name, im in images}
    print(f"held-out images: {', '.join(n for n, _ in images)}; qualities {QUALITIES[0]}-{QUALITIES[-1]}")
    print("| model | BD-rate (PSNR) | BD-PSNR | BD-rate (SSIM) | stock viewer BD-PSNR | stock viewer BD-rate (SSIM) |\n"
          "|---|---:|---:|---:|---:|---:|")
    for label, stages in candidates.items():
        rows = []
        for name, im in images:
            rate, dist, sim, view, view_sim = curve(im, stages)
            r0, d0, s0 = base[name][:3]
            rows.append((bd_rate(r0, d0, rate, dist), bd_psnr(r0, d0, rate, dist), bd_rate(r0, s0, rate, sim),
                         bd_psnr(r0, d0, rate, view), bd_rate(r0, s0, rate, view_sim)))
        r = np.nanmean(rows, axis=0)
        print(f"| {label} | {r[0]:+.2f} % | {r[1]:+.3f} dB | {r[2]:+.2f} % | {r[3]:+.3f} dB | {r[4]:+.2f} % |",
              flush=True)


if __name__ == "__main__":
    main()
