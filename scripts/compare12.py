"""12-bit models against the 8-bit path, per plane: on a folder of TIFFs, or on dense textures.

Usage: python scripts/compare12.py [--data FOLDER | --rgb] [MODEL ...]   (default: the 12-bit default model)

A MODEL is a registered id or a training config (``configs/*.json``), whose run is loaded
from its checkpoint and codes the qualities of ``--run-range`` (a run has no measured quality
range yet; those outside it are coded at its nearest end, as a registered model's are).

With ``--data``, the planes of a folder of 12/16-bit or float TIFFs, as ``cnnjpeg bench``
takes them. Without, dense textures as 16-bit planes: ``../shared/data/micro`` holds
fluorescence and brightfield only, and these stand in for other microscopes, electron
microscopy above all (texture everywhere, no dark background). They are built from
scikit-image's samples (camera, gravel, brick, moon, coins, text; no download), each three ways:

- ``x257``: the 8-bit image in 16 bits (8-bit content, as many EM detectors write it);
- ``noisy``: scaled by 200, offset by 3000, Gaussian noise of sigma 600 (a noisy 16-bit detector);
- ``smooth12``: enlarged 2x (bicubic) and scaled by 16 (12-bit content finer than 8-bit steps).

scikit-image's ``grass`` is left out: it was a JPEG at quality 90 once, and re-encoding it at
that quality on the 8-bit path comes back nearly lossless (Pillow: 51.7 dB at q90, 41.8 dB
at q92), which no codec of another grid can match.

For each model: encode(plane, quality=q, model=MODEL) at the scientific benchmark's
qualities, PSNR over the plane's range; per plane BD-rate against the 8-bit path
(``model="jpeg", bits=8, mapping="plane"``), the worst PSNR deficit at the 8-bit path's
bpp (interpolated in log-bpp), and the ceiling at quality 100. Prints a markdown table.
"""

import argparse

import numpy as np

from napari_cnnjpeg import decode, encode
from napari_cnnjpeg.eval import metrics
from napari_cnnjpeg.eval.bd import bd_rate
from napari_cnnjpeg.eval.bench_scientific import QUALITIES, deficit, load_planes
from napari_cnnjpeg.nn.models import default_model

SAMPLES = ("camera", "gravel", "brick", "moon", "coins", "text")
RGB_SAMPLES = ("astronaut", "coffee", "immunohistochemistry", "chelsea")


def dense_planes(rgb: bool = False) -> list[tuple[str, np.ndarray]]:
    from skimage import data
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    out = []
    for name in RGB_SAMPLES if rgb else SAMPLES:
        a = getattr(data, name)().astype(np.float64)
        out.append((f"{name}-x257", (a * 257).astype(np.uint16)))
        if not rgb:
            noisy = a * 200 + rng.normal(0, 600, a.shape) + 3000
            out.append((f"{name}-noisy", np.clip(noisy, 0, 65535).astype(np.uint16)))
        big = resize(a, (a.shape[0] * 2, a.shape[1] * 2), order=3)[:512, :512]
        out.append((f"{name}-smooth12", np.clip(big * 16, 0, 4095).astype(np.uint16)))
    return out


def curve(plane: np.ndarray, quality_range: tuple[int, int] = (1, 100), **options) -> np.ndarray:
    rng = metrics.value_range(plane)
    pts = []
    for q in QUALITIES:
        blob = encode(plane, quality=min(max(q, quality_range[0]), quality_range[1]), **options)
        model = options.get("model")
        decoded = decode(blob, model=None if isinstance(model, str) else model)  # a run's stages decode their files
        pts.append((len(blob) * 8 / plane.shape[0] / plane.shape[1], metrics.psnr(plane, decoded, rng)))
    return np.array(pts)


def drops(points: np.ndarray) -> int:
    """Steps of the quality grid where PSNR falls by more than 0.05 dB or bpp falls."""
    return int(np.sum((np.diff(points[:, 1]) < -0.05) | (np.diff(points[:, 0]) < 0)))


def worst_deficit(base: np.ndarray, mine: np.ndarray) -> float:
    base, mine = base[np.argsort(base[:, 0])], mine[np.argsort(mine[:, 0])]
    worst = deficit(base[:, 0], base[:, 1], mine[:, 0], mine[:, 1])[0]
    return worst if np.isfinite(worst) else float("nan")


def load_model(name: str):
    """A registered model id as is, or the stages of the run a training config names."""
    if not name.endswith(".json"):
        return name
    from napari_cnnjpeg.training import TrainConfig, Trainer

    trainer = Trainer(TrainConfig.load(name), device="cpu")
    for net in trainer.nets.values():
        net.eval()
    return trainer.stages()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="a folder of 12/16-bit or float TIFFs")
    p.add_argument("--rgb", action="store_true", help="colour images in 16 bits instead of grey textures")
    p.add_argument("--run-range", type=int, nargs=2, default=(1, 100), metavar=("LO", "HI"),
                   help="qualities a training run codes (default 1 100)")
    p.add_argument("models", nargs="*")
    args = p.parse_args()
    models = args.models or [default_model(12)]
    rows = {m: [] for m in models}
    stages = {m: load_model(m) for m in models}
    for name, plane in load_planes(args.data) if args.data else dense_planes(args.rgb):
        base = curve(plane, model="jpeg", bits=8, mapping="plane")
        for m in models:
            mine = curve(plane, tuple(args.run_range) if m.endswith(".json") else (1, 100), model=stages[m])
            ceiling = metrics.psnr(plane, decode(encode(plane, quality=100, model=stages[m]), model=stages[m]),
                                   metrics.value_range(plane))
            rows[m].append((name, bd_rate(base[:, 0], base[:, 1], mine[:, 0], mine[:, 1]), worst_deficit(base, mine),
                            ceiling, drops(mine)))
        print(name, " ".join(f"{m}: {rows[m][-1][1]:+.1f} % ({rows[m][-1][2]:+.2f} dB)" for m in models), flush=True)
    print("\n| model | BD-rate vs 8-bit path | worst plane | worst deficit | lowest ceiling | quality steps down | planes |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for m, r in rows.items():
        bd = np.array([x[1] for x in r])
        worst = min(r, key=lambda x: x[2])
        print(f"| `{m}` | {np.nanmean(bd):+.2f} % | {worst[0]} | {worst[2]:+.2f} dB | {min(x[3] for x in r):.1f} dB "
              f"| {sum(x[4] for x in r)} | {len(r)} |")


if __name__ == "__main__":
    main()
