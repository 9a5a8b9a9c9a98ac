"""napari reader, writer, sample data, settings and manifest of napari-cnnjpeg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_cnnjpeg as cj
from napari_cnnjpeg import codec
from napari_cnnjpeg._napari._reader import napari_get_reader
from napari_cnnjpeg._napari._sample_data import MODEL_QUALITY
from napari_cnnjpeg.eval import metrics
from napari_cnnjpeg.nn import models

pytestmark = pytest.mark.usefixtures("isolated_napari_settings")
PLUGIN = "napari-cnnjpeg"


# -- reader hook --------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, claimed",
    [
        ("a.cjpg", True), ("A.CJPG", True), (Path("x/a.cjpg"), True), (["a.cjpg", "b.cjpg"], True),
        ("a.jpg", False), ("a.tif", False), (["a.cjpg", "b.tif"], False), ([], False), (None, False),
        (123, False), ("", False), ([None], False),
    ],
)
def test_get_reader_claims_only_cjpg(path, claimed):
    reader = napari_get_reader(path)
    assert (reader is not None) == claimed
    if claimed:
        assert callable(reader)


def test_reader_function_2d(tmp_path, photo):
    path = tmp_path / "photo.cjpg"
    cj.imwrite(path, photo, quality=60, metadata={"name": "my photo"})
    [(data, kwargs, kind)] = napari_get_reader(str(path))(str(path))
    assert kind == "image" and kwargs["rgb"] is True and kwargs["name"] == "my photo"
    np.testing.assert_array_equal(data, cj.imread(path))
    meta = kwargs["metadata"]
    info = cj.info(path)
    assert meta["model"] == info["model"] == cj.default_model()
    assert meta["quality"] == 60 and meta["dtype"] == "uint8"
    assert meta["bpp"] == pytest.approx(info["bpp"]) and meta["bytes"] == path.stat().st_size


# -- opening in the viewer ------------------------------------------------------------
def test_open_2d(make_napari_viewer, tmp_path, photo):
    path = tmp_path / "astro.cjpg"
    cj.imwrite(path, photo, quality=40)
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    assert layer.name == "astro"  # no stored name: the file stem
    assert layer.rgb and layer.data.shape == photo.shape
    np.testing.assert_array_equal(np.asarray(layer.data), cj.imread(path))
    assert layer.metadata["quality"] == 40 and layer.metadata["model"] == cj.default_model()
    assert layer.metadata["bpp"] == pytest.approx(cj.info(path)["bpp"])


def test_open_compact_stack_at_full_size(make_napari_viewer, tmp_path, photo):
    """A compact model's half-resolution payloads open at the original size."""
    compact = [m for m in cj.available_models() if models.model_info(m).downscale > 1]
    stack = np.stack([photo, photo[::-1]])
    path = tmp_path / "small.cjpg"
    cj.imwrite(path, stack, quality=50, model=compact[0])
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    assert layer.data.shape == stack.shape and layer.metadata["downscale"] == 2
    np.testing.assert_array_equal(layer.data.plane(1), cj.read_plane(path, 1))


def test_open_16bit_stack_lazily_with_metadata(make_napari_viewer, tmp_path, stack16, monkeypatch):
    path = tmp_path / "stack.cjpg"
    meta = {"name": "cells", "scale": [2.0, 0.5, 0.25], "translate": [1.0, 10.0, -5.0],
            "axis_labels": ["z", "y", "x"], "units": ["micrometer", "micrometer", "nanometer"],
            "contrast_limits": [15000.0, 40000.0], "colormap": "magma"}
    cj.imwrite(path, stack16, quality=90, metadata=meta, model="jpeg")  # no network: nothing restores behind
    decoded = []
    plane = codec.Reader.decode_payload
    monkeypatch.setattr(codec.Reader, "decode_payload", lambda self, k, *a, **kw: decoded.append(k) or plane(self, k, *a, **kw))

    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    from napari_cnnjpeg._napari._reader import ProgressiveStack

    assert isinstance(layer.data, ProgressiveStack)
    assert layer.data.shape == stack16.shape and layer.dtype == np.uint16
    assert layer.name == "cells" and not layer.rgb
    np.testing.assert_allclose(layer.scale, meta["scale"])
    np.testing.assert_allclose(layer.translate, meta["translate"])
    assert tuple(layer.axis_labels) == ("z", "y", "x")
    assert [str(u) for u in layer.units] == meta["units"]
    assert tuple(layer.contrast_limits) == (15000.0, 40000.0)
    assert layer.colormap.name == "magma"
    assert layer.metadata["dtype"] == "uint16" and layer.metadata["planes"] == 5
    assert len(decoded) <= 2, decoded  # only the plane shown was decoded
    n = len(decoded)
    viewer.dims.set_current_step(0, 3)
    assert decoded[n:] and set(decoded[n:]) == {3}, (decoded, viewer.dims.current_step, viewer.dims.point)
    np.testing.assert_array_equal(layer.data.plane(3), codec.read_plane(path, 3))


