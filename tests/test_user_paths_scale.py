"""User paths of the scale layer: zarr codecs on unusual chunks, batch plans and OME-Zarr outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from napari_cnnjpeg import CjpgError, encode
from napari_cnnjpeg.eval.metrics import psnr


def _zarr3(path, shape, chunks, dtype, fill_value=0, **codec):
    import zarr

    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    return zarr.create_array(str(path), shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value,
                             serializer=CnnJpegCodec(quality=85, **codec), compressors=None)


def test_channels_last_chunks_are_stored_as_rgb_jpeg(tmp_path, photo):
    """(Y, X, 3) chunks with channel_axis=-1: one RGB JPEG each, as small as encode() makes it (without it,
    90 grey planes 3 pixels wide, 14 times larger)."""
    import numcodecs

    codec = numcodecs.get_codec({"id": "cnnjpeg", "quality": 75, "channel_axis": -1})
    blob = codec.encode(photo)
    assert len(blob) == len(encode(photo, quality=75))
    assert psnr(photo, codec.decode(blob)) > 30
    with pytest.raises(CjpgError, match="channel_axis -1 .*RGB chunks.*160, 4"):  # four channels: not RGB
        codec.encode(np.dstack([photo, photo[..., :1]]))
    z = _zarr3(tmp_path / "yxc.zarr", (100, 150, 3), (64, 64, 3), "uint8", channel_axis=-1)
    z[:] = photo[:100, :150]
    assert z[:].shape == (100, 150, 3) and psnr(photo[:100, :150], z[:]) > 30
    with pytest.raises(CjpgError, match="channel_axis -2"):
        numcodecs.get_codec({"id": "cnnjpeg", "channel_axis": -2}).encode(photo)


def test_a_nan_fill_value_padding_an_edge_chunk_is_named(tmp_path):
    import numcodecs

    z = _zarr3(tmp_path / "nan.zarr", (40, 50), (32, 32), "float32", fill_value=np.nan)
    with pytest.raises(CjpgError, match="NaN or infinite.*fill_value"):
        z[:] = np.ones((40, 50), np.float32)  # finite data; edge chunks padded with NaN
    chunk = np.ones((8, 8))
    chunk[2, 3] = -np.inf
    with pytest.raises(CjpgError, match="NaN or infinite"):  # not clipped away by a given range
        numcodecs.get_codec({"id": "cnnjpeg", "mapping": [0, 2]}).encode(chunk)


@pytest.mark.parametrize("dtype", ["uint16", "int16", "float32"])
def test_edge_chunks_outside_a_given_range_store_clipped_without_warnings(tmp_path, dtype):
    """Edge chunks arrive padded with the fill value (0), outside the range: no warning leaks from
    zarr's encoding threads, and values outside the range come back clipped to it."""
    y, x = np.mgrid[0:100, 0:130]
    data = (1000 + 500 * np.sin(x / 9) * np.cos(y / 7)).astype(dtype)
    z = _zarr3(tmp_path / "a.zarr", data.shape, (32, 32), dtype, mapping=[600, 1400])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):  # a leak was a race between threads: give it chances
            z[:] = data
    assert not seen, [str(w.message) for w in seen]
    out = z[:]
    assert out.dtype == dtype and float(out.min()) >= 599 and float(out.max()) <= 1401
    inside = (data > 650) & (data < 1350)
    assert np.abs(out[inside].astype(float) - data[inside]).max() < 15


def test_unknown_codec_settings_are_named():
    import numcodecs

    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    with pytest.raises(CjpgError, match="unknown setting.*'level'.*known: quality"):
        numcodecs.get_codec({"id": "cnnjpeg", "level": 3})
    with pytest.raises(CjpgError, match="'level'"):
        CnnJpegCodec.from_dict({"name": "cnnjpeg", "configuration": {"quality": 60, "level": 3}})


def test_zarr3_codec_hashes_and_refuses_unstorable_dtypes_when_created(tmp_path):
    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    codec = CnnJpegCodec(quality=60, mapping=[0, 4095])
    assert hash(codec) == hash(CnnJpegCodec(quality=60, mapping=(0, 4095)))
    assert codec.to_dict()["configuration"]["mapping"] == [0.0, 4095.0]
    for dtype, match in [("bool", "bool.*losslessly"), ("complex64", "complex64")]:
        with pytest.raises(CjpgError, match=match):
            _zarr3(tmp_path / f"{dtype}.zarr", (16, 16), (16, 16), dtype)
        assert not (tmp_path / f"{dtype}.zarr" / "zarr.json").exists()


def _pngs(folder, n):
    from skimage import data

    folder.mkdir()
    for i in range(n):
        Image.fromarray(data.astronaut()[i * 20 : i * 20 + 48, :64]).save(folder / f"p{i}.png")
    return sorted(folder.iterdir())


def test_batch_takes_a_file_named_twice_once_and_refuses_a_file_as_out_dir(tmp_path):
    from napari_cnnjpeg.scale.batch import plan, run

    files = _pngs(tmp_path / "in", 2)
    assert [s for s, _ in plan([tmp_path / "in", files[0], files[0]], tmp_path / "out")] == files
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(CjpgError, match="cannot make the output folder"):
        run([tmp_path / "in"], tmp_path / "taken")


def test_batch_reports_a_folder_in_the_way_of_an_output(tmp_path):
    from napari_cnnjpeg.scale.batch import run

    _pngs(tmp_path / "in", 2)
    (tmp_path / "out" / "p0.cjpg").mkdir(parents=True)
    summary = run([tmp_path / "in"], tmp_path / "out", workers=1, quality=60)
    assert summary["done"] == 1 and summary["skipped"] == 0
    assert [f["input"] for f in summary["failed"]] == [str(tmp_path / "in" / "p0.png")]


def test_convert_never_deletes_its_input_and_replaces_a_file(tmp_path, monkeypatch):
    import zarr

    from napari_cnnjpeg.scale.ome_zarr import convert

    project = tmp_path / "project"
    project.mkdir()
    src = project / "cells.png"
    Image.fromarray(np.tile(np.arange(40, dtype=np.uint8), (30, 1))).save(src)
    with pytest.raises(CjpgError, match="holds the input"):
        convert(src, project, overwrite=True, chunk=16)
    monkeypatch.chdir(project)
    with pytest.raises(CjpgError, match="holds the input"):
        convert("cells.png", ".", overwrite=True, chunk=16)
    assert src.is_file()
    out = tmp_path / "cells.ome.zarr"
    out.write_text("an old file of that name")
    convert(src, out, overwrite=True, chunk=16)
    assert zarr.open_array(str(out / "0"), mode="r").shape == (30, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.ome.zarr", "project"]
