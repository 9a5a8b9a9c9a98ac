"""JPEG I/O: 8-bit through Pillow (libjpeg-turbo) or mozjpeg (jpeglib), 12-bit (SOF1) through imagecodecs,
recoded with arithmetic coding (SOF9, SOF10) by libjpeg-turbo 3 through turbojpeg."""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import CjpgError

#: Chroma subsampling names accepted by :func:`encode_jpeg`, mapped to Pillow's codes.
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
#: Sample precisions of payloads: 8-bit baseline JPEG, or 12-bit extended sequential JPEG (SOF1).
BITS = (8, 12)
#: Largest sample value of a 12-bit payload.
MAX12 = 4095
#: BT.601 luma weights, as JPEG's colour transform uses them.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
#: Largest side a baseline JPEG can hold.
MAX_SIDE = 65500
#: Quantisation tables tuned for PSNR (see :func:`tables_for_quality`), as the shipped
#: ``jpeg-tuned`` and joint models use them. Chosen on training photos (never Kodak):
#: on 8 of them, plain JPEG with these tables has a BD-rate of about -19 % against
#: libjpeg's standard tables.
TUNED_TABLES = {"flatness": 0.2, "chroma_scale": 0.4}


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image, as JPEG computes it, rounded, in its dtype (uint8, or uint16 of
    12-bit samples)."""
    return np.rint(rgb @ LUMA_WEIGHTS).astype(rgb.dtype)


def _check_plane(plane: np.ndarray, dtype, quality: int, subsampling: str) -> None:
    """A plane an encoder takes: ``dtype`` (H, W) or (H, W, 3), sides 1-65500, quality 1-100."""
    name = "12-bit JPEG" if dtype == np.uint16 else "JPEG"
    if plane.dtype != dtype or plane.ndim not in (2, 3) or (plane.ndim == 3 and plane.shape[2] != 3):
        raise CjpgError(f"{name} planes must be {np.dtype(dtype).name} (H, W) or (H, W, 3), "
                        f"got {plane.dtype} {plane.shape}")
    if not 1 <= int(quality) <= 100:
        raise CjpgError(f"quality must be between 1 and 100, got {quality}")
    if subsampling not in SUBSAMPLING:
        raise CjpgError(f"unknown chroma subsampling {subsampling!r}; use one of {sorted(SUBSAMPLING)}")
    h, w = plane.shape[:2]
    if min(h, w) < 1 or max(h, w) > MAX_SIDE:
        raise CjpgError(f"a JPEG plane must be 1 to {MAX_SIDE} pixels a side, got {h}x{w}")


def encode_jpeg(
    plane: np.ndarray, quality: int = 75, subsampling: str = "4:2:0", tables: dict | None = None,
    trellis: bool = False, progressive: bool = False,
) -> bytes:
    """Encode a uint8 plane, (H, W) or (H, W, 3), as an 8-bit JPEG with optimised Huffman tables.

    ``tables`` (a tuning for :func:`tables_for_quality`) replaces libjpeg's standard
    quantisation tables; the result is an ordinary JPEG either way. ``trellis``: mozjpeg
    chooses each block's quantised coefficients for rate and distortion together
    (trellis quantisation, with the same tables): an ordinary JPEG, about 11 % smaller
    than libjpeg-turbo's at equal PSNR on photos (:func:`encode_trellis`). ``progressive``: progressive scans where they are smaller than
    one baseline scan (:func:`optimize_scans` without ``trellis``; 2-4 % on photos).
    """
    _check_plane(plane, np.uint8, quality, subsampling)
    if trellis:
        return encode_trellis(plane, *tables_for_quality(int(quality), tables), subsampling, progressive)
    if tables:
        luma_t, chroma_t = tables_for_quality(int(quality), tables)
        setting = {"qtables": [t.astype(int).ravel().tolist() for t in (luma_t, chroma_t)[: plane.ndim - 1]]}
    else:
        setting = {"quality": int(quality)}
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(plane)).save(
        buf, format="JPEG", subsampling=SUBSAMPLING[subsampling], optimize=True, **setting
    )
    return optimize_scans(buf.getvalue()) if progressive else buf.getvalue()


_MOZJPEG_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _mozjpeg():
    import jpeglib

    jpeglib.version.set("mozjpeg403")  # jpeglib's library is process-wide; this package uses only this one
    return jpeglib


@contextmanager
def _scratch_file():
    """A temporary .jpg path, removed afterwards: jpeglib reads and writes files only.

    Use it inside :data:`_MOZJPEG_LOCK`: jpeglib's library is process-wide, and not
    documented as thread-safe.
    """
    fd, path = tempfile.mkstemp(suffix=".jpg")
    os.close(fd)
    try:
        yield path
    finally:
        os.unlink(path)


def _mozjpeg_required():
    try:
        return _mozjpeg()
    except ImportError:
        raise CjpgError("mozjpeg (trellis quantisation) is reached through the jpeglib package, which is "
                        "not installed: pip install jpeglib") from None


def encode_trellis(plane: np.ndarray, luma_table: np.ndarray, chroma_table: np.ndarray | None,
                   subsampling: str = "4:2:0", progressive: bool = True) -> bytes:
    """A uint8 plane coded by mozjpeg 4.0.3 (through jpeglib) with trellis quantisation and given tables.

    Tables are 8x8 in natural order, steps 1-255. The smaller of mozjpeg's progressive scans
    and the same coefficients recoded losslessly by libjpeg-turbo as one baseline scan with
    optimised Huffman tables; always the latter with ``progressive=False``.
    """
    jpeglib = _mozjpeg_required()
    grey = plane.ndim == 2
    image = jpeglib.from_spatial(np.ascontiguousarray(plane[..., None] if grey else plane))
    if not grey:
        image.samp_factor = subsampling
    qt = np.stack([luma_table] if grey else [luma_table, chroma_table]).astype(np.uint16)
    with _scratch_file() as path, _MOZJPEG_LOCK:
        image.write_spatial(path, qt=qt)
        scans = Path(path).read_bytes()
        with jpeglib.version("turbo210"):  # mozjpeg writes progressive scans only: recode them as one
            coefficients = jpeglib.read_dct(path)
            coefficients.progressive_mode = False
            coefficients.write_dct(path, flags=["+OPTIMIZE_CODING"])
        single = Path(path).read_bytes()
    return scans if progressive and len(scans) < len(single) else single


def encode_mozjpeg(image: np.ndarray, quality: int) -> bytes:
    """A uint8 RGB or grey image as mozjpeg's ``cjpeg -quality Q`` writes it.

    mozjpeg 4.0.3's defaults (through jpeglib): its own quantisation tables (table set 3,
    the same for luma and chroma, steps above 255 at low quality), trellis quantisation,
    progressive scans, 4:2:0.
    """
    jpeglib = _mozjpeg_required()
    image = jpeglib.from_spatial(np.ascontiguousarray(image[..., None] if image.ndim == 2 else image))
    with _scratch_file() as path, _MOZJPEG_LOCK:
        image.write_spatial(path, qt=int(quality))
        return Path(path).read_bytes()


def optimize_scans(data: bytes) -> bytes:
    """The same JPEG, losslessly recoded by mozjpeg with progressive scans it chooses.

    Every decoder shows the same pixels (progressive JPEG is part of the standard that
    browsers and viewers read); on photos it is 2-4 % smaller than libjpeg-turbo's
    optimised baseline. Returns ``data`` itself where that is smaller, where mozjpeg cannot
    recode it, or where jpeglib is not installed (``scripts/device_check.sh``'s bare
    environment).
    """
    try:
        jpeglib = _mozjpeg()
    except ImportError:
        return data
    with tempfile.TemporaryDirectory() as tmp, _MOZJPEG_LOCK:  # jpeglib reads and writes files only
        src, dst = os.path.join(tmp, "in.jpg"), os.path.join(tmp, "out.jpg")
        with open(src, "wb") as fh:
            fh.write(data)
        try:
            jpeglib.read_dct(src).write_dct(dst)
        except (OSError, ValueError):
            return data
        with open(dst, "rb") as fh:
            out = fh.read()
    return out if len(out) < len(data) else data


def strip_jfif(data: bytes) -> bytes:
    """The JPEG stream without its JFIF APP0 segments, 18 bytes each.

    They hold only a version and a pixel density. Without them, decoders (libjpeg and its
    descendants, browsers) take a three-component stream whose components are numbered
    1-3, as every encoder here numbers them, as YCbCr, and a one-component stream as grey:
    the same pixels. Returns ``data`` unchanged where it is not a JPEG stream.
    """
    if data[:2] != b"\xff\xd8":
        return data
    out, pos = [data[:2]], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] not in (0xDA, 0xD9):
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if not (data[pos + 1] == 0xE0 and data[pos + 4 : pos + 9] == b"JFIF\x00"):
            out.append(data[pos:end])
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def encode_jpeg12(plane: np.ndarray, quality: int = 75, subsampling: str = "4:2:0") -> bytes:
    """Encode a uint16 plane of values 0-4095, (H, W) or (H, W, 3), as a 12-bit JPEG (SOF1).

    libjpeg-turbo 3 through imagecodecs, with its standard tables scaled by ``quality``
    and optimised Huffman tables. Readers: libjpeg-turbo 3 and imagecodecs; not Pillow
    or web browsers.
    """
    import imagecodecs

    _check_plane(plane, np.uint16, quality, subsampling)
    if plane.max(initial=0) > MAX12:
        raise CjpgError(f"12-bit JPEG samples must be 0 to {MAX12}, got up to {int(plane.max())}")
    return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(plane), level=int(quality), bitspersample=12,
                                          subsampling=subsampling.replace(":", ""), optimize=True))


#: Frame markers of arithmetic-coded DCT JPEG: extended sequential (SOF9) and progressive (SOF10).
ARITHMETIC_FRAMES = (0xC9, 0xCA)


def smallest_coding12(data: bytes) -> bytes:
    """A 12-bit JPEG stream, losslessly recoded with arithmetic coding where that is smaller.

    libjpeg-turbo 3 (through the ``turbojpeg`` package) recodes the same coefficients with
    arithmetic coding, sequential (SOF9) and progressive (SOF10); the smallest of those and
    ``data`` (Huffman, SOF1) is returned. Arithmetic coding is part of the JPEG standard and
    libjpeg-turbo 3 and imagecodecs, the readers of 12-bit JPEG, decode it; on a sparse
    fluorescence plane's empty blocks it costs a fraction of Huffman's bits. It decodes more
    slowly, most on dense planes at high qualities, where it saves least; yet no threshold on
    the saving is applied: each coding's size rises with quality, and so does the smallest of
    them, whereas with a threshold a payload could shrink from one quality to the next where the
    choice switches (a Huffman stream just short of it, then an arithmetic one past it). On the
    micro set (``scripts/arithmetic_study.py``) it saves 26 % of the bytes at quality 20 and 6 %
    at 90, and decodes at about 440 and 28 MP/s against Huffman's 710 and 180. A recoded
    stream is kept only if it decodes to the same samples. Returns ``data`` where turbojpeg is
    not installed.
    """
    try:
        import turbojpeg
    except ImportError:
        return data
    best = data
    for progressive in (False, True):
        try:
            out = turbojpeg.transform(data, arithmetic=True, progressive=progressive, copynone=True)
        except Exception:  # noqa: BLE001 - turbojpeg raises its own error types; the Huffman stream stays
            continue
        if len(out) < len(best):
            best = out
    if best is data or not np.array_equal(decode_jpeg12(best), decode_jpeg12(data)):
        return data
    return best


def is_arithmetic(data: bytes) -> bool:
    """Whether a JPEG stream is arithmetic coded (:data:`ARITHMETIC_FRAMES`)."""
    frame = _frame(data)
    return frame is not None and frame[0] in ARITHMETIC_FRAMES


def decode_jpeg12(data: bytes) -> np.ndarray:
    """Decode a 12-bit JPEG stream to uint16 (H, W) or (H, W, 3), values 0-4095."""
    import imagecodecs

    if jpeg_precision(data) != 12:
        raise CjpgError("corrupt .cjpg file: a payload declared 12-bit is not a 12-bit JPEG stream")
    return _imagecodecs_decode(data, "12-bit JPEG")


def decode_lossless(data: bytes) -> np.ndarray:
    """Decode a lossless JPEG stream (SOF3 and kin, 2-16 bits) to uint8 or uint16, as it was written."""
    return _imagecodecs_decode(data, "lossless JPEG")


def _imagecodecs_decode(data: bytes, what: str) -> np.ndarray:
    """Decode through libjpeg-turbo 3 (imagecodecs), which fills a truncated stream with grey
    and only warns: a stream must end its last scan with the end-of-image marker. A frame declaring
    more pixels than Pillow decodes is refused first (:func:`check_pixels`), as 8-bit streams are."""
    import imagecodecs

    check_pixels(data)
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):  # scan data holds no 0xFFD9 (markers are escaped)
        raise CjpgError(f"truncated {what} stream: its scan data has no end-of-image marker")
    try:
        return imagecodecs.jpeg8_decode(data)
    except Exception as exc:  # noqa: BLE001 - imagecodecs raises its own error types
        raise CjpgError(f"corrupt or truncated {what} stream: {exc}") from None


#: Frame markers of lossless JPEG (process 14 and its arithmetic / differential kin): no DCT, no tables.
LOSSLESS_FRAMES = (0xC3, 0xC7, 0xCB, 0xCF)


def _frame(data: bytes) -> tuple[int, int, int, int] | None:
    """The (marker, sample precision, height, width) of a JPEG stream's frame header; None where there is none."""
    i = 2
    while i + 9 < len(data) and data[:2] == b"\xff\xd8":
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if _is_frame(marker):
            height, width = (int.from_bytes(data[j : j + 2], "big") for j in (i + 5, i + 7))
            return marker, data[i + 4], height, width
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _is_frame(marker: int) -> bool:
    """Whether a marker starts a frame header (SOF0-SOF15; not DHT, JPG or DAC)."""
    return 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)


