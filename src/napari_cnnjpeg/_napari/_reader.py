"""napari reader for ``.cjpg`` files (npe2 ``readers`` contribution).

A 2D file is decoded at once; a stack opens lazily as a :class:`ProgressiveStack`:
opening costs only the header, and moving a slider shows the plane's plain JPEG decode
at once while the decoder network restores it off napari's GUI thread.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

EXTENSION = ".cjpg"


def _is_cjpg(path) -> bool:
    """Whether ``path`` names a local ``.cjpg`` file (not a folder, not a URL: those are not read)."""
    try:
        if not isinstance(path, (str, os.PathLike)):
            return False
        name = os.fspath(path)
        return name.lower().endswith(EXTENSION) and "://" not in name and not os.path.isdir(name)
    except Exception:  # noqa: BLE001 - a reader hook must never raise
        return False


def _natural_key(path: Path):
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def cjpg_files_in(folder) -> list[Path]:
    """The ``.cjpg`` files directly inside a local folder, in natural order (plane2 before plane10);
    [] for anything else."""
    try:
        if not isinstance(folder, (str, os.PathLike)) or "://" in os.fspath(folder) or not os.path.isdir(folder):
            return []
        return sorted((p for p in Path(folder).iterdir() if _is_cjpg(p) and p.is_file()), key=_natural_key)
    except Exception:  # noqa: BLE001 - a reader hook must never raise (e.g. a folder it may not list)
        return []


def napari_get_reader(path):
    """The reader function for ``path`` if it is a ``.cjpg`` file (or a list of only such), or a folder
    holding ``.cjpg`` files (dropped on napari: one layer per file), else None."""
    try:
        if isinstance(path, (list, tuple)):
            if len(path) == 1 and cjpg_files_in(path[0]):
                return read_cjpg
            return read_cjpg if path and all(_is_cjpg(p) for p in path) else None
        return read_cjpg if _is_cjpg(path) or cjpg_files_in(path) else None
    except Exception:  # noqa: BLE001
        return None


def read_cjpg(path) -> list[tuple]:
    """Layer data tuples: one image layer per file (of a folder: per ``.cjpg`` file in it); several
    files, which napari passes only when asked to open them as a stack (File > Open Files as
    Stack...), become one layer along a new first axis where they agree in shape and dtype."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    files = []
    for p in paths:
        files.extend(cjpg_files_in(p) if os.path.isdir(p) else [Path(p)])
    if isinstance(path, (list, tuple)) and len(files) > 1 and all(not os.path.isdir(p) for p in paths):
        stacked = _read_stacked(files)
        if stacked is not None:
            return [stacked]
    return [_read_one(f) for f in files]


def _read_stacked(files: list[Path]) -> tuple | None:
    """One lazy layer of ``files`` (a dask array, a file decoded when napari shows it), or None
    with a napari warning where they differ in shape, dtype or colour layout."""
    import dask
    import dask.array as da
    import numpy as np

    from ..codec import IMAGE_KEYS, Container, describe, image_meta_problem, imread

    infos = []
    for f in files:
        with Container.open(f) as c:
            info = describe(c)
        infos.append({k: v for k, v in info.items() if k not in IMAGE_KEYS or image_meta_problem(k, v) is None})
    first = infos[0]
    layout = lambda i: (tuple(i["shape"]), i["dtype"], bool(i["rgb"]), i.get("rgba") is True)  # noqa: E731
    odd = next((f for f, i in zip(files, infos) if layout(i) != layout(first)), None)
    if odd is not None or first.get("rgba") is True:
        if odd is not None:
            _warn(f"napari-cnnjpeg opened {len(files)} files as separate layers, not as a stack: {odd.name} is "
                  f"{infos[files.index(odd)]['dtype']} {tuple(infos[files.index(odd)]['shape'])}, {files[0].name} "
                  f"{first['dtype']} {tuple(first['shape'])}")
        return None
    shape, dtype = tuple(first["shape"]), np.dtype(first["dtype"])
    planes = [da.from_delayed(dask.delayed(imread)(f), shape=shape, dtype=dtype) for f in files]
    data = da.stack(planes)
    kwargs = _layer_kwargs(first, files[0])
    limits = [_contrast_limits(i) for i in infos]
    if all(lim is not None for lim in limits):
        kwargs["contrast_limits"] = (min(lo for lo, _ in limits), max(hi for _, hi in limits))
    for key, extra in (("scale", 1.0), ("translate", 0.0), ("axis_labels", "file"), ("units", "pixel")):
        if key in kwargs:
            kwargs[key] = (extra, *kwargs[key])
    kwargs["metadata"]["source_paths"] = [str(f) for f in files]
    return (data, kwargs, "image")


