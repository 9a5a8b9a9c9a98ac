"""User paths of the scale layer on clusters and archives: relative paths on a dask cluster, a TIFF
converted while a distributed client is active, corrupt chunks named, killed conversions cleaned up,
big-endian zarr 3 arrays."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from napari_cnnjpeg import CjpgError
from napari_cnnjpeg.eval.metrics import psnr


def _as8(a):
    """16-bit data made as 8-bit x 16, back to 8 bits for psnr()."""
    return np.clip(np.round(np.asarray(a, float) / 16), 0, 255).astype(np.uint8)


def _cam(shape=(200, 230)):
    from skimage import data

    return np.ascontiguousarray(data.camera()[: shape[0], : shape[1]])


def test_zarr3_array_with_a_big_endian_dtype_reads_back(tmp_path):
    """FITS-style ">u2" data: zarr 3 wrote it, then every read failed ("decodes to uint16, expects >u2")."""
    import zarr

    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    data = (_cam().astype(np.uint16) * 16).astype(">u2")
    z = zarr.create_array(str(tmp_path / "be.zarr"), shape=data.shape, chunks=(64, 64), dtype=data.dtype,
                          serializer=CnnJpegCodec(quality=90, mapping=[0, 4095]), compressors=None)
    z[:] = data
    back = z[:]
    assert back.dtype == np.dtype(">u2") and psnr(_as8(data), _as8(back)) > 35
    reopened = zarr.open_array(str(tmp_path / "be.zarr"), mode="r")[:]
    assert np.array_equal(reopened, back)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_corrupt_chunk_is_named_by_bad_chunks(tmp_path, zarr_format):
    """zarr gives a codec no chunk key: the error points to bad_chunks(), which names the chunk file."""
    import numcodecs
    import zarr

    from napari_cnnjpeg.scale.verify import bad_chunks
    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    img = np.stack([_cam(), _cam()[::-1]])
    path = tmp_path / f"a{zarr_format}.zarr"
    kw = (dict(zarr_format=2, compressors=numcodecs.get_codec({"id": "cnnjpeg", "quality": 80})) if zarr_format == 2
          else dict(serializer=CnnJpegCodec(quality=80), compressors=None))
    z = zarr.create_array(str(path), shape=img.shape, chunks=(1, 128, 128), dtype="uint8", **kw)
    z[:] = img
    assert bad_chunks(path) == []
    chunk = path / ("1.1.0" if zarr_format == 2 else "c/1/1/0")
    blob = chunk.read_bytes()
    chunk.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CjpgError, match=r"a chunk cannot be decoded: corrupt.*bad_chunks"):
        zarr.open_array(str(path), mode="r")[:]
    found = bad_chunks(str(path))
    assert [f["chunk"] for f in found] == [(1, 1, 0)]
    assert found[0]["key"].endswith("1.1.0" if zarr_format == 2 else "c/1/1/0") and "corrupt" in found[0]["error"]


def test_a_sharded_array_names_the_bad_shard(tmp_path):
    import zarr

    from napari_cnnjpeg.scale.verify import bad_chunks
    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    img = _cam()
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=img.shape, chunks=(32, 32), shards=(64, 64),
                          dtype="uint8", serializer=CnnJpegCodec(quality=80), compressors=None)
    z[:] = img
    shard = tmp_path / "s.zarr" / "c" / "1" / "2"
    blob = bytearray(shard.read_bytes())
    blob[100:150] = bytes(50)
    shard.write_bytes(bytes(blob))
    found = bad_chunks(z, limit=5)
    assert [f["chunk"] for f in found] == [(1, 2)] and found[0]["key"].endswith("c/1/2")


def test_convert_removes_what_a_killed_run_left(tmp_path):
    """A killed convert left a hidden .<name>.tmp-* folder that no rerun removed (GBs at archive scale);
    one killed while replacing an output left the old one set aside under .<name>.old-*."""
    import zarr

    from napari_cnnjpeg.scale.ome_zarr import convert

    src = tmp_path / "cam.png"
    Image.fromarray(_cam((96, 96))).save(src)
    out = tmp_path / "cam.ome.zarr"
    stale = tmp_path / ".cam.ome.zarr.tmp-0badf00d"
    (stale / "0" / "c").mkdir(parents=True)
    (stale / "0" / "c" / "0").write_bytes(b"half a chunk")
    convert(src, out, chunk=32)
    assert not stale.exists() and out.is_dir()
    # killed between setting the old output aside and renaming the new one in: the old one comes back
    aside = tmp_path / ".cam.ome.zarr.old-12345678"
    out.rename(aside)
    (tmp_path / ".cam.ome.zarr.tmp-87654321").mkdir()
    with pytest.raises(CjpgError, match="exists"):
        convert(src, out, chunk=32)
    assert out.is_dir() and not aside.exists() and zarr.open_array(str(out / "0"), mode="r").shape == (96, 96)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.ome.zarr", "cam.png"]


def test_a_bad_scheduler_address_is_named(tmp_path):
    """A bare ValueError traceback before; and the failed Client left dask.distributed as the process's
    scheduler, so every later dask computation failed ("no Client active")."""
    import dask
    import dask.array as da

    from napari_cnnjpeg.cli import main

    src = tmp_path / "in.png"
    Image.fromarray(_cam((64, 64))).save(src)
    with pytest.raises(CjpgError, match="dask scheduler '127.0.0.1'.*port"):
        from napari_cnnjpeg.scale.batch import run

        run([src], tmp_path / "out", scheduler="127.0.0.1")
    assert main(["batch", str(src), "--out", str(tmp_path / "out"), "--scheduler", "nope://x:1"]) != 0
    assert dask.config.get("scheduler", None) is None
    assert int(da.ones(4, chunks=2).sum().compute()) == 4


def test_cluster_in_another_folder_relative_paths_and_convert_with_a_client(tmp_path, monkeypatch):
    """A cluster whose workers run in another folder (as on other machines): batch with relative paths
    read nothing ("no such file" for every input); convert of a TIFF with a distributed client active
    failed ("Could not serialize"); a cnnjpeg zarr array is read and written on the cluster."""
    import dask.array as da
    import tifffile
    import zarr
    from distributed import Client, LocalCluster

    from napari_cnnjpeg.scale.batch import run
    from napari_cnnjpeg.scale.ome_zarr import convert
    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "in").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(3):
        Image.fromarray(np.ascontiguousarray(np.roll(_cam((96, 96)), 7 * i, axis=1))).save(work / "in" / f"p{i}.png")
    stack = (np.stack([_cam((96, 96)), _cam((96, 96)).T]).astype(np.uint16) * 16)
    tifffile.imwrite(work / "s.tif", stack, metadata={"axes": "ZYX"})
    monkeypatch.chdir(elsewhere)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        monkeypatch.chdir(work)
        summary = run(["in"], "out", scheduler=cluster.scheduler_address, quality=70)
        assert summary["done"] == 3 and not summary["failed"], summary
        assert sorted(p.name for p in (work / "out").iterdir()) == ["p0.cjpg", "p1.cjpg", "p2.cjpg"]
        assert not list(elsewhere.iterdir())

        result = convert("s.tif", "s.ome.zarr", chunk=32)  # the client is active (dask's default scheduler)
        assert result["shapes"][0] == [2, 96, 96]
        level0 = da.from_zarr(str(work / "s.ome.zarr" / "0"))
        assert psnr(_as8(stack), _as8(level0.compute())) > 35  # decoded on the cluster's workers

        target = str(work / "w.zarr")
        da.from_array(stack, chunks=(1, 48, 48)).to_zarr(  # written by the workers
            target, serializer=CnnJpegCodec(quality=90, mapping=[0, 4095]), compressors=None)
        assert psnr(_as8(stack), _as8(zarr.open_array(target, mode="r")[:])) > 35

        def model_loads():
            from napari_cnnjpeg.nn import models

            info = getattr(models, "_load_stages", models.load_stages).cache_info()
            return info.misses, info.currsize

        loads = client.run(model_loads)  # each model loaded once per worker process, not once per chunk or file
        assert loads and all(misses == held for misses, held in loads.values()), loads
    assert os.getcwd() == str(work)