def decodable_pixels() -> int | None:
    """The most pixels a JPEG plane may have for Pillow to decode it (twice ``PIL.Image.MAX_IMAGE_PIXELS``,
    read when called); None where that guard is off."""
    limit = Image.MAX_IMAGE_PIXELS
    return 2 * limit if limit else None


def check_pixels(data: bytes) -> None:
    """Refuse a JPEG stream whose frame header declares more pixels than Pillow decodes
    (:func:`decodable_pixels`: a decompression bomb), before anything is allocated."""
    frame, limit = _frame(data), decodable_pixels()
    if frame and limit and frame[2] * frame[3] > limit:
        raise CjpgError(f"JPEG declares absurd dimensions: {frame[2]}x{frame[3]} pixels, more than "
                        f"{limit} (PIL.Image.MAX_IMAGE_PIXELS guards against decompression bombs)")


#: Most scans a ``.cjpg`` payload may have. Each scan costs the decoder a pass over the plane's blocks:
#: the writers' progressive payloads have at most 10, and a crafted one repeating a 33-byte scan took
#: 10 ms per scan on a 16-megapixel plane (a 1 MB payload: minutes). ``codec.restore`` allows a plain
#: JPEG :data:`MAX_SCANS_PLAIN`, the limit libjpeg-turbo advises for untrusted files.
MAX_SCANS, MAX_SCANS_PLAIN = 100, 500
#: A marker that ends a scan's entropy-coded data (not a stuffed 0xFF00, a restart marker or a fill byte).
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def check_scans(data: bytes, limit: int = MAX_SCANS) -> None:
    """Refuse a JPEG stream of more than ``limit`` scans (SOS markers), before it is decoded."""
    i, scans = 2, 0
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xD9:
            return
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # a fill byte; markers without a length
            i += 1 if marker == 0xFF else 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:
            scans += 1
            if scans > limit:
                raise CjpgError(f"the JPEG stream has more than {limit} scans, more than any encoder writes "
                                "(each costs a pass over the image): refused as a crafted stream")
            end = _END_OF_SCAN.search(data, i)
            if end is None:
                return
            i = end.start()


