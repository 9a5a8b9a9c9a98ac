"""The network architectures: a JPEG-conditioned restoration net and a pre-processing net.

Both work in JPEG's full-range YCbCr, scaled to [0, 1], and are conditioned on the
quantisation tables of the JPEG they work with (see :func:`table_features`), so one
network covers every quality. This module imports torch; import it lazily.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Length of the conditioning vector made by :func:`table_features`.
COND_DIM = 129

_RGB2YCC = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_YCC2RGB = torch.tensor([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
_CHROMA_OFFSET = torch.tensor([[0.0], [0.5], [0.5]])


def rgb_to_ycc(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """RGB in [0, ``scale``], (B, 3, H, W), to JPEG full-range YCbCr in [0, 1] (one matrix product)."""
    b, _, h, w = x.shape
    y = torch.matmul(_RGB2YCC.to(x) / scale, x.reshape(b, 3, h * w)) + _CHROMA_OFFSET.to(x)
    return y.view(b, 3, h, w)


def ycc_to_rgb(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycc`: RGB in [0, ``scale``]."""
    b, _, h, w = x.shape
    m = _YCC2RGB.to(x) * scale
    y = torch.matmul(m, x.reshape(b, 3, h * w)) - m @ _CHROMA_OFFSET.to(x)
    return y.view(b, 3, h, w)


def fold_colour(net: "_CondNet", scale: float) -> dict[str, torch.Tensor]:
    """``net``'s first and last layers with the colour conversions folded in, for inference.

    With them, the network takes RGB in [0, ``scale``] minus ``shift`` and returns RGB in
    [0, ``scale``]: ``ycc_to_rgb(net(rgb_to_ycc(x, scale)), scale)`` to float rounding, in one
    pass. ``shift`` is the RGB whose YCbCr is zero, so that the first convolution's zero
    padding means what it did. Returns ``head_weight``, ``tail_weight``, ``tail_bias`` and ``shift``.
    """
    m, mi = _RGB2YCC.double(), _YCC2RGB.double()
    shift = scale * (mi @ -_CHROMA_OFFSET.double())[:, 0]
    head = net.head.weight.detach().double()  # input channel 4c + s: colour c, sub-pixel s
    head = torch.einsum("ocsyx,cd->odsyx", head.view(head.shape[0], 3, 4, 3, 3), m / scale)
    tail_w = net.tail.weight.detach().double().view(3, 4, -1, 3, 3)
    tail_b = net.tail.bias.detach().double().view(3, 4)
    tail_w = torch.einsum("dc,csiyx->dsiyx", scale * mi, tail_w)
    tail_b = torch.einsum("dc,cs->ds", scale * mi, tail_b) + shift[:, None]
    out = {"head_weight": head.reshape(net.head.weight.shape), "tail_weight": tail_w.reshape(net.tail.weight.shape),
           "tail_bias": tail_b.reshape(-1), "shift": shift.view(1, 3, 1, 1)}
    return {k: v.to(net.head.weight.dtype).contiguous() for k, v in out.items()}


def table_features(luma: np.ndarray, chroma: np.ndarray | None) -> np.ndarray:
    """Conditioning vector from JPEG quantisation tables: log-scaled tables and a gray flag."""
    gray = chroma is None
    chroma = luma if chroma is None else chroma
    f = np.concatenate(
        [np.log(np.asarray(luma, np.float32).ravel()), np.log(np.asarray(chroma, np.float32).ravel())]
    ) / np.log(255.0)
    return np.concatenate([f, [1.0 if gray else 0.0]]).astype(np.float32)


class _FiLMBlock(nn.Module):
    """Residual conv block whose features are scaled and shifted by the conditioning."""

    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.c1(x))
        h = h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return x + self.c2(h)


class _CondNet(nn.Module):
    """Two-scale residual CNN (1/2 and 1/4 resolution) with FiLM conditioning.

    Predicts a residual that is added to its YCbCr input. Input sides must be
    multiples of :attr:`multiple`.
    """

    multiple = 4

    def __init__(self, ch1: int, ch2: int, blocks: int):
        super().__init__()
        self.blocks = blocks
        self.ch1, self.ch2 = ch1, ch2
        self.head = nn.Conv2d(12, ch1, 3, padding=1)
        self.down = nn.Conv2d(ch1, ch2, 3, stride=2, padding=1)
        self.body = nn.ModuleList(_FiLMBlock(ch2) for _ in range(blocks))
        self.up = nn.Conv2d(ch2, ch1 * 4, 1)
        self.fine = _FiLMBlock(ch1)
        self.tail = nn.Conv2d(ch1, 12, 3, padding=1)
        self.cond = nn.Sequential(
            nn.Linear(COND_DIM, 64), nn.LeakyReLU(), nn.Linear(64, 2 * (ch2 * blocks + ch1))
        )
        for m in (self.tail, self.cond[-1]):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        film = self.cond(cond)
        gammas, betas = film.chunk(2, dim=1)
        h1 = F.leaky_relu(self.head(F.pixel_unshuffle(x, 2)))
        h = F.leaky_relu(self.down(h1))
        for i, blk in enumerate(self.body):
            s = slice(i * self.ch2, (i + 1) * self.ch2)
            h = blk(h, gammas[:, s], betas[:, s])
        h = h1 + F.pixel_shuffle(self.up(h), 2)
        s = slice(self.blocks * self.ch2, self.blocks * self.ch2 + self.ch1)
        h = self.fine(F.leaky_relu(h), gammas[:, s], betas[:, s])
        return x + F.pixel_shuffle(self.tail(F.leaky_relu(h)), 2)


class RestoreNet(_CondNet):
    """Decoder stage: removes JPEG artefacts from a decoded image (YCbCr in [0, 1])."""

    def __init__(self, ch1: int = 32, ch2: int = 64, blocks: int = 4):
        super().__init__(ch1, ch2, blocks)


class PreNet(_CondNet):
    """Encoder stage: reshapes an image (YCbCr in [0, 1]) before the JPEG encoder.

    Starts as the identity (its last layer is zero) and learns, jointly with a
    decoder, what to spend or save bits on.
    """

    def __init__(self, ch1: int = 24, ch2: int = 32, blocks: int = 2):
        super().__init__(ch1, ch2, blocks)


ARCHITECTURES: dict[str, type[_CondNet]] = {"RestoreNet": RestoreNet, "PreNet": PreNet}


def build(arch: str, config: dict | None = None) -> _CondNet:
    """Instantiate an architecture by name with its keyword configuration."""
    return ARCHITECTURES[arch](**(config or {}))
