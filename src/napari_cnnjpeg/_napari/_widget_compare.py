"""The Compare layers widget: PSNR/SSIM, error and SSIM maps, region figures, a rate-distortion plot."""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    ProgressBar,
    PushButton,
    RadioButtons,
)

from ..errors import CjpgError
from ._workers import (
    ALL_PLANES,
    PLANE_CHOICES,
    PLANE_IN_VIEW,
    Job,
    check_layer,
    current_index,
    debounce,
    default_model_id,
    describe_index,
    format_db,
    format_ssim,
    layer_choices,
    layer_plane,
    plane_ndim,
    plane_transform,
    set_or_add_image,
    show_error,
)

if TYPE_CHECKING:
    import napari

#: Qualities sampled for the rate-distortion plot.
RD_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)


# -- pairing (GUI thread) ----------------------------------------------------------------
def pair_layers(viewer, ref, test, all_planes: bool) -> dict:
    """Which planes of ``ref`` and ``test`` to compare: arrays and stack indices (None: all planes).

    Layers of the same shape are compared plane for plane; a single-plane layer is
    compared with the plane in view of a stack whose planes have its size.
    """
    check_layer(ref, "reference layer")
    check_layer(test, "test layer")
    if bool(ref.rgb) != bool(test.rgb):
        raise CjpgError(f"{ref.name!r} and {test.name!r} differ: one is RGB, the other is not")
    pd = plane_ndim(ref)
    rshape, tshape = tuple(ref.data.shape), tuple(test.data.shape)
    if rshape[-pd:] != tshape[-pd:]:
        raise CjpgError(f"the planes differ in size: {rshape[-pd:]} vs {tshape[-pd:]}")
    rlead, tlead = rshape[:-pd], tshape[:-pd]
    out = {"ref": ref.data, "test": test.data, "rgb": bool(ref.rgb)}
    if rlead == tlead:
        if all_planes:
            return {**out, "ref_index": None, "test_index": None, "geometry": ref, "index": None}
        idx = current_index(viewer, ref)
        return {**out, "ref_index": idx, "test_index": idx, "geometry": ref, "index": idx}
    if all_planes and (not tlead or not rlead):
        raise CjpgError("one layer is a single plane: compare the plane in view instead of all planes")
    if not tlead:
        idx = current_index(viewer, ref)
        return {**out, "ref_index": idx, "test_index": (), "geometry": ref, "index": idx}
    if not rlead:
        idx = current_index(viewer, test)
        return {**out, "ref_index": (), "test_index": idx, "geometry": test, "index": idx}
    raise CjpgError(f"the layers differ in shape: {rshape} vs {tshape}")


def region_slices(shapes, geometry, plane_hw: tuple[int, int]):
    """Row and column slices of the rectangle (selected, else last shape) of a shapes layer."""
    if shapes is None or len(shapes.data) == 0:
        return None
    selected = sorted(shapes.selected_data)
    verts = np.asarray(shapes.data[selected[-1] if selected else len(shapes.data) - 1], float)
    coords = np.array([geometry.world_to_data(shapes.data_to_world(v)) for v in verts])
    rows, cols = coords[:, -2], coords[:, -1]
    h, w = plane_hw
    r0, r1 = max(0, math.ceil(rows.min())), min(h, math.floor(rows.max()) + 1)
    c0, c1 = max(0, math.ceil(cols.min())), min(w, math.floor(cols.max()) + 1)
    if r1 - r0 < 1 or c1 - c0 < 1:
        raise CjpgError("the rectangle lies outside the image")
    return slice(r0, r1), slice(c0, c1)


def _get(data, index):
    return layer_plane(data, index)


def _check_finite(r: np.ndarray, t: np.ndarray) -> None:
    """Refuse NaN or infinite values, for which PSNR, SSIM and the error map are undefined."""
    for name, a in (("reference", r), ("test", t)):
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise CjpgError(f"the {name} layer holds NaN or infinite values here: PSNR and SSIM are not defined")


def _ssim(ref: np.ndarray, test: np.ndarray, rgb: bool, rng: float, full: bool = False):
    """SSIM (and its map with ``full``), NaN for a plane smaller than SSIM's window (``metrics.SSIM_MIN_SIDE``)."""
    from ..eval import metrics

    try:
        return metrics.ssim(ref, test, rgb=rgb, full=full, data_range_=rng)
    except CjpgError:  # smaller than the SSIM window
        return (float("nan"), np.full(ref.shape, np.nan, np.float32)) if full else float("nan")


def _dtype_note(ref, test) -> str:
    """A warning for layers of different dtypes: their values are compared as stored, unscaled."""
    if np.dtype(ref.dtype) == np.dtype(test.dtype):
        return ""
    return (f"\nnote: {test.name} is {np.dtype(test.dtype)}, {ref.name} {np.dtype(ref.dtype)}: values are compared "
            "as stored (not rescaled), over the reference's range")


