"""Baseline JPEG through Pillow (libjpeg-turbo): encode, decode, quantisation tables."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import CjpgError

#: Chroma subsampling names accepted by :func:`encode_jpeg`, mapped to Pillow's codes.
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
#: BT.601 luma weights, as JPEG's colour transform uses them.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
#: Largest side a baseline JPEG can hold.
MAX_SIDE = 65500


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image, as JPEG computes it, rounded to uint8."""
    return np.clip(np.rint(rgb @ LUMA_WEIGHTS), 0, 255).astype(np.uint8)


def encode_jpeg(
    plane: np.ndarray, quality: int = 75, subsampling: str = "4:2:0"
) -> bytes:
    """Encode a uint8 plane, (H, W) or (H, W, 3), as a baseline JPEG with optimised Huffman tables."""
    if plane.dtype != np.uint8 or plane.ndim not in (2, 3):
        raise CjpgError(f"JPEG planes must be uint8 (H, W) or (H, W, 3), got {plane.dtype} {plane.shape}")
    if not 1 <= int(quality) <= 100:
        raise CjpgError(f"quality must be between 1 and 100, got {quality}")
    if subsampling not in SUBSAMPLING:
        raise CjpgError(f"unknown chroma subsampling {subsampling!r}; use one of {sorted(SUBSAMPLING)}")
    h, w = plane.shape[:2]
    if min(h, w) < 1 or max(h, w) > MAX_SIDE:
        raise CjpgError(f"a JPEG plane must be 1 to {MAX_SIDE} pixels a side, got {h}x{w}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(plane)).save(
        buf, format="JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling], optimize=True
    )
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data), formats=["JPEG"])
    except Image.DecompressionBombError as exc:
        raise CjpgError(f"JPEG declares absurd dimensions: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CjpgError(f"not a readable JPEG stream: {exc}") from None
    return im


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode a JPEG stream to uint8 (H, W) or (H, W, 3)."""
    im = _open(data)
    try:
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise CjpgError(f"corrupt or truncated JPEG stream: {exc}") from None
    return arr


def quant_tables(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """The luma and chroma quantisation tables (natural order, 8x8) of a JPEG stream.

    The chroma table is None for a grayscale JPEG.
    """
    tables = getattr(_open(data), "quantization", None) or {}
    if 0 not in tables:
        raise CjpgError("the JPEG stream has no quantisation table")
    luma = np.asarray(tables[0], dtype=np.float32).reshape(8, 8)
    chroma = np.asarray(tables[1], dtype=np.float32).reshape(8, 8) if 1 in tables else None
    return luma, chroma


@lru_cache(maxsize=128)
def tables_for_quality(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's (libjpeg's) luma and chroma quantisation tables at a quality."""
    luma, chroma = quant_tables(encode_jpeg(np.zeros((8, 8, 3), np.uint8), quality))
    return luma, chroma
