"""Convert an image, a TIFF stack or a ``.cjpg`` file to OME-Zarr compressed with the ``cnnjpeg`` codec.

The output is OME-Zarr 0.5 (zarr format 3): level ``0`` at full resolution and a pyramid
halving Y and X, each level's chunks stored by :class:`~.zarr3_codec.CnnJpegCodec`.
``ome-zarr`` writes the multiscales metadata. Inputs are read lazily (dask), one chunk at
a time, on this machine's threads (also where a dask.distributed client is active: a TIFF reader does not
pickle, and the output is a local folder), and the result appears under its final name only when complete;
a rerun removes what a killed one left (:func:`sweep_stale`).
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import CjpgError

#: OME-Zarr axis order; every input is transposed to the subset of it that it has.
OME_ORDER = "tczyx"
#: Input axis letters (tifffile's, and the .cjpg ``axes`` field) and their OME-Zarr names.
AXIS_NAMES = {"T": "t", "C": "c", "S": "c", "Z": "z", "Y": "y", "X": "x"}


def open_lazy(path: str | os.PathLike):
    """An input as (dask array, axis letters, is-RGB, physical scale per axis letter, OME-NGFF unit per axis letter)."""
    import dask.array as da

    p = Path(path)
    if p.is_dir():
        raise CjpgError(f"{path} is a folder: convert takes an image file, a TIFF stack or a .cjpg")
    if not p.is_file():
        raise CjpgError(f"no such file: {path}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".cjpg":
            return _open_cjpg(p)
        if suffix in (".tif", ".tiff"):
            import tifffile
            import zarr

            with tifffile.TiffFile(p) as tif:
                series = tif.series[0]
                axes = series.axes
                sizes = _tiff_pixel_sizes(tif)
                units = _tiff_units(tif, sizes)
            arr = da.from_zarr(zarr.open_array(tifffile.imread(p, aszarr=True), mode="r"))
            return arr, axes, "S" in axes and arr.shape[axes.index("S")] == 3, sizes, units
        from PIL import Image

        with Image.open(p) as im:
            if im.mode not in ("L", "RGB", "I;16", "I;16B", "F"):
                im = im.convert("RGB")
            a = np.asarray(im)
    except CjpgError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear line
        raise CjpgError(f"cannot read image {path}: {exc}") from None
    rgb = a.ndim == 3
    return da.from_array(a), "YXS" if rgb else "YX", rgb, {}, {}


def _tiff_pixel_sizes(tif) -> dict:
    """Physical pixel sizes by axis letter ("Z", "Y", "X") that an OME-TIFF or ImageJ TIFF records."""
    sizes = {}
    if tif.ome_metadata:
        import xml.etree.ElementTree as ET

        try:
            pixels = next(e for e in ET.fromstring(tif.ome_metadata).iter() if e.tag.endswith("Pixels"))
        except (ET.ParseError, StopIteration):
            return {}
        for letter in "ZYX":
            value = pixels.get(f"PhysicalSize{letter}")
            try:
                if value is not None and float(value) > 0 and np.isfinite(float(value)):
                    sizes[letter] = float(value)
            except ValueError:
                pass
    elif tif.imagej_metadata:
        spacing = tif.imagej_metadata.get("spacing")
        if isinstance(spacing, (int, float)) and spacing > 0:
            sizes["Z"] = float(spacing)
        page = tif.pages[0]
        for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
            res = page.tags.get(tag)
            if res is not None and res.value[0] > 0 and res.value[1] > 0:
                sizes[letter] = res.value[1] / res.value[0]
    return sizes


#: OME-NGFF's names (UDUNITS-2) of the length units microscopy files record, by their usual spellings.
LENGTH_UNITS = {
    "µm": "micrometer", "\u03bcm": "micrometer", "um": "micrometer", "micron": "micrometer", "microns": "micrometer",
    "micrometer": "micrometer", "nm": "nanometer", "nanometer": "nanometer", "mm": "millimeter",
    "millimeter": "millimeter", "cm": "centimeter", "centimeter": "centimeter", "m": "meter", "meter": "meter",
    "å": "angstrom", "angstrom": "angstrom", "pm": "picometer", "picometer": "picometer",
}


def ngff_unit(name) -> str | None:
    """OME-NGFF's name of a length unit as a file spells it (``"µm"``, ``"micron"``, ImageJ's
    ``"\\u00B5m"``...); None where it is not one."""
    if not isinstance(name, str):
        return None
    return LENGTH_UNITS.get(name.strip().lower().replace("\\u00b5", "µ"))


def _tiff_units(tif, sizes: dict) -> dict:
    """The OME-NGFF unit of each axis letter with a pixel size (``sizes``): an OME-TIFF's
    ``PhysicalSize?Unit`` (default µm, as OME's schema says), or an ImageJ TIFF's ``unit``."""
    if tif.ome_metadata:
        import xml.etree.ElementTree as ET

        try:
            pixels = next(e for e in ET.fromstring(tif.ome_metadata).iter() if e.tag.endswith("Pixels"))
        except (ET.ParseError, StopIteration):
            return {}
        found = {a: ngff_unit(pixels.get(f"PhysicalSize{a}Unit", "µm")) for a in sizes}
    else:
        unit = ngff_unit((tif.imagej_metadata or {}).get("unit"))
        found = {a: unit for a in sizes}
    return {a: u for a, u in found.items() if u}


def _open_cjpg(p: Path):
    import dask
    import dask.array as da

    from ..codec import Reader, read_plane

    with Reader(p) as r:
        meta, shape, plane_shape, dtype, n = r.meta, r.shape, r.plane_shape, r.dtype, len(r)
    planes = [da.from_delayed(dask.delayed(read_plane)(str(p), k), plane_shape, dtype) for k in range(n)]
    arr = da.stack(planes).reshape(shape)
    rgb = bool(meta["rgb"])
    axes = meta.get("axes") or ("Q" * (len(shape) - (3 if rgb else 2)) + ("YXS" if rgb else "YX"))
    axes = axes.upper().replace("C", "S") if rgb and axes.upper().endswith("C") else axes.upper()
    image = meta.get("image") or {}
    spatial = [a for a in axes if a != "S"]  # napari's scale and units: one entry per non-RGB axis
    scale = dict(zip(spatial, image["scale"])) if image.get("scale") else {}
    units = {a: ngff_unit(u) for a, u in zip(spatial, image.get("units") or ())}
    return arr, axes, rgb, scale, {a: u for a, u in units.items() if u and a in scale}


def to_ome_axes(arr, axes: str):
    """Transpose to OME-Zarr order (t, c, z, y, x subset); unnamed leading axes become z or t."""
    names = ome_names(axes)
    order = sorted(range(len(names)), key=lambda i: OME_ORDER.index(names[i]))
    return arr.transpose(order), "".join(names[i] for i in order)


def ome_names(axes: str) -> list[str]:
    """The OME-Zarr name (t, c, z, y or x) of each input axis letter, in the input's order."""
    names = []
    for a in axes:
        if a in AXIS_NAMES:
            names.append(AXIS_NAMES[a])
        elif "z" not in names and "z" not in [AXIS_NAMES.get(b) for b in axes]:
            names.append("z")
        elif "t" not in names and "t" not in [AXIS_NAMES.get(b) for b in axes]:
            names.append("t")
        else:
            raise CjpgError(f"cannot map the axes {axes!r} to OME-Zarr's t, c, z, y, x")
    if len(set(names)) != len(names) or names[-2:] != ["y", "x"] and not (names[-3:] == ["y", "x", "c"]):
        raise CjpgError(f"cannot map the axes {axes!r} to OME-Zarr's t, c, z, y, x")
    return names


def pyramid(level0, ome_axes: str, chunk: int, max_levels: int = 8) -> list:
    """Level 0 and halvings of Y and X (2x2 means, in the input's dtype) until a level fits one chunk."""
    import dask.array as da

    y, x = ome_axes.index("y"), ome_axes.index("x")
    levels = [level0]
    while len(levels) < max_levels and max(levels[-1].shape[y], levels[-1].shape[x]) > chunk:
        prev = levels[-1]
        if min(prev.shape[y], prev.shape[x]) < 2:
            break
        mean = da.coarsen(np.mean, prev.astype(np.float64), {y: 2, x: 2}, trim_excess=True)
        if np.issubdtype(prev.dtype, np.integer):
            info = np.iinfo(prev.dtype)
            mean = da.clip(da.round(mean), info.min, info.max)
        levels.append(mean.astype(prev.dtype))
    return levels


def level_transforms(n: int, ome_axes: str, sizes: dict) -> list[list[dict]]:
    """OME-Zarr coordinate transformations of ``n`` pyramid levels: level i halves Y and X i times
    (2x2 means, odd edges trimmed), so its pixel is 2**i level-0 pixels and its centre lies
    (2**i - 1) / 2 of them in; both in physical units (``sizes``: pixel size per OME axis name)."""
    out = []
    for i in range(n):
        factor = [2.0**i if a in "yx" else 1.0 for a in ome_axes]
        size = [float(sizes.get(a, 1.0)) for a in ome_axes]
        out.append([{"type": "scale", "scale": [f * d for f, d in zip(factor, size)]},
                    {"type": "translation", "translation": [(f - 1) / 2 * d for f, d in zip(factor, size)]}])
    return out


def convert(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    quality: int = 75,
    model: str | None = None,
    chunk: int = 512,
    overwrite: bool = False,
    progress: bool | Callable = False,
) -> dict:
    """Write ``src`` (image, TIFF stack or ``.cjpg``) as OME-Zarr at ``out``.

    Parameters
    ----------
    src : path
        The input: PNG/JPEG/... image, TIFF (stacks keep their axes) or ``.cjpg``.
    out : path
        The output folder, e.g. ``image.ome.zarr``; refused if it exists, unless ``overwrite``,
        and always if it holds ``src``. The temporary folders a killed run left beside it are removed.
    quality, model
        As :func:`napari_cnnjpeg.encode`. Data other than uint8 is mapped with one range,
        the array's min and max, for every chunk and level.
    chunk : int
        Chunk size along Y and X (16 to 8192).
    overwrite : bool
        Replace an existing output (only once the new one is complete).
    progress : bool
        Show a tqdm progress bar over the chunks written.

    Returns
    -------
    dict
        ``path``, ``axes``, ``shapes`` (one per level), ``dtype``, ``mapping``, ``bytes`` written.
    """
    import dask
    import dask.array as da
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    from .numcodecs_codec import check_config
    from .zarr3_codec import CnnJpegCodec

    out = Path(os.path.abspath(out))  # "." and ".." named by what they are
    if not out.name:
        raise CjpgError(f"cannot write the output to {out}: name a folder inside it")
    sweep_stale(out)
    if out.exists() and not overwrite:
        raise CjpgError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    if Path(src).resolve().is_relative_to(out.resolve()):
        raise CjpgError(f"{out} holds the input {src}: write the output elsewhere")
    if not (out.parent or Path(".")).is_dir():
        raise CjpgError(f"cannot write {out}: there is no folder {out.parent}")
    if not isinstance(chunk, int) or not 16 <= chunk <= 8192:
        raise CjpgError(f"chunk must be an integer from 16 to 8192, got {chunk!r}")
    check_config(quality, model, None, None, "4:2:0")
    arr, axes, rgb, scale, units = open_lazy(src)
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise CjpgError(f"unsupported dtype {arr.dtype} in {src}")
    level0, ome_axes = to_ome_axes(arr, axes)
    mapping = None
    if level0.dtype != np.uint8:
        lo, hi = (float(v) for v in dask.compute(level0.min(), level0.max(), scheduler="threads"))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise CjpgError(f"{src} holds NaN or infinite values, which JPEG cannot store")
        mapping = [lo, hi if hi > lo else lo + 1]
    c_axis = ome_axes.index("c") if "c" in ome_axes else None
    rgb = rgb and c_axis is not None and level0.shape[c_axis] == 3
    codec = CnnJpegCodec(quality=quality, model=model, mapping=mapping,
                         channel_axis=c_axis - len(ome_axes) if rgb else None)
    levels = pyramid(level0, ome_axes, chunk)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        stores = []
        for i, level in enumerate(levels):
            chunks = tuple(
                chunk if a in "yx" else (3 if (a == "c" and rgb) else 1) for a in ome_axes
            )
            chunks = tuple(min(c, s) for c, s in zip(chunks, level.shape))
            target = group.create_array(str(i), shape=level.shape, chunks=chunks, dtype=level.dtype,
                                        serializer=codec, compressors=None, fill_value=0,
                                        dimension_names=list(ome_axes))
            stores.append(da.store(level.rechunk(chunks), target, lock=False, compute=False))
        _compute(stores, progress)
        fmt = FormatV05()
        letter = dict(zip(ome_names(axes), axes))  # input axis letter by OME axis name
        sizes = {name: scale[a] for name, a in letter.items() if a in scale}
        transforms = level_transforms(len(levels), ome_axes, sizes)
        write_multiscales_metadata(
            group, [{"path": str(i), "coordinateTransformations": t} for i, t in enumerate(transforms)],
            fmt=fmt, axes=[_axis_meta(a, units.get(letter.get(a))) for a in ome_axes], name=Path(src).stem,
            metadata={"omero": omero(level0, ome_axes, rgb, mapping)},
        )
        if out.exists() or out.is_symlink():
            _replace(tmp, out)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"path": str(out), "axes": ome_axes, "shapes": [list(lv.shape) for lv in levels], "dtype": str(level0.dtype),
            "mapping": mapping, "bytes": size}


