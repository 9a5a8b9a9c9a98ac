"""The robustness grid: JPEGs as the encoders people use write them.

A decoder-only model restores JPEGs it did not make, so it is trained and checked on a
grid of encoders and settings (:data:`VARIANTS`) crossed with qualities
(:data:`QUALITIES`): Pillow's libjpeg at three chroma subsamplings, progressive, grey
and double compression; Google's jpegli (``pyjpegli``, an optional extra); mozjpeg's
defaults (trellis quantisation, through ``jpeglib``); and
quantisation tables other encoders use (scaled chroma, flat). Each cell is one
variant at one quality; qualities of 95 and above give very fine tables.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import CjpgError
from .jpeg import SUBSAMPLING, encode_jpeg, encode_mozjpeg, luma

#: Variant name: what it is.
VARIANTS = {
    "4:2:0": "Pillow (libjpeg-turbo), standard tables, 4:2:0",
    "4:2:2": "Pillow, standard tables, 4:2:2",
    "4:4:4": "Pillow, standard tables, 4:4:4",
    "progressive": "Pillow, progressive, 4:2:0",
    "grey": "Pillow, one grey component",
    "double": "saved twice: Pillow at quality min(q + 20, 95), then at q",
    "jpegli": "Google jpegli (pyjpegli), default settings",
    "mozjpeg": "mozjpeg 4 (through jpeglib) as cjpeg writes by default: its own tables, trellis quantisation, progressive",
    "scaled": "Annex K tables, chroma twice as coarse (as some cameras and editors scale them), 4:2:0",
    "flat": "flat tables (every step the geometric mean of Annex K's, scaled by quality), 4:4:4",
}
QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 100)
#: Table tunings (see :func:`~napari_cnnjpeg.format.jpeg.tables_for_quality`) of the table variants.
_TABLES = {"scaled": {"flatness": 1.0, "chroma_scale": 2.0}, "flat": {"flatness": 0.0, "chroma_scale": 1.0}}


def available_variants() -> list[str]:
    """The variants this installation can write (``jpegli`` needs ``pyjpegli``)."""
    try:
        import pyjpegli  # noqa: F401
    except ImportError:
        return [v for v in VARIANTS if v != "jpegli"]
    return list(VARIANTS)


def encode_variant(image: np.ndarray, variant: str, quality: int) -> bytes:
    """A uint8 RGB (H, W, 3) or grey (H, W) image as ``variant`` writes it at ``quality``.

    ``grey`` codes the image's luma; ``jpegli`` codes a grey image as RGB (it takes RGB only).
    """
    if variant not in VARIANTS:
        raise CjpgError(f"unknown JPEG variant {variant!r}; use one of {', '.join(VARIANTS)}")
    quality = int(quality)
    if variant in ("4:2:0", "4:2:2", "4:4:4"):
        return encode_jpeg(image, quality, variant)
    if variant == "grey":
        return encode_jpeg(image if image.ndim == 2 else luma(image), quality)
    if variant == "double":
        from .jpeg import decode_jpeg

        first = decode_jpeg(encode_jpeg(image, min(quality + 20, 95), "4:2:0"))
        return encode_jpeg(first, quality, "4:2:0")
    if variant == "scaled":
        return encode_jpeg(image, quality, "4:2:0", _TABLES["scaled"])
    if variant == "flat":
        return encode_jpeg(image, quality, "4:4:4", _TABLES["flat"])
    if variant == "mozjpeg":
        return encode_mozjpeg(image, quality)
    if variant == "progressive":
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(
            buf, format="JPEG", quality=quality, subsampling=SUBSAMPLING["4:2:0"], progressive=True, optimize=True)
        return buf.getvalue()
    import pyjpegli

    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else np.ascontiguousarray(image)
    return bytes(pyjpegli.encode(rgb.tobytes(), rgb.shape[1], rgb.shape[0], quality))

