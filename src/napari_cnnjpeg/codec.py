"""The public codec: arrays to ``.cjpg`` bytes and files, and back."""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .errors import CjpgError
from .format.container import DTYPES, HASH_DIGITS, MAX_PLANES, Container, is_cjpg, pack, write_atomic
from .format.jpeg import (
    BITS,
    MAX12,
    MAX_SCANS,
    MAX_SCANS_PLAIN,
    SUBSAMPLING,
    _frame,
    _standard_tables,
    check_pixels,
    check_scans,
    chroma_layout,
    cmyk_to_rgb,
    colour_coding,
    component_tables,
    decodable_pixels,
    decode_jpeg,
    decode_jpeg12,
    decode_lossless,
    encode_jpeg,
    encode_jpeg12,
    estimate_quality,
    is_arithmetic,
    is_lossless,
    jpeg_precision,
    quant_tables,
    smallest_coding12,
    strip_jfif,
)
from .format.weighting import apply_weights, block_dct, blocks, effective_table, unweight, weight, weights
from .nn.models import (
    BASELINE,
    ModelStages,
    available_models,
    default_model,
    model_info,
    payload_bits,
    resolve,
)
from .nn.resample import reduced_size, upscale

#: Dtypes that are stored through a linear mapping onto the payload's values.
MAPPED_DTYPES = tuple(d for d in DTYPES if d != "uint8")
#: Optional image metadata kept by the container (napari layer properties).
IMAGE_KEYS = ("name", "scale", "translate", "axis_labels", "units", "contrast_limits", "colormap", "rgba",
              "rotate", "shear", "affine", "blending", "opacity", "gamma")
#: napari's blending modes (``image["blending"]``).
BLENDING = ("translucent", "translucent_no_depth", "additive", "minimum", "opaque", "multiplicative")

Source = bytes | str | os.PathLike
#: What ordinary viewers do with a 12-bit file.
TWELVE_BIT_VIEWERS = ("12-bit JPEG: opens in libjpeg-turbo 3 and imagecodecs (its samples as stored, no network); "
                      "Pillow, web browsers and most image viewers cannot open it")
#: Added for a 12-bit file with arithmetic-coded payloads (:func:`jpeg.smallest_coding12`).
ARITHMETIC_VIEWERS = ("; some of its planes are arithmetic coded (standard JPEG that libjpeg-turbo 3 and imagecodecs "
                      "decode; 12-bit readers built without arithmetic decoding refuse them)")
#: Added for a frequency-weighted 12-bit file (:mod:`format.weighting`).
WEIGHTED_VIEWERS = ("; its planes are frequency weighted, which only this package undoes: other decoders show "
                    "them with their low frequencies attenuated (flat and washed out)")


def _plane_layout(image: np.ndarray, rgb: bool | None) -> bool:
    if image.ndim < 2:
        raise CjpgError(f"image must have at least 2 dimensions, got shape {image.shape}")
    if rgb is None:
        if image.ndim >= 3 and image.shape[-1] in (2, 4):  # RGBA or two channels, not planes 2 or 4 pixels wide
            raise CjpgError(
                f"an image of shape {image.shape} ends in {image.shape[-1]} channels: store each channel as a "
                f"plane (np.moveaxis(image, -1, -3)), or pass rgb=False to store planes {image.shape[-1]} pixels wide")
        rgb = image.ndim >= 3 and image.shape[-1] == 3
    if rgb and (image.ndim < 3 or image.shape[-1] != 3):
        raise CjpgError(f"an RGB image must end in an axis of length 3, got shape {image.shape}")
    h, w = image.shape[-3:-1] if rgb else image.shape[-2:]
    if h < 1 or w < 1 or h > 65500 or w > 65500:
        raise CjpgError(f"planes must be 1 to 65500 pixels a side, got {h}x{w}")
    limit = decodable_pixels()
    if limit and h * w > limit:  # refused before any plane is coded: readers refuse such a file
        raise CjpgError(f"planes of {h}x{w} pixels are more than JPEG readers decode ({limit}, twice "
                        "PIL.Image.MAX_IMAGE_PIXELS, which guards against decompression bombs): store tiles "
                        "of the image, or raise PIL.Image.MAX_IMAGE_PIXELS wherever the file is read")
    return rgb


def _check_dtype(image: np.ndarray) -> str:
    name = image.dtype.name
    if name == "bool":
        raise CjpgError("boolean images are not supported: store masks losslessly (e.g. PNG/TIFF)")
    if name != "uint8" and name not in MAPPED_DTYPES:
        raise CjpgError(f"unsupported dtype {name}; use one of {', '.join(DTYPES)}")
    return name


def _check_finite(plane: np.ndarray, index: tuple = ()) -> None:
    if plane.dtype.kind == "f" and not np.isfinite(plane).all():
        where = f" (plane {index[0] if len(index) == 1 else index} of the stack)" if index else ""
        raise CjpgError(f"image contains NaN or infinite values{where}, which JPEG cannot store")


def _check_mapping_arg(mapping, dtype: str) -> str | tuple[float, float]:
    """``mapping`` of :func:`encode`: "plane", "stack" or a finite (min, max) within the dtype
    (two real numbers: a tuple, a list or an array such as ``np.percentile(image, [1, 99])``)."""
    if isinstance(mapping, str) and mapping in ("plane", "stack"):
        return mapping
    values = list(mapping) if isinstance(mapping, (tuple, list, np.ndarray)) else None
    if (values is None or len(values) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in values)):
        raise CjpgError(f"mapping must be 'plane', 'stack' or (min, max), got {mapping!r}")
    lo, hi = (float(v) for v in values)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    if not (np.isfinite(lo) and np.isfinite(hi) and float(info.min) <= lo < hi <= float(info.max)):
        raise CjpgError(f"mapping range {mapping!r} must be finite {dtype} values with min < max")
    return lo, hi


