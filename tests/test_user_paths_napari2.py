"""User paths of the napari plugin found by the second QA pass: lazy layers (zarr, dask, reopened
.cjpg stacks) in the Compress widget, folders of .cjpg files, transforms a .cjpg does not keep,
layers placed differently in Compare, and the multiscale hint."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import napari_cnnjpeg as cj
from napari_cnnjpeg._napari._reader import napari_get_reader

pytestmark = pytest.mark.usefixtures("isolated_napari_settings")
PLUGIN = "napari-cnnjpeg"
TIMEOUT = 120000


def errors(notes) -> list[str]:
    return [str(n.message) for n in notes if getattr(n.severity, "value", n.severity) == "error"]


def warnings_(notes) -> list[str]:
    return [str(n.message) for n in notes if getattr(n.severity, "value", n.severity) == "warning"]


@pytest.fixture
def stack() -> np.ndarray:
    """A smooth 16-bit (4, 40, 48) stack."""
    z, y, x = np.mgrid[0:4, 0:40, 0:48].astype(np.float64)
    return (20000 + 15000 * np.sin(x / 7 + z) * np.cos(y / 9 - z / 2)).astype(np.uint16)


class LazyStack:
    """An array-like as a lazy reader gives it: planes on request, slow, counted per thread."""

    def __init__(self, data: np.ndarray, delay: float = 0.0) -> None:
        self._data, self.delay = data, delay
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.worker_reads: list[int] = []  # element counts of reads off the GUI thread
        self.whole_loads = 0

    @property
    def size(self) -> int:
        return self._data.size

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, key):
        out = self._data[key]
        if threading.current_thread() is not threading.main_thread():
            self.worker_reads.append(np.size(out))
            time.sleep(self.delay)
        return out

    def __array__(self, dtype=None, copy=None):
        if threading.current_thread() is not threading.main_thread():
            self.whole_loads += 1
        return self._data if dtype is None else self._data.astype(dtype)


# -- Compress on lazy layers ------------------------------------------------------------
def test_compress_plane_in_view_of_zarr_and_cjpg_stacks(make_napari_viewer, dock, qtbot, wait_idle, notifications,
                                                        tmp_path, stack):
    """16-bit zarr and reopened .cjpg stacks have no min(): the plane in view failed with an AttributeError."""
    import zarr

    z = zarr.open_array(str(tmp_path / "s.zarr"), mode="w", shape=stack.shape, chunks=(1, 40, 48), dtype="uint16")
    z[:] = stack
    cj.imwrite(tmp_path / "s.cjpg", stack, model="jpeg", quality=95)
    viewer = make_napari_viewer()
    plain = viewer.add_image(stack, name="numpy")
    lazy = viewer.add_image(z, name="zarr")
    [reopened] = viewer.open(tmp_path / "s.cjpg", plugin=PLUGIN)
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.model.value = "jpeg"
    viewer.dims.set_current_step(0, 2)
    sizes = {}
    for layer in (plain, lazy, reopened):
        w.image.value = layer
        assert w.mapping.value == "whole layer"
        w.result = None
        w.run()
        wait_idle(w, timeout=TIMEOUT)
        assert not errors(notifications), errors(notifications)
        assert w.result is not None and w.result.index == (2,) and w.result.decoded.shape == stack.shape[1:]
        sizes[layer.name] = w.result.bytes
    assert sizes["zarr"] == sizes["numpy"]  # the same data mapped over the same (whole-stack) range


def test_compress_all_planes_of_a_lazy_stack_reads_plane_by_plane(make_napari_viewer, dock, qtbot, wait_idle,
                                                                  notifications, tmp_path, stack):
    lazy = LazyStack(stack)
    viewer = make_napari_viewer()
    layer = viewer.add_image(lazy, name="lazy", contrast_limits=(0, 40000))
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.model.value = "jpeg"
    w.planes.value = "all planes"
    w.image.value = layer
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    assert w.result is not None and w.result.decoded.shape == stack.shape and not errors(notifications)
    # the same figures as numpy data gives
    from napari_cnnjpeg.eval import metrics

    assert w.result.psnr == pytest.approx(metrics.psnr(stack, w.result.decoded, metrics.value_range(stack)), rel=1e-9)
    w.save_path.value = str(tmp_path / "lazy.cjpg")
    w.save()
    wait_idle(w, timeout=TIMEOUT)
    assert (tmp_path / "lazy.cjpg").exists()
    assert lazy.whole_loads == 0  # neither the run nor the save loaded the whole stack
    assert lazy.worker_reads and max(lazy.worker_reads) == stack[0].size  # one plane at a time


def test_cancel_stops_a_lazy_save_between_planes(make_napari_viewer, dock, qtbot, wait_idle, tmp_path, stack):
    lazy = LazyStack(np.concatenate([stack, stack]), delay=0.25)  # 8 slow planes
    viewer = make_napari_viewer()
    layer = viewer.add_image(lazy, name="slow", contrast_limits=(0, 40000))
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.model.value = "jpeg"
    w.image.value = layer
    target = tmp_path / "slow.cjpg"
    w.save_path.value = str(target)
    w.save()
    assert not w.progress.native.isHidden() and w.cancel_button.enabled
    qtbot.waitUntil(lambda: len(lazy.worker_reads) >= 2, timeout=TIMEOUT)  # in the whole-stack range pass
    w.cancel_button.clicked.emit()
    assert w.status.value == "cancelled"
    reads = len(lazy.worker_reads)
    qtbot.wait(800)
    wait_idle(w, timeout=TIMEOUT)
    assert len(lazy.worker_reads) <= reads + 1  # stopped at the next plane, not after 16 reads
    assert not target.exists()


# -- reader: folders ---------------------------------------------------------------------
def test_a_folder_of_cjpg_files_opens_one_layer_per_file(make_napari_viewer, tmp_path, stack):
    folder = tmp_path / "planes"
    folder.mkdir()
    for i in (10, 2, 1):
        cj.imwrite(folder / f"plane{i}.cjpg", stack[i % 4], model="jpeg", metadata={"scale": [0.5, 0.5]})
    (folder / "notes.txt").write_text("not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.tif").write_bytes(b"")
    assert napari_get_reader(str(folder)) is not None and napari_get_reader([folder]) is not None
    assert napari_get_reader(str(empty)) is None and napari_get_reader(str(tmp_path / "missing")) is None

    viewer = make_napari_viewer()
    layers = viewer.open(folder, plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["plane1", "plane2", "plane10"]  # natural order
    for layer, i in zip(layers, (1, 2, 10)):
        assert layer.data.dtype == np.uint16 and layer.data.shape == stack.shape[1:]
        assert tuple(layer.scale) == (0.5, 0.5)
        assert np.abs(layer.data.astype(float) - stack[i % 4]).max() < 2000


# -- writer: transforms ------------------------------------------------------------------------
def test_a_rotated_sheared_or_affine_layer_reopens_so(make_napari_viewer, tmp_path, stack):
    """rotate, shear and affine were dropped on save (the layer reopened unrotated); the file keeps them
    where they are not the identity, and a plain layer's file holds none."""
    from napari_cnnjpeg import info
    from napari_cnnjpeg._napari._workers import layer_transforms

    viewer = make_napari_viewer()
    plain = viewer.add_image(stack[0], name="plain", scale=(-1, 2), translate=(3, 4))
    turned = viewer.add_image(stack[0], name="turned", rotate=30, shear=[0.2],
                              affine=np.array([[1, 0.1, 3], [0, 1, 4], [0, 0, 1]]))
    assert plain.save(str(tmp_path / "plain.cjpg"), plugin=PLUGIN)
    assert turned.save(str(tmp_path / "turned.cjpg"), plugin=PLUGIN)
    assert not {"rotate", "shear", "affine"} & set(info(tmp_path / "plain.cjpg"))
    [back] = viewer.open(tmp_path / "plain.cjpg", plugin=PLUGIN)
    assert tuple(back.scale) == (-1, 2) and tuple(back.translate) == (3, 4)
    [again] = viewer.open(tmp_path / "turned.cjpg", plugin=PLUGIN)
    for key in ("rotate", "shear"):
        assert np.allclose(getattr(again, key), getattr(turned, key)), key
    assert np.allclose(again.affine.affine_matrix, turned.affine.affine_matrix)
    assert np.allclose(again.data_to_world((10, 20)), turned.data_to_world((10, 20)))
    assert layer_transforms({"rotate": np.eye(2), "shear": [0.0], "affine": np.eye(3)}) == {}


