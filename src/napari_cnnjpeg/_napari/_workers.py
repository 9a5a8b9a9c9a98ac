"""Shared plumbing of the napari widgets: settings, plane selection and background jobs.

Every codec or network call of the widgets runs in a napari thread worker
(:func:`napari.qt.threading.create_worker`) driven by :class:`Job`, which owns a
progress bar and a Cancel button, numbers each run (a result of a superseded run
is dropped) and turns errors into napari notifications.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CjpgError

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-cnnjpeg"
PLANE_IN_VIEW = "plane in view"
ALL_PLANES = "all planes"
PLANE_CHOICES = (PLANE_IN_VIEW, ALL_PLANES)


# -- settings -------------------------------------------------------------------
@dataclass
class Settings:
    """The plugin's settings (napari Preferences > Plugins > napari-cnnjpeg)."""

    default_model: str = ""  # "" = the package's default model
    quality: int = 75
    device: str = "auto"  # auto, cpu or cuda
    threads: int = 0  # 0 = torch's default


def get_settings() -> Settings:
    """Current plugin settings; the defaults where napari has none (e.g. plugin not registered)."""
    try:
        from napari.settings import get_plugin_settings

        codec = get_plugin_settings(PLUGIN).codec
        return Settings(
            default_model=str(codec.default_model or ""),
            quality=int(codec.quality),
            device=str(codec.device),
            threads=int(codec.threads),
        )
    except Exception:  # noqa: BLE001 - settings are a convenience, never a failure
        return Settings()


def default_model_id(settings: Settings | None = None) -> str:
    """The model the settings name, when installed, else the package's default."""
    from ..nn.models import available_models, default_model

    settings = settings or get_settings()
    if settings.default_model and settings.default_model in available_models():
        return settings.default_model
    return default_model()


def apply_runtime_settings(model: str | None, settings: Settings | None = None) -> None:
    """Device and thread count for networks; touches torch only for models that have one."""
    from ..nn.models import model_info

    settings = settings or get_settings()
    if settings.device in ("cpu", "cuda"):
        os.environ["CNNJPEG_DEVICE"] = settings.device
    if model is None or settings.threads <= 0:
        return
    try:
        has_network = model_info(model).kind != "baseline"
    except CjpgError:
        return
    if has_network:
        from ..nn.models import set_threads

        set_threads(settings.threads)


# -- layers and planes ----------------------------------------------------------
def level0_hint(name: str) -> str:
    """How a user adds a multiscale layer's full-resolution level as a layer of its own."""
    return ("add the full-resolution level as a layer of its own (napari's console: "
            f"viewer.add_image(viewer.layers[{name!r}].data[0]))")


def check_layer(layer, what: str = "image layer") -> None:
    """Refuse what the codec cannot take, with a message for the user."""
    if layer is None:
        raise CjpgError(f"choose {'an' if what[0] in 'aeiou' else 'a'} {what} first")
    if getattr(layer, "multiscale", False):
        raise CjpgError(
            f"layer {layer.name!r} is multiscale (a pyramid); napari-cnnjpeg works on single-scale "
            f"layers: {level0_hint(layer.name)}"
        )
    if getattr(layer, "rgb", False) and layer.data.shape[-1] != 3:
        raise CjpgError(
            f"layer {layer.name!r} has {layer.data.shape[-1]} colour channels (RGBA?); "
            "JPEG stores RGB or grayscale: drop the alpha channel first"
        )


def plane_ndim(layer) -> int:
    return 3 if getattr(layer, "rgb", False) else 2


def lead_shape(layer) -> tuple[int, ...]:
    """The stack axes of a layer: all but the plane (rows, columns[, RGB])."""
    shape = tuple(layer.data.shape)
    return shape[: len(shape) - plane_ndim(layer)]


def check_plane_displayed(viewer: napari.Viewer, layer) -> None:
    """Refuse a view that does not show the planes (rows, columns) of ``layer``, e.g. after
    the axes were rolled or transposed so that a slider moves along rows or columns."""
    nlead = len(lead_shape(layer))
    offset = viewer.dims.ndim - layer.ndim  # a layer's axes are the last of the viewer's
    shown = {d - offset for d in viewer.dims.displayed}
    if {nlead, nlead + 1} <= shown:
        return
    labels = list(getattr(layer, "axis_labels", ()) or ()) or [f"axis {i}" for i in range(layer.ndim)]
    names = ", ".join(str(labels[d]) for d in sorted(shown) if 0 <= d < len(labels))
    raise CjpgError(
        f"the view shows axes ({names}) of layer {layer.name!r}, not its planes (rows, columns): "
        "reset the axis order (the viewer's transpose and roll buttons) to work on the plane in view"
    )


def current_index(viewer: napari.Viewer, layer) -> tuple[int, ...]:
    """Index along the stack axes of the plane of ``layer`` shown in ``viewer``.

    Raises :class:`CjpgError` where the view shows no plane of the layer (:func:`check_plane_displayed`).
    """
    lead = lead_shape(layer)
    if not lead:
        return ()
    check_plane_displayed(viewer, layer)
    coords = layer.world_to_data(viewer.dims.point)
    out = []
    for c, n in zip(coords[: len(lead)], lead):
        out.append(int(min(max(round(float(c)), 0), n - 1)))
    return tuple(out)


def plane_transform(layer) -> dict:
    """scale and translate of the plane axes of ``layer`` (for 2D result layers)."""
    k = 2  # spatial axes of a plane; RGB's channel axis is not a layer dimension
    return {"scale": tuple(layer.scale[-k:]), "translate": tuple(layer.translate[-k:])}


def layer_plane(data, index: tuple[int, ...] | None) -> np.ndarray:
    """The plane of a layer's data at ``index`` (None or (): all of it), restored where the
    data is a ``.cjpg`` stack (never the preview its GUI-thread slicing may show)."""
    from ._reader import ChannelsLast, ProgressiveStack

    if isinstance(data, ProgressiveStack) and index:
        return data.plane(int(np.ravel_multi_index(index, data.lead)))
    if isinstance(data, ChannelsLast):
        data = data.exact
    return np.asarray(data[index] if index else data)


def lazy_source(data):
    """A layer's data as :func:`napari_cnnjpeg.encode` reads it, one plane at a time: dask, zarr
    and ``.cjpg`` stacks (their restored planes, never previews) are not loaded whole."""
    from ._reader import ChannelsLast, ProgressiveStack

    if isinstance(data, (ProgressiveStack, ChannelsLast)):
        return data.exact
    if all(hasattr(data, a) for a in ("shape", "dtype", "ndim", "__getitem__")):
        return data
    return np.asarray(data)


class CheckedPlanes:
    """``data`` whose every read is a cancellation point of ``task`` (for codec calls that read
    a lazy stack plane by plane, e.g. the whole-stack value range :func:`napari_cnnjpeg.encode` takes)."""

    def __init__(self, data, task) -> None:
        self.data, self.task = data, task
        self.shape, self.dtype, self.ndim = tuple(data.shape), np.dtype(data.dtype), len(data.shape)

    def __getitem__(self, key):
        self.task.check()
        return self.data[key]

    def __array__(self, dtype=None, copy=None):
        self.task.check()
        out = np.asarray(self.data)
        return out if dtype is None else out.astype(dtype)


_RANGES: dict[int, tuple] = {}


def stack_range(task, data, rgb: bool) -> tuple[float, float]:
    """Min and max of a layer's data, read one plane at a time (zarr arrays and ``.cjpg`` stacks
    have no ``min()``; a dask stack is not loaded whole); each plane is a cancellation point.

    The range of lazy data (taken as read-only) is remembered while the data object lives, so the
    plane in view of a large lazy stack does not re-read the whole stack at every slider step.
    """
    import weakref

    if isinstance(data, np.ndarray):
        return float(data.min()), float(data.max())
    key = id(data)
    cached = _RANGES.get(key)
    if cached is not None and cached[0]() is data:
        return cached[1]
    pdims = 3 if rgb else 2
    lead = tuple(data.shape[: len(data.shape) - pdims])
    lo, hi = np.inf, -np.inf
    for index in np.ndindex(*lead):
        task.check()
        plane = layer_plane(data, index)
        if plane.size:
            lo, hi = min(lo, float(np.min(plane))), max(hi, float(np.max(plane)))
    try:
        ref = weakref.ref(data, lambda _r, k=key: _RANGES.pop(k, None))
    except TypeError:  # not weak-referenceable: not remembered
        return lo, hi
    _RANGES[key] = (ref, (lo, hi))
    return lo, hi


