"""The .cjpg container: layout, random access, and refusal of every corrupt input."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage.data import astronaut

import napari_cnnjpeg as cj
from napari_cnnjpeg.format import container
from napari_cnnjpeg.format.container import Container, pack
from napari_cnnjpeg.format.jpeg import encode_jpeg, strip_jfif

from helpers import rewrite_meta


def _stack():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (4, 24, 32), dtype=np.uint8)


BLOB = cj.encode(_stack(), quality=70, model="jpeg")
BLOB2D = cj.encode(_stack()[0], quality=70, model="jpeg")


def test_reading_one_plane_touches_only_its_bytes(monkeypatch, tmp_path):
    path = tmp_path / "s.cjpg"
    path.write_bytes(BLOB)
    reads = []
    orig = container._Source.read

    def spy(self, offset, n):
        reads.append((offset, n))
        return orig(self, offset, n)

    monkeypatch.setattr(container._Source, "read", spy)
    with Container.open(path) as c:
        header_end = c._offsets[0]
        reads.clear()
        c.payload(2)
        start, length = c._offsets[2], c.meta["planes"][2]["length"]
    assert reads == [(start, length)]
    assert start > header_end


def test_newer_version_refused():
    blob = rewrite_meta(BLOB, lambda m: None)
    # bump the version byte in the APP9 header
    i = blob.index(container.MAGIC) + len(container.MAGIC)
    bad = blob[:i] + bytes([container.VERSION + 1]) + blob[i + 1 :]
    with pytest.raises(cj.CjpgError, match="version"):
        cj.decode(bad)


def test_unknown_required_field_refused_optional_ignored():
    with pytest.raises(cj.CjpgError, match="features this reader does not know"):
        cj.decode(rewrite_meta(BLOB, lambda m: m.update(required=["hdr_gain_map"])))
    ok = rewrite_meta(BLOB, lambda m: m.update(some_future_hint={"x": 1}))
    assert cj.decode(ok).shape == (4, 24, 32)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.update(shape=[4, 24]), "shape"),
        (lambda m: m.update(shape=[10**9, 24, 32]), "planes"),
        (lambda m: m.update(shape=[4, 100000, 32]), "absurd plane size"),
        (lambda m: m.update(shape=[4, 24, 32, -1]), "absurd shape"),
        (lambda m: m.update(shape=[4, 24, 33]), "decodes to"),
        (lambda m: m.pop("quality"), "missing fields"),
        (lambda m: m.update(model="evil-weights"), "unknown model"),
        (lambda m: m.update(model="jpeg", model_sha256="00" * 32), "other weights"),
    ],
)
def test_bad_metadata(change, match):
    with pytest.raises(cj.CjpgError, match=match):
        cj.decode(rewrite_meta(BLOB, change))


def test_big_metadata_spans_segments():
    planes = np.zeros((3000, 8, 8), np.uint8)
    name = np.random.default_rng(0).integers(0, 2**62, 8000).astype(str).tobytes().hex()  # deflates little
    blob = cj.encode(planes, model="jpeg", metadata={"name": name})
    assert blob.count(container.MAGIC) >= 2
    assert cj.info(blob)["name"] == name
    assert cj.decode(blob).shape == planes.shape


def test_checksums():
    # flip a byte inside the last plane's payload
    bad = bytearray(BLOB)
    bad[-10] ^= 0xFF
    with pytest.raises(cj.CjpgError, match="checksum"):
        cj.decode(bytes(bad))
    # flip a byte inside the stored metadata
    i = BLOB.index(container.MAGIC) + container._HEAD.size
    bad = bytearray(BLOB)
    bad[i + 2] ^= 0x01
    with pytest.raises(cj.CjpgError, match="checksum"):
        cj.decode(bytes(bad))


@pytest.mark.parametrize("blob", [b"", b"\xff", b"\xff\xd8", b"PNG\r\n", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 20])
def test_not_cjpg(blob):
    with pytest.raises(cj.CjpgError):
        cj.decode(blob)


def test_plain_jpeg_is_not_cjpg():
    from napari_cnnjpeg.format.jpeg import encode_jpeg

    with pytest.raises(cj.CjpgError, match="plain JPEG"):
        cj.info(encode_jpeg(np.zeros((8, 8), np.uint8)))


def test_missing_file(tmp_path):
    with pytest.raises(cj.CjpgError, match="cannot open"):
        cj.imread(tmp_path / "nope.cjpg")


def _only_cjpg_error(blob):
    try:
        cj.decode(blob)
        cj.info(blob)
    except cj.CjpgError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([BLOB, BLOB2D]), st.data())
def test_truncations_raise_cjpg_error(blob, data):
    n = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(cj.CjpgError):
        cj.decode(blob[:n])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([BLOB, BLOB2D]), st.data())
def test_byte_flips_raise_only_cjpg_error(blob, data):
    bad = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(bad) - 1))
        bad[i] ^= data.draw(st.integers(1, 255))
    _only_cjpg_error(bytes(bad))  # decodes fine or raises CjpgError; anything else fails the test


def test_spec_constants_match_doc():
    # the format document names the segment and magic used here
    assert container.APP9 == b"\xff\xe9" and container.MAGIC == b"CJPG\x00"
    assert struct.calcsize(">5sBHHI") == container._HEAD.size
    assert zlib.crc32(b"") == 0 and json.loads("{}") == {}


def test_jpeg_declaring_absurd_dimensions_is_refused():
    from napari_cnnjpeg.format.jpeg import encode_jpeg

    jpeg = bytearray(encode_jpeg(np.zeros((8, 8), np.uint8)))
    sof = jpeg.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    jpeg[sof + 5 : sof + 9] = b"\xff\xf0\xff\xf0"  # 65520 x 65520
    with pytest.raises(cj.CjpgError, match="absurd"):
        cj.restore(bytes(jpeg))


@pytest.mark.parametrize("bad", [0, 5, 2.0, "2", True])
def test_bad_downscale_refused(bad):
    with pytest.raises(cj.CjpgError, match="downscale"):
        cj.decode(rewrite_meta(BLOB, lambda m: m.update(downscale=bad)))


def test_downscale_must_match_payload_size():
    # full-size payloads declared as half-size ones
    with pytest.raises(cj.CjpgError, match="decodes to"):
        cj.decode(rewrite_meta(BLOB, lambda m: m.update(downscale=2, required=["downscale"])))


BLOB16 = cj.encode((_stack().astype(np.uint16) * 200), quality=70, model="jpeg", bits=8)
BLOB12 = cj.encode((_stack().astype(np.uint16) * 200), quality=70)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.update(bits=16), "bits 16 is not 8 or 12"),
        (lambda m: m.update(bits=True), "is not 8 or 12"),
        (lambda m: m.update(required=[]), "'bits' listed under 'required'"),
        (lambda m: m.update(required=["bits"]), "'levels' must be listed under 'required'"),
        (lambda m: m.update(levels=254), "levels 254 is not an integer from 255 to 4095"),
        (lambda m: m.update(levels=4096.0), "levels 4096.0 is not an integer"),
        (lambda m: m.update(dtype="uint8", mapping=None), "12-bit payloads need data of more than 8 bits"),
        (lambda m: m.update(model="restore-s-v2", model_sha256=cj.nn.models.model_info("restore-s-v2").sha256),
         "works on 8-bit payloads"),
    ],
)
def test_bad_bits_are_refused(change, match):
    assert cj.info(BLOB12)["bits"] == 12
    with pytest.raises(cj.CjpgError, match=match):
        cj.decode(rewrite_meta(BLOB12, change))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.update(weighting=0.1), "weighting 0.1 is not a number from 0.25 to 1.0"),
        (lambda m: m.update(weighting="0.7"), "is not a number"),
        (lambda m: m.update(weighting=True), "is not a number"),
        (lambda m: m.update(required=["bits", "levels", "weighting_dc"]), "must be listed under 'required'"),
        (lambda m: m.update(required=["bits", "levels", "weighting"]), "must be listed under 'required'"),
        (lambda m: m.update(weighting_dc=[0.01, 0.5]), r"weighting_dc \[0.01, 0.5\] is not two numbers"),
        (lambda m: m.update(weighting_dc=0.25), "is not two numbers"),
        (lambda m: m.update(weighting_dc=[0.25, True]), "is not two numbers"),
        (lambda m: (m.pop("weighting"), m.update(required=["bits", "levels", "weighting_dc"])),
         "weighting_dc without a weighting"),
    ],
)
def test_bad_weighting_is_refused(change, match):
    assert cj.info(BLOB12)["weighting"] == 0.7 and cj.info(BLOB12)["weighting_dc"] == list(cj.codec.WEIGHTING_DC)
    with pytest.raises(cj.CjpgError, match=match):
        cj.decode(rewrite_meta(BLOB12, change))


#: A sparse 12-bit plane (a few bright spots on zero), whose payload is arithmetic coded.
BLOB_ARITH = cj.encode(np.kron(np.eye(8, dtype=np.uint16) * 3000, np.ones((16, 16), np.uint16)), quality=40)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.update(arithmetic=False), "'arithmetic'"),
        (lambda m: m.update(arithmetic="yes"), "'arithmetic'"),
        (lambda m: m.update(required=[r for r in m["required"] if r != "arithmetic"]), "listed under 'required'"),
    ],
)
def test_bad_arithmetic_field_is_refused(change, match):
    assert cj.info(BLOB_ARITH)["arithmetic"]
    with pytest.raises(cj.CjpgError, match=match):
        cj.decode(rewrite_meta(BLOB_ARITH, change))


def test_arithmetic_field_only_on_12_bit_files_and_unknown_to_older_readers(monkeypatch):
    import napari_cnnjpeg.format.container as container

    with pytest.raises(cj.CjpgError, match="on 12-bit payloads"):
        cj.decode(rewrite_meta(BLOB16, lambda m: m.update(arithmetic=True, required=["arithmetic"])))
    monkeypatch.setattr(container, "KNOWN_OPTIONAL", container.KNOWN_OPTIONAL - {"arithmetic"})
    with pytest.raises(cj.CjpgError, match=r"does not know: \['arithmetic'\]"):
        cj.decode(BLOB_ARITH)


def test_weighted_stack_with_a_colour_plane_is_a_clear_error():
    """A crafted stack: weighted grey planes, one of them replaced by a 12-bit colour stream."""
    grey = cj.encode(np.full((2, 32, 32), 900, np.uint16) + np.arange(32, dtype=np.uint16) * 50, quality=80)
    colour = cj.encode(np.full((32, 32, 3), 900, np.uint16), quality=80)
    with Container.open(grey) as c, Container.open(colour) as cc:
        meta, payloads = dict(c.meta), [c.payload(0), cc.payload(0)]
    meta.pop("planes")
    with pytest.raises(cj.CjpgError, match="not a grey plane|decodes to"):
        cj.decode(pack(meta, payloads))


def test_weighting_only_on_12_bit_grey_planes():
    with pytest.raises(cj.CjpgError, match="for 12-bit grey planes"):
        cj.decode(rewrite_meta(BLOB16, lambda m: m.update(weighting=0.7, required=["weighting"])))


def test_a_12_bit_payload_declared_8_bit_is_a_clear_error():
    with pytest.raises(cj.CjpgError, match="JPEG|payloads"):
        cj.decode(rewrite_meta(BLOB12, lambda m: (m.pop("bits"), m.pop("levels"), m.pop("weighting"),
                                                 m.pop("weighting_dc"), m.update(required=[]))))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m["mapping"].pop("min"), "'min' needs one value per plane"),
        (lambda m: m["mapping"].update(max=[1.0]), "'max' needs one value per plane"),
        (lambda m: m["mapping"].update(kind="log"), "linear-minmax"),
        (lambda m: m.update(mapping=None), "linear-minmax"),
        (lambda m: m["mapping"].update(max=[1e300] * 4), "not a finite uint16"),
        (lambda m: m["mapping"].update(min=[-65536] * 4), "not a finite uint16"),
        (lambda m: m["mapping"].update(max=[-5] * 4), "not a finite uint16"),
        (lambda m: m["mapping"].update(min=["0"] * 4), "not a finite"),
        (lambda m: m["mapping"].update(min=[60000] * 4), "min exceeds its max"),
        (lambda m: m.update(dtype="complex128"), "unknown dtype"),
        (lambda m: m.update(dtype="uint8"), "uint8 file has a value mapping"),
    ],
)
def test_bad_mapping_is_refused(change, match):
    with pytest.raises(cj.CjpgError, match=match):
        cj.decode(rewrite_meta(BLOB16, change))


def test_an_integer_mapping_min_may_lie_below_the_dtype():
    """The codec widens a plane's range downward (DC alignment), below 0 for a uint16 plane whose
    background is 0; decoding clips to the dtype."""
    out = cj.decode(rewrite_meta(BLOB16, lambda m: m["mapping"].update(min=[-300.5] * 4)))
    assert out.dtype == np.uint16 and out.min() >= 0


def test_nan_in_mapping_is_refused(monkeypatch):
    """A crafted header may hold NaN (Python's JSON reader accepts it); the writer never does."""
    dumps = json.dumps
    monkeypatch.setattr(container.json, "dumps", lambda *a, **k: dumps(*a, **{**k, "allow_nan": True}))
    blob = rewrite_meta(BLOB16, lambda m: m["mapping"].update(max=[float("nan")] * 4))
    monkeypatch.undo()
    with pytest.raises(cj.CjpgError, match="not a finite"):
        cj.decode(blob)


def _json(blob: bytes) -> dict:
    """The metadata document of a one-segment file, as stored (inflated)."""
    i = blob.index(container.MAGIC) + container._HEAD.size
    n = struct.unpack(">H", blob[i - container._HEAD.size - 2 : i - container._HEAD.size])[0]
    return json.loads(container._inflate(blob[i : i - container._HEAD.size - 2 + n]))


def test_fields_at_their_defaults_are_left_out_and_read_back():
    meta = _json(BLOB)
    assert "version" not in meta  # the segments' header holds it
    assert not set(meta) & {"axes", "mapping", "required", "image", "dtype", "subsampling", "rgb", "model_sha256"}
    i = cj.info(BLOB)
    assert (i["axes"], i["mapping"], i["dtype"], i["subsampling"], i["rgb"]) == (None, None, "uint8", "4:2:0", False)
    assert i["model_sha256"] is None and i["format_version"] == container.VERSION == 4


@pytest.mark.parametrize("image", [_stack()[0], np.dstack([_stack()[0], _stack()[1], _stack()[2]])],
                         ids=["grey", "rgb"])
def test_single_plane_file_leaves_out_what_its_jpeg_frame_says(image):
    """A 2D file holds no shape, RGB flag or index: its frame gives them, its payload runs to the end."""
    blob = cj.encode(image, quality=70, model="jpeg")
    assert set(_json(blob)) == {"model", "quality", "crc32"}
    i = cj.info(blob)
    assert i["shape"] == image.shape and i["rgb"] == (image.ndim == 3) and i["planes"] == 1
    assert np.array_equal(cj.decode(blob), cj.decode(cj.encode(image[None], quality=70, model="jpeg"))[0])
    with pytest.raises(cj.CjpgError, match="truncated"):
        cj.decode(blob[:-100])


def test_single_plane_shape_kept_where_the_frame_does_not_say_it():
    """A one-plane stack, or a compact model's smaller payload, records its shape."""
    one = cj.encode(_stack()[:1], quality=70, model="jpeg")
    assert _json(one)["shape"] == [1, 24, 32] and cj.decode(one).shape == (1, 24, 32)
    small = cj.encode(np.zeros((24, 32, 3), np.uint8), quality=70, model="compact-s-v2")
    assert _json(small)["shape"] == [24, 32, 3] and cj.decode(small).shape == (24, 32, 3)


def test_single_plane_without_a_frame_header_refused():
    """Shape and RGB come from the frame: a file whose frame cannot be found is refused, quickly."""
    blob = rewrite_meta(BLOB2D, lambda m: None)
    start = blob.index(container.MAGIC) - 4
    end = start + 2 + struct.unpack(">H", blob[start + 2 : start + 4])[0]
    junk = b"\xff\xe1\x00\x02" * 5000  # empty APP1 segments, then the file ends
    with pytest.raises(cj.CjpgError, match="frame header"):
        cj.decode(blob[:end] + junk)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("crc32"), "no plane index"),
    (lambda m: m.update(rgb=True), "contradicts"),
])
def test_single_plane_header_refused(change, message):
    blob = rewrite_meta(BLOB2D, lambda m: None)
    meta = _json(blob)
    change(meta)
    with pytest.raises(cj.CjpgError, match=message):
        cj.decode(_raw_file(meta, blob, container.VERSION))


