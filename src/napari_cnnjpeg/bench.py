"""The benchmark: each model's rate-distortion curve against plain JPEG, WebP, AVIF and JPEG XL.

Every image is compressed by every model (``.cjpg`` files, whole-file size) and
every reference codec (raw bytes through :mod:`imagecodecs`) at each setting; bits
per pixel, PSNR and SSIM come from :mod:`napari_cnnjpeg.metrics`. Bjontegaard
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

from .bd import bd_psnr, bd_rate
from .codec import decode, encode
from .errors import CjpgError
from .metrics import bpp, psnr, ssim
from .models import BASELINE, available_models, set_threads

DEFAULT_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
REFERENCES = ("webp", "avif", "jpegxl")
#: scikit-image samples used without ``--data`` (lossless PNGs shipped with the package).
SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "immunohistochemistry")
LOSSLESS_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")
#: Decimal places of each recorded quantity, shared by the JSON and the report.
DECIMALS = {
    "bpp": 4, "psnr": 3, "ssim": 5, "encode_s": 5, "decode_s": 5,
    "bd_rate_psnr": 2, "bd_psnr": 3, "bd_rate_ssim": 2, "encode_mpx_s": 2, "decode_mpx_s": 2,
}
#: How each reference codec is called; ``level`` is the benchmark setting (10-90 by default).
REFERENCE_SETTINGS = {
    "webp": "imagecodecs.webp_encode(level=q, lossless=False, method=4)",
    "avif": "imagecodecs.avif_encode(level=q, speed=6) (libavif quality 0-100)",
    "jpegxl": "imagecodecs.jpegxl_encode(level=q, effort=7) (libjxl quality 0-100)",
}
_LUMA = np.array([0.299, 0.587, 0.114])

Codec = tuple[Callable[[np.ndarray, int], bytes], Callable[[bytes], np.ndarray]]


def _round(key: str, value: float) -> float:
    return round(float(value), DECIMALS[key])


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image, as JPEG computes it, rounded to uint8."""
    return np.clip(np.rint(rgb @ _LUMA), 0, 255).astype(np.uint8)


def _prepare(image: np.ndarray, gray: bool) -> np.ndarray:
    """A uint8 (H, W) luma image in gray mode, else a uint8 (H, W, 3) RGB image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise CjpgError(f"the benchmark takes 8-bit images, got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] in (2, 4):  # drop alpha
        image = image[..., :-1]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 3:
        return _luma(image) if gray else image
    if image.ndim == 2:
        return image if gray else np.repeat(image[..., None], 3, axis=2)
    raise CjpgError(f"the benchmark takes (H, W) or (H, W, 3) images, got shape {image.shape}")


def load_images(folder: str | os.PathLike | None = None) -> list[tuple[str, np.ndarray]]:
    """Lossless images of a folder by file stem, sorted by name; without a folder, scikit-image samples."""
    if folder is None:
        from skimage import data

        return [(name, getattr(data, name)()) for name in SAMPLE_IMAGES]
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise CjpgError(f"no such folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in LOSSLESS_SUFFIXES)
    if not paths:
        raise CjpgError(f"no lossless images ({', '.join(LOSSLESS_SUFFIXES)}) in {folder}")
    images = []
    for p in paths:
        with Image.open(p) as im:
            if im.mode not in ("L", "RGB"):
                if im.mode.startswith("I") or im.mode == "F":
                    raise CjpgError(f"{p}: the benchmark takes 8-bit images, got mode {im.mode}")
                im = im.convert("RGB")
            images.append((p.stem, np.asarray(im)))
    return images


def _model_codec(model: str) -> Codec:
    return (lambda img, q: encode(img, quality=q, model=model)), decode


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