def layer_transforms(attributes: dict) -> dict:
    """A layer's rotate, shear and affine where they are not the identity, as lists for a file's
    ``image`` metadata (rotate and affine as lists of rows, shear as napari's upper-triangle values)."""
    out = {}
    rotate = attributes.get("rotate")
    if rotate is not None:
        r = np.asarray(rotate, dtype=float)
        if r.ndim == 2 and not np.allclose(r, np.eye(len(r))):
            out["rotate"] = r.tolist()
    shear = attributes.get("shear")
    if shear is not None:
        sh = np.asarray(shear, dtype=float)
        if sh.ndim == 2:
            sh = sh[np.triu_indices(len(sh), 1)]
        if not np.allclose(sh, 0):
            out["shear"] = sh.tolist()
    affine = attributes.get("affine")
    if affine is not None:
        a = np.asarray(getattr(affine, "affine_matrix", affine), dtype=float)
        if a.ndim == 2 and a.shape[0] == a.shape[1] and not np.allclose(a, np.eye(len(a))):
            out["affine"] = a.tolist()
    return out


def describe_index(layer, index: tuple[int, ...]) -> str:
    if not index:
        return ""
    labels = list(getattr(layer, "axis_labels", ()) or ())[: len(index)]
    if len(labels) != len(index):
        labels = [f"axis {i}" for i in range(len(index))]
    return ", ".join(f"{a}={i}" for a, i in zip(labels, index))


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.2f} MiB"


def format_db(value: float) -> str:
    return "∞ dB" if not np.isfinite(value) else f"{value:.2f} dB"


def format_ssim(value: float) -> str:
    """SSIM to 4 places; NaN where the planes are smaller than its window (``metrics.SSIM_MIN_SIDE``)."""
    from ..eval.metrics import SSIM_MIN_SIDE

    return f"n/a (< {SSIM_MIN_SIDE} px)" if np.isnan(value) else f"{value:.4f}"


# -- background jobs --------------------------------------------------------------
class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


@dataclass
class Failure:
    """What a job returns when it failed: the message to show."""

    message: str


class Task:
    """Handed to a job's function: reports progress and notices cancellation from the worker thread."""

    def __init__(self) -> None:
        self.worker = None

    @property
    def cancelled(self) -> bool:
        return bool(self.worker is not None and self.worker.abort_requested)

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled

    def report(self, done: int, total: int) -> None:
        """Progress from a callback (e.g. ``encode(progress=...)``); also a cancellation point."""
        self.check()
        if self.worker is not None:
            self.worker.yielded.emit((done, total))


