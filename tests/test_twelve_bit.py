"""12-bit JPEG payloads for data of more than 8 bits, and the value mappings."""

from __future__ import annotations

import numpy as np
import pytest

import napari_cnnjpeg as cj
from napari_cnnjpeg.format.container import Container
from napari_cnnjpeg.format.jpeg import encode_jpeg12, jpeg_precision

from helpers import rewrite_meta


def _plane_psnr(ref: np.ndarray, test: np.ndarray) -> float:
    """PSNR over the plane's own value range, as microscopy figures are given."""
    ref, test = ref.astype(np.float64), test.astype(np.float64)
    rng = ref.max() - ref.min()
    return float(10 * np.log10(rng**2 / np.mean((ref - test) ** 2)))


@pytest.fixture(scope="module")
def cells() -> np.ndarray:
    """A 12-bit-deep (3, 96, 128) uint16 stack: smooth cells plus fine texture, brighter in each plane."""
    from skimage import data

    base = data.camera()[100:196, 200:328].astype(np.float64) / 255
    y, x = np.mgrid[0:96, 0:128]
    return np.stack([(300 + 3000 * k / 2 * base + 200 * np.sin(x / 3.0 + k) * np.cos(y / 5.0)).round()
                     for k in (1, 1.5, 2)]).astype(np.uint16)


@pytest.mark.parametrize("dtype", ["uint16", "int16", "int32", "float32", "float64"])
def test_12_bit_round_trip(cells, dtype):
    data = cells.astype(dtype) - (1000 if dtype != "uint16" else 0)
    blob = cj.encode(data[0], quality=97)
    assert jpeg_precision(blob) == 12 and cj.info(blob)["bits"] == 12
    out = cj.decode(blob)
    assert out.dtype == np.dtype(dtype) and out.shape == data[0].shape
    plane8 = cj.decode(cj.encode(data[0], quality=97, bits=8))
    assert _plane_psnr(data[0], out) > _plane_psnr(data[0], plane8) + 10  # 13x finer steps than 8 bits
    assert _plane_psnr(data[0], out) > 60


def test_12_bit_setting_follows_quality(cells):
    """Up to quality 60 a 12-bit payload is JPEG quality 1 (flat tables) with levels rising from
    256 to 4096; above, the JPEG quality rises. Rate and PSNR rise with quality, the header
    records the levels, and plain 12-bit payloads beat plain 8-bit JPEG at equal rate."""
    from napari_cnnjpeg.codec import FLAT_UP_TO, twelve_bit_setting
    from napari_cnnjpeg.eval.bd import bd_rate

    settings = [twelve_bit_setting(q) for q in range(1, 101)]
    assert settings[0] == (1, 255) and settings[FLAT_UP_TO - 1] == (1, 4095) and settings[-1] == (100, 4095)
    assert all(a[0] <= b[0] and a[1] <= b[1] and a != b for a, b in zip(settings, settings[1:]))
    curves = {}
    for bits in (8, 12):
        points = []
        for q in (10, 30, 50, 70, 90):
            blob = cj.encode(cells[0], quality=q, bits=bits, model="jpeg")
            if bits == 12:
                assert cj.info(blob)["levels"] == twelve_bit_setting(q)[1]
            points.append((len(blob) * 8 / cells[0].size, _plane_psnr(cells[0], cj.decode(blob))))
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(points, points[1:]))
        curves[bits] = list(zip(*points))
    assert bd_rate(*curves[8], *curves[12]) < -3  # -6.5 % on this plane


def test_quality_100_ceiling_over_70_db(cells):
    assert _plane_psnr(cells[0], cj.decode(cj.encode(cells[0], quality=100))) > 70


