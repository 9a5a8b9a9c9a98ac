"""A finer DC step in the frequency weighting: monotone quality on sparse planes against BD-rate.

Usage: python scripts/weighting_dc_study.py FOLDER [--g 1 0.5 0.25]

Above quality 60, 12-bit grey payloads are weighted (``format.weighting``) so that every
frequency's effective step is ``max(T, 0.7 * max(T))``, the block mean (DC) included. That
DC step is coarse: on a sparse plane (a few bright cells on a dark background) the error
of the bright blocks' means changes from one JPEG quality to the next, and PSNR can fall
as quality rises. This study gives the DC its own effective step, ``max(T00, g * 0.7 *
max(T))`` (g = 1 is the format today), and reports, without any network:

- the worst PSNR change from one quality to the next (61-99) on three synthetic sparse
  uint16 planes (six Gaussian cells of 1500 counts on a photon-noise background of mean 2);
- the BD-rate against g = 1 on the planes of FOLDER (one per file), qualities 61-97.

A g other than 1 would need a new file field (listed under ``required``) and a decoder
network fine-tuned on the new payloads.
"""

import argparse

import numpy as np

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval import metrics
from napari_cnnjpeg.eval.bd import bd_rate
from napari_cnnjpeg.eval.bench_scientific import load_planes
from napari_cnnjpeg.format import weighting

_WEIGHTS = weighting.weights


def sparse_plane(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    img = rng.poisson(2.0, (256, 256)).astype(np.float64)
    for cy, cx, r in rng.uniform((20, 20, 4), (236, 236, 12), (6, 3)):
        img += 1500 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    return img.astype(np.uint16)


def use_dc_factor(g: float) -> None:
    """Make the weighting give the DC the effective step ``max(T00, g * flatten * max(T))``."""
    def weights(luma, flatten):
        out = _WEIGHTS(luma, flatten).copy()
        t = np.maximum(np.asarray(luma, np.float64).reshape(8, 8), 1.0)
        out[0, 0] = min(1.0, t[0, 0] / (g * flatten * t.max()))
        return out

    weighting.weights = weights


def curve(plane: np.ndarray, qualities) -> np.ndarray:
    rng = metrics.value_range(plane)
    out = []
    for q in qualities:
        blob = cj.encode(plane, quality=q)
        out.append((len(blob) * 8 / plane.size, metrics.psnr(plane, cj.decode(blob, model="jpeg"), rng)))
    return np.array(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--g", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    args = p.parse_args()
    planes = load_planes(args.folder, 1)
    base = None
    print("| g | worst change from one quality to the next, synthetic sparse planes (q61-99) "
          "| BD-rate against g = 1 (no network) |\n|---:|---|---:|")
    for g in args.g:
        use_dc_factor(g)
        falls = [float(np.diff(curve(sparse_plane(s), range(61, 100))[:, 1]).min()) for s in range(3)]
        curves = {n: curve(plane, range(61, 100, 4)) for n, plane in planes}
        base = base or ({n: curves[n] for n in curves} if g == 1.0 else None)
        bd = (np.nanmean([bd_rate(base[n][:, 0], base[n][:, 1], c[:, 0], c[:, 1]) for n, c in curves.items()])
              if base else float("nan"))
        print(f"| {g} | {', '.join(f'{f:+.3f} dB' for f in falls)} | {bd:+.2f} % |", flush=True)
    weighting.weights = _WEIGHTS


if __name__ == "__main__":
    main()
