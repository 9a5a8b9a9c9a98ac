"""napari reader for ``.cjpg`` files (npe2 ``readers`` contribution).

A 2D file is decoded at once; a stack opens lazily as a dask array whose chunks
are single planes, so opening costs only the header and moving a slider decodes
only the plane shown.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

EXTENSION = ".cjpg"


def _is_cjpg(path) -> bool:
    try:
        return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(EXTENSION)
    except Exception:  # noqa: BLE001 - a reader hook must never raise
        return False


def napari_get_reader(path):
    """The reader function for ``path`` if it is a ``.cjpg`` file (or a list of only such), else None."""
    try:
        if isinstance(path, (list, tuple)):
            return read_cjpg if path and all(_is_cjpg(p) for p in path) else None
        return read_cjpg if _is_cjpg(path) else None
    except Exception:  # noqa: BLE001
        return None


def read_cjpg(path) -> list[tuple]:
    """Layer data tuples, one image layer per file."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    return [_read_one(Path(p)) for p in paths]


class _LazyPlanes:
    """An open :class:`~napari_cnnjpeg.codec.Reader` shared by the chunks of a dask array.

    Reads are serialised (one file handle); the file is closed when the array is
    garbage collected.
    """

    def __init__(self, reader) -> None:
        self.reader = reader
        self.lock = threading.Lock()
        self.lead = reader.shape[: len(reader.shape) - len(reader.plane_shape)]
        weakref.finalize(self, reader.close)

    def block(self, block_info=None):
        import numpy as np

        loc = block_info[None]["chunk-location"][: len(self.lead)]
        k = int(np.ravel_multi_index(loc, self.lead))
        with self.lock:
            plane = self.reader.plane(k)
        return plane.reshape((1,) * len(self.lead) + plane.shape)


def _lazy_array(reader):
    import dask.array as da

    lazy = _LazyPlanes(reader)
    chunks = tuple((1,) * n for n in lazy.lead) + tuple((n,) for n in reader.plane_shape)
    return da.map_blocks(lazy.block, chunks=chunks, dtype=reader.dtype, meta=_empty(reader.dtype))


def _empty(dtype):
    import numpy as np

    return np.empty((0,), dtype)


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
    if "contrast_limits" in info:
        lo, hi = info["contrast_limits"]
        return (float(lo), float(hi))
    if info["rgb"]:
        return None
    mapping = info.get("mapping")
    if mapping is None:
        return (0.0, 255.0)
    lo, hi = float(min(mapping["min"])), float(max(mapping["max"]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _known_colormap(name) -> bool:
    try:
        from napari.utils.colormaps import AVAILABLE_COLORMAPS

        return isinstance(name, str) and name in AVAILABLE_COLORMAPS
    except Exception:  # noqa: BLE001
        return False


def _read_one(path: Path) -> tuple:
    from .codec import Reader, describe

    reader = Reader(path)
    try:
        info = describe(reader.container)
        if len(reader) == 1:
            data = reader.read()
            reader.close()
        else:
            data = _lazy_array(reader)
    except BaseException:
        reader.close()
        raise
    rgba = info.get("rgba") is True and not info["rgb"] and len(info["shape"]) >= 3 and info["shape"][-3] == 4
    if rgba:  # written from an RGBA layer as four grey planes
        import numpy as np

        data = np.moveaxis(data, -3, -1)
        info = {**info, "rgb": True, "shape": [*info["shape"][:-3], *info["shape"][-2:], 4]}
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
    if not info["rgb"] and _known_colormap(info.get("colormap")):
        kwargs["colormap"] = info["colormap"]
    return (data, kwargs, "image")
