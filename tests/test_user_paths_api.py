"""The Python API as a user calls it: odd argument types, array-likes, awkward paths, crafted headers
and payloads. Each gets the right result or a CjpgError naming the problem, never another library's
exception, a replaced device file or a decompression bomb."""

from __future__ import annotations

import os
import random
import stat
import struct
import threading
import warnings

import numpy as np
import pytest
from skimage.data import astronaut, camera

import napari_cnnjpeg as cj
from napari_cnnjpeg import codec
from napari_cnnjpeg.format.container import Container, pack

from helpers import rewrite_meta

GREY16 = (camera()[::8, ::8].astype(np.uint16) * 200)  # 64x64
GREY8 = camera()[::8, ::8].copy()
RGB8 = astronaut()[::8, ::8].copy()


# --- arguments --------------------------------------------------------------------------------------------

def test_a_mapping_given_as_an_array_is_a_range():
    # np.percentile returns an array: "truth value of an array is ambiguous" came from deep inside encode
    lo_hi = np.percentile(GREY16, [0, 100])
    assert cj.encode(GREY16, mapping=lo_hi, model="jpeg") == cj.encode(GREY16, mapping=tuple(lo_hi), model="jpeg")
    with pytest.raises(cj.CjpgError, match="mapping applies to data other than uint8"):
        cj.encode(GREY8, mapping=np.array([0, 255]), model="jpeg")


@pytest.mark.parametrize("mapping", [("0", "1000"), (None, None), np.zeros((2, 2)), (True, 1000), {"min": 0}])
def test_a_mapping_of_anything_but_two_numbers_is_refused(mapping):
    with pytest.raises(cj.CjpgError, match="mapping must be"):
        cj.encode(GREY16, mapping=mapping, model="jpeg")


@pytest.mark.parametrize("options, match", [
    ({"subsampling": ["4:2:0"]}, "unknown chroma subsampling"),  # was TypeError: unhashable type: 'list'
    ({"rgb": "yes"}, "rgb must be True, False or None"),  # was stored as "rgb": "yes" in the header
    ({"rgb": 1}, "rgb must be True, False or None"),
    ({"progressive": "no"}, "progressive must be True, False or None"),  # was taken as True
    ({"progress": 5}, "progress must be a callable"),  # was TypeError after the first plane was coded
    ({"metadata": 5}, "metadata must be a dict"),  # was TypeError: 'int' object is not iterable
    ({"metadata": [("name", "x")]}, "metadata must be a dict"),
    ({"metadata": {"scale": [10**400, 1.0]}}, "finite numbers"),  # was TypeError from np.isfinite
])
def test_options_of_the_wrong_type_are_clear_errors(options, match):
    with pytest.raises(cj.CjpgError, match=match):
        cj.encode(np.stack([RGB8, RGB8]), model="jpeg", **options)


def test_numpy_bools_are_flags():
    # json could not store np.True_ in a stack's header: TypeError: Object of type bool is not JSON serializable
    stack = np.stack([RGB8, RGB8[::-1]])
    blob = cj.encode(stack, rgb=np.True_, progressive=np.False_, model="jpeg")
    assert cj.info(blob)["rgb"] is True and cj.decode(blob).shape == stack.shape
    assert not cj.info(cj.encode(stack, rgb=np.False_, model="jpeg"))["rgb"]


def test_a_huge_integer_in_stored_image_metadata_is_left_out_not_a_crash():
    # the napari reader filters fields through image_meta_problem, which raised TypeError on a 401-digit int
    assert codec.image_meta_problem("scale", [10**400, 1]) is not None
    assert codec.image_meta_problem("scale", [1, 2.5]) is None


# --- array-likes -----------------------------------------------------------------------------------------

class _ForeignArray:
    """An array-like whose dtype is not numpy's (a torch tensor's torch.uint16, say)."""

    def __init__(self, array):
        self._a, self.shape, self.ndim, self.dtype = array, array.shape, array.ndim, object()

    def __getitem__(self, index):
        return self._a[index]

    def __array__(self, dtype=None, copy=None):
        return self._a


def test_an_array_like_with_a_foreign_dtype_is_converted():
    # was AttributeError: 'torch.dtype' object has no attribute 'name'
    out = cj.decode(cj.encode(_ForeignArray(GREY16), model="jpeg"))
    assert out.dtype == np.uint16 and out.shape == GREY16.shape


def test_a_ragged_list_is_a_clear_error():
    with pytest.raises(cj.CjpgError, match="cannot read the image as an array"):
        cj.encode([[1, 2], [3]], model="jpeg")


class _LyingStack:
    """A lazy stack whose planes do not have the shape it declares (a dask array with wrong chunk sizes)."""

    shape, ndim, dtype = (2, 16, 16), 3, np.dtype(np.uint16)

    def __getitem__(self, index):
        return np.zeros((8, 8), np.uint16)


@pytest.mark.parametrize("mapping", ["stack", "plane"])
def test_a_lazy_plane_of_the_wrong_shape_is_refused_before_a_corrupt_file_is_written(mapping):
    # encode wrote a file whose header said 16x16 and whose payloads held 8x8: it failed only when read
    with pytest.raises(cj.CjpgError, match=r"plane \(0,\) of the image has shape \(8, 8\)"):
        cj.encode(_LyingStack(), mapping=mapping, model="jpeg")


# --- paths -----------------------------------------------------------------------------------------------

def test_bytes_paths_read_and_write(tmp_path):
    path = os.fsencode(tmp_path / "a.cjpg")
    cj.imwrite(path, GREY8, model="jpeg")  # was TypeError from pathlib
    assert cj.imread(path).shape == GREY8.shape


@pytest.mark.parametrize("dest", [None, 3, 2.5])
def test_imwrite_to_what_is_not_a_path_is_a_clear_error(tmp_path, dest):
    import io

    for bad in (dest, io.BytesIO()):
        with pytest.raises(cj.CjpgError, match="a file path is a str or os.PathLike"):
            cj.imwrite(bad, GREY8, model="jpeg")
    with pytest.raises(cj.CjpgError, match="imread takes a file path"):
        cj.imread(io.BytesIO(cj.encode(GREY8, model="jpeg")))


