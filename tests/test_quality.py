"""Quality is monotone from 1 to 100 for every offered model, and each model's ceiling holds."""

import numpy as np
import pytest
from skimage import data

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import bpp, psnr
from napari_cnnjpeg.nn import models

QUALITIES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 85, 90, 92, 94, 95, 96, 97,
             98, 99, 100]
TOLERANCE = 0.05  # dB a step up in quality may lose


def _images():
    return {"astronaut": data.astronaut()[64:192, 96:224], "coffee": data.coffee()[100:228, 200:328],
            "camera": data.camera()[200:328, 200:328]}


@pytest.fixture(scope="module")
def curves():
    out = {}
    for model in cj.available_models(8):
        for name, image in _images().items():
            rows = []
            for q in QUALITIES:
                blob = cj.encode(image, quality=q, model=model)
                rows.append((bpp(len(blob), image.shape), psnr(image, cj.decode(blob))))
            out[model, name] = np.array(rows)
    return out


@pytest.mark.parametrize("model", cj.available_models(8))
def test_psnr_and_bpp_never_fall_as_quality_rises(curves, model):
    for name in _images():
        rate, dist = curves[model, name].T
        dips = np.maximum.accumulate(dist) - dist
        worst = int(np.argmax(dips))
        assert dips.max() <= TOLERANCE, f"{model} on {name}: PSNR falls {dips.max():.3f} dB at q{QUALITIES[worst]}"
        assert np.all(np.diff(rate) >= 0), f"{model} on {name}: bpp falls as quality rises"


@pytest.mark.parametrize("model", cj.available_models(8))
def test_quality_outside_the_range_is_coded_at_its_end(model):
    info = models.model_info(model)
    lo, hi = info.quality_range
    image = _images()["astronaut"]
    assert info.effective_quality(1) == lo and info.effective_quality(100) == hi
    if hi < 100:
        assert cj.encode(image, quality=100, model=model) == cj.encode(image, quality=hi, model=model)
    assert cj.info(cj.encode(image, quality=100, model=model))["quality"] == hi  # the file records what was used


@pytest.mark.parametrize("model", cj.available_models(8))
def test_ceiling(curves, model):
    """Full-resolution models reach at least plain JPEG's quality 90 at the top of their range; a
    compact model (half resolution) tops out lower, as its description and the docs say."""
    info = models.model_info(model)
    q90 = QUALITIES.index(90)
    for name in _images():
        top = curves[model, name][-1, 1]
        jpeg90 = curves["jpeg", name][q90, 1]
        if info.downscale == 1:
            assert top >= jpeg90, f"{model} on {name}: {top:.2f} dB at q100, plain JPEG q90 {jpeg90:.2f} dB"
        else:
            assert top < jpeg90 and "half resolution" in info.description


def test_bad_quality_range_in_the_zoo_is_refused():
    with pytest.raises(cj.CjpgError, match="quality_range"):
        models._quality_range([0, 100])
    with pytest.raises(cj.CjpgError, match="quality_range"):
        models._quality_range([90, 50])


def test_quality_note_says_when_a_quality_is_coded_as_another():
    lo, hi = models.model_info("jpeg-tuned").quality_range
    assert models.quality_note("jpeg-tuned", 50) == ""
    assert models.quality_note("jpeg-tuned", 1) == f"jpeg-tuned codes qualities {lo}-{hi}: quality 1 is coded as {lo}"
    with pytest.raises(cj.CjpgError, match="quality_range"):
        models._quality_range(["x", 100])


def test_8_bit_colour_keeps_full_chroma_at_high_quality():
    """At 4:2:0 a colourful 8-bit image stops near the PSNR its halved chroma allows (36 dB on
    scikit-image's rocket from quality 90); by default 8-bit models switch to 4:4:4 from quality 95,
    where their networks stand aside (a stock JPEG decoder shows exactly what decode returns), so
    PSNR and size keep rising. Plain JPEG, half-resolution models and an asked-for subsampling stay
    as they are."""
    from napari_cnnjpeg.codec import FULL_CHROMA_FROM
    from napari_cnnjpeg.format.jpeg import decode_jpeg

    switch = FULL_CHROMA_FROM[8]
    image = data.rocket()[100:356, 100:356]
    points = []
    for q in (90, switch - 1, switch, 98, 100):
        blob = cj.encode(image, quality=q)
        assert cj.info(blob)["subsampling"] == ("4:4:4" if q >= switch else "4:2:0")
        out = cj.decode(blob)
        if q >= switch:
            np.testing.assert_array_equal(out, decode_jpeg(blob))
        points.append((len(blob), psnr(image, out)))
    sizes, psnrs = zip(*points)
    assert all(b > a for a, b in zip(sizes, sizes[1:])) and all(b > a for a, b in zip(psnrs, psnrs[1:])), points
    at_420 = psnr(image, cj.decode(cj.encode(image, quality=100, subsampling="4:2:0")))
    assert psnrs[-1] > at_420 + 10, (psnrs[-1], at_420)
    assert cj.info(cj.encode(image, quality=100, model="jpeg"))["subsampling"] == "4:2:0"
    assert cj.info(cj.encode(image, quality=100, model="compact-s-v2"))["subsampling"] == "4:2:0"
    assert cj.info(cj.encode(image, quality=100, subsampling="4:2:2"))["subsampling"] == "4:2:2"


def test_joint_networks_stand_aside_on_fine_tables_of_the_layouts_they_do_not_help():
    """`joint-s-v8` was trained at 4:2:0; on fine 4:4:4 payloads both its networks lost PSNR (7 dB at
    quality 100). Its identity steps hand those back as coded, with the encoder left out as well."""
    image = data.astronaut()[64:192, 96:224]
    stages = models.load_stages("joint-s-v8")
    for q, sub, aside in ((100, "4:4:4", True), (90, "4:4:4", True), (70, "4:4:4", False), (100, "4:2:0", False)):
        blob = cj.encode(image, quality=q, subsampling=sub, model="joint-s-v8")
        assert (cj.decode(blob) == cj.decode(blob, model="jpeg")).all() == aside, (q, sub)
        assert (stages.pre(image, q, layout=sub) == image).all() == aside, (q, sub)
