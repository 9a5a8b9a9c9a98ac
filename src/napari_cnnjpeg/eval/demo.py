"""The demo: plain JPEG against each model at matched bits per pixel, as a table."""

from __future__ import annotations

import numpy as np

from ..codec import decode, encode
from ..errors import CjpgError
from ..nn.models import BASELINE, available_models, payload_bits
from .metrics import SSIM_MIN_SIDE, bpp, psnr, ssim, value_range

#: Quality of the model files in the demo (plain JPEG is matched to their bits per pixel).
DEFAULT_QUALITY = 30


def _row(name: str, fmt: str, quality: int, image: np.ndarray, data: bytes) -> dict:
    """PSNR and SSIM over the image's own value range (:func:`metrics.value_range`; 255 for uint8)."""
    out, rng = decode(data), value_range(image)
    return {
        "image": name, "format": fmt, "quality": quality, "bytes": len(data), "bpp": bpp(len(data), image.shape),
        "psnr": psnr(image, out, rng), "ssim": float(ssim(image, out, data_range_=rng)),
    }


def jpeg_at_bpp(image: np.ndarray, target_bpp: float, bits: int | None = None) -> tuple[int, bytes]:
    """The plain JPEG quality (1-100) whose file size in bpp is nearest ``target_bpp``, and its bytes.

    ``bits`` as :func:`napari_cnnjpeg.encode` (8 forces the 8-bit path for 16-bit data).
    """
    cache: dict[int, bytes] = {}

    def size(q: int) -> float:
        if q not in cache:
            cache[q] = encode(image, quality=q, model=BASELINE, bits=bits)
        return bpp(len(cache[q]), image.shape)

    lo, hi = 1, 100
    while hi - lo > 1:  # file size grows with quality
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) < target_bpp else (lo, mid)
    best = min((lo, hi), key=lambda q: abs(size(q) - target_bpp))
    return best, cache[best]


def demo_rows(
    name: str, image: np.ndarray, *, quality: int = DEFAULT_QUALITY, models: list[str] | None = None
) -> list[tuple[dict, bytes]]:
    """Rows of the demo table for one image, with the file bytes of each row.

    Each model is encoded at ``quality``; plain JPEG is shown at the quality whose
    bits per pixel match the model's file (the reference result's comparison), at the
    model's payload precision. Default models: those for 8-bit payloads, and for data of
    more than 8 bits also those for 12-bit ones. Without trained models, plain JPEG alone
    at ``quality``.
    """
    if min(image.shape[:2]) < SSIM_MIN_SIDE:
        raise CjpgError(f"image {name} is {image.shape[0]}x{image.shape[1]} pixels: the demo's SSIM needs at least "
                        f"{SSIM_MIN_SIDE} a side")
    models = [m for m in (models or available_models(8 if image.dtype == np.uint8 else None)) if m != BASELINE]
    if not models:
        data = encode(image, quality=quality, model=BASELINE)
        return [(_row(name, BASELINE, quality, image, data), data)]
    rows = []
    for m in models:
        data = encode(image, quality=quality, model=m)
        row = _row(name, m, quality, image, data)
        q, jpeg = jpeg_at_bpp(image, row["bpp"], payload_bits(m))
        rows += [(_row(name, BASELINE, q, image, jpeg), jpeg), (row, data)]
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table of demo rows: image, format, quality, bpp, PSNR, SSIM."""
    lines = ["| image | format | quality | bpp | PSNR (dB) | SSIM |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['format']} | {r['quality']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['ssim']:.4f} |"
        )
    return "\n".join(lines)
