"""Benchmark of restoring ordinary JPEGs (``cnnjpeg bench --restore``).

Three parts, on any folder of lossless photos:

- **Published protocol** (FBCNN, SwinIR): Pillow JPEG at qualities 10, 20, 30 and 40,
  colour (RGB, 4:2:0) and grey (the images' luma); mean PSNR over the images, over RGB
  or grey, no border crop. Published figures on the papers' own test sets are quoted
  beside ours (:data:`PUBLISHED`): they are other images, so they place our rows, they do
  not compare like for like.
- **Robustness grid**: every variant of :mod:`jpeg_grid` at every quality of
  :data:`jpeg_grid.QUALITIES`; each cell is the mean PSNR change (dB) the model makes
  to the plain decode, on centre crops. The rule: no cell below 0.0 dB, and +0.3 dB or
  more at qualities of 50 and below.
- **Speed**: decode plus restore, megapixels per second, over the folder's images; and a
  large JPEG (24 MP by default, the first image enlarged) restored by ``cnnjpeg restore``
  in a fresh process, with its wall time and peak resident memory.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import CjpgError

PROTOCOL_QUALITIES = (10, 20, 30, 40)
#: Published PSNR (dB) on the papers' test sets, as the issue quotes them: (set, quality) -> method -> dB.
PUBLISHED = {
    ("LIVE1 grey", 10): {"JPEG": 27.77, "ARCNN": 28.96, "DnCNN-3": 29.19, "FBCNN": 29.75, "SwinIR": 29.86},
    ("LIVE1 grey", 40): {"JPEG": 32.35, "ARCNN": 33.63, "DnCNN-3": 33.96, "FBCNN": 34.53, "SwinIR": 34.67},
    ("LIVE1 colour", 10): {"JPEG": 25.69, "QGAC": 27.62, "FBCNN": 27.77, "SwinIR": 28.06},
    ("Classic5 grey", 10): {"JPEG": 27.82, "ARCNN": 29.03, "DnCNN-3": 29.40, "FBCNN": 30.12, "SwinIR": 30.27},
}
PUBLISHED_METHODS = ("JPEG", "ARCNN", "DnCNN-3", "QGAC", "FBCNN", "SwinIR")
#: Side of the centre crops the grid codes (keeps its 117 cells per model to minutes).
GRID_CROP = 384
#: The grid's rule: every cell at least FLOOR_DB; at qualities up to LOW_QUALITY, at least LOW_GAIN_DB.
FLOOR_DB, LOW_QUALITY, LOW_GAIN_DB = 0.0, 50, 0.3


def _centre(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(image[y : y + side, x : x + side])


def protocol(images: list[np.ndarray], models: list[str], qualities=PROTOCOL_QUALITIES, bar=None) -> dict:
    """Mean PSNR of plain JPEG and of each model, colour and grey, per quality."""
    from ..codec import restore
    from ..format.jpeg import decode_jpeg, encode_jpeg, luma
    from .metrics import psnr

    out: dict = {}
    for mode in ("colour", "grey"):
        for q in qualities:
            rows: dict[str, list[float]] = {"JPEG": [], **{m: [] for m in models}}
            for im in images:
                ref = luma(im) if mode == "grey" else im
                data = encode_jpeg(ref, q, "4:2:0")
                rows["JPEG"].append(psnr(ref, decode_jpeg(data)))
                for m in models:
                    rows[m].append(psnr(ref, restore(data, m)))
                if bar:
                    bar.update(1)
            out[f"{mode} q{q}"] = {k: float(np.mean(v)) for k, v in rows.items()}
    return out


def grid(images: list[np.ndarray], models: list[str], variants: list[str], qualities, bar=None) -> dict:
    """Per model, variant and quality: the mean PSNR change (dB) of restoring over the plain decode."""
    from ..codec import restore
    from ..format.jpeg import decode_jpeg, luma
    from ..format.jpeg_grid import encode_variant
    from .metrics import psnr

    out: dict = {m: {v: {} for v in variants} for m in models}
    for v in variants:
        for q in qualities:
            deltas: dict[str, list[float]] = {m: [] for m in models}
            for im in images:
                ref = luma(im) if v == "grey" else im
                data = encode_variant(ref, v, q)
                plain = decode_jpeg(data)
                base = psnr(ref, plain)
                for m in models:
                    deltas[m].append(psnr(ref, restore(data, m)) - base)
                if bar:
                    bar.update(1)
            for m in models:
                out[m][v][str(q)] = float(np.mean(deltas[m]))
    return out


def grid_failures(cells: dict) -> list[str]:
    """Cells of one model's grid that break the rule, as ``variant qQ: +x.xx dB``."""
    bad = []
    for v, row in cells.items():
        for q, d in row.items():
            if d < FLOOR_DB or (int(q) <= LOW_QUALITY and d < LOW_GAIN_DB):
                bad.append(f"{v} q{q}: {d:+.2f} dB")
    return bad


