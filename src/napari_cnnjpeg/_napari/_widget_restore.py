"""The Restore JPEG widget: run a decoder-only model on an ordinary JPEG (layer or file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    RadioButtons,
    SpinBox,
)

from ..errors import CjpgError
from ._workers import (
    ALL_PLANES,
    PLANE_CHOICES,
    PLANE_IN_VIEW,
    Job,
    apply_runtime_settings,
    check_layer,
    current_index,
    describe_index,
    layer_choices,
    layer_plane,
    plane_transform,
    show_error,
)

if TYPE_CHECKING:
    import napari

FROM_LAYER = "layer"
FROM_FILE = "JPEG file"
NO_MODEL = (
    "No decoder-only (restore) model is installed, so JPEG restoration is unavailable. Trained models "
    "appear here once listed in napari_cnnjpeg/weights/zoo.json (kind 'restore')."
)


def restore_models() -> list[str]:
    """Ids of the installed decoder-only models, best first."""
    from ..nn.models import available_models, default_restore_model, model_info

    ids = [m for m in available_models() if model_info(m).kind == "restore"]
    best = default_restore_model()
    return sorted(ids, key=lambda m: m != best)


def _estimate(layer) -> int | None:
    """The JPEG quality estimated from the first plane of a uint8 layer (a 512² centre crop: about 0.1 s)."""
    from ..format.jpeg import estimate_quality

    if layer is None or np.dtype(layer.dtype) != np.uint8:
        return None
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    pdims = 3 if layer.rgb else 2
    h, w = data.shape[data.ndim - pdims : data.ndim - pdims + 2]
    top, left = (max(0, (n - 512) // 2) // 8 * 8 for n in (h, w))  # read only the crop it looks at
    plane = np.asarray(data[(0,) * (data.ndim - pdims) + (slice(top, top + 512), slice(left, left + 512))])
    return estimate_quality(plane if not layer.rgb or plane.shape[-1] == 3 else plane[..., :3])


def quality_from_metadata(metadata: dict) -> int | None:
    """The JPEG quality a layer's metadata records (``quality`` or ``jpeg_quality``), if any."""
    for key in ("jpeg_quality", "quality"):
        value = (metadata or {}).get(key)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 1 <= value <= 100:
            return int(value)
    return None


def tables_from_metadata(metadata: dict) -> dict | None:
    """The quantisation-table tuning of the model a layer's metadata names (a ``.cjpg`` layer), if any."""
    from ..nn.models import model_info

    try:
        return model_info((metadata or {}).get("model")).tables
    except CjpgError:
        return None


def restore_layer_job(task, data, index, rgb: bool, model: str, quality: int, tables: dict | None = None):
    """Restore the plane at ``index`` (or every plane when None) of a uint8 layer."""
    from .. import codec

    apply_runtime_settings(model)
    src = layer_plane(data, index)
    if src.dtype != np.uint8:
        raise CjpgError(
            f"restoring needs 8-bit data decoded from a JPEG; this layer is {src.dtype}"
        )
    pdims = 3 if rgb else 2
    plane_shape = src.shape[src.ndim - pdims :]
    flat = src.reshape((-1,) + plane_shape)
    out = np.empty_like(flat)
    yield (0, len(flat))
    for k, plane in enumerate(flat):
        out[k] = codec.restore(np.ascontiguousarray(plane), model, quality=quality, tables=tables)
        yield (k + 1, len(flat))
    return out.reshape(src.shape)


def restore_file_job(task, path: Path, model: str):
    """The plain decoding and the restored image of a JPEG file."""
    from .. import codec

    apply_runtime_settings(model)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CjpgError(f"cannot read {path}: {exc.strerror or exc}") from None
    plain = codec.decode_plain(data)  # 8- or 12-bit, lossless, CMYK: as restore reads it
    yield (1, 2)
    restored = codec.restore(data, model)
    yield (2, 2)
    return plain, restored


