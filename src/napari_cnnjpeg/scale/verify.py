"""Which chunks of a zarr array cannot be decoded: zarr gives a codec the bytes of a chunk, not its key,
so a corrupt chunk's error cannot name it; :func:`bad_chunks` does, by reading the array chunk by chunk."""

from __future__ import annotations

import itertools
import os


def bad_chunks(array, limit: int | None = None) -> list[dict]:
    """The chunks of ``array`` (a zarr array, or a path or store zarr opens) that fail to read.

    Each is ``{"chunk": grid index, "key": store key, "error": message}`` (a sharded array: its shards);
    unwritten chunks (the fill value) are not read. Stops after ``limit`` bad chunks.
    """
    import zarr

    z = array if isinstance(array, zarr.Array) else zarr.open_array(
        os.fspath(array) if isinstance(array, os.PathLike) else array, mode="r")
    grid = [-(-n // c) for n, c in zip(z.shape, z.shards or z.chunks)]  # z.blocks indexes shards where there are
    found = []
    for idx in itertools.product(*map(range, grid)):
        try:
            z.blocks[idx]
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its chunk
            key = z.metadata.encode_chunk_key(idx)
            found.append({"chunk": idx, "key": f"{z.store_path}/{key}", "error": f"{exc}"})
            if limit is not None and len(found) >= limit:
                break
    return found
