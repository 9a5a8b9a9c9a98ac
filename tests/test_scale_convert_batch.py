"""OME-Zarr conversion (cnnjpeg convert) and batch jobs on dask.distributed (cnnjpeg batch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from napari_cnnjpeg import CjpgError, decode, imwrite, info
from napari_cnnjpeg.cli import main
from napari_cnnjpeg.eval.metrics import psnr


@pytest.fixture
def photo_png(tmp_path, photo):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def test_convert_rgb_png_to_ome_zarr(tmp_path, photo_png, photo):
    import dask.array as da
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    from napari_cnnjpeg.scale.ome_zarr import convert

    out = tmp_path / "photo.ome.zarr"
    result = convert(photo_png, out, quality=85, chunk=64)
    assert result["axes"] == "cyx" and result["shapes"][0] == [3, 128, 160] and len(result["shapes"]) == 3
    level0 = zarr.open_array(str(out / "0"), mode="r")
    assert level0.shape == (3, 128, 160) and level0.chunks == (3, 64, 64)
    assert level0.metadata.codecs[0].to_dict()["name"] == "cnnjpeg"
    assert psnr(photo, np.moveaxis(da.from_zarr(str(out / "0")).compute(), 0, -1)) > 32
    node = next(iter(Reader(parse_url(str(out)))()))
    assert isinstance(node.specs[0], Multiscales) and [d.shape for d in node.data][1] == (3, 64, 80)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_convert_tiff_stack_and_cjpg(tmp_path, stack16):
    import tifffile
    import zarr

    from napari_cnnjpeg.scale.ome_zarr import convert

    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, stack16, metadata={"axes": "ZYX"})
    result = convert(tif, tmp_path / "stack.ome.zarr", quality=95, chunk=32)
    assert result["axes"] == "zyx" and result["dtype"] == "uint16"
    assert result["mapping"] == [float(stack16.min()), float(stack16.max())]  # one range for every chunk
    z = zarr.open_array(str(tmp_path / "stack.ome.zarr" / "0"), mode="r")
    assert z.dtype == np.uint16 and z.chunks == (1, 32, 32) and psnr(stack16, z[:]) > 40
    cj = tmp_path / "stack.cjpg"
    imwrite(cj, stack16, quality=95, axes="TYX")
    result = convert(cj, tmp_path / "fromcjpg.ome.zarr", quality=95, chunk=32)
    assert result["axes"] == "tyx"
    z = zarr.open_array(str(tmp_path / "fromcjpg.ome.zarr" / "0"), mode="r")
    assert psnr(decode(cj), z[:]) > 38


def test_convert_keeps_ome_tiff_pixel_sizes_and_odd_levels_line_up(tmp_path):
    """Level i's pixel is 2**i level-0 pixels (odd edges are trimmed, not stretched), centred
    (2**i - 1) / 2 of them in, both in the OME-TIFF's physical units."""
    import tifffile
    import zarr

    from napari_cnnjpeg.scale.ome_zarr import convert

    y, x = np.mgrid[0:70, 0:90]
    stack = np.stack([(1000 + 500 * np.sin(x / 5 + k) * np.cos(y / 7)) for k in range(3)]).astype(np.float32)
    tif = tmp_path / "cells.ome.tif"
    tifffile.imwrite(tif, stack, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0})
    convert(tif, tmp_path / "cells.ome.zarr", quality=90, chunk=33)
    attrs = zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="r").attrs.asdict()
    datasets = (attrs.get("ome") or attrs)["multiscales"][0]["datasets"]
    assert len(datasets) == 3
    for i, ds in enumerate(datasets):
        scale, shift = (t[{"scale": "scale", "translation": "translation"}[t["type"]]]
                        for t in ds["coordinateTransformations"])
        assert scale == pytest.approx([2.0, 0.5 * 2**i, 0.5 * 2**i])
        assert shift == pytest.approx([0.0, 0.25 * (2**i - 1), 0.25 * (2**i - 1)])
    saved = tmp_path / "from-napari.cjpg"  # as napari's writer makes it: a scale, no axes
    imwrite(saved, stack, quality=90, metadata={"scale": [2.0, 0.5, 0.5]})
    convert(saved, tmp_path / "from-napari.ome.zarr", quality=90, chunk=64)
    attrs = zarr.open_group(str(tmp_path / "from-napari.ome.zarr"), mode="r").attrs.asdict()
    level0 = (attrs.get("ome") or attrs)["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    assert level0["scale"] == pytest.approx([2.0, 0.5, 0.5])


def test_convert_refuses_existing_output_and_bad_input(tmp_path, photo_png):
    from napari_cnnjpeg.scale.ome_zarr import convert

    out = tmp_path / "x.ome.zarr"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CjpgError, match="exists"):
        convert(photo_png, out)
    assert (out / "keep.txt").read_text() == "mine"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(CjpgError, match="cannot read image"):
        convert(bad, tmp_path / "bad.ome.zarr")
    with pytest.raises(CjpgError, match="chunk"):
        convert(photo_png, tmp_path / "c.ome.zarr", chunk=3)
    assert main(["convert", str(photo_png), "--to", str(out), "--overwrite", "-q", "60", "--chunk", "64"]) == 0
    assert not (out / "keep.txt").exists() and (out / "0").is_dir()