def jpeg_precision(data: bytes) -> int | None:
    """Sample precision (8 or 12; 2-16 for lossless JPEG) from a JPEG stream's frame header; None where
    there is none."""
    frame = _frame(data)
    return frame and frame[1]


def is_lossless(data: bytes) -> bool:
    """Whether a JPEG stream is lossless JPEG (:data:`LOSSLESS_FRAMES`): nothing to restore."""
    frame = _frame(data)
    return frame is not None and frame[0] in LOSSLESS_FRAMES


def _open(data: bytes) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data), formats=["JPEG"])
    except Image.DecompressionBombError as exc:
        raise CjpgError(f"JPEG declares absurd dimensions: {exc}") from None
    except UnidentifiedImageError:
        raise CjpgError("not a JPEG file: Pillow does not recognise it as JPEG") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CjpgError(f"not a readable JPEG stream: {exc}") from None
    return im


def decode_jpeg(data: bytes, cmyk: bool = False) -> np.ndarray:
    """Decode a JPEG stream to uint8 (H, W) or (H, W, 3); with ``cmyk``, a four-component stream to its
    (H, W, 4) C, M, Y, K as Pillow reads them (:func:`cmyk_to_rgb` turns them into RGB)."""
    im = _open(data)
    try:
        if im.mode not in ("L", "RGB") and not (cmyk and im.mode == "CMYK"):
            im = im.convert("RGB")
        arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise CjpgError(f"corrupt or truncated JPEG stream: {exc}") from None
    return arr


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4) C, M, Y, K as RGB, converted as Pillow converts a CMYK JPEG (no colour management)."""
    h, w = cmyk.shape[:2]
    return np.asarray(Image.frombytes("CMYK", (w, h), np.ascontiguousarray(cmyk).tobytes()).convert("RGB"))


def quant_tables(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """The luma and chroma quantisation tables (natural order, 8x8) of a JPEG stream.

    Read from its DQT segments (tables 0 and 1), so 8- and 12-bit streams alike. The
    chroma table is None for a grayscale JPEG.
    """
    tables, components = _dqt(data)
    if not tables or components[:1] and components[0] not in tables:
        raise CjpgError("the JPEG stream has no quantisation table")
    luma = tables[components[0] if components else min(tables)]
    chroma = tables.get(components[1]) if len(components) > 1 else None
    return luma, chroma


_ZIGZAG = np.array([0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
                    20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
                    59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63])


#: Chroma layouts of a JPEG stream (:func:`chroma_layout`).
LAYOUTS = ("grey", "4:2:0", "4:2:2", "4:4:4", "other")


def chroma_layout(data: bytes) -> str:
    """The stream's chroma layout from its frame header's sampling factors (one of :data:`LAYOUTS`; of
    YCCK, that of its YCbCr components)."""
    factors = _dqt(data, sampling=True)[:3]
    if len(factors) == 1:
        return "grey"
    return {(2, 2): "4:2:0", (2, 1): "4:2:2", (1, 1): "4:4:4"}.get(factors[0], "other") \
        if all(f == (1, 1) for f in factors[1:]) else "other"


def component_tables(data: bytes) -> list[np.ndarray]:
    """The quantisation table (natural order, 8x8) of each of a JPEG stream's components."""
    tables, components = _dqt(data)
    if not components or any(c not in tables for c in components):
        raise CjpgError("the JPEG stream has no quantisation table for each of its components")
    return [tables[c] for c in components]