#: Channel colours of the ``omero`` block: RGB's, else grey for one channel and these for several.
CHANNEL_COLOURS = ("FF00FF", "00FF00", "00FFFF", "FF0000", "0000FF", "FFFF00")


def omero(level0, ome_axes: str, rgb: bool, mapping: list[float] | None) -> dict:
    """The ``omero`` block of the output: one channel per index of its ``c`` axis (one without), coloured red,
    green, blue for RGB, grey for a single channel, and shown over the data's range (``mapping``; the dtype's
    for uint8), so that viewers (napari-ome-zarr) open RGB as a colour composite and 16-bit data with its
    contrast rather than a guess."""
    n = level0.shape[ome_axes.index("c")] if "c" in ome_axes else 1
    lo, hi = mapping or (0.0, 255.0)
    colours = ("FF0000", "00FF00", "0000FF") if rgb else ("FFFFFF",) if n == 1 else CHANNEL_COLOURS
    labels = ("red", "green", "blue") if rgb else [f"channel {k}" for k in range(n)]
    return {"rdefs": {"model": "color"}, "channels": [
        {"label": labels[k], "color": colours[k % len(colours)], "active": True,
         "window": {"min": lo, "max": hi, "start": lo, "end": hi}} for k in range(n)]}


def sweep_stale(out: str | os.PathLike) -> list[Path]:
    """Remove what a killed :func:`convert` to ``out`` left (``.<name>.tmp-*`` folders, never under their final
    name) and return them; an old output a kill left set aside (``.<name>.old-*``) is put back where ``out``
    is missing, else removed."""
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        return []
    removed = []
    for p in sorted(parent.glob(f".{glob.escape(out.name)}.old-*")):
        if not (out.exists() or out.is_symlink()):
            p.rename(out)  # killed between setting the old output aside and putting the new one in place
            continue
        _remove(p)
        removed.append(p)
    for p in sorted(parent.glob(f".{glob.escape(out.name)}.tmp-*")):
        _remove(p)
        removed.append(p)
    return removed


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _replace(tmp: Path, out: Path) -> None:
    """Put ``tmp`` in the place of ``out`` (a folder, a file or a link): the old one is set aside, then removed."""
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def _axis_meta(a: str, unit: str | None = None) -> dict:
    kind = {"t": "time", "c": "channel"}.get(a, "space")
    return {"name": a, "type": kind} | ({"unit": unit} if unit and kind == "space" else {})


def _compute(stores: list, progress) -> None:
    import dask

    if progress:
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc="convert"):
            dask.compute(*stores, scheduler="threads")
    else:
        dask.compute(*stores, scheduler="threads")