def _read_plane(image, index: tuple) -> np.ndarray:
    """Plane ``index`` of an image or stack as a numpy array, refused where its shape is not the one the
    image declares (a dask or custom lazy array whose chunks disagree with its ``shape``)."""
    plane = np.asarray(image[index])
    if plane.shape != tuple(image.shape[len(index):]):
        raise CjpgError(f"plane {index} of the image has shape {plane.shape}, but the image's shape "
                        f"{tuple(image.shape)} says {tuple(image.shape[len(index):])}")
    return plane


def _stack_range(image, lead: tuple) -> tuple[float, float]:
    """Min and max over every plane (one plane in memory at a time)."""
    lo, hi = np.inf, -np.inf
    for index in np.ndindex(*lead):
        plane = _read_plane(image, index)
        _check_finite(plane, index)
        lo, hi = min(lo, float(plane.min())), max(hi, float(plane.max()))
    return lo, hi


def twelve_bit_setting(quality: int) -> tuple[int, int]:
    """The JPEG quality and the sample values (0..L) of a 12-bit payload at ``quality``.

    JPEG's tables step the same at any precision, so the levels L a plane is mapped onto
    scale every step. Up to :data:`FLAT_UP_TO` a payload is JPEG quality 1, whose tables
    clamp at 255 and so are flat (every frequency gets the same step, which suits PSNR),
    and the levels rise geometrically from 256 to 4096: steps from 255 down to 16 in 8-bit
    units. Above, the levels stay at 4096 and the JPEG quality rises from
    :data:`JPEG_QUALITY_FROM` to 100, where the ceiling is 12-bit JPEG's. Both rise with
    ``quality``, so rate and PSNR do too.
    """
    if quality <= FLAT_UP_TO:
        return 1, round(256 * 16 ** ((quality - 1) / (FLAT_UP_TO - 1))) - 1
    span = 100 - JPEG_QUALITY_FROM
    return round(JPEG_QUALITY_FROM + (quality - FLAT_UP_TO - 1) * span / (99 - FLAT_UP_TO)), MAX12


#: Quality up to which 12-bit payloads use JPEG quality 1's flat tables (:func:`twelve_bit_setting`).
FLAT_UP_TO = 60
#: JPEG quality of 12-bit payloads just above :data:`FLAT_UP_TO`: the lowest whose largest step
#: (121 * 50 / 24 = 252) is below the 255 clamp. Below it the frequency-weighted steps
#: (``max(T, 0.7 * 255)``) barely change from one JPEG quality to the next, and rate and PSNR
#: wander with rounding instead of rising.
JPEG_QUALITY_FROM = 24
#: ``flatten`` of the frequency weighting (:mod:`format.weighting`) of 12-bit grey payloads above
#: :data:`FLAT_UP_TO`, where libjpeg's tables are no longer flat.
FLATTEN = 0.7
#: The block mean's own factor and largest weight in that weighting (``weighting_dc`` in files):
#: its step is ``max(T_00 / 0.5, 0.25 * 0.7 * max(T))``, up to 4 times finer than the other
#: flattened steps. With the DC as coarse as the rest, PSNR fell by up to 1.2 dB from one quality
#: to the next on sparse planes (synthetic) and 0.28 dB on a real one (fl_cp_worms_gfp, no
#: network); with a DC weight allowed up to 1, dark noisy planes clipped and collapsed by up to
#: 9 dB near quality 99. ``scripts/weighting_dc_study.py`` measures both.
WEIGHTING_DC = (0.25, 0.5)

#: A 12-bit payload's frequency weighting: ``(flatten, dc, dc_cap)`` (:mod:`format.weighting`), or None.
Weighting = tuple[float, float, float] | None


#: Quality from which RGB payloads keep full chroma by default, by payload precision (:func:`default_subsampling`).
FULL_CHROMA_FROM = {12: 90, 8: 95}


def default_subsampling(bits: int, quality: int, model_id: str | None = None, downscale: int = 1) -> str:
    """Chroma subsampling of RGB planes when none is asked for: 4:2:0, but 4:4:4 from quality
    :data:`FULL_CHROMA_FROM` on (12-bit payloads from 90, 8-bit ones from 95).

    At 4:2:0 a colourful image stops near the PSNR its halved chroma allows, so quality would stop
    rising: about 40 dB on scikit-image's astronaut in 16 bits from quality 85 to 100, and 36 dB
    on its rocket in 8 bits from quality 90 (`joint-s-v8`), where 4:4:4 reaches 74 and 58 dB. The
    8-bit models' networks stand aside on such fine 4:4:4 payloads (their ``identity_step``), so a
    stock viewer shows what the decoder does. Rate and PSNR both jump up at the switch, so they
    still rise with quality. Plain JPEG (``"jpeg"``, libjpeg's defaults) and half-resolution models
    stay at 4:2:0 in 8 bits.
    """
    if bits == 8 and (model_id == BASELINE or downscale != 1):
        return "4:2:0"
    return "4:4:4" if quality >= FULL_CHROMA_FROM[bits] else "4:2:0"


def twelve_bit_weighting(quality: int, rgb: bool) -> Weighting:
    """The frequency weighting ``(flatten, dc, dc_cap)`` of a 12-bit payload at ``quality`` (None: none).

    Grey planes above :data:`FLAT_UP_TO` are weighted, so their effective steps stay
    nearly flat as the JPEG quality rises; at JPEG quality 100 every step is 1 and the
    weighting would do nothing. RGB planes are not weighted (their chroma is coded on
    another grid). :func:`encode` leaves plain JPEG's payloads (model ``"jpeg"``) unweighted
    too, so that any 12-bit decoder shows them exactly.
    """
    jpeg_quality = twelve_bit_setting(quality)[0]
    return (FLATTEN, *WEIGHTING_DC) if not rgb and quality > FLAT_UP_TO and jpeg_quality < 100 else None


def twelve_bit_luma(quality: int) -> np.ndarray:
    """The quantisation steps, in sample units, of the frequencies of a 12-bit grey payload at ``quality``:
    libjpeg's luma table at its JPEG quality, through its frequency weighting where it has one."""
    luma, weighting = _standard_tables(twelve_bit_setting(quality)[0])[0], twelve_bit_weighting(quality, rgb=False)
    return luma.astype(np.float64) if weighting is None else effective_table(luma, *weighting)


