"""Networks, the model zoo and its hash-checked weights, inference (tiles, devices, runtimes),
and the torch JPEG emulation and proxy that training uses.

Imports :mod:`napari_cnnjpeg.format` and :mod:`napari_cnnjpeg.errors` only.
"""
