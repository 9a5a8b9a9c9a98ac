"""``restore`` on JPEGs as users have them: other colour codings, tiny images, forged sizes, metadata."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image
from skimage import data

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.jpeg import colour_coding

PHOTO = data.coffee()[100:356, 200:456].copy()


def _pillow(image: np.ndarray | Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buf, format="JPEG", **options)
    return buf.getvalue()


def _shown(jpeg: bytes) -> np.ndarray:
    """What Pillow shows of a JPEG, in RGB or grey."""
    im = Image.open(io.BytesIO(jpeg))
    return np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))


def _gain(jpeg: bytes, original: np.ndarray) -> float:
    return psnr(original, cj.restore(jpeg)) - psnr(original, _shown(jpeg))


def _cmyk(rgb: np.ndarray) -> Image.Image:
    """An RGB image separated into C, M, Y and a K that takes the grey out."""
    f = rgb / 255.0
    k = 1 - f.max(-1, keepdims=True)
    cmy = (1 - f - k) / np.maximum(1 - k, 1e-6)
    cmyk = np.rint(np.concatenate([cmy, k], -1) * 255).astype(np.uint8)
    return Image.frombytes("CMYK", rgb.shape[1::-1], cmyk.tobytes())


def test_colour_codings_are_told_apart_as_libjpeg_does():
    assert colour_coding(_pillow(PHOTO)) == "ycbcr"
    assert colour_coding(_pillow(PHOTO[..., 0])) == "grey"
    assert colour_coding(_pillow(_cmyk(PHOTO))) == "as is"  # Adobe segment, transform 0
    tj = pytest.importorskip("turbojpeg")
    rgb = tj.compress(PHOTO, 50, tj.SAMP.Y444, tj.CS.RGB, pixelformat=tj.PF.RGB)
    ycck = tj.compress(np.asarray(_cmyk(PHOTO)), 50, tj.SAMP.Y420, tj.CS.YCCK, pixelformat=tj.PF.CMYK)
    assert (colour_coding(rgb), colour_coding(ycck)) == ("as is", "ycck")


@pytest.mark.parametrize("quality", [20, 80])
def test_cmyk_jpegs_are_restored_component_by_component(quality):
    """Pillow's CMYK JPEGs (no colour transform) lost 0.7 dB at quality 80 through the colour network."""
    image = _cmyk(PHOTO)
    jpeg = _pillow(image, quality=quality)
    assert _gain(jpeg, np.asarray(image.convert("RGB"))) > 0.3


def test_rgb_coded_and_ycck_jpegs_gain():
    tj = pytest.importorskip("turbojpeg")
    rgb = tj.compress(PHOTO, 80, tj.SAMP.Y444, tj.CS.RGB, pixelformat=tj.PF.RGB)
    assert _gain(rgb, PHOTO) > 0.5  # was -0.73 dB
    image = _cmyk(PHOTO)
    # Adobe's CMYK is stored inverted; libjpeg-turbo writes the samples it is given
    inverted = 255 - np.asarray(image)
    ycck = tj.compress(inverted, 50, tj.SAMP.Y420, tj.CS.YCCK, pixelformat=tj.PF.CMYK)
    assert _gain(ycck, np.asarray(image.convert("RGB"))) > 0.8  # was +0.60 through the colour network only


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 2), (8, 8), (12, 12)])
def test_images_too_small_for_the_network_come_back_as_decoded(shape):
    """A 1x1 grey JPEG at quality 75 (decoded exactly) came back 50 dB worse; 1-2 pixel strips and 8x8 squares
    lost up to 2.5 dB."""
    for image in (PHOTO[: shape[0], : shape[1]], PHOTO[: shape[0], : shape[1], 1]):
        jpeg = _pillow(np.ascontiguousarray(image), quality=75)
        assert np.array_equal(cj.restore(jpeg), _shown(jpeg))
        decoded = _shown(jpeg)
        out = cj.restore(decoded, quality=75)
        assert np.array_equal(out, decoded) and out is not decoded


def _claim_size(jpeg: bytes, height: int, width: int) -> bytes:
    """The stream with its frame header's size replaced."""
    i = 2
    while not (0xC0 <= jpeg[i + 1] <= 0xCF and jpeg[i + 1] not in (0xC4, 0xC8, 0xCC)):
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]


def test_a_forged_size_is_refused_before_decoding_at_every_precision():
    """12-bit and lossless JPEGs went to imagecodecs unchecked: a 1 kB lossless file claiming 65500x65500
    allocated 4 GiB and came back as 4 GiB of grey."""
    imagecodecs = pytest.importorskip("imagecodecs")
    grey = PHOTO[:64, :64, 1].copy()
    for jpeg in (_pillow(grey, quality=50), imagecodecs.jpeg8_encode(grey.astype(np.uint16) * 16, level=50,
                                                                      bitspersample=12),
                 imagecodecs.ljpeg_encode(grey)):
        with pytest.raises(cj.CjpgError, match="absurd dimensions"):
            cj.restore(_claim_size(jpeg, 65500, 65500))


