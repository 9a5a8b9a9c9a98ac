"""Image-quality metrics: the single source of every figure the project reports.

Fixed settings, from scikit-image:

- PSNR over all channels, ``data_range`` from the dtype (255 for uint8, 65535 for
  uint16, 1.0 for float images); the napari widgets pass :func:`value_range` (the
  image's own range) for data other than uint8;
- SSIM with Gaussian weights, sigma 1.5, ``use_sample_covariance=False`` (Wang et
  al. 2004), averaged over channels for RGB;
- bits per pixel: whole file size in bits / (height x width x planes).
"""

from __future__ import annotations

import numpy as np

from ..errors import CjpgError

SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
#: Least height and width SSIM takes: scikit-image's Gaussian window, 3.5 sigma each side (11 for sigma 1.5).
SSIM_MIN_SIDE = 2 * int(3.5 * SSIM_SETTINGS["sigma"] + 0.5) + 1


def data_range(dtype: np.dtype) -> float:
    """The value range metrics assume for a dtype (floats: 1.0)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return 1.0
    from skimage.util.dtype import dtype_range  # deferred: scikit-image's metrics import scipy.stats (0.5 s)

    lo, hi = dtype_range[dtype.type]
    return float(hi - lo)


def value_range(reference: np.ndarray) -> float:
    """The peak value figures use for an image: 255 for uint8, otherwise its own max - min.

    Scientific data (12/16-bit, float) rarely fills its dtype, so PSNR and SSIM of such
    data are given over the image's own value range, as microscopy figures are; a flat
    image falls back to :func:`data_range`.
    """
    reference = np.asarray(reference)
    if reference.dtype == np.uint8 or reference.size == 0:
        return data_range(reference.dtype)
    span = float(reference.max()) - float(reference.min())
    return span if span > 0 else data_range(reference.dtype)


def _pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference, test = np.asarray(reference), np.asarray(test)
    if reference.shape != test.shape:
        raise CjpgError(f"images differ in shape: {reference.shape} vs {test.shape}")
    return reference, test


def psnr(reference: np.ndarray, test: np.ndarray, data_range_: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB over all channels (inf for identical images), computed in
    float64: a test image of another dtype (float, or a wider integer) is not cast to the reference's."""
    reference, test = _pair(reference, test)
    rng = data_range(reference.dtype) if data_range_ is None else data_range_
    if np.array_equal(reference, test):
        return float("inf")
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(reference.astype(np.float64), test.astype(np.float64), data_range=rng))


def ssim(
    reference: np.ndarray, test: np.ndarray, *, rgb: bool | None = None, full: bool = False,
    data_range_: float | None = None,
):
    """Structural similarity (Wang et al. settings); with ``full`` also the SSIM map."""
    reference, test = _pair(reference, test)
    if rgb is None:
        rgb = reference.ndim == 3 and reference.shape[-1] == 3
    rng = data_range(reference.dtype) if data_range_ is None else data_range_
    if min(reference.shape[:2]) < SSIM_MIN_SIDE:
        raise CjpgError(f"SSIM needs images at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE}, got {reference.shape}")
    from skimage.metrics import structural_similarity

    return structural_similarity(
        reference.astype(np.float64), test.astype(np.float64), data_range=rng,
        channel_axis=-1 if rgb else None, full=full, **SSIM_SETTINGS,
    )


def bpp(n_bytes: int, shape: tuple[int, ...], rgb: bool | None = None) -> float:
    """Bits per pixel of a file of ``n_bytes`` holding an image of ``shape``."""
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] == 3
    plane = shape[-3:-1] if rgb else shape[-2:]
    planes = int(np.prod(shape[: len(shape) - (3 if rgb else 2)], dtype=np.int64))
    return n_bytes * 8 / (plane[0] * plane[1] * planes)
