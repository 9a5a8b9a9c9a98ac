"""The cnnjpeg codec in numcodecs, zarr format 2 and zarr format 3 arrays."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_cnnjpeg import CjpgError, decode, encode
from napari_cnnjpeg.eval.metrics import psnr


def test_numcodecs_registry_round_trip_grey_and_rgb(photo):
    import numcodecs

    codec = numcodecs.get_codec({"id": "cnnjpeg", "quality": 90})
    assert numcodecs.get_codec(codec.get_config()).get_config() == codec.get_config()
    grey = np.ascontiguousarray(photo[None, ..., 1])  # a (1, Y, X) chunk
    out = codec.decode(codec.encode(grey))
    assert out.shape == grey.shape and out.dtype == np.uint8 and psnr(grey, out) > 35
    rgb_codec = numcodecs.get_codec({"id": "cnnjpeg", "quality": 90, "channel_axis": -3})
    chw = np.ascontiguousarray(np.moveaxis(photo, -1, 0))  # channel-first, as OME-Zarr orders axes
    blob = rgb_codec.encode(chw)
    assert psnr(photo, decode(blob)) > 33  # the chunk is an RGB .cjpg (a JPEG file)
    out = np.empty_like(chw)
    rgb_codec.decode(blob, out=out)
    assert psnr(chw, out) > 33


def test_value_range_maps_every_chunk_alike(stack16):
    from napari_cnnjpeg.scale.numcodecs_codec import CnnJpeg

    codec = CnnJpeg(quality=95, mapping=[0, 65535])
    blob = codec.encode(stack16[:1])
    out = codec.decode(blob)
    assert out.dtype == np.uint16 and psnr(stack16[:1], out) > 40
    assert encode(stack16, mapping=(0, 65535)) != encode(stack16)
    with pytest.raises(CjpgError, match="mapping"):
        encode(stack16, mapping=(5, 5))


@pytest.mark.parametrize("config, match", [
    ({"quality": 0}, "quality"),
    ({"model": "no-such-model"}, "no-such-model"),
    ({"mapping": [3, 1]}, "mapping"),
    ({"mapping": [0, float("inf")]}, "mapping"),
    ({"channel_axis": "c"}, "channel_axis"),
    ({"subsampling": "4:1:1"}, "subsampling"),
])
def test_bad_codec_settings_are_refused(config, match):
    import numcodecs

    with pytest.raises(CjpgError, match=match):
        numcodecs.get_codec({"id": "cnnjpeg", **config})


def test_bad_chunks_are_refused():
    from napari_cnnjpeg.scale.numcodecs_codec import CnnJpeg

    with pytest.raises(CjpgError, match="2 or more dimensions"):
        CnnJpeg().encode(np.zeros(64, np.uint8))
    with pytest.raises(CjpgError, match="channel_axis"):
        CnnJpeg(channel_axis=-1).encode(np.zeros((3, 8, 8), np.uint8))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_array_round_trip_and_lazy_read_in_a_fresh_process(tmp_path, zarr_format):
    """Written here, read in a new process through the entry points, lazily with dask."""
    import zarr
    from skimage import data

    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    img = data.camera()[:320, :384]
    path = str(tmp_path / f"cam-v{zarr_format}.zarr")
    if zarr_format == 2:
        import numcodecs

        z = zarr.create_array(path, shape=img.shape, chunks=(128, 128), dtype="uint8", zarr_format=2,
                              compressors=numcodecs.get_codec({"id": "cnnjpeg", "quality": 80}))
    else:
        z = zarr.create_array(path, shape=img.shape, chunks=(128, 128), dtype="uint8",
                              serializer=CnnJpegCodec(quality=80), compressors=None)
    z[:] = img
    assert psnr(img, z[:]) > 33
    np.save(tmp_path / "ref.npy", img)
    code = (
        "import dask.array as da, numpy as np, sys\n"
        f"a = da.from_zarr({path!r})\n"
        "assert a.chunksize == (128, 128), a.chunksize\n"
        f"ref = np.load({str(tmp_path / 'ref.npy')!r})\n"
        "from skimage.metrics import peak_signal_noise_ratio as p\n"
        "print(round(p(ref, a.compute()), 2))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) == pytest.approx(psnr(img, z[:]), abs=0.01)


def test_zarr3_codec_metadata_round_trip():
    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    codec = CnnJpegCodec(quality=60, mapping=[0, 4095], channel_axis=-3)
    assert CnnJpegCodec.from_dict(codec.to_dict()) == codec
    with pytest.raises(CjpgError, match="quality"):
        CnnJpegCodec.from_dict({"name": "cnnjpeg", "configuration": {"quality": 101}})