def _warn(message: str) -> None:
    try:
        from napari.utils.notifications import show_warning
    except ImportError:
        return
    show_warning(message)


class ProgressiveStack:
    """A ``.cjpg`` stack as napari slices it: plane by plane, never waiting on a network.

    On the main (GUI) thread, indexing one plane returns it at once: restored if the
    decoder network has finished it, else its plain JPEG decode (milliseconds), while a
    background thread restores it and then refreshes the layers showing this stack. Only
    the latest requested planes are restored (a fast scroll skips the planes it passed).
    On other threads indexing waits for the restored planes, as do ``np.asarray(stack)``,
    :meth:`plane` and :attr:`exact` on any thread. Reads of the file are serialised; the
    file closes when the stack is garbage collected.
    """

    CACHE_BYTES = 256 * 2**20

    def __init__(self, reader) -> None:
        from collections import OrderedDict, deque
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        self.reader = reader
        self.shape = tuple(reader.shape)
        self.dtype = np.dtype(reader.dtype)
        self.ndim = len(self.shape)
        self.lead = self.shape[: self.ndim - len(reader.plane_shape)]
        self._lock = threading.Lock()  # the file handle and the cache
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._wanted: deque[int] = deque(maxlen=2)
        self._last_shown = -1
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="cnnjpeg-restore") if reader.restores else None
        weakref.finalize(self, _close, reader, self._pool)
        if self._pool is not None:  # the runtime's first session and run, before the slider moves
            self._pool.submit(self._warm_up)

    @property
    def size(self) -> int:
        import math

        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _payload(self, k: int) -> bytes:
        with self._lock:
            return self.reader.container.payload(k)

    def plane(self, k: int):
        """Plane ``k`` (C order of the leading axes), restored: waits for the network."""
        with self._lock:
            if k in self._cache:
                return self._cache[k]
        out = self.reader.decode_payload(k, self._payload(k))
        self._remember(k, out)
        return out

    def _remember(self, k: int, plane) -> None:
        with self._lock:
            self._cache[k] = plane
            self._cache.move_to_end(k)
            while len(self._cache) > 1 and sum(p.nbytes for p in self._cache.values()) > self.CACHE_BYTES:
                self._cache.popitem(last=False)

    def shown(self, k: int):
        """Plane ``k`` for display now: restored if ready, else the plain decode with a restore queued."""
        with self._lock:
            if k in self._cache:
                self._cache.move_to_end(k)
                return self._cache[k]
        self._last_shown = k
        if self._pool is None:  # no network: the plain decode is the plane
            return self.plane(k)
        preview = self.reader.decode_payload(k, self._payload(k), restore=False)
        if k not in self._wanted:
            self._wanted.append(k)
            self._pool.submit(self._restore, k)
        return preview

    def _warm_up(self) -> None:
        import numpy as np

        from ..format.jpeg import quant_tables
        from ..nn.inference import limit_threads

        try:
            luma, chroma = quant_tables(self._payload(0))
            shape = (64, 64, 3) if self.reader.meta["rgb"] else (64, 64)
            with limit_threads((os.cpu_count() or 2) - 1):
                zeros = np.zeros(shape, np.uint16 if self.reader.bits == 12 else np.uint8)
                self.reader.stages.post(zeros, luma, chroma if len(shape) == 3 else None, rounded=True)
        except Exception:  # noqa: BLE001 - only a warm-up: a real failure shows on the plane that has it
            pass

    def _restore(self, k: int) -> None:
        from ..nn.inference import limit_threads

        if k not in self._wanted:  # scrolled past before its turn
            return
        try:
            with limit_threads((os.cpu_count() or 2) - 1):  # a core stays with napari's GUI thread
                self.plane(k)
        except Exception:  # noqa: BLE001 - the next display of this plane reports it (plane() raises there)
            return
        finally:
            if k in self._wanted:
                self._wanted.remove(k)
        if k == self._last_shown:  # a plane the slider has left is not re-sliced
            _refresh_layers_showing(self)

    @property
    def exact(self) -> _ExactView:
        """The same stack with indexing that always waits for the restored planes (on any thread)."""
        return _ExactView(self)

    def __getitem__(self, key):
        return self._index(key, threading.current_thread() is threading.main_thread())

    def _index(self, key, gui: bool):
        import itertools

        import numpy as np

        key = key if isinstance(key, tuple) else (key,)
        nl = len(self.lead)
        if any(k is Ellipsis or k is None for k in key) or not all(
            isinstance(k, (int, np.integer, slice)) for k in key[:nl]
        ):
            return np.asarray(self)[key]
        lead_key = key[:nl] + (slice(None),) * (nl - len(key[:nl]))
        axes = []
        for k, n in zip(lead_key, self.lead):
            if isinstance(k, slice):
                axes.append(range(n)[k])
            else:
                i = int(k) + (n if int(k) < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(k)} is out of bounds for an axis of size {n}")
                axes.append(i)
        kept = [len(a) for a in axes if isinstance(a, range)]
        count = int(np.prod(kept)) if kept else 1
        # napari slices on its GUI thread: there, one plane (or a thin slice) shows progressively;
        # elsewhere (widget workers, scripts, napari's async slicing) indexing waits for the network
        progressive = count <= 2 and gui
        get = self.shown if progressive else self.plane
        out = np.empty(tuple(kept) + tuple(self.reader.plane_shape), self.dtype)
        ranges = [a if isinstance(a, range) else [a] for a in axes]
        for pos in itertools.product(*ranges):
            where = tuple(r.index(p) for r, p in zip(ranges, pos) if isinstance(r, range))
            out[where] = get(int(np.ravel_multi_index(pos, self.lead)))
        return out[(slice(None),) * len(kept) + key[nl:]]

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        out = np.empty(self.shape, self.dtype)
        flat = out.reshape((-1,) + tuple(self.reader.plane_shape))
        for k in range(len(flat)):
            flat[k] = self.plane(k)
        return out if dtype is None else out.astype(dtype)


