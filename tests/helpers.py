"""Helpers shared by test modules (importable because pytest puts this folder on sys.path)."""

from __future__ import annotations

from napari_cnnjpeg.format.container import Container, pack


def rewrite_meta(blob: bytes, change) -> bytes:
    """A file whose metadata JSON is changed by ``change`` (with a valid checksum)."""
    with Container.open(blob) as c:
        meta = dict(c.meta)
        payloads = [c.payload(k) for k in range(len(c))]
    meta.pop("planes")
    change(meta)
    return pack(meta, payloads)
