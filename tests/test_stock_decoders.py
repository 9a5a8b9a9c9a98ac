"""What decoders other than this package (Pillow, imagecodecs, scikit-image) show of a ``.cjpg``.

``info(path)["stock_viewer"]`` tells users what an ordinary viewer shows; these tests hold it to
what Pillow (libjpeg-turbo), imagecodecs (libjpeg-turbo 3, 8- and 12-bit) and scikit-image show:
the first plane's payload as a plain JPEG decoder decodes it, without warnings. The other
direction too: a ``.cjpg`` re-saved by another program, and what ``decode`` says of it then.
OpenCV, ImageMagick and djpeg are not test dependencies: they were checked by hand (QA report).
"""

from __future__ import annotations

import io
import struct
import warnings

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import napari_cnnjpeg as cj
from napari_cnnjpeg import codec
from napari_cnnjpeg.errors import CjpgError
from napari_cnnjpeg.format.container import Container
from napari_cnnjpeg.nn.models import model_info

MODELS8 = [m for m in cj.available_models() if model_info(m).bits == 8]


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[40:104, 160:240])  # 64x80: not square, so axes cannot swap


def _stock(blob: bytes) -> np.ndarray:
    """Plane 0's payload as a plain decoder decodes it (what ``stock_viewer`` describes)."""
    with Container.open(blob) as c:
        return codec.decode_plain(c.payload(0))


def _pillow(blob: bytes) -> tuple[np.ndarray, str, list]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            assert im.format == "JPEG" and "exif" not in im.info and "icc_profile" not in im.info
            return np.asarray(im), im.mode, [str(w.message) for w in seen]


def _segments(blob: bytes) -> list[tuple[int, int]]:
    """(marker, offset) of the segments before the first scan."""
    out, i = [], 2
    while blob[i] == 0xFF and blob[i + 1] != 0xDA:
        out.append((blob[i + 1], i))
        i += 2 + struct.unpack(">H", blob[i + 2 : i + 4])[0]
    return out


@pytest.mark.parametrize("model", MODELS8)
@pytest.mark.parametrize("colour", ["grey", "rgb"])
@pytest.mark.parametrize("quality", [30, 100])
def test_8bit_files_open_in_stock_decoders_as_claimed(rgb, model, colour, quality):
    image = rgb if colour == "rgb" else np.asarray(Image.fromarray(rgb).convert("L"))
    blob = cj.encode(image, quality=quality, model=model)
    claim, stock = cj.info(blob)["stock_viewer"], _stock(blob)
    pixels, mode, warned = _pillow(blob)
    assert mode == ("RGB" if colour == "rgb" else "L") and not warned
    np.testing.assert_array_equal(pixels, stock)
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(blob), stock)
    half = model_info(model).downscale == 2
    assert ("half size" in claim) == half
    if half:  # the payload at half size; decode(model="jpeg") enlarges it to full size
        assert stock.shape[:2] == (32, 40)
    else:
        assert claim == "the image, as plain JPEG shows it"
        np.testing.assert_array_equal(stock, cj.decode(blob, model="jpeg"))


def test_stock_readers_by_path_ignore_the_cjpg_suffix(rgb, tmp_path):
    from skimage import io as skio

    path = tmp_path / "a.cjpg"
    cj.imwrite(path, rgb, quality=80, model="joint-s-v8")
    stock = _stock(path.read_bytes())
    np.testing.assert_array_equal(skio.imread(path), stock)  # imageio's Pillow plugin sniffs the content
    np.testing.assert_array_equal(imagecodecs.imread(path), stock)


@pytest.mark.parametrize("model", ["jpeg", "joint-s-v8"])
def test_stack_shows_its_first_plane_without_warnings(rgb, model):
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    blob = cj.encode(np.stack([grey, 255 - grey, grey[::-1]]), quality=75, model=model)
    assert cj.info(blob)["stock_viewer"].endswith("of its 3 planes, ordinary viewers show the first only")
    pixels, _, warned = _pillow(blob)  # the planes after plane 0's EOI are never read
    assert not warned
    np.testing.assert_array_equal(pixels, cj.decode(blob, model="jpeg")[0])
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(blob), pixels)


def test_many_metadata_segments_still_open():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # noise: a file large enough for the header
    name = "".join(map(chr, rng.integers(0x21, 0x7E, 150_000)))  # ~125 kB deflated: two APP9 segments
    blob = cj.encode(image, quality=95, model="jpeg", metadata={"name": name})
    assert [m for m, _ in _segments(blob)].count(0xE9) >= 2
    pixels, _, warned = _pillow(blob)
    assert not warned
    np.testing.assert_array_equal(pixels, cj.decode(blob, model="jpeg"))
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(blob), pixels)


@pytest.mark.parametrize("quality", [30, 95, 100])
@pytest.mark.parametrize("rgb16", [False, True])
def test_12bit_files_open_only_in_12bit_decoders(rgb, quality, rgb16):
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    image = rgb.astype(np.uint16) * 257 if rgb16 else grey.astype(np.uint16) * 16
    blob = cj.encode(image, quality=quality)
    about = cj.info(blob)
    assert about["stock_viewer"].startswith(codec.TWELVE_BIT_VIEWERS)
    with pytest.raises(Image.UnidentifiedImageError):  # "Pillow ... cannot open it"
        Image.open(io.BytesIO(blob))
    samples = imagecodecs.jpeg8_decode(blob)  # "opens in ... imagecodecs (its samples as stored, no network)"
    assert samples.dtype == np.uint16
    np.testing.assert_array_equal(samples, _stock(blob))
    if about["levels"] < 4095:  # "... so other decoders show it dark"
        assert "show it dark" in about["stock_viewer"] and samples.max() < 4095 // 2
    if about["weighting"]:  # "flat and washed out": the weighting roughly halves the contrast here
        assert "washed out" in about["stock_viewer"] and not rgb16
        assert samples.std() < 0.7 * cj.decode(blob, model="jpeg").astype(float).std() * 4095 / np.ptp(image)