def test_crafted_transforms_are_left_out_by_the_reader(tmp_path, stack):
    """A transform of the wrong size or with non-numbers is refused on write and left out on read."""
    import napari_cnnjpeg as cj
    from napari_cnnjpeg._napari._reader import read_cjpg

    with pytest.raises(cj.CjpgError, match="rotate"):
        cj.encode(stack[0], metadata={"rotate": [[1, 0], [0]]})
    cj.imwrite(tmp_path / "x.cjpg", stack[0], metadata={"rotate": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "shear": [0.5]})
    [(_, kwargs, _)] = read_cjpg(str(tmp_path / "x.cjpg"))
    assert "rotate" not in kwargs and np.allclose(kwargs["shear"], [0.5])  # a 3x3 rotate does not fit 2 axes


# -- Compare: layers placed differently ------------------------------------------------------
def test_compare_notes_layers_at_different_scales(make_napari_viewer, dock, qtbot, wait_idle, stack):
    viewer = make_napari_viewer()
    ref = viewer.add_image(stack[0], name="ref")
    test = viewer.add_image(stack[0] + 7, name="test", scale=(2, 2))
    w = dock(viewer, "Compare layers")
    w.reference.value, w.test.value = ref, test
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    assert "lie differently in the world" in w.results.value and "scale (2, 2) vs (1, 1)" in w.results.value
    test.scale = (1, 1)
    w.run()
    wait_idle(w, timeout=TIMEOUT)
    assert "lie differently" not in w.results.value