def _geometry_note(ref, test, geometry) -> str:
    """A warning for layers placed differently in the world (scale or translate of their planes):
    they are compared pixel for pixel, as stored, not where the viewer shows them."""
    rs, ts = np.asarray(ref.scale[-2:], float), np.asarray(test.scale[-2:], float)
    rt, tt = np.asarray(ref.translate[-2:], float), np.asarray(test.translate[-2:], float)
    if np.allclose(rs, ts) and np.allclose(rt, tt):
        return ""
    fmt = lambda a: "(" + ", ".join(f"{v:g}" for v in a) + ")"  # noqa: E731
    return (f"\nnote: the layers lie differently in the world (scale {fmt(ts)} vs {fmt(rs)}, translate "
            f"{fmt(tt)} vs {fmt(rt)}): compared pixel for pixel; the maps lie over {geometry.name}")


# -- work (worker thread) ----------------------------------------------------------------
def compare_job(task, ref, test, ref_index, test_index, rgb: bool):
    """PSNR and SSIM (mean over planes) plus absolute-error and SSIM maps."""
    from ..eval import metrics

    r, t = _get(ref, ref_index), _get(test, test_index)
    if r.shape != t.shape:
        raise CjpgError(f"images differ in shape: {r.shape} vs {t.shape}")
    _check_finite(r, t)
    pd = 3 if rgb else 2
    plane_shape = r.shape[r.ndim - pd :]
    lead = r.shape[: r.ndim - pd]
    fr, ft = r.reshape((-1,) + plane_shape), t.reshape((-1,) + plane_shape)
    err = np.empty((len(fr),) + plane_shape[:2], np.float32)
    smap = np.empty_like(err)
    scores = []
    rng = metrics.value_range(r)  # scientific data: figures over its own value range
    yield (0, len(fr))
    for k in range(len(fr)):
        score, m = _ssim(fr[k], ft[k], rgb, rng, full=True)
        scores.append(float(score))
        smap[k] = m.mean(axis=-1) if rgb else m
        diff = np.abs(fr[k].astype(np.float32) - ft[k].astype(np.float32))
        err[k] = diff.mean(axis=-1) if rgb else diff
        yield (k + 1, len(fr))
    high = float(np.percentile(err, 99.5)) if err.size else 1.0
    return {
        "psnr": metrics.psnr(r, t, rng), "ssim": float(np.mean(scores)), "planes": len(fr),
        "error_map": err.reshape(lead + plane_shape[:2]), "ssim_map": smap.reshape(lead + plane_shape[:2]),
        "error_limit": high if high > 0 else max(float(err.max()), 1e-6),
    }


def region_job(task, ref, test, ref_index, test_index, rgb: bool, rows: slice, cols: slice):
    """PSNR and SSIM inside a rectangle of the plane in view."""
    from ..eval import metrics

    full = _get(ref, ref_index)
    rng = metrics.value_range(full)  # the plane's range, as for the whole-plane figures
    r, t = full[rows, cols], _get(test, test_index)[rows, cols]
    _check_finite(r, t)
    yield (1, 2)
    ssim = float(_ssim(r, t, rgb, rng))
    return {"psnr": metrics.psnr(r, t, rng), "ssim": ssim, "shape": r.shape[:2], "rows": rows, "cols": cols}


def rd_job(task, plane, rgb: bool, model: str, qualities=RD_QUALITIES, marker=None):
    """Bits per pixel and PSNR of ``plane`` across qualities, plain JPEG and ``model``."""
    from ..codec import decode, encode
    from ..eval import metrics
    from ._workers import apply_runtime_settings

    apply_runtime_settings(model)
    plane = np.asarray(plane() if callable(plane) else plane)  # a .cjpg plane is decoded here, off the GUI thread
    rng = metrics.value_range(plane)
    models = ["jpeg"] if model == "jpeg" else ["jpeg", model]
    total, done = len(models) * len(qualities), 0
    curves = {}
    yield (0, total)
    for m in models:
        points = []
        for q in qualities:
            blob = encode(plane, quality=q, model=m, rgb=rgb)
            points.append((q, metrics.bpp(len(blob), plane.shape, rgb=rgb), metrics.psnr(plane, decode(blob), rng)))
            done += 1
            yield (done, total)
        curves[m] = points
    mark = None
    if marker is not None:
        test_plane, bpp_value, label = marker
        test_plane = test_plane() if callable(test_plane) else test_plane
        mark = (float(bpp_value), metrics.psnr(plane, np.asarray(test_plane), rng), label)
    return {"curves": curves, "mark": mark}