def test_cli_restore_keeps_an_rgb_icc_profile_but_not_a_cmyk_one(tmp_path):
    from PIL import ImageCms

    from napari_cnnjpeg.cli import main

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(PHOTO).save(tmp_path / "rgb.jpg", quality=40, icc_profile=srgb)
    assert main(["restore", str(tmp_path / "rgb.jpg")]) == 0
    assert Image.open(tmp_path / "rgb.png").info.get("icc_profile") == srgb
    assert main(["restore", str(tmp_path / "rgb.jpg"), "--format", "tif"]) == 0
    import tifffile

    with tifffile.TiffFile(tmp_path / "rgb.tif") as tif:
        assert tif.pages[0].tags[34675].value == srgb
    _cmyk(PHOTO).save(tmp_path / "cmyk.jpg", quality=40, icc_profile=srgb[:16] + b"CMYK" + srgb[20:])
    assert main(["restore", str(tmp_path / "cmyk.jpg")]) == 0
    assert "icc_profile" not in Image.open(tmp_path / "cmyk.png").info  # describes CMYK, not these RGB pixels


def test_batch_restore_keeps_an_rgb_icc_profile(tmp_path):
    from PIL import ImageCms

    from napari_cnnjpeg.cli import main

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name in ("a", "b"):
        Image.fromarray(PHOTO).save(tmp_path / f"{name}.jpg", quality=40, icc_profile=srgb)
    assert main(["restore", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "--out-dir", str(tmp_path / "out")]) == 0
    for name in ("a", "b"):
        assert Image.open(tmp_path / "out" / f"{name}.png").info.get("icc_profile") == srgb


def test_restore_widget_job_and_cli_take_12_bit_jpegs_and_name_a_cjpg_first(tmp_path, capsys):
    """The Restore JPEG widget's plain view decoded with Pillow, which cannot read 12-bit JPEG; the
    CLI complained about an existing output before saying a .cjpg is not for restore."""
    import imagecodecs

    from napari_cnnjpeg.cli import main

    grey = (np.asarray(Image.fromarray(PHOTO).convert("L"), np.uint16) * 16)[:96, :96]
    jpeg12 = imagecodecs.jpeg8_encode(grey, level=60, bitspersample=12)
    plain = cj.codec.decode_plain(jpeg12)
    assert plain.dtype == np.uint16 and plain.shape == grey.shape
    assert cj.restore(jpeg12).shape == plain.shape
    (tmp_path / "x.cjpg").write_bytes(cj.encode(PHOTO[:64, :64]))
    (tmp_path / "x.png").write_bytes(b"")
    assert main(["restore", str(tmp_path / "x.cjpg")]) == 2
    assert "is a .cjpg file" in capsys.readouterr().err


def test_encode_note_names_the_model_that_codes_the_data(tmp_path, capsys):
    """A 16-bit image is coded by the 12-bit default model: the note names it, not the 8-bit one."""
    import tifffile

    from napari_cnnjpeg.cli import main

    tifffile.imwrite(tmp_path / "s.tif", (np.arange(64 * 64).reshape(64, 64) * 9).astype(np.uint16))
    assert main(["encode", str(tmp_path / "s.tif"), "-q", "5"]) == 0
    err = capsys.readouterr().err
    assert cj.default_model(bits=12) in err and cj.default_model() not in err
    assert cj.info(tmp_path / "s.cjpg")["model"] == cj.default_model(bits=12)


def test_components_on_fine_tables_come_back_as_decoded():
    """Restored one by one, the components of RGB-coded and CMYK JPEGs lost PSNR from quality 98 (mean
    -0.12 and -0.01 dB on five photos, scripts/component_identity.py): there they come back as decoded,
    as the model's identity_step["component"] says; coarser ones are still restored."""
    from napari_cnnjpeg.nn.models import default_restore_model, model_info

    step = model_info(default_restore_model(8)).identity_step["component"]
    assert 2.3 < step < 3.4  # quality 98's tables (mean step 2.36) handed back, 97's (3.45) restored
    tj = pytest.importorskip("turbojpeg")
    image = _cmyk(PHOTO)
    for quality in (98, 99):
        for jpeg in (_pillow(image, quality=quality), tj.compress(PHOTO, quality, tj.SAMP.Y444, tj.CS.RGB,
                                                                  pixelformat=tj.PF.RGB)):
            assert np.array_equal(cj.restore(jpeg), _shown(jpeg))
    assert _gain(_pillow(image, quality=97), np.asarray(image.convert("RGB"))) > 0.02