def encode_levels12(plane: np.ndarray, quality: int, subsampling: str = "4:2:0",
                    weighting: Weighting = None) -> bytes:
    """A plane already on its levels (uint16 0..L, :func:`twelve_bit_setting`) as the 12-bit payload
    of ``quality``, frequency weighted with ``weighting`` (:func:`twelve_bit_weighting`) unless None."""
    jpeg_quality = twelve_bit_setting(quality)[0]
    if weighting is not None:
        plane = weight(plane, _standard_tables(jpeg_quality)[0], *weighting)
    return encode_jpeg12(plane, jpeg_quality, subsampling)


def decode_levels12(data: bytes, weighting: Weighting, levels: int = MAX12) -> tuple[np.ndarray, np.ndarray,
                                                                                np.ndarray | None]:
    """A 12-bit payload decoded to uint16 0..``levels``, its weighting undone, and the effective
    luma and chroma steps of its frequencies (what a decoder network is conditioned on)."""
    pixels = decode_jpeg12(data)
    luma, chroma = quant_tables(data)
    if weighting is not None:
        if pixels.ndim != 2:
            raise CjpgError("corrupt .cjpg file: a frequency-weighted payload is not a grey plane")
        flatten, dc, dc_cap = weighting
        pixels = unweight(pixels, luma, flatten, levels, dc, dc_cap)
        luma = effective_table(luma, *weighting)
    return pixels, luma, chroma


def _dc_aligned_low(plane: np.ndarray, lo: float, hi: float, levels: int, jpeg_quality: int,
                    floor: float = -np.inf, weighting: Weighting = None) -> float:
    """A low end of the mapping, at or below ``lo``, that puts a grey plane's 8x8 block means,
    once mapped onto 0..levels, nearest the means a 12-bit JPEG's DC step reconstructs.

    Those lie on a grid of step/8 levels (32 levels at quality 1, whose DC step is 255). A
    flat background lands anywhere between two of them, and on planes that are mostly
    background that error dominates: without this, PSNR could fall as quality rose. The
    low end is chosen among 32 shifts within one grid step, none below ``floor`` (the least
    value a file's mapping may hold for the dtype), by the squared error JPEG's quantisation
    would leave in the plane's own units: the block means' distance to the grid, plus the
    other frequencies' rounding (estimated on up to :data:`ALIGN_BLOCKS` blocks), which grows
    as a lower low end spreads the plane over fewer levels. Shifts are rounded to a
    ten-thousandth of the range or finer, so that the file records a short number.
    """
    if hi <= lo or min(plane.shape) < 8:
        return lo
    luma = _standard_tables(jpeg_quality)[0]  # libjpeg's steps, the same at 12 bits
    steps = (luma if weighting is None else effective_table(luma, *weighting)).astype(np.float64).ravel()
    h, w = plane.shape[0] // 8 * 8, plane.shape[1] // 8 * 8
    means = plane[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3), dtype=np.float64).ravel()
    ac = block_dct(blocks(plane, int(np.ceil(np.sqrt(means.size / ALIGN_BLOCKS)))))[:, 1:]
    grid, unit = steps[0] / 8, 10.0 ** np.floor(np.log10((hi - lo) * 1e-4))
    best, best_err = lo, np.inf
    for t in np.arange(32) / 32:
        low = max(floor, lo - np.round(t * grid * (hi - lo) / levels / unit) * unit)
        scale = levels / (hi - low)
        pos = ((means - low) * scale - (MAX12 + 1) / 2) / grid  # JPEG level-shifts by 2048
        x = ac * (scale / steps[1:])
        err = (np.mean((pos - np.rint(pos)) ** 2) * grid**2
               + np.mean(((x - np.rint(x)) ** 2) @ steps[1:] ** 2) / 64) / scale**2
        if err < best_err - 1e-12:
            best, best_err = low, err
    return best


def _weighting_headroom(plane: np.ndarray, jpeg_quality: int, weighting: Weighting) -> float:
    """A factor s <= 1 to shrink a grey plane (on 0..4095) about 2048 by before frequency weighting.

    Unequal weights can push a block's samples outside 0..4095, where they clip, and undoing
    the weighting amplifies the clip (a plane of few, far-apart values lost 10 dB at quality 61).
    Shrinking the plane until nothing clips makes every quantisation step coarser relative to
    it by 1 / s; it is chosen only where the clipping's error, estimated by weighting and
    unweighting the plane, exceeds what the coarser steps cost (about step**2 / 12 per pixel).
    """
    luma = _standard_tables(jpeg_quality)[0]
    w = weights(luma, *weighting)
    weighted = apply_weights(plane, w)
    least, most = float(weighted.min()), float(weighted.max())
    if least >= -0.5 and most <= MAX12 + 0.5:
        return 1.0
    centre = (MAX12 + 1) / 2
    scale = 0.999 * min(1.0, centre / (centre - least), (MAX12 - centre) / (most - centre))
    clipped = np.clip(weighted, 0, MAX12) - weighted
    clip_err = float(np.mean((apply_weights(clipped + centre, 1.0 / w) - centre) ** 2))
    steps = effective_table(luma, *weighting)
    quant = float(np.mean(steps**2)) / 12
    return scale if quant / scale**2 < quant + clip_err else 1.0


#: Blocks :func:`_dc_aligned_low` estimates the rounding of the other frequencies on.
ALIGN_BLOCKS = 4096


def _to_levels(plane: np.ndarray, lo: float, hi: float, levels: int, dtype) -> np.ndarray:
    """Map [lo, hi] linearly onto 0..levels in ``dtype``, clipping outside it."""
    scale = levels / (hi - lo) if hi > lo else 0.0
    out = np.clip(np.rint((plane.astype(np.float64) - lo) * scale), 0, levels)
    return out.astype(dtype)


def _from_unit(values: np.ndarray, lo: float, hi: float, dtype: np.dtype, levels: int = 255) -> np.ndarray:
    out = values.astype(np.float64) / levels * (hi - lo) + lo
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(dtype)


