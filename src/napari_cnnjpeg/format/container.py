"""The ``.cjpg`` container, format version 4 (specified in ``docs/format.md``).

Layout: the JPEG stream of plane 0 with the metadata inserted as APP9 segments
(after SOI and any JFIF APP0), followed by the JPEG streams of planes 1..N-1. A 2D
file is therefore a plain JPEG file, and a stack opens as its first plane in any
viewer. The metadata holds an index (length and CRC-32 of each payload), so one
plane is read without touching the others. A single-plane file whose array is what
its JPEG frame holds leaves out what the frame says (shape, RGB) and the index (its
payload runs to the end of the file). From version 4 the JSON document is stored deflated
with a preset dictionary of the format's own field names (:data:`DICTIONARY`), so a photo's
metadata costs about 50 bytes and a 12-bit plane's about 90.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CjpgError

VERSION = 4
MAGIC = b"CJPG\x00"
APP9 = b"\xff\xe9"
_HEAD = struct.Struct(">5sBHHI")  # magic, version, chunk index, chunk count, CRC-32 of the whole stored document
_CHUNK = 65533 - _HEAD.size
#: Fields every file of format version 1 has.
KNOWN_REQUIRED = frozenset(
    {"version", "model", "model_sha256", "quality", "subsampling", "shape", "dtype", "rgb", "axes", "mapping", "planes"}
)
#: From version 2, fields that hold these values are left out of the file (a reader puts them back).
DEFAULTS = {"model_sha256": None, "subsampling": "4:2:0", "dtype": "uint8", "rgb": False, "axes": None,
            "mapping": None, "required": [], "image": {}}
#: Hex digits of the weights' SHA-256 a writer records (64 bits: the file only chooses among
#: the installation's own models); a reader accepts 16 to 64 and compares that many.
HASH_DIGITS = 16
#: Optional fields this reader understands; a file listing others under "required" is refused.
KNOWN_OPTIONAL = frozenset({"downscale", "bits", "levels", "weighting", "weighting_dc", "arithmetic"})
#: Largest factor by which a payload may be smaller than the image (``downscale``).
MAX_DOWNSCALE = 4
#: Dtypes a file may declare: uint8 is stored as is, the others through a linear mapping to 8 or 12 bits.
DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "uint32", "float16", "float32", "float64")
MAX_PLANES = 10_000_000
MAX_META = 256 * 1024 * 1024
#: Besides MAX_META, a document may take at most META_FLOOR bytes plus META_RATIO times the file's size:
#: writers' documents take under 0.6 of their file (an index entry and a mapping per plane of at least
#: about 100 bytes), and parsed JSON takes up to about 25 times its bytes in memory, so a small file's
#: header must not inflate to hundreds of megabytes (a 30 kB file to 256 MiB of ``[{},{},...]``: 7 GB).
META_FLOOR = 1024 * 1024
META_RATIO = 4


def meta_limit(size: int) -> int:
    """The most bytes the JSON document of a file of ``size`` bytes may take (:data:`META_RATIO`)."""
    return min(MAX_META, META_FLOOR + META_RATIO * size)


#: Version 4: the preset dictionary the JSON document is deflated with (raw DEFLATE, RFC 1951, as
#: zlib's ``zdict``). Part of the format: never changed within a version (``docs/format.md`` quotes it).
DICTIONARY = (
    b'"image":{"name":"","scale":[1.0,1.0],"translate":[0.0,0.0],"axis_labels":["z","y","x"],"units":'
    b'["micrometer","micrometer"],"contrast_limits":[0.0,],"colormap":"gray","rgba":true},"axes":"tczyx",'
    b'"rgb":true,"downscale":2,"subsampling":"4:4:4","subsampling":"4:2:2","mode":"range","mode":"plane",'
    b'"dtype":"float32","dtype":"int16","dtype":"uint16","mapping":{"kind":"linear-minmax","mode":"stack",'
    b'"min":[0.0],"max":[4095.0]},"required":["bits","levels","weighting","weighting_dc","arithmetic"],'
    b'"bits":12,"levels":4095,"weighting":0.7,"weighting_dc":[0.25,0.5],"arithmetic":true,"shape":[3,512,512],'
    b'"planes":[{"length":,"crc32":"'
    b'"},{"length":,"crc32":"'
    b'{"model":"restore-s-v3","model":"jpeg","model":"micro-s-v6","model":"joint-s-v8",'
    b'"model_sha256":"","quality":75,"crc32":"'
)


def _deflate(meta: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
    return z.compress(meta) + z.flush()


def _inflate(stored: bytes, limit: int = MAX_META) -> bytes:
    """A version 4 document's JSON bytes; a clear error where they do not inflate, or inflate beyond ``limit``."""
    z = zlib.decompressobj(-15, DICTIONARY)
    try:
        meta = z.decompress(stored, limit + 1)
    except zlib.error:
        raise CjpgError("corrupt .cjpg header: the metadata does not inflate") from None
    if len(meta) > limit:
        raise CjpgError(f"corrupt .cjpg header: the metadata inflates beyond {limit} bytes, more than a file "
                        f"of its size holds")
    if not z.eof or z.unused_data:
        raise CjpgError("corrupt .cjpg header: the metadata's deflate stream is cut short or runs on")
    return meta