def colour_coding(data: bytes) -> str:
    """How a JPEG stream's components code colour, as libjpeg decides it: "grey" (one component), "ycbcr",
    "ycck" (Adobe's four components: YCbCr and K) or "as is" (R, G, B or C, M, Y, K themselves: an Adobe
    APP14 segment's transform 0, or, with neither a JFIF nor an Adobe segment, three components numbered
    'R', 'G', 'B', or four components)."""
    jfif, transform, ids = False, None, []
    for marker, seg in _header_segments(data):
        if marker == 0xE0 and seg[:5] == b"JFIF\x00":
            jfif = True
        elif marker == 0xEE and seg[:5] == b"Adobe" and len(seg) >= 12:
            transform = seg[11]
        elif _is_frame(marker) and len(seg) >= 6:
            ids = [seg[6 + 3 * c] for c in range(seg[5]) if 6 + 3 * c < len(seg)]
    if len(ids) == 4:
        return "as is" if transform in (0, None) else "ycck"
    if len(ids) < 3:
        return "grey"
    as_is = not jfif and (transform == 0 if transform is not None else ids == list(b"RGB"))
    return "as is" if as_is else "ycbcr"


def _header_segments(data: bytes):
    """The (marker, payload) of each segment of a JPEG stream before its first scan."""
    if data[:2] != b"\xff\xd8":
        raise CjpgError("not a readable JPEG stream: no start-of-image marker")
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        yield data[i + 1], data[i + 4 : end]
        i = end


