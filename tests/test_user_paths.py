"""Paths a benchmark does not walk: odd arguments, crafted headers, awkward destinations.
Each gets a CjpgError naming the problem, never another library's exception or silent garbage."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import napari_cnnjpeg as cj
from napari_cnnjpeg.format.container import write_atomic

from helpers import rewrite_meta

PLANE = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 7) % 4000


@pytest.fixture(scope="module")
def blob() -> bytes:
    return cj.encode(PLANE, quality=60, model="jpeg")


def test_an_int_source_is_refused_and_no_file_number_is_closed(blob):
    r, w = os.pipe()
    try:
        for call in (cj.decode, cj.info, lambda s: cj.read_plane(s, 0)):
            with pytest.raises(cj.CjpgError, match="bytes or a path"):
                call(r)
        os.fstat(r)  # still open
    finally:
        os.close(r)
        os.close(w)
    assert tuple(cj.info(memoryview(blob))["shape"]) == (48, 64)


@pytest.mark.parametrize("index", [1.5, "0", True])
def test_a_plane_index_must_be_an_integer(blob, index):
    with pytest.raises(cj.CjpgError, match="plane index"):
        cj.read_plane(blob, index)


def test_a_forged_huge_shape_fails_on_its_first_plane_before_allocating(blob):
    forged = rewrite_meta(blob, lambda m: m.update(shape=[3, 60000, 60000], dtype="float64",
                                                   mapping={**m["mapping"], "min": [0.0] * 3, "max": [1.0] * 3}))
    with pytest.raises(cj.CjpgError):
        cj.decode(forged)


def test_a_mapping_range_that_overflows_is_refused(blob):
    f64 = cj.encode(PLANE.astype(np.float64), quality=60, model="jpeg")
    crafted = rewrite_meta(f64, lambda m: m["mapping"].update(min=[-1.7e308], max=[1.7e308]))
    with pytest.raises(cj.CjpgError, match="overflows"):
        cj.decode(crafted)


@pytest.mark.parametrize("meta, match", [
    ({"contrast_limits": [5]}, "two finite numbers"),
    ({"contrast_limits": ["a", "b"]}, "two finite numbers"),
    ({"scale": [float("nan"), 1.0]}, "finite numbers"),
    ({"scale": ("a", "b")}, "finite numbers"),
    ({"name": object()}, "string"),
    ({"axis_labels": (1, 2)}, "strings"),
    ({"rgba": "yes"}, "True or False"),
])
def test_image_metadata_is_checked_when_written(meta, match):
    with pytest.raises(cj.CjpgError, match=match):
        cj.encode(PLANE, quality=60, metadata=meta)


def test_the_reader_leaves_out_crafted_image_metadata(tmp_path, blob):
    from napari_cnnjpeg._napari._reader import read_cjpg

    path = tmp_path / "m.cjpg"
    image = {"contrast_limits": [5], "scale": ["a", "b"], "name": 7, "units": ["um", "um"]}
    path.write_bytes(rewrite_meta(blob, lambda m: m.update(image=image)))
    (data, kwargs, kind), = read_cjpg(str(path))
    assert kind == "image" and data.shape == PLANE.shape
    assert kwargs["name"] == "m" and "scale" not in kwargs and kwargs["units"] == ("um", "um")
    assert kwargs["contrast_limits"][1] > kwargs["contrast_limits"][0]


def test_writes_name_the_destination_and_keep_links_and_permissions(tmp_path, blob):
    with pytest.raises(cj.CjpgError, match="it is a folder"):
        cj.imwrite(tmp_path, PLANE)
    with pytest.raises(cj.CjpgError, match="no file name"):
        write_atomic("", blob)
    target = tmp_path / "target.cjpg"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.cjpg"
    link.symlink_to(target)
    cj.imwrite(link, PLANE, quality=60, model="jpeg")
    assert link.is_symlink() and cj.decode(target).shape == PLANE.shape
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o500)
        with pytest.raises(cj.CjpgError, match=r"cannot write .*ro/x\.cjpg"):
            cj.imwrite(ro / "x.cjpg", PLANE)


def test_restore_refuses_what_is_not_a_plain_jpeg(blob):
    with pytest.raises(cj.CjpgError, match="napari_cnnjpeg.decode"):
        cj.restore(blob)
    with pytest.raises(cj.CjpgError, match="bytes or path"):
        cj.restore([[1, 2], [3, 4]])
    grey = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    for quality in ("x", 1.5, True, 0):
        with pytest.raises(cj.CjpgError, match="quality"):
            cj.restore(grey, quality=quality)
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="JPEG", quality=30)
    with pytest.raises(cj.CjpgError, match="decoded arrays"):
        cj.restore(buf.getvalue(), quality=30)


def test_zarr2_refuses_a_non_native_byte_order():
    from napari_cnnjpeg.scale.numcodecs_codec import CnnJpeg

    swapped = PLANE.astype(PLANE.dtype.newbyteorder())
    with pytest.raises(cj.CjpgError, match="byte order"):
        CnnJpeg(quality=90, model="jpeg").encode(swapped)


def test_the_cli_refuses_quality_0_before_any_note(tmp_path, capsys):
    from napari_cnnjpeg.cli import main
    from PIL import Image

    src = tmp_path / "a.png"
    Image.fromarray((np.arange(32 * 32) % 256).astype(np.uint8).reshape(32, 32)).save(src)
    assert main(["encode", str(src), "-q", "0"]) == 2
    err = capsys.readouterr().err
    assert "quality must be an integer from 1 to 100" in err and "note" not in err


def test_an_image_ending_in_2_or_4_channels_is_not_taken_for_narrow_planes():
    rgba = np.zeros((32, 40, 4), np.uint8)
    with pytest.raises(cj.CjpgError, match="ends in 4 channels"):
        cj.encode(rgba)
    planes = np.moveaxis(rgba, -1, -3)
    assert cj.decode(cj.encode(planes, model="jpeg")).shape == (4, 32, 40)
    assert cj.decode(cj.encode(rgba, rgb=False, model="jpeg")).shape == rgba.shape  # asked for by name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_cli_restore_turns_the_image_as_its_exif_says(tmp_path, orientation):
    from PIL import Image, ImageOps

    from napari_cnnjpeg.cli import main

    y, x = np.mgrid[0:48, 0:80]
    photo = np.stack([(x * 3) % 256, (y * 5) % 256, (x + y) % 256], -1).astype(np.uint8)
    src = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(src, quality=40, exif=exif)
    assert main(["restore", str(src), "-o", str(tmp_path / "out.png")]) == 0
    with Image.open(src) as im:
        shown = np.asarray(ImageOps.exif_transpose(im))
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == shown.shape
    assert np.abs(out.astype(int) - shown).mean() < 6  # the same picture, restored


def test_image_files_keep_grey_grey_and_refuse_transparency(tmp_path):
    from PIL import Image

    from napari_cnnjpeg.format.image_files import read_image

    grey = (np.arange(24 * 32) % 256).astype(np.uint8).reshape(24, 32)
    for mode in ("1", "LA", "P"):
        Image.fromarray(grey).convert(mode).save(tmp_path / f"{mode}.png")
        assert read_image(tmp_path / f"{mode}.png").ndim == 2, mode
    opaque = Image.fromarray(np.stack([grey] * 3, -1)).convert("RGBA")
    opaque.save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").shape == (24, 32, 3)
    opaque.putalpha(Image.fromarray((grey > 100).astype(np.uint8) * 255))
    opaque.save(tmp_path / "holes.png")
    with pytest.raises(cj.CjpgError, match="transparent"):
        read_image(tmp_path / "holes.png")


def test_cli_info_reports_every_file_and_names_the_bad_one(tmp_path, blob, capsys):
    import json

    from napari_cnnjpeg.cli import main

    good, bad = tmp_path / "a.cjpg", tmp_path / "b.png"
    good.write_bytes(blob)
    bad.write_bytes(b"\x89PNG not really")
    assert main(["info", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out[str(good)]["shape"] == [48, 64] and "error" in out[str(bad)] and str(bad) in captured.err


def test_cli_decode_of_a_stack_without_a_format_writes_tif(tmp_path, capsys):
    import tifffile

    from napari_cnnjpeg.cli import main

    src = tmp_path / "stack.cjpg"
    cj.imwrite(src, np.stack([PLANE, PLANE[::-1]]), quality=60, model="jpeg")
    assert main(["decode", str(src)]) == 0
    assert tifffile.imread(tmp_path / "stack.tif").shape == (2, 48, 64)


def test_a_training_config_that_is_not_json_names_the_file(tmp_path):
    from napari_cnnjpeg.training import TrainConfig

    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        TrainConfig.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        TrainConfig.load(bad)


def test_a_given_range_narrower_than_the_data_warns_of_the_clipped_values():
    with pytest.warns(UserWarning, match=r"\d+ values lie outside the given range"):
        out = cj.decode(cj.encode(PLANE, quality=90, mapping=(0.0, 2000.0)))
    assert out.max() <= 2001


def test_a_plane_spanning_its_dtype_stays_readable_above_quality_60():
    """The weighting's headroom and the DC alignment widen a mapping only as far as a file may
    record it: a float16 plane from -65000 to 65000 once wrote a min of -100023, which no reader takes."""
    plane = (np.random.default_rng(1).integers(0, 3, (64, 64)) * 65000.0 - 65000).astype(np.float16)
    for quality in (30, 80):
        out = cj.decode(cj.encode(plane, quality=quality))
        assert out.dtype == np.float16 and np.isfinite(out).all()