def test_stack_mapping_is_shared_and_plane_mapping_is_not(cells):
    stacked = cj.info(cj.encode(cells, quality=80))["mapping"]
    assert stacked["mode"] == "stack" and len(set(stacked["min"])) == 1 and len(set(stacked["max"])) == 1
    span = float(cells.max()) - float(cells.min())  # the low end may sit up to one DC grid step lower:
    grid = 0.7 * 121 / 8  # the weighted DC step (JPEG quality 50's largest luma step, flattened) / 8, in levels
    assert cells.min() - span * grid / 4095 <= stacked["min"][0] <= cells.min() and stacked["max"][0] == cells.max()
    per_plane = cj.info(cj.encode(cells, quality=80, mapping="plane"))["mapping"]
    assert per_plane["mode"] == "plane" and per_plane["max"] == [float(p.max()) for p in cells]
    blob = cj.encode(cells, quality=95, mapping=(0, 8191))
    given = cj.info(blob)["mapping"]
    assert given["mode"] == "range" and given["min"] == [0.0] * 3 and given["max"] == [8191.0] * 3
    out = cj.decode(blob)
    assert out.shape == cells.shape and _plane_psnr(cells[2], out[2]) > 45
    clipped = cj.decode(cj.encode(cells, quality=95, mapping=(0, 1000)))
    assert clipped.max() <= 1001  # outside the given range, values clip


def test_stacks_keep_intensities_comparable(cells):
    out = cj.decode(cj.encode(cells, quality=85))
    ratio = out[2].astype(float).mean() / out[0].astype(float).mean()
    assert ratio == pytest.approx(cells[2].astype(float).mean() / cells[0].astype(float).mean(), rel=0.01)


def test_12_bit_quality_is_monotone(cells):
    """PSNR never falls as quality rises (tolerance 0.05 dB), and neither does the size."""
    qualities = [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 100]
    sizes, psnrs = [], []
    for q in qualities:
        blob = cj.encode(cells[1], quality=q)
        sizes.append(len(blob))
        psnrs.append(_plane_psnr(cells[1], cj.decode(blob)))
    assert all(b >= a for a, b in zip(sizes, sizes[1:]))
    assert all(b >= a - 0.05 for a, b in zip(psnrs, psnrs[1:])), psnrs


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 12, "model": "restore-s-v2"}, "pass bits=8"),
    ({"bits": 10}, "bits must be 8 or 12"),
    ({"mapping": "per-plane"}, "mapping must be"),
    ({"mapping": (1, float("nan"))}, "mapping range"),
])
def test_bad_bits_and_mapping_arguments(cells, kwargs, match):
    with pytest.raises(cj.CjpgError, match=match):
        cj.encode(cells, **kwargs)


def test_uint8_keeps_8_bit_payloads(cells):
    img = (cells[0] >> 4).astype(np.uint8)
    assert jpeg_precision(cj.encode(img, quality=80)) == 8
    with pytest.raises(cj.CjpgError, match="uint8"):
        cj.encode(img, bits=12)
    with pytest.raises(cj.CjpgError, match="uint8"):
        cj.encode(img, mapping=(0, 10))


def test_a_network_model_keeps_8_bit_payloads(cells):
    blob = cj.encode(cells[0], quality=80, model="restore-s-v2")
    assert cj.info(blob)["bits"] == 8 and cj.decode(blob).dtype == np.uint16


def _stages12(identity: bool):
    import torch

    from napari_cnnjpeg.nn.models import ModelStages
    from napari_cnnjpeg.nn.nets import RestoreNet

    torch.manual_seed(0)
    net = RestoreNet(8, 8, 1)
    if not identity:
        torch.nn.init.normal_(net.tail.weight, std=0.05)
    return ModelStages(decoder=net.eval(), bits=12)


def test_a_12_bit_network_runs_on_12_bit_samples(cells):
    """An identity network gives back the plain 12-bit decode exactly (scaled by 4095, not 255);
    another changes it, and a file keeps 12-bit payloads."""
    identity, other = _stages12(True), _stages12(False)
    blob = cj.encode(cells[0], quality=60, model=identity)
    assert jpeg_precision(blob) == 12 and cj.info(blob)["bits"] == 12
    plain = cj.decode(blob, model="jpeg")
    np.testing.assert_array_equal(cj.decode(blob, model=identity), plain)
    changed = cj.decode(blob, model=other)
    assert changed.dtype == np.uint16 and np.abs(changed.astype(int) - plain).max() > 0


