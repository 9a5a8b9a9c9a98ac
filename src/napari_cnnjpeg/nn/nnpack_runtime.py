"""Running a frozen network on the CPU through NNPACK, the Winograd convolutions built into torch.

NNPACK computes a 3x3 convolution from 6x6 Winograd tiles, with about a quarter of the
multiplications of a direct convolution, and on an AVX2 CPU the networks run faster
than under ONNX Runtime (``cnnjpeg bench --speed`` measures both). The forward pass here
is :meth:`nets._CondNet.forward` for inference only: the same operations, activations
and FiLM applied in place, and the 1x1 convolution as one matrix product. Its output
equals the torch module's to float rounding (a test checks it).

Two properties of torch's NNPACK shape how it is used:

- its thread pool is sized once, by torch's thread count at its first use, so it cannot
  leave a core to napari's GUI thread (:func:`inference.choose_runtime` picks ONNX Runtime
  under :class:`inference.limit_threads`);
- torch returns each large activation to the system and faults it in again on the next
  allocation, which costs more than the Winograd gain. Where the C library is glibc, the
  allocator keeps freed blocks of up to :data:`KEEP_BYTES` for reuse while networks run
  (``mallopt``), and :func:`release_memory` hands them back once a plane is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

import torch
from torch.nn import functional as F

#: Freed blocks up to this size stay with the process while a plane runs.
KEEP_BYTES = 512 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@lru_cache(maxsize=1)
def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (musl has no mallopt)
        return libc
    except (OSError, AttributeError):
        return None


def available() -> bool:
    """Whether this torch has NNPACK on this CPU, and the allocator can be told to keep memory."""
    return _glibc() is not None and bool(torch._nnpack_available())


@lru_cache(maxsize=1)
def _keep_memory() -> None:
    libc = _glibc()
    libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)
    libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)


def release_memory() -> None:
    """Return the memory the allocator kept while networks ran (``malloc_trim``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _conv3(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch._nnpack_spatial_convolution(x, weight, bias, [1, 1], [1, 1])


def _conv(m: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if m.kernel_size == (3, 3) and m.stride == (1, 1) and m.padding == (1, 1):
        return _conv3(m.weight, m.bias, x)
    if m.kernel_size == (1, 1) and m.stride == (1, 1) and x.shape[0] == 1:
        _, c, h, w = x.shape
        y = torch.addmm(m.bias[:, None], m.weight.view(m.out_channels, c), x.reshape(c, h * w))
        return y.view(1, m.out_channels, h, w)
    return F.conv2d(x, m.weight, m.bias, m.stride, m.padding)


def _block(blk, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    h = F.leaky_relu_(_conv(blk.c1, x))
    h.mul_(1 + gamma[:, :, None, None]).add_(beta[:, :, None, None])
    return _conv(blk.c2, h).add_(x)


def _add_shuffled(h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``h += pixel_shuffle(u, 2)`` in place, without the shuffled copy."""
    b, c, hh, ww = h.shape
    h.view(b, c, hh // 2, 2, ww // 2, 2).add_(u.view(b, c, 2, 2, hh // 2, ww // 2).permute(0, 1, 4, 2, 5, 3))
    return h


def forward(net, x: torch.Tensor, cond: torch.Tensor, folded: dict | None = None) -> torch.Tensor:
    """:meth:`nets._CondNet.forward` of ``net`` for inference, through NNPACK; with ``folded``
    (:func:`nets.fold_colour`), on RGB minus its ``shift``, returning RGB."""
    gammas, betas = net.cond(cond).chunk(2, dim=1)
    head = (folded["head_weight"], net.head.bias) if folded else (net.head.weight, net.head.bias)
    tail = (folded["tail_weight"], folded["tail_bias"]) if folded else (net.tail.weight, net.tail.bias)
    h1 = F.leaky_relu_(_conv3(*head, F.pixel_unshuffle(x, 2)))
    h = F.leaky_relu_(_conv(net.down, h1))
    for i, blk in enumerate(net.body):
        s = slice(i * net.ch2, (i + 1) * net.ch2)
        h = _block(blk, h, gammas[:, s], betas[:, s])
    h = F.leaky_relu_(_add_shuffled(h1, _conv(net.up, h)))
    del h1
    s = slice(net.blocks * net.ch2, net.blocks * net.ch2 + net.ch1)
    h = _block(net.fine, h, gammas[:, s], betas[:, s])
    return F.pixel_shuffle(_conv3(*tail, F.leaky_relu_(h)), 2).add_(x)


#: Tiles of fewer input pixels run on the ``small`` runner when there is one: below about 800x800,
#: NNPACK's transforms cost more than they save and ONNX Runtime is faster (measured on 2 cores).
MIN_PIXELS = 800 * 800


class NnpackNet:
    """A frozen network run through NNPACK on the CPU: called like the torch module.

    ``small`` (e.g. an ONNX Runtime session of the same network) runs tiles of fewer than
    :data:`MIN_PIXELS` pixels.
    """

    def __init__(self, net, small=None):
        if not available():  # also initialises NNPACK, which torch leaves to its first availability check
            raise RuntimeError("NNPACK is not available in this torch build or on this system")
        _keep_memory()
        self.net, self.small = net, small
        self.multiple = net.multiple
        self._ran = False
        self._folded: dict[float, dict] = {}

    def __call__(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.small is not None and x.shape[-2] * x.shape[-1] < MIN_PIXELS:
            return self.small(x, cond)
        return self._run(x, cond, None)

    def rgb(self, x: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
        """The network on RGB in [0, ``scale``] (float, overwritten), with the colour conversions
        folded into its first and last layers (:func:`nets.fold_colour`); returns RGB in that scale."""
        from .nets import fold_colour, rgb_to_ycc, ycc_to_rgb

        if self.small is not None and x.shape[-2] * x.shape[-1] < MIN_PIXELS:
            return ycc_to_rgb(self.small(rgb_to_ycc(x, scale), cond), scale)
        if scale not in self._folded:
            with torch.inference_mode():
                self._folded[scale] = fold_colour(self.net, scale)
        folded = self._folded[scale]
        return self._run(x.sub_(folded["shift"]), cond, folded)

    def _run(self, x: torch.Tensor, cond: torch.Tensor, folded: dict | None) -> torch.Tensor:
        self._ran = True
        with torch.inference_mode():
            if len(x) == 1:
                return forward(self.net, x.contiguous(), cond, folded)
            return torch.cat([forward(self.net, x[i : i + 1].contiguous(), cond[i : i + 1], folded)
                              for i in range(len(x))])

    def release(self) -> None:
        """Hand back the memory kept since NNPACK last ran (called once a plane is done)."""
        if self._ran:
            release_memory()
            self._ran = False