def _segments(meta: bytes) -> bytes:
    crc = zlib.crc32(meta)
    chunks = [meta[i : i + _CHUNK] for i in range(0, len(meta), _CHUNK)] or [b""]
    out = bytearray()
    for i, c in enumerate(chunks):
        body = _HEAD.pack(MAGIC, VERSION, i, len(chunks), crc) + c
        out += APP9 + struct.pack(">H", len(body) + 2) + body
    return bytes(out)


def _insert_at(jpeg: bytes) -> int:
    """Offset after SOI and a JFIF APP0 segment, where our segments go."""
    if jpeg[:2] != b"\xff\xd8":
        raise CjpgError("payload is not a JPEG stream (no SOI marker)")
    if jpeg[2:4] == b"\xff\xe0":
        return 4 + struct.unpack(">H", jpeg[4:6])[0]
    return 2


def pack(meta: dict, payloads: list[bytes]) -> bytes:
    """Assemble a file from its metadata (without the index) and JPEG payloads."""
    if not payloads:
        raise CjpgError("a .cjpg file needs at least one plane")
    meta = {k: v for k, v in meta.items() if k not in DEFAULTS or v != DEFAULTS[k] or type(v) is not type(DEFAULTS[k])}
    meta.pop("version", None)  # the segments' header holds it
    # the CRC as 8 hex digits: a file's size does not jitter with the CRC's decimal length
    crcs = [f"{zlib.crc32(p):08x}" for p in payloads]
    if len(payloads) == 1:  # the payload runs to the end of the file
        meta["crc32"] = crcs[0]
        if meta.get("downscale", 1) == 1 and [meta["shape"], meta.get("rgb", False)] == list(_frame_layout(payloads[0])):
            del meta["shape"]
            meta.pop("rgb", None)
    else:
        meta["planes"] = [{"length": len(p), "crc32": c} for p, c in zip(payloads, crcs)]
    document = json.dumps(meta, separators=(",", ":"), allow_nan=False).encode()
    if len(document) > MAX_META:  # readers refuse such a header: do not write a file that cannot be read
        raise CjpgError(f"the metadata of {len(payloads)} planes takes {len(document)} bytes, more than a reader "
                        f"accepts ({MAX_META}): store the stack in several files")
    blob = _deflate(document)
    first = payloads[0]
    at = _insert_at(first)
    out = b"".join([first[:at], _segments(blob), first[at:], *payloads[1:]])
    if len(document) > meta_limit(len(out)):  # a long image name on a tiny image: readers refuse it
        raise CjpgError(f"the metadata takes {len(document)} bytes, more than a reader accepts in a file of "
                        f"{len(out)} bytes ({meta_limit(len(out))}): shorten the image metadata")
    return out


#: The frames the codec writes and reads: baseline, extended, progressive; arithmetic extended and progressive.
_SOF = (0xC0, 0xC1, 0xC2, 0xC9, 0xCA)
_MAX_SEGMENTS = 1000  # marker segments before the frame header (encoders write a handful)