def test_big_stack_opens_without_decoding(make_napari_viewer, tmp_path, monkeypatch):
    """500 planes: opening reads the header only, the slider decodes the plane shown.

    (How fast that is, is the benchmark's business; here: how much work is done.)
    """
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 255, (500, 32, 32), dtype=np.uint8)
    path = tmp_path / "big.cjpg"
    cj.imwrite(path, stack, quality=50, model="jpeg")
    decoded = []
    plane = codec.Reader.decode_payload
    monkeypatch.setattr(codec.Reader, "decode_payload", lambda self, k, *a, **kw: decoded.append(k) or plane(self, k, *a, **kw))
    [(data, kwargs, _)] = napari_get_reader(str(path))(str(path))
    assert decoded == []
    assert data.shape == (500, 32, 32)
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    viewer.dims.set_current_step(0, 321)
    layer.data.plane(321)
    assert 321 in decoded and len(set(decoded)) <= 3, decoded  # the plane shown (+ first/initial view), not 500
    np.testing.assert_array_equal(layer.data.plane(321), codec.read_plane(path, 321))


def test_scrolling_restores_planes_off_the_gui_thread(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """A stack with a decoder network: the slider shows the plain JPEG plane at once, and the
    network restores it on a worker thread, after which the layer shows the restored plane."""
    import threading

    from skimage.data import astronaut

    from napari_cnnjpeg.nn.models import ModelStages

    stack = np.stack([astronaut()[i * 60 : i * 60 + 96, 100:196] for i in range(4)])
    path = tmp_path / "rgb_stack.cjpg"
    cj.imwrite(path, stack, quality=40)
    exact = cj.decode(path)
    threads = []
    post = ModelStages.post
    monkeypatch.setattr(ModelStages, "post",
                        lambda self, *a, **kw: threads.append(threading.current_thread()) or post(self, *a, **kw))
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    threads.clear()
    viewer.dims.set_current_step(0, 2)
    plain = codec.Reader(path).plane(2, restore=False)
    shown = lambda: np.asarray(layer._slice.image.raw)  # noqa: E731 - what the canvas shows
    assert np.array_equal(shown(), plain) or np.array_equal(shown(), exact[2])
    qtbot.waitUntil(lambda: np.array_equal(shown(), exact[2]), timeout=30000)
    assert threads and all(t is not threading.main_thread() for t in threads), threads
    np.testing.assert_array_equal(np.asarray(layer.data)[1], exact[1])  # the array itself is exact


def test_saving_a_reopened_stack_saves_restored_planes(make_napari_viewer, tmp_path, monkeypatch):
    """layer.save() runs on the GUI thread, where slicing shows previews: the writer must not save those."""
    from skimage.data import astronaut

    stack = np.stack([astronaut()[i * 50 : i * 50 + 64, 100:164] for i in range(3)])
    src, dst = tmp_path / "src.cjpg", tmp_path / "dst.cjpg"
    cj.imwrite(src, stack, quality=30)
    exact = cj.decode(src)
    saved = []
    imwrite = codec.imwrite
    monkeypatch.setattr(codec, "imwrite", lambda path, image, **kw: saved.append(
        np.stack([np.asarray(image[k]) for k in range(image.shape[0])])) or imwrite(path, image, **kw))
    viewer = make_napari_viewer()
    [layer] = viewer.open(src, plugin=PLUGIN)
    layer.save(str(dst), plugin=PLUGIN)
    np.testing.assert_array_equal(saved[0], exact)
    assert cj.decode(dst).shape == stack.shape


# -- writer ----------------------------------------------------------------------------
def test_save_and_reopen_round_trip(make_napari_viewer, tmp_path, stack16):
    viewer = make_napari_viewer()
    layer = viewer.add_image(
        stack16, name="embryo", scale=(3.0, 0.2, 0.2), translate=(0.0, 5.0, 6.0), axis_labels=("t", "y", "x"),
        units=("second", "micrometer", "micrometer"), contrast_limits=(12000, 38000), colormap="viridis",
    )
    path = tmp_path / "saved.cjpg"
    written = layer.save(str(path), plugin=PLUGIN)
    assert [Path(p) for p in written] == [path] and path.exists()
    info = cj.info(path)
    assert info["quality"] == 75 and info["model"] == cj.default_model(12) and info["bits"] == 12  # 12-bit JPEG
    viewer.layers.clear()
    [back] = viewer.open(path, plugin=PLUGIN)
    assert back.name == "embryo" and back.dtype == np.uint16
    np.testing.assert_allclose(back.scale, (3.0, 0.2, 0.2))
    np.testing.assert_allclose(back.translate, (0.0, 5.0, 6.0))
    assert tuple(back.axis_labels) == ("t", "y", "x")
    assert [str(u) for u in back.units] == ["second", "micrometer", "micrometer"]
    assert tuple(back.contrast_limits) == (12000.0, 38000.0)
    assert back.colormap.name == "viridis"
    # napari's worker runs ONNX Runtime (a core stays with the GUI), imread NNPACK: float rounding may differ
    np.testing.assert_allclose(np.asarray(back.data), cj.imread(path), rtol=0, atol=1)


def test_save_layers_rgb(make_napari_viewer, tmp_path, photo):
    import napari

    viewer = make_napari_viewer()
    layer = viewer.add_image(photo, name="astro", rgb=True)
    path = tmp_path / "rgb.cjpg"
    napari.save_layers(str(path), [layer], plugin=PLUGIN)
    [back] = viewer.open(path, plugin=PLUGIN)
    assert back.rgb and back.name.startswith("astro")
    assert back.data.shape == photo.shape
    assert metrics.psnr(photo, np.asarray(back.data)) > 28


def test_writer_settings_and_refusals(tmp_path, photo, stack16):
    from napari_cnnjpeg._napari._writer import write_image

    path = tmp_path / "w.cjpg"
    assert write_image(str(path), photo, {"name": "p", "rgb": True}) == [str(path)]
    assert cj.info(path)["name"] == "p" and cj.info(path)["rgb"]
    with pytest.raises(cj.CjpgError, match="multiscale"):
        write_image(str(tmp_path / "m.cjpg"), [photo, photo[::2, ::2]], {"multiscale": True, "rgb": True})
    with pytest.raises(cj.CjpgError, match="3 or 4 channels"):
        write_image(str(tmp_path / "a.cjpg"), np.zeros((16, 16, 5), np.uint8), {"rgb": True})
    assert not (tmp_path / "m.cjpg").exists() and not (tmp_path / "a.cjpg").exists()


def test_rgba_and_two_channel_layers_are_stored_as_planes(make_napari_viewer, tmp_path, photo, stack16):
    viewer = make_napari_viewer()
    alpha = np.linspace(0, 255, photo.shape[1]).astype(np.uint8)[None, :].repeat(photo.shape[0], 0)
    rgba = np.dstack([photo, alpha])
    layer = viewer.add_image(rgba, name="rgba", rgb=True)
    path = tmp_path / "rgba.cjpg"
    assert layer.save(str(path), plugin=PLUGIN) == [str(path)]
    assert cj.info(path)["shape"] == (4, *photo.shape[:2]) and cj.info(path)["rgba"] is True
    assert "show its red channel as a grey picture" in cj.info(path)["stock_viewer"]  # not "the first plane"
    [back] = viewer.open(path, plugin=PLUGIN)
    assert back.rgb and back.data.shape == rgba.shape and metrics.psnr(rgba, np.asarray(back.data)) > 28
    two = viewer.add_image(stack16[:2], name="two channels")
    path2 = tmp_path / "two.cjpg"
    assert two.save(str(path2), plugin=PLUGIN) == [str(path2)]
    [back2] = viewer.open(path2, plugin=PLUGIN)
    assert back2.data.shape == stack16[:2].shape and back2.dtype == np.uint16


def test_an_rgba_stack_reopens_lazily(make_napari_viewer, tmp_path, photo):
    """Its planes are decoded as napari slices them (a ProgressiveStack behind a channels-last
    view), not all at once on the GUI thread; saved again, it keeps its restored planes."""
    from napari_cnnjpeg._napari._reader import ChannelsLast

    viewer = make_napari_viewer()
    alpha = np.linspace(0, 255, photo.shape[1]).astype(np.uint8)[None, :].repeat(photo.shape[0], 0)
    rgba = np.stack([np.dstack([np.roll(photo, 7 * k, axis=1), alpha]) for k in range(3)])
    layer = viewer.add_image(rgba, name="rgba stack", rgb=True)
    path = tmp_path / "rgba-stack.cjpg"
    assert layer.save(str(path), plugin=PLUGIN) == [str(path)]
    [back] = viewer.open(path, plugin=PLUGIN)
    assert isinstance(back.data, ChannelsLast) and back.rgb and back.data.shape == rgba.shape
    assert back.data.stack._cache == {} or len(back.data.stack._cache) < 12  # not every plane decoded
    exact = np.asarray(back.data.exact)
    assert exact.shape == rgba.shape and metrics.psnr(rgba, exact) > 28
    np.testing.assert_array_equal(back.data.exact[1], exact[1])
    np.testing.assert_array_equal(back.data.exact[2, 5:9, :, 3], exact[2, 5:9, :, 3])


def test_multiscale_layer_is_refused_not_crashing(make_napari_viewer, tmp_path, photo, notifications):
    viewer = make_napari_viewer()
    layer = viewer.add_image([photo, photo[::2, ::2]], multiscale=True, rgb=True)
    # napari turns a writer's ValueError into a warning; the writer notifies the reason
    with pytest.warns(UserWarning, match="not a valid writer"):
        assert layer.save(str(tmp_path / "pyr.cjpg"), plugin=PLUGIN) == []
    assert not (tmp_path / "pyr.cjpg").exists()
    assert any("multiscale" in str(n.message) for n in notifications)
    viewer.add_image(photo, rgb=True)  # still usable
    assert len(viewer.layers) == 2


# -- corrupt files ----------------------------------------------------------------------
def test_corrupt_file_notifies_and_viewer_stays_usable(make_napari_viewer, tmp_path, photo, notifications):
    from napari.errors import ReaderPluginError
    from napari.utils.notifications import notification_manager

    good = tmp_path / "good.cjpg"
    cj.imwrite(good, photo, quality=50)
    bad = tmp_path / "bad.cjpg"
    blob = bytearray(good.read_bytes())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\x00" * 64  # damage the payload
    bad.write_bytes(bytes(blob))
    garbage = tmp_path / "garbage.cjpg"
    garbage.write_bytes(b"this is not an image at all")

    viewer = make_napari_viewer()
    with pytest.raises(cj.CjpgError, match="not a .cjpg file"):
        viewer.open(garbage, plugin=PLUGIN)
    with pytest.raises(ReaderPluginError) as err:  # no plugin named: napari wraps the reader's error
        viewer.open(garbage, plugin=None)
    assert isinstance(err.value.original_error, cj.CjpgError)
    assert "not a .cjpg file" in str(err.value)
    with pytest.raises(cj.CjpgError, match="checksum|corrupt"):
        viewer.open(bad, plugin=PLUGIN)
    assert len(viewer.layers) == 0

    # through the GUI (File > Open): napari's exception hook turns the error into a notification
    try:
        viewer.window._qt_viewer._qt_open([str(garbage)], stack=False)
    except ReaderPluginError:
        notification_manager.receive_error(*sys.exc_info())
    assert any("not a .cjpg file" in str(n.message) for n in notifications)
    # the notification's traceback holds the QtViewer: drop it, or napari's fixture reports a leak
    notifications.clear()
    notification_manager.records.clear()
    del err

    [layer] = viewer.open(good, plugin=PLUGIN)  # the viewer still works
    assert layer.data.shape == photo.shape
    viewer.add_image(np.zeros((8, 8)))
    assert len(viewer.layers) == 2


def test_corrupt_plane_of_lazy_stack(make_napari_viewer, tmp_path):
    """A damaged plane fails (clear message) only when shown; the other planes still display."""
    rng = np.random.default_rng(0)
    path = tmp_path / "stack.cjpg"
    cj.imwrite(path, rng.integers(0, 255, (6, 40, 40), dtype=np.uint8), quality=80)
    blob = bytearray(path.read_bytes())
    blob[-120:-80] = b"\x00" * 40  # inside the last plane's payload
    path.write_bytes(bytes(blob))
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    with pytest.raises(cj.CjpgError, match="plane 5"):
        viewer.dims.set_current_step(0, 5)
    viewer.dims.set_current_step(0, 1)
    np.testing.assert_array_equal(layer.data.plane(1), codec.read_plane(path, 1))


# -- sample data -------------------------------------------------------------------------
def test_sample_data(make_napari_viewer):
    from skimage.data import astronaut

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "astronaut_low_rate")
    names = [layer.name for layer in viewer.layers]
    assert names[0] == "astronaut (original)"
    np.testing.assert_array_equal(viewer.layers[0].data, astronaut())
    jpeg = viewer.layers[1]
    assert names[1].startswith("JPEG q") and jpeg.rgb
    assert jpeg.metadata["model"] == "jpeg" and 0 < jpeg.metadata["bpp"] < 1.5
    assert jpeg.metadata["psnr"] == pytest.approx(metrics.psnr(astronaut(), jpeg.data))
    if cj.default_model() != "jpeg":
        model = viewer.layers[2]
        assert model.metadata["model"] == cj.default_model() and model.metadata["quality"] == MODEL_QUALITY
        assert jpeg.metadata["bpp"] == pytest.approx(model.metadata["bpp"], rel=0.25)
    else:
        assert len(viewer.layers) == 2