# -- the widget ----------------------------------------------------------------------------
class CompareWidget(Container):
    """Compare a test layer with a reference layer: figures, maps, region figures, RD plot."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        from ..nn.models import available_models

        self._viewer = viewer
        self.reference = ComboBox(label="reference", choices=layer_choices(viewer, "image"))
        self.test = ComboBox(label="test", choices=layer_choices(viewer, "image"))
        self.planes = RadioButtons(label="planes", choices=PLANE_CHOICES, value=PLANE_IN_VIEW,
                                   orientation="horizontal")
        self.maps = CheckBox(text="add error and SSIM map layers", value=True)
        self.run_button = PushButton(text="Compare")
        self.cancel_button = PushButton(text="Cancel")
        self.progress = ProgressBar(label="progress", min=0, max=0)
        self.results = Label(label="figures", value="—")
        self.region = ComboBox(label="region (shapes)", choices=layer_choices(viewer, "shapes"), nullable=True)
        self.region_results = Label(label="in region", value="draw a rectangle in a shapes layer")
        self.rd_model = ComboBox(label="RD model", choices=available_models(8), value=default_model_id())
        self.rd_button = PushButton(text="Plot rate-distortion")
        self.status = Label(label="", value="")
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False)
        self.extend([self.reference, self.test, self.planes, self.maps, buttons, self.progress, self.results,
                     self.region, self.region_results, self.rd_model, self.rd_button, self.status])
        for w in (self.results, self.region_results, self.status):
            w.native.setWordWrap(True)
        self._make_plot()

        self._job = Job(self.progress, self.cancel_button, self.status, name="Compare layers")
        self._region_job = Job(self.progress, self.cancel_button, self.status, name="Compare layers")
        self._rd_job = Job(self.progress, self.cancel_button, self.status, name="Rate-distortion")
        self.result: dict | None = None
        self.region_result: dict | None = None
        self.rd_result: dict | None = None
        self.error_layer = None
        self.ssim_layer = None
        self._watched_shapes = None
        self._region_timer = debounce(self.run_region, 250)

        self.run_button.changed.connect(self.run)
        self.rd_button.changed.connect(self.plot_rd)
        self.region.changed.connect(self._on_region_layer)
        for w in (self.reference, self.test, self.planes):
            w.changed.connect(self._on_input_changed)
        for ev in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, ev).connect(self.reset_choices)
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()
        self._pick_defaults()

    def _make_plot(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.2, 2.4), dpi=100, layout="constrained")
        self.axes = self.figure.add_subplot()
        self.axes.set_xlabel("bits per pixel", fontsize=8)
        self.axes.set_ylabel("PSNR (dB)", fontsize=8)
        self.axes.tick_params(labelsize=7)
        self.axes.set_title("rate-distortion of the reference (plane in view)", fontsize=8)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.native.layout().addWidget(self.canvas)

    def _pick_defaults(self):
        """Reference: the first image layer; test: the last other one."""
        images = [c[1] for c in layer_choices(self._viewer, "image")()]
        if len(images) >= 2 and self.reference.value is self.test.value:
            self.reference.value = images[0]
            self.test.value = images[-1]

    def _on_destroyed(self, *_):
        try:
            self._region_timer.stop()
        except RuntimeError:  # at interpreter exit Qt may have deleted the timer already
            pass
        for job in (self._job, self._region_job, self._rd_job):
            job.close()
        self._watch_shapes(None)

    def _on_input_changed(self, *_):
        self._job.cancel()
        self._region_job.cancel()

    # -- compare
    def _pair(self, all_planes: bool | None = None) -> dict:
        if self.reference.value is None or self.test.value is None:
            raise CjpgError("choose a reference and a test layer")
        if all_planes is None:
            all_planes = self.planes.value == ALL_PLANES
        return pair_layers(self._viewer, self.reference.value, self.test.value, all_planes)

    def run(self, *_):
        """PSNR, SSIM and the maps of the chosen layers (in the background)."""
        try:
            pair = self._pair()
        except CjpgError as exc:
            show_error(str(exc), self.status, "Compare layers")
            return None
        geometry, index = pair.pop("geometry"), pair.pop("index")
        ref, test = self.reference.value, self.test.value
        self.status.value = "comparing…"
        return self._job.start(compare_job, **pair, on_result=lambda r: self._show(r, ref, test, geometry, index))

    def _show(self, result: dict, ref, test, geometry, index) -> None:
        self.result = result
        where = "all planes" if index is None else (describe_index(geometry, index) or "image")
        self.results.value = (
            f"PSNR {format_db(result['psnr'])} · SSIM {format_ssim(result['ssim'])}\n"
            f"{test.name} vs {ref.name}, {where}"
            + (f" (SSIM: mean of {result['planes']} planes)" if result["planes"] > 1 else "")
            + _dtype_note(ref, test) + _geometry_note(ref, test, geometry)
        )
        self.status.value = ""
        if not self.maps.value:
            return
        if index is None:
            transform = {"scale": tuple(geometry.scale), "translate": tuple(geometry.translate)}
        else:
            transform = plane_transform(geometry)
        meta = {"reference": ref.name, "test": test.name, "plane": index}
        self.error_layer = set_or_add_image(
            self._viewer, self.error_layer, result["error_map"], name="abs error", colormap="inferno",
            contrast_limits=(0.0, result["error_limit"]), opacity=0.6, blending="translucent",
            metadata={**meta, "kind": "absolute error"}, **transform,
        )
        self.ssim_layer = set_or_add_image(
            self._viewer, self.ssim_layer, result["ssim_map"], name="SSIM map", colormap="viridis",
            contrast_limits=(0.0, 1.0), opacity=0.5, blending="translucent",
            metadata={**meta, "kind": "SSIM map"}, **transform,
        )

    # -- region
    def _on_region_layer(self, *_):
        self._watch_shapes(self.region.value)
        self._region_timer.start()

    def _watch_shapes(self, layer) -> None:
        old = self._watched_shapes
        if old is not None:
            try:
                old.events.data.disconnect(self._on_shapes_changed)
                old.events.highlight.disconnect(self._on_shapes_changed)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._watched_shapes = layer
        if layer is not None:
            layer.events.data.connect(self._on_shapes_changed)
            layer.events.highlight.connect(self._on_shapes_changed)

    def _on_shapes_changed(self, *_):
        self._region_timer.start()

    def run_region(self, *_):
        """PSNR and SSIM inside the rectangle of the region shapes layer (plane in view)."""
        shapes = self.region.value
        if shapes is None or len(shapes.data) == 0:
            self.region_results.value = "draw a rectangle in a shapes layer"
            return None
        try:
            pair = self._pair(all_planes=False)
            geometry = pair.pop("geometry")
            pair.pop("index")
            pd = 3 if pair["rgb"] else 2
            hw = tuple(np.shape(pair["ref"])[-pd:][:2])
            rows, cols = region_slices(shapes, geometry, hw)
        except CjpgError as exc:
            self.region_results.value = str(exc)
            return None
        return self._region_job.start(region_job, **pair, rows=rows, cols=cols, on_result=self._show_region)

    def _show_region(self, result: dict) -> None:
        self.region_result = result
        h, w = result["shape"]
        self.region_results.value = (
            f"PSNR {format_db(result['psnr'])} · SSIM {format_ssim(result['ssim'])}\n"
            f"rows {result['rows'].start}–{result['rows'].stop - 1}, "
            f"columns {result['cols'].start}–{result['cols'].stop - 1} ({h}×{w} px)"
        )

    # -- rate-distortion plot
    def plot_rd(self, *_):
        """Plain JPEG vs the chosen model across qualities on the reference's plane in view."""
        ref = self.reference.value
        try:
            check_layer(ref, "reference layer")
            index = current_index(self._viewer, ref)
            plane = partial(layer_plane, ref.data, index)  # read in the worker: restored, and off the GUI thread
            marker = None
            test = self.test.value
            bpp_value = (getattr(test, "metadata", None) or {}).get("bpp") if test is not None else None
            if bpp_value is not None and test is not ref:
                try:
                    pair = self._pair(all_planes=False)
                    tplane = partial(layer_plane, pair["test"], pair["test_index"])
                    meta = test.metadata
                    label = f"{test.name}: {meta.get('model', '?')} q{meta.get('quality', '?')}"
                    marker = (tplane, bpp_value, label)
                except CjpgError:
                    marker = None
        except CjpgError as exc:
            show_error(str(exc), self.status, "Rate-distortion")
            return None
        model = self.rd_model.value or "jpeg"
        self.status.value = "measuring rate-distortion…"
        return self._rd_job.start(rd_job, plane, bool(ref.rgb), model, marker=marker, on_result=self._draw_rd)

    def _draw_rd(self, result: dict) -> None:
        self.rd_result = result
        ax = self.axes
        ax.clear()
        for model, points in result["curves"].items():
            _, rates, psnrs = zip(*points)
            ax.plot(rates, psnrs, marker="o", ms=3, lw=1.2, label="plain JPEG" if model == "jpeg" else model)
        if result["mark"] is not None:
            x, y, label = result["mark"]
            ax.plot([x], [y], "*", color="crimson", ms=12, label=label)
        ax.set_xlabel("bits per pixel", fontsize=8)
        ax.set_ylabel("PSNR (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"rate-distortion of {self.reference.value.name if self.reference.value else ''}", fontsize=8)
        self.canvas.draw_idle()
        self.status.value = ""