def _raw_file(meta: dict, blob: bytes, version: int) -> bytes:
    """``blob`` with its metadata segment replaced by ``meta`` as written, under format ``version``."""
    start = blob.index(container.MAGIC) - 4
    end = start + 2 + struct.unpack(">H", blob[start + 2 : start + 4])[0]
    doc = json.dumps(meta, separators=(",", ":")).encode()
    doc = container._deflate(doc) if version >= 4 else doc  # version 4 stores it deflated
    body = container._HEAD.pack(container.MAGIC, version, 0, 1, zlib.crc32(doc)) + doc
    return blob[:start] + container.APP9 + struct.pack(">H", len(body) + 2) + body + blob[end:]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_versions_still_read(version):
    """Version 1 holds every field; version 2 leaves out defaults but keeps version, shape and index;
    version 3 leaves out the version (the segments' header holds it) and stores the JSON as is."""
    with Container.open(BLOB) as c:
        payloads = [c.payload(k) for k in range(len(c))]
    full = {"version": version, "model": "jpeg", "model_sha256": None, "quality": 70, "subsampling": "4:2:0",
            "shape": [4, 24, 32], "dtype": "uint8", "rgb": False, "axes": None, "mapping": None, "required": [],
            "image": {}}
    if version >= 2:
        full = {k: full[k] for k in ("version", "model", "quality", "shape") if version == 2 or k != "version"}
    full["planes"] = [{"length": len(p), "crc32": f"{zlib.crc32(p):08x}" if version >= 2 else zlib.crc32(p)}
                      for p in payloads]
    blob = _raw_file(full, BLOB, version)
    assert np.array_equal(cj.decode(blob), cj.decode(BLOB))
    assert cj.info(blob)["format_version"] == version
    if version == 1:
        lacking = _raw_file({k: v for k, v in full.items() if k != "axes"}, blob, 1)
        with pytest.raises(cj.CjpgError, match="missing fields"):  # version 1 has no defaults
            cj.decode(lacking)