def speed(images: list[np.ndarray], models: list[str], quality: int = 50) -> dict:
    """Megapixels per second of decode plus restore, per model, over the images at one quality."""
    from ..codec import restore
    from ..format.jpeg import encode_jpeg

    blobs = [encode_jpeg(im, quality, "4:2:0") for im in images]
    mpx = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
    out = {}
    for m in models:
        restore(blobs[0], m)  # load and warm the model
        t0 = time.perf_counter()
        for b in blobs:
            restore(b, m)
        out[m] = mpx / (time.perf_counter() - t0)
    return out


def large(image: np.ndarray, model: str, megapixels: float = 24.0, quality: int = 50) -> dict:
    """``cnnjpeg restore`` of one large JPEG (``image`` enlarged to ``megapixels``) in a fresh
    process: wall time and the process's peak resident memory (MiB)."""
    from PIL import Image

    from ..format.jpeg import encode_jpeg

    h, w = image.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    big = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BICUBIC))
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "large.jpg", Path(tmp) / "restored.png"
        src.write_bytes(encode_jpeg(big, quality, "4:2:0"))
        del big
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _LARGE, str(src), str(out), model], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise CjpgError(f"restoring the large JPEG failed: {done.stderr.strip()[-500:]}")
        peak_kib = int(done.stdout.split()[-1])  # the process's own peak, as it reported it on exit
    return {"megapixels": round(h * scale * w * scale / 1e6, 1), "model": model, "seconds": round(seconds, 1),
            "peak_rss_mib": round(peak_kib / 1024, 1)}


#: ``cnnjpeg restore SRC -o OUT --model M`` in a fresh process that prints its peak RSS (KiB, Linux) on exit.
_LARGE = ("import resource, sys\nfrom napari_cnnjpeg.cli import main\n"
          "code = main(['restore', sys.argv[1], '-o', sys.argv[2], '--model', sys.argv[3]])\n"
          "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(code)")


def benchmark(images: list[tuple[str, np.ndarray]], models: list[str], variants: list[str] | None = None,
              qualities=None, crop: int = GRID_CROP, dataset: str = "", progress: bool = True,
              large_megapixels: float = 24.0) -> dict:
    """The three parts on a list of (name, uint8 RGB image)."""
    from tqdm import tqdm

    from ..format.jpeg_grid import QUALITIES, available_variants

    variants = variants or available_variants()
    qualities = tuple(qualities or QUALITIES)
    pictures = [im for _, im in images]
    crops = [_centre(im, crop) for im in pictures]
    total = len(pictures) * 2 * len(PROTOCOL_QUALITIES) + len(crops) * len(variants) * len(qualities)
    with tqdm(total=total, disable=not progress, desc="bench --restore", file=sys.stderr) as bar:
        table = protocol(pictures, models, bar=bar)
        cells = grid(crops, models, variants, qualities, bar=bar)
    return {
        "dataset": dataset, "date": datetime.date.today().isoformat(), "images": [n for n, _ in images],
        "models": models, "protocol": table, "grid": cells, "grid_crop": crop, "variants": variants,
        "qualities": list(qualities), "failures": {m: grid_failures(cells[m]) for m in models},
        "speed_mpx_s": speed(pictures, models),
        "large": [large(pictures[0], m, large_megapixels) for m in models],
        "command": " ".join(["cnnjpeg", *sys.argv[1:]]) if sys.argv[0].endswith("cnnjpeg") else "",
    }