def test_a_long_legal_file_name_is_written_and_an_illegal_one_refused(tmp_path):
    # the temporary file's name (".NAME.xxxxxxxx.tmp") exceeded the 255-byte limit the name itself met
    long = tmp_path / ("\u00e9" * 60 + "x" * 120 + ".cjpg")  # 245 bytes in UTF-8
    cj.imwrite(long, GREY8, model="jpeg")
    assert cj.imread(long).shape == GREY8.shape
    with pytest.raises(cj.CjpgError, match="cannot write .*: File name too long"):  # was a raw OSError
        cj.imwrite(tmp_path / ("x" * 300 + ".cjpg"), GREY8, model="jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == [long.name]


def test_a_named_pipe_is_written_into_not_replaced(tmp_path):
    # the rename of an atomic write replaced a FIFO (or, as root, /dev/null itself) with a regular file
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    cj.imwrite(fifo, GREY8, model="jpeg")
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and np.array_equal(cj.decode(got[0]), cj.decode(cj.encode(GREY8, model="jpeg")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_failed_stack_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "s.cjpg"
    stack = np.stack([GREY16, GREY16[::-1], GREY16[:, ::-1]]).astype(np.float32)
    cj.imwrite(path, stack, model="jpeg")
    before = path.read_bytes()
    stack[2, 5, 5] = np.nan
    for mapping in ("stack", "plane"):
        with pytest.raises(cj.CjpgError, match=r"NaN or infinite values \(plane 2 of the stack\)"):
            cj.imwrite(path, stack, mapping=mapping, model="jpeg")
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s.cjpg"]


# --- crafted headers and payloads --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack_blob() -> bytes:
    return cj.encode(np.stack([GREY16, GREY16[::-1]]), model="jpeg")


@pytest.mark.parametrize("field, value, match", [
    ("required", 5, "'required' 5 is not a list"),  # was TypeError: 'int' object is not iterable
    ("required", [["bits"]], "is not a list of field names"),  # was TypeError: unhashable type: 'list'
    ("required", "bits", "is not a list of field names"),  # was read as the fields 'b', 'i', 't', 's'
    ("rgb", "yes", "rgb 'yes' is not true or false"),
    ("quality", "x", "quality 'x' is not an integer from 1 to 100"),  # info() handed it on
    ("quality", 0, "quality 0 is not"),
    ("subsampling", 5, "unknown chroma subsampling 5"),
    ("axes", ["z", "y", "x"], "do not name each of the 3 axes"),
    ("axes", "yx", "do not name each of the 3 axes"),
])
def test_crafted_header_fields_are_refused(stack_blob, field, value, match):
    blob = rewrite_meta(stack_blob, lambda m: m.update({field: value}))
    for read in (cj.info, cj.decode, lambda b: cj.read_plane(b, 1)):
        with pytest.raises(cj.CjpgError, match=match):
            read(blob)


def _with_frame_size(blob: bytes, height: int, width: int) -> bytes:
    """A single-plane file whose JPEG frame header (and so its shape) is forged to ``height`` x ``width``."""
    with Container.open(blob) as c:
        meta = {k: v for k, v in c.meta.items() if k not in ("planes", "version")}
        payload = bytearray(c.payload(0))
    i = 2
    while payload[i + 1] not in (0xC0, 0xC1, 0xC2, 0xC9, 0xCA):
        i += 2 + struct.unpack(">H", payload[i + 2 : i + 4])[0]
    payload[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return pack({**meta, "shape": [height, width]}, [bytes(payload)])


def test_a_12_bit_decompression_bomb_is_refused_before_decoding():
    # a 479-byte file declaring 20000x20000 12-bit pixels allocated gigabytes, then raised MemoryError
    bomb = _with_frame_size(cj.encode(GREY16[:16, :16], model="jpeg"), 20000, 20000)
    assert len(bomb) < 1000
    with pytest.raises(cj.CjpgError, match="absurd dimensions: 20000x20000"):
        cj.decode(bomb)


def test_a_plane_too_big_for_memory_is_a_clear_error(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(codec.Reader, "decode_payload", no_memory)
    with pytest.raises(cj.CjpgError, match=r"plane 0 \(64x64 pixels\) needs more memory than is free"):
        cj.decode(cj.encode(GREY16, model="jpeg"))


def test_payload_mutations_with_valid_checksums_decode_or_raise_cjpg_error():
    # the container's CRCs stop random damage; a crafted file recomputes them and reaches the JPEG decoders
    files = [cj.encode(RGB8[:32, :32], model="jpeg"), cj.encode(GREY16[:32, :32], model="jpeg"),
             cj.encode(np.stack([GREY16[:32, :32], GREY16[32:, 32:], GREY16[:32, 32:]]), quality=90, model="jpeg")]
    parsed = []
    for blob in files:
        with Container.open(blob) as c:
            parsed.append(({k: v for k, v in c.meta.items() if k not in ("planes", "version")},
                           [c.payload(k) for k in range(len(c))]))
    rng = random.Random(20261129)
    for case in range(200):
        meta, payloads = parsed[case % len(parsed)]
        payloads = list(payloads)
        k = rng.randrange(len(payloads))
        p = bytearray(payloads[k])
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(2, min(len(p), 700) if case % 2 else len(p))  # headers (tables, frame) or anywhere
            p[pos] = 0xFF if rng.random() < 0.2 else p[pos] ^ rng.randrange(1, 256)
        payloads[k] = bytes(p)
        try:
            blob = pack(dict(meta), payloads)
        except cj.CjpgError:
            continue
        for read in (cj.info, cj.decode, lambda b: cj.read_plane(b, k)):
            try:
                read(blob)
            except cj.CjpgError:
                pass


def test_planes_readers_would_refuse_are_refused_when_written(monkeypatch, tmp_path):
    # encode wrote a 13400x13400 plane (more pixels than Pillow decodes) that decode then refused as a bomb
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # so twice that, 200 pixels, is the most a plane may have
    with pytest.raises(cj.CjpgError, match="planes of 16x16 pixels are more than JPEG readers decode"):
        cj.imwrite(tmp_path / "big.cjpg", np.zeros((2, 16, 16), np.uint16), model="jpeg")
    assert not list(tmp_path.iterdir())
    assert cj.decode(cj.encode(np.zeros((10, 20), np.uint16), model="jpeg")).shape == (10, 20)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the guard off: no limit either way
    assert cj.decode(cj.encode(np.zeros((16, 16), np.uint16), model="jpeg")).shape == (16, 16)


def test_a_masked_array_warns_that_its_mask_is_not_kept():
    data = np.ma.masked_greater(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), 4000)
    with pytest.warns(UserWarning, match="95 masked values are stored as the values under the mask"):
        out = cj.decode(cj.encode(data, quality=90))
    assert type(out) is np.ndarray and out.shape == data.shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cj.encode(np.ma.masked_array(data.data), quality=90)  # nothing masked: no warning
