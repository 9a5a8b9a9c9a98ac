"""Where 8-bit colour payloads should switch to full chroma, on held-out photos (never Kodak).

Usage: python scripts/full_chroma_study.py [MODEL] [--data ../shared/data/train] [--val-images 4]

Codes centre crops (512) of the held-out training photos and scikit-image's colour photographs
at qualities 85-100 four ways: the model at 4:2:0 with its networks; at 4:4:4 with its networks;
at 4:4:4 with neither network (the same tables and trellis quantisation: what the codec writes
from ``codec.FULL_CHROMA_FROM[8]`` on, where the model's ``identity_step`` sets the networks
aside); and plain JPEG at 4:4:4. Prints bpp and PSNR per image and quality, and, for each
quality of the 4:4:4 payloads without networks, the PSNR the 4:2:0 curve reaches at the same
bpp (interpolated in bpp; blank beyond its top), so the gain of switching there.
"""

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.nn.models import load_stages
from napari_cnnjpeg.training import _center_crop, load_images, split_held_out

ROOT = Path(__file__).resolve().parent.parent
QUALITIES = tuple(range(85, 101))


def photos(data: str, n: int) -> list[tuple[str, np.ndarray]]:
    from skimage import data as samples

    held = [(name, _center_crop(im, 512)) for name, im in split_held_out(load_images(data, 8), n)[1]]
    return held + [(name, getattr(samples, name)()) for name in
                   ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")]


def curves(model: str, image: np.ndarray) -> dict[str, np.ndarray]:
    """(qualities, 2) bpp and PSNR of each way of coding ``image``."""
    full = dataclasses.replace(load_stages(model), identity_step=None)  # the networks wherever asked
    bare = dataclasses.replace(full, encoder=None, decoder=None, frozen=False, _runners={})
    ways = {"4:2:0": (full, "4:2:0"), "4:4:4": (full, "4:4:4"), "4:4:4 bare": (bare, "4:4:4"),
            "jpeg 4:4:4": ("jpeg", "4:4:4")}
    out = {}
    for way, (stages, sub) in ways.items():
        rows = []
        for q in QUALITIES:
            blob = cj.encode(image, quality=q, model=stages, subsampling=sub)
            rows.append((len(blob) * 8 / (image.shape[0] * image.shape[1]), psnr(image, cj.decode(blob, model=stages))))
        out[way] = np.array(rows)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="joint-s-v8")
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--val-images", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.chdir(ROOT)
    import torch

    torch.set_num_threads(args.threads)
    gains = []
    for name, image in photos(args.data, args.val_images):
        c = curves(args.model, image)
        print(f"\n{name}\n| quality | " + " | ".join(f"{w} bpp | {w} dB" for w in c) + " | 4:2:0 at that bpp |")
        row_gain = []
        for i, q in enumerate(QUALITIES):
            bpp, db = c["4:4:4 bare"][i]
            rate, dist = c["4:2:0"].T
            at = np.interp(bpp, rate, dist) if bpp <= rate.max() else np.nan
            row_gain.append(db - at)
            print(f"| {q} | " + " | ".join(f"{v[i, 0]:.3f} | {v[i, 1]:.2f}" for v in c.values())
                  + (f" | {at:.2f} |" if np.isfinite(at) else " | |"))
        gains.append(row_gain)
    gains = np.array(gains)
    print("\nPSNR of the 4:4:4 payloads without networks minus the 4:2:0 curve at the same bpp (dB), "
          "over the images where the 4:2:0 curve reaches that bpp:")
    print("| quality | images | mean | worst |\n|---:|---:|---:|---:|")
    for i, q in enumerate(QUALITIES):
        g = gains[:, i][np.isfinite(gains[:, i])]
        print(f"| {q} | {len(g)} | {g.mean():+.2f} | {g.min():+.2f} |" if len(g) else f"| {q} | 0 | | |")


if __name__ == "__main__":
    main()
