"""Resampling of uint8 planes for compact models, which store JPEG at reduced resolution.

The encoder side shrinks a plane by an integer factor with Lanczos filtering (Pillow);
the decoder side enlarges the decoded JPEG back to the original size with bicubic
interpolation before the restoring network. Training uses the same two functions.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def reduced_size(h: int, w: int, factor: int) -> tuple[int, int]:
    """Size of an (h, w) plane stored at 1/``factor`` resolution (rounded up)."""
    return -(-h // factor), -(-w // factor)


def downscale(plane: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a uint8 (H, W) or (H, W, 3) plane by ``factor`` (Lanczos)."""
    if factor == 1:
        return plane
    h, w = reduced_size(*plane.shape[:2], factor)
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((w, h), Image.Resampling.LANCZOS))


def upscale(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Enlarge a uint8 (h, w) or (h, w, 3) plane to ``size`` = (H, W) (bicubic)."""
    if plane.shape[:2] == tuple(size):
        return plane
    h, w = size
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((w, h), Image.Resampling.BICUBIC))
