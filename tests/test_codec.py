"""Round trips and behaviour of the public codec API."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.jpeg import encode_jpeg


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()[::2, ::2].copy()


def test_rgb_roundtrip(astronaut):
    out = cj.decode(cj.encode(astronaut, quality=90, model="jpeg"))
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    assert psnr(astronaut, out) > 33


def test_gray_roundtrip():
    cam = data.camera()
    out = cj.decode(cj.encode(cam, quality=90, model="jpeg"))
    assert out.shape == cam.shape and out.dtype == np.uint8
    assert psnr(cam, out) > 35


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (17, 33), (1, 1, 3), (7, 13, 3), (31, 9, 3), (100, 1)])
def test_odd_sizes(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    out = cj.decode(cj.encode(img, quality=95, model="jpeg"))
    assert out.shape == img.shape and out.dtype == np.uint8


def test_uint16_roundtrip():
    img = np.linspace(1000, 40000, 64 * 80).reshape(64, 80).astype(np.uint16)
    out = cj.decode(cj.encode(img, quality=95, model="jpeg"))
    assert out.dtype == np.uint16 and out.shape == img.shape
    # linear min/max mapping to 8 bits: error within about one 8-bit step of the range
    step = (40000 - 1000) / 255
    assert np.abs(out.astype(np.int64) - img).max() < 3 * step
    assert out.min() >= 1000 - 3 * step and out.max() <= 40000 + 3 * step


def test_float32_roundtrip():
    img = (np.sin(np.linspace(0, 6, 48 * 48)).reshape(48, 48) * 3.5 - 1).astype(np.float32)
    out = cj.decode(cj.encode(img, quality=95, model="jpeg"))
    assert out.dtype == np.float32
    assert np.abs(out - img).max() < 0.1


def test_constant_plane():
    img = np.full((16, 16), 1234, np.uint16)
    assert np.array_equal(cj.decode(cj.encode(img, model="jpeg")), img)


@pytest.mark.parametrize("shape", [(3, 24, 40), (2, 3, 24, 40), (2, 3, 24, 40, 3)])
def test_stacks(shape):
    photo = data.astronaut()[100:124, 200:240]
    base = photo if shape[-1] == 3 else photo[..., 1]
    img = np.empty(shape, np.uint8)
    flat = img.reshape((-1,) + base.shape)
    for k in range(flat.shape[0]):
        flat[k] = np.roll(base, k, axis=0)
    blob = cj.encode(img, quality=95, model="jpeg")
    out = cj.decode(blob)
    assert out.shape == img.shape
    assert psnr(img, out) > 25
    i = cj.info(blob)
    assert i["planes"] == flat.shape[0] and i["shape"] == shape
    for k in range(flat.shape[0]):
        np.testing.assert_array_equal(cj.read_plane(blob, k), out.reshape(flat.shape)[k])


def test_payload_is_pillow_jpeg(astronaut):
    """The 'jpeg' model stores exactly Pillow's JPEG: decoding gives Pillow's pixels."""
    blob = cj.encode(astronaut, quality=42, model="jpeg")
    pillow = encode_jpeg(astronaut, 42, "4:2:0")
    ref = io.BytesIO()
    Image.fromarray(astronaut).save(ref, format="JPEG", quality=42, subsampling=2, optimize=True)
    assert pillow == ref.getvalue()
    from napari_cnnjpeg.format.container import Container

    with Container.open(blob) as c:
        assert c.payload(0) == pillow
    np.testing.assert_array_equal(cj.decode(blob), np.asarray(Image.open(io.BytesIO(pillow))))


def test_pillow_opens_2d_file(tmp_path, astronaut):
    path = tmp_path / "a.cjpg"
    cj.imwrite(path, astronaut, quality=60, model="jpeg")
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == (astronaut.shape[1], astronaut.shape[0])
        np.testing.assert_array_equal(np.asarray(im), cj.imread(path))


def test_info_fields(tmp_path):
    img = np.zeros((2, 32, 48), np.uint16)
    img[1] = 500
    meta = {"name": "cells", "scale": [2.0, 0.5, 0.5], "translate": [0, 1, 2], "axis_labels": ["z", "y", "x"],
            "units": ["um", "um", "um"], "contrast_limits": [0, 600], "colormap": "magma"}
    path = tmp_path / "s.cjpg"
    cj.imwrite(path, img, quality=80, model="jpeg", axes="ZYX", metadata=meta)
    i = cj.info(path)
    assert i["model"] == "jpeg" and i["quality"] == 80 and i["dtype"] == "uint16"
    assert i["shape"] == (2, 32, 48) and i["planes"] == 2 and i["axes"] == "ZYX"
    assert i["bytes"] == path.stat().st_size
    assert i["bpp"] == pytest.approx(path.stat().st_size * 8 / (32 * 48 * 2))
    assert i["format_version"] == 4 and i["downscale"] == 1
    assert i["bits"] == 12 and i["weighting"] is None  # 16-bit data: 12-bit payloads, plain JPEG's unweighted
    first = "; of its 2 planes, ordinary viewers show the first only"
    assert i["stock_viewer"] == cj.codec.TWELVE_BIT_VIEWERS + first
    weighted = cj.info(cj.encode(img, quality=80))  # the default model's, above quality 60
    assert weighted["weighting"] == cj.codec.FLATTEN
    assert weighted["stock_viewer"] == (cj.codec.TWELVE_BIT_VIEWERS
                                        + (cj.codec.ARITHMETIC_VIEWERS if weighted["arithmetic"] else "")
                                        + cj.codec.WEIGHTED_VIEWERS + first)
    levels = cj.info(cj.encode(img[0], quality=30))  # fewer levels than 12-bit JPEG's 4096 at low qualities
    assert levels["levels"] < 4095 and levels["stock_viewer"].endswith("so other decoders show it dark")
    assert not i["arithmetic"]  # plain JPEG's 12-bit payloads stay Huffman coded
    for k, v in meta.items():
        assert i[k] == v


def test_available_models():
    models = cj.available_models()
    assert models[0] == "jpeg"
    assert cj.default_model() in models


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((8, 8), bool), "boolean"),
        (np.zeros((8, 8), complex), "unsupported dtype"),
        (np.zeros(8, np.uint8), "at least 2 dimensions"),
        (np.zeros((0, 8), np.uint8), "1 to 65500"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_images(bad, match):
    with pytest.raises(cj.CjpgError, match=match):
        cj.encode(bad, model="jpeg")


def test_bad_options(astronaut):
    with pytest.raises(cj.CjpgError, match="unknown model"):
        cj.encode(astronaut, model="nope")
    with pytest.raises(cj.CjpgError, match="quality"):
        cj.encode(astronaut, quality=0, model="jpeg")
    with pytest.raises(cj.CjpgError, match="subsampling"):
        cj.encode(astronaut, subsampling="4:1:1", model="jpeg")
    with pytest.raises(cj.CjpgError, match="axes"):
        cj.encode(astronaut, axes="YX", model="jpeg")
    with pytest.raises(cj.CjpgError, match="metadata"):
        cj.encode(astronaut, metadata={"secret": 1}, model="jpeg")
    with pytest.raises(cj.CjpgError, match="RGB"):
        cj.encode(np.zeros((8, 8), np.uint8), rgb=True, model="jpeg")


def test_rgb_flag_overrides_guess():
    img = np.random.default_rng(0).integers(0, 255, (5, 16, 3), dtype=np.uint8)
    blob = cj.encode(img, rgb=False, model="jpeg")
    assert cj.info(blob)["planes"] == 5 and not cj.info(blob)["rgb"]
    assert cj.decode(blob).shape == img.shape


def test_failed_write_keeps_old_file(tmp_path, astronaut):
    path = tmp_path / "keep.cjpg"
    cj.imwrite(path, astronaut, model="jpeg")
    before = path.read_bytes()
    with pytest.raises(cj.CjpgError):
        cj.imwrite(path, np.zeros((4, 4), bool))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.cjpg"]


def test_write_interrupted_midway_keeps_old_file(tmp_path, astronaut, monkeypatch):
    import os

    path = tmp_path / "keep.cjpg"
    cj.imwrite(path, astronaut, model="jpeg")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(cj.CjpgError, match=r"cannot write .*keep\.cjpg: disk full"):
        cj.imwrite(path, astronaut[::2], model="jpeg")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.cjpg"]


def test_progress_callback():
    calls = []
    cj.encode(np.zeros((3, 16, 16), np.uint8), model="jpeg", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_lazy_dask_stack_is_read_plane_by_plane():
    import dask.array as da

    reads = []

    def plane(k):
        reads.append(k)
        return np.full((1, 16, 24), k * 10, np.uint8)

    lazy = da.concatenate([da.from_delayed(__import__("dask").delayed(plane)(k), (1, 16, 24), np.uint8)
                           for k in range(4)])
    blob = cj.encode(lazy, model="jpeg", quality=95)
    assert sorted(reads) == [0, 1, 2, 3]
    out = cj.decode(blob)
    assert out.shape == (4, 16, 24)
    assert [int(np.median(p)) for p in out] == [0, 10, 20, 30]


def test_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, napari_cnnjpeg; assert 'torch' not in sys.modules, 'torch imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("shape", [(301, 299, 3), (2, 101, 77), (1, 1)])
def test_downscaled_payload_roundtrip(shape):
    """A compact model's file holds half-size JPEGs and decodes to the full shape."""
    from napari_cnnjpeg.nn.models import ModelStages

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    if img.ndim == 3 and shape[-1] == 3:
        img = data.astronaut()[: shape[0], : shape[1]].copy()
    half = ModelStages(downscale=2)
    blob = cj.encode(img, quality=90, model=half)
    i = cj.info(blob)
    assert i["downscale"] == 2 and i["shape"] == shape
    plane_h, plane_w = (shape[-3:-1] if i["rgb"] else shape[-2:])
    with Image.open(io.BytesIO(blob)) as im:  # the payload is a plain JPEG at half size
        assert im.size == (-(-plane_w // 2), -(-plane_h // 2))
    out = cj.decode(blob, model=half)
    assert out.shape == shape and out.dtype == np.uint8
    assert cj.decode(blob, model="jpeg").shape == shape
    if i["rgb"]:
        assert psnr(img, out) > 25  # a smooth photo survives halving
