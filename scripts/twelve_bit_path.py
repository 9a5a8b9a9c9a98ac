"""Which (JPEG quality, levels) settings should the 12-bit path walk? A measurement for issue 12.

Usage: python scripts/twelve_bit_path.py ../shared/data/micro [--crop 384]

A 12-bit payload is set by two knobs: the JPEG quality (libjpeg's tables, which clamp at
255 and so turn flat at low quality) and the levels L its plane is mapped onto
(:func:`napari_cnnjpeg.codec.twelve_bit_setting`). For the centre crop of one plane per
file, prints the BD-rate against the 8-bit path (plain JPEG of the plane mapped to 8
bits, qualities 10-95) of paths through those knobs, plain and restored by a 12-bit
model (``--model``): the codec's until 2026-11-27 (256 levels up to quality 50, then
more levels at that quality), and the codec's now, which first raises the levels at
quality 1 (flat tables, steps from 255 down to 16 in 8-bit units), then the quality at
4096 levels, both at the codec's qualities 10-95.
"""

import argparse

import numpy as np
import torch

from napari_cnnjpeg.codec import twelve_bit_setting
from napari_cnnjpeg.eval.bd import bd_rate
from napari_cnnjpeg.eval.bench_scientific import load_planes
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.jpeg import decode_jpeg, decode_jpeg12, encode_jpeg, encode_jpeg12, quant_tables
from napari_cnnjpeg.nn.models import load_stages

QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
PATHS = {
    "levels from quality 50 (until 2026-11-27)": [(q, 255 if q <= 50 else round(256 * 16 ** ((q - 50) / 50)) - 1)
                                        for q in QUALITIES],
    "flat tables first (now)": [twelve_bit_setting(q) for q in QUALITIES],
}


def _point(plane: np.ndarray, quality: int, levels: int, stages=None) -> tuple[float, float]:
    lo, hi = float(plane.min()), float(plane.max())
    mapped = np.clip(np.rint((plane - lo) * levels / (hi - lo)), 0, levels)
    data = encode_jpeg12(mapped.astype(np.uint16), quality)
    out = np.minimum(decode_jpeg12(data), levels)
    if stages is not None:
        out = stages.post(out, *quant_tables(data), levels=levels, layout="grey")
    return len(data) * 8 / plane.size, psnr(plane, np.asarray(out, np.float64) / levels * (hi - lo) + lo, hi - lo)


def _anchor(plane: np.ndarray) -> list[tuple[float, float]]:
    lo, hi = float(plane.min()), float(plane.max())
    mapped = np.clip(np.rint((plane - lo) * 255 / (hi - lo)), 0, 255).astype(np.uint8)
    points = []
    for q in QUALITIES:
        data = encode_jpeg(mapped, q)
        points.append((len(data) * 8 / plane.size, psnr(plane, decode_jpeg(data) / 255 * (hi - lo) + lo, hi - lo)))
    return points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--crop", type=int, default=384)
    p.add_argument("--model", default="micro-s", help="a 12-bit decoder model id")
    args = p.parse_args()
    torch.set_num_threads(1)
    stages = load_stages(args.model)
    planes = []
    for _, plane in load_planes(args.folder, 1):
        h, w = plane.shape
        y, x = max(0, (h - args.crop) // 2), max(0, (w - args.crop) // 2)
        crop = plane[y : y + args.crop, x : x + args.crop].astype(np.float64)
        if crop.max() > crop.min():
            planes.append(crop)
    print(f"{len(planes)} planes, centre crops of {args.crop}; BD-rate against the 8-bit path, qualities 10-95")
    print(f"| path | plain 12-bit | {args.model} |\n|---|---:|---:|")
    anchors = [_anchor(pl) for pl in planes]
    for name, path in PATHS.items():
        cells = []
        for net in (None, stages):
            rates = []
            for plane, a in zip(planes, anchors):
                b = [_point(plane, q, L, net) for q, L in path]
                rates.append(bd_rate(*zip(*a), *zip(*b)))
            cells.append(f"{np.nanmean(rates):+.2f} %")
        print(f"| {name} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