def _guarded(func: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """Run a job generator so that it never raises into Qt: errors become :class:`Failure`."""

    def run(*args, **kwargs):
        try:
            result = yield from func(*args, **kwargs)
        except Cancelled:
            return Failure("")
        except CjpgError as exc:
            return Failure(str(exc))
        except MemoryError:
            return Failure("not enough memory: try the plane in view instead of all planes")
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a traceback dialog
            return Failure(f"{type(exc).__name__}: {exc}")
        return result

    return run


class Job:
    """One kind of background work of a widget: at most one run is current.

    ``start(func, *args, on_result=...)`` runs the generator function
    ``func(task, *args)`` in a napari thread worker. ``func`` yields
    ``(done, total)`` between planes (points where Cancel takes effect) and
    returns its result. ``on_result`` is called on the GUI thread, only if no
    newer run was started meanwhile and the widget still exists; a failure shows
    ``show_error`` with the message.
    """

    def __init__(self, progress_bar, cancel_button, status=None, name: str = "napari-cnnjpeg") -> None:
        self.progress_bar = progress_bar
        self.cancel_button = cancel_button
        self.status = status
        self.name = name
        self.generation = 0
        self.worker = None
        self.closed = False
        self.progress_bar.visible = False
        self.cancel_button.enabled = False
        self.cancel_button.changed.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def invalidate(self) -> None:
        """The inputs changed: whatever is running now will be dropped."""
        self.generation += 1

    def start(self, func: Callable[..., Iterator], *args, on_result: Callable[[Any], None], **kwargs):
        from napari.qt.threading import create_worker

        self._stop()
        self.generation += 1
        gen = self.generation
        task = Task()
        worker = create_worker(_guarded(func), task, *args, _start_thread=False, **kwargs)
        task.worker = worker
        worker.yielded.connect(partial(self._on_progress, gen))
        worker.returned.connect(partial(self._on_returned, gen, on_result))
        worker.finished.connect(partial(self._on_finished, gen, worker))
        self.worker = worker
        if not self.closed:
            self.progress_bar.min, self.progress_bar.max, self.progress_bar.value = 0, 0, 0
            self.progress_bar.visible = True
            self.cancel_button.enabled = True
        worker.start()
        return worker

    def cancel(self, *_) -> None:
        """Stop the current run (at its next plane) and drop its result; the status line says so."""
        if self._stop() and self.status is not None and not self.closed:
            self.status.value = "cancelled"

    def _stop(self) -> bool:
        """Stop the current run, if any (returns whether there was one)."""
        if self.worker is None:
            return False
        self.worker.quit()
        self.generation += 1
        self._idle()
        return True

    def close(self) -> None:
        self.closed = True
        self._stop()

    def wait(self, timeout_ms: int = 60000) -> None:
        """Block until the current worker is done (tests, screenshots)."""
        from qtpy.QtCore import QCoreApplication, QElapsedTimer

        timer = QElapsedTimer()
        timer.start()
        while self.worker is not None and timer.elapsed() < timeout_ms:
            QCoreApplication.processEvents()

    def _idle(self) -> None:
        self.worker = None
        if not self.closed:
            self.progress_bar.visible = False
            self.cancel_button.enabled = False

    def _on_progress(self, gen: int, value) -> None:
        if gen != self.generation or self.closed:
            return
        done, total = value
        if self.progress_bar.max != total:
            self.progress_bar.max = total
        self.progress_bar.value = done

    def _on_returned(self, gen: int, on_result: Callable[[Any], None], result) -> None:
        if gen != self.generation or self.closed:
            return  # superseded by a newer run, or the widget is gone
        self._idle()  # the run is over: what on_result changes (e.g. the layer list) no longer cancels it
        if isinstance(result, Failure):
            if result.message:
                show_error(result.message, self.status, self.name)
            return
        try:
            on_result(result)
        except Exception as exc:  # noqa: BLE001 - raised into a Qt slot, it would abort the process
            message = str(exc) if isinstance(exc, CjpgError) else f"{type(exc).__name__}: {exc}"
            show_error(message, self.status, self.name)

    def _on_finished(self, gen: int, worker) -> None:
        if worker is self.worker:
            self._idle()


def show_error(message: str, status=None, name: str = "napari-cnnjpeg") -> None:
    """A napari error notification (and the widget's status line)."""
    from napari.utils.notifications import show_error as _show_error

    if status is not None:
        status.value = message
    _show_error(f"{name}: {message}")


def debounce(callback: Callable[[], None], ms: int = 200):
    """A single-shot QTimer that calls ``callback`` ``ms`` after the last ``start()``."""
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(callback)
    return timer


def layer_choices(viewer: napari.Viewer, kind: str = "image") -> Callable:
    """ComboBox choices: the viewer's layers of one kind ("image", "shapes"), by name."""

    def choices(_widget=None):
        import napari.layers

        cls = {"image": napari.layers.Image, "shapes": napari.layers.Shapes}[kind]
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, cls)]

    return choices


def layer_attributes(layer) -> dict:
    """The layer state the ``.cjpg`` writer stores, read from public layer attributes."""
    units = getattr(layer, "units", None)
    return {
        "name": layer.name, "scale": list(layer.scale), "translate": list(layer.translate),
        "axis_labels": list(getattr(layer, "axis_labels", ()) or ()) or None,
        "units": [str(u) for u in units] if units is not None else None,
        "contrast_limits": list(layer.contrast_limits), "colormap": layer.colormap.name,
        "blending": str(layer.blending), "opacity": float(layer.opacity), "gamma": float(layer.gamma),
        "rgb": bool(layer.rgb), "multiscale": bool(layer.multiscale),
        "rotate": layer.rotate, "shear": layer.shear, "affine": layer.affine.affine_matrix,
    }


def set_or_add_image(viewer: napari.Viewer, current, data, **kwargs):
    """Update ``current`` (a layer this widget made earlier) in place, or add a new image layer.

    A layer removed by the user, or one whose dimensionality or RGB-ness no longer
    fits, is replaced. Returns the layer shown.
    """
    rgb = bool(kwargs.get("rgb", False))
    fits = (
        current is not None and current in viewer.layers and current.rgb == rgb
        and current.data.ndim == np.ndim(data) and not current.multiscale
    )
    if not fits:
        if current is not None and current in viewer.layers:
            viewer.layers.remove(current)
        return viewer.add_image(data, **kwargs)
    kwargs.pop("name", None)
    kwargs.pop("rgb", None)
    current.data = data
    for key, value in kwargs.items():
        setattr(current, key, value)
    return current
