"""The PyTorch JPEG emulation against the real thing: Pillow's (libjpeg-turbo's) encoder and decoder."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
from skimage import data

from napari_cnnjpeg.errors import CjpgError
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.jpeg import (
    SUBSAMPLING,
    TUNED_TABLES,
    decode_jpeg,
    encode_jpeg,
    quant_tables,
    tables_for_quality,
)
from napari_cnnjpeg.nn.jpeg_emulation import FACTORS, jpeg_roundtrip

torch.set_num_threads(1)

QUALITIES = [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]
COLOUR_MODES = ["4:2:0", "4:4:4", "4:2:2"]
MIN_PSNR = 45.0


@lru_cache(maxsize=None)
def colour_images() -> tuple[np.ndarray, ...]:
    """Crops of scikit-image's photos: a multiple of 16, and sizes that are not multiples of 8."""
    return (
        np.ascontiguousarray(data.astronaut()[100:260, 150:310]),  # 160 x 160
        np.ascontiguousarray(data.chelsea()[60:161, 180:257]),  # 101 x 77
        np.ascontiguousarray(data.coffee()[::3, ::3][5:135, 20:170]),  # 130 x 150, downsized
    )


@lru_cache(maxsize=None)
def grey_images() -> tuple[np.ndarray, ...]:
    camera = data.camera()
    return np.ascontiguousarray(camera[150:310, 180:340]), np.ascontiguousarray(camera[::3, ::3][10:111, 40:117])