def _frame(read, pos: int, end: int) -> tuple[list[int], bool]:
    """The array shape the JPEG frame whose marker segments start at ``pos`` holds, and whether
    it is RGB (three components)."""
    for _ in range(_MAX_SEGMENTS):  # a crafted file of countless tiny segments must not hang the reader
        if pos + 4 > end:
            break
        marker, length = read(pos, 2), struct.unpack(">H", read(pos + 2, 2))[0]
        if marker[0] != 0xFF or length < 2:
            break
        if marker[1] in _SOF:
            if length < 8:
                break
            _, h, w, n = struct.unpack(">BHHB", read(pos + 4, 6))
            return ([h, w, 3], True) if n == 3 else ([h, w], False)
        if marker[1] in (0xD9, 0xDA):  # EOI or a scan before any frame
            break
        pos += 2 + length
    raise CjpgError("corrupt .cjpg file: plane 0 has no readable JPEG frame header")


def _frame_layout(jpeg: bytes) -> tuple[list[int], bool]:
    """The array shape a JPEG stream's frame holds, and whether it is RGB (three components)."""
    return _frame(lambda o, k: jpeg[o : o + k], 2, len(jpeg))


class _Source:
    """Random access to bytes or to a file on disk."""

    def __init__(self, src: bytes | bytearray | memoryview | str | os.PathLike):
        self._data: bytes | None = None
        self._fh: BinaryIO | None = None
        if isinstance(src, (bytes, bytearray, memoryview)):
            self._data = bytes(src)
            self.size = len(self._data)
        elif not isinstance(src, (str, os.PathLike)):  # an int would be taken as a file number, and closed
            raise CjpgError(f"a .cjpg source is bytes or a path, got {type(src).__name__}")
        else:
            try:
                self._fh = open(src, "rb")
            except OSError as exc:
                raise CjpgError(f"cannot open {src}: {exc.strerror or exc}") from None
            self.size = os.fstat(self._fh.fileno()).st_size

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise CjpgError(f"file is truncated: needs bytes {offset}..{offset + n}, has {self.size}")
        if self._data is not None:
            return self._data[offset : offset + n]
        self._fh.seek(offset)
        return self._fh.read(n)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


