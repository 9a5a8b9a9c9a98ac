"""Frequency weighting of 12-bit payloads: BD-rate against the unweighted path, per ``flatten``.

Usage: python scripts/weighting_study.py FOLDER [--flatten 1.0 0.7 0.5] [--per-file 2]

For the planes of a folder of 12/16-bit TIFFs (each mapped from its min/max onto 0-4095),
plain 12-bit JPEG (no network) as the codec wrote it before the weighting (above quality
60: 4096 levels, JPEG quality rising from 1, libjpeg's tables) against payloads weighted
with each ``flatten`` (``format.weighting``) at JPEG qualities 1-100. PSNR over 0-4095;
per-plane BD-rate over the common range, then the mean. No DC alignment on either side.
"""

import argparse

import numpy as np

from napari_cnnjpeg.eval.bd import bd_rate
from napari_cnnjpeg.eval.bench_scientific import _to12, load_planes
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.jpeg import _standard_tables, decode_jpeg12, encode_jpeg12
from napari_cnnjpeg.format.weighting import unweight, weight

#: The path before the weighting, above quality 60: JPEG quality round(1 + (q - 60) * 99 / 40).
BEFORE = [round(1 + (q - 60) * 99 / 40) for q in (61, 65, 70, 75, 80, 85, 90, 95)]
WEIGHTED = (1, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 93, 95, 97, 99)


def point(plane: np.ndarray, jpeg_quality: int, flatten: float | None) -> tuple[float, float]:
    luma = _standard_tables(jpeg_quality)[0]
    coded = plane if flatten is None else weight(plane, luma, flatten)
    data = encode_jpeg12(coded, jpeg_quality)
    out = decode_jpeg12(data)
    out = out if flatten is None else unweight(out, luma, flatten)
    return len(data) * 8 / plane.size, psnr(plane, out, 4095)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--flatten", type=float, nargs="+", default=[1.0, 0.85, 0.7, 0.6, 0.5])
    p.add_argument("--per-file", type=int, default=2, help="planes per stack")
    args = p.parse_args()
    planes = [(name, _to12(plane)[0]) for name, plane in load_planes(args.folder, args.per_file)]
    before = {name: np.array([point(plane, q, None) for q in BEFORE]) for name, plane in planes}
    print(f"{len(planes)} planes of {args.folder}\n")
    print("| flatten | BD-rate against unweighted | planes |\n|---:|---:|---:|")
    for f in args.flatten:
        rates = []
        for name, plane in planes:
            b = np.array([point(plane, q, f) for q in WEIGHTED])
            a = before[name]
            rates.append(bd_rate(a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
        rates = np.array(rates, dtype=float)
        print(f"| {f} | {np.nanmean(rates):+.2f} % | {int(np.isfinite(rates).sum())} |", flush=True)


if __name__ == "__main__":
    main()
