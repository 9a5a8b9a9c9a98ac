"""User paths of the napari plugin found by QA: odd reader paths, transposed views, NaN and tiny
layers in Compare, status lines after a cancel, and a result handler that fails."""

from __future__ import annotations

import numpy as np
import pytest

import napari_cnnjpeg as cj
from napari_cnnjpeg._napari._reader import napari_get_reader

pytestmark = pytest.mark.usefixtures("isolated_napari_settings")
TIMEOUT = 60000


def errors(notes) -> list[str]:
    return [str(n.message) for n in notes if getattr(n.severity, "value", n.severity) == "error"]


@pytest.fixture
def cam() -> np.ndarray:
    from skimage.data import camera

    return np.ascontiguousarray(camera()[:64, :80])


# -- reader hook ----------------------------------------------------------------------
def test_get_reader_declines_folders_and_urls_named_cjpg(tmp_path, cam):
    folder = tmp_path / "volume.cjpg"
    folder.mkdir()
    cj.imwrite(tmp_path / "a.cjpg", cam, model="jpeg")
    assert napari_get_reader(str(folder)) is None and napari_get_reader(folder) is None
    assert napari_get_reader([str(tmp_path / "a.cjpg"), str(folder)]) is None
    assert napari_get_reader("https://example.com/a.cjpg") is None
    assert napari_get_reader(str(tmp_path / "a.cjpg")) is not None


# -- the plane in view ------------------------------------------------------------------
def test_widgets_refuse_a_transposed_view_instead_of_using_another_plane(
        make_napari_viewer, dock, qtbot, wait_idle, notifications, cam):
    viewer = make_napari_viewer()
    stack = viewer.add_image(np.stack([cam, cam[::-1], cam[:, ::-1]]), name="stack", axis_labels=("z", "y", "x"))
    compress, compare = dock(viewer, "Compress"), dock(viewer, "Compare layers")
    compress.auto.value = False
    compress.image.value = stack
    compare.reference.value = compare.test.value = stack
    viewer.dims.order = (1, 0, 2)  # the view shows (z, x); the slider moves along y
    assert compress.run() is None and compare.run() is None
    assert sum("not its planes (rows, columns)" in m for m in errors(notifications)) == 2
    assert "axes (z, x)" in compress.status.value and compress.result is None

    compress.planes.value = "all planes"  # needs no plane in view
    compress.run()
    wait_idle(compress, timeout=TIMEOUT)
    assert compress.result is not None and compress.result.decoded.shape == stack.data.shape

    viewer.dims.order = (0, 1, 2)
    viewer.dims.set_current_step(0, 2)
    compare.run()
    wait_idle(compare, timeout=TIMEOUT)
    assert "z=2" in compare.results.value and compare.result["psnr"] == float("inf")


def test_restore_refuses_a_transposed_view(make_napari_viewer, dock, notifications, cam):
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([cam, cam]), name="stack")
    w = dock(viewer, "Restore JPEG")
    viewer.dims.order = (2, 1, 0)
    assert w.run() is None
    assert any("not its planes" in m for m in errors(notifications))


# -- Compare ----------------------------------------------------------------------------------
def test_compare_refuses_nan_with_a_message_and_napari_carries_on(
        make_napari_viewer, dock, qtbot, wait_idle, notifications, cam):
    viewer = make_napari_viewer()
    ref = viewer.add_image(cam.astype(np.float32), name="ref")
    test = viewer.add_image(np.where(cam > 100, np.nan, cam).astype(np.float32), name="masked")
    w = dock(viewer, "Compare layers")
    w.reference.value, w.test.value = ref, test
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    assert any("NaN or infinite" in m for m in errors(notifications))
    assert w.result is None and "abs error" not in [lay.name for lay in viewer.layers]


def test_compare_of_planes_under_7_px_gives_psnr_and_no_ssim(make_napari_viewer, dock, qtbot, wait_idle, cam):
    viewer = make_napari_viewer()
    ref = viewer.add_image(cam[:5, :6], name="ref")
    test = viewer.add_image(cam[:5, :6] // 2 * 2, name="test")
    w = dock(viewer, "Compare layers")
    w.reference.value, w.test.value = ref, test
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    assert np.isfinite(w.result["psnr"]) and np.isnan(w.result["ssim"])
    assert "SSIM n/a" in w.results.value and w.status.value == ""


def test_compare_says_when_dtypes_differ(make_napari_viewer, dock, qtbot, wait_idle, cam):
    viewer = make_napari_viewer()
    ref = viewer.add_image(cam, name="ref")
    test = viewer.add_image(cam / 255.0, name="scaled")
    w = dock(viewer, "Compare layers")
    w.reference.value, w.test.value = ref, test
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    assert "scaled is float64, ref uint8" in w.results.value and "not rescaled" in w.results.value


# -- jobs ----------------------------------------------------------------------------------
def test_status_says_cancelled_and_a_finished_run_is_not(make_napari_viewer, dock, qtbot, wait_idle, cam):
    viewer = make_napari_viewer()
    src = viewer.add_image(np.tile(cam, (8, 8)), name="big")
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.image.value = src
    w.run()
    w.cancel_button.changed.emit(True)
    wait_idle(w, timeout=TIMEOUT)
    assert w.status.value == "cancelled" and w.result is None

    w.image.value = viewer.add_image(cam, name="small")  # the result layer added at the end re-lists the layers
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.result is not None, timeout=TIMEOUT)
    assert w.status.value == "" and "small: image" in w.results.value


def test_a_failing_result_handler_is_a_notification_not_an_abort(make_napari_viewer, qtbot, notifications):
    from magicgui.widgets import Label, ProgressBar, PushButton

    from napari_cnnjpeg._napari._workers import Job

    make_napari_viewer()
    status = Label()
    job = Job(ProgressBar(), PushButton(), status, name="Test")

    def work(task):
        yield (1, 1)
        return 1

    def broken(_result):
        raise ValueError("cannot convert float NaN to integer")

    job.start(work, on_result=broken)
    qtbot.waitUntil(lambda: job.worker is None, timeout=TIMEOUT)
    assert any("Test: ValueError: cannot convert float NaN" in m for m in errors(notifications))
    assert "ValueError" in status.value
