"""``cnnjpeg``, a numcodecs codec: each zarr chunk stored as one ``.cjpg`` (zarr format 2).

>>> import numcodecs
>>> codec = numcodecs.get_codec({"id": "cnnjpeg", "quality": 60})

The package registers it through the ``numcodecs.codecs`` entry point, so any process
where it is installed reads such arrays, with the model the chunk names.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_bytes, ndarray_copy

from ..codec import Reader, encode
from ..errors import CjpgError
from ..format.jpeg import SUBSAMPLING
from ..nn.models import model_info


#: The codec's settings, in the order of its configuration.
SETTINGS = ("quality", "model", "mapping", "channel_axis", "subsampling")


def check_config(quality: int, model: str | None, mapping, channel_axis: int | None, subsampling: str | None,
                 unknown: dict | None = None) -> dict:
    """The codec's settings, checked; a bad one (or an ``unknown`` one) is a CjpgError naming it."""
    if unknown:
        raise CjpgError(f"cnnjpeg codec: unknown setting(s) {', '.join(map(repr, sorted(unknown)))}; "
                        f"known: {', '.join(SETTINGS)}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise CjpgError(f"cnnjpeg codec: quality must be an integer from 1 to 100, got {quality!r}")
    if model is not None:
        model = model_info(model).id  # an unknown model id is refused here, not at the first chunk
    if mapping not in (None, "plane"):
        if not (isinstance(mapping, (list, tuple)) and len(mapping) == 2
                and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in mapping)
                and np.isfinite(mapping).all() and mapping[0] < mapping[1]):
            raise CjpgError(f"cnnjpeg codec: mapping must be 'plane' or a finite [min, max], got {mapping!r}")
        mapping = [float(mapping[0]), float(mapping[1])]
    if channel_axis is not None and (isinstance(channel_axis, bool) or not isinstance(channel_axis, int)):
        raise CjpgError(f"cnnjpeg codec: channel_axis must be an integer axis or None, got {channel_axis!r}")
    if subsampling is not None and subsampling not in SUBSAMPLING:
        raise CjpgError(f"cnnjpeg codec: unknown subsampling {subsampling!r}; use one of {sorted(SUBSAMPLING)}")
    return {"quality": int(quality), "model": model, "mapping": mapping or None, "channel_axis": channel_axis,
            "subsampling": subsampling}


def encode_chunk(chunk: np.ndarray, cfg: dict) -> bytes:
    """One chunk to ``.cjpg`` bytes: grey planes (..., Y, X), or RGB along ``channel_axis`` where it has length 3
    (a leading axis, or the last one of (..., Y, X, 3) chunks)."""
    chunk = np.asarray(chunk)
    if chunk.ndim < 2:
        raise CjpgError(f"cnnjpeg codec: a chunk needs 2 or more dimensions (..., Y, X), got shape {chunk.shape}")
    ax = cfg["channel_axis"]
    last = chunk.ndim >= 3 and ax is not None and ax % chunk.ndim == chunk.ndim - 1 and chunk.shape[-1] == 3
    if ax is not None and not (-chunk.ndim <= ax < chunk.ndim and (ax % chunk.ndim < chunk.ndim - 2 or last)):
        raise CjpgError(f"cnnjpeg codec: channel_axis {ax} is neither a leading axis nor the last axis of "
                        f"(..., Y, X, 3) RGB chunks; chunks here have shape {chunk.shape}")
    if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
        raise CjpgError("cnnjpeg codec: a chunk holds NaN or infinite values, which JPEG cannot store; replace them "
                        "(e.g. np.nan_to_num) and give the array a finite fill_value, which pads its edge chunks")
    rgb = ax is not None and chunk.shape[ax] == 3
    if rgb:
        chunk = np.moveaxis(chunk, ax, -1)
    mapping = (tuple(cfg["mapping"]) if cfg["mapping"] else "plane") if chunk.dtype != np.uint8 else None
    if isinstance(mapping, tuple) and chunk.dtype.kind in "iuf":
        chunk = _clip_to_range(chunk, *mapping)
    return encode(np.ascontiguousarray(chunk), quality=cfg["quality"], model=cfg["model"],
                  subsampling=cfg["subsampling"], rgb=rgb, mapping=mapping)