class RestoreWidget(Container):
    """Remove JPEG artefacts from a layer or a ``.jpg`` file with a decoder-only model."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        models = restore_models()
        self.source = RadioButtons(label="restore", choices=(FROM_LAYER, FROM_FILE), value=FROM_LAYER,
                                   orientation="horizontal")
        self.image = ComboBox(label="image", choices=layer_choices(viewer, "image"))
        self.quality = SpinBox(label="JPEG quality", min=1, max=100, value=75)
        self.quality_note = Label(label="", value="")
        self.file = FileEdit(label="JPEG file", mode="r", filter="JPEG (*.jpg *.jpeg *.jfif *.jpe)", visible=False)
        self.model = ComboBox(label="model", choices=models, value=models[0] if models else None, nullable=not models)
        self.planes = RadioButtons(label="planes", choices=PLANE_CHOICES, value=PLANE_IN_VIEW,
                                   orientation="horizontal")
        self.run_button = PushButton(text="Restore")
        self.cancel_button = PushButton(text="Cancel")
        self.progress = ProgressBar(label="progress", min=0, max=0)
        self.status = Label(label="", value="")
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False)
        self.extend([self.source, self.image, self.quality, self.quality_note, self.file, self.model, self.planes,
                     buttons, self.progress, self.status])
        self.status.native.setWordWrap(True)
        self.quality_note.native.setWordWrap(True)
        self._job = Job(self.progress, self.cancel_button, self.status, name="Restore JPEG")
        self.restored_layer = None
        if not models:
            self.status.value = NO_MODEL
            self.run_button.enabled = False

        self.source.changed.connect(self._on_source)
        self.image.changed.connect(self._on_image)
        self.run_button.changed.connect(self.run)
        for ev in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, ev).connect(self.reset_choices)
        self.native.destroyed.connect(lambda *_: self._job.close())
        self.reset_choices()
        self._on_image()

    def _on_source(self, *_):
        from_file = self.source.value == FROM_FILE
        for w in (self.image, self.quality, self.quality_note, self.planes):
            w.visible = not from_file
        self.file.visible = from_file

    def _on_image(self, *_):
        self._job.cancel()
        layer = self.image.value
        q = quality_from_metadata(getattr(layer, "metadata", None)) if layer is not None else None
        if q is None:
            guess = _estimate(layer)
            if guess is None:
                self.quality_note.value = ("quality not recorded in the layer, and not estimated from its pixels: "
                                           "set the JPEG quality it was saved at")
            else:
                self.quality.value = guess
                self.quality_note.value = f"quality not recorded in the layer: about {guess}, estimated from its pixels"
            return
        self.quality.value = q
        note = f"quality {q} read from the layer metadata"
        model = (layer.metadata or {}).get("model")
        if model not in (None, "jpeg"):
            note += f" (note: already decoded by model {model!r})"
        self.quality_note.value = note

    def run(self, *_):
        """Restore with the selected model (in the background)."""
        model = self.model.value
        if not model:
            show_error(NO_MODEL, self.status, "Restore JPEG")
            return None
        if self.source.value == FROM_FILE:
            path = self.file.value
            if path is None or not Path(path).is_file():
                show_error("choose a JPEG file first", self.status, "Restore JPEG")
                return None
            path = Path(path)
            self.status.value = f"restoring {path.name}…"
            return self._job.start(restore_file_job, path, model, on_result=lambda r: self._show_file(path, model, r))
        layer = self.image.value
        all_planes = self.planes.value == ALL_PLANES
        try:
            check_layer(layer)
            if layer.data.dtype != np.uint8:
                raise CjpgError(f"restoring needs 8-bit data decoded from a JPEG; layer {layer.name!r} is "
                                f"{layer.data.dtype}")
            index = None if all_planes else current_index(self._viewer, layer)
        except CjpgError as exc:
            show_error(str(exc), self.status, "Restore JPEG")
            return None
        self.status.value = "restoring…"
        quality = int(self.quality.value)  # the quality this run uses, whatever the spin box says by its end
        return self._job.start(
            restore_layer_job, layer.data, None if all_planes else index, bool(layer.rgb), model,
            quality, tables_from_metadata(layer.metadata),
            on_result=lambda r: self._show_layer(layer, index, all_planes, model, quality, r),
        )

    def _show_layer(self, layer, index, all_planes: bool, model: str, quality: int, restored: np.ndarray) -> None:
        kwargs = {"name": f"{layer.name} (restored, {model})", "rgb": bool(layer.rgb),
                  "metadata": {"model": model, "jpeg_quality": quality, "source_layer": layer.name,
                               "plane": None if all_planes else index}}
        if all_planes:
            kwargs.update(scale=tuple(layer.scale), translate=tuple(layer.translate))
        else:
            kwargs.update(plane_transform(layer))
        if not layer.rgb:
            kwargs.update(colormap=layer.colormap.name, contrast_limits=(0, 255))
        self.restored_layer = self._viewer.add_image(restored, **kwargs)
        where = "all planes" if all_planes else (describe_index(layer, index) or "image")
        self.status.value = f"restored {where} with {model}"

    def _show_file(self, path: Path, model: str, result) -> None:
        plain, restored = result
        rgb = plain.ndim == 3
        self._viewer.add_image(plain, name=f"{path.stem} (JPEG)", rgb=rgb, metadata={"source_path": str(path)})
        self.restored_layer = self._viewer.add_image(
            restored, name=f"{path.stem} (restored, {model})", rgb=rgb,
            metadata={"model": model, "source_path": str(path)},
        )
        self.status.value = f"restored {path.name} with {model}"
