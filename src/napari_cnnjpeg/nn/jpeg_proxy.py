"""A differentiable stand-in for baseline JPEG (8-bit colour, or grey at any precision), used to
train the encoder network.

Colour transform, 4:2:0 chroma subsampling, 8x8 DCT, quantisation with the real
tables and a straight-through estimator for rounding, and a rate proxy (log
magnitude of the quantised coefficients). The models are always evaluated with the
real encoder; training uses :func:`straight_through` to run the real codec forward
and this proxy backward. Imports torch; import it lazily.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from .nets import rgb_to_ycc, ycc_to_rgb


def _dct_matrix() -> torch.Tensor:
    m = np.zeros((8, 8), np.float32)
    for k in range(8):
        for n in range(8):
            m[k, n] = (math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8)) * math.cos(
                math.pi * (2 * n + 1) * k / 16
            )
    return torch.from_numpy(m)


_D = _dct_matrix()


def _blocks(x: torch.Tensor) -> torch.Tensor:
    b, h, w = x.shape
    return x.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(x: torch.Tensor) -> torch.Tensor:
    b, nh, nw = x.shape[:3]
    return x.permute(0, 1, 3, 2, 4).reshape(b, nh * 8, nw * 8)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _code_plane(p: torch.Tensor, table: torch.Tensor, dead: float = 0.0,
                ac_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise one plane (B, H, W, level-shifted 0..255 scale); returns it and its bit proxy.

    ``table`` is one (8, 8) table or one per image, (B, 8, 8). The bit proxy of a coefficient
    of ``q`` steps is log2(1 + max(|q| - dead, 0)): with ``dead`` near 0.5, coefficients that
    round to zero cost nothing, and no gradient pushes them further down. ``ac_only`` leaves
    the block means out (JPEG codes them as differences, nearly free on flat backgrounds).
    """
    d = _D.to(p)
    table = table.to(p).reshape(-1, 1, 1, 8, 8)
    coef = d @ _blocks(p) @ d.T
    q = coef / table
    bits = torch.log2(1 + (q.abs() - dead).clamp(min=0))
    if ac_only:
        bits = bits * (torch.arange(64, device=p.device) > 0).view(8, 8).to(p)
    rate = bits.sum(dim=(1, 2, 3, 4))
    rec = _unblocks(d.T @ (_round_ste(q) * table) @ d)
    return rec, rate


def jpeg_proxy(
    rgb: torch.Tensor, luma: torch.Tensor, chroma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable JPEG (4:2:0) of RGB in [0, 1], (B, 3, H, W) with H, W multiples of 16.

    The tables are (8, 8), shared by the batch, or (B, 8, 8), one per image.

    Returns the decoded RGB and a per-image rate proxy in bits per pixel (up to a scale).
    """
    ycc = rgb_to_ycc(rgb) * 255 - 128
    y, rate_y = _code_plane(ycc[:, 0], luma)
    chroma_planes = F.avg_pool2d(ycc[:, 1:], 2)
    cb, rate_cb = _code_plane(chroma_planes[:, 0], chroma)
    cr, rate_cr = _code_plane(chroma_planes[:, 1], chroma)
    c = F.interpolate(torch.stack([cb, cr], 1), scale_factor=2, mode="bilinear", align_corners=False)
    out = ycc_to_rgb((torch.cat([y[:, None], c], 1) + 128) / 255)
    pixels = rgb.shape[-1] * rgb.shape[-2]
    return out.clamp(0, 1), (rate_y + rate_cb + rate_cr) / pixels


#: Steps of a coefficient that :func:`grey_proxy`'s rate leaves uncharged (those round to zero).
DEAD_ZONE = 0.3
#: Bits of a grey JPEG block that no coefficient decides: a few for its mean's difference, a few for
#: its end of block (a sparse plane's empty blocks cost about 4, 0.06 bpp).
BLOCK_BITS = 4.0


def grey_proxy(
    y: torch.Tensor, table: torch.Tensor, levels: torch.Tensor, shift: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable JPEG of grey planes (B, H, W) in [0, 1], mapped onto 0..``levels`` (B,) and
    level-shifted by ``shift`` (2048 for 12-bit samples), with one (B, 8, 8) table of steps in
    sample units each. Returns the decoded planes in [0, 1] and a per-image rate proxy per pixel
    of the AC coefficients beyond :data:`DEAD_ZONE` steps: on 12-bit planes most coefficients are
    a fraction of a step and the block means are large, and a proxy that charged either steered
    the encoder by what costs (almost) no bits. :data:`BLOCK_BITS` stand for what every block
    costs all the same (its mean's difference, its end of block)."""
    scale = levels.to(y).view(-1, 1, 1)
    rec, rate = _code_plane(y * scale - shift, table, DEAD_ZONE, ac_only=True)
    return ((rec + shift) / scale).clamp(0, 1), rate / (y.shape[-1] * y.shape[-2]) + BLOCK_BITS / 64


def straight_through(real: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
    """The real codec's output forward, the proxy's gradient backward."""
    return proxy + (real - proxy).detach()
