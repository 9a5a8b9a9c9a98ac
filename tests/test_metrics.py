"""The metric functions and their fixed settings."""

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from napari_cnnjpeg import CjpgError
from napari_cnnjpeg.eval.metrics import bpp, data_range, psnr, ssim


def test_psnr_matches_skimage_with_dtype_range():
    a = data.camera()
    b = np.clip(a.astype(int) + 7, 0, 255).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    assert psnr(a, a) == float("inf")
    a16 = a.astype(np.uint16) * 100
    assert data_range(np.uint16) == 65535
    assert psnr(a16, a16 + 1) == pytest.approx(peak_signal_noise_ratio(a16, a16 + 1, data_range=65535))


def test_ssim_settings_of_wang_et_al():
    a = data.astronaut()[:128, :128]
    b = np.clip(a.astype(int) + np.random.default_rng(0).integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a.astype(float), b.astype(float), data_range=255, channel_axis=-1,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(a, b) == pytest.approx(ref)
    score, smap = ssim(a[..., 0], b[..., 0], full=True)
    assert smap.shape == a.shape[:2] and 0 < score < 1


def test_bpp():
    assert bpp(1000, (100, 80)) == pytest.approx(1.0)
    assert bpp(1000, (100, 80, 3)) == pytest.approx(1.0)
    assert bpp(1000, (2, 100, 80)) == pytest.approx(0.5)


def test_shape_mismatch():
    with pytest.raises(CjpgError, match="shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_psnr_of_another_dtype_is_not_cast_to_the_reference():
    """A float or wider-integer test image against a uint16 reference: no truncation, no wrap-around."""
    rng = np.random.default_rng(0)
    ref = (rng.random((40, 50)) * 1000).astype(np.uint16)
    noise = rng.random(ref.shape)
    expected = 10 * np.log10(999.0**2 / np.mean(noise**2))
    assert psnr(ref, ref + noise, 999.0) == pytest.approx(expected, abs=1e-6)
    shifted = ref.astype(np.int32) - 500
    assert psnr(ref, shifted, 999.0) == pytest.approx(10 * np.log10(999.0**2 / 500**2), abs=1e-6)