def _dqt(data: bytes, sampling: bool = False):
    """Quantisation tables by id (natural order, float32 8x8) and the frame's table id per component;
    with ``sampling``, the frame's (horizontal, vertical) sampling factors per component instead."""
    tables: dict[int, np.ndarray] = {}
    components: list[int] = []
    factors: list[tuple[int, int]] = []
    for marker, seg in _header_segments(data):
        if marker == 0xDB:
            j = 0
            while j < len(seg):
                wide, tid = seg[j] >> 4, seg[j] & 15
                n = 128 if wide else 64
                if j + 1 + n > len(seg):
                    raise CjpgError("corrupt JPEG stream: truncated quantisation table")
                values = np.frombuffer(seg[j + 1 : j + 1 + n], ">u2" if wide else "u1")
                table = np.empty(64, np.float32)
                table[_ZIGZAG] = values
                tables[tid] = table.reshape(8, 8)
                j += 1 + n
        elif _is_frame(marker) and len(seg) >= 6:
            components = [seg[6 + 3 * c + 2] for c in range(seg[5]) if 6 + 3 * c + 2 < len(seg)]
            factors = [(seg[7 + 3 * c] >> 4, seg[7 + 3 * c] & 15) for c in range(seg[5]) if 7 + 3 * c < len(seg)]
    return factors if sampling else (tables, components)


