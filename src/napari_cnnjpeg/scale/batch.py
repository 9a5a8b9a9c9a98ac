"""Batch jobs on dask.distributed: many files encoded, decoded or restored, on one machine or a cluster.

``cnnjpeg batch`` and ``cnnjpeg encode/decode/restore`` with several inputs share this
engine: a ``LocalCluster`` of one single-threaded worker process per core (one process when
torch sees CUDA, so the GPU is not shared), or an existing cluster. Every output is written atomically (a temporary file, then a rename), so a killed run
leaves nothing under a final name; a rerun skips the outputs that exist and sweeps the
temporary files a killed run left. A failing input is reported and the rest go on. Each
worker process loads a model once (:func:`napari_cnnjpeg.nn.models.load_stages` caches it)
and holds one image per thread.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import CjpgError
from ..format.image_files import IMAGE_SUFFIXES
from ..nn.models import model_info

#: What each operation reads (files taken from folders) and writes by default.
OPS = {
    "encode": (IMAGE_SUFFIXES, ".cjpg"),
    "decode": ((".cjpg",), ".png"),
    "restore": ((".jpg", ".jpeg"), ".png"),
}


def plan(
    inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike | None, op: str = "encode", suffix: str | None = None
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for files and folders (their files ``op`` reads, not recursive).

    Outputs are ``out_dir/<stem><suffix>`` (beside each input when ``out_dir`` is None). A file
    named twice (e.g. itself and through its folder) is taken once. Raises CjpgError, before any
    work, for a missing input, an empty folder, or two inputs whose outputs would have the same name.
    """
    accept, default_suffix = OPS[op]
    suffix = suffix or default_suffix
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in accept)
            if not found:
                raise CjpgError(f"{p} holds no files to {op} ({', '.join(accept)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise CjpgError(f"no such file or folder: {item}")
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    pairs, seen = [], {}
    for f in unique.values():
        dest = (Path(out_dir) if out_dir is not None else f.parent) / (f.stem + suffix)
        if dest in seen:
            raise CjpgError(f"{seen[dest]} and {f} would both be written to {dest}; rename one or run them apart")
        if dest.resolve() == f.resolve():
            raise CjpgError(f"{f} would be overwritten by its own output; choose another folder or format")
        seen[dest] = f
        pairs.append((f, dest))
    return pairs


def sweep_stale(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporary files a killed run left for these outputs (``.<name>.*.tmp``); return them."""
    stale = []
    for dest in map(Path, outputs):
        stale += [p for p in dest.parent.glob(f".{glob.escape(dest.name)}.*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def process_file(op: str, src: str, dest: str, quality: int, model: str | None, threads: int = 1,
                 subsampling: str | None = None) -> dict:
    """Encode, decode or restore one file (runs on a worker); errors come back as a record."""
    t0 = time.perf_counter()
    try:
        import torch

        from ..codec import imread, imwrite, restore
        from ..format.image_files import read_image, write_image, write_restored

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if op == "encode":
            imwrite(dest, read_image(src), quality=quality, model=model, subsampling=subsampling)
        elif op == "decode":
            write_image(dest, imread(src, model=model))
        elif op == "restore":
            write_restored(dest, restore(Path(src), model), src)
        else:
            raise CjpgError(f"unknown operation {op!r}; use one of {', '.join(OPS)}")
        return {"input": src, "output": dest, "bytes_in": os.path.getsize(src), "bytes_out": os.path.getsize(dest),
                "seconds": round(time.perf_counter() - t0, 3)}
    except Exception as exc:  # noqa: BLE001 - a failing input is reported; the rest go on
        return {"input": src, "error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, CjpgError) else str(exc)}


def default_workers() -> int:
    """Worker processes of a local run: one per core, or one when torch sees CUDA (the GPU is not shared)."""
    import torch

    return 1 if torch.cuda.is_available() else (os.cpu_count() or 1)


def run(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike | None,
    *,
    op: str = "encode",
    suffix: str | None = None,
    quality: int = 75,
    model: str | None = None,
    subsampling: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict:
    """Encode, decode or restore files and folders on a dask.distributed cluster.

    Parameters
    ----------
    inputs : paths
        Files, and folders whose files of the kind ``op`` reads (:data:`OPS`) are all taken.
    out_dir : path or None
        Where ``<name><suffix>`` go (created if missing); None: beside each input.
    op : {"encode", "decode", "restore"}
        Images to ``.cjpg``; ``.cjpg`` to images; ordinary JPEGs to restored images.
    suffix : str, optional
        Output extension (default: ``.cjpg`` for encode, ``.png`` otherwise; ``.tif`` for stacks).
    quality, model, subsampling
        As :func:`napari_cnnjpeg.encode` (``model`` also overrides the decoder, or names the
        restore model).
    workers : int, optional
        Worker processes of the LocalCluster started when no ``scheduler`` is given
        (one thread each, torch included); default: :func:`default_workers`.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``): the same command on many machines.
    progress : bool
        Show a tqdm progress bar.
    overwrite : bool
        Redo outputs that exist (default: skip them, so a rerun resumes).

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
    if op not in OPS:
        raise CjpgError(f"unknown operation {op!r}; use one of {', '.join(OPS)}")
    if op == "encode":
        check_config(quality, model, None, None, subsampling)  # bad settings or unknown model: refused before work
    elif model is not None:
        model_info(model)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise CjpgError(f"workers must be a positive integer, got {workers!r}")
    pairs = plan(inputs, out_dir, op, suffix)
    for folder in {d.parent for _, d in pairs}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CjpgError(f"cannot make the output folder {folder}: {exc.strerror or exc}") from None
    stale = sweep_stale(d for _, d in pairs)
    todo = [(s, d) for s, d in pairs if overwrite or not d.is_file()]  # a folder in the way fails, not skips
    summary = {"files": len(pairs), "done": 0, "skipped": len(pairs) - len(todo), "failed": [],
               "stale_removed": len(stale), "bytes_in": 0, "bytes_out": 0}
    if todo:
        if scheduler:
            client, cluster = _connect(Client, scheduler), None
        else:
            cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            # absolute paths: a worker of a cluster (--scheduler) runs in its own working directory
            futures = client.map(process_file, [op] * len(todo), [os.path.abspath(s) for s, _ in todo],
                                 [os.path.abspath(d) for _, d in todo],
                                 quality=quality, model=model, subsampling=subsampling, pure=False)
            with tqdm(total=len(futures), disable=not progress, desc=op, unit="file") as bar:
                source = {f.key: str(s) for f, (s, _) in zip(futures, todo)}
                for fut in as_completed(futures):
                    rec = _result(fut, source[fut.key])
                    rec["input"] = source[fut.key]  # as the user named it
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


def _connect(client_cls, scheduler: str):
    """A client of the dask scheduler at ``scheduler``; a bad address or no answer is a CjpgError naming it.

    The address is checked before a Client is made: a Client that fails on it stays dask's default
    scheduler, and every later dask computation in the process waits on it.
    """
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    hint = f"cannot connect to the dask scheduler {scheduler!r} (e.g. tcp://host:8786)"
    try:
        scheme, loc = parse_address(str(scheduler))
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(loc)
        return client_cls(scheduler)
    except (OSError, ValueError, TypeError) as exc:  # TimeoutError is an OSError
        raise CjpgError(f"{hint}: {exc}") from None


def _result(fut, src: str) -> dict:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths on one input
        return {"input": src, "error": f"{type(exc).__name__}: {exc}"}
