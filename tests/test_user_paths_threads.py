"""Decoding from many threads at once, as dask's threaded scheduler, napari's workers and users'
ThreadPoolExecutors do: every runtime gives what a serial decode gives, and a model's stages and
runners are made once however many threads ask for them first.

Run with OMP_NUM_THREADS=1 on small CPUs: the threads are still real threads.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import skimage.data as sd

import napari_cnnjpeg as cj
from napari_cnnjpeg.nn import inference, models

RUNTIMES = ("torch", "onnxruntime", "nnpack")


def _usable(runtime: str) -> bool:
    return {"torch": True, "onnxruntime": inference.onnxruntime_available(),
            "nnpack": inference.nnpack_available()}[runtime]


@pytest.fixture(scope="module")
def blobs() -> list[bytes]:
    """8-bit RGB and grey at a few qualities and sizes, and 16-bit planes (the 12-bit default model)."""
    astro, cam = sd.astronaut(), sd.camera()
    rng = np.random.default_rng(3)
    u16 = (cam[:192, :160].astype(np.float64) * 200 + rng.normal(0, 30, (192, 160))).clip(0, 65535).astype(np.uint16)
    images = [(astro[:64, :64], 50), (cam[:64, :96], 30), (astro[100:300, 50:330], 75), (cam[:240, :200], 20),
              (astro[200:400, 200:400], 40), (u16, 60), (u16[:96, :128], 45)]
    return [cj.encode(np.ascontiguousarray(img), quality=q) for img, q in images]


def _small_tiles(model_id: str, tile: int = 64) -> models.ModelStages:
    """A model's stages with small tiles (so that every plane here is tiled) and no runners yet."""
    return dataclasses.replace(models.load_stages(model_id), tile=tile, _runners={})


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_threads_decode_as_a_serial_decode_does(runtime, blobs, monkeypatch):
    if not _usable(runtime):
        pytest.skip(f"{runtime} cannot run here")
    monkeypatch.setenv("CNNJPEG_RUNTIME", runtime)
    if runtime == "nnpack":  # small tiles through NNPACK's own kernels too, not only its ONNX Runtime runner
        from napari_cnnjpeg.nn import nnpack_runtime

        monkeypatch.setattr(nnpack_runtime, "MIN_PIXELS", 0)
    stages = {bits: _small_tiles(models.default_model(bits)) for bits in (8, 12)}

    def decode(blob):
        return cj.decode(blob, model=stages[cj.info(blob)["bits"]])

    serial = [decode(b) for b in blobs]
    order = list(range(len(blobs))) * 2
    for r in range(3):
        np.random.default_rng(r).shuffle(order)
        with ThreadPoolExecutor(6) as ex:
            got = list(ex.map(lambda i: decode(blobs[i]), order))
        for i, out in zip(order, got):
            assert out.dtype == serial[i].dtype and np.array_equal(out, serial[i]), (runtime, r, i)


def test_threads_first_asking_for_a_model_load_it_once(monkeypatch):
    """Without a lock, lru_cache lets every thread that misses load the model (and make its own runners)."""
    loads = []
    real = models.load_weights

    def slow_load(info, data=None):
        loads.append(info.id)
        time.sleep(0.2)  # widen the window in which other threads miss
        return real(info, data)

    monkeypatch.setattr(models, "load_weights", slow_load)
    models.load_stages.cache_clear()
    start = threading.Barrier(6)

    def first(_):
        start.wait()
        return models.load_stages(models.default_model(8))

    try:
        with ThreadPoolExecutor(6) as ex:
            got = list(ex.map(first, range(6)))
    finally:
        models.load_stages.cache_clear()
    assert loads == [models.default_model(8)]
    assert all(s is got[0] for s in got)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_threads_first_running_a_model_make_one_runner(runtime, blobs, monkeypatch):
    if not _usable(runtime):
        pytest.skip(f"{runtime} cannot run here")
    monkeypatch.setenv("CNNJPEG_RUNTIME", runtime)
    made = []
    real = inference.make_runner

    def slow_make(net, rt, threads):
        made.append(rt)
        time.sleep(0.2)  # an ONNX Runtime session takes this long to make
        return real(net, rt, threads)

    monkeypatch.setattr(inference, "make_runner", slow_make)
    stages = _small_tiles(models.default_model(8))
    start = threading.Barrier(6)

    def first(_):
        start.wait()
        return cj.decode(blobs[0], model=stages)

    with ThreadPoolExecutor(6) as ex:
        got = list(ex.map(first, range(6)))
    assert made == [runtime]
    assert list(stages._runners) == [("decoder", runtime, inference.runtime_threads())]
    assert all(np.array_equal(g, got[0]) for g in got)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_dask_threads_read_a_zarr3_array_as_the_synchronous_scheduler_does(runtime, tmp_path, monkeypatch):
    if not _usable(runtime):
        pytest.skip(f"{runtime} cannot run here")
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    from napari_cnnjpeg.scale.zarr3_codec import CnnJpegCodec

    monkeypatch.setenv("CNNJPEG_RUNTIME", runtime)
    rgb = np.ascontiguousarray(sd.astronaut()[:384, :320])
    grey16 = (sd.camera()[:320, :384].astype(np.uint16) * 16)
    arrays = []
    for name, img, chunks, axis in (("rgb", rgb, (128, 128, 3), -1), ("u16", grey16, (128, 128), None)):
        z = zarr.create_array(str(tmp_path / name), shape=img.shape, chunks=chunks, dtype=img.dtype,
                              serializer=CnnJpegCodec(quality=50, channel_axis=axis), compressors=None)
        z[:] = img
        arrays.append(zarr.open_array(str(tmp_path / name)))
    for z in arrays:
        serial = da.from_zarr(z).compute(scheduler="synchronous")
        for _ in range(2):
            threaded = da.from_zarr(z).compute(scheduler="threads", num_workers=4)
            assert threaded.dtype == serial.dtype and np.array_equal(threaded, serial)
