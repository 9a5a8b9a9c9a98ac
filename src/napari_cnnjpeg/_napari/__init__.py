"""The napari plugin: reader, writer, dock widgets, their workers and sample data
(``napari.yaml`` in the package root points here).
"""