def test_network_payloads_carry_no_jfif_segment():
    """JFIF's 18 bytes are left out of every payload but plain JPEG's; every decoder shows the same pixels."""
    img = astronaut()[:64, :96]
    plain = encode_jpeg(img, 50)
    lean = strip_jfif(plain)
    assert b"JFIF" in plain and b"JFIF" not in lean and len(plain) - len(lean) == 18
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(lean))), np.asarray(Image.open(io.BytesIO(plain))))
    assert b"JFIF" not in cj.encode(img, quality=50, model="jpeg-tuned")
    assert b"JFIF" in cj.encode(img, quality=50, model="jpeg")
    assert strip_jfif(b"not a jpeg") == b"not a jpeg"


@pytest.mark.parametrize("sha", ["abc", "Z" * 32, 7, "0" * 66])
def test_bad_hash_refused(sha):
    with pytest.raises(cj.CjpgError, match="model_sha256"):
        cj.decode(rewrite_meta(BLOB, lambda m: m.update(model_sha256=sha)))


def test_network_files_record_a_hash_prefix_and_check_it():
    from napari_cnnjpeg.nn.models import model_info

    img = _stack()[0]
    blob = cj.encode(img, quality=70, model="restore-s-v3")
    full = model_info("restore-s-v3").sha256
    assert _json(blob)["model_sha256"] == full[: container.HASH_DIGITS]
    assert cj.decode(rewrite_meta(blob, lambda m: m.update(model_sha256=full))).shape == img.shape
    other = ("0" if full[0] != "0" else "1") + full[1:32]
    with pytest.raises(cj.CjpgError, match="other weights"):
        cj.decode(rewrite_meta(blob, lambda m: m.update(model_sha256=other)))


