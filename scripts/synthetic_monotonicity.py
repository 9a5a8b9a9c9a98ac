"""Monotonicity of the default path on synthetic planes (the kind a test writer makes).

Usage: python scripts/synthetic_monotonicity.py [PLANE ...] [--model MODEL] [--threads 1]

Codes each 256x256 plane at every quality 1-100 and prints, per plane: how many steps up in
quality lose more than 0.05 dB against the best of the lower qualities and the worst such loss;
how many steps shrink the file; the same over the grid of qualities 1, 5, 10, 20, ... 90, 95, 98,
100; the grid's worst loss of the plain decode (the same files, no network); and PSNR (over the
plane's range; 255 for uint8) at quality 100. uint16 planes (the 12-bit path): smooth ramps with
and without noise, a cosine ring, a blob on noise, scikit-image's camera in 16 bits, smooth random
fields, a ramp with blobs and photon noise, sines, x*y, flat rectangles on noise and a Gaussian;
uint8 planes (the 8-bit path): a ramp, a ramp with noise, and an RGB ramp.
"""

import argparse

import numpy as np

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr, value_range

GRID = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 100)
TOLERANCE = 0.05


def planes() -> dict[str, np.ndarray]:
    from scipy.ndimage import gaussian_filter
    from skimage import data

    y, x = np.mgrid[0:256, 0:256]
    rng = np.random.default_rng(0)
    field = gaussian_filter(rng.random((256, 256)), 4)
    rects = np.full((256, 256), 1000.0)
    rects[50:150, 60:200], rects[180:230, 20:90] = 20000, 40000
    return {
        "linspace": np.linspace(0, 65535, 256 * 256).reshape(256, 256).astype(np.uint16),
        "xramp": np.tile(np.linspace(0, 65535, 256), (256, 1)).astype(np.uint16),
        "ramp_noise": np.clip(1000 + 200 * x + rng.normal(0, 100, (256, 256)), 0, 65535).astype(np.uint16),
        "ring": (30000 + 30000 * np.cos(np.hypot(x - 128, y - 128) / 20)).astype(np.uint16),
        "blob_noise": np.clip(1000 + 20000 * np.exp(-((x - 128) ** 2 + (y - 100) ** 2) / 800)
                              + rng.normal(0, 200, (256, 256)), 0, 65535).astype(np.uint16),
        "camera257": data.camera()[:256, :256].astype(np.uint16) * 257,
        "field": ((field - field.min()) / np.ptp(field) * 60000).astype(np.uint16),
        "ramp_blobs_poisson": rng.poisson(500 + 30 * x + 20000 * np.exp(-((x - 100) ** 2 + (y - 120) ** 2) / 500))
                              .clip(0, 65535).astype(np.uint16),
        "sines": (30000 + 10000 * np.sin(x / 7) + 10000 * np.cos(y / 11) + 5000 * np.sin((x + y) / 3)).astype(np.uint16),
        "xy": (x * y).astype(np.uint16),
        "diagramp": ((x + y) / 510 * 4000).astype(np.uint16),
        "rects_noise": (rects + rng.normal(0, 300, rects.shape)).clip(0, 65535).astype(np.uint16),
        "gauss_blob": (60000 * np.exp(-((x - 128) ** 2 + (y - 128) ** 2) / (2 * 40**2))).astype(np.uint16),
        "xramp8": np.tile(np.linspace(0, 255, 256), (256, 1)).round().astype(np.uint8),
        "ramp8_noise": np.clip(20 + 0.8 * x + rng.normal(0, 2, (256, 256)), 0, 255).round().astype(np.uint8),
        "rgb_ramp8": np.stack([np.tile(np.linspace(0, 255, 256), (256, 1)), np.tile(np.linspace(255, 0, 256)[:, None],
                              (1, 256)), np.full((256, 256), 128.0)], -1).round().astype(np.uint8),
    }


def falls(sizes: np.ndarray, psnrs: np.ndarray) -> tuple[int, float, int]:
    """Steps losing more than TOLERANCE dB against the best so far, the worst loss, and steps shrinking the file."""
    dips = np.maximum.accumulate(psnrs) - psnrs
    return int((dips > TOLERANCE).sum()), float(dips.max()), int((np.diff(sizes) < 0).sum())


def main() -> None:
    all_planes = planes()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("planes", nargs="*", default=list(all_planes), help=f"of {', '.join(all_planes)}")
    p.add_argument("--model", default=None, help="default: the default model for the plane's precision")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from napari_cnnjpeg.codec import Reader

    print("| plane | falls | worst (dB) | shrinks | grid falls | grid worst (dB) | grid shrinks | plain grid worst (dB) "
          "| q100 (dB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.planes:
        plane = all_planes[name]
        rng = value_range(plane)  # 255 for uint8
        rows = []
        for q in range(1, 101):
            blob = cj.encode(plane, quality=q, model=args.model)
            reader = Reader(blob)
            rows.append((len(blob), *(min(psnr(plane, reader.read() if net else reader.plane(0, restore=False), rng),
                                          200.0) for net in (True, False))))
        sizes, psnrs, plain = map(np.array, zip(*rows))
        grid = [q - 1 for q in GRID]
        every, on_grid = falls(sizes, psnrs), falls(sizes[grid], psnrs[grid])
        print(f"| {name} | {every[0]} | {every[1]:.2f} | {every[2]} | {on_grid[0]} | {on_grid[1]:.2f} | {on_grid[2]} "
              f"| {falls(sizes[grid], plain[grid])[1]:.2f} | {psnrs[-1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