def test_napari_opens_the_ome_zarr_lazily(make_napari_viewer, tmp_path, photo_png):
    import dask.array as da

    from napari_cnnjpeg.scale.ome_zarr import convert

    out = tmp_path / "photo.ome.zarr"
    convert(photo_png, out, quality=85, chunk=64)
    viewer = make_napari_viewer()
    layers = viewer.open(str(out), plugin="napari-ome-zarr")
    assert layers and layers[0].multiscale
    assert all(isinstance(level, da.Array) for level in layers[0].data)
    assert layers[0].data[0].shape[-2:] == (128, 160)
    # the omero block: RGB opens as a red, green and blue composite (without it: three grey layers)
    assert [(layer.colormap.name, tuple(layer.contrast_limits)) for layer in layers] == [
        ("red", (0, 255)), ("green", (0, 255)), ("blue", (0, 255))]


def test_ome_zarr_channels_carry_colours_and_the_data_range(tmp_path):
    """16-bit channels are shown over the data's range, not napari's guess; one grey channel stays grey."""
    import tifffile

    from napari_cnnjpeg.scale.ome_zarr import convert

    stack = (np.random.default_rng(0).random((2, 64, 64)) * 3000 + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "st.tif", stack, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "one.tif", stack[0])
    for name, colours in (("st", ["FF00FF", "00FF00"]), ("one", ["FFFFFF"])):
        convert(tmp_path / f"{name}.tif", tmp_path / f"{name}.ome.zarr", quality=80, chunk=64)
        omero = json.loads((tmp_path / f"{name}.ome.zarr" / "zarr.json").read_text())["attributes"]["ome"]["omero"]
        assert [c["color"] for c in omero["channels"]] == colours
        lo, hi = float(stack[: len(colours)].min()), float(stack[: len(colours)].max())
        assert all(c["window"] == {"min": lo, "max": hi, "start": lo, "end": hi} for c in omero["channels"])


# -- batch ---------------------------------------------------------------------------------------


def _photos(folder, n, size=192):
    from skimage import data

    folder.mkdir()
    base = data.astronaut()
    for i in range(n):
        Image.fromarray(np.ascontiguousarray(base[i * 16 : i * 16 + size, i * 20 : i * 20 + size])).save(
            folder / f"p{i:02d}.png")
    return sorted(folder.iterdir())


def test_plan_refuses_colliding_names_before_any_work(tmp_path, photo_png):
    from napari_cnnjpeg.scale.batch import plan

    other = tmp_path / "other"
    other.mkdir()
    (other / "photo.png").write_bytes(photo_png.read_bytes())
    with pytest.raises(CjpgError, match="both be written"):
        plan([photo_png, other], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CjpgError, match="no such file"):
        plan([tmp_path / "missing.png"], tmp_path / "out")