def test_multiscale_refusal_says_how_to_get_the_full_resolution_level(make_napari_viewer, dock, notifications, stack):
    viewer = make_napari_viewer()
    pyramid = viewer.add_image([stack[0], stack[0][::2, ::2]], multiscale=True, name="pyr")
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.image.value = pyramid
    assert w.run() is None
    assert any("multiscale" in m and "viewer.layers['pyr'].data[0]" in m for m in errors(notifications))


# -- reader: Open Files as Stack -------------------------------------------------------------
def test_open_files_as_stack_gives_one_lazy_layer(make_napari_viewer, tmp_path, notifications, stack):
    """napari passes the reader a list only for "Open Files as Stack"; it used to give one layer per file."""
    paths = [tmp_path / f"p{i}.cjpg" for i in range(3)]
    for i, p in enumerate(paths):
        cj.imwrite(p, stack[i], model="jpeg", metadata={"scale": [0.5, 0.25], "axis_labels": ["y", "x"]})
    cj.imwrite(tmp_path / "small.cjpg", stack[0, :10, :10], model="jpeg")
    viewer = make_napari_viewer()
    [layer] = viewer.open(paths, stack=True, plugin=None)
    assert layer.data.shape == (3, *stack.shape[1:]) and layer.data.dtype == np.uint16
    assert type(layer.data).__name__ == "Array"  # dask: a file is decoded when its plane is shown
    assert tuple(layer.scale) == (1.0, 0.5, 0.25) and tuple(layer.axis_labels) == ("file", "y", "x")
    np.testing.assert_array_equal(np.asarray(layer.data[2]), cj.imread(paths[2]))
    layers = viewer.open([paths[0], tmp_path / "small.cjpg"], stack=True, plugin=None)  # shapes differ
    assert [tuple(x.data.shape) for x in layers] == [stack.shape[1:], (10, 10)]
    assert any("not as a stack" in m and "small.cjpg" in m for m in warnings_(notifications))
    assert len(viewer.open(paths[0], plugin=None)) == 1  # a single file as before


def test_blending_opacity_and_gamma_reopen_as_saved(make_napari_viewer, tmp_path, stack):
    """A channel_axis composite reopened with napari's default blending (translucent), so it looked different;
    the file now keeps blending, opacity and gamma where they are not napari's defaults."""
    import napari_cnnjpeg as cj

    viewer = make_napari_viewer()
    red, green = viewer.add_image(stack[:2], channel_axis=0, name=["red", "green"], colormap=["red", "green"])
    green.opacity, green.gamma = 0.6, 0.8
    for layer in (red, green):
        assert layer.save(str(tmp_path / f"{layer.name}.cjpg"), plugin=PLUGIN)
    assert cj.info(tmp_path / "green.cjpg")["blending"] == "additive" and cj.info(tmp_path / "green.cjpg")["gamma"] == 0.8
    assert "opacity" not in cj.info(tmp_path / "red.cjpg")  # napari's default is not stored
    reopened = [viewer.open(tmp_path / f"{n}.cjpg", plugin=PLUGIN)[0] for n in ("red", "green")]
    for before, after in zip((red, green), reopened):
        assert str(after.blending) == str(before.blending)
        assert (after.opacity, after.gamma) == pytest.approx((before.opacity, before.gamma))
    for bad in ({"blending": "overlay"}, {"opacity": 2}, {"gamma": 0}):
        with pytest.raises(cj.CjpgError, match=next(iter(bad))):
            cj.encode(stack[0], metadata=bad)