class _ExactView:
    """A :class:`ProgressiveStack` whose indexing always gives restored planes (for writers)."""

    def __init__(self, stack: ProgressiveStack) -> None:
        self.stack = stack
        self.shape, self.dtype, self.ndim = stack.shape, stack.dtype, stack.ndim

    def __getitem__(self, key):
        return self.stack._index(key, gui=False)

    def __array__(self, dtype=None, copy=None):
        return self.stack.__array__(dtype)


class ChannelsLast:
    """A stack stored as (..., C, Y, X) grey planes (an RGBA layer is written as four) shown as
    (..., Y, X, C), as lazily as the stack it wraps (a :class:`ProgressiveStack` or its exact view)."""

    def __init__(self, stack) -> None:
        self.stack = stack
        s = tuple(stack.shape)
        self.shape, self.dtype, self.ndim = (*s[:-3], s[-2], s[-1], s[-3]), stack.dtype, len(s)

    @property
    def size(self) -> int:
        import math

        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def exact(self) -> "ChannelsLast":
        """The same with indexing that always waits for the restored planes."""
        return ChannelsLast(self.stack.exact if isinstance(self.stack, ProgressiveStack) else self.stack)

    def __getitem__(self, key):
        import numpy as np

        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim or not all(isinstance(k, (int, np.integer, slice)) for k in key):
            return np.asarray(self)[key]
        key = key + (slice(None),) * (self.ndim - len(key))
        lead, (y, x, c) = key[:-3], key[-3:]
        out = self.stack[(*lead, c, y, x)]
        if isinstance(c, slice):  # the channel axis, kept, goes last
            out = np.moveaxis(out, sum(isinstance(k, slice) for k in lead), -1)
        return out

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        out = np.moveaxis(np.asarray(self.stack), -3, -1)
        return out if dtype is None else out.astype(dtype)


