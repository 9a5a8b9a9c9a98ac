"""``cnnjpeg``, a zarr 3 array-to-bytes codec: each chunk stored as one ``.cjpg``.

It takes the place of zarr's ``bytes`` serializer, since it needs the chunk's shape:

>>> zarr.create_array(store, shape=..., chunks=..., dtype="uint8",
...                   serializer=CnnJpegCodec(quality=60), compressors=None)

The package registers it through the ``zarr.codecs`` entry point, so any process where
it is installed opens such arrays. Settings as :class:`~.numcodecs_codec.CnnJpeg`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

from ..errors import CjpgError
from ..format.container import DTYPES
from .numcodecs_codec import check_config, decode_chunk, encode_chunk

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer


@dataclass(frozen=True)
class CnnJpegCodec(ArrayBytesCodec):
    """zarr 3 codec ``cnnjpeg`` (quality, model, mapping, channel_axis, subsampling)."""

    is_fixed_size = False

    quality: int = 75
    model: str | None = None
    mapping: tuple[float, float] | None = None  # a tuple, so the codec hashes as zarr's own codecs do
    channel_axis: int | None = None
    subsampling: str | None = None

    def __init__(self, *, quality: int = 75, model: str | None = None, mapping=None,
                 channel_axis: int | None = None, subsampling: str | None = None, **unknown) -> None:
        for k, v in check_config(quality, model, mapping, channel_axis, subsampling, unknown).items():
            object.__setattr__(self, k, tuple(v) if k == "mapping" and v else v)

    def _cfg(self) -> dict:
        return {"quality": self.quality, "model": self.model, "mapping": self.mapping and list(self.mapping),
                "channel_axis": self.channel_axis, "subsampling": self.subsampling}

    @classmethod
    def from_dict(cls, data: dict) -> CnnJpegCodec:
        _, cfg = parse_named_configuration(data, "cnnjpeg", require_configuration=False)
        return cls(**(cfg or {}))

    def to_dict(self) -> dict:
        return {"name": "cnnjpeg", "configuration": self._cfg()}

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        if len(shape) < 2:
            raise CjpgError(f"cnnjpeg codec: arrays need 2 or more dimensions (..., Y, X), got shape {shape}")
        name = dtype.to_native_dtype().name
        if name not in DTYPES:
            hint = ": store masks losslessly (e.g. zarr's bytes codec)" if name == "bool" else ""
            raise CjpgError(f"cnnjpeg codec: unsupported dtype {name}; use one of {', '.join(DTYPES)}{hint}")

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        blob = await asyncio.to_thread(encode_chunk, chunk_array.as_numpy_array(), self._cfg())
        return chunk_spec.prototype.buffer.from_bytes(blob)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        arr = await asyncio.to_thread(decode_chunk, chunk_bytes.to_bytes(), self._cfg())
        dtype = chunk_spec.dtype.to_native_dtype()
        # an array created with a non-native byte order (">u2", e.g. FITS data) holds the same values: the
        # chunk is given back in that byte order (zarr.json stores none: once reopened, the array is native)
        if arr.shape != tuple(chunk_spec.shape) or arr.dtype.newbyteorder("=") != dtype.newbyteorder("="):
            raise CjpgError(f"cnnjpeg codec: a chunk decodes to {arr.shape} {arr.dtype}, "
                            f"the array expects {tuple(chunk_spec.shape)} {dtype}")
        return chunk_spec.prototype.nd_buffer.from_numpy_array(np.ascontiguousarray(arr, dtype=dtype))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError
