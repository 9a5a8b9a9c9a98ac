"""Pack a training folder into a small folder of lossless crops, to carry to a lent GPU machine.

Usage: python scripts/pack_crops.py SRC OUT [--budget-mib 40] [--crop 256] [--val-images 4]

The held-out images (the last ``--val-images`` of SRC by name) are stored as the
256-pixel centre crops that validation uses, named to sort last, so a config with the
same ``val_images`` holds out the same photos. The other images give random crops,
taken in turn from each (seeded), as PNG until the folder would pass the budget. Point
a config's ``data`` at OUT; nothing else changes.
"""

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from napari_cnnjpeg.format.container import write_atomic
from napari_cnnjpeg.training import _center_crop, load_images

VAL_CROP = 256  # Trainer's validation crop


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def pack(src: str, out: str, budget: int, crop: int, val_images: int, seed: int = 0) -> tuple[int, int]:
    """Write the crops; returns (training crops, bytes written)."""
    images = load_images(src)
    train, held = images[: len(images) - val_images], images[len(images) - val_images :]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    used = 0
    for name, im in held:
        data = _png(_center_crop(im, VAL_CROP))
        write_atomic(folder / f"zz-val-{name}.png", data)
        used += len(data)
    rng = np.random.default_rng(seed)
    usable = [(n, im) for n, im in train if min(im.shape[:2]) >= crop]
    count = 0
    while usable:
        name, im = usable[count % len(usable)]
        y, x = rng.integers(im.shape[0] - crop + 1), rng.integers(im.shape[1] - crop + 1)
        data = _png(np.ascontiguousarray(im[y : y + crop, x : x + crop]))
        if used + len(data) > budget:
            break
        write_atomic(folder / f"{count:05d}-{name}.png", data)
        used += len(data)
        count += 1
    return count, used


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--budget-mib", type=float, default=40.0)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--val-images", type=int, default=4)
    args = p.parse_args()
    count, used = pack(args.src, args.out, int(args.budget_mib * 2**20), args.crop, args.val_images)
    print(f"{count} training crops of {args.crop} px and {args.val_images} held-out crops, "
          f"{used / 2**20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