def test_payload_precision_and_model_must_agree(cells):
    twelve = cj.encode(cells[0], quality=60, model="jpeg")
    with pytest.raises(cj.CjpgError, match="12-bit payloads"):
        cj.decode(twelve, model="restore-s-v2")
    eight = cj.encode(cells[0], quality=60, model="jpeg", bits=8)
    with pytest.raises(cj.CjpgError, match="8-bit payloads"):
        cj.decode(eight, model=_stages12(True))
    with pytest.raises(cj.CjpgError, match="uint8"):
        cj.encode((cells[0] >> 4).astype(np.uint8), model=_stages12(True))
    with pytest.raises(cj.CjpgError, match="pass bits=12"):
        cj.encode(cells[0], model=_stages12(True), bits=8)


@pytest.mark.parametrize("quality", [1, 30, 95, 100])
def test_quantisation_tables_read_from_8_and_12_bit_streams(quality):
    """Tables come from the DQT segments: as Pillow reads them (8-bit) and as the 12-bit
    encoder wrote them (libjpeg's standard tables at that quality)."""
    from skimage import data

    from napari_cnnjpeg.format.jpeg import (
        _open,
        encode_jpeg,
        quant_tables,
        tables_for_quality,
    )

    rgb = data.astronaut()[:64, :64]
    blob = encode_jpeg(rgb, quality, "4:2:0")
    pillow = _open(blob).quantization
    luma, chroma = quant_tables(blob)
    np.testing.assert_array_equal(luma.ravel(), pillow[0])
    np.testing.assert_array_equal(chroma.ravel(), pillow[1])
    luma12, chroma12 = quant_tables(encode_jpeg12(rgb[..., 0].astype(np.uint16) * 16, quality))
    np.testing.assert_array_equal(luma12, tables_for_quality(quality)[0])
    assert chroma12 is None


def test_the_12_bit_default_model_restores_microscopy():
    """Data of more than 8 bits gets micro-s by default; it beats the plain 12-bit decode of the same file."""
    from napari_cnnjpeg._napari._sample_data import micro_image
    from napari_cnnjpeg.nn.models import default_model, model_info

    image = micro_image()[128:384, 128:384]
    assert model_info(default_model(12)).bits == 12 and default_model(12) != "jpeg"
    for quality in (50, 70):
        blob = cj.encode(image, quality=quality)
        assert cj.info(blob)["model"] == default_model(12)
        gain = _plane_psnr(image, cj.decode(blob)) - _plane_psnr(image, cj.decode(blob, model="jpeg"))
        assert gain > 0.2, (quality, gain)