def _check_image_meta(meta: dict | None) -> dict:
    if meta is not None and not isinstance(meta, dict):
        raise CjpgError(f"metadata must be a dict of {', '.join(IMAGE_KEYS)}, got {type(meta).__name__}")
    if not meta:
        return {}
    unknown = set(meta) - set(IMAGE_KEYS)
    if unknown:
        raise CjpgError(f"unknown image metadata {sorted(unknown)}; known: {', '.join(IMAGE_KEYS)}")
    out = {}
    for k, v in meta.items():
        if v is None:
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (tuple, list)):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        if problem := image_meta_problem(k, v):
            raise CjpgError(f"image metadata {k!r}: {problem}")
        out[k] = v
    return out


def _finite_numbers(v) -> bool:
    return isinstance(v, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and _finite(x) for x in v)


def _finite(x: int | float) -> bool:
    """Whether a number is finite as a float (an int too large for a float64 is not)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def image_meta_problem(key: str, value) -> str | None:
    """What is wrong with one image metadata field (:data:`IMAGE_KEYS`) as stored, or None.

    The reader leaves out fields with a problem (a crafted file's), so napari never gets them.
    """
    if key == "name":
        return None if isinstance(value, str) else f"a name is a string, got {value!r}"
    if key in ("scale", "translate"):
        return None if _finite_numbers(value) else f"needs a list of finite numbers, got {value!r}"
    if key in ("axis_labels", "units"):
        ok = isinstance(value, list) and all(isinstance(x, str) for x in value)
        if ok and key == "units" and any("**" in x or "^" in x for x in value):  # pint evaluates powers of any
            return f"units are unit names, without powers, got {value!r}"  # size: napari hung on "9**9**9"
        return None if ok else f"needs a list of strings, got {value!r}"
    if key == "contrast_limits":  # napari refuses equal limits
        ok = _finite_numbers(value) and len(value) == 2 and value[0] < value[1]
        return None if ok else f"needs two finite numbers, low then high, got {value!r}"
    if key == "colormap":
        return None if isinstance(value, str) else f"a colormap is stored by name, got {value!r}"
    if key == "rgba":
        return None if isinstance(value, bool) else f"needs True or False, got {value!r}"
    if key == "blending":
        return None if value in BLENDING else f"needs one of {', '.join(BLENDING)}, got {value!r}"
    if key == "opacity":
        return None if _finite_numbers([value]) and 0 <= value <= 1 else f"needs a number from 0 to 1, got {value!r}"
    if key == "gamma":
        return None if _finite_numbers([value]) and 0 < value <= 10 else f"needs a number above 0, up to 10, got {value!r}"
    if key == "shear":
        return None if _finite_numbers(value) else f"needs a list of finite numbers, got {value!r}"
    if key in ("rotate", "affine"):
        ok = isinstance(value, list) and value and all(_finite_numbers(row) and len(row) == len(value) for row in value)
        return None if ok else f"needs a square matrix (a list of rows) of finite numbers, got {value!r}"
    return f"unknown image metadata; known: {', '.join(IMAGE_KEYS)}"


def encode(
    image: np.ndarray,
    *,
    quality: int = 75,
    model: str | ModelStages | None = None,
    subsampling: str | None = None,
    rgb: bool | None = None,
    axes: str | None = None,
    metadata: dict | None = None,
    mapping: str | tuple[float, float] | None = None,
    bits: int | None = None,
    progressive: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """Compress an image or stack to ``.cjpg`` bytes.

    Parameters
    ----------
    image : array-like
        A numpy, dask or zarr array (read one plane at a time): ``(..., H, W)`` grayscale
        or ``(..., H, W, 3)`` RGB planes; leading axes (time, z, channel, ...) make a
        stack. uint8 is stored as is; uint16, int and float data are mapped linearly
        (see ``mapping``) onto 12-bit (or 8-bit, see ``bits``) payloads.
    quality : int
        JPEG quality, 1-100. A model codes qualities outside its ``quality_range``
        (:func:`~napari_cnnjpeg.nn.models.model_info`) at the nearest end of it, where its
        quality stops rising; the file records the quality used.
    model : str, optional
        Model id from :func:`available_models`; default: :func:`default_model` for the
        payload's precision (see ``bits``).
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}, optional
        Chroma subsampling of RGB planes. Default (:func:`default_subsampling`): 4:2:0, but
        full chroma (4:4:4) from quality 90 for 12-bit payloads and from 95 for 8-bit ones
        (not for plain JPEG, ``"jpeg"``, nor half-resolution models).
    rgb : bool, optional
        Whether the last axis holds RGB; default: when it has length 3.
    axes : str, optional
        Axis names, one letter per axis (e.g. ``"TZYX"``, ``"YXC"``).
    metadata : dict, optional
        Image metadata kept in the file: name, scale, translate, axis_labels,
        units, contrast_limits, colormap, rgba (the planes along the third axis from
        the end are an RGBA image's four channels).
    mapping : {"stack", "plane"} or (float, float), optional
        For data other than uint8, the range mapped linearly onto the payload's values:
        "stack" (the default), one min/max for all planes, so intensities compare
        across planes; "plane", each plane's own min/max; or a (min, max) the user
        gives, the same for every plane (values outside it are clipped).
    bits : {8, 12}, optional
        Payload precision. Default: 12-bit JPEG (SOF1, libjpeg-turbo 3 through imagecodecs)
        for data other than uint8, unless ``model`` names a model whose networks work on
        8-bit payloads; 8-bit otherwise. 12-bit files open in libjpeg-turbo 3 and
        imagecodecs, not in Pillow or web browsers; with no ``model``, they are decoded by
        the 12-bit default model (``default_model(bits=12)``).
    progressive : bool, optional
        Let 8-bit payloads use progressive scans chosen by mozjpeg where they are smaller
        (:func:`~napari_cnnjpeg.format.jpeg.optimize_scans`): the same pixels in every decoder,
        2-4 % fewer bytes on photos. Default: yes, except for plain JPEG (``model="jpeg"``),
        which stays exactly as libjpeg-turbo writes it. False gives one baseline scan, for
        decoders that read only baseline JPEG. 12-bit payloads are always sequential.
    progress : callable, optional
        Called as ``progress(done, total)`` after each plane.

    Returns
    -------
    bytes
        The file; a 2D image is a valid JPEG file.
    """
    if not (all(hasattr(image, a) for a in ("shape", "dtype", "ndim", "__getitem__"))
            and isinstance(image.dtype, np.dtype)):  # lazy arrays stay lazy; others (lists, torch tensors) convert
        try:
            image = np.asarray(image)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CjpgError(f"cannot read the image as an array: {exc}") from None
    dtype = _check_dtype(image)
    if isinstance(image, np.ma.MaskedArray) and np.ma.is_masked(image):
        warnings.warn(f"{int(np.ma.count_masked(image))} masked values are stored as the values under the mask "
                      "(a .cjpg keeps no mask): fill them first (image.filled(value)) to choose what they become",
                      stacklevel=2)
    rgb = _plane_layout(image, _check_flag("rgb", rgb))
    progressive = _check_flag("progressive", progressive)
    if progress is not None and not callable(progress):
        raise CjpgError(f"progress must be a callable progress(done, total), got {progress!r}")
    if subsampling is not None and (not isinstance(subsampling, str) or subsampling not in SUBSAMPLING):
        raise CjpgError(f"unknown chroma subsampling {subsampling!r}; use one of {sorted(SUBSAMPLING)}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise CjpgError(f"quality must be an integer from 1 to 100, got {quality!r}")
    if axes is not None and (not isinstance(axes, str) or len(axes) != image.ndim):
        raise CjpgError(f"axes {axes!r} must name each of the image's {image.ndim} axes")
    image_meta = _check_image_meta(metadata)
    if dtype == "uint8" and mapping is not None and not (isinstance(mapping, str) and mapping in ("plane", "stack")):
        raise CjpgError("mapping applies to data other than uint8, which is stored as is")
    mapping = _check_mapping_arg("stack" if mapping is None else mapping, dtype) if dtype != "uint8" else None
    bits = _check_bits(bits, dtype, _network_bits(model))
    model_id, sha, stages = resolve(default_model(bits) if model is None else model)
    progressive = model_id != BASELINE if progressive is None else bool(progressive)
    if not isinstance(model, ModelStages):  # each model codes qualities within its measured range
        quality = model_info(model_id).effective_quality(quality)
    subsampling = subsampling or default_subsampling(bits, int(quality), model_id, stages.downscale)
    lead = image.shape[: image.ndim - (3 if rgb else 2)]
    total = int(np.prod(lead, dtype=np.int64))
    if total > MAX_PLANES:  # refused before any plane is coded: readers refuse such a file
        raise CjpgError(f"a stack of shape {image.shape} has {total} planes; a .cjpg file holds at most {MAX_PLANES}")
    jpeg_quality, levels = twelve_bit_setting(int(quality)) if bits == 12 else (int(quality), 255)
    weighting = twelve_bit_weighting(int(quality), rgb) if bits == 12 and model_id != BASELINE else None
    fixed = _stack_range(image, lead) if mapping == "stack" else mapping if isinstance(mapping, tuple) else None
    align = bits == 12 and not rgb and not isinstance(mapping, tuple)  # a range the user gives stays as given
    kind = np.dtype(dtype)  # what a file's mapping may record: an integer min may lie below the dtype by its span
    floor, ceiling = ((2.0 * np.iinfo(kind).min - np.iinfo(kind).max, float(np.iinfo(kind).max))
                      if kind.kind in "iu" else (float(np.finfo(kind).min), float(np.finfo(kind).max)))
    payloads, lows, highs, clipped = [], [], [], 0
    for i, index in enumerate(np.ndindex(*lead)):
        plane = _read_plane(image, index)  # one plane at a time: dask, zarr and memory maps stay lazy
        _check_finite(plane, index)
        if isinstance(mapping, tuple):
            clipped += int(np.count_nonzero((plane < mapping[0]) | (plane > mapping[1])))
        if dtype != "uint8":
            lo, hi = fixed or (float(plane.min()), float(plane.max()))
            if not np.isfinite(hi - lo):
                raise CjpgError(f"the value range {lo:g} to {hi:g} is too wide to map: max - min overflows float64")
            if align and (fixed is None or i == 0):  # a stack's planes share the first plane's low end
                low = _dc_aligned_low(plane, lo, hi, levels, jpeg_quality, floor, weighting)
            lo = low if align else lo
            values, plane = plane, _to_levels(plane, lo, hi, levels, np.uint16 if bits == 12 else np.uint8)
            if align and weighting is not None:  # room for the weighting's overshoot, where clipping costs more
                scale = _weighting_headroom(plane, jpeg_quality, weighting)
                wide_lo = lo - (MAX12 + 1) / 2 * (1 - scale) * (hi - lo) / (scale * MAX12)
                wide_hi = wide_lo + (hi - lo) / scale
                if scale < 1 and floor <= wide_lo and wide_hi <= ceiling:  # within what a file may record
                    lo, hi = wide_lo, wide_hi
                    plane = _to_levels(values, lo, hi, levels, np.uint16)
            lows.append(lo)
            highs.append(hi)
        if bits == 12:  # a 12-bit model's encoder works on grey planes only
            if not rgb and stages.encoder is not None:
                plane = stages.pre(plane, int(quality), twelve_bit_luma(int(quality)), levels)
            payload = encode_levels12(plane, int(quality), subsampling, weighting)
            payload = payload if model_id == BASELINE else smallest_coding12(payload)
        else:
            layout = subsampling if rgb else "grey"
            payload = encode_jpeg(stages.pre(plane, int(quality), layout=layout), int(quality), subsampling,
                                  stages.tables, stages.trellis, progressive)
        payloads.append(payload if model_id == BASELINE else strip_jfif(payload))
        if progress:
            progress(i + 1, total)
    if clipped:
        warnings.warn(f"{clipped} values lie outside the given range {mapping} and are stored clipped to it",
                      stacklevel=2)
    meta = {
        "model": model_id, "model_sha256": sha and sha[:HASH_DIGITS], "quality": int(quality), "subsampling": subsampling,
        "shape": list(image.shape), "dtype": dtype, "rgb": rgb, "axes": axes,
        "mapping": None if dtype == "uint8" else {
            "kind": "linear-minmax", "mode": mapping if isinstance(mapping, str) else "range", "min": lows, "max": highs,
        },
        "required": [],
    }
    if bits == 12:  # readers that know only 8-bit payloads, or 4096 levels, must refuse the file
        meta.update(bits=12, levels=levels, required=["bits", "levels"])
        if weighting is not None:  # nor may readers that cannot undo the weighting read it
            meta.update(weighting=weighting[0], weighting_dc=list(weighting[1:]),
                        required=["bits", "levels", "weighting", "weighting_dc"])
        if any(is_arithmetic(p) for p in payloads):  # nor those that know only Huffman-coded payloads
            meta.update(arithmetic=True, required=[*meta["required"], "arithmetic"])
    if stages.downscale > 1:  # readers that cannot enlarge the payload must refuse the file
        meta.update(downscale=stages.downscale, required=["downscale"])
    return pack({**meta, "image": image_meta}, payloads)


def _check_flag(name: str, value) -> bool | None:
    """A yes/no option of :func:`encode` (``rgb``, ``progressive``) as a bool, or None (its default)."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise CjpgError(f"{name} must be True, False or None, got {value!r}")


def _network_bits(model: str | ModelStages | None) -> int | None:
    """Payload precision a model needs (:func:`~napari_cnnjpeg.nn.models.payload_bits`); None for none."""
    if model is None:
        return None
    if isinstance(model, ModelStages):
        return model.bits if model.encoder is not None or model.decoder is not None or model.tables else None
    return payload_bits(model)


def _check_bits(bits, dtype: str, network: int | None) -> int:
    if bits is None:
        bits = network or (8 if dtype == "uint8" else 12)
    if bits not in BITS:
        raise CjpgError(f"bits must be 8 or 12, got {bits!r}")
    if bits == 12 and dtype == "uint8":
        raise CjpgError("uint8 data keeps 8-bit payloads; 12-bit payloads (and models for them) are for data of "
                        "more than 8 bits")
    if network and bits != network:
        raise CjpgError(f"this model's networks work on {network}-bit payloads, not {bits}-bit: "
                        f"pass bits={network}, or a model for {bits}-bit payloads ({_models_for(bits)})")
    return bits


def _models_for(bits: int) -> str:
    return ", ".join(available_models(bits))


def _stages_for(meta: dict, model: str | ModelStages | None) -> ModelStages:
    if isinstance(model, ModelStages):
        return model
    model_id = meta["model"] if model is None else model
    info = model_info(model_id)
    recorded, full = meta["model_sha256"], info.sha256  # recorded: the SHA-256 or its first digits (format 2)
    same = recorded == full if recorded is None or full is None else full.startswith(recorded)
    if model is None and not same:
        raise CjpgError(
            f"file was made with other weights of model {model_id!r} than this installation ships; "
            "decode it with model='jpeg' for the plain JPEG"
        )
    return resolve(info.id)[2]


class Reader:
    """An open ``.cjpg`` file or byte string: header parsed, planes decoded on demand."""

    def __init__(self, src: Source, model: str | ModelStages | None = None):
        self.container = Container.open(src)
        try:
            self.meta = self.container.meta
            self.stages = _stages_for(self.meta, model)
        except BaseException:
            self.container.close()
            raise
        self.dtype = np.dtype(self.meta["dtype"])
        self.shape = tuple(self.meta["shape"])
        self.plane_shape = self.shape[len(self.shape) - (3 if self.meta["rgb"] else 2) :]
        self.downscale = self.meta.get("downscale", 1)
        self.bits = self.meta.get("bits", 8)
        self.levels = self.meta.get("levels", MAX12 if self.bits == 12 else 255)
        self.weighting = ((self.meta["weighting"], *self.meta.get("weighting_dc", (1.0, 1.0)))
                          if "weighting" in self.meta else None)
        network = _network_bits(self.stages)
        if network and network != self.bits:
            self.container.close()
            raise CjpgError(f"the file holds {self.bits}-bit payloads; model {self.meta['model'] if model is None else model!r}"
                            f" works on {network}-bit payloads: decode it with model='jpeg' or a model for "
                            f"{self.bits}-bit payloads ({_models_for(self.bits)})")
        self.payload_shape = reduced_size(*self.plane_shape[:2], self.downscale) + self.plane_shape[2:]

    def __len__(self) -> int:
        return len(self.container)

    @property
    def restores(self) -> bool:
        """Whether planes pass through a decoder network (else the plain decode is final)."""
        return self.stages.decoder is not None

    def plane(self, k: int, restore: bool = True) -> np.ndarray:
        """Decode plane ``k`` (in C order of the leading axes) to the original dtype.

        ``restore=False`` skips the decoder network: the payload as a stock JPEG decoder
        shows it (enlarged to full size for a compact model), in milliseconds.
        """
        data = self.container.payload(k)
        try:
            return self.decode_payload(k, data, restore)
        except MemoryError:
            raise CjpgError(f"plane {k} ({'x'.join(map(str, self.plane_shape))} pixels) needs more memory than "
                            "is free") from None

    def decode_payload(self, k: int, data: bytes, restore: bool = True) -> np.ndarray:
        """Decode plane ``k`` from its payload bytes (read with ``container.payload(k)``)."""
        frame = _frame(data)  # before decoding: a tiny payload may declare a frame of 179 megapixels
        if frame is not None and (frame[2], frame[3]) != self.payload_shape[:2]:
            raise CjpgError(f"corrupt .cjpg file: plane {k} decodes to {frame[2]}x{frame[3]} pixels (its JPEG "
                            f"frame says), header says {self.payload_shape[0]}x{self.payload_shape[1]}")
        check_scans(data)
        if self.bits == 12:
            pixels, luma, chroma = decode_levels12(data, self.weighting, self.levels)
        else:
            pixels, (luma, chroma) = decode_jpeg(data), quant_tables(data)
        if pixels.shape != self.payload_shape:
            raise CjpgError(f"corrupt .cjpg file: plane {k} decodes to {pixels.shape}, header says {self.payload_shape}")
        pixels = upscale(pixels, self.plane_shape[:2])
        if self.levels < MAX12 and self.bits == 12:  # a decoder's ringing may overshoot the mapped range
            pixels = np.minimum(pixels, np.uint16(self.levels))
        mapping = self.meta["mapping"]
        if restore and self.restores:  # uint8 data: rounded where the network ran
            pixels = self.stages.post(pixels, luma, chroma, rounded=mapping is None, levels=self.levels,
                                      layout=chroma_layout(data))
        if mapping is None:  # uint8 data: the plain decode, or the network's output rounded on its device
            return pixels
        return _from_unit(pixels, mapping["min"][k], mapping["max"][k], self.dtype, self.levels)

    def planes(self, indices: Iterable[int] | None = None):
        """Decoded planes, one at a time."""
        for k in range(len(self)) if indices is None else indices:
            yield self.plane(k)

    def read(self, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The whole image or stack."""
        first = self.plane(0) if len(self) else None  # a forged header's shape fails here, before the allocation
        try:
            out = np.empty(self.shape, self.dtype)
        except MemoryError:
            gib = np.prod(self.shape, dtype=np.float64) * np.dtype(self.dtype).itemsize / 2**30
            raise CjpgError(f"the image needs {gib:.1f} GiB of memory, more than is free: read it plane by plane "
                            "(Reader.plane)") from None
        flat = out.reshape((-1,) + self.plane_shape)
        for k in range(len(self)):
            flat[k] = first if k == 0 else self.plane(k)
            if progress:
                progress(k + 1, len(self))
        return out

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode(data: Source, *, model: str | ModelStages | None = None) -> np.ndarray:
    """Decode ``.cjpg`` bytes (or a file path) to an array of the original shape and dtype.

    ``model`` overrides the model named in the file, e.g. ``"jpeg"`` for the plain
    JPEG payload without the decoder network.
    """
    with Reader(data, model) as r:
        return r.read()


def imwrite(path: str | os.PathLike, image: np.ndarray, **options) -> None:
    """Compress ``image`` (options as :func:`encode`) and write it atomically to ``path``."""
    write_atomic(path, encode(image, **options))


def imread(path: str | os.PathLike, *, model: str | None = None) -> np.ndarray:
    """Read a ``.cjpg`` file (see :func:`decode`)."""
    if isinstance(path, bytes):  # a path as bytes, as os.fsencode gives it (decode takes bytes as the file's data)
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise CjpgError(f"imread takes a file path (str or os.PathLike), got {type(path).__name__}; "
                        "decode takes a file's bytes")
    return decode(Path(path), model=model)


def read_plane(path: Source, index: int) -> np.ndarray:
    """Decode one plane of a stack, reading only its bytes."""
    with Reader(path) as r:
        return r.plane(index)


def info(src: Source) -> dict:
    """What a ``.cjpg`` holds: model, quality, shape, dtype, planes, bytes, bits per pixel, ...

    ``stock_viewer`` says what an ordinary image viewer (no network) shows of it.
    Reads only the header.
    """
    with Container.open(src) as c:
        return describe(c)


def describe(c: Container) -> dict:
    """The :func:`info` dictionary of an open container."""
    m = c.meta
    rgb = m["rgb"]
    shape = m["shape"]
    h, w = shape[-3:-1] if rgb else shape[-2:]
    out = {
        "format_version": m["version"], "model": m["model"], "model_sha256": m["model_sha256"],
        "quality": m["quality"], "subsampling": m["subsampling"], "shape": tuple(shape), "dtype": m["dtype"],
        "rgb": rgb, "axes": m["axes"], "planes": len(c), "bytes": c.size,
        "bpp": c.size * 8 / (h * w * len(c)), "mapping": m["mapping"], "downscale": m.get("downscale", 1),
        "bits": m.get("bits", 8), "levels": m.get("levels", MAX12 if m.get("bits", 8) == 12 else 255),
        "weighting": m.get("weighting"),
        "weighting_dc": m.get("weighting_dc", [1.0, 1.0] if "weighting" in m else None),
        "arithmetic": m.get("arithmetic", False),
        "stock_viewer": (TWELVE_BIT_VIEWERS + (ARITHMETIC_VIEWERS if m.get("arithmetic") else "")
                         + (WEIGHTED_VIEWERS if m.get("weighting") else "")
                         if m.get("bits", 8) == 12 else _stock_viewer(m["model"])),
    }
    if out["bits"] == 12 and out["levels"] < MAX12:
        out["stock_viewer"] += (f"; its samples span 0-{out['levels']} of 12-bit JPEG's 0-{MAX12}, so other decoders "
                                "show it dark")
    image = m.get("image") if isinstance(m.get("image"), dict) else {}
    if image.get("rgba") is True:
        out["stock_viewer"] += ("; an RGBA image stored as four grey planes: ordinary viewers show its red channel "
                                "as a grey picture")
    elif len(c) > 1:
        out["stock_viewer"] += f"; of its {len(c)} planes, ordinary viewers show the first only"
    out.update({k: image[k] for k in IMAGE_KEYS if k in image})
    return out


def _stock_viewer(model_id: str) -> str:
    """What an ordinary image viewer shows of a file's payload (from the model that made it)."""
    try:
        return model_info(model_id).stock_viewer
    except CjpgError:
        return f"unknown: model {model_id[:80]!r} is not shipped by this installation"


def restore(
    jpeg: bytes | str | os.PathLike | np.ndarray,
    model: str | None = None,
    *,
    quality: int | None = None,
    tables: dict | None = None,
) -> np.ndarray:
    """Remove JPEG artefacts from an ordinary JPEG with a decoder-only model.

    Parameters
    ----------
    jpeg : bytes, path or ndarray
        A JPEG file's bytes or path (its quantisation tables tell the network how
        strongly it was compressed; 8-bit, or 12-bit with a model for 12-bit JPEG), or an
        already decoded uint8 array. A lossless JPEG comes back as decoded, unchanged.
    model : str, optional
        A decoder-only model id; default: :func:`default_restore_model` for the JPEG's
        precision.
    quality : int, optional
        Quality the array was compressed at (arrays only); default: estimated from its
        pixels (:func:`~napari_cnnjpeg.format.jpeg.estimate_quality`). Where no quality can be
        estimated (the finest quantisation, a flat image), the array comes back unchanged.
    tables : dict, optional
        The table tuning it was compressed with (arrays only; a model's ``tables``,
        e.g. for a ``.cjpg`` made with ``jpeg-tuned``); default: libjpeg's tables.

    Returns
    -------
    ndarray
        uint8 image of the same shape (uint16 of 12-bit samples for a 12-bit JPEG; RGB, as Pillow
        converts it, for a CMYK JPEG). An image under :data:`RESTORE_MIN_PIXELS` pixels or thinner
        than :data:`RESTORE_MIN_SIDE` comes back as decoded.
    """
    from .format.jpeg import tables_for_quality
    from .nn.models import default_restore_model

    if isinstance(jpeg, (bytes, bytearray, memoryview)):
        data = bytes(jpeg)
    elif isinstance(jpeg, (str, os.PathLike)):
        data = _read_file(jpeg)
    elif isinstance(jpeg, np.ndarray):
        data = None
    else:
        raise CjpgError(f"restore takes a JPEG file's bytes or path, or a decoded array, got {type(jpeg).__name__}")
    if data is not None and quality is not None:
        raise CjpgError("quality applies to decoded arrays: a JPEG file's own quantisation tables are used")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, (int, np.integer))
                                or not 1 <= quality <= 100):
        raise CjpgError(f"quality must be an integer from 1 to 100, got {quality!r}")
    if data is not None and is_cjpg(data):
        raise CjpgError("this is a .cjpg file, not a plain JPEG: open it with napari_cnnjpeg.decode (cnnjpeg decode)")
    if data is not None:
        check_pixels(data)
        check_scans(data, MAX_SCANS_PLAIN)
    if data is not None and is_lossless(data):  # no quantisation: nothing lost, nothing to restore
        return decode_lossless(data)
    bits = 8 if data is None else jpeg_precision(data) or 8
    model = model or default_restore_model(bits)
    if model is None:
        raise CjpgError(f"no decoder-only model for {bits}-bit JPEG is installed")
    info_ = model_info(model)
    if info_.kind != "restore":
        raise CjpgError(f"model {model!r} is not a decoder-only model; use one of kind 'restore'")
    if info_.bits != bits:
        raise CjpgError(f"model {model!r} restores {info_.bits}-bit JPEG; this is {bits}-bit JPEG")
    stages = resolve(model)[2]
    if data is None:
        if jpeg.dtype != np.uint8 or not (jpeg.ndim == 2 or (jpeg.ndim == 3 and jpeg.shape[-1] == 3)):
            raise CjpgError(f"restore takes a uint8 (H, W) or (H, W, 3) array, got {jpeg.dtype} {jpeg.shape}")
        if quality is None:
            quality = estimate_quality(jpeg)
            if quality is None:  # too finely quantised to tell: nothing worth restoring
                return jpeg.copy()
        luma, chroma = tables_for_quality(int(quality), tables)
        pixels = jpeg
        chroma = None if jpeg.ndim == 2 else chroma
    else:
        coding = colour_coding(data) if bits == 8 else "ycbcr"
        if coding in ("as is", "ycck"):
            return _restore_components(stages, data, coding)
        pixels = decode_jpeg12(data) if bits == 12 else decode_jpeg(data)
        luma, chroma = quant_tables(data)
    if not _restorable(pixels):
        return pixels.copy() if data is None else pixels
    layout = chroma_layout(data) if data is not None else "grey" if pixels.ndim == 2 else None
    return stages.post(pixels, luma, chroma, rounded=True, layout=layout)


