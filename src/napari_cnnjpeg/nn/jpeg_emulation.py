"""Baseline JPEG emulated in PyTorch, bit for bit as Pillow's libjpeg-turbo codes it.

:func:`jpeg_roundtrip` encodes a batch of images with given quantisation tables and
decodes them again without leaving the tensors' device, so that training can run
JPEG round trips on a GPU. Every step follows the libjpeg-turbo routine Pillow uses
with its defaults (``dct_method`` islow, no input smoothing, fancy upsampling), in
that routine's own fixed-point arithmetic:

* colour: RGB to YCbCr as ``rgb_ycc_convert`` (jccolor.c, 16-bit fixed point,
  tables with the rounding fudge of ``ONE_HALF`` for Y and ``ONE_HALF - 1`` for
  Cb/Cr); grayscale input is coded as one component, unconverted;
* edges: each row is extended to whole blocks by replicating its last sample
  (``expand_right_edge``, jcsample.c); for subsampled chroma the full-resolution
  rows are extended to the width the downsampler reads (twice the chroma blocks'
  width). At the bottom the full-resolution planes are first completed to a whole
  row group (``max_v_samp_factor`` rows) by replicating the last row, downsampled,
  then each component is completed to whole blocks by replicating its last row
  (``expand_bottom_edge``, jcprepct.c);
* chroma downsampling as ``h2v2_downsample`` ((2x2 sum + 1, 2, 1, 2, ...) >> 2) and
  ``h2v1_downsample`` ((pair sum + 0, 1, 0, 1, ...) >> 1), jcsample.c;
* forward DCT as ``jpeg_fdct_islow`` (jfdctint.c, 13-bit constants, output scaled
  by 8); quantisation as ``quantize`` in jcdctmgr.c with the reciprocals of
  ``compute_reciprocal`` (16-bit DCTELEM, as libjpeg-turbo's SIMD builds use): a
  rounding half away from zero;
* dequantisation and inverse DCT as ``jpeg_idct_islow`` (jidctint.c), including
  the ``range_limit[x & RANGE_MASK]`` clamping of its output after the +128 shift;
* chroma upsampling as ``h2v2_fancy_upsample`` and ``h2v1_fancy_upsample``
  (jdsample.c, triangle filter with alternating rounding biases; the rows above the
  first and below the last real chroma row replicate it, as jdmainct.c arranges),
  or plain replication when the chroma is at most 2 samples wide, as libjpeg-turbo
  then does;
* YCbCr to RGB as ``ycc_rgb_convert`` (jdcolor.c, 16-bit fixed-point tables,
  clamped), then the blocks' padding is cropped away.

Measured against Pillow 13.0 (libjpeg-turbo 3.2.0, x86-64 SIMD build) on crops of
scikit-image's sample photos, including sizes that are not multiples of 8 or 16,
at every quality 1 to 100 with the standard and the tuned tables, in 4:2:0, 4:2:2,
4:4:4 and grayscale: the decoded images are identical to Pillow's, bit for bit
(infinite PSNR; ``tests/test_jpeg_emulation.py`` asserts 45 dB or better).

With ``differentiable=True`` the same integer arithmetic runs in float64 and every
rounding, flooring, clamping and wrap-around is a straight-through estimator
(forward exact, backward identity), so gradients reach the input image.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CjpgError
from ..format.jpeg import SUBSAMPLING

#: Horizontal and vertical chroma subsampling factors of each :data:`SUBSAMPLING` name.
FACTORS = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}

# jccolor.c / jdcolor.c: SCALEBITS 16, FIX(x) = (x * 2**16 + 0.5) truncated.
_SCALEBITS = 16
_ONE_HALF = 1 << (_SCALEBITS - 1)
_CBCR_OFFSET = 128 << _SCALEBITS


def _fix16(x: float) -> int:
    return int(x * (1 << _SCALEBITS) + 0.5)


# jfdctint.c / jidctint.c: CONST_BITS 13, PASS1_BITS 2, precomputed FIX constants.
_CONST_BITS = 13
_PASS1_BITS = 2
_F0298 = 2446  # FIX(0.298631336)
_F0390 = 3196  # FIX(0.390180644)
_F0541 = 4433  # FIX(0.541196100)
_F0765 = 6270  # FIX(0.765366865)
_F0899 = 7373  # FIX(0.899976223)
_F1175 = 9633  # FIX(1.175875602)
_F1501 = 12299  # FIX(1.501321110)
_F1847 = 15137  # FIX(1.847759065)
_F1961 = 16069  # FIX(1.961570560)
_F2053 = 16819  # FIX(2.053119869)
_F2562 = 20995  # FIX(2.562915447)
_F3072 = 25172  # FIX(3.072711026)


# ---------------------------------------------------------------------------
# Integer arithmetic on int32 tensors (exact path) or float64 tensors (holding
# integers exactly, with straight-through estimators when ``st`` is set).


def _ste(real: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """``exact`` forward, the gradient of ``real`` backward."""
    return real + (exact - real).detach()


def _shr(x: torch.Tensor, n: int, st: bool) -> torch.Tensor:
    """Arithmetic right shift by ``n`` bits (floor division by 2**n)."""
    if not x.is_floating_point():
        return x >> n
    real = x * (2.0**-n)
    exact = torch.floor(real)
    return _ste(real, exact) if st else exact


def _descale(x: torch.Tensor, n: int, st: bool) -> torch.Tensor:
    """libjpeg's DESCALE: right shift by ``n`` bits, rounding half up."""
    return _shr(x + (1 << (n - 1)), n, st)


def _clamp(x: torch.Tensor, lo: int, hi: int, st: bool) -> torch.Tensor:
    y = x.clamp(lo, hi)
    return _ste(x, y) if st else y


def _edge(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Pad (..., h, w) to (..., rows, cols) by replicating the last row and column."""
    h, w = x.shape[-2:]
    if cols != w:
        idx = torch.arange(cols, device=x.device).clamp_(max=w - 1)
        x = x.index_select(-1, idx)
    if rows != h:
        idx = torch.arange(rows, device=x.device).clamp_(max=h - 1)
        x = x.index_select(-2, idx)
    return x


def _shifted(x: torch.Tensor, dim: int, step: int) -> torch.Tensor:
    """``x`` moved by one sample along ``dim`` (``step`` -1: each sample's predecessor,
    +1: its successor), the edge sample replicating itself."""
    n = x.shape[dim]
    idx = (torch.arange(n, device=x.device) + step).clamp_(0, n - 1)
    return x.index_select(dim, idx)


def _interleave(even: torch.Tensor, odd: torch.Tensor, dim: int) -> torch.Tensor:
    """Samples of ``even`` and ``odd`` alternating along ``dim`` (a negative index)."""
    out = torch.stack((even, odd), dim=dim)
    shape = list(even.shape)
    shape[dim] *= 2
    return out.reshape(shape)


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W), H and W multiples of 8, to blocks (B, H/8, W/8, 8, 8)."""
    b, h, w = x.shape
    return x.reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3)


def _unblocks(x: torch.Tensor) -> torch.Tensor:
    b, nh, nw = x.shape[:3]
    return x.transpose(2, 3).reshape(b, nh * 8, nw * 8)


# ---------------------------------------------------------------------------
# Encoder


def _rgb_to_ycc(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor, st: bool):
    """jccolor.c rgb_ycc_convert."""
    y = _shr(_fix16(0.29900) * r + _fix16(0.58700) * g + _fix16(0.11400) * b + _ONE_HALF, _SCALEBITS, st)
    cb = _shr(
        -_fix16(0.16874) * r - _fix16(0.33126) * g + _fix16(0.50000) * b + (_CBCR_OFFSET + _ONE_HALF - 1),
        _SCALEBITS, st,
    )
    cr = _shr(
        _fix16(0.50000) * r - _fix16(0.41869) * g - _fix16(0.08131) * b + (_CBCR_OFFSET + _ONE_HALF - 1),
        _SCALEBITS, st,
    )
    return y, cb, cr