def to_tensor(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(img.astype(np.float32) / 255)
    return x[None, None] if img.ndim == 2 else x.permute(2, 0, 1)[None]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    arr = (x[0].permute(1, 2, 0).detach().numpy() * 255).round().astype(np.uint8)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def emulated_psnr(img: np.ndarray, quality: int, subsampling: str, tuning: dict | None = None) -> float:
    """PSNR of the emulation's decoded image against Pillow's decode of the real JPEG."""
    stream = encode_jpeg(img, quality, subsampling, tuning)
    luma, chroma = quant_tables(stream)
    out = jpeg_roundtrip(to_tensor(img), luma, chroma, subsampling)
    assert out.shape == to_tensor(img).shape
    return psnr(decode_jpeg(stream), to_uint8(out))


@pytest.mark.parametrize("subsampling", COLOUR_MODES)
@pytest.mark.parametrize("quality", QUALITIES)
def test_matches_pillow_colour(quality, subsampling):
    for img in colour_images():
        assert emulated_psnr(img, quality, subsampling) >= MIN_PSNR, img.shape


@pytest.mark.parametrize("quality", QUALITIES)
def test_matches_pillow_grey(quality):
    for img in grey_images():
        assert emulated_psnr(img, quality, "4:2:0") >= MIN_PSNR, img.shape


@pytest.mark.parametrize("subsampling", COLOUR_MODES)
@pytest.mark.parametrize("quality", [5, 30, 75, 95])
def test_matches_pillow_tuned_tables(quality, subsampling):
    for img in colour_images():
        assert emulated_psnr(img, quality, subsampling, TUNED_TABLES) >= MIN_PSNR, img.shape


@pytest.mark.parametrize("subsampling", COLOUR_MODES)
def test_matches_pillow_tiny_and_odd_sizes(subsampling):
    """Edge replication and the narrow-chroma fallback of libjpeg-turbo's upsampler."""
    photo = data.chelsea()
    for h, w in [(1, 1), (2, 3), (3, 5), (5, 4), (7, 9), (9, 17), (17, 33), (33, 6)]:
        img = np.ascontiguousarray(photo[100:100 + h, 200:200 + w])
        for quality in (10, 75):
            assert emulated_psnr(img, quality, subsampling) >= MIN_PSNR, (h, w, quality)
    grey = np.ascontiguousarray(data.camera()[200:203, 100:111])
    assert emulated_psnr(grey, 50, "4:2:0") >= MIN_PSNR


def test_subsampling_names_match_the_codec():
    assert set(FACTORS) == set(SUBSAMPLING)


def batch() -> torch.Tensor:
    return torch.cat([to_tensor(img[:101, :77]) for img in colour_images()])


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_per_image_tables_match_one_at_a_time(subsampling):
    x = batch()
    tables = [tables_for_quality(q, tuning) for q, tuning in [(5, None), (50, TUNED_TABLES), (90, None)]]
    luma = np.stack([t[0] for t in tables])
    chroma = torch.from_numpy(np.stack([t[1] for t in tables]))
    together = jpeg_roundtrip(x, luma, chroma, subsampling)
    alone = torch.cat([jpeg_roundtrip(x[i:i + 1], luma[i], chroma[i], subsampling) for i in range(len(x))])
    assert torch.equal(together, alone)
    shared = jpeg_roundtrip(x, *tables_for_quality(50), subsampling)
    assert torch.equal(shared[1:2], jpeg_roundtrip(x[1:2], *tables_for_quality(50), subsampling))


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_differentiable_same_forward_and_gradient(subsampling):
    luma, chroma = tables_for_quality(20)
    x = batch()
    plain = jpeg_roundtrip(x, luma, chroma, subsampling)
    assert not plain.requires_grad
    xg = x.clone().requires_grad_(True)
    out = jpeg_roundtrip(xg, luma, chroma, subsampling, differentiable=True)
    assert out.requires_grad and out.dtype == x.dtype
    assert torch.equal(out.detach(), plain)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_differentiable_grey():
    x = to_tensor(grey_images()[1]).requires_grad_(True)
    luma = tables_for_quality(40)[0]
    out = jpeg_roundtrip(x, luma, differentiable=True)
    assert torch.equal(out.detach(), jpeg_roundtrip(x.detach(), luma))
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_output_dtype_range_and_rounding():
    luma, chroma = tables_for_quality(75)
    x = to_tensor(colour_images()[1])
    out64 = jpeg_roundtrip(x.double(), torch.from_numpy(luma), torch.from_numpy(chroma))
    assert out64.dtype == torch.float64 and out64.shape == x.shape
    assert 0 <= out64.min() and out64.max() <= 1
    assert torch.equal(out64 * 255, (out64 * 255).round())
    # the encoder sees 8-bit levels: a perturbation under half a level changes nothing
    nudged = (x + 0.4 / 255 * (torch.rand_like(x) - 0.5)).clamp(0, 1)
    assert torch.equal(jpeg_roundtrip(nudged, luma, chroma), out64.float())


@pytest.mark.parametrize(
    "args",
    [
        (torch.rand(3, 8, 8), "luma", "chroma", "4:2:0"),  # no batch axis
        (torch.rand(1, 2, 8, 8), "luma", "chroma", "4:2:0"),  # two channels
        (torch.rand(1, 3, 0, 8), "luma", "chroma", "4:2:0"),  # empty
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "luma", "chroma", "4:2:0"),  # not floating point
        (np.zeros((1, 3, 8, 8), np.float32), "luma", "chroma", "4:2:0"),  # not a tensor
        (torch.rand(1, 3, 8, 8), "luma", "chroma", "4:1:1"),  # unknown subsampling
        (torch.rand(1, 3, 8, 8), np.ones(64, np.float32), "chroma", "4:2:0"),  # flat table
        (torch.rand(1, 3, 8, 8), "luma", np.ones((2, 8, 8), np.float32), "4:2:0"),  # batch mismatch
        (torch.rand(1, 3, 8, 8), "luma", None, "4:2:0"),  # colour without a chroma table
        (torch.rand(1, 3, 8, 8), "luma", [[1] * 8] * 8, "4:2:0"),  # a list
    ],
)
def test_bad_inputs_raise(args):
    luma, chroma = tables_for_quality(50)
    rgb, lt, ct, subsampling = args
    lt = luma if isinstance(lt, str) else lt
    ct = chroma if isinstance(ct, str) else ct
    with pytest.raises(CjpgError):
        jpeg_roundtrip(rgb, lt, ct, subsampling)