def test_plane_crc_is_fixed_width_hex():
    """The index holds each CRC as 8 hex digits, so equal payload lengths give equal file sizes."""
    assert all(isinstance(p["crc32"], str) and len(p["crc32"]) == 8 for p in _json(BLOB)["planes"])
    with Container.open(BLOB2D) as c:
        meta = dict(c.meta)
    meta["planes"] = [{"length": 10, "crc32": "xyzxyzxy"}]  # not hex
    with pytest.raises(cj.CjpgError, match="bad plane index entry"):
        container._check_meta(meta)


def test_metadata_is_stored_deflated_and_small():
    """Version 4 deflates the JSON document with the format's preset dictionary: a photo's
    metadata segment takes under 64 bytes, a 12-bit microscopy plane's under 112."""
    size = lambda blob: struct.unpack(">H", blob[blob.index(container.MAGIC) - 2 : blob.index(container.MAGIC)])[0] + 2
    photo = cj.encode(_stack()[0], quality=70)
    assert size(photo) < 64 and _json(photo)["model"] == cj.info(photo)["model"]
    y, x = np.mgrid[0:64, 0:64]
    plane = (400 + 3000 * np.exp(-((x - 30) ** 2 + (y - 20) ** 2) / 200)).astype(np.uint16)
    for q in (30, 80):
        blob = cj.encode(plane, quality=q)
        assert size(blob) < 112 and set(_json(blob)["required"]) >= {"bits", "levels"}