def test_microscopy_sample_data(make_napari_viewer):
    """File > Open Sample: 16-bit fluorescence, its 12-bit JPEG and the 8-bit path at about the same bpp."""
    from napari_cnnjpeg._napari._sample_data import micro_image

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "fluorescence_16bit")
    original, eight, twelve = viewer.layers
    assert original.data.dtype == np.uint16 and original.data.shape == (512, 512) and "CC-BY-4.0" in original.name
    np.testing.assert_array_equal(original.data, micro_image())
    assert eight.metadata["bits"] == 8 and twelve.metadata["bits"] == 12
    assert eight.data.dtype == twelve.data.dtype == np.uint16
    assert eight.metadata["bpp"] == pytest.approx(twelve.metadata["bpp"], rel=0.2)
    rng = metrics.value_range(original.data)
    assert twelve.metadata["psnr"] == pytest.approx(metrics.psnr(original.data, twelve.data, rng))
    assert twelve.metadata["psnr"] > eight.metadata["psnr"]  # finer steps pay at the same rate
    assert tuple(twelve.contrast_limits) == (float(original.data.min()), float(original.data.max()))


def test_contrast_limits_stay_within_an_integer_dtype(make_napari_viewer, tmp_path):
    """A uint16 plane whose background is 0 is stored with a mapping that starts below 0 (DC
    alignment); the layer's contrast limits start at 0, not below its dtype."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128]
    plane = (rng.poisson(2.0, (128, 128)) + 1500 * np.exp(-((y - 60) ** 2 + (x - 50) ** 2) / 50)).astype(np.uint16)
    path = tmp_path / "zero.cjpg"
    cj.imwrite(path, plane, quality=50)
    assert cj.info(path.read_bytes())["mapping"]["min"][0] < 0
    layer, = make_napari_viewer().open(str(path), plugin=PLUGIN)
    assert tuple(layer.contrast_limits) == (0.0, float(plane.max()))


def test_jpeg_at_bpp_matches_rate(photo):
    from napari_cnnjpeg.eval.demo import jpeg_at_bpp

    target = metrics.bpp(len(cj.encode(photo, quality=33, model="jpeg")), photo.shape)
    q, data = jpeg_at_bpp(photo, target)
    assert abs(q - 33) <= 2 and data == cj.encode(photo, quality=q, model="jpeg")


# -- settings and manifest ------------------------------------------------------------
def test_plugin_settings(plugin_settings, npe2pm):
    from napari.settings import get_plugin_settings
    from npe2 import PluginManifest

    from napari_cnnjpeg._napari._workers import Settings, default_model_id, get_settings

    if PLUGIN not in npe2pm._manifests:
        npe2pm.register(PluginManifest.from_distribution(PLUGIN))
    settings = get_plugin_settings(PLUGIN)
    assert get_settings() == Settings(default_model="", quality=75, device="auto", threads=0)
    settings.codec.quality = 42
    settings.codec.device = "cpu"
    settings.codec.default_model = "jpeg"
    assert get_settings() == Settings(default_model="jpeg", quality=42, device="cpu", threads=0)
    assert default_model_id() == "jpeg"
    with pytest.raises(Exception):
        settings.codec.device = "tpu"
    settings.codec.default_model = "no-such-model"
    assert default_model_id() == cj.default_model()


def test_npe2_validate():
    npe2 = Path(sys.executable).with_name("npe2")
    proc = subprocess.run([str(npe2), "validate", "napari_cnnjpeg"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout


def test_manifest_commands_import():
    import importlib

    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    for cmd in manifest.contributions.commands:
        module, attr = cmd.python_name.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), cmd.id
    assert manifest.contributions.writers[0].display_name.startswith("lossy")
    assert {w.display_name for w in manifest.contributions.widgets} == {"Compress", "Restore JPEG", "Compare layers"}
    assert set(manifest.contributions.configurations["codec"].properties) == {
        "default_model", "quality", "device", "threads"}


def test_reader_does_not_import_torch():
    code = ("import sys, napari_cnnjpeg._napari._reader as r, napari_cnnjpeg._napari._writer, napari_cnnjpeg._napari._sample_data;"
            "r.napari_get_reader('a.cjpg'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