def markdown(result: dict) -> str:
    """The report: the published-protocol table, the published figures, the grid per model, speed."""
    from ..format.jpeg_grid import VARIANTS

    models = result["models"]
    lines = ["# Restoring ordinary JPEGs", "",
             f"Data: `{result['dataset']}`, {len(result['images'])} images, {result['date']}."]
    if result.get("command"):
        lines += ["", f"Command: `{result['command']}`"]
    lines += ["", "## Published protocol", "",
              "Pillow JPEG, mean PSNR (dB) over the images, over RGB (colour, 4:2:0) or the luma (grey), "
              "no border crop.", "", "| setting | JPEG | " + " | ".join(f"`{m}`" for m in models) + " |",
              "|---|---:|" + "---:|" * len(models)]
    for setting, row in result["protocol"].items():
        gains = " | ".join(f"{row[m]:.2f} ({row[m] - row['JPEG']:+.2f})" for m in models)
        lines.append(f"| {setting} | {row['JPEG']:.2f} | {gains} |")
    lines += ["", "Published figures on the papers' own test sets (other images: they place the rows above; "
              "the gain over each set's JPEG row is what compares):", "",
              "| set | " + " | ".join(PUBLISHED_METHODS) + " |", "|---|" + "---:|" * len(PUBLISHED_METHODS)]
    for (name, q), row in PUBLISHED.items():
        cells = " | ".join(f"{row[k]:.2f} ({row[k] - row['JPEG']:+.2f})" if k in row and k != "JPEG"
                           else (f"{row[k]:.2f}" if k in row else "") for k in PUBLISHED_METHODS)
        lines.append(f"| {name} q{q} | {cells} |")
    lines += ["", "## Robustness grid", "",
              f"Mean PSNR change (dB) of the restored image over the plain decode, on {result['grid_crop']}² centre "
              f"crops. Rule: every cell ≥ {FLOOR_DB:+.1f} dB, and ≥ {LOW_GAIN_DB:+.1f} dB at qualities ≤ "
              f"{LOW_QUALITY}. Variants:", ""]
    lines += [f"- `{v}`: {VARIANTS[v]}" for v in result["variants"]]
    for m in models:
        qs = result["qualities"]
        lines += ["", f"### `{m}`", "", "| variant | " + " | ".join(f"q{q}" for q in qs) + " |",
                  "|---|" + "---:|" * len(qs)]
        for v in result["variants"]:
            lines.append(f"| `{v}` | " + " | ".join(f"{result['grid'][m][v][str(q)]:+.2f}" for q in qs) + " |")
        bad = result["failures"][m]
        lines += ["", f"Cells that break the rule: {len(bad)}" + (f" ({'; '.join(bad)})." if bad else ".")]
    lines += ["", "## Speed", "", "Decode plus restore, Pillow JPEG at quality 50, over the folder's images:", "",
              "| model | MP/s |", "|---|---:|"]
    lines += [f"| `{m}` | {v:.2f} |" for m, v in result["speed_mpx_s"].items()]
    lines += ["", "A large JPEG (the first image enlarged, quality 50) through `cnnjpeg restore` in a fresh "
              "process:", "", "| model | MP | seconds | peak memory (MiB) |", "|---|---:|---:|---:|"]
    lines += [f"| `{x['model']}` | {x['megapixels']} | {x['seconds']} | {x['peak_rss_mib']} |"
              for x in result["large"]]
    return "\n".join(lines) + "\n"


def restore_section(folder: str | os.PathLike) -> str:
    """The restore part of ``benchmarks.md``, from ``benchmarks-restore.json`` in ``folder`` ("" without it)."""
    path = Path(folder) / "benchmarks-restore.json"
    if not path.exists():
        return ""
    body = markdown(json.loads(path.read_text())).split("\n", 2)[2]  # without the title
    return "## Restoring ordinary JPEGs (`cnnjpeg bench --restore`)\n\n" + body.replace("\n### ", "\n#### ").replace("\n## ", "\n### ")


def run(folder: str | None, out_dir: str, name: str, models: list[str] | None, qualities=None,
        crop: int = GRID_CROP, large_megapixels: float = 24.0) -> dict[str, Path]:
    """Benchmark a folder (default: scikit-image samples); write ``NAME.md`` and ``NAME.json``."""
    from ..format.container import write_atomic
    from ..nn.models import available_models, model_info
    from .bench import load_images, prepare

    models = models or [m for m in available_models(8) if model_info(m).kind == "restore"]
    for m in models:
        info = model_info(m)
        if info.kind != "restore" or info.bits != 8:
            raise CjpgError(f"model {m!r} is not a decoder-only model for 8-bit JPEG")
    _check_settings(qualities, crop, large_megapixels)
    images = [(n, prepare(im, gray=False)) for n, im in load_images(folder)]
    result = benchmark(images, models, qualities=qualities, crop=crop, large_megapixels=large_megapixels,
                       dataset=str(folder) if folder else "scikit-image samples")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / f"{name}.md", "json": out / f"{name}.json"}
    write_atomic(paths["report"], markdown(result).encode())
    write_atomic(paths["json"], json.dumps(result, indent=1).encode())
    if name == "benchmarks-restore":
        from .report_sections import update_report

        update_report(out / "benchmarks.md")
    return paths


def _check_settings(qualities, crop: int, large_megapixels: float) -> None:
    """Refuse settings the run would fail on only after minutes of measuring."""
    if qualities is not None and not all(1 <= int(q) <= 100 for q in qualities):
        raise CjpgError(f"grid qualities must be integers from 1 to 100, got {list(qualities)}")
    if crop < 1:
        raise CjpgError(f"the grid's crop side must be at least 1 pixel, got {crop}")
    if not large_megapixels > 0:
        raise CjpgError(f"the large JPEG must have more than 0 megapixels, got {large_megapixels}")
