"""Dead-zone quantisation of 12-bit grey payloads, in front of a standard JPEG encoder.

libjpeg rounds each DCT coefficient to the nearest multiple of its step. For the
peaked (Laplacian) coefficients of images, rounding with a smaller offset,
``floor(|c| / T + rounding)`` with ``rounding`` below 0.5, zeroes the many coefficients
just past half a step, which cost most of the bits, and puts each level nearer the mean
of the values it stands for: fewer bytes at equal PSNR (a dead zone, as video encoders
quantise). No 12-bit encoder offers it, so each whole 8x8 block's AC coefficients are
quantised here with the encoder's own table and turned back into samples; the encoder
then quantises them to those same levels. Steps finer than :data:`MIN_STEP` are left as
they are (rounding the samples could move a coefficient across a level), and so is the
block mean (DC). The payload stays an ordinary JPEG that any 12-bit decoder reads.
Pure numpy.
"""

from __future__ import annotations

import numpy as np

from .weighting import DCT2, map_blocks

#: Steps (in sample units) below which coefficients are left to the encoder's rounding.
MIN_STEP = 2.0
#: Range of rounding offsets: 0.5 is libjpeg's round-to-nearest (no dead zone).
ROUNDING_RANGE = (0.2, 0.5)


def deadzone(plane: np.ndarray, table: np.ndarray, rounding: float) -> np.ndarray:
    """A grey plane of 12-bit samples (uint16) whose whole blocks' AC coefficients are quantised
    with the JPEG's luma table ``table`` (natural order, sample units) and offset ``rounding``,
    back in samples: uint16, rounded and clipped to 0..4095."""
    steps = np.maximum(np.asarray(table, np.float32).reshape(64), 1.0)
    coarse = steps >= MIN_STEP
    coarse[0] = False  # the block mean keeps the encoder's rounding
    dct = DCT2.astype(np.float32)

    def quantise(rows: np.ndarray) -> np.ndarray:
        c = rows @ dct.T
        levels = np.sign(c) * np.floor(np.abs(c) / steps + rounding)
        return np.where(coarse, levels * steps, c) @ dct

    return np.clip(np.rint(map_blocks(plane, quantise)), 0, 4095).astype(np.uint16)
