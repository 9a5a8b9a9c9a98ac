"""8-bit JPEG coding: progressive scans and mozjpeg's trellis quantisation."""

import numpy as np
import pytest
from skimage import data

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format import jpeg
from napari_cnnjpeg.format.container import Container


@pytest.fixture(scope="module")
def photo():
    return data.astronaut()[::2, ::2].copy()


def _frame(blob: bytes) -> int:
    """The stream's start-of-frame marker: 0xC0 baseline, 0xC2 progressive."""
    i = 2
    while blob[i] == 0xFF and not 0xC0 <= blob[i + 1] <= 0xC2:
        i += 2 + int.from_bytes(blob[i + 2 : i + 4], "big")
    return blob[i + 1]


@pytest.mark.parametrize("tables", [None, jpeg.TUNED_TABLES])
def test_progressive_scans_are_lossless_and_smaller(photo, tables):
    base = jpeg.encode_jpeg(photo, 60, tables=tables)
    prog = jpeg.encode_jpeg(photo, 60, tables=tables, progressive=True)
    assert _frame(base) == 0xC0 and _frame(prog) == 0xC2
    assert len(prog) < len(base)
    assert np.array_equal(jpeg.decode_jpeg(prog), jpeg.decode_jpeg(base))


@pytest.mark.parametrize("layout", ["4:2:0", "4:2:2", "4:4:4", "grey"])
def test_trellis_keeps_tables_and_layout_and_saves_bytes(photo, layout):
    plane = photo[..., 1].copy() if layout == "grey" else photo
    sub = "4:2:0" if layout == "grey" else layout
    blob = jpeg.encode_jpeg(plane, 50, sub, jpeg.TUNED_TABLES, trellis=True)
    plain = jpeg.encode_jpeg(plane, 50, sub, jpeg.TUNED_TABLES)
    assert jpeg.chroma_layout(blob) == layout
    want = jpeg.tables_for_quality(50, jpeg.TUNED_TABLES)
    got = jpeg.quant_tables(blob)
    assert np.array_equal(got[0], want[0])
    assert got[1] is None if layout == "grey" else np.array_equal(got[1], want[1])
    assert jpeg.decode_jpeg(blob).shape == plane.shape
    assert len(blob) < 0.92 * len(plain)


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_trellis_beats_libjpeg_turbo_at_equal_bytes(name):
    """Its point lies above libjpeg-turbo's curve (progressive too): more PSNR for no more bytes."""
    plane = getattr(data, name)()[::2, ::2].copy()
    blob = jpeg.encode_jpeg(plane, 50, tables=jpeg.TUNED_TABLES, trellis=True)
    smaller = [q for q in range(1, 100)
               if len(jpeg.encode_jpeg(plane, q, tables=jpeg.TUNED_TABLES, progressive=True)) <= len(blob)]
    rival = jpeg.decode_jpeg(jpeg.encode_jpeg(plane, max(smaller), tables=jpeg.TUNED_TABLES))
    assert psnr(plane, jpeg.decode_jpeg(blob)) > psnr(plane, rival)


def test_trellis_baseline_scan_and_odd_sizes():
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 3), (7, 13, 3), (17, 9)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        blob = jpeg.encode_jpeg(img, 90, trellis=True)
        assert jpeg.decode_jpeg(blob).shape == img.shape
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert _frame(jpeg.encode_trellis(img, *jpeg.tables_for_quality(75), progressive=False)) == 0xC0


def test_codec_payloads_progressive_except_plain_jpeg(photo):
    def payload(blob):
        with Container.open(blob) as c:
            return c.payload(0)

    plain = payload(cj.encode(photo, quality=60, model="jpeg"))
    assert plain == jpeg.encode_jpeg(photo, 60)  # plain JPEG stays as libjpeg-turbo writes it
    tuned = cj.encode(photo, quality=60, model="jpeg-tuned")
    base = cj.encode(photo, quality=60, model="jpeg-tuned", progressive=False)
    assert _frame(payload(base)) == 0xC0
    assert len(tuned) <= len(base)
    assert np.array_equal(cj.decode(tuned), cj.decode(base))
    assert _frame(payload(cj.encode(photo, quality=60, model="jpeg", progressive=True))) == 0xC2