def test_batch_failing_input_rerun_and_stale_files(tmp_path, capsys):
    src = _photos(tmp_path / "in", 3, size=96)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".p00.cjpg.abc123.tmp").write_bytes(b"half")  # what a killed run leaves
    rc = main(["batch", str(tmp_path / "in"), "--out", str(out), "--workers", "2", "-q", "70"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and summary["done"] == 3 and summary["stale_removed"] == 1
    assert [f["input"] for f in summary["failed"]] == [str(tmp_path / "in" / "broken.png")]
    assert summary["bytes_in"] == sum(p.stat().st_size for p in src)
    assert summary["bytes_out"] == sum(p.stat().st_size for p in out.glob("*.cjpg"))
    for p in src:
        assert psnr(np.asarray(Image.open(p)), decode(out / (p.stem + ".cjpg"))) > 28
    (tmp_path / "in" / "broken.png").unlink()
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    from napari_cnnjpeg.scale.batch import run

    again = run([tmp_path / "in"], out)
    assert again["skipped"] == 3 and again["done"] == 0 and not again["failed"]
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before
    # the CLI redoes them with --overwrite, at another quality and subsampling (a rerun with -q alone skipped all)
    rc = main(["batch", str(tmp_path / "in"), "--out", str(out), "--workers", "1", "-q", "90",
               "--subsampling", "4:4:4", "--overwrite"])
    assert rc == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["done"] == 3
    for p in src:
        meta = info(out / (p.stem + ".cjpg"))
        assert meta["quality"] == 90 and meta["subsampling"] == "4:4:4"


def _model_loads() -> int:
    from napari_cnnjpeg.nn.models import load_stages

    return load_stages.cache_info().misses


def test_batch_survives_a_killed_worker(tmp_path):
    """A worker process killed mid-batch: the batch completes, every output correct, none partial."""
    from distributed import Client, LocalCluster

    from napari_cnnjpeg import encode
    from napari_cnnjpeg.scale.batch import run

    src = _photos(tmp_path / "in", 10)
    out = tmp_path / "out"
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())

        def kill_when_started():
            deadline = time.time() + 120
            while time.time() < deadline and not any(out.glob("*.cjpg")):
                time.sleep(0.05)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

        killer = threading.Thread(target=kill_when_started, daemon=True)
        killer.start()
        # the batch runs as a user runs it on a cluster: its own process, pointed at the scheduler
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from napari_cnnjpeg.cli import main; sys.exit(main(sys.argv[1:]))",
             "batch", str(tmp_path / "in"), "--out", str(out), "--scheduler", cluster.scheduler_address, "-q", "70"],
            capture_output=True, text=True, timeout=600)
        killer.join(5)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        loads = client.run(_model_loads)  # each worker process loaded the model once, not once per file
    assert loads and all(n <= 1 for n in loads.values()), loads
    assert killed and summary["done"] + summary["skipped"] == 10 and not summary["failed"], summary
    for p in src:
        expected = encode(np.asarray(Image.open(p)), quality=70)
        assert (out / (p.stem + ".cjpg")).read_bytes() == expected
    leftovers = [p.name for p in out.iterdir() if not p.name.endswith(".cjpg") or p.name.startswith(".")]
    if leftovers:  # a write the kill cut short leaves only a temporary file, swept by the next run
        assert all(n.endswith(".tmp") for n in leftovers)
        assert run([tmp_path / "in"], out)["stale_removed"] == len(leftovers)


def test_convert_writes_the_units_of_the_pixel_sizes(tmp_path):
    """Axes with a physical size carry its unit in OME-NGFF's spelling: an OME-TIFF's (µm by
    default), an ImageJ TIFF's ("micron"), a .cjpg's napari units; axes without a size carry none."""
    import tifffile
    import zarr

    from napari_cnnjpeg.scale.ome_zarr import convert, ngff_unit

    def axes_of(path):
        attrs = zarr.open_group(str(path), mode="r").attrs.asdict()
        return {a["name"]: a.get("unit") for a in (attrs.get("ome") or attrs)["multiscales"][0]["axes"]}

    stack = np.random.default_rng(0).integers(0, 4000, (2, 40, 50)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.ome.tif", stack, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0,
                               "PhysicalSizeZUnit": "nm"})
    convert(tmp_path / "a.ome.tif", tmp_path / "a.ome.zarr", chunk=32)
    assert axes_of(tmp_path / "a.ome.zarr") == {"z": "nanometer", "y": "micrometer", "x": "micrometer"}
    tifffile.imwrite(tmp_path / "b.tif", stack, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "unit": "micron"})
    convert(tmp_path / "b.tif", tmp_path / "b.ome.zarr", chunk=32)
    assert axes_of(tmp_path / "b.ome.zarr") == {"z": None, "y": "micrometer", "x": "micrometer"}
    imwrite(tmp_path / "c.cjpg", stack, quality=90, metadata={"scale": [3.0, 0.5, 0.5], "units": ["um", "um", "um"]})
    convert(tmp_path / "c.cjpg", tmp_path / "c.ome.zarr", chunk=32)
    assert set(axes_of(tmp_path / "c.ome.zarr").values()) == {"micrometer"}
    assert ngff_unit("\\u00B5m") == ngff_unit("µm") == "micrometer" and ngff_unit("parsec") is None