@pytest.mark.parametrize("stack", [False, True])
def test_resaved_by_pillow_is_a_plain_jpeg_and_decode_points_to_restore(rgb, stack):
    blob = cj.encode(np.stack([rgb, rgb[::-1]]) if stack else rgb, quality=90, model="joint-s-v8")
    out = io.BytesIO()
    Image.open(io.BytesIO(blob)).save(out, format="JPEG", quality=90)  # Pillow drops APP9 and the planes after EOI
    with pytest.raises(CjpgError, match=r"no CJPG metadata segment \(a plain JPEG\? use napari_cnnjpeg\.restore\)"):
        cj.decode(out.getvalue())
    assert cj.restore(out.getvalue()).shape == rgb.shape


# Known defects found by the stock-decoder QA (/tmp/qa/stock.md); strict, so a fix makes them fail
# here and they can become plain tests.


def _exif_app1() -> bytes:
    exif = Image.Exif()
    exif[0x013B] = "qa"  # Artist, as a photo manager or `exiftool -Artist=qa` writes it
    body = b"Exif\x00\x00" + exif.tobytes()
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def test_exif_inserted_by_a_tagging_tool_keeps_the_file_readable(rgb):
    blob = cj.encode(rgb, quality=90, model="joint-s-v8")
    tagged = blob[:2] + _exif_app1() + blob[2:]  # exiftool puts APP1 first; it keeps APP9 and what follows EOI
    np.testing.assert_array_equal(cj.decode(tagged), cj.decode(blob))


def test_reencoded_with_the_cjpg_segment_kept_opens_somewhere(rgb):
    blob = cj.encode(rgb, quality=95, model="jpeg")
    app9 = b"".join(blob[o : o + 2 + struct.unpack(">H", blob[o + 2 : o + 4])[0]]
                    for m, o in _segments(blob) if m == 0xE9)
    out = io.BytesIO()
    Image.open(io.BytesIO(blob)).save(out, format="JPEG", quality=80)  # as ImageMagick `convert` (or jpegtran
    plain = out.getvalue()  # -rotate 90 -copy all) re-saves it: new pixels, the old CJPG segment kept
    at = 4 + struct.unpack(">H", plain[4:6])[0] if plain[2:4] == b"\xff\xe0" else 2
    stale = plain[:at] + app9 + plain[at:]
    with pytest.raises(CjpgError, match="another program re-saved it.*restore"):
        cj.decode(stale)
    assert cj.restore(stale).shape == rgb.shape  # it said "this is a .cjpg file, not a plain JPEG: ... decode"


def test_cli_encode_shows_a_phone_photo_the_way_up_its_viewers_did(tmp_path, rgb):
    from PIL import ImageOps

    from napari_cnnjpeg.cli import main

    src = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show": how phones store portrait photos
    Image.fromarray(rgb).save(src, quality=90, exif=exif)
    assert main(["encode", str(src), "-o", str(tmp_path / "p.cjpg"), "-m", "jpeg", "-q", "90"]) == 0
    with Image.open(src) as im:
        shown = ImageOps.exif_transpose(im).size
    with Image.open(tmp_path / "p.cjpg") as im:  # the .cjpg carries no EXIF: viewers show it as stored
        assert im.size == shown


def test_segments_inserted_before_the_header_keep_a_stack_readable():
    """Tagging tools insert EXIF, XMP or comments after SOI, before our segments: every plane of a stack
    still decodes as before, with or without the writer's JFIF APP0 in front."""
    stack = (np.random.default_rng(0).random((3, 40, 56)) * 4000).astype(np.uint16)
    for blob in (cj.encode(stack, quality=80), cj.encode((stack // 16).astype(np.uint8), quality=80, model="jpeg")):
        inserted = _exif_app1() + b"\xff\xfe\x00\x07hello" + b"\xff\xe1\x00\x06http"
        at = 4 + struct.unpack(">H", blob[4:6])[0] if blob[2:4] == b"\xff\xe0" else 2
        for tagged in (blob[:2] + inserted + blob[2:], blob[:at] + inserted + blob[at:]):
            np.testing.assert_array_equal(cj.decode(tagged), cj.decode(blob))
            assert cj.info(tagged)["shape"] == cj.info(blob)["shape"]


def test_cli_encode_says_an_icc_profile_is_not_kept(tmp_path, rgb):
    """A photo's ICC profile (a phone's Display P3, say) was dropped without a word."""
    from PIL import ImageCms

    from napari_cnnjpeg.cli import main

    src = tmp_path / "p3.jpg"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(src, quality=90, icc_profile=icc)
    with pytest.warns(UserWarning, match="ICC colour profile is not kept"):
        assert main(["encode", str(src), "-o", str(tmp_path / "p.cjpg"), "-m", "jpeg", "-q", "90"]) == 0