def test_a_truncated_12_bit_jpeg_is_refused_not_filled_with_grey():
    """libjpeg-turbo decodes a truncated stream with a warning and grey where data is missing:
    restore() names the problem instead."""
    plane = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)
    data = encode_jpeg12(plane, 90)
    assert cj.restore(data).shape == plane.shape
    for cut in (len(data) - 2, len(data) // 2):
        with pytest.raises(cj.CjpgError, match="truncated 12-bit JPEG"):
            cj.restore(data[:cut])


def test_flat_background_aligned_to_dc_grid():
    """A plane that is mostly flat background: its mapping is widened so that the background
    lands on a value JPEG's DC step reconstructs, so PSNR rises with quality, and beats the
    same payload mapped from the plane's own min/max as a given range (not aligned)."""
    from napari_cnnjpeg.codec import _dc_aligned_low

    y, x = np.mgrid[0:128, 0:128]
    plane = np.full((128, 128), 1130, np.uint16)
    cell = (y - 48) ** 2 + (x - 60) ** 2 < 15**2  # a smooth bright cell
    plane[cell] = (3000 + 5 * (x - y))[cell]
    lo, hi = float(plane.min()), float(plane.max())
    assert _dc_aligned_low(plane, lo, hi, 255, 1) < lo and _dc_aligned_low(plane, lo, hi, 4095, 100) <= lo
    psnrs = [_plane_psnr(plane, cj.decode(cj.encode(plane, quality=q, model="jpeg"))) for q in range(20, 71, 5)]
    assert all(b > a - 0.05 for a, b in zip(psnrs, psnrs[1:])), psnrs
    for q in (20, 40):
        aligned = cj.decode(cj.encode(plane, quality=q, model="jpeg"))
        plain = cj.decode(cj.encode(plane, quality=q, model="jpeg", mapping=(lo, hi)))
        assert _plane_psnr(plane, aligned) > _plane_psnr(plane, plain) + 1


def test_a_plane_of_few_values_keeps_its_quality_above_60():
    """Ten far-apart values fill 0..4095 edge to edge: the frequency weighting from quality 61 would
    clip them and lose 10 dB (36 dB against 47 dB at quality 60); the plane gets headroom instead."""
    plane = (1000 + np.random.default_rng(5).integers(0, 10, (128, 128))).astype(np.uint16)
    at60 = _plane_psnr(plane, cj.decode(cj.encode(plane, quality=60)))
    for quality in (61, 75, 90, 98):
        blob = cj.encode(plane, quality=quality)
        with np.errstate(divide="ignore"):  # from quality 70 it comes back exactly
            assert cj.info(blob)["weighting"] and _plane_psnr(plane, cj.decode(blob)) > at60 - 0.5, quality


def test_a_range_too_wide_for_float64_is_refused():
    plane = np.zeros((16, 16))
    plane[0, 0], plane[1, 1] = 1e308, -1e308
    with pytest.raises(cj.CjpgError, match="too wide"):
        cj.encode(plane, quality=50)


def test_dc_alignment_weighs_what_a_wider_range_costs():
    """Widening the range downward aligns the block means but spreads the plane over fewer
    levels: the codec's choice leaves no more error than the best of the shifts it could have
    made (each given as a range), on a textured plane and on a mostly flat one, and it records
    a short number."""
    from napari_cnnjpeg.codec import twelve_bit_setting
    from napari_cnnjpeg.format.jpeg import _standard_tables

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:96, 0:128]
    textured = (1500 + 900 * np.sin(x / 5) * np.cos(y / 7) + rng.normal(0, 60, (96, 128))).astype(np.uint16)
    sparse = np.full((96, 128), 310, np.uint16) + rng.poisson(4, (96, 128)).astype(np.uint16)
    sparse[30:60, 40:80] += 2500
    for plane in (textured, sparse):
        lo, hi = float(plane.min()), float(plane.max())
        for quality in (5, 30, 55):
            jpeg_quality, levels = twelve_bit_setting(quality)
            data = cj.encode(plane, quality=quality, model="jpeg")
            chosen = np.mean((cj.decode(data).astype(float) - plane) ** 2)
            grid = _standard_tables(jpeg_quality)[0][0, 0] / 8 * (hi - lo) / levels
            shifts = [np.mean((cj.decode(cj.encode(plane, quality=quality, model="jpeg", mapping=(lo - t * grid, hi)))
                               .astype(float) - plane) ** 2) for t in np.arange(16) / 16]
            assert chosen <= 1.03 * min(shifts), (quality, chosen, min(shifts))
            assert len(repr(cj.info(data)["mapping"]["min"][0])) <= 7


def test_frequency_weighting_flattens_the_effective_steps():
    """Weights scale each DCT frequency so that its effective step is max(T, flatten * max(T))."""
    from napari_cnnjpeg.format.jpeg import _standard_tables
    from napari_cnnjpeg.format.weighting import effective_table, unweight, weight, weights

    table = _standard_tables(50)[0]
    eff = effective_table(table, 0.7)
    np.testing.assert_allclose(eff, np.maximum(table, 0.7 * table.max()))
    assert weights(table, 0.7).max() == 1.0 and weights(np.zeros((8, 8)), 0.7).min() > 0  # crafted zeros
    y, x = np.mgrid[0:67, 0:90]  # partial blocks at the edges stay as they are
    plane = (2000 + 1500 * np.sin(x / 7) * np.cos(y / 11)).astype(np.uint16)
    weighted = weight(plane, table, 0.7)
    assert weighted.dtype == np.uint16 and np.abs(weighted.astype(int) - plane).max() > 100
    np.testing.assert_array_equal(weighted[64:], plane[64:])
    np.testing.assert_array_equal(weighted[:, 88:], plane[:, 88:])
    assert np.abs(unweight(weighted, table, 0.7).astype(int) - plane).max() <= 8  # rounding, amplified by 1/w
    finer_dc = effective_table(table, 0.7, 0.25, 0.5)  # the block mean's own, finer step
    assert finer_dc[0, 0] == pytest.approx(max(table[0, 0] / 0.5, 0.25 * 0.7 * table.max()))
    np.testing.assert_allclose(finer_dc.ravel()[1:], eff.ravel()[1:])
    assert weights(np.ones((8, 8)), 0.7, 0.25, 0.5)[0, 0] == 0.5  # capped: block means still move towards 2048


