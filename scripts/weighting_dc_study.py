"""The block mean's own step in the frequency weighting: monotone quality against BD-rate.

Usage: python scripts/weighting_dc_study.py FOLDER [--dc 1,1 0.25,0.76 0.25,0.6 0.25,0.5]

Above quality 60, 12-bit grey payloads are weighted (``format.weighting``) so that every
frequency's effective step is ``max(T, 0.7 * max(T))``. Files record the block mean's (DC's)
own factor and largest weight as ``weighting_dc = [g, c]``: its weight is
``min(c, T00 / (g * 0.7 * max(T)))`` (``[1, 1]``: the DC weighted like the rest, the format
before 2026-11-28). For each pair (set as ``codec.WEIGHTING_DC``), without any network:

- the worst PSNR dip (below the best of the lower qualities) over qualities 61-99 on three
  synthetic sparse uint16 planes (six Gaussian cells of 1500 counts on a photon-noise
  background of mean 2);
- the falls of more than 0.05 dB over qualities 61-100 on 320-pixel centre crops of the
  planes of FOLDER (up to 3 per file), each mapped from its min/max onto 0-4095;
- the BD-rate on those crops (qualities 61-99) against the first pair given.
"""

import argparse

import numpy as np

import napari_cnnjpeg as cj
from napari_cnnjpeg import codec
from napari_cnnjpeg.eval import metrics
from napari_cnnjpeg.eval.bd import bd_rate
from napari_cnnjpeg.eval.bench_scientific import load_planes
from napari_cnnjpeg.training import _center_crop


def sparse_plane(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    img = rng.poisson(2.0, (256, 256)).astype(np.float64)
    for cy, cx, r in rng.uniform((20, 20, 4), (236, 236, 12), (6, 3)):
        img += 1500 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    return img.astype(np.uint16)


def full_range_crop(plane: np.ndarray, side: int = 320) -> np.ndarray:
    crop = _center_crop(plane, side).astype(np.float64)
    return np.rint((crop - crop.min()) / max(np.ptp(crop), 1e-9) * 4095).astype(np.uint16)


def curve(plane: np.ndarray, qualities) -> np.ndarray:
    """(bpp, PSNR) of the plane's payload decoded without a network, per quality."""
    rng = metrics.value_range(plane)
    out = []
    for q in qualities:
        blob = cj.encode(plane, quality=q)
        out.append((len(blob) * 8 / plane.size, metrics.psnr(plane, cj.decode(blob, model="jpeg"), rng)))
    return np.array(out)


def dips(points: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(points[:, 1]) - points[:, 1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--dc", nargs="+", default=["1,1", "0.25,0.76", "0.25,0.6", "0.25,0.5"],
                   help="g,c pairs; the first is the BD-rate's reference")
    args = p.parse_args()
    crops = [(name, full_range_crop(plane)) for name, plane in load_planes(args.folder, 3)]
    default, base = codec.WEIGHTING_DC, None
    print("| g, c | synthetic sparse planes, worst dip (dB) | real crops, falls over 0.05 dB | BD-rate |\n"
          "|---|---|---|---:|")
    for pair in args.dc:
        codec.WEIGHTING_DC = tuple(float(v) for v in pair.split(","))
        synthetic = [float(dips(curve(sparse_plane(s), range(61, 100))).max()) for s in range(3)]
        real = {name: curve(crop, range(61, 101)) for name, crop in crops}
        falls = [f"{name} q{61 + i} {d[i]:.2f}" for name, c in real.items() for d in [dips(c)]
                 for i in np.nonzero(d > 0.05)[0]]
        base = base or real
        bd = np.nanmean([bd_rate(base[n][:-1, 0], base[n][:-1, 1], c[:-1, 0], c[:-1, 1]) for n, c in real.items()])
        print(f"| {pair} | {', '.join(f'{v:.3f}' for v in synthetic)} | {len(falls)}: {'; '.join(falls[:4])} "
              f"| {bd:+.2f} % |", flush=True)
    codec.WEIGHTING_DC = default


if __name__ == "__main__":
    main()