@dataclass
class Container:
    """A parsed ``.cjpg`` header with random access to each plane's JPEG payload."""

    meta: dict
    size: int
    _src: _Source
    _prefix: bytes  # plane 0's bytes before our segments, as written (SOI, and a JFIF APP0 if any)
    _app_len: int
    _offsets: list[int]

    @classmethod
    def open(cls, src) -> "Container":
        s = _Source(src)
        try:
            return cls._parse(s)
        except BaseException:
            s.close()
            raise

    @classmethod
    def _parse(cls, s: _Source) -> "Container":
        if s.size < 4 or s.read(0, 2) != b"\xff\xd8":
            raise CjpgError("not a .cjpg file: it does not start like a JPEG stream")
        foreign = _segments_before(s)  # a JFIF APP0 a writer put there, or what a tagging tool inserted
        pos = foreign[-1][1] if foreign else 2
        at, chunks, count, crc, first = pos, [], None, None, None
        while True:
            if s.read(pos, 2) != APP9:
                break
            seg_len = struct.unpack(">H", s.read(pos + 2, 2))[0]
            if seg_len < 2 + _HEAD.size:
                break
            magic, version, idx, n, c = _HEAD.unpack(s.read(pos + 4, _HEAD.size))
            if magic != MAGIC:
                break
            if version > VERSION:
                raise CjpgError(f"file is .cjpg format version {version}; this reader knows up to {VERSION}: upgrade napari-cnnjpeg")
            if idx != len(chunks) or (count is not None and (n != count or c != crc or version != first)):
                raise CjpgError("corrupt .cjpg header: metadata segments out of order")
            count, crc, first = n, c, version
            chunks.append(s.read(pos + 4 + _HEAD.size, seg_len - 2 - _HEAD.size))
            pos += 2 + seg_len
            if len(chunks) == count:
                break
        if not chunks:
            raise CjpgError("not a .cjpg file: no CJPG metadata segment (a plain JPEG? use napari_cnnjpeg.restore)")
        if len(chunks) != count:
            raise CjpgError("corrupt .cjpg header: metadata segments missing")
        blob = b"".join(chunks)
        if zlib.crc32(blob) != crc:
            raise CjpgError("corrupt .cjpg header: metadata checksum mismatch")
        if version >= 4:
            blob = _inflate(blob, meta_limit(s.size))
        elif len(blob) > MAX_META:
            raise CjpgError(f"corrupt .cjpg header: the metadata takes more than {MAX_META} bytes")
        try:
            meta = json.loads(blob)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CjpgError("corrupt .cjpg header: metadata is not valid JSON") from None
        except RecursionError:  # [[[[...: nested deeper than Python's parser goes
            raise CjpgError("corrupt .cjpg header: metadata nested too deeply") from None
        except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
            raise CjpgError("corrupt .cjpg header: metadata holds a number too long to read") from None
        app_len = pos - at
        # plane 0 as written: SOI, the writer's JFIF APP0 if any, then what follows our segments. Segments
        # another program inserted before ours (exiftool's EXIF) are not part of it: where there are
        # such, the prefix whose plane 0 passes its CRC-32 is the one the writer wrote.
        prefixes = [s.read(0, at)]
        jfif = [s.read(a, b - a) for a, b in foreign if s.read(a, 2) == b"\xff\xe0" and s.read(a + 4, 5) == b"JFIF\x00"]
        if foreign and not (len(foreign) == 1 and jfif):
            prefixes += [b"\xff\xd8" + segment for segment in jfif] + [b"\xff\xd8"]
        for prefix in prefixes[1:]:
            try:
                found = cls._layout(meta, version, s, prefix, at, app_len, pos)
            except CjpgError:
                continue
            if found._plane0_intact():
                return found
        return cls._layout(meta, version, s, prefixes[0], at, app_len, pos)

    @classmethod
    def _layout(cls, meta, version: int, s: _Source, prefix: bytes, at: int, app_len: int, pos: int) -> "Container":
        """The container whose plane 0 is ``prefix`` followed by the stream after our segments (at ``at``,
        ``app_len`` bytes): the checked header and each plane's offset."""
        extra = at - len(prefix)  # bytes before our segments that plane 0 does not hold
        if isinstance(meta, dict) and version >= 3:
            meta = _single_plane_fields(meta, version, s, pos, app_len + extra)
        meta = _check_meta(meta)
        lengths = [p["length"] for p in meta["planes"]]
        offsets, off = [], lengths[0] + app_len + extra
        for n in lengths[1:]:
            offsets.append(off)
            off += n
        if off > s.size:
            raise CjpgError(f"file is truncated: the index needs {off} bytes, the file has {s.size}")
        return cls(meta, s.size, s, prefix, app_len, [at + app_len] + offsets)

    def _plane0_intact(self) -> bool:
        try:
            self.payload(0)
        except CjpgError:
            return False
        return True

    def __len__(self) -> int:
        return len(self.meta["planes"])

    def payload(self, k: int) -> bytes:
        """The JPEG stream of plane ``k``, checked against its CRC-32."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise CjpgError(f"a plane index is an integer, got {k!r}")
        if not 0 <= k < len(self):
            raise CjpgError(f"plane {k} out of range: the file has {len(self)} planes")
        entry = self.meta["planes"][k]
        if k == 0:
            data = self._prefix + self._src.read(self._offsets[0], entry["length"] - len(self._prefix))
        else:
            data = self._src.read(self._offsets[k], entry["length"])
        if zlib.crc32(data) != entry["crc32"]:
            resaved = (" (or another program re-saved it, keeping this package's header over new pixels: "
                       "napari_cnnjpeg.restore, cnnjpeg restore, opens that as a plain JPEG)") if k == 0 else ""
            raise CjpgError(f"corrupt or truncated .cjpg file: plane {k} fails its checksum{resaved}")
        return data

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Most APPn/COM segments read before the CJPG segments (other programs insert EXIF, XMP, ICC, comments).
MAX_SEGMENTS_BEFORE = 64


def _segments_before(s: _Source) -> list[tuple[int, int]]:
    """(start, end) of the APPn and COM segments after SOI and before the first CJPG segment."""
    out, pos = [], 2
    while len(out) < MAX_SEGMENTS_BEFORE and pos + 4 <= s.size:
        marker = s.read(pos, 2)
        if marker[0] != 0xFF or not (0xE0 <= marker[1] <= 0xEF or marker[1] == 0xFE):
            break
        if marker == APP9 and s.read(pos + 4, len(MAGIC)) == MAGIC:
            break
        end = pos + 2 + struct.unpack(">H", s.read(pos + 2, 2))[0]
        if end <= pos + 2 or end > s.size:
            break
        out.append((pos, end))
        pos = end
    return out


def _single_plane_fields(meta: dict, version: int, s: _Source, pos: int, app_len: int) -> dict:
    """Version 3: the fields a writer leaves out, put back (version; a single plane's index, shape, RGB)."""
    meta = {**meta, "version": version}
    if "planes" in meta:
        return meta
    if "crc32" not in meta:
        raise CjpgError("corrupt .cjpg header: no plane index and no crc32")
    meta["planes"] = [{"length": s.size - app_len, "crc32": meta.pop("crc32")}]
    if "shape" not in meta:
        shape, rgb = _frame(s.read, pos, s.size)
        if meta.setdefault("rgb", rgb) != rgb:
            raise CjpgError("corrupt .cjpg header: 'rgb' contradicts the JPEG frame")
        meta["shape"] = shape
    return meta


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_hex(v, lo: int, hi: int) -> bool:
    """Whether ``v`` is a string of ``lo`` to ``hi`` lowercase hex digits."""
    return isinstance(v, str) and lo <= len(v) <= hi and all(ch in "0123456789abcdef" for ch in v)


def _crc(v) -> int | None:
    """A plane's CRC-32: 8 lowercase hex digits (version 2) or an integer (version 1); None if neither."""
    if _is_hex(v, 8, 8):
        return int(v, 16)
    return v if _is_int(v) and 0 <= v < 2**32 else None


def _check_meta(meta) -> dict:
    """The metadata with its defaults filled in; refuses what a reader cannot trust, naming the problem."""
    if not isinstance(meta, dict):
        raise CjpgError("corrupt .cjpg header: metadata is not an object")
    if not _is_int(meta.get("version")) or not 1 <= meta["version"] <= VERSION:
        raise CjpgError(f"unsupported .cjpg format version {_short(meta.get('version'))}; this reader knows 1 "
                        f"to {VERSION}")
    if meta["version"] >= 2:
        meta = {**DEFAULTS, **meta}
    required = meta.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise CjpgError(f"corrupt .cjpg header: 'required' {_short(required)} is not a list of field names")
    unknown = set(required) - KNOWN_REQUIRED - KNOWN_OPTIONAL
    if unknown:
        raise CjpgError(f"file needs features this reader does not know: {_short(sorted(unknown))}; "
                        "upgrade napari-cnnjpeg")
    missing = KNOWN_REQUIRED - set(meta)
    if missing:
        raise CjpgError(f"corrupt .cjpg header: missing fields {sorted(missing)}")
    planes = meta["planes"]
    if not isinstance(planes, list) or not 1 <= len(planes) <= MAX_PLANES:
        raise CjpgError("corrupt .cjpg header: bad plane index")
    for p in planes:
        if not (isinstance(p, dict) and _is_int(p.get("length")) and p["length"] >= 4 and _crc(p.get("crc32"))
                is not None):
            raise CjpgError("corrupt .cjpg header: bad plane index entry")
    meta["planes"] = [dict(p, crc32=_crc(p["crc32"])) for p in planes]
    shape = meta["shape"]
    if not isinstance(shape, list) or not 2 <= len(shape) <= 32 or not all(_is_int(d) and d >= 1 for d in shape):
        raise CjpgError(f"corrupt .cjpg header: absurd shape {_short(shape)}")
    _check_fields(meta)
    plane_dims = 3 if meta["rgb"] else 2
    if meta["rgb"] and shape[-1] != 3:
        raise CjpgError(f"corrupt .cjpg header: RGB shape {_short(shape)} does not end in 3")
    n = 1
    for d in shape[:-plane_dims]:
        n *= d
    if n != len(planes) or len(shape) < plane_dims:
        raise CjpgError(f"corrupt .cjpg header: shape {_short(shape)} does not match {len(planes)} planes")
    h, w = shape[len(shape) - plane_dims : len(shape) - plane_dims + 2]
    if h > 65500 or w > 65500:
        raise CjpgError(f"corrupt .cjpg header: absurd plane size {h}x{w}")
    downscale = meta.get("downscale", 1)
    if not _is_int(downscale) or not 1 <= downscale <= MAX_DOWNSCALE:
        raise CjpgError(f"corrupt .cjpg header: downscale {_short(downscale)} is not an integer from 1 to "
                        f"{MAX_DOWNSCALE}")
    bits = meta.get("bits", 8)
    if bits not in (8, 12) or isinstance(bits, bool):
        raise CjpgError(f"corrupt .cjpg header: bits {_short(bits)} is not 8 or 12")
    if bits == 12 and (meta["dtype"] == "uint8" or downscale != 1 or "bits" not in meta.get("required", [])):
        raise CjpgError("corrupt .cjpg header: 12-bit payloads need data of more than 8 bits, no downscale, "
                        "and 'bits' listed under 'required'")
    levels = meta.get("levels", 4095 if bits == 12 else 255)
    if bits == 12 and (not _is_int(levels) or not 255 <= levels <= 4095):
        raise CjpgError(f"corrupt .cjpg header: levels {_short(levels)} is not an integer from 255 to 4095")
    if bits == 12 and "levels" in meta and "levels" not in meta.get("required", []):
        raise CjpgError("corrupt .cjpg header: 'levels' must be listed under 'required'")
    if bits == 8 and "levels" in meta:
        raise CjpgError("corrupt .cjpg header: 'levels' is for 12-bit payloads")
    if "weighting" in meta or "weighting_dc" in meta:
        _check_weighting(meta, bits)
    if "arithmetic" in meta and (meta["arithmetic"] is not True or bits != 12
                                 or "arithmetic" not in meta.get("required", [])):
        raise CjpgError("corrupt .cjpg header: 'arithmetic' (arithmetic-coded payloads) must be true, on 12-bit "
                        "payloads, and listed under 'required'")
    if meta["dtype"] not in DTYPES:
        raise CjpgError(f"corrupt .cjpg header: unknown dtype {_short(meta['dtype'])}; known: {', '.join(DTYPES)}")
    sha = meta["model_sha256"]
    if sha is not None and not _is_hex(sha, HASH_DIGITS, 64):
        raise CjpgError(f"corrupt .cjpg header: model_sha256 {_short(sha)} is not {HASH_DIGITS} to 64 hex digits")
    _check_mapping(meta["mapping"], meta["dtype"], len(planes))
    return meta


def _check_fields(meta: dict) -> None:
    """The plain fields a reader hands on (:func:`~napari_cnnjpeg.codec.info`, napari): ``rgb`` a bool,
    ``quality`` an integer 1-100, ``subsampling`` one of the three, ``axes`` null or one letter per axis."""
    if not isinstance(meta["model"], str):
        raise CjpgError(f"corrupt .cjpg header: model {_short(meta['model'])} is not a model id")
    if not isinstance(meta["rgb"], bool):
        raise CjpgError(f"corrupt .cjpg header: rgb {_short(meta['rgb'])} is not true or false")
    if not _is_int(meta["quality"]) or not 1 <= meta["quality"] <= 100:
        raise CjpgError(f"corrupt .cjpg header: quality {_short(meta['quality'])} is not an integer from 1 to 100")
    if meta["subsampling"] not in ("4:2:0", "4:2:2", "4:4:4"):
        raise CjpgError(f"corrupt .cjpg header: unknown chroma subsampling {_short(meta['subsampling'])}")
    axes = meta["axes"]
    if axes is not None and not (isinstance(axes, str) and len(axes) == len(meta["shape"])):
        raise CjpgError(f"corrupt .cjpg header: axes {_short(axes)} do not name each of the {len(meta['shape'])} axes")


def _short(value) -> str:
    """``repr(value)`` cut to 80 characters: a crafted file's values in an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_weighting(meta: dict, bits: int) -> None:
    """A frequency weighting (``format.weighting``) is a ``flatten`` number with an optional
    ``weighting_dc`` pair (the DC's factor and largest weight), on 12-bit grey planes only, both
    listed under 'required'."""
    from .weighting import DC_RANGE, FLATTEN_RANGE

    def number(v, low, high) -> bool:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and low <= v <= high

    if "weighting" not in meta:
        raise CjpgError("corrupt .cjpg header: weighting_dc without a weighting")
    if not number(meta["weighting"], *FLATTEN_RANGE):
        raise CjpgError(f"corrupt .cjpg header: weighting {_short(meta['weighting'])} is not a number from "
                        f"{FLATTEN_RANGE[0]} to {FLATTEN_RANGE[1]}")
    dc = meta.get("weighting_dc", [1.0, 1.0])
    if not (isinstance(dc, list) and len(dc) == 2 and all(number(v, *DC_RANGE) for v in dc)):
        raise CjpgError(f"corrupt .cjpg header: weighting_dc {_short(dc)} is not two numbers from {DC_RANGE[0]} "
                        f"to {DC_RANGE[1]}")
    required = meta.get("required", [])
    if bits != 12 or meta["rgb"] or "weighting" not in required or ("weighting_dc" in meta) != ("weighting_dc" in required):
        raise CjpgError("corrupt .cjpg header: a weighting is for 12-bit grey planes and must be listed under "
                        "'required', with its weighting_dc")


def _check_mapping(mapping, dtype: str, planes: int) -> None:
    """A uint8 file has no mapping; any other has one finite [min, max] per plane, within its dtype,
    except that an integer dtype's min may lie below its least value by up to its span (the codec
    widens a plane's range downward to align flat backgrounds with JPEG's DC grid; decoding clips)."""
    import numpy as np

    if dtype == "uint8":
        if mapping is not None:
            raise CjpgError("corrupt .cjpg header: a uint8 file has a value mapping")
        return
    if not isinstance(mapping, dict) or mapping.get("kind") != "linear-minmax":
        raise CjpgError(f"corrupt .cjpg header: a {dtype} file needs a 'linear-minmax' value mapping")
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    for key in ("min", "max"):
        values = mapping.get(key)
        if not isinstance(values, list) or len(values) != planes:
            raise CjpgError(f"corrupt .cjpg header: mapping {_short(key)} needs one value per plane ({planes})")
        least = float(info.min)
        if key == "min" and info.dtype.kind in "iu":  # an integer min may lie below the dtype by its span
            least -= float(info.max) - float(info.min)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not least <= v <= float(info.max):
                raise CjpgError(f"corrupt .cjpg header: mapping {key} {_short(v)} is not a finite {dtype} value")
    if any(lo > hi for lo, hi in zip(mapping["min"], mapping["max"])):
        raise CjpgError("corrupt .cjpg header: a mapping min exceeds its max")
    if any(not math.isfinite(float(hi) - float(lo)) for lo, hi in zip(mapping["min"], mapping["max"])):
        raise CjpgError("corrupt .cjpg header: a mapping range (max - min) overflows float64")


def is_cjpg(data: bytes) -> bool:
    """Whether bytes hold a readable ``.cjpg``: a JPEG stream with its CJPG metadata segment, whose
    first plane passes its CRC-32 (a program that re-saves a ``.cjpg``, ImageMagick's ``convert`` say,
    may keep the segment over new pixels: that file is a plain JPEG)."""
    try:
        c = Container.open(data)
    except CjpgError:
        return False
    try:
        return c._plane0_intact()
    finally:
        c.close()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` through a temporary file and a rename: never half-written.

    A symbolic link's target is written (the link stays), and an existing file keeps its
    permissions. A character device or a named pipe (``/dev/null``, a FIFO) is written in
    place, never replaced by a regular file. Failures are :class:`CjpgError` naming ``path``,
    not the temporary file.
    """
    if isinstance(path, bytes):  # a path as os.fsencode gives it
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise CjpgError(f"cannot write: a file path is a str or os.PathLike, got {type(path).__name__}")
    if not os.fspath(path):
        raise CjpgError("cannot write: no file name given")
    path = Path(os.path.realpath(path))
    try:
        if path.is_dir():
            raise CjpgError(f"cannot write {path}: it is a folder")
        if not path.parent.is_dir():
            raise CjpgError(f"cannot write {path}: there is no folder {path.parent}")
        try:
            kind = path.stat().st_mode
        except FileNotFoundError:
            kind = None
    except OSError as exc:  # a name too long, a loop of links, a folder it may not search
        raise CjpgError(f"cannot write {path}: {exc.strerror or exc}") from None
    if kind is not None and (stat.S_ISCHR(kind) or stat.S_ISFIFO(kind)):  # a rename would replace the device
        _write_in_place(path, data)
        return
    if kind is not None and not stat.S_ISREG(kind):
        raise CjpgError(f"cannot write {path}: it is not a regular file")
    if kind is not None:
        mode = stat.S_IMODE(kind)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:  # the name's start only: a temporary name must fit the file system's limit as the name does
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CjpgError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CjpgError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _write_in_place(path: Path, data: bytes) -> None:
    """Write to a character device or a named pipe, which has no contents to keep whole."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise CjpgError(f"cannot write {path}: {exc.strerror or exc}") from None
