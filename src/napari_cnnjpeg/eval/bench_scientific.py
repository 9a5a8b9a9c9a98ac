"""Benchmark on scientific images: 12/16-bit and float TIFF planes (``cnnjpeg bench --data FOLDER``).

Figures are per plane, PSNR over each plane's own value range (:func:`metrics.value_range`)
against bits per sample; BD figures are per plane against today's 8-bit path (plain JPEG
of the plane mapped from its min/max to 8 bits), then averaged. Paths:

- ``default``: what :func:`napari_cnnjpeg.encode` does with such data (12-bit JPEG and the
  12-bit default model, :func:`~napari_cnnjpeg.nn.models.default_model` ``(bits=12)``);
- ``jpeg-12bit``: plain 12-bit JPEG, no network;
- ``jpeg-8bit``: plain JPEG through the 8-bit mapping (the baseline);
- ``<model>-8bit``: a network model through the 8-bit mapping;
- references at matched settings, coding the same 12-bit mapping of the plane: JPEG 2000
  (OpenJPEG, ``level`` = target PSNR) and JPEG XL (libjxl, ``bitspersample`` 12), both
  through imagecodecs.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import CjpgError
from .bd import bd_psnr, bd_rate

QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
#: Settings of the references: JPEG 2000 target PSNR (dB, of the 12-bit data), JPEG XL quality.
J2K_LEVELS = (30, 35, 40, 45, 50, 55, 60, 65, 70, 75)
JXL_LEVELS = (10, 30, 50, 70, 80, 90, 95, 98, 99, 100)
BASELINE = "jpeg-8bit"
PLAIN12 = "jpeg-12bit"
#: The default path's payloads (frequency weighted above quality 60) decoded with no network.
WEIGHTED12 = "jpeg-12bit-weighted"
REFERENCES = ("jpeg2000-12bit", "jpegxl-12bit")
#: Planes taken from one file at most (evenly spaced through a stack).
MAX_PLANES_PER_FILE = 3
TIFF_SUFFIXES = (".tif", ".tiff")


def is_scientific_folder(folder: str | os.PathLike | None) -> bool:
    """Whether a folder holds TIFFs and all of them have more than 8 bits per sample."""
    if folder is None or not Path(folder).is_dir():
        return False
    tiffs = _tiffs(folder)
    return bool(tiffs) and all(_read(p, header=True)[0] != np.uint8 for p in tiffs)


def _tiffs(folder: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in TIFF_SUFFIXES and p.is_file())


def _read(path: Path, header: bool = False) -> tuple[np.dtype, str, np.ndarray | None]:
    """The dtype, axes (tifffile's letters) and, unless ``header``, the pixels of a TIFF's first series;
    an unreadable file is a :class:`CjpgError` naming it."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise CjpgError(f"cannot read TIFF {path}: it holds no image")
            series = tif.series[0]
            return series.dtype, series.axes, None if header else series.asarray()
    except CjpgError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line naming the file
        raise CjpgError(f"cannot read TIFF {path}: {exc or type(exc).__name__}") from None


def load_planes(folder: str | os.PathLike, per_file: int = MAX_PLANES_PER_FILE) -> list[tuple[str, np.ndarray]]:
    """2D grey planes (name ``stem[index]``) of every TIFF in ``folder``, up to ``per_file`` from each stack."""
    planes = []
    for p in _tiffs(folder):
        _, axes, a = _read(p)
        if a.ndim < 2 or a.dtype == np.uint8 or a.dtype.kind not in "uif":
            raise CjpgError(f"{p}: the scientific benchmark takes planes of more than 8 bits, got {a.dtype} {a.shape}")
        if axes.endswith("S"):  # samples of a pixel: RGB
            raise CjpgError(f"{p}: the scientific benchmark takes grey planes, got {a.shape[-1]} samples per pixel "
                            f"(axes {axes})")
        flat = a.reshape((-1,) + a.shape[-2:])
        picks = np.unique(np.linspace(0, len(flat) - 1, min(per_file, len(flat))).round().astype(int))
        for k in picks:
            plane = np.ascontiguousarray(flat[k])
            if float(plane.max()) > float(plane.min()):
                planes.append((f"{p.stem}[{k}]" if len(flat) > 1 else p.stem, plane))
    if not planes:
        raise CjpgError(f"no TIFF planes of more than 8 bits in {folder} (planes of one value are left out)")
    return planes


def _to12(plane: np.ndarray) -> tuple[np.ndarray, float, float]:
    lo, hi = float(plane.min()), float(plane.max())
    return np.rint((plane.astype(np.float64) - lo) * 4095 / (hi - lo)).astype(np.uint16), lo, hi


def _from12(values: np.ndarray, lo: float, hi: float, dtype) -> np.ndarray:
    out = values.astype(np.float64) / 4095 * (hi - lo) + lo
    return np.rint(out).astype(dtype) if np.dtype(dtype).kind in "iu" else out.astype(dtype)


def _coder(path: str, qualities=QUALITIES):
    """(settings, code(plane, setting) -> (bytes, decoded)) of one path; ``qualities``: the JPEG paths' settings."""
    import imagecodecs

    from ..codec import decode, encode

    if path == "default":
        return qualities, lambda plane, q: _round_trip(encode(plane, quality=q), decode)
    if path == PLAIN12:
        return qualities, lambda plane, q: _round_trip(encode(plane, quality=q, model="jpeg"), decode)
    if path == WEIGHTED12:
        return qualities, lambda plane, q: _round_trip(encode(plane, quality=q), partial(decode, model="jpeg"))
    if path == "jpeg2000-12bit":
        def j2k(plane, level):
            m, lo, hi = _to12(plane)
            data = imagecodecs.jpeg2k_encode(m, level=level, bitspersample=12)
            return data, _from12(imagecodecs.jpeg2k_decode(data), lo, hi, plane.dtype)
        return J2K_LEVELS, j2k
    if path == "jpegxl-12bit":
        def jxl(plane, level):
            m, lo, hi = _to12(plane)
            data = imagecodecs.jpegxl_encode(m, level=level, effort=7, bitspersample=12)
            return data, _from12(imagecodecs.jpegxl_decode(data), lo, hi, plane.dtype)
        return JXL_LEVELS, jxl
    model = path.removesuffix("-8bit")
    return qualities, lambda plane, q: _round_trip(encode(plane, quality=q, model=model, bits=8, mapping="plane"),
                                                   decode)


def _round_trip(data: bytes, decode) -> tuple[bytes, np.ndarray]:
    return data, decode(data)


def benchmark(planes: list[tuple[str, np.ndarray]], models: list[str], references=REFERENCES,
              dataset: str = "", progress: bool = True, qualities=QUALITIES) -> dict:
    """Every path on every plane: points, per-plane BD against the 8-bit path, ceilings, worst deficit.

    ``qualities``: the settings of the JPEG paths (the references keep theirs)."""
    from tqdm import tqdm

    from ..codec import decode, encode
    from ..nn.models import default_model
    from . import metrics

    paths = ["default", WEIGHTED12, PLAIN12, BASELINE, *[f"{m}-8bit" for m in models if m != "jpeg"], *references]
    coders = {p: _coder(p, qualities) for p in paths}
    total = len(planes) * sum(len(s) for s, _ in coders.values())
    points = []
    with tqdm(total=total, disable=not progress, desc="bench", file=sys.stderr) as bar:
        for name, plane in planes:
            rng = metrics.value_range(plane)
            for path, (settings, code) in coders.items():
                for s in settings:
                    data, out = code(plane, s)
                    points.append({"codec": path, "image": name, "setting": s,
                                   "bpp": len(data) * 8 / plane.size, "psnr": metrics.psnr(plane, out, rng)})
                    bar.update(1)
    ceilings = {}
    for name, plane in planes:  # quality 100 of the default path
        out = decode(encode(plane, quality=100))
        ceilings[name] = metrics.psnr(plane, out, metrics.value_range(plane))
    return {
        "dataset": dataset, "date": datetime.date.today().isoformat(), "planes": [n for n, _ in planes],
        "qualities": list(qualities),
        "default_model": default_model(12),
        "paths": paths, "points": points, "bd": _bd(points, paths, [n for n, _ in planes]),
        "ceiling_q100": {"median": float(np.median(list(ceilings.values()))), "min": float(min(ceilings.values())),
                         "lossless": sum(np.isinf(v) for v in ceilings.values()), "per_plane": ceilings},
        "deficit": _worst_deficit(points, [n for n, _ in planes]),
        "command": " ".join(["cnnjpeg", *sys.argv[1:]]) if sys.argv[0].endswith("cnnjpeg") else "",
    }


def _series(points, codec, image):
    pts = sorted((p for p in points if p["codec"] == codec and p["image"] == image), key=lambda p: p["bpp"])
    return np.array([p["bpp"] for p in pts]), np.array([p["psnr"] for p in pts])


def _bd(points, paths, names) -> dict:
    out = {}
    for path in paths:
        if path == BASELINE:
            continue
        rates, gains = [], []
        for n in names:
            ra, da = _series(points, BASELINE, n)
            rb, db = _series(points, path, n)
            rates.append(bd_rate(ra, da, rb, db))
            gains.append(bd_psnr(ra, da, rb, db))
        rates, gains = np.array(rates), np.array(gains)
        out[path] = {"bd_rate": float(np.nanmean(rates)) if np.isfinite(rates).any() else float("nan"),
                     "bd_psnr": float(np.nanmean(gains)) if np.isfinite(gains).any() else float("nan"),
                     "planes": int(np.isfinite(rates).sum())}
    return out


def _worst_deficit(points, names) -> dict:
    """Per plane, the default path's PSNR minus the 8-bit path's, at each 8-bit point's bpp (interpolated
    in log-bpp where the default path covers that rate); the worst over planes and points."""
    worst, where = float("inf"), None
    for n in names:
        ra, da = _series(points, BASELINE, n)
        gap, r = deficit(ra, da, *_series(points, "default", n))
        if gap < worst:
            worst, where = gap, {"plane": n, "bpp": r}
    return {"worst_db": worst if where else float("nan"), "at": where}


def deficit(rate_a, psnr_a, rate_b, psnr_b) -> tuple[float, float]:
    """The least PSNR of curve b minus curve a at a's points (bpp ascending), b interpolated in
    log-bpp where it covers that rate, and the bpp where it occurs; (inf, nan) where it covers none."""
    worst, at = float("inf"), float("nan")
    for r, d in zip(rate_a, psnr_a):
        if rate_b[0] <= r <= rate_b[-1]:
            gap = float(np.interp(np.log(r), np.log(rate_b), psnr_b)) - d
            if gap < worst:
                worst, at = gap, float(r)
    return worst, at


def markdown(result: dict) -> str:
    """The report: BD table against the 8-bit path, ceiling and worst deficit."""
    lines = [
        "# Scientific images: 12-bit JPEG against the 8-bit path",
        "",
        f"Data: `{result['dataset']}`, {len(result['planes'])} planes (up to {MAX_PLANES_PER_FILE} per file), "
        f"{result['date']}. PSNR over each plane's own value range; BD per plane against `jpeg-8bit` "
        "(plain JPEG of the plane mapped from its min/max to 8 bits), then the mean.",
        "",
    ]
    if result.get("command"):
        lines += [f"Command: `{result['command']}`", ""]
    if result.get("default_model"):
        lines += [f"`default` is 12-bit JPEG decoded by `{result['default_model']}`, each payload arithmetic coded "
                  "where that is smaller (with the `turbojpeg` package installed; `docs/format.md`); "
                  f"`{WEIGHTED12}` is the same payload without a network (its frequency weighting above quality 60 "
                  "undone); `jpeg-12bit` is plain 12-bit JPEG (`model=\"jpeg\"`, Huffman coded, unweighted: what "
                  "any 12-bit decoder shows).", ""]
    lines += ["| path | BD-rate | BD-PSNR | planes |", "|---|---:|---:|---:|"]
    for path, v in result["bd"].items():
        lines.append(f"| `{path}` | {v['bd_rate']:+.2f} % | {v['bd_psnr']:+.3f} dB | {v['planes']} |")
    c, d = result["ceiling_q100"], result["deficit"]
    lines += [
        "",
        f"Ceiling of the default path at quality 100: median {c['median']:.2f} dB, lowest plane {c['min']:.2f} dB; "
        f"{c['lossless']} of {len(c['per_plane'])} planes come back exactly (infinite PSNR).",
        "",
        f"Worst PSNR of the default path minus the 8-bit path at equal bpp (per plane, at the 8-bit path's "
        f"qualities {', '.join(map(str, result.get('qualities', QUALITIES)))}, interpolated): {d['worst_db']:+.3f} dB"
        + (f" ({d['at']['plane']}, {d['at']['bpp']:.3f} bpp)." if d["at"] else "."),
        "",
        "References code the same 12-bit mapping of each plane: JPEG 2000 "
        f"`imagecodecs.jpeg2k_encode(level=L, bitspersample=12)`, L = {', '.join(map(str, J2K_LEVELS))}; JPEG XL "
        f"`imagecodecs.jpegxl_encode(level=L, effort=7, bitspersample=12)`, L = {', '.join(map(str, JXL_LEVELS))}.",
        "",
    ]
    return "\n".join(lines)


def run(folder: str, out_dir: str, name: str, models: list[str] | None, references,
        update_cards: bool = False, qualities: list[int] | None = None) -> dict[str, Path]:
    """Benchmark a folder of scientific TIFFs; write ``NAME.md`` and ``NAME.json`` (and, with
    ``update_cards``, the default path's figures into the 12-bit default model's card).
    ``qualities``: the JPEG paths' settings (default :data:`QUALITIES`)."""
    from ..format.container import write_atomic
    from ..nn.models import available_models, default_model, default_restore_model

    models = models or sorted({default_restore_model(), default_model()} & set(available_models()))
    refs = [r for r in REFERENCES if r in references] if references is not None else list(REFERENCES)
    qualities = sorted(set(qualities or QUALITIES))
    if not all(1 <= q <= 100 for q in qualities):
        raise CjpgError(f"qualities must be integers from 1 to 100, got {qualities}")
    result = benchmark(load_planes(folder), models, refs, dataset=str(folder), qualities=qualities)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / f"{name}.md", "json": out / f"{name}.json"}
    write_atomic(paths["report"], markdown(result).encode())
    write_atomic(paths["json"], json.dumps(result, indent=1, default=float).encode())
    if update_cards:
        _update_card(result)
    return paths


def _update_card(result: dict) -> None:
    """The default path's figures in the card of the 12-bit default model (``card["scientific"]``)."""
    from importlib import resources

    from ..format.container import write_atomic
    from ..nn.models import registry

    path = Path(str(resources.files("napari_cnnjpeg") / "weights" / "zoo.json"))
    zoo = json.loads(path.read_text())
    for entry in zoo:
        if entry["id"] == result["default_model"]:
            bd, ceiling = result["bd"]["default"], result["ceiling_q100"]
            entry["card"]["scientific"] = {
                "dataset": result["dataset"], "planes": len(result["planes"]), "date": result["date"],
                "command": result["command"], "bd_rate_vs_8bit": round(bd["bd_rate"], 2),
                "bd_psnr_vs_8bit": round(bd["bd_psnr"], 3), "ceiling_q100_median_db": round(ceiling["median"], 2),
                "ceiling_q100_min_db": round(ceiling["min"], 2), "worst_deficit_db": round(result["deficit"]["worst_db"], 3),
            }
    write_atomic(path, (json.dumps(zoo, indent=2) + "\n").encode())
    registry.cache_clear()