def test_files_weighted_before_the_dc_pair_still_decode(cells, monkeypatch):
    """Files written before ``weighting_dc`` existed (their DC weighted like every frequency) decode
    as they always did: a missing pair means [1, 1]."""
    import napari_cnnjpeg.codec as codec

    monkeypatch.setattr(codec, "WEIGHTING_DC", (1.0, 1.0))
    monkeypatch.setattr(codec, "smallest_coding12", lambda data: data)  # nor arithmetic coding then
    blob = cj.encode(cells[1], quality=80)
    old = rewrite_meta(blob, lambda m: (m.pop("weighting_dc"), m.update(required=["bits", "levels", "weighting"])))
    assert cj.info(old)["weighting_dc"] == [1.0, 1.0]
    np.testing.assert_array_equal(cj.decode(old, model="jpeg"), cj.decode(blob, model="jpeg"))
    np.testing.assert_array_equal(cj.decode(old), cj.decode(blob))


def _sparse_cells() -> np.ndarray:
    """Six bright Gaussian cells (1500 counts) on a photon-noise background of mean 2, uint16."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    plane = rng.poisson(2.0, (256, 256)).astype(np.float64)
    for cy, cx, r in rng.uniform((20, 20, 4), (236, 236, 12), (6, 3)):
        plane += 1500 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    return plane.astype(np.uint16)


def test_weighted_quality_is_monotone_on_a_sparse_plane():
    """Six cells on a photon-noise background of mean 2: with the block means as coarse as the
    other weighted frequencies, PSNR fell by up to 1.2 dB from one quality to the next above 60;
    with their own finer step it does not fall (tolerance 0.05 dB), with or without the network."""
    plane = _sparse_cells()
    for model in ("jpeg", None):
        psnrs = [_plane_psnr(plane, cj.decode(cj.encode(plane, quality=q), model=model)) for q in range(61, 101, 2)]
        dips = np.maximum.accumulate(psnrs) - psnrs
        assert dips.max() <= 0.05, (model, np.round(psnrs, 2).tolist())


def test_weighted_hot_pixels_on_a_dark_noisy_plane_clip_less(monkeypatch):
    """Hot pixels (0.2 % at 4095) on a dark, noisy plane: weighting pushes such blocks outside
    0..4095, and the clip, amplified when the weighting is undone, costs PSNR. The plane gets
    headroom where the clip costs more than coarser steps (codec._weighting_headroom): quality
    90-99 then rises without a dip (it fell 1.0 dB at 97 without). Without headroom, the block
    means pulled towards 2048 by at most half (the capped DC weight) instead of DC-weighted like
    the rest gain 5 dB or more."""
    import napari_cnnjpeg.codec as codec

    rng = np.random.default_rng(1)
    plane = rng.gamma(1.5, 120.0, (192, 192))
    plane[rng.random(plane.shape) < 0.002] = 4095
    plane = np.clip(plane, 0, 4095).astype(np.uint16)

    def curve():
        return np.array([_plane_psnr(plane, cj.decode(cj.encode(plane, quality=q), model="jpeg")) for q in range(90, 100)])

    roomy = curve()
    assert (np.maximum.accumulate(roomy) - roomy).max() <= 0.05, roomy
    monkeypatch.setattr(codec, "_weighting_headroom", lambda *a: 1.0)
    capped = curve()
    assert np.all(roomy >= capped - 0.05) and roomy[7] > capped[7] + 5, (roomy, capped)
    monkeypatch.setattr(codec, "WEIGHTING_DC", (1.0, 1.0))
    assert np.all(capped - curve() > 5), capped


def test_weighted_12_bit_payloads_beat_unweighted_ones(cells):
    """Grey planes above quality 60 are frequency weighted (recorded, and listed as required);
    at equal rate, their plain decode (the weighting undone, no network) is better than plain
    JPEG's unweighted payloads. Plain JPEG (model "jpeg") stays unweighted: any 12-bit decoder
    shows it exactly."""
    import napari_cnnjpeg.codec as codec
    from napari_cnnjpeg.eval.bd import bd_rate
    from napari_cnnjpeg.format.jpeg import _standard_tables, decode_jpeg12, quant_tables

    def curve(model):
        points = []
        for q in (65, 75, 85, 95):
            blob = cj.encode(cells[1], quality=q, model=model)
            points.append((len(blob) * 8 / cells[1].size, _plane_psnr(cells[1], cj.decode(blob, model="jpeg"))))
        return list(zip(*points))

    for q, weighted in ((50, False), (60, False), (61, True), (90, True), (100, False)):
        blob = cj.encode(cells[1], quality=q)
        assert (cj.info(blob)["weighting"] == codec.FLATTEN) == weighted, q
        assert (cj.info(blob)["weighting_dc"] == list(codec.WEIGHTING_DC)) == weighted, q
        assert ({"weighting", "weighting_dc"} <= set(Container.open(blob).meta["required"])) == weighted
        jq = codec.twelve_bit_setting(q)[0]
        np.testing.assert_array_equal(quant_tables(blob)[0], _standard_tables(jq)[0])  # the encoder's own tables
    assert cj.info(cj.encode(np.stack([cells[1]] * 3, -1), quality=80))["weighting"] is None  # RGB: not weighted
    plain = cj.encode(cells[1], quality=80, model="jpeg", mapping=(0, 4095))
    assert cj.info(plain)["weighting"] is None
    np.testing.assert_array_equal(cj.decode(plain), decode_jpeg12(plain))
    assert bd_rate(*curve("jpeg"), *curve(None)) < -5


def test_12_bit_colour_keeps_full_chroma_at_high_quality():
    """A 16-bit RGB image at 4:2:0 stops near 40 dB however high the quality; by default 12-bit
    payloads switch to 4:4:4 from quality 90, so PSNR and size keep rising up to a 70 dB ceiling.
    An asked-for subsampling is kept."""
    from skimage import data

    from napari_cnnjpeg.codec import FULL_CHROMA_FROM

    FULL_CHROMA_FROM = FULL_CHROMA_FROM[12]
    image = data.astronaut()[96:352, 128:384].astype(np.uint16) * 257
    points = []
    for q in (80, FULL_CHROMA_FROM - 1, FULL_CHROMA_FROM, 95, 100):
        blob = cj.encode(image, quality=q)
        assert cj.info(blob)["subsampling"] == ("4:4:4" if q >= FULL_CHROMA_FROM else "4:2:0")
        points.append((len(blob), _plane_psnr(image, cj.decode(blob))))
    sizes, psnrs = zip(*points)
    assert all(b > a for a, b in zip(sizes, sizes[1:])) and all(b > a - 0.05 for a, b in zip(psnrs, psnrs[1:])), points
    assert psnrs[-1] > 70 and psnrs[-1] > _plane_psnr(image, cj.decode(cj.encode(image, quality=100, subsampling="4:2:0"))) + 20
    assert cj.info(cj.encode(image, quality=95, subsampling="4:2:0"))["subsampling"] == "4:2:0"


def test_a_zero_background_is_aligned_below_the_dtype():
    """A sparse uint16 plane whose background is 0 (a few bright cells, photon noise): its range
    widens below 0, so that the background lands on JPEG's DC grid. Kept at 0 (as a range the
    user gives is kept), it could not be aligned: lower PSNR, and falls of up to 2.6 dB from one
    quality to the next on such planes."""
    plane = _sparse_cells()
    assert plane.min() == 0
    aligned, kept, lows = [], [], []
    for q in range(45, 100, 5):
        blob = cj.encode(plane, quality=q)
        lows.append(min(cj.info(blob)["mapping"]["min"]))
        aligned.append(_plane_psnr(plane, cj.decode(blob)))
        kept.append(_plane_psnr(plane, cj.decode(cj.encode(plane, quality=q, mapping=(0, int(plane.max()))))))
    assert max(lows) <= 0 and sum(low < 0 for low in lows) >= len(lows) // 2, lows  # aligned below 0 where it pays
    assert np.mean(aligned) > np.mean(kept) + 0.3, (aligned, kept)


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_restoring_12_bit_colour_histology_is_never_worse(subsampling):
    """The 12-bit default restores a plain 12-bit colour JPEG of a stained histology slide no worse
    than its plain decode (a decoder fine-tuned on colour photos lost up to 2 dB there: not shipped)."""
    from skimage import data

    from napari_cnnjpeg.format.jpeg import decode_jpeg12

    image = data.immunohistochemistry()[:256, :256].astype(np.uint16) * 16
    for quality in (50, 90):
        stream = encode_jpeg12(image, quality, subsampling)
        plain = _plane_psnr(image, decode_jpeg12(stream))
        assert _plane_psnr(image, cj.restore(stream)) > plain - 0.05, (quality, plain)


def test_12_bit_payloads_are_arithmetic_coded_where_that_is_smaller(monkeypatch):
    """The default path recodes each 12-bit payload with arithmetic coding (SOF9/SOF10) where that
    is smaller: the same samples, fewer bytes, a field older readers must refuse; plain JPEG
    (``model="jpeg"``) stays Huffman coded, as every 12-bit decoder reads it."""
    import napari_cnnjpeg.codec as codec
    from napari_cnnjpeg.format.container import Container
    from napari_cnnjpeg.format.jpeg import ARITHMETIC_FRAMES, _frame

    plane = _sparse_cells()
    blob = cj.encode(plane, quality=50)
    with Container.open(blob) as c:
        assert _frame(c.payload(0))[0] in ARITHMETIC_FRAMES and "arithmetic" in c.meta["required"]
    assert cj.info(blob)["arithmetic"] and "arithmetic coded" in cj.info(blob)["stock_viewer"]
    monkeypatch.setattr(codec, "smallest_coding12", lambda data: data)
    huffman = cj.encode(plane, quality=50)
    assert not cj.info(huffman)["arithmetic"] and len(blob) < 0.9 * len(huffman)
    np.testing.assert_array_equal(cj.decode(blob, model="jpeg"), cj.decode(huffman, model="jpeg"))
    np.testing.assert_array_equal(cj.decode(blob), cj.decode(huffman))
    monkeypatch.undo()
    with Container.open(cj.encode(plane, quality=50, model="jpeg")) as c:
        assert _frame(c.payload(0))[0] == 0xC1 and "arithmetic" not in c.meta["required"]


def test_12_bit_payloads_take_the_smallest_coding_so_size_rises_with_quality(cells):
    """No threshold on the saving: the payload is the smallest of Huffman, sequential and progressive
    arithmetic coding, each of which grows with quality, so files never shrink as quality rises
    (a 3 % threshold let a held-out plane's file shrink by 25 bytes where the choice switched)."""
    import turbojpeg

    from napari_cnnjpeg.format.jpeg import smallest_coding12

    rng = np.random.default_rng(5)
    dense = np.clip(cells[1].astype(np.float64) + rng.normal(0, 300, cells[1].shape), 0, 4095).astype(np.uint16)
    for plane in (_sparse_cells(), dense):
        sizes = [len(cj.encode(plane, quality=q)) for q in range(40, 101, 3)]
        assert all(b >= a for a, b in zip(sizes, sizes[1:])), sizes
        data = encode_jpeg12(plane, 80)
        codings = [data] + [turbojpeg.transform(data, arithmetic=True, progressive=p, copynone=True) for p in (0, 1)]
        assert len(smallest_coding12(data)) == min(map(len, codings))


def test_12_bit_coding_stays_huffman_without_turbojpeg(monkeypatch):
    import sys

    from napari_cnnjpeg.format.jpeg import encode_jpeg12, smallest_coding12

    data = encode_jpeg12(_sparse_cells() >> 4, 50)
    monkeypatch.setitem(sys.modules, "turbojpeg", None)  # import fails
    assert smallest_coding12(data) is data