def estimate_quality(pixels: np.ndarray, side: int = 512) -> int | None:
    """Estimate the libjpeg quality a decoded uint8 image was saved at, from its pixels alone.

    JPEG leaves each 8x8 block's DCT coefficients on multiples of the quantisation step of
    their frequency; the largest step that the luma's coefficients (a centre crop of up to
    ``side`` pixels, blocks aligned to the top left) sit on, judged on the values it
    quantised to non-zero, is found per frequency, and the quality whose standard luma
    table is nearest (in log steps) is returned. Within a few points from quality 5 to 95
    on libjpeg's tables, in about 0.1 s; None where too few frequencies show a step (the
    finest quantisation, a flat image, or not a JPEG decode).
    """
    from scipy.fft import dctn

    y = pixels.astype(np.float64) @ LUMA_WEIGHTS if pixels.ndim == 3 else pixels.astype(np.float64)
    top, left = (max(0, (n - side) // 2) // 8 * 8 for n in y.shape)
    y = y[top : top + side, left : left + side]
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    if h * w == 0:
        return None
    blocks = (y[:h, :w] - 128).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    coefficients = dctn(blocks, axes=(1, 2), norm="ortho").reshape(-1, 64)
    steps = np.arange(1, 256)
    found = {}
    for k in range(64):
        v = coefficients[:, k]
        v = v[np.abs(v) > 0.75][:1000]
        if len(v) < 30:
            continue
        counted = np.abs(v)[None, :] >= steps[:, None] / 2  # a step is judged on the values it quantised to non-zero
        n = counted.sum(axis=1)
        score = (np.cos(2 * np.pi * v[None, :] / steps[:, None]) * counted).sum(axis=1) / np.maximum(n, 1)
        on_grid = (score > 0.85) & (n >= 20)
        if on_grid.any():
            step = int(steps[on_grid].max())
            if len(np.unique(np.rint(v / step))) >= 3:  # a step, not a few repeated values
                found[k] = step
    if len(found) < 8:
        return None
    keys, measured = np.array(list(found)), np.log(list(found.values()))
    errors = [np.abs(measured - np.log(_standard_tables(q)[0].ravel()[keys])).mean() for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def tables_for_quality(quality: int, tuning: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Luma and chroma quantisation tables at a quality.

    Without ``tuning``: Pillow's (libjpeg's) tables, the standard's Annex K tables
    scaled by the quality. With ``tuning`` ``{"flatness": a, "chroma_scale": c}``,
    each Annex K table is first flattened towards its geometric mean m
    (``m**(1 - a) * table**a``) and the chroma table multiplied by ``c``, then scaled
    by the quality with libjpeg's formula (5000/q below 50, 200 - 2q above, here in
    floating point): tables that spend bits where PSNR, rather than the eye, gains most.
    """
    tuning = check_tables(tuning)
    if not tuning:
        return _standard_tables(int(quality))
    return _tuned_tables(int(quality), tuning["flatness"], tuning["chroma_scale"])


def check_tables(tuning: dict | None) -> dict | None:
    """A table tuning as floats, or :class:`CjpgError` naming what is wrong with it (None or {}: none)."""
    if not tuning:
        return None
    if not isinstance(tuning, dict) or set(tuning) != {"flatness", "chroma_scale"}:
        raise CjpgError(f"a table tuning is a mapping of flatness and chroma_scale, got {tuning!r}")
    try:
        flatness, chroma_scale = float(tuning["flatness"]), float(tuning["chroma_scale"])
    except (TypeError, ValueError):
        raise CjpgError(f"table tuning values must be numbers, got {tuning!r}") from None
    if not (0 <= flatness <= 1 and 0 < chroma_scale <= 4):
        raise CjpgError(f"table tuning needs flatness in [0, 1] and chroma_scale in (0, 4], got {tuning!r}")
    return {"flatness": flatness, "chroma_scale": chroma_scale}


@lru_cache(maxsize=128)
def _standard_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    luma, chroma = quant_tables(encode_jpeg(np.zeros((8, 8, 3), np.uint8), quality))
    return luma, chroma


@lru_cache(maxsize=128)
def _tuned_tables(quality: int, flatness: float, chroma_scale: float) -> tuple[np.ndarray, np.ndarray]:
    if not 1 <= quality <= 100:
        raise CjpgError(f"quality must be between 1 and 100, got {quality}")
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality  # libjpeg's jpeg_quality_scaling
    out = []
    for base, factor in zip(_standard_tables(50), (1.0, chroma_scale)):  # quality 50: the Annex K tables
        mean = np.exp(np.log(base.astype(np.float64)).mean())
        shaped = mean ** (1 - flatness) * base.astype(np.float64) ** flatness * factor
        out.append(np.clip(np.floor((shaped * scale + 50) / 100), 1, 255).astype(np.float32))
    return out[0], out[1]