def _close(reader, pool) -> None:
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    reader.close()


def _refresh_layers_showing(stack: ProgressiveStack) -> None:
    """On napari's GUI thread, refresh the layers whose data is ``stack`` (from a worker thread)."""
    try:
        from qtpy.QtWidgets import QApplication
        from superqt.utils import ensure_main_thread
    except ImportError:
        return
    if QApplication.instance() is None:
        return

    @ensure_main_thread
    def refresh() -> None:
        from napari import current_viewer

        viewer = current_viewer()
        for layer in viewer.layers if viewer is not None else ():
            if layer.data is stack or getattr(layer.data, "stack", None) is stack:  # ChannelsLast wraps it
                layer.refresh()

    refresh()


def _plain(value):
    """JSON-ish metadata values as plain Python (tuples for napari)."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def layer_metadata(info: dict, path: Path | None = None) -> dict:
    """What a layer opened from a ``.cjpg`` keeps in ``layer.metadata``."""
    keep = ("format_version", "model", "model_sha256", "quality", "subsampling", "shape", "dtype", "rgb",
            "axes", "planes", "bytes", "bpp", "downscale")
    meta = {k: _plain(info[k]) for k in keep if k in info}
    meta["dtype"] = info.get("dtype")  # the original dtype (uint16 data comes back as uint16)
    if path is not None:
        meta["source_path"] = str(path)
    return meta


def _contrast_limits(info: dict):
    import numpy as np

    if "contrast_limits" in info:
        lo, hi = info["contrast_limits"]
        return (float(lo), float(hi))
    if info["rgb"]:
        return None
    mapping = info.get("mapping")
    if mapping is None:
        return (0.0, 255.0)
    lo, hi = float(min(mapping["min"])), float(max(mapping["max"]))
    kind = np.dtype(info["dtype"])
    if kind.kind in "iu":  # a mapping may start below an integer dtype's least value (DC alignment)
        lo = max(lo, float(np.iinfo(kind).min))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _known_colormap(name) -> bool:
    try:
        from napari.utils.colormaps import AVAILABLE_COLORMAPS

        return isinstance(name, str) and name in AVAILABLE_COLORMAPS
    except Exception:  # noqa: BLE001
        return False


def _read_one(path: Path) -> tuple:
    from ..codec import IMAGE_KEYS, Reader, describe, image_meta_problem

    reader = Reader(path)
    try:
        info = describe(reader.container)
        info = {k: v for k, v in info.items() if k not in IMAGE_KEYS or image_meta_problem(k, v) is None}
        if len(reader) == 1:
            data = reader.read()
            reader.close()
        else:
            data = ProgressiveStack(reader)
    except BaseException:
        reader.close()
        raise
    rgba = info.get("rgba") is True and not info["rgb"] and len(info["shape"]) >= 3 and info["shape"][-3] == 4
    if rgba:  # written from an RGBA layer as four grey planes
        import numpy as np

        data = ChannelsLast(data) if isinstance(data, ProgressiveStack) else np.moveaxis(data, -3, -1)
        info = {**info, "rgb": True, "shape": [*info["shape"][:-3], *info["shape"][-2:], 4]}
    return (data, _layer_kwargs(info, path), "image")


def _layer_kwargs(info: dict, path: Path) -> dict:
    """The image layer's keyword arguments for a file described by ``info``."""
    import numpy as np

    kwargs = {
        "name": info.get("name") or path.stem,
        "rgb": bool(info["rgb"]),
        "multiscale": False,
        "metadata": layer_metadata(info, path),
    }
    limits = _contrast_limits(info)
    if limits is not None:
        kwargs["contrast_limits"] = limits
    ndim = len(info["shape"]) - (1 if info["rgb"] else 0)
    for key in ("scale", "translate", "axis_labels", "units"):
        value = info.get(key)
        if isinstance(value, list) and len(value) == ndim:
            kwargs[key] = tuple(value)
    # rotate (ndim x ndim), shear (napari's ndim * (ndim - 1) / 2 upper-triangle values), affine (ndim + 1 square)
    for key, size in (("rotate", ndim), ("shear", ndim * (ndim - 1) // 2), ("affine", ndim + 1)):
        value = info.get(key)
        if isinstance(value, list) and len(value) == size:
            kwargs[key] = np.asarray(value, dtype=float)
    if not info["rgb"] and _known_colormap(info.get("colormap")):
        kwargs["colormap"] = info["colormap"]
    for key in ("blending", "opacity", "gamma"):  # checked by the codec (image_meta_problem)
        if key in info:
            kwargs[key] = info[key]
    if "units" in kwargs and not _known_units(kwargs["units"]):
        _warn(f"napari-cnnjpeg left out {path.name}'s units {kwargs.pop('units')!r}: napari does not know them")
    shape = [d for i, d in enumerate(info["shape"]) if not (info["rgb"] and i == len(info["shape"]) - 1)]
    if problem := _transform_problem(kwargs, shape):
        kept = {k: kwargs.pop(k) for k in TRANSFORMS if k in kwargs}
        _warn(f"napari-cnnjpeg opened {path.name} without its {', '.join(kept)} ({problem})")
    return kwargs


#: The layer transforms a file may hold (``image`` metadata), as napari's keyword arguments.
TRANSFORMS = ("scale", "translate", "rotate", "shear", "affine")
#: Most slider positions (world extent over napari's step) a transformed axis may take: Qt's sliders hold
#: 32-bit integers, and napari's viewer broke on a shear of 1e9.
MAX_STEPS = 2**30


def _known_units(units) -> bool:
    """Whether napari parses each of ``units`` (pint unit names; the codec already refuses powers)."""
    try:
        from napari.utils.transforms._units import get_units_from_name  # private: may move in a later napari
    except ImportError:
        return True  # napari itself then judges them when the layer is made
    try:
        get_units_from_name(units)
    except Exception:  # noqa: BLE001 - pint raises its own errors, and AssertionError on odd expressions
        return False
    return True


def _transform_problem(kwargs: dict, shape) -> str | None:
    """Why napari could not show a layer of ``shape`` under the file's transforms in ``kwargs``, or None:
    a zero or non-finite scale, a singular transform, or a world extent of more slider steps than Qt holds
    (crafted files made napari raise, or left its viewer broken)."""
    import numpy as np

    if not any(k in kwargs for k in TRANSFORMS):
        return None
    try:
        from napari.utils.transforms import Affine

        ndim = len(shape)
        with np.errstate(all="ignore"):
            physical = Affine(scale=kwargs.get("scale", (1.0,) * ndim),
                              translate=kwargs.get("translate", (0.0,) * ndim),
                              rotate=kwargs.get("rotate"), shear=kwargs.get("shear"), ndim=ndim)
            matrix = physical.affine_matrix
            if "affine" in kwargs:
                matrix = np.asarray(kwargs["affine"], dtype=float) @ matrix
            if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:-1, :-1])) == 0:
                return "a transform that is singular or not finite"
            step = np.abs(Affine(affine_matrix=matrix, ndim=ndim).scale)
            span = np.abs(matrix[:-1, :-1]) @ np.asarray(shape, dtype=float) + np.abs(matrix[:-1, -1])
            steps = span / step
    except Exception as exc:  # noqa: BLE001 - napari's decomposition of a crafted matrix
        return f"a transform napari cannot take: {exc}"
    if not (np.isfinite(steps).all() and (step > 0).all() and (steps <= MAX_STEPS).all()):
        return "a transform too degenerate or too large for napari's viewer"
    return None
