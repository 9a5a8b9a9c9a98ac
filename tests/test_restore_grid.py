"""The robustness grid of JPEG variants and ``cnnjpeg bench --restore``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from napari_cnnjpeg.format.jpeg import decode_jpeg, quant_tables, tables_for_quality
from napari_cnnjpeg.format.jpeg_grid import VARIANTS, available_variants, encode_variant


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()[100:228, 150:278]


def _sampling(blob: bytes) -> list[tuple[int, int]]:
    return [(h, v) for _, h, v, _ in Image.open(io.BytesIO(blob)).layer]


def test_every_variant_writes_the_jpeg_it_names(photo):
    assert set(available_variants()) == set(VARIANTS)  # pyjpegli is a test extra
    blobs = {v: encode_variant(photo, v, 40) for v in VARIANTS}
    for v, blob in blobs.items():
        out = decode_jpeg(blob)
        assert out.shape[:2] == photo.shape[:2], v
    assert _sampling(blobs["4:2:0"])[0] == (2, 2) and _sampling(blobs["4:2:2"])[0] == (2, 1)
    assert _sampling(blobs["4:4:4"])[0] == (1, 1) and decode_jpeg(blobs["grey"]).ndim == 2
    assert Image.open(io.BytesIO(blobs["progressive"])).info.get("progressive")
    flat_luma, flat_chroma = quant_tables(blobs["flat"])
    assert len(np.unique(flat_luma)) == 1 and len(np.unique(flat_chroma)) == 1
    standard = tables_for_quality(40)
    scaled = quant_tables(blobs["scaled"])
    np.testing.assert_array_equal(scaled[0], standard[0])
    assert (scaled[1] >= standard[1]).all() and scaled[1].mean() > 1.5 * standard[1].mean()
    assert not np.array_equal(quant_tables(blobs["jpegli"])[0], standard[0])  # jpegli's own tables
    moz_luma, moz_chroma = quant_tables(blobs["mozjpeg"])  # mozjpeg's own tables, the same for both
    assert not np.array_equal(moz_luma, standard[0]) and np.array_equal(moz_luma, moz_chroma)
    assert Image.open(io.BytesIO(blobs["mozjpeg"])).info.get("progressive")
    np.testing.assert_array_equal(quant_tables(blobs["double"])[0], standard[0])  # the second save's


def test_unknown_variant_is_refused(photo):
    from napari_cnnjpeg import CjpgError

    with pytest.raises(CjpgError, match="unknown JPEG variant"):
        encode_variant(photo, "guetzli", 50)


def test_grid_rule():
    from napari_cnnjpeg.eval.bench_restore import grid_failures

    cells = {"4:2:0": {"10": 0.5, "50": 0.29, "90": 0.01, "100": -0.02}, "grey": {"10": 0.3, "100": 0.0}}
    assert grid_failures(cells) == ["4:2:0 q50: +0.29 dB", "4:2:0 q100: -0.02 dB"]


def test_bench_restore_writes_protocol_grid_and_speed(tmp_path, photo):
    from napari_cnnjpeg.cli import main

    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(photo).save(data / "a.png")
    Image.fromarray(photo[::-1].copy()).save(data / "b.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "benchmarks.md").write_text("# cnnjpeg benchmark\n\nKodak tables\n")
    assert main(["bench", "--restore", "--data", str(data), "--out", str(tmp_path / "out"), "--models",
                 "restore-s-v2", "--grid-qualities", "10", "100", "--grid-crop", "64", "--large-megapixels", "0.3"]) == 0
    result = json.loads((tmp_path / "out" / "benchmarks-restore.json").read_text())
    assert set(result["protocol"]) == {f"{m} q{q}" for m in ("colour", "grey") for q in (10, 20, 30, 40)}
    row = result["protocol"]["colour q10"]
    assert row["restore-s-v2"] > row["JPEG"] + 0.5  # restoring a q10 JPEG gains
    assert set(result["grid"]["restore-s-v2"]) == set(VARIANTS)
    assert set(result["grid"]["restore-s-v2"]["jpegli"]) == {"10", "100"}
    assert result["speed_mpx_s"]["restore-s-v2"] > 0
    [big] = result["large"]
    assert big["megapixels"] == pytest.approx(0.3, abs=0.05) and big["seconds"] > 0 and big["peak_rss_mib"] > 50
    report = (tmp_path / "out" / "benchmarks-restore.md").read_text()
    assert "## Robustness grid" in report and "LIVE1 grey q10" in report and "Cells that break the rule" in report
    from napari_cnnjpeg.eval.report_sections import update_report

    update_report(tmp_path / "out" / "benchmarks.md")  # kept in the main report, once, however often rebuilt
    main_report = (tmp_path / "out" / "benchmarks.md").read_text()
    assert main_report.startswith("# cnnjpeg benchmark\n\nKodak tables\n")
    assert main_report.count("<!-- restore:begin -->") == 1 and "### Robustness grid" in main_report


def test_bench_restore_refuses_a_model_that_does_not_restore(tmp_path):
    from napari_cnnjpeg.cli import main

    assert main(["bench", "--restore", "--out", str(tmp_path), "--models", "joint-s-v5"]) != 0


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_quality_is_estimated_from_decoded_pixels(name):
    from skimage import data

    from napari_cnnjpeg.format.jpeg import encode_jpeg, estimate_quality

    image = getattr(data, name)()
    for quality in (10, 30, 50, 75, 90, 95):
        guess = estimate_quality(decode_jpeg(encode_jpeg(image, quality, "4:2:0")))
        assert guess is not None and abs(guess - quality) <= 5, (quality, guess)
    noise = np.random.default_rng(1).integers(0, 256, (256, 256), dtype=np.uint8)
    assert estimate_quality(noise) is None  # no quantisation grid: not a JPEG decode


def test_restore_of_an_array_without_quality_uses_the_estimate(photo):
    import napari_cnnjpeg as cj
    from napari_cnnjpeg.format.jpeg import encode_jpeg, estimate_quality

    decoded = decode_jpeg(encode_jpeg(photo, 30, "4:2:0"))
    guess = estimate_quality(decoded)
    np.testing.assert_array_equal(cj.restore(decoded), cj.restore(decoded, quality=guess))
    noise = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cj.restore(noise), noise)  # nothing to go on: unchanged


@pytest.mark.parametrize("variant, quality, least", [
    ("jpegli", 90, 0.0), ("jpegli", 30, 0.3), ("4:4:4", 98, 0.0), ("4:4:4", 100, 0.0), ("grey", 100, 0.0),
    ("flat", 99, 0.0), ("double", 40, 0.3), ("4:2:2", 20, 0.3), ("mozjpeg", 30, 0.3), ("mozjpeg", 95, 0.0),
    ("4:2:2", 98, 0.0), ("4:4:4", 90, 0.0),
])
def test_the_default_restore_model_is_never_worse_on_grid_cells(variant, quality, least):
    """The grid's rule on a few cells, for the model restore() uses: the mean PSNR change over
    two photos is at least 0 dB, and at least +0.3 dB at qualities of 50 and below."""
    from skimage import data

    import napari_cnnjpeg as cj
    from napari_cnnjpeg.eval.metrics import psnr
    from napari_cnnjpeg.format.jpeg import luma

    changes = []
    for image in (data.astronaut()[100:292, 150:342], data.chelsea()[50:242, 100:292]):
        ref = luma(image) if variant == "grey" else image
        blob = encode_variant(ref, variant, quality)
        changes.append(psnr(ref, cj.restore(blob)) - psnr(ref, decode_jpeg(blob)))
    assert np.mean(changes) >= least, changes
