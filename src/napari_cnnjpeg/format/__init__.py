"""Bytes on disk: the .cjpg container, JPEG coding (8- and 12-bit, the robustness grid's encoders) and image files.

Imports nothing of the package but :mod:`napari_cnnjpeg.errors`.
"""
