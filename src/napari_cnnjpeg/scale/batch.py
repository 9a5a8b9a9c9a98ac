"""Batch compression on dask.distributed: many files to ``DIR/<name>.cjpg``, on one machine or a cluster.

Every output is written atomically (a temporary file, then a rename), so a killed run
leaves nothing under a final name; a rerun skips the outputs that exist and sweeps the
temporary files a killed run left. A failing input is reported and the rest go on. Each
worker process loads a model once (:func:`napari_cnnjpeg.models.load_stages` caches it)
and holds one image per thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import CjpgError
from ..image_files import IMAGE_SUFFIXES


def plan(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(input, output) pairs for files and folders (their image files, not recursive).

    Raises CjpgError, before any work, for a missing input, an empty folder, or two inputs
    whose outputs would have the same name.
    """
    out_dir = Path(out_dir)
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CjpgError(f"{p} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise CjpgError(f"no such file or folder: {item}")
    pairs, seen = [], {}
    for f in files:
        dest = out_dir / (f.stem + ".cjpg")
        if dest in seen:
            raise CjpgError(f"{seen[dest]} and {f} would both be written to {dest}; rename one or run them apart")
        seen[dest] = f
        pairs.append((f, dest))
    return pairs


def sweep_stale(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that a killed run left in ``out_dir``; return them."""
    stale = [p for p in Path(out_dir).glob(".*.cjpg.*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def compress_file(src: str, dest: str, quality: int, model: str | None, threads: int = 1) -> dict:
    """Compress one file (runs on a worker); errors come back as a record, not an exception."""
    t0 = time.perf_counter()
    try:
        import torch

        from ..codec import imwrite
        from ..image_files import read_image

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        imwrite(dest, read_image(src), quality=quality, model=model)
        return {"input": src, "output": dest, "bytes_in": os.path.getsize(src), "bytes_out": os.path.getsize(dest),
                "seconds": round(time.perf_counter() - t0, 3)}
    except Exception as exc:  # noqa: BLE001 - a failing input is reported; the rest go on
        return {"input": src, "error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, CjpgError) else str(exc)}


def run(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    quality: int = 75,
    model: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> dict:
    """Compress files and folders to ``out_dir`` on a dask.distributed cluster.

    Parameters
    ----------
    inputs : paths
        Image files, and folders whose image files are all taken.
    out_dir : path
        Where ``<name>.cjpg`` go (created if missing).
    quality, model
        As :func:`napari_cnnjpeg.encode`.
    workers : int, optional
        Worker processes of the LocalCluster started when no ``scheduler`` is given
        (one thread each, torch included); default: the CPU count.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``): the same command on many machines.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``files``, ``done``, ``skipped`` (outputs that existed), ``failed`` (input and error
        each), ``stale_removed``, ``bytes_in``, ``bytes_out``, ``seconds``.
    """
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    from .numcodecs_codec import check_config

    t0 = time.perf_counter()
    check_config(quality, model, None, None, "4:2:0")  # bad quality or unknown model: refused before any work
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise CjpgError(f"workers must be a positive integer, got {workers!r}")
    pairs = plan(inputs, out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    stale = sweep_stale(out_dir)
    todo = [(s, d) for s, d in pairs if not d.exists()]
    summary = {"files": len(pairs), "done": 0, "skipped": len(pairs) - len(todo), "failed": [],
               "stale_removed": len(stale), "bytes_in": 0, "bytes_out": 0}
    if todo:
        if scheduler:
            client, cluster = Client(scheduler), None
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            futures = client.map(compress_file, [str(s) for s, _ in todo], [str(d) for _, d in todo],
                                 quality=quality, model=model, pure=False)
            with tqdm(total=len(futures), disable=not progress, desc="batch", unit="file") as bar:
                source = {f.key: str(s) for f, (s, _) in zip(futures, todo)}
                for fut in as_completed(futures):
                    rec = _result(fut, source[fut.key])
                    if "error" in rec:
                        summary["failed"].append(rec)
                    else:
                        summary["done"] += 1
                        summary["bytes_in"] += rec["bytes_in"]
                        summary["bytes_out"] += rec["bytes_out"]
                    bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def _result(fut, src: str) -> dict:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths on one input
        return {"input": src, "error": f"{type(exc).__name__}: {exc}"}