@pytest.mark.parametrize("stored, message", [
    (b"\x00\x01\x02not deflate", "does not inflate"),
    (container._deflate(b'{"model":"jpeg"}')[:-2], "cut short"),
    (container._deflate(b'{"model":"jpeg"}') + b"more", "runs on"),
])
def test_a_corrupt_deflated_document_is_refused(stored, message):
    start = BLOB.index(container.MAGIC) - 4
    end = start + 2 + struct.unpack(">H", BLOB[start + 2 : start + 4])[0]
    body = container._HEAD.pack(container.MAGIC, 4, 0, 1, zlib.crc32(stored)) + stored
    blob = BLOB[:start] + container.APP9 + struct.pack(">H", len(body) + 2) + body + BLOB[end:]
    with pytest.raises(cj.CjpgError, match=message):
        cj.decode(blob)


def test_a_deflate_bomb_is_refused(monkeypatch):
    """A small stored document may inflate to gigabytes: inflating stops past MAX_META."""
    blob = rewrite_meta(BLOB, lambda m: m.update(image={"name": " " * 20_000}))
    assert len(blob) < len(BLOB) + 1000
    monkeypatch.setattr(container, "MAX_META", 10_000)  # a reader with a lower limit than the writer's
    with pytest.raises(cj.CjpgError, match="inflates beyond"):
        cj.decode(blob)


def test_segments_of_mixed_versions_are_refused():
    name = np.random.default_rng(1).integers(0, 2**62, 8000).astype(str).tobytes().hex()
    blob = bytearray(cj.encode(np.zeros((2, 8, 8), np.uint8), model="jpeg", metadata={"name": name}))
    second = blob.index(container.MAGIC, blob.index(container.MAGIC) + 1) + len(container.MAGIC)
    blob[second] = 3
    with pytest.raises(cj.CjpgError, match="out of order"):
        cj.decode(bytes(blob))


def test_the_format_document_quotes_the_dictionary():
    """The preset dictionary is part of the format: docs/format.md quotes it byte for byte."""
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "docs" / "format.md"
    if not spec.is_file():
        pytest.skip("docs/ is not beside the tests")
    assert "\n" + container.DICTIONARY.decode() + "\n" in spec.read_text()