def decode_plain(data: bytes) -> np.ndarray:
    """A JPEG stream as a plain decoder shows it, in the form :func:`restore` returns: uint8 (RGB for a
    CMYK JPEG, as Pillow converts it), uint16 of 12-bit samples, or a lossless JPEG's samples."""
    check_pixels(data)
    check_scans(data, MAX_SCANS_PLAIN)
    if is_lossless(data):
        return decode_lossless(data)
    return decode_jpeg12(data) if jpeg_precision(data) == 12 else decode_jpeg(data)


#: Smallest images :func:`restore` runs a network on (least side, pixels): on 1-2 pixel strips and
#: squares up to 12x12 it lost PSNR (up to 2.5 dB at quality 75-90, on crops of scikit-image's photographs).
RESTORE_MIN_SIDE, RESTORE_MIN_PIXELS = 4, 256


def _restorable(pixels: np.ndarray) -> bool:
    h, w = pixels.shape[:2]
    return min(h, w) >= RESTORE_MIN_SIDE and h * w >= RESTORE_MIN_PIXELS


def _restore_components(stages: ModelStages, data: bytes, coding: str) -> np.ndarray:
    """An 8-bit JPEG of R, G, B or C, M, Y, K coded "as is" (:func:`colour_coding`), each component restored
    as a grey plane with its own table (the colour network expects YCbCr's artefacts); or of YCCK, whose C,
    M, Y as Pillow reads them (the R, G, B of its YCbCr components) are restored in colour and K as grey.
    Components whose tables are as fine as the model's ``identity_step["component"]`` come back as decoded
    (``scripts/component_identity.py``). Returns RGB."""
    components = decode_jpeg(data, cmyk=True)
    if _restorable(components):
        tables, ycck = component_tables(data), coding == "ycck"
        colour = [stages.post(np.ascontiguousarray(components[..., :3]), tables[0], tables[1], rounded=True,
                              layout=chroma_layout(data))] if ycck else []
        grey = [stages.post(np.ascontiguousarray(components[..., c]), tables[c], None, rounded=True,
                            layout="component")
                for c in range(3 if ycck else 0, components.shape[-1])]
        components = np.dstack(colour + grey)
    return components if components.shape[-1] == 3 else cmyk_to_rgb(components)


def _read_file(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CjpgError(f"cannot read {path}: {exc.strerror or exc}") from None
