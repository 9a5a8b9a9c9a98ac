"""Structured attacks on the reader: crafted headers and payloads (valid CRCs) that a random fuzzer
does not find. Each gets a clear CjpgError (or, in napari, a layer that opens), in bounded time and memory."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from helpers import rewrite_meta
from PIL import Image

import napari_cnnjpeg as cj
from napari_cnnjpeg import codec
from napari_cnnjpeg.format import container as C
from napari_cnnjpeg.format.jpeg import encode_jpeg, encode_jpeg12


def _jpeg(h: int = 8, w: int = 8) -> bytes:
    return encode_jpeg(np.full((h, w), 100, np.uint8), 75, "4:2:0", None, False, False)


def _raw(document: bytes, payloads: list[bytes], version: int = C.VERSION) -> bytes:
    """A file whose metadata is ``document`` as it is (any bytes), deflated for version 4, with a valid CRC."""
    blob = C._deflate(document) if version >= 4 else document
    at, crc = C._insert_at(payloads[0]), zlib.crc32(blob)
    chunks = [blob[i : i + C._CHUNK] for i in range(0, len(blob), C._CHUNK)]
    segments = b"".join(C.APP9 + struct.pack(">H", len(c) + 2 + C._HEAD.size)
                        + C._HEAD.pack(C.MAGIC, version, i, len(chunks), crc) + c for i, c in enumerate(chunks))
    return payloads[0][:at] + segments + payloads[0][at:] + b"".join(payloads[1:])


def _one_plane(payload: bytes, **fields) -> bytes:
    doc = {"model": "jpeg", "quality": 75, "crc32": f"{zlib.crc32(payload):08x}", **fields}
    return _raw(json.dumps(doc).encode(), [payload])


# -- the JSON document ---------------------------------------------------------------
@pytest.mark.parametrize("version", [3, 4])
def test_deeply_nested_metadata_is_refused(version):
    data = _raw(b"[" * 100_000 + b"]" * 100_000, [_jpeg()], version)
    with pytest.raises(cj.CjpgError, match="nested too deeply"):
        cj.info(data)


def test_integer_too_long_for_python_is_refused():
    p = _jpeg()
    doc = b'{"model":"jpeg","quality":' + b"9" * 5000 + b',"crc32":"%08x"}' % zlib.crc32(p)
    with pytest.raises(cj.CjpgError, match="number too long"):
        cj.decode(_raw(doc, [p]))


def test_small_file_cannot_inflate_to_a_huge_header():
    """30 kB of deflate held 30 MB of ``[{},...]`` (256 MiB would have taken 7 GB once parsed)."""
    p = _jpeg()
    doc = b'{"model":"jpeg","quality":75,"crc32":"%08x","x":[' % zlib.crc32(p) + b"{}," * 1_000_000 + b"{}]}"
    data = _raw(doc, [p])
    assert len(data) < 10_000 and len(doc) > C.meta_limit(len(data))
    with pytest.raises(cj.CjpgError, match="inflates beyond"):
        cj.info(data)


def test_long_metadata_within_the_limit_reads_and_beyond_it_is_not_written():
    image = np.full((8, 8), 7, np.uint8)
    name = "n" * 500_000  # deflates to a few hundred bytes, within META_FLOOR
    assert cj.info(cj.encode(image, model="jpeg", metadata={"name": name}))["name"] == name
    with pytest.raises(cj.CjpgError, match="more than a reader accepts"):
        cj.encode(image, model="jpeg", metadata={"name": "n" * 2 * C.META_FLOOR})


def test_model_that_is_not_a_string_is_refused_by_info_too():
    with pytest.raises(cj.CjpgError, match="is not a model id"):
        cj.info(_one_plane(_jpeg(), model=["jpeg"]))


@pytest.mark.parametrize("model", ["../../x", "/etc/passwd", "jpeg\x00", "ｊｐｅｇ", "JPEG", "x" * 100_000])
def test_odd_model_ids_are_unknown_models_with_a_short_message(model):
    with pytest.raises(cj.CjpgError, match="unknown model") as exc:
        cj.decode(_one_plane(_jpeg(), model=model))
    assert len(str(exc.value)) < 1000
    assert len(cj.info(_one_plane(_jpeg(), model=model))["stock_viewer"]) < 200


def test_absurd_values_are_named_briefly():
    with pytest.raises(cj.CjpgError, match="absurd shape") as exc:
        cj.info(_one_plane(_jpeg(), shape=[0] * 100_000))
    assert len(str(exc.value)) < 200


# -- payloads --------------------------------------------------------------------------
def _with_frame_size(payload: bytes, h: int, w: int) -> bytes:
    i = payload.index(b"\xff\xc0") if b"\xff\xc0" in payload else payload.index(b"\xff\xc1")
    return payload[: i + 5] + struct.pack(">HH", h, w) + payload[i + 9 :]


@pytest.mark.parametrize("twelve", [False, True])
def test_payload_frame_larger_than_the_header_is_refused_before_decoding(twelve):
    """A 200-byte file whose 8x8 header holds a 13000x13000 frame made the decoder allocate 1.6 GB first."""
    if twelve:
        p = _with_frame_size(encode_jpeg12(np.zeros((8, 8), np.uint16), 75), 13000, 13000)
        data = _one_plane(p, shape=[8, 8], bits=12, dtype="uint16", required=["bits"],
                          mapping={"kind": "linear-minmax", "min": [0], "max": [1]})
    else:
        data = _one_plane(_with_frame_size(_jpeg(), 13000, 13000), shape=[8, 8])
    with pytest.raises(cj.CjpgError, match=r"decodes to 13000x13000 pixels \(its JPEG frame says\), header says 8x8"):
        cj.decode(data)


def _progressive(extra_scans: int, side: int = 32) -> bytes:
    """A progressive JPEG whose last scan is repeated ``extra_scans`` times (libjpeg only warns)."""
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), 90, np.uint8)).save(buf, "JPEG", quality=75, progressive=True)
    p = buf.getvalue()
    start = p.rindex(b"\xff\xda")
    end = p.rindex(b"\xff\xd9")
    return p[:end] + p[start:end] * extra_scans + p[end:]


def test_payload_of_countless_scans_is_refused():
    """Each scan is a pass over the plane: a 1 MB payload of 33-byte scans took minutes."""
    assert cj.decode(_one_plane(_progressive(20)), model="jpeg").shape == (32, 32)
    with pytest.raises(cj.CjpgError, match=f"more than {codec.MAX_SCANS} scans"):
        cj.decode(_one_plane(_progressive(codec.MAX_SCANS)))


def test_plain_jpeg_of_countless_scans_is_refused_by_restore():
    with pytest.raises(cj.CjpgError, match=f"more than {codec.MAX_SCANS_PLAIN} scans"):
        cj.restore(_progressive(codec.MAX_SCANS_PLAIN))
    with pytest.raises(cj.CjpgError, match="scans"):
        codec.decode_plain(_progressive(codec.MAX_SCANS_PLAIN))


def test_scan_count_skips_stuffed_bytes_restart_markers_and_fill():
    scans = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x12\xff\x00\x34\xff\xd0\x56"
    data = b"\xff\xd8" + b"\xff\xfe\x00\x04\xff\xda" + scans * 3 + b"\xff\xff\xd9"
    codec.check_scans(data, 3)
    with pytest.raises(cj.CjpgError):
        codec.check_scans(data, 2)


# -- what reading touches --------------------------------------------------------------
def test_importing_the_package_keeps_onnxruntime_from_writing_a_device_id(tmp_path):
    pytest.importorskip("onnxruntime")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path)
    code = "import napari_cnnjpeg, onnxruntime"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert not (tmp_path / ".cache" / "Microsoft").exists()


# -- image metadata napari chokes on ---------------------------------------------------
@pytest.mark.parametrize("key, value", [("units", ["9**9**9", "m"]), ("units", ["meter^99", "m"]),
                                        ("contrast_limits", [5, 5])])
def test_image_metadata_that_hangs_or_breaks_napari_is_refused(key, value):
    assert codec.image_meta_problem(key, value)
    with pytest.raises(cj.CjpgError, match=key):
        cj.encode(np.zeros((8, 8), np.uint8), metadata={key: value})


NAPARI_BREAKERS = [
    {"scale": [0.0, 0.0]}, {"scale": [1e308, 1e308]}, {"translate": [1e308, -1e308]},
    {"rotate": [[0.0, 0.0], [0.0, 0.0]]}, {"affine": [[0.0] * 3] * 3}, {"shear": [1e308]},
    {"units": ["!!", "meter?"]}, {"units": ["9**9**9", "m"]}, {"contrast_limits": [5, 5]},
]


@pytest.mark.usefixtures("isolated_napari_settings")
def test_napari_opens_files_whose_metadata_it_would_reject(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    base = cj.encode((np.arange(32 * 32).reshape(32, 32) % 200).astype(np.uint8), model="jpeg")
    for i, image in enumerate(NAPARI_BREAKERS):
        path = tmp_path / f"crafted{i}.cjpg"
        path.write_bytes(rewrite_meta(base, lambda m, image=image: m.update(image=image)))
        layers = viewer.open(path, plugin="napari-cnnjpeg")
        assert len(layers) == 1 and layers[0].data.shape == (32, 32), image
        viewer.layers.clear()
    path = tmp_path / "fine.cjpg"  # a sane transform is kept
    path.write_bytes(rewrite_meta(base, lambda m: m.update(image={"scale": [2.0, 0.5], "units": ["um", "um"]})))
    layer = viewer.open(path, plugin="napari-cnnjpeg")[0]
    assert tuple(layer.scale) == (2.0, 0.5) and str(layer.units[0]) == "micrometer"
