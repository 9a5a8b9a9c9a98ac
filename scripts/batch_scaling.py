"""Throughput of ``cnnjpeg batch`` with 1, 2, ... worker processes (one thread each, torch included).

Usage: python scripts/batch_scaling.py FOLDER [--workers 1 2] [--quality 75] [--model M]

For each worker count: start a LocalCluster, warm every worker up (model loaded, one
image compressed), then time :func:`napari_cnnjpeg.scale.batch.run` on every image of
FOLDER into a fresh folder. Prints a markdown table (MP/s, files/s, speed-up over the
first row) and, with --json, writes the figures.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image


def main() -> None:
    from distributed import Client, LocalCluster

    from napari_cnnjpeg.scale.batch import plan, process_file, run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--model", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    files = [s for s, _ in plan([args.folder], "unused")]
    mpx = sum(Image.open(f).size[0] * Image.open(f).size[1] for f in files) / 1e6
    rows = []
    for n in args.workers:
        with tempfile.TemporaryDirectory() as tmp, \
                LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            warm = [client.submit(process_file, "encode", str(files[0]), f"{tmp}/warm{i}.cjpg", args.quality, args.model,
                                  workers=[w], pure=False) for i, w in enumerate(client.scheduler_info()["workers"])]
            client.gather(warm)
            t0 = time.perf_counter()
            summary = run([args.folder], Path(tmp) / "out", quality=args.quality, model=args.model,
                          scheduler=cluster.scheduler_address)
            seconds = time.perf_counter() - t0
        assert summary["done"] == len(files) and not summary["failed"], summary
        rows.append({"workers": n, "files": len(files), "mpx": round(mpx, 2), "seconds": round(seconds, 2),
                     "mpx_s": round(mpx / seconds, 3), "files_s": round(len(files) / seconds, 3)})
    base = rows[0]["mpx_s"]
    print("| worker processes | files | MP | seconds | MP/s | files/s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r["speedup"] = round(r["mpx_s"] / base, 2)
        print(f"| {r['workers']} | {r['files']} | {r['mpx']} | {r['seconds']} | {r['mpx_s']} | {r['files_s']} "
              f"| {r['speedup']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"folder": args.folder, "quality": args.quality,
                                               "model": args.model, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
