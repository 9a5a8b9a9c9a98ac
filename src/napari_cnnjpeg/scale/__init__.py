"""Scale out: zarr codecs (numcodecs and zarr 3), OME-Zarr conversion and dask batch jobs.

Each module imports zarr, numcodecs, ome-zarr or dask.distributed only when used.
"""