def _downsample(x: torch.Tensor, h: int, w: int, hf: int, vf: int, st: bool) -> torch.Tensor:
    """One chroma plane (B, H, W) of an h x w image, edge-padded and downsampled by
    (hf, vf) to whole blocks, as jcprepct.c and jcsample.c do it."""
    out_cols = -(-w // (8 * hf)) * 8  # compptr->width_in_blocks * DCTSIZE
    x = _edge(x, -(-h // vf) * vf, out_cols * hf)  # row group completed; expand_right_edge
    bias_shape = (1,) * (x.dim() - 1) + (out_cols,)
    alt = (torch.arange(out_cols, device=x.device) % 2).reshape(bias_shape).to(x.dtype)
    if vf == 2:  # h2v2_downsample: bias 1, 2, 1, 2, ...
        s = x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]
        x = _shr(s + (1 + alt), 2, st)
    else:  # h2v1_downsample: bias 0, 1, 0, 1, ...
        x = _shr(x[..., 0::2] + x[..., 1::2] + alt, 1, st)
    hd = x.shape[-2]
    return _edge(x, -(-hd // 8) * 8, out_cols)  # expand_bottom_edge to whole blocks


def _fdct_1d(x: torch.Tensor, dim: int, first: bool, st: bool) -> torch.Tensor:
    """One pass of jfdctint.c jpeg_fdct_islow along ``dim`` (-1: rows, -2: columns)."""
    d = [x.select(dim, i) for i in range(8)]
    tmp0, tmp7 = d[0] + d[7], d[0] - d[7]
    tmp1, tmp6 = d[1] + d[6], d[1] - d[6]
    tmp2, tmp5 = d[2] + d[5], d[2] - d[5]
    tmp3, tmp4 = d[3] + d[4], d[3] - d[4]
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    shift = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS
    out = [None] * 8
    if first:
        out[0] = (tmp10 + tmp11) * (1 << _PASS1_BITS)
        out[4] = (tmp10 - tmp11) * (1 << _PASS1_BITS)
    else:
        out[0] = _descale(tmp10 + tmp11, _PASS1_BITS, st)
        out[4] = _descale(tmp10 - tmp11, _PASS1_BITS, st)
    z1 = (tmp12 + tmp13) * _F0541
    out[2] = _descale(z1 + tmp13 * _F0765, shift, st)
    out[6] = _descale(z1 - tmp12 * _F1847, shift, st)
    z1, z2 = tmp4 + tmp7, tmp5 + tmp6
    z3, z4 = tmp4 + tmp6, tmp5 + tmp7
    z5 = (z3 + z4) * _F1175
    tmp4, tmp5, tmp6, tmp7 = tmp4 * _F0298, tmp5 * _F2053, tmp6 * _F3072, tmp7 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    out[7] = _descale(tmp4 + z1 + z3, shift, st)
    out[5] = _descale(tmp5 + z2 + z4, shift, st)
    out[3] = _descale(tmp6 + z2 + z3, shift, st)
    out[1] = _descale(tmp7 + z1 + z4, shift, st)
    return torch.stack(out, dim=dim)


def _reciprocals(table: torch.Tensor):
    """jcdctmgr.c compute_reciprocal for the divisors ``table << 3`` (16-bit DCTELEM):
    reciprocal, correction and shift, each shaped like ``table`` (int64)."""
    d = table.to(torch.int64) * 8
    powers = torch.tensor([1 << k for k in range(17)], dtype=torch.int64, device=d.device)
    b = (d.unsqueeze(-1) >= powers).sum(-1) - 1  # flss(divisor) - 1
    r = 16 + b
    full = torch.ones_like(d) << r
    fq, fr = full // d, full % d
    c = d // 2
    pow2 = fr == 0
    fq = torch.where(pow2, fq >> 1, torch.where(fr <= c, fq, fq + 1))
    r = torch.where(pow2, r - 1, r)
    c = torch.where(~pow2 & (fr <= c), c + 1, c)
    return fq, c, r


def _quantize(coef: torch.Tensor, table: torch.Tensor, st: bool) -> torch.Tensor:
    """jcdctmgr.c quantize: coefficients (B, nh, nw, 8, 8) scaled by 8, table (B, 8, 8)."""
    fq, c, r = (t.reshape(t.shape[0], 1, 1, 8, 8) for t in _reciprocals(table))
    if coef.is_floating_point():
        fq, c, r = fq.to(coef.dtype), c.to(coef.dtype), r.to(coef.dtype)
        scale = fq * torch.pow(2.0, -r)
        exact = torch.sign(coef) * torch.floor((coef.abs() + c) * scale)
        return _ste(coef * scale, exact) if st else exact
    fq, c, r = fq.to(coef.dtype), c.to(coef.dtype), r.to(coef.dtype)
    return torch.sign(coef) * (((coef.abs() + c) * fq) >> r)


# ---------------------------------------------------------------------------
# Decoder


def _idct_1d(x: torch.Tensor, dim: int, first: bool, st: bool) -> torch.Tensor:
    """One pass of jidctint.c jpeg_idct_islow along ``dim`` (-2: columns, then -1: rows)."""
    w = [x.select(dim, i) for i in range(8)]
    z2, z3 = w[2], w[6]
    z1 = (z2 + z3) * _F0541
    tmp2 = z1 - z3 * _F1847
    tmp3 = z1 + z2 * _F0765
    tmp0 = (w[0] + w[4]) * (1 << _CONST_BITS)
    tmp1 = (w[0] - w[4]) * (1 << _CONST_BITS)
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    tmp3, tmp2, tmp1, tmp0 = w[1], w[3], w[5], w[7]
    z4, z3 = tmp1 + tmp3, tmp0 + tmp2
    z2, z1 = tmp1 + tmp2, tmp0 + tmp3
    z5 = (z3 + z4) * _F1175
    tmp3, tmp2, tmp1, tmp0 = tmp3 * _F1501, tmp2 * _F3072, tmp1 * _F2053, tmp0 * _F0298
    z4 = z4 * -_F0390 + z5
    z3 = z3 * -_F1961 + z5
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    tmp3 = tmp3 + z1 + z4
    tmp2 = tmp2 + z2 + z3
    tmp1 = tmp1 + z2 + z4
    tmp0 = tmp0 + z1 + z3
    shift = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS + 3
    sums = (tmp10 + tmp3, tmp11 + tmp2, tmp12 + tmp1, tmp13 + tmp0,
            tmp13 - tmp0, tmp12 - tmp1, tmp11 - tmp2, tmp10 - tmp3)
    return torch.stack([_descale(s, shift, st) for s in sums], dim=dim)


def _range_limit(x: torch.Tensor, st: bool) -> torch.Tensor:
    """jidctint.c ``range_limit[x & RANGE_MASK]`` with libjpeg's table (centre 128):
    x + 128 clamped to 0..255 for |x| <= 512, wrapping around beyond."""
    m = torch.remainder(x, 1024)
    y = torch.where(m < 128, m + 128, torch.where(m < 512, 255, torch.where(m < 896, 0, m - 896)))
    y = y.to(x.dtype)
    return _ste(x + 128, y) if st else y


def _code_plane(x: torch.Tensor, table: torch.Tensor, st: bool) -> torch.Tensor:
    """Level shift, DCT, quantise, dequantise, IDCT one padded plane (B, H, W) of samples."""
    blk = _blocks(x - 128)
    coef = _fdct_1d(_fdct_1d(blk, -1, True, st), -2, False, st)
    q = _quantize(coef, table, st)
    deq = q * table.reshape(-1, 1, 1, 8, 8).to(q.dtype)
    ws = _idct_1d(deq, -2, True, st)
    out = _idct_1d(ws, -1, False, st)
    return _unblocks(_range_limit(out, st))


def _upsample(x: torch.Tensor, h: int, w: int, hf: int, vf: int, st: bool) -> torch.Tensor:
    """jdsample.c fancy upsampling of a decoded chroma plane to h x w."""
    hd, wd = -(-h // vf), -(-w // hf)
    x = x[..., :hd, :wd]  # the real samples (downsampled_height x downsampled_width)
    if wd <= 2:  # libjpeg-turbo falls back to box upsampling (h2v1_upsample, h2v2_upsample)
        x = x.repeat_interleave(hf, dim=-1).repeat_interleave(vf, dim=-2)
        return x[..., :h, :w]
    if vf == 2:  # h2v2_fancy_upsample: column sums 3 * nearer row + further row
        s = 3 * x
        s = _interleave(s + _shifted(x, -2, -1), s + _shifted(x, -2, 1), -2)
        three = 3 * s
        even = _shr(three + _shifted(s, -1, -1) + 8, 4, st)
        odd = _shr(three + _shifted(s, -1, 1) + 7, 4, st)
    else:  # h2v1_fancy_upsample
        three = 3 * x
        even = _shr(three + _shifted(x, -1, -1) + 1, 2, st)
        odd = _shr(three + _shifted(x, -1, 1) + 2, 2, st)
    return _interleave(even, odd, -1)[..., :h, :w]


def _ycc_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, st: bool):
    """jdcolor.c ycc_rgb_convert with build_ycc_rgb_table's fixed-point tables."""
    cb, cr = cb - 128, cr - 128
    r = y + _shr(_fix16(1.40200) * cr + _ONE_HALF, _SCALEBITS, st)
    g = y + _shr(-_fix16(0.34414) * cb - _fix16(0.71414) * cr + _ONE_HALF, _SCALEBITS, st)
    b = y + _shr(_fix16(1.77200) * cb + _ONE_HALF, _SCALEBITS, st)
    return tuple(_clamp(c, 0, 255, st) for c in (r, g, b))


# ---------------------------------------------------------------------------


def _table(table, batch: int, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A quantisation table as (batch, 8, 8) integers on ``device``, clamped to 1..255 as
    libjpeg's jpeg_add_quant_table does for baseline JPEG."""
    if table is None:
        raise CjpgError(f"a {name} quantisation table is needed for colour images")
    if isinstance(table, np.ndarray):
        table = torch.from_numpy(np.ascontiguousarray(table))
    elif not isinstance(table, torch.Tensor):
        raise CjpgError(f"the {name} table must be a numpy array or torch tensor, got {type(table).__name__}")
    if table.shape == (8, 8):
        table = table.unsqueeze(0).expand(batch, 8, 8)
    elif table.shape != (batch, 8, 8):
        raise CjpgError(
            f"the {name} table must be (8, 8) or ({batch}, 8, 8) in natural order, got {tuple(table.shape)}"
        )
    table = table.detach().to(device=device, dtype=torch.float64)
    return torch.round(table).clamp(1, 255).to(dtype)


def jpeg_roundtrip(
    rgb: torch.Tensor,
    luma: torch.Tensor | np.ndarray,
    chroma: torch.Tensor | np.ndarray | None = None,
    subsampling: str = "4:2:0",
    differentiable: bool = False,
) -> torch.Tensor:
    """Encode and decode images as baseline JPEG, as Pillow (libjpeg-turbo) does it.

    Parameters
    ----------
    rgb : torch.Tensor
        Images (B, 3, H, W), or grayscale (B, 1, H, W), floating point in [0, 1]. Any
        H, W >= 1. Values are clamped and rounded to 8-bit levels first, as the encoder
        sees them.
    luma, chroma : torch.Tensor or numpy.ndarray
        Quantisation tables in natural (row-major) order, (8, 8) for the whole batch or
        (B, 8, 8) one per image, as :func:`napari_cnnjpeg.format.jpeg.tables_for_quality` and
        :func:`napari_cnnjpeg.format.jpeg.quant_tables` return them. Rounded to integers and
        clamped to 1..255. ``chroma`` is ignored for grayscale images.
    subsampling : str
        Chroma subsampling, a key of :data:`napari_cnnjpeg.format.jpeg.SUBSAMPLING`
        ("4:4:4", "4:2:2" or "4:2:0"); checked, but without effect, for grayscale.
    differentiable : bool
        If True, every rounding, flooring and clamping is a straight-through
        estimator (exact forward, identity backward), so gradients reach ``rgb``; the
        integer arithmetic then runs in float64 (exact; the device must support it).
        If False it runs in int32 without autograd. The output values are the same.

    Returns
    -------
    torch.Tensor
        The decoded images, shaped like ``rgb``, in [0, 1] (multiples of 1/255), on
        ``rgb``'s device and in its dtype.

    Raises
    ------
    CjpgError
        For a wrongly shaped or non-floating image, an unknown subsampling, or tables
        of the wrong shape or type.
    """
    if not isinstance(rgb, torch.Tensor) or not rgb.is_floating_point():
        got = rgb.dtype if isinstance(rgb, torch.Tensor) else type(rgb).__name__
        raise CjpgError(f"jpeg_roundtrip needs a floating-point torch tensor, got {got}")
    if rgb.dim() != 4 or rgb.shape[1] not in (1, 3) or min(rgb.shape[0], rgb.shape[2], rgb.shape[3]) < 1:
        raise CjpgError(f"jpeg_roundtrip needs images (B, 3, H, W) or (B, 1, H, W), got {tuple(rgb.shape)}")
    if subsampling not in SUBSAMPLING:
        raise CjpgError(f"unknown chroma subsampling {subsampling!r}; use one of {sorted(FACTORS)}")
    batch, channels, h, w = rgb.shape
    work = torch.float64 if differentiable else torch.int32
    luma_t = _table(luma, batch, "luma", rgb.device, work)
    chroma_t = _table(chroma, batch, "chroma", rgb.device, work) if channels == 3 else None
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        out = _roundtrip(rgb, luma_t, chroma_t, FACTORS[subsampling], differentiable, work)
    return out.to(rgb.dtype)


def _roundtrip(rgb, luma_t, chroma_t, factors, st: bool, work: torch.dtype) -> torch.Tensor:
    batch, channels, h, w = rgb.shape
    x = rgb.to(torch.float64) * 255
    exact = torch.round(x.clamp(0, 255))
    x = _ste(x, exact) if st else exact.to(work)
    if channels == 1:
        y = _edge(x[:, 0], -(-h // 8) * 8, -(-w // 8) * 8)
        y = _code_plane(y, luma_t, st)[..., :h, :w]
        return y.unsqueeze(1).to(torch.float64) / 255
    hf, vf = factors
    y, cb, cr = _rgb_to_ycc(x[:, 0], x[:, 1], x[:, 2], st)
    y = _edge(y, -(-h // 8) * 8, -(-w // 8) * 8)
    y = _code_plane(y, luma_t, st)[..., :h, :w]
    # Both chroma planes at once: (2B, H, W) with the chroma table repeated.
    c = torch.cat((cb, cr))
    if (hf, vf) == (1, 1):
        c = _code_plane(_edge(c, -(-h // 8) * 8, -(-w // 8) * 8), torch.cat((chroma_t, chroma_t)), st)
        c = c[..., :h, :w]
    else:
        c = _code_plane(_downsample(c, h, w, hf, vf, st), torch.cat((chroma_t, chroma_t)), st)
        c = _upsample(c, h, w, hf, vf, st)
    cb, cr = c.split(batch)
    out = torch.stack(_ycc_to_rgb(y, cb, cr, st), dim=1)
    return out.to(torch.float64) / 255