def _clip_to_range(chunk: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``chunk`` clipped to [lo, hi] in its own dtype, as :func:`encode` stores values outside a given range.

    Done here, without encode's warning: zarr pads edge chunks with the fill value, often outside the
    range, and silencing the warning per chunk is not thread-safe (zarr encodes chunks in threads).
    """
    info = np.iinfo(chunk.dtype) if chunk.dtype.kind in "iu" else np.finfo(chunk.dtype)
    if chunk.dtype.kind in "iu":
        lo, hi = math.ceil(lo), math.floor(hi)
    lo, hi = (min(max(v, info.min), info.max) for v in (lo, hi))  # a range beyond the dtype is encode's to refuse
    return np.clip(chunk, lo, hi)


def decode_chunk(data: bytes, cfg: dict) -> np.ndarray:
    """``.cjpg`` bytes back to the chunk, decoded with the model the file names."""
    try:
        with Reader(data) as reader:
            out, rgb = reader.read(), bool(reader.meta["rgb"])
    except CjpgError as exc:  # zarr does not tell a codec which chunk it decodes
        raise CjpgError(f"cnnjpeg codec: a chunk cannot be decoded: {exc}; "
                        "napari_cnnjpeg.scale.verify.bad_chunks(array or path) names every such chunk") from None
    if rgb and cfg["channel_axis"] is not None:
        out = np.moveaxis(out, -1, cfg["channel_axis"])
    return out


class CnnJpeg(Codec):
    """numcodecs codec ``cnnjpeg``.

    Parameters
    ----------
    quality : int
        JPEG quality, 1-100.
    model : str, optional
        Model id (:func:`napari_cnnjpeg.available_models`); default: the default model.
    mapping : "plane" or [min, max], optional
        Data other than uint8: each plane's own min/max (default), or one range for every
        chunk, so that chunks share a scale (OME-Zarr conversion uses the array's range).
        Such data is stored as 12-bit JPEG unless ``model`` names a network model
        (see :func:`napari_cnnjpeg.encode`).
    channel_axis : int, optional
        The chunk axis that holds RGB where its length is 3: ``-3`` for (C, Y, X) chunks, ``-1``
        for (Y, X, 3) chunks. Without it, the last two axes of every chunk are Y and X.
    subsampling : str, optional
        Chroma subsampling of RGB chunks (default: :func:`napari_cnnjpeg.codec.default_subsampling`).
    """

    codec_id = "cnnjpeg"

    def __init__(self, quality: int = 75, model: str | None = None, mapping=None, channel_axis: int | None = None,
                 subsampling: str | None = None, **unknown):
        cfg = check_config(quality, model, mapping, channel_axis, subsampling, unknown)
        self.quality, self.model, self.mapping = cfg["quality"], cfg["model"], cfg["mapping"]
        self.channel_axis, self.subsampling = cfg["channel_axis"], cfg["subsampling"]

    def _cfg(self) -> dict:
        return {"quality": self.quality, "model": self.model, "mapping": self.mapping,
                "channel_axis": self.channel_axis, "subsampling": self.subsampling}

    def get_config(self) -> dict:
        return {"id": self.codec_id, **self._cfg()}

    def encode(self, buf) -> bytes:
        buf = np.asarray(buf)
        if not buf.dtype.isnative:  # zarr 2 reads the decoded bytes in the array's byte order
            raise CjpgError(f"cnnjpeg codec: arrays of non-native byte order ({buf.dtype.str}) cannot be stored "
                            f"with zarr format 2; use {buf.dtype.newbyteorder('=').str} or zarr format 3")
        return encode_chunk(buf, self._cfg())

    def decode(self, buf, out=None):
        arr = decode_chunk(ensure_bytes(buf), self._cfg())
        return ndarray_copy(arr, out) if out is not None else arr
