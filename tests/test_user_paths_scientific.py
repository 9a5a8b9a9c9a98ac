"""What imaging scientists get back from 12/16-bit and float data: bad input named, stacks, the plain view."""

from __future__ import annotations

import time

import numpy as np
import pytest

import napari_cnnjpeg as cj
from napari_cnnjpeg.codec import Reader, _from_unit
from napari_cnnjpeg.format import container


def _em(seed: int, shape=(64, 64)) -> np.ndarray:
    """Dense texture with photon noise, about 0-5000 counts (an electron micrograph's stand-in)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    lam = 2500 + 1200 * np.sin(x / 2.3 + seed) * np.cos(y / 3.1) + 600 * np.sin((x + y) / 7.0)
    return rng.poisson(lam).astype(np.uint16)


@pytest.mark.parametrize("mapping", ["stack", "plane", (0.0, 1.0)])
def test_nan_in_a_stack_names_its_plane(mapping):
    data = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    data[1, 2, 5, 5] = np.nan
    with pytest.raises(cj.CjpgError, match=r"NaN or infinite values \(plane \(1, 2\) of the stack\)"):
        cj.encode(data, quality=50, mapping=mapping)
    data = data[1]
    data[2, 5, 5] = -np.inf
    with pytest.raises(cj.CjpgError, match=r"\(plane 2 of the stack\)"):
        cj.encode(data, quality=50, mapping=mapping)
    with pytest.raises(cj.CjpgError, match=r"NaN or infinite values, which"):  # a 2D image has no plane number
        cj.encode(data[2], quality=50)


def test_more_planes_than_a_file_holds_are_refused_before_coding():
    """10 000 001 planes (a zero-strided view: no memory) are refused at once, not coded for hours into
    a file every reader refuses."""
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint16), shape=(container.MAX_PLANES + 1, 8, 8),
                                           strides=(0, 0, 0))
    start = time.perf_counter()
    with pytest.raises(cj.CjpgError, match="10000001 planes; a .cjpg file holds at most 10000000"):
        cj.encode(huge, quality=50)
    assert time.perf_counter() - start < 2


def test_a_header_too_large_for_readers_is_not_written(monkeypatch):
    """The writer refuses metadata larger than a reader accepts (MAX_META; millions of planes reach it)."""
    stack = np.stack([_em(k, (16, 16)) for k in range(3)])
    blob = cj.encode(stack, quality=40)
    assert cj.decode(blob).shape == stack.shape
    monkeypatch.setattr(container, "MAX_META", 200)
    with pytest.raises(cj.CjpgError, match="more than a reader accepts .*several files"):
        cj.encode(stack, quality=40)


def test_a_stock_12_bit_decoder_shows_unweighted_files_exactly_and_weighted_ones_flattened():
    """imagecodecs' 12-bit decoder shows an unweighted payload (the default path up to quality 60, plain
    `jpeg` at any) as `decode(model="jpeg")` does; a weighted one (the default path at 61-99) only
    flattened, which `info` says without calling it exact."""
    imagecodecs = pytest.importorskip("imagecodecs")
    plane = _em(1)
    for quality, model, weighted in ((60, None, False), (90, "jpeg", False), (90, None, True)):
        blob = cj.encode(plane, quality=quality, model=model)
        about = cj.info(blob)
        assert about["levels"] == 4095 and bool(about["weighting"]) == weighted
        m = about["mapping"]
        stock = _from_unit(imagecodecs.jpeg8_decode(blob), m["min"][0], m["max"][0], plane.dtype, 4095)
        assert np.array_equal(stock, cj.decode(blob, model="jpeg")) != weighted
        assert ("exact" in about["stock_viewer"]) is False
        assert ("low frequencies attenuated" in about["stock_viewer"]) == weighted


def test_planes_of_an_nd_stack_read_alone_agree_with_the_whole():
    """(T, Z, Y, X) int16 with negative values, each plane its own range: `read_plane` and `Reader.plane`
    give what `decode` gives, in C order; a constant plane comes back exactly."""
    data = np.stack([np.stack([_em(3 * t + z, (40, 56)).astype(np.int16) - 3000 for z in range(3)])
                     for t in range(2)])
    data[1, 0] = -7  # a constant plane
    blob = cj.encode(data, quality=70, mapping="plane", axes="TZYX")
    whole = cj.decode(blob)
    assert whole.shape == data.shape and whole.dtype == np.int16 and np.array_equal(whole[1, 0], data[1, 0])
    about = cj.info(blob)
    assert (about["planes"], about["axes"], about["dtype"], about["bits"]) == (6, "TZYX", "int16", 12)
    assert about["mapping"]["mode"] == "plane" and len(about["mapping"]["min"]) == 6
    assert about["bpp"] == pytest.approx(len(blob) * 8 / (6 * 40 * 56))
    with Reader(blob) as r:
        for k in range(6):
            assert np.array_equal(r.plane(k), whole[k // 3, k % 3])
            assert np.array_equal(cj.read_plane(blob, k), whole[k // 3, k % 3])


def test_piecewise_flat_planes_are_left_as_decoded():
    """A two-valued 16-bit plane (a mask or a block pattern) decodes nearly exactly as plain JPEG; the
    12-bit network took its edges for blocking and lost up to 47 dB (70.7 -> 23.8 dB at quality 13).
    Decoder-only models now leave planes of at most models.FLAT_VALUES sample values as decoded; a
    textured plane is still restored."""
    from napari_cnnjpeg.nn.models import FLAT_VALUES, few_values

    y, x = np.mgrid[0:128, 0:128]
    mask = np.where(((x // 8) + (y // 8)) % 2 == 0, 20000, 500).astype(np.uint16)
    for q in (13, 30, 61):
        blob = cj.encode(mask, quality=q)
        np.testing.assert_array_equal(cj.decode(blob), cj.decode(blob, model="jpeg"))
    texture = (np.random.default_rng(0).normal(2000, 300, (128, 128))).clip(0, 4095).astype(np.uint16)
    blob = cj.encode(texture, quality=30)
    assert not np.array_equal(cj.decode(blob), cj.decode(blob, model="jpeg"))
    assert few_values(np.tile(np.arange(FLAT_VALUES, dtype=np.uint8), (16, 2)))
    assert not few_values(np.tile(np.arange(FLAT_VALUES + 1, dtype=np.uint8), (16, 2)))
