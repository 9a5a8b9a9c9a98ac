"""Longest stall of napari's GUI thread while scrolling through a .cjpg stack.

Usage: xvfb-run -a python scripts/scroll_stall.py [--planes 100] [--size 2048] [--rate 20] [--out docs]

Writes a stack of ``planes`` grey ``size`` x ``size`` uint8 planes (scikit-image's camera,
shifted per plane) with the default model (in another process), opens it in a napari viewer with the plugin's
reader, and moves the slider through every plane at ``rate`` steps per second.
A 2 ms timer on the GUI thread records every gap between its ticks: the longest gap is
the longest time the GUI could not respond. ``restored_after_stop_s`` is how long the
last plane took to show restored after the slider stopped. Prints a JSON summary and a Markdown row;
with ``--out``, writes ``scroll_stall.json`` there and its table into ``benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_stack(planes: int, size: int) -> np.ndarray:
    from skimage import data, transform

    base = transform.resize(data.camera(), (size, size), order=1, preserve_range=True)
    base = np.tile(base, (1, 2))
    return np.stack([base[:, (k * 7) % size : (k * 7) % size + size] for k in range(planes)]).astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planes", type=int, default=100)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--rate", type=float, default=20.0, help="slider steps per second")
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--out", type=Path)
    p.add_argument("--stack", type=Path, help="keep the encoded stack here and reuse it on the next run")
    args = p.parse_args()

    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    import napari_cnnjpeg as cj

    with tempfile.TemporaryDirectory() as tmp:
        path = args.stack or Path(tmp) / "stack.cjpg"
        t0 = time.perf_counter()
        if not path.exists():  # in another process: the viewer's is a user's, opening an existing file
            code = ("import sys; sys.path.insert(0, sys.argv[1]); from scroll_stall import make_stack; "
                    "import napari_cnnjpeg as cj; "
                    "cj.imwrite(sys.argv[2], make_stack(int(sys.argv[3]), int(sys.argv[4])), quality=int(sys.argv[5]))")
            subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(path), str(args.planes),
                            str(args.size), str(args.quality)], check=True)
        encode_s = time.perf_counter() - t0
        viewer = napari.Viewer()
        t0 = time.perf_counter()
        [layer] = viewer.open(path, plugin="napari-cnnjpeg")
        open_s = time.perf_counter() - t0
        app = QApplication.instance()
        gaps: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        ticker = QTimer()
        ticker.timeout.connect(tick)
        ticker.start(2)
        step_s = []
        for k in range(args.planes):
            t = time.perf_counter()
            viewer.dims.set_current_step(0, k)
            step_s.append(time.perf_counter() - t)
            until = t + 1 / args.rate
            while time.perf_counter() < until:
                app.processEvents()
                time.sleep(0.001)
        scroll_gaps = list(gaps)
        t0 = time.perf_counter()
        shown = lambda: np.asarray(layer._slice.image.raw)  # noqa: E731
        exact = layer.data.plane(args.planes - 1)
        while not np.array_equal(shown(), exact) and time.perf_counter() - t0 < 120:
            app.processEvents()
            time.sleep(0.005)
        settle_s = time.perf_counter() - t0
        ticker.stop()
        viewer.close()
    longest = max(max(scroll_gaps), max(step_s))
    result = {
        "planes": args.planes, "size": args.size, "rate": args.rate, "quality": args.quality,
        "model": cj.default_model(), "encode_s": round(encode_s, 1), "open_s": round(open_s, 3),
        "longest_stall_ms": round(1000 * longest, 1),
        "p99_gap_ms": round(1000 * float(np.percentile(scroll_gaps, 99)), 1),
        "slider_step_ms_max": round(1000 * max(step_s), 1),
        "slider_step_ms_median": round(1000 * float(np.median(step_s)), 1),
        "stalls_over_100ms": int(sum(g > 0.1 for g in scroll_gaps)),
        "restored_after_stop_s": round(settle_s, 2),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "command": "xvfb-run -a python scripts/scroll_stall.py " + " ".join(
            f"--{k} {v}" for k, v in (("planes", args.planes), ("size", args.size), ("rate", args.rate))),
    }
    print(json.dumps(result, indent=1))
    print(f"| {args.planes} x {args.size}² uint8, {result['model']} | {args.rate:g} steps/s | "
          f"{result['longest_stall_ms']} ms | {result['p99_gap_ms']} ms | {result['slider_step_ms_median']} ms | "
          f"{result['restored_after_stop_s']} s |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scroll_stall.json").write_text(json.dumps(result, indent=1) + "\n")
        from napari_cnnjpeg.eval.report_sections import update_report

        update_report(args.out / "benchmarks.md")


if __name__ == "__main__":
    main()
