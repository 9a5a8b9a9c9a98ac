"""The Compress widget: compress an image layer with a model, see size and quality, save a ``.cjpg``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    RadioButtons,
    Slider,
)

from ..errors import CjpgError
from ._workers import (
    ALL_PLANES,
    PLANE_CHOICES,
    PLANE_IN_VIEW,
    CheckedPlanes,
    Job,
    apply_runtime_settings,
    check_layer,
    current_index,
    debounce,
    default_model_id,
    describe_index,
    format_bytes,
    format_db,
    format_ssim,
    get_settings,
    layer_attributes,
    layer_choices,
    layer_plane,
    lazy_source,
    lead_shape,
    plane_transform,
    set_or_add_image,
    show_error,
    stack_range,
)

if TYPE_CHECKING:
    import napari

QUALITY = "quality"
TARGET = "target bpp"
#: Value mappings offered for data other than uint8 (``mapping`` of :func:`napari_cnnjpeg.encode`).
MAP_STACK, MAP_PLANE, MAP_LIMITS = "whole layer", "each plane", "contrast limits"


@dataclass
class CompressResult:
    """One compression run: the file, its decoded image and its figures."""

    data: bytes
    decoded: np.ndarray
    model: str
    quality: int
    bytes: int
    bpp: float
    psnr: float
    ssim: float
    index: tuple | None  # stack index of the plane, None for all planes
    note: str = ""
    meta: dict = field(default_factory=dict)


# -- work done in the worker thread ---------------------------------------------------
def _bpp(n_bytes: int, plane: np.ndarray, rgb: bool) -> float:
    from ..eval.metrics import bpp

    return bpp(n_bytes, plane.shape, rgb=rgb)


def find_quality(task, plane: np.ndarray, rgb: bool, model: str, target_bpp: float, mapping=None):
    """Highest quality whose file of ``plane`` stays within ``target_bpp`` (bisection; yields progress)."""
    from ..codec import encode

    lo, hi, best, steps = 1, 100, None, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        rate = _bpp(len(encode(plane, quality=mid, model=model, rgb=rgb, mapping=mapping)), plane, rgb)
        steps += 1
        yield (steps, 8)
        if rate <= target_bpp:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    if best is None:
        return 1, f"even quality 1 exceeds {target_bpp:g} bpp"
    return best, ""


def compress_job(task, data, rgb: bool, index, probe_index, model: str, quality: int | None,
                 target_bpp: float | None, metadata: dict, decode: bool = True, mapping=None):
    """Encode the plane at ``index`` (or all planes when None), decode it and measure it.

    ``mapping`` "stack" maps the whole layer's range even when one plane is compressed,
    so that the plane in view looks as it will in the saved file. All planes of a lazy
    layer (dask, zarr, a ``.cjpg`` stack) are read one at a time, each read a point where
    Cancel takes effect; only the decoded result (``decode``) is held whole.
    """
    from ..codec import Reader, encode
    from ..eval import metrics
    from ..nn.models import model_info, quality_note

    apply_runtime_settings(model)
    plane_mapping = mapping  # what a single plane (the one shown, or the rate probe) is coded with
    if mapping == "stack" and (index is not None or quality is None):
        lo, hi = stack_range(task, data, rgb)  # zarr and .cjpg stacks have no min(); plane by plane
        plane_mapping = (lo, hi) if hi > lo else "plane"
        if index is not None:
            mapping = plane_mapping
    note = ""
    if quality is None:
        probe = layer_plane(data, probe_index)
        quality, note = yield from find_quality(task, probe, rgb, model, target_bpp, plane_mapping)
    if clamped := quality_note(model, quality):  # outside the model's range: coded at its nearest end
        note, quality = clamped, model_info(model).effective_quality(quality)
    whole = index is None
    src = CheckedPlanes(lazy_source(data), task) if whole else layer_plane(data, index)
    task.check()
    pdims = 3 if rgb else 2
    lead = tuple(src.shape[: len(src.shape) - pdims])
    n = int(np.prod(lead, dtype=np.int64))
    total = 2 * n if decode else n
    blob = encode(src, quality=quality, model=model, rgb=rgb, metadata=metadata, mapping=mapping,
                  progress=lambda done, _n: task.report(done, total))
    if not decode:
        return CompressResult(blob, None, model, quality, len(blob), _bpp(len(blob), src, rgb),
                              float("nan"), float("nan"), index, note)
    plane_shape = tuple(src.shape[len(src.shape) - pdims :])
    out = np.empty(src.shape, src.dtype)
    flat_out = out.reshape((-1,) + plane_shape)
    if np.dtype(src.dtype) == np.uint8:
        rng = metrics.data_range(np.uint8)
    else:  # scientific data: figures over its own value range (of the whole stack)
        lo, hi = stack_range(task, data, rgb) if whole else (float(src.min()), float(src.max()))
        rng = hi - lo if hi > lo else metrics.data_range(src.dtype)
    ssims, sse = [], 0.0
    with Reader(blob) as reader:
        for k in range(len(reader)):
            flat_out[k] = reader.plane(k)
            ref = np.asarray(src[tuple(int(i) for i in np.unravel_index(k, lead))] if lead else src[...])
            diff = ref.astype(np.float64) - flat_out[k].astype(np.float64)
            sse += float(np.sum(diff * diff))
            try:
                ssims.append(float(metrics.ssim(ref, flat_out[k], rgb=rgb, data_range_=rng)))
            except CjpgError:  # plane smaller than the SSIM window
                ssims.append(float("nan"))
            yield (n + k + 1, total)
    mse = sse / out.size if out.size else 0.0
    psnr = float("inf") if mse == 0 else float(10 * np.log10(rng * rng / mse))
    return CompressResult(blob, out, model, quality, len(blob), _bpp(len(blob), src, rgb), psnr,
                          float(np.mean(ssims)), index, note)


# -- the widget ----------------------------------------------------------------------
class CompressWidget(Container):
    """Compress an image layer (plane in view or whole stack) and compare it with its source.

    Shows file size, bits per pixel, PSNR and SSIM against the source (from
    :mod:`napari_cnnjpeg.eval.metrics`), adds or updates a result layer, and saves the
    ``.cjpg``. Changing a setting re-runs the compression in the background.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        from ..nn.models import available_models

        self._viewer = viewer
        settings = get_settings()
        self.image = ComboBox(label="image", choices=layer_choices(viewer, "image"))
        models = available_models()
        self.model = ComboBox(label="model", choices=models, value=default_model_id(settings))
        self._switched = None  # the 12-bit default, where a layer of more than 8 bits chose it
        self.model_note = Label(label="", value="")
        self.rate_mode = RadioButtons(label="rate by", choices=(QUALITY, TARGET), value=QUALITY,
                                      orientation="horizontal")
        self.quality = Slider(label="quality", min=1, max=100, value=settings.quality)
        self.target_bpp = FloatSpinBox(label="target bpp", min=0.02, max=24.0, step=0.05, value=0.5,
                                       visible=False)
        self.mapping = ComboBox(label="value range", choices=(MAP_STACK, MAP_PLANE, MAP_LIMITS), value=MAP_STACK,
                                visible=False, tooltip="for data of more than 8 bits: the range mapped onto the "
                                "JPEG's values (whole layer, each plane's own, or the layer's contrast limits)")
        self.planes = RadioButtons(label="planes", choices=PLANE_CHOICES, value=PLANE_IN_VIEW,
                                   orientation="horizontal")
        self.auto = CheckBox(text="re-run when a setting changes", value=True)
        self.run_button = PushButton(text="Compress")
        self.cancel_button = PushButton(text="Cancel")
        self.progress = ProgressBar(label="progress", min=0, max=0)
        self.results = Label(label="result", value="—")
        self.status = Label(label="", value="")
        self.save_path = FileEdit(label="save as", mode="w", filter="*.cjpg")
        self.save_button = PushButton(text="Save .cjpg")
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False)
        self.extend([
            self.image, self.model, self.model_note, self.rate_mode, self.quality, self.target_bpp, self.mapping,
            self.planes, self.auto, buttons, self.progress, self.results, self.status, self.save_path, self.save_button,
        ])
        for label in (self.model_note, self.status, self.results):
            label.native.setWordWrap(True)
        self._show_model_note()
        self._show_mapping()

        self._job = Job(self.progress, self.cancel_button, self.status, name="Compress")
        self._save_job = Job(self.progress, self.cancel_button, self.status, name="Save .cjpg")
        self.result: CompressResult | None = None
        self.result_layer = None
        self._result_source = None
        self._timer = debounce(self._auto_run, 200)

        self.run_button.changed.connect(self.run)
        self.save_button.changed.connect(self.save)
        self.rate_mode.changed.connect(self._on_rate_mode)
        self.model.changed.connect(self._show_model_note)
        self._image_seen = None
        self.image.changed.connect(self._on_image_changed)
        for w in (self.model, self.quality, self.target_bpp, self.planes, self.mapping):
            w.changed.connect(self._on_input_changed)
        viewer.dims.events.current_step.connect(self._on_dims)
        for ev in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, ev).connect(self.reset_choices)
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()

    # -- inputs
    def reset_choices(self, *_):
        """Refresh the layer list (napari calls this when layers change).

        Only the image choices depend on the viewer; resetting the other choice widgets
        would re-emit their values and re-run the compression for nothing.
        """
        self.image.reset_choices()

    def _show_model_note(self, *_):
        """What the chosen model is, what a stock viewer shows of its files, and its quality ceiling."""
        from ..nn.models import model_summary

        self.model_note.value = model_summary(self.model.value) if self.model.value else ""

    def _on_rate_mode(self, *_):
        target = self.rate_mode.value == TARGET
        self.quality.visible = not target
        self.target_bpp.visible = target
        self._on_input_changed()

    def _on_input_changed(self, *_):
        self._job.cancel()  # its result would no longer match the controls
        if self.auto.value and self.image.value is not None:
            self._timer.start()

    def _on_image_changed(self, *_):
        # refreshing the layer list (e.g. when the result layer is added) may re-emit the same layer
        if self.image.value is not self._image_seen:
            self._image_seen = self.image.value
            self._show_mapping()
            self._on_input_changed()

    def _show_mapping(self):
        """The value-range choice applies to data of more than 8 bits only, and such data gets
        the default model for 12-bit payloads while the 8-bit default is chosen (and back)."""
        from ..nn.models import default_model, model_info

        layer = self.image.value
        deep = layer is not None and np.dtype(layer.dtype) != np.uint8
        self.mapping.visible = deep
        if layer is None or self.model.value is None:
            return
        eight, twelve = default_model_id(get_settings()), default_model(12)
        if deep and self.model.value == eight and twelve in self.model.choices:
            self.model.value = self._switched = twelve
        elif not deep and (model_info(self.model.value).bits == 12 or self.model.value == self._switched):
            self.model.value = eight
            self._switched = None

    def _on_dims(self, *_):
        layer = self.image.value
        if layer is None or self.planes.value != PLANE_IN_VIEW or not lead_shape(layer):
            return
        try:
            if self.result is not None and self.result.index == current_index(self._viewer, layer):
                return
        except CjpgError:  # the view shows no plane of the layer: a run says so
            pass
        self._on_input_changed()

    def _auto_run(self):
        if self.auto.value and self.image.value is not None:
            self.run()

    def _on_destroyed(self, *_):
        try:
            self._timer.stop()
        except RuntimeError:  # at interpreter exit Qt may have deleted the timer already
            pass
        self._job.close()
        self._save_job.close()

    # -- compress
    def _request(self):
        """What to compress, read from the controls on the GUI thread."""
        layer = self.image.value
        check_layer(layer)
        model = self.model.value
        if model is None:
            raise CjpgError("no model selected")
        all_planes = self.planes.value == ALL_PLANES
        target = self.rate_mode.value == TARGET
        # the plane in view: compressed, or measured for a target rate (all planes at a quality need none)
        index = current_index(self._viewer, layer) if target or not all_planes else None
        mapping = None
        if np.dtype(layer.dtype) != np.uint8:
            mapping = {MAP_STACK: "stack", MAP_PLANE: "plane"}.get(self.mapping.value)
            if mapping is None:
                lo, hi = (float(v) for v in layer.contrast_limits)
                if not hi > lo:
                    raise CjpgError(f"the layer's contrast limits {lo:g}-{hi:g} are not a range to map")
                mapping = (lo, hi)
        return dict(
            data=layer.data, rgb=bool(layer.rgb), index=None if all_planes else index, probe_index=index,
            model=model, quality=None if target else int(self.quality.value),
            target_bpp=float(self.target_bpp.value) if target else None, mapping=mapping,
        ), layer

    def run(self, *_):
        """Compress with the current settings (in the background)."""
        try:
            request, layer = self._request()
        except CjpgError as exc:
            show_error(str(exc), self.status, "Compress")
            return None
        self.status.value = "compressing…"
        return self._job.start(compress_job, **request, metadata={}, on_result=lambda r: self._show(r, layer))

    def _show(self, result: CompressResult, layer) -> None:
        if layer not in self._viewer.layers:
            return
        self.result = result
        self._result_source = layer
        where = "all planes" if result.index is None else (describe_index(layer, result.index) or "image")
        from ..codec import info

        bits = info(result.data)["bits"]
        over = "" if np.dtype(layer.dtype) == np.uint8 else " (over the layer's value range)"
        self.results.value = (
            f"{format_bytes(result.bytes)} · {result.bpp:.3f} bpp · PSNR {format_db(result.psnr)} · "
            f"SSIM {format_ssim(result.ssim)}{over}\n{result.model}, quality {result.quality}, {bits}-bit JPEG, "
            f"{layer.name}: {where}"
        )
        self.status.value = result.note
        meta = {
            "model": result.model, "quality": result.quality, "bytes": result.bytes, "bpp": result.bpp,
            "psnr": result.psnr, "ssim": result.ssim, "source_layer": layer.name, "dtype": str(layer.dtype),
            "plane": result.index,
        }
        kwargs = {"name": f"{layer.name} (cjpg)", "rgb": bool(layer.rgb), "metadata": meta}
        if result.index is None:
            kwargs.update(scale=tuple(layer.scale), translate=tuple(layer.translate))
        else:
            kwargs.update(plane_transform(layer))
        if not layer.rgb:
            kwargs.update(colormap=layer.colormap.name, contrast_limits=tuple(layer.contrast_limits))
        self.result_layer = set_or_add_image(self._viewer, self.result_layer, result.decoded, **kwargs)

    # -- save
    def _target_path(self) -> Path | None:
        value = self.save_path.value
        path = Path(value) if value not in (None, "", ".") else None
        if path is None or path.is_dir() or str(path) in ("", "."):
            path = self._ask_path()
        if path is None:
            return None
        return path if path.suffix.lower() == ".cjpg" else path.with_suffix(path.suffix + ".cjpg")

    def _ask_path(self) -> Path | None:
        from qtpy.QtWidgets import QFileDialog

        name = f"{self.image.value.name}.cjpg" if self.image.value is not None else "image.cjpg"
        path, _ = QFileDialog.getSaveFileName(self.native, "Save .cjpg", name, "CNN-JPEG (*.cjpg)")
        return Path(path) if path else None

    def save(self, *_):
        """Compress the whole layer with the current model and quality and write the ``.cjpg``."""
        try:
            request, layer = self._request()
        except CjpgError as exc:
            show_error(str(exc), self.status, "Save .cjpg")
            return None
        path = self._target_path()
        if path is None:
            return None
        last = self.result
        if request["quality"] is None and last is not None and self._result_source is layer:
            request["quality"] = last.quality  # the quality the target bit rate resolved to
        request["index"] = None
        self.status.value = f"saving {path.name}…"
        from ._writer import layer_image_metadata

        metadata = layer_image_metadata(layer_attributes(layer))
        return self._save_job.start(_save_job, path, request, metadata,
                                    on_result=lambda r: self._saved(path, r))

    def _saved(self, path: Path, result: CompressResult) -> None:
        from napari.utils.notifications import show_info

        msg = f"saved {path} ({format_bytes(result.bytes)}, {result.bpp:.3f} bpp, quality {result.quality})"
        self.status.value = msg
        show_info(msg)


def _save_job(task, path: Path, request: dict, metadata: dict):
    from ..format.container import write_atomic

    result = yield from compress_job(task, **request, metadata=metadata, decode=False)
    task.check()
    write_atomic(path, result.data)
    return result
