"""The benchmark: each model's rate-distortion curve against plain JPEG, WebP, AVIF and JPEG XL.

Every image is compressed by every model (``.cjpg`` files, whole-file size) and
every reference codec (raw bytes through :mod:`imagecodecs`) at each setting; bits
per pixel, PSNR and SSIM come from :mod:`napari_cnnjpeg.eval.metrics`. Bjontegaard
deltas against plain JPEG (model ``"jpeg"``) are computed per image and averaged.

Numbers are rounded once, when recorded (:data:`DECIMALS`); the JSON holds those
values and the report prints them with the same number of decimals, so the two agree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..codec import decode, encode
from ..errors import CjpgError
from ..format.jpeg import luma
from ..nn.models import BASELINE, available_models, set_threads
from .bd import bd_psnr, bd_rate
from .metrics import SSIM_MIN_SIDE, bpp, psnr, ssim

DEFAULT_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
#: Settings of the sanity sweep (models only, added to the measured settings): the whole
#: quality range up to 100, where each model's PSNR and bpp must never fall.
SANITY_QUALITIES = (1, 2, 3, 5, 7, 15, 25, 35, 45, 55, 65, 75, 85, 92, 94, 95, 96, 97, 98, 99, 100)
#: PSNR may dip this much (dB) from one setting to a higher one before the sweep flags it.
MONOTONE_TOLERANCE = 0.05
REFERENCES = ("webp", "avif", "jpegxl")
#: scikit-image samples used without ``--data`` (lossless PNGs shipped with the package).
SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "immunohistochemistry")
LOSSLESS_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")
#: Decimal places of each recorded quantity, shared by the JSON and the report.
DECIMALS = {
    "bpp": 4, "psnr": 3, "ssim": 5, "encode_s": 5, "decode_s": 5,
    "bd_rate_psnr": 2, "bd_psnr": 3, "bd_rate_ssim": 2, "encode_mpx_s": 2, "decode_mpx_s": 2,
    "d_psnr": 3, "d_ssim": 4, "psnr_view": 3, "ssim_view": 5, "bd_rate_psnr_view": 2, "bd_psnr_view": 3,
    "bd_rate_ssim_view": 2, "worst_fall_db": 3,
}
#: How each reference codec is called; ``level`` is the benchmark setting (10-90 by default).
REFERENCE_SETTINGS = {
    "webp": "imagecodecs.webp_encode(level=q, lossless=False, method=4)",
    "avif": "imagecodecs.avif_encode(level=q, speed=6) (libavif quality 0-100)",
    "jpegxl": "imagecodecs.jpegxl_encode(level=q, effort=7) (libjxl quality 0-100)",
}
#: The reference result this project set out to beat (quoted from it, not measured here):
#: two photos, plain JPEG vs CNN at equal bits per pixel.
REFERENCE_RESULT = [
    {"image": "photo 1", "jpeg_psnr": 27.65, "jpeg_ssim": 0.7733, "cnn_psnr": 29.52, "cnn_ssim": 0.8413},
    {"image": "photo 2", "jpeg_psnr": 29.48, "jpeg_ssim": 0.9234, "cnn_psnr": 32.43, "cnn_ssim": 0.9460},
]

Codec = tuple[Callable[[np.ndarray, int], bytes], Callable[[bytes], np.ndarray]]


def _round(key: str, value: float) -> float:
    return round(float(value), DECIMALS[key])


def prepare(image: np.ndarray, gray: bool) -> np.ndarray:
    """A uint8 (H, W) luma image in gray mode, else a uint8 (H, W, 3) RGB image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise CjpgError(f"the benchmark takes 8-bit images, got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] in (2, 4):  # drop alpha
        image = image[..., :-1]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 3:
        return luma(image) if gray else image
    if image.ndim == 2:
        return image if gray else np.repeat(image[..., None], 3, axis=2)
    raise CjpgError(f"the benchmark takes (H, W) or (H, W, 3) images, got shape {image.shape}")


def load_images(folder: str | os.PathLike | None = None) -> list[tuple[str, np.ndarray]]:
    """Lossless images of a folder by file stem, sorted by name; without a folder, scikit-image samples."""
    if folder is None:
        from skimage import data

        return [(name, getattr(data, name)()) for name in SAMPLE_IMAGES]
    folder = Path(folder)
    if not folder.is_dir():
        raise CjpgError(f"no such folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in LOSSLESS_SUFFIXES and p.is_file())
    if not paths:
        raise CjpgError(f"no lossless images ({', '.join(LOSSLESS_SUFFIXES)}) in {folder}")
    return [(p.stem, _read_8bit(p)) for p in paths]


def _read_8bit(path: Path) -> np.ndarray:
    """An 8-bit image file as L or RGB pixels; an unreadable one is a :class:`CjpgError` naming it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode.startswith("I") or im.mode == "F":
                raise CjpgError(f"{path}: the benchmark takes 8-bit images, got mode {im.mode}")
            return np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))
    except CjpgError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line naming the file
        raise CjpgError(f"cannot read image {path}: {exc}") from None


def _model_codec(model: str) -> Codec:
    return (lambda img, q: encode(img, quality=q, model=model)), decode


def _stock_view(data: bytes) -> np.ndarray:
    """A ``.cjpg``'s payload as an ordinary viewer shows it: plain JPEG decoding, no network
    (a compact model's half-size payload enlarged to full size)."""
    return decode(data, model=BASELINE)


def _reference_codec(name: str) -> Codec | str:
    """(encode, decode) of a reference codec, or why it cannot be used."""
    try:
        import imagecodecs
    except ImportError:
        return "imagecodecs is not installed"
    if name not in REFERENCES:
        raise CjpgError(f"unknown reference codec {name!r}; known: {', '.join(REFERENCES)}")
    if not getattr(getattr(imagecodecs, name.upper(), None), "available", False):
        return f"imagecodecs {imagecodecs.__version__} was built without {name}"
    if name == "webp":  # libwebp has no grayscale mode: gray images are coded as R=G=B
        def enc(img, q):
            rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
            return imagecodecs.webp_encode(rgb, level=q, lossless=False, method=4)

        return enc, imagecodecs.webp_decode
    if name == "avif":
        return (lambda img, q: imagecodecs.avif_encode(img, level=q, speed=6)), imagecodecs.avif_decode
    return (lambda img, q: imagecodecs.jpegxl_encode(img, level=q, effort=7)), imagecodecs.jpegxl_decode


def _warm_up(codec: Codec, image: np.ndarray) -> None:
    """One untimed round trip on a crop, so weight loading and library set-up are not timed."""
    enc, dec = codec
    dec(enc(np.ascontiguousarray(image[:64, :64]), 50))


def _measure(
    name: str, image: np.ndarray, codec_name: str, quality: int, codec: Codec, view: bool = False
) -> tuple[dict, float, float]:
    """One recorded point, and its unrounded encode and decode seconds.

    ``view``: also record ``psnr_view`` and ``ssim_view``, the payload as a stock viewer shows it.
    """
    enc, dec = codec
    t0 = time.perf_counter()
    data = enc(image, quality)
    t1 = time.perf_counter()
    out = np.asarray(dec(data))
    t2 = time.perf_counter()
    if out.ndim == 3 and image.ndim == 2:  # WebP decodes a gray image as R=G=B
        out = luma(out)
    point = {
        "image": name, "codec": codec_name, "setting": int(quality), "bytes": len(data),
        "bpp": _round("bpp", bpp(len(data), image.shape)), "psnr": _round("psnr", psnr(image, out)),
        "ssim": _round("ssim", ssim(image, out)),
        "encode_s": _round("encode_s", t1 - t0), "decode_s": _round("decode_s", t2 - t1),
    }
    if view:
        plain = _stock_view(data)
        point.update(psnr_view=_round("psnr_view", psnr(image, plain)), ssim_view=_round("ssim_view", ssim(image, plain)))
    return point, t1 - t0, t2 - t1


def _has_network(model: str) -> bool:
    from ..nn.models import model_info

    info = model_info(model)
    return bool(info.encoder or info.decoder or info.downscale > 1)


def _series(points: list[dict], codec: str, image: str, view: bool = False) -> dict[str, np.ndarray]:
    """One codec's curve on one image, by setting; ``view``: the stock-viewer PSNR and SSIM
    (a model without networks is its own stock view)."""
    pts = sorted((p for p in points if p["codec"] == codec and p["image"] == image), key=lambda p: p["setting"])
    keys = {"setting": "setting", "bpp": "bpp", "psnr": "psnr", "ssim": "ssim"}
    if view:
        keys.update(psnr="psnr_view", ssim="ssim_view")
    return {k: np.array([p.get(src, p[k]) for p in pts], np.float64) for k, src in keys.items()}


def _bd_table(points: list[dict], codecs: list[str], names: list[str], view: bool = False) -> dict:
    """Per-image Bjontegaard deltas of each codec against plain JPEG, and their mean over images.

    ``view``: the deltas of the codecs' stock views (payload decoded with no network).
    """
    out = {}
    for codec in codecs:
        if codec == BASELINE:
            continue
        raw, spans = {}, []  # spans: the bpp range both curves cover, where BD-PSNR is measured
        for name in names:
            a, b = _series(points, BASELINE, name), _series(points, codec, name, view)
            spans.append((max(a["bpp"].min(), b["bpp"].min()), min(a["bpp"].max(), b["bpp"].max())))
            raw[name] = {
                "bd_rate_psnr": bd_rate(a["bpp"], a["psnr"], b["bpp"], b["psnr"]),
                "bd_psnr": bd_psnr(a["bpp"], a["psnr"], b["bpp"], b["psnr"]),
                "bd_rate_ssim": bd_rate(a["bpp"], a["ssim"], b["bpp"], b["ssim"]),
            }
        valid = [v for v in raw.values() if all(np.isfinite(x) for x in v.values())]
        out[codec] = {
            **{k: _round(k, np.mean([v[k] for v in valid])) if valid else float("nan") for k in raw[names[0]]},
            "images": len(valid),
            "common_bpp": [_round("bpp", np.mean([s[0] for s in spans])), _round("bpp", np.mean([s[1] for s in spans]))],
            "per_image": {n: {k: _round(k, x) for k, x in v.items()} for n, v in raw.items()},
        }
    return out


def _mean_curves(points: list[dict], codecs: list[str], qualities: list[int]) -> dict:
    """Each codec's mean bpp, PSNR and SSIM over the images at each setting."""
    curves = {}
    for codec in codecs:
        curves[codec] = []
        for q in qualities:
            pts = [p for p in points if p["codec"] == codec and p["setting"] == q]
            means = {k: _round(k, np.mean([p[k] for p in pts])) for k in ("bpp", "psnr", "ssim")}
            curves[codec].append({"setting": q, **means})
    return curves


def _equal_rate(points: list[dict], models: list[str], pair: list[str], quality: int) -> list[dict]:
    """Rows of the equal-rate table, per image: plain JPEG at ``quality`` sets the rate;
    each model at its measured setting nearest to that bpp, with JPEG interpolated to it."""
    rows = []
    others = [m for m in models if m != BASELINE]
    for name in pair:
        jpeg = _series(points, BASELINE, name)
        order = np.argsort(jpeg["bpp"])
        target = jpeg["bpp"][jpeg["setting"] == quality][0]
        for model in others or [BASELINE]:
            mine = [p for p in points if p["codec"] == model and p["image"] == name]
            p = min(mine, key=lambda p: (abs(p["bpp"] - target), p["setting"]))
            row = {"image": name, "codec": f"{model} q{p['setting']}", "bpp": p["bpp"], "psnr": p["psnr"],
                   "ssim": p["ssim"]}
            if model != BASELINE:
                inside = jpeg["bpp"].min() <= p["bpp"] <= jpeg["bpp"].max()
                rows.append({
                    "image": name, "codec": "jpeg (interpolated)", "bpp": p["bpp"],
                    **{k: _round(k, np.interp(p["bpp"], jpeg["bpp"][order], jpeg[k][order])) if inside else float("nan")
                       for k in ("psnr", "ssim")},
                })
            rows.append(row)
    return rows


def _gains_at_equal_rate(curves: dict, models: list[str]) -> dict:
    """Each model's mean-curve PSNR and SSIM minus plain JPEG's, interpolated to the model's bpp."""
    jpeg = curves[BASELINE]
    x = np.array([p["bpp"] for p in jpeg])
    order = np.argsort(x)
    out = {}
    for model in models:
        if model == BASELINE:
            continue
        rows = []
        for p in curves[model]:
            inside = x.min() <= p["bpp"] <= x.max()
            row = {"setting": p["setting"], "bpp": p["bpp"]}
            for k in ("psnr", "ssim"):
                ref = np.interp(p["bpp"], x[order], np.array([q[k] for q in jpeg])[order])
                row[f"d_{k}"] = _round(f"d_{k}", p[k] - ref) if inside else float("nan")
            rows.append(row)
        out[model] = rows
    return out


def _sanity(points: list[dict], models: list[str], names: list[str], qualities: list[int]) -> dict:
    """Each model over the whole quality range: mean curves, and where PSNR or bpp fell as quality rose.

    A fall is a step to a higher setting, on one image, whose PSNR is more than
    :data:`MONOTONE_TOLERANCE` below the best PSNR of a lower setting, or whose bpp is
    below the largest bpp of a lower setting.
    """
    out = {}
    for model in models:
        falls, worst = [], 0.0
        for name in names:
            s = _series(points, model, name)
            best_psnr = np.maximum.accumulate(s["psnr"])
            best_bpp = np.maximum.accumulate(s["bpp"])
            for i in range(1, len(s["setting"])):
                drop = best_psnr[i - 1] - s["psnr"][i]
                worst = max(worst, drop)
                if drop > MONOTONE_TOLERANCE or s["bpp"][i] < best_bpp[i - 1]:
                    falls.append({"image": name, "setting": int(s["setting"][i]), "psnr_fall": _round("psnr", max(0.0, drop)),
                                  "bpp_fall": _round("bpp", max(0.0, best_bpp[i - 1] - s["bpp"][i]))})
        curve = _mean_curves(points, [model], qualities)[model]
        for p in curve:
            pts = [x for x in points if x["codec"] == model and x["setting"] == p["setting"]]
            p["psnr_view"] = _round("psnr_view", np.mean([x.get("psnr_view", x["psnr"]) for x in pts]))
        out[model] = {"falls": falls, "worst_fall_db": _round("worst_fall_db", worst), "curve": curve,
                      "ceiling_psnr": curve[-1]["psnr"], "ceiling_setting": curve[-1]["setting"]}
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine() -> dict:
    import imagecodecs
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {
        "platform": platform.platform(), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "imagecodecs": imagecodecs.__version__,
        "peak_rss_mib": round(rss / 2**20 if sys.platform == "darwin" else rss / 2**10, 1),
    }


def benchmark(
    images: list[tuple[str, np.ndarray]],
    qualities: Sequence[int] = DEFAULT_QUALITIES,
    models: Sequence[str] | None = None,
    *,
    gray: bool = False,
    references: Sequence[str] = REFERENCES,
    pair: Sequence[str] | None = None,
    pair_quality: int = 30,
    sanity_qualities: Sequence[int] = SANITY_QUALITIES,
    dataset: str = "images given by the caller",
    progress: bool = True,
) -> dict:
    """Measure every image at every quality with every model and reference codec.

    Parameters
    ----------
    images : list of (name, ndarray)
        Lossless uint8 images, RGB or gray (gray images are repeated to RGB, alpha dropped).
    qualities : sequence of int
        Settings 1-100: JPEG quality of the models, ``level`` of the reference codecs.
    models : sequence of str, optional
        Model ids; default: all :func:`~napari_cnnjpeg.available_models` for 8-bit payloads. Plain JPEG
        (``"jpeg"``), the anchor of the deltas, is always measured.
    gray : bool
        Convert the images to BT.601 luma (uint8) first and measure grayscale coding.
    references : sequence of str
        Reference codecs among ``"webp"``, ``"avif"``, ``"jpegxl"``; one that imagecodecs
        lacks is skipped with a note.
    pair : sequence of str, optional
        Images of the equal-rate table; default: the first two.
    pair_quality : int
        Plain JPEG quality that sets the rate of the equal-rate table (the nearest
        measured one is used); each model is shown at its setting nearest to that bpp.
    sanity_qualities : sequence of int
        More settings at which the models (not the reference codecs) are measured, for
        the sanity table over the whole range (monotone PSNR and bpp, ceiling); the
        deltas and curves use ``qualities`` only.
    dataset : str
        Description of the images for the report.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``points`` (every measurement at ``qualities``; models' points also hold the
        stock-viewer ``psnr_view`` and ``ssim_view``), ``curves`` (means over images per
        setting), ``bd`` and ``bd_view`` (deltas against plain JPEG, of the models'
        decoded output and of their payloads in a stock viewer), ``sanity`` (each model
        over ``qualities`` and ``sanity_qualities``), ``equal_rate``, ``speed``,
        ``machine``, the settings and ``notes``; JSON-ready apart from NaN/inf values.
    """
    from tqdm import tqdm

    from ..nn.models import model_info

    if not images:
        raise CjpgError("no images to benchmark")
    qualities = sorted({int(q) for q in qualities})
    extra = sorted({int(q) for q in sanity_qualities} - set(qualities))
    if not qualities or not all(1 <= q <= 100 for q in qualities + extra):
        raise CjpgError(f"qualities must be integers from 1 to 100, got {qualities + extra}")
    models = list(dict.fromkeys([BASELINE, *(models or available_models(8))]))
    for m in models:
        model_info(m)
    prepared = [(name, prepare(img, gray)) for name, img in images]
    if small := [f"{n} ({im.shape[0]}x{im.shape[1]})" for n, im in prepared if min(im.shape[:2]) < SSIM_MIN_SIDE]:
        raise CjpgError(f"images of fewer than {SSIM_MIN_SIDE} pixels a side cannot be measured (SSIM): "
                        f"{', '.join(small)}")
    names = [name for name, _ in prepared]
    if len(set(names)) != len(names):
        raise CjpgError(f"image names must be unique, got {names}")
    pair = list(pair or names[:2])
    if missing := [p for p in pair if p not in names]:
        raise CjpgError(f"--pair images {missing} are not among {names}")
    pair_quality = min(qualities, key=lambda q: (abs(q - pair_quality), q))

    codecs: dict[str, Codec] = {m: _model_codec(m) for m in models}
    notes = []
    for ref in dict.fromkeys(references):
        codec = _reference_codec(ref)
        if isinstance(codec, str):
            notes.append(f"{ref} skipped: {codec}")
            continue
        try:
            _warm_up(codec, prepared[0][1])
        except Exception as exc:  # noqa: BLE001 - a broken optional codec is skipped, not fatal
            notes.append(f"{ref} skipped: {type(exc).__name__}: {exc}")
            continue
        codecs[ref] = codec
    for m in models:
        _warm_up(codecs[m], prepared[0][1])

    points, sanity_points = [], []
    seconds, megapixels = {c: [0.0, 0.0] for c in codecs}, {c: 0.0 for c in codecs}
    total = len(prepared) * (len(codecs) * len(qualities) + len(models) * len(extra))
    with tqdm(total=total, desc="bench", unit="pt", disable=not progress) as bar:
        for name, image in prepared:
            for codec_name, codec in codecs.items():
                bar.set_postfix_str(f"{name} {codec_name}")
                view = codec_name in models and _has_network(codec_name)
                for q in qualities:
                    point, t_enc, t_dec = _measure(name, image, codec_name, q, codec, view)
                    points.append(point)
                    seconds[codec_name][0] += t_enc
                    seconds[codec_name][1] += t_dec
                    megapixels[codec_name] += image.shape[0] * image.shape[1] / 1e6
                    bar.update()
                for q in extra if codec_name in models else ():
                    sanity_points.append(_measure(name, image, codec_name, q, codec, view)[0])
                    bar.update()

    curves = _mean_curves(points, list(codecs), qualities)
    return {
        "dataset": dataset, "images": [{"name": n, "shape": list(im.shape)} for n, im in prepared],
        "mode": "gray" if gray else "rgb", "qualities": qualities, "models": models,
        "references": [c for c in codecs if c not in models],
        "reference_settings": {c: REFERENCE_SETTINGS[c] for c in codecs if c not in models},
        "notes": notes, "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": _machine(),
        "decimals": DECIMALS, "points": points, "curves": curves, "gains": _gains_at_equal_rate(curves, models),
        "bd": _bd_table(points, list(codecs), names),
        "bd_view": _bd_table(points, models, names, view=True),
        "sanity_qualities": extra,
        "sanity": _sanity(points + sanity_points, models, names, sorted(qualities + extra)),
        "sanity_points": sanity_points,
        "equal_rate": {
            "images": pair, "quality": pair_quality, "rows": _equal_rate(points, models, pair, pair_quality),
        },
        "speed": {
            c: {
                "encode_mpx_s": _round("encode_mpx_s", megapixels[c] / enc),
                "decode_mpx_s": _round("decode_mpx_s", megapixels[c] / dec),
            }
            for c, (enc, dec) in seconds.items()
        },
    }


# -- report ---------------------------------------------------------------------
def _fmt(key: str, value) -> str:
    """A recorded number as the report prints it (n/a for NaN)."""
    if value is None or np.isnan(value):
        return "n/a"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    sign = "+" if key.startswith(("bd_", "d_")) else ""
    return f"{value:{sign}.{DECIMALS[key]}f}"


def _table(header: list[str], rows: list[list[str]], text: int = 1) -> str:
    """A pipe table; the first ``text`` columns left-aligned, the numbers right-aligned."""
    rule = "|" + "|".join("---" if i < text else "---:" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _json_safe(obj):
    """NaN and inf as null (strict JSON)."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _markdown(result: dict, name: str) -> str:
    m, n = result["machine"], len(result["images"])
    shapes = sorted({"x".join(map(str, i["shape"])) for i in result["images"]})
    refs = [f"`{c}`: {s}" for c, s in result["reference_settings"].items()]
    lines = [
        "# cnnjpeg benchmark", "",
        f"- Date: {result['date']}",
        f"- Command: `{result['command']}`",
        f"- Data set: {result['dataset']}: {n} images ({', '.join(shapes)}), "
        f"{'grayscale (BT.601 luma, uint8)' if result['mode'] == 'gray' else 'RGB uint8'}",
        f"- Settings: {', '.join(map(str, result['qualities']))} "
        "(JPEG quality of the models, `level` of the reference codecs)",
        f"- Models: {', '.join(result['models'])} "
        "(`.cjpg` whole-file bytes; plain JPEG is `jpeg`: Pillow, 4:2:0, optimize, baseline; `jpeg-tuned`: "
        "quantisation tables tuned for PSNR and mozjpeg's trellis quantisation, no network; the other models' "
        "payloads are progressive where that is smaller, by mozjpeg's scans or, for models with `trellis`, "
        "mozjpeg's encoder)",
        f"- Reference codecs (raw encoded bytes): {'; '.join(refs) or 'none'}",
        *[f"- Note: {note}" for note in result["notes"]],
        f"- Machine: {m['platform']}, {m['cpu']}, {m['cpu_count']} CPUs; Python {m['python']}, "
        f"torch {m['torch']} (torch threads: {m['torch_threads']}), imagecodecs {m['imagecodecs']}",
        f"- Peak resident memory: {m['peak_rss_mib']} MiB",
        "- Metrics: `napari_cnnjpeg.eval.metrics` (PSNR over all channels, SSIM Gaussian sigma 1.5, bpp of the whole file)",
        "", "## Bjontegaard deltas against plain JPEG", "",
        "Cubic fits over the overlapping range, per image, then the mean over the images where all three "
        "deltas exist. Negative BD-rate: fewer bits for the same quality. The last column is the bpp range "
        "that the codec's curve and plain JPEG's both cover (mean over the images): a codec whose curve "
        "covers only part of JPEG's range is compared over that part only.", "",
        _table(
            ["codec", "BD-rate PSNR (%)", "BD-PSNR (dB)", "BD-rate SSIM (%)", "images", "common bpp"],
            [[c, *(_fmt(k, v[k]) for k in ("bd_rate_psnr", "bd_psnr", "bd_rate_ssim")), str(v["images"]),
              f"{_fmt('bpp', v['common_bpp'][0])}-{_fmt('bpp', v['common_bpp'][1])}"]
             for c, v in result["bd"].items()],
        ),
        "", "## Stock viewer", "",
        "What an ordinary image viewer (no network) shows of each model's payload: the same files, decoded "
        "as plain JPEG (a compact model's half-size payload enlarged with the package's bicubic filter), "
        "against plain JPEG at the same bpp. A model without networks is its own stock view.", "",
        _table(
            ["model", "stock viewer shows", "BD-rate PSNR (%)", "BD-PSNR (dB)", "BD-rate SSIM (%)", "images"],
            [[c, _stock_viewer_text(c), *(_fmt(k, v[k]) for k in ("bd_rate_psnr", "bd_psnr", "bd_rate_ssim")),
              str(v["images"])] for c, v in result["bd_view"].items()],
            text=2,
        ),
        "", "## Whole quality range (sanity)", "",
        f"Each model at settings {', '.join(map(str, sorted(result['qualities'] + result['sanity_qualities'])))}. "
        f"A fall is a step up in quality, on one image, whose PSNR is more than {MONOTONE_TOLERANCE} dB below "
        "the best of the lower settings, or whose bpp is below theirs. A model codes qualities outside its "
        "range at the range's nearest end (its ceiling is the quality where PSNR stops rising).", "",
        _table(
            ["model", "quality range", "falls", "worst PSNR dip (dB)", "PSNR at top (dB)", "bpp at top"],
            [[c, "{}-{}".format(*_quality_range(c)), str(len(v["falls"])), _fmt("worst_fall_db", v["worst_fall_db"]),
              _fmt("psnr", v["ceiling_psnr"]), _fmt("bpp", v["curve"][-1]["bpp"])]
             for c, v in result["sanity"].items()],
        ),
        "", "Mean over the images at each setting (PSNR of the decoded output, and of the payload in a stock viewer):", "",
        _table(
            ["model", "setting", "bpp", "PSNR (dB)", "stock viewer PSNR (dB)"],
            [[c, str(p["setting"]), _fmt("bpp", p["bpp"]), _fmt("psnr", p["psnr"]), _fmt("psnr_view", p["psnr_view"])]
             for c, v in result["sanity"].items() for p in v["curve"]],
        ),
        "", "## Equal-rate comparison", "",
        f"Plain JPEG at quality {result['equal_rate']['quality']} sets the rate: each model is shown at its "
        "measured setting whose bpp is nearest to JPEG's there, and plain JPEG's PSNR and SSIM are interpolated "
        "linearly in bpp to the model's bpp (n/a outside JPEG's measured range)."
        + (" No model but plain JPEG was measured, so it stands alone." if result["models"] == [BASELINE] else ""), "",
        _table(
            ["image", "codec", "bpp", "PSNR (dB)", "SSIM"],
            [[r["image"], r["codec"], *(_fmt(k, r[k]) for k in ("bpp", "psnr", "ssim"))]
             for r in result["equal_rate"]["rows"]],
            text=2,
        ),
        "", "The reference result (quoted from it, not measured here; its two photos are not Kodak images):", "",
        _table(
            ["image", "JPEG PSNR (dB)", "JPEG SSIM", "CNN PSNR (dB)", "CNN SSIM"],
            [[r["image"], f"{r['jpeg_psnr']:.2f}", f"{r['jpeg_ssim']:.4f}", f"{r['cnn_psnr']:.2f}",
              f"{r['cnn_ssim']:.4f}"] for r in REFERENCE_RESULT],
        ),
        "", "## Gain over plain JPEG at equal bpp, per setting", "",
        "Mean curves: each model's PSNR and SSIM minus plain JPEG's interpolated to the model's bpp "
        "(n/a outside JPEG's measured range).", "",
        _table(
            ["model", "setting", "bpp", "ΔPSNR (dB)", "ΔSSIM"],
            [[m, str(r["setting"]), _fmt("bpp", r["bpp"]), _fmt("d_psnr", r["d_psnr"]), _fmt("d_ssim", r["d_ssim"])]
             for m, rows in result["gains"].items() for r in rows],
        ),
        "", "## Mean rate-distortion points", "", f"Means over the {n} images at each setting.", "",
        f"![rate-distortion]({name}.png)", "",
        _table(
            ["codec", "setting", "bpp", "PSNR (dB)", "SSIM"],
            [[c, str(p["setting"]), *(_fmt(k, p[k]) for k in ("bpp", "psnr", "ssim"))]
             for c, pts in result["curves"].items() for p in pts],
        ),
        "", "## Speed", "",
        f"Megapixels per second over the whole run (wall time, metrics excluded); models ran with "
        f"torch threads: {m['torch_threads']}; reference codecs with their libraries' default threading.", "",
        _table(
            ["codec", "encode (MP/s)", "decode (MP/s)"],
            [[c, _fmt("encode_mpx_s", v["encode_mpx_s"]), _fmt("decode_mpx_s", v["decode_mpx_s"])]
             for c, v in result["speed"].items()],
        ),
        "", f"Every point: `{name}.json`.", "",
    ]
    return "\n".join(lines)


def _stock_viewer_text(model: str) -> str:
    from ..nn.models import model_info

    return model_info(model).stock_viewer


def _quality_range(model: str) -> tuple[int, int]:
    from ..nn.models import model_info

    return model_info(model).quality_range


def _plot(result: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for codec, pts in result["curves"].items():
        style = "-" if codec in result["models"] else "--"
        x = [p["bpp"] for p in pts]
        for ax, key in zip(axes, ("psnr", "ssim")):
            ax.plot(x, [p[key] for p in pts], style, marker="o", markersize=3, label=codec)
    for ax, label in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set(xlabel="bits per pixel", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{result['dataset']}: mean over {len(result['images'])} images ({result['mode']})")
    fig.savefig(path, dpi=120)


def write_report(result: dict, out_dir: str | os.PathLike, name: str = "report") -> dict[str, Path]:
    """Write ``<name>.md`` (the report), ``<name>.json`` (every point) and ``<name>.png``
    (the rate-distortion plot) for a :func:`benchmark` result.

    Returns
    -------
    dict
        Paths by kind: ``"report"``, ``"json"``, ``"plot"``.
    """
    from ..format.container import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / f"{name}.md", "json": out / f"{name}.json", "plot": out / f"{name}.png"}
    write_atomic(paths["json"], json.dumps(_json_safe(result), indent=1, allow_nan=False).encode())
    write_atomic(paths["report"], _markdown(result, name).encode())
    if name == "benchmarks":  # the speed and restore tools' figures stay in the main report
        from .report_sections import update_report

        update_report(paths["report"])
    _plot(result, paths["plot"])
    return paths


def update_cards(result: dict, path: str | os.PathLike | None = None) -> None:
    """Record a run's deltas against plain JPEG in the model cards of ``weights/zoo.json``."""
    from importlib import resources

    from ..format.container import write_atomic
    from ..nn.models import registry

    path = Path(path or str(resources.files("napari_cnnjpeg") / "weights" / "zoo.json"))
    zoo = json.loads(path.read_text())
    for entry in zoo:
        if entry["id"] in result["bd"]:
            bd = result["bd"][entry["id"]]
            entry["card"]["kodak"] = {
                "dataset": result["dataset"], "qualities": result["qualities"], "date": result["date"],
                "command": result["command"], **{k: bd[k] for k in ("bd_rate_psnr", "bd_psnr", "bd_rate_ssim", "common_bpp")},
                **{f"{k}_view": result["bd_view"][entry["id"]][k] for k in ("bd_rate_psnr", "bd_psnr", "bd_rate_ssim")},
                "psnr_at_100": result["sanity"][entry["id"]]["ceiling_psnr"]
                if result["sanity"][entry["id"]]["ceiling_setting"] == 100 else None,
                "quality_falls": len(result["sanity"][entry["id"]]["falls"]),
                "decode_mpx_s": result["speed"][entry["id"]]["decode_mpx_s"],
                "encode_mpx_s": result["speed"][entry["id"]]["encode_mpx_s"],
            }
    write_atomic(path, (json.dumps(_json_safe(zoo), indent=2) + "\n").encode())
    registry.cache_clear()


# -- command line -----------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``bench`` command."""
    parser.add_argument("--data", default=None, help="folder of lossless images (default: scikit-image samples)")
    parser.add_argument("--qualities", type=int, nargs="+", default=None,
                        help="settings 1-100 (default: 10-90 in steps of 10; for folders of 12/16-bit TIFFs, "
                             "also 95)")
    parser.add_argument("--models", nargs="+", default=None, help="model ids (default: all installed)")
    parser.add_argument("--references", nargs="*", default=None,
                        help=f"reference codecs (default: all): {', '.join(REFERENCES)}; for folders of 12/16-bit "
                             "TIFFs: jpeg2000-12bit, jpegxl-12bit")
    parser.add_argument("--gray", action="store_true", help="benchmark grayscale coding of the images' luma")
    parser.add_argument("--out", default="bench-out", help="folder of the report, its JSON and its plot")
    parser.add_argument("--name", default="report", help="file name of NAME.md, NAME.json and NAME.png")
    parser.add_argument("--pair", nargs=2, default=None, metavar="NAME",
                        help="images (file stems) of the equal-rate table (default: the first two)")
    parser.add_argument("--pair-quality", type=int, default=30, help="plain-JPEG quality that sets the rate of the equal-rate table")
    parser.add_argument("--sanity-qualities", type=int, nargs="*", default=list(SANITY_QUALITIES),
                        help="more settings for the models' whole-range sanity table (default: 1-100 in steps)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--speed", action="store_true",
                        help="speed benchmark instead: MP/s per model and device, time per stage, network alone "
                             "(writes NAME.md/json; NAME defaults to benchmarks-speed)")
    parser.add_argument("--megapixels", type=float, default=12.0, help="with --speed: size of the large test photo")
    parser.add_argument("--restore", action="store_true",
                        help="restoring ordinary JPEGs instead: the published protocol (q10-40, colour and grey), "
                             "the robustness grid of JPEG variants, and speed, for decoder-only models (writes "
                             "NAME.md/json; NAME defaults to benchmarks-restore)")
    parser.add_argument("--grid-qualities", type=int, nargs="+", default=None,
                        help="with --restore: the grid's qualities (default: 5-100 in 13 steps)")
    parser.add_argument("--grid-crop", type=int, default=384, help="with --restore: side of the grid's centre crops")
    parser.add_argument("--large-megapixels", type=float, default=24.0,
                        help="with --restore: size of the large JPEG restored in a fresh process (time, peak memory)")
    parser.add_argument("--update-cards", action="store_true",
                        help="write each model's deltas into its model card (run on Kodak; on a folder of "
                             "12/16-bit TIFFs, the 12-bit default model's figures)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed ``bench`` options; prints the deltas and the written paths."""
    set_threads(args.threads)
    _report_folder(args.out)
    if args.speed:
        from . import bench_speed

        name = "benchmarks-speed" if args.name == "report" else args.name
        result = bench_speed.run(args.models, quality=75, megapixels=args.megapixels, out=args.out, name=name,
                                 command="cnnjpeg " + " ".join(sys.argv[1:]))
        print(bench_speed.markdown(result))
        return 0
    if args.restore:
        from . import bench_restore

        name = "benchmarks-restore" if args.name == "report" else args.name
        for path in bench_restore.run(args.data, args.out, name, args.models, args.grid_qualities,
                                      args.grid_crop, args.large_megapixels).values():
            print(path)
        return 0
    from . import bench_scientific

    if bench_scientific.is_scientific_folder(args.data):  # 12/16-bit or float TIFFs
        _check_references(args.references, bench_scientific.REFERENCES, "folders of 12/16-bit TIFFs")
        _note_skipped(args.data, bench_scientific.TIFF_SUFFIXES)
        for path in bench_scientific.run(args.data, args.out, args.name, args.models, args.references,
                                         args.update_cards, args.qualities).values():
            print(path)
        return 0
    if args.references is None:
        args.references = list(REFERENCES)
    _check_references(args.references, REFERENCES, "8-bit images")
    images = load_images(args.data)
    _note_skipped(args.data, LOSSLESS_SUFFIXES)
    result = benchmark(
        images, args.qualities or DEFAULT_QUALITIES, args.models, gray=args.gray, references=args.references,
        pair=args.pair, pair_quality=args.pair_quality, sanity_qualities=args.sanity_qualities, dataset=str(args.data) if args.data else "scikit-image samples",
    )
    paths = write_report(result, args.out, args.name)
    if args.update_cards:
        update_cards(result)
    for codec, v in result["bd"].items():
        view = result["bd_view"].get(codec)
        print(f"{codec}: BD-rate {_fmt('bd_rate_psnr', v['bd_rate_psnr'])} % (PSNR), "
              f"{_fmt('bd_rate_ssim', v['bd_rate_ssim'])} % (SSIM), BD-PSNR {_fmt('bd_psnr', v['bd_psnr'])} dB"
              + (f"; stock viewer {_fmt('bd_psnr', view['bd_psnr'])} dB" if view else "")
              + ("" if v["images"] else " (no image where its curve and JPEG's share a bpp range: measure more "
                 "qualities)"))
    for path in paths.values():
        print(path)
    return 0


def _report_folder(out: str) -> None:
    """Make the report's folder before anything is measured, so that a bad ``--out`` fails at once."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CjpgError(f"--out {out} is a file (or lies under one); name a folder for the report") from None


def _check_references(names: Sequence[str] | None, known: Sequence[str], data: str) -> None:
    """Refuse reference codecs that the benchmark of ``data`` does not know."""
    if unknown := sorted(set(names or ()) - set(known)):
        raise CjpgError(f"unknown reference codecs {unknown} for {data}; use {', '.join(known)}")


def _note_skipped(folder: str | None, suffixes: Sequence[str]) -> None:
    """Say which files of the data folder the benchmark leaves out (other suffixes than ``suffixes``)."""
    files = Path(folder).iterdir() if folder else ()
    if skipped := sorted(p.name for p in files if p.is_file() and p.suffix.lower() not in suffixes):
        print(f"cnnjpeg: note: left out {len(skipped)} file(s) of other types: {', '.join(skipped)}", file=sys.stderr)
