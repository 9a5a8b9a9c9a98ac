"""Frequency weighting of 12-bit grey payloads: near-flat quantisation through libjpeg's tables.

For PSNR, every DCT frequency should get the same quantisation step. libjpeg's 12-bit
encoder (through imagecodecs) takes only a quality, whose tables step the high
frequencies up to 12 times more coarsely than the low ones. Weighting each 8x8 block's
DCT coefficients by ``w = min(1, T / (flatten * max(T)))`` before the encoder, and by
``1 / w`` after the decoder, turns the effective step of frequency ``k`` into
``max(T_k, flatten * max(T))``: flat but for the coarsest ``1 - flatten`` of the steps.
The block mean (DC) may get its own weight, ``min(dc_cap, T_00 / (dc * flatten * max(T)))``:
a finer step than the rest (``dc`` below 1), since with the DC as coarse as the others the
means of a sparse plane's few bright blocks round differently from one quality to the next
and PSNR can fall as quality rises; yet never a weight above ``dc_cap``, since pulling the
block means towards 2048 is what keeps the weighted plane inside 0..4095 (a DC weight of 1
let dark, noisy blocks clip, and PSNR collapse by up to 9 dB near quality 99).
Only whole blocks on JPEG's 8x8 grid are weighted; the partial blocks at the right
and bottom edges stay as they are. A decoder that does not undo the weighting shows the
plane with its low frequencies (block means included, around JPEG's level shift)
attenuated. Pure numpy.
"""

from __future__ import annotations

import numpy as np

#: JPEG's level shift for 12-bit samples: block means are weighted around it.
CENTRE = 2048.0
#: Range of ``flatten`` a file may record.
FLATTEN_RANGE = (0.25, 1.0)
#: Range of the DC's factor and of its largest weight a file may record.
DC_RANGE = (0.05, 1.0)


def _dct_matrix() -> np.ndarray:
    k, n = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    m = np.cos(np.pi * (2 * n + 1) * k / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m


_D = _dct_matrix()


def blocks(plane: np.ndarray, step: int = 1) -> np.ndarray:
    """The whole 8x8 blocks of a grey plane on JPEG's grid, one per row: (blocks, 64), row-major
    (``step``: every step-th block down and across only)."""
    h, wd = (plane.shape[0] // 8) * 8, (plane.shape[1] // 8) * 8
    grid = plane[:h, :wd].reshape(h // 8, 8, wd // 8, 8)[::step, :, ::step]
    return grid.transpose(0, 2, 1, 3).reshape(-1, 64)


def block_dct(rows: np.ndarray) -> np.ndarray:
    """The orthonormal DCT (JPEG's, before quantisation) of :func:`blocks` rows, in float64:
    frequencies row-major, not level-shifted (column 0 is 8 times the block mean)."""
    return rows.astype(np.float64) @ np.kron(_D, _D).T


def weights(luma: np.ndarray, flatten: float, dc: float = 1.0, dc_cap: float = 1.0) -> np.ndarray:
    """The (8, 8) weights of each DCT frequency for a stream's (natural order) luma table
    (``dc``, ``dc_cap``: the block mean's own factor and largest weight, see the module's text)."""
    table = np.maximum(np.asarray(luma, np.float64).reshape(8, 8), 1.0)  # a crafted table may hold zeros
    w = np.minimum(1.0, table / (flatten * table.max()))
    w[0, 0] = min(dc_cap, table[0, 0] / (dc * flatten * table.max()))
    return w


def effective_table(luma: np.ndarray, flatten: float, dc: float = 1.0, dc_cap: float = 1.0) -> np.ndarray:
    """The quantisation steps the weighted payload's frequencies get, in the stream's units."""
    table = np.maximum(np.asarray(luma, np.float64).reshape(8, 8), 1.0)
    return table / weights(table, flatten, dc, dc_cap)


def apply_weights(plane: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Scale each whole 8x8 block's DCT frequencies by ``w``: one (64, 64) operator, in float32."""
    out = plane.astype(np.float32)
    h, wd = (plane.shape[0] // 8) * 8, (plane.shape[1] // 8) * 8
    if h and wd:
        dd = np.kron(_D, _D)  # row-major vec(D @ B @ D.T) = kron(D, D) @ vec(B)
        op = (dd.T @ (w.reshape(64, 1) * dd)).T.astype(np.float32)
        rows = (blocks(out) - CENTRE) @ op + CENTRE
        out[:h, :wd] = rows.reshape(h // 8, wd // 8, 8, 8).transpose(0, 2, 1, 3).reshape(h, wd)
    return out


def weight(plane: np.ndarray, luma: np.ndarray, flatten: float, dc: float = 1.0, dc_cap: float = 1.0) -> np.ndarray:
    """A grey plane of 12-bit samples weighted for a JPEG with luma table ``luma``: uint16,
    rounded and clipped to 0..4095 (block means move towards 2048, so a plane mapped onto
    fewer levels may come out above them)."""
    out = apply_weights(plane, weights(luma, flatten, dc, dc_cap))
    return np.clip(np.rint(out), 0, 4095).astype(np.uint16)


def unweight(plane: np.ndarray, luma: np.ndarray, flatten: float, levels: int = 4095, dc: float = 1.0,
             dc_cap: float = 1.0) -> np.ndarray:
    """Undo :func:`weight` on a decoded plane (its stream's luma table): uint16, 0..``levels``."""
    out = apply_weights(plane, 1.0 / weights(luma, flatten, dc, dc_cap))
    return np.clip(np.rint(out), 0, levels).astype(np.uint16)
