"""Speed benchmark: encode and decode MP/s per model and device, the time per stage, and the network alone.

``cnnjpeg bench --speed`` runs it; so does ``scripts/device_check.sh`` on a machine with a
GPU, which is why it needs only torch, numpy, Pillow, safetensors and scikit-image.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

#: Stages of the decoder pipeline, in the order they run.
STAGES = ("jpeg", "transfer", "tiling", "colour", "network", "other")


def test_images(megapixels: float = 12.0, small: int = 16, small_side: int = 512) -> dict[str, list[np.ndarray]]:
    """A ``megapixels`` photo (scikit-image's astronaut, enlarged) and ``small`` crops of it."""
    from skimage import transform

    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    big = (transform.resize(_astronaut(), (h, w), order=1) * 255).round().astype(np.uint8)
    small_side = min(small_side, h // 2, w // 2)
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(small):
        y, x = rng.integers(0, h - small_side + 1), rng.integers(0, w - small_side + 1)
        crops.append(np.ascontiguousarray(big[y : y + small_side, x : x + small_side]))
    return {f"{w}x{h} photo": [big], f"{small} x {small_side}² crops": crops}


def _astronaut() -> np.ndarray:
    """scikit-image's astronaut; read by Pillow (the same pixels) where ``skimage.io`` cannot import
    (it needs imageio and tifffile, which a bare GPU machine may lack)."""
    try:
        from skimage import data

        return data.astronaut()
    except ImportError:
        import skimage
        from PIL import Image

        with Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png") as im:
            return np.asarray(im.convert("RGB"))


def _timed(func, repeats: int) -> tuple[float, object]:
    """Best of ``repeats`` wall times of ``func()`` (after one warm-up call), and its last result."""
    out = func()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return best, out


def network_only(net, runner, dev: str, tile_side: int, repeats: int) -> float:
    """MP/s of the network alone on a batch of full tiles already on the device (input pixels)."""
    import torch

    from ..nn.inference import GPU_BATCH_PIXELS, half_precision

    n = max(1, GPU_BATCH_PIXELS // tile_side**2) if dev.startswith("cuda") else 1
    x = torch.rand(n, 3, tile_side, tile_side, device=dev)
    cond = torch.rand(n, 129, device=dev)
    run = runner or net
    half = runner is None and half_precision(dev)

    def once():
        with torch.inference_mode(), torch.autocast(torch.device(dev).type, dtype=torch.float16, enabled=half):
            y = run(x, cond)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        return y

    seconds, _ = _timed(once, repeats)
    return n * tile_side**2 / seconds / 1e6


def measure(model: str, dev: str, images: dict[str, list[np.ndarray]], quality: int, repeats: int) -> list[dict]:
    """Rows of the speed table for one model on one device (set as ``CNNJPEG_DEVICE`` by the caller, as :func:`run` does)."""
    from .. import codec
    from ..format.container import Container
    from ..format.jpeg import decode_jpeg
    from ..nn import inference, models

    stages = models.load_stages(model)
    net = stages.decoder
    runner = None
    if net is not None:
        import torch

        runner = inference.make_runner(net, inference.choose_runtime(net, dev), torch.get_num_threads())
    tile = inference.default_tile(runner, dev) + 2 * inference.OVERLAP
    net_mpx_s = network_only(net, runner, dev, tile, repeats) if net is not None else None
    rows = []
    for name, batch in images.items():
        mpx = sum(im.shape[0] * im.shape[1] for im in batch) / 1e6
        enc_s, blobs = _timed(lambda: [codec.encode(im, quality=quality, model=model) for im in batch], repeats)
        dec_s, _ = _timed(lambda: [codec.decode(b) for b in blobs], repeats)
        jpeg_s, _ = _timed(lambda: [decode_jpeg(Container.open(b).payload(0)) for b in blobs], repeats)
        with inference.timing() as clock:
            t0 = time.perf_counter()
            for b in blobs:
                codec.decode(b)
            profiled = time.perf_counter() - t0
        stage = {k: clock.seconds.get(k, 0.0) for k in STAGES[1:5]}
        stage["jpeg"] = jpeg_s
        stage["other"] = max(0.0, profiled - sum(stage.values()))
        row = {
            "model": model, "device": dev, "images": name, "megapixels": round(mpx, 2),
            "runtime": inference.runner_name(runner) if net is not None else "-",
            "half": bool(net is not None and runner is None and inference.half_precision(dev)),
            "encode_mpx_s": round(mpx / enc_s, 2), "decode_mpx_s": round(mpx / dec_s, 2),
            "stage_share": {k: round(stage[k] / max(profiled, 1e-9), 3) for k in STAGES},
        }
        if net_mpx_s is not None:
            row["network_mpx_s"] = round(net_mpx_s, 2)
            row["pipeline_share_of_network"] = round(row["decode_mpx_s"] / row["network_mpx_s"], 3)
        rows.append(row)
    return rows


def half_cost(model: str, image: np.ndarray, qualities=(30, 75, 95)) -> float:
    """Largest PSNR loss (dB) of running ``model``'s decoder under float16 autocast rather than float32.

    Autocast as CUDA runs it (convolutions and linear layers in float16, the residual sums in
    float32), emulated on the CPU (slowly: use a small image) so it can be checked anywhere.
    """
    import torch

    from .. import codec
    from ..format.container import Container
    from ..format.jpeg import decode_jpeg, quant_tables
    from ..nn import inference, models
    from .metrics import psnr

    net = models.load_stages(model).decoder

    class Autocast:
        multiple = net.multiple

        def __call__(self, x, cond):
            with torch.autocast("cpu", dtype=torch.float16):
                return net(x, cond).float()

    worst = 0.0
    for q in qualities:
        data = Container.open(codec.encode(image, quality=q, model=model)).payload(0)
        pixels, (luma, chroma) = decode_jpeg(data), quant_tables(data)
        full = np.rint(inference.run_network(net, pixels, luma, chroma)).astype(np.uint8)
        low = np.rint(inference.run_network(net, pixels, luma, chroma, runner=Autocast())).astype(np.uint8)
        worst = max(worst, psnr(image, full) - psnr(image, low))
    return round(worst, 4)


def runtime_comparison(model: str, image: np.ndarray, repeats: int) -> list[dict]:
    """Decode MP/s on the CPU under each runtime there is (torch, ONNX Runtime, NNPACK), on an idle
    machine and with one core taken by another process (as napari's GUI thread or a second worker takes one)."""
    import subprocess

    from .. import codec
    from ..nn import inference

    runtimes = ["torch"] + ["onnxruntime"] * inference.onnxruntime_available() + ["nnpack"] * inference.nnpack_available()
    if len(runtimes) == 1:
        return []
    blob = codec.encode(image, quality=75, model=model)
    mpx = image.shape[0] * image.shape[1] / 1e6
    rows = []
    for runtime in runtimes:
        with _setting("CNNJPEG_RUNTIME", runtime):
            row = {"model": model, "runtime": runtime}
            row["idle_mpx_s"] = round(mpx / _timed(lambda: codec.decode(blob), repeats)[0], 2)
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                row["one_core_busy_mpx_s"] = round(mpx / _timed(lambda: codec.decode(blob), repeats)[0], 2)
            finally:
                busy.kill()
                busy.wait()
            rows.append(row)
    return rows


@contextlib.contextmanager
def _setting(name: str, value: str | None):
    """An environment setting of the package for a while; loaded models are dropped on entry and exit."""
    from ..nn import models

    before = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    models.load_stages.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
        models.load_stages.cache_clear()


def devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def machine() -> dict:
    import torch

    from ..nn.inference import avx512_cpu
    from .bench import cpu_name

    out = {"platform": platform.platform(), "cpu": cpu_name(), "avx512": avx512_cpu(), "cpu_count": os.cpu_count(),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Speed", "",
        f"Command: `{result['command']}`. Quality {result['quality']}; best of {result['repeats']} runs after a warm-up.",
        f"Machine: {json.dumps(result['machine'])}.", "",
        "Decode MP/s is the whole `decode()` of a `.cjpg` (container, JPEG, network, colour, rounding); the "
        "network alone runs on full tiles (overlaps included) already on the device, so images that fit "
        "in one tile can exceed it (under `nnpack`, the network alone is timed on a full tile through NNPACK; "
        "tiles under 800x800 pixels, such as the small crops, run under ONNX Runtime where it is installed). "
        "Stage shares are of a profiled decode; under `nnpack` the colour conversions of RGB tiles are folded "
        "into the network's first and last layers, so they count as network (the colour column keeps the clip "
        "and rounding).", "",
        "| model | device | runtime | images | encode MP/s | decode MP/s | network alone MP/s | pipeline / network | "
        + " | ".join(STAGES) + " |",
        "|---|---|---|---|---:|---:|---:|---:|" + "---:|" * len(STAGES),
    ]
    costs = ", ".join(f"{m} {v:.4f} dB" for m, v in result.get("half_precision_cost_db", {}).items())
    if costs:
        lines[5:5] = [f"Float16 autocast instead of float32 in the decoder (emulated on the CPU; a 256² crop of the "
                      f"large photo, qualities 30/75/95, largest PSNR loss): "
                      f"{costs}. CUDA runs the networks under float16 autocast (`CNNJPEG_HALF=0` turns it off).", ""]
    for r in result["rows"]:
        runtime = r["runtime"] + (" fp16" if r["half"] else "")
        net = f"{r['network_mpx_s']:.2f}" if "network_mpx_s" in r else ""
        share = f"{100 * r['pipeline_share_of_network']:.0f} %" if "pipeline_share_of_network" in r else ""
        stages = " | ".join(f"{100 * r['stage_share'][k]:.0f} %" for k in STAGES)
        lines.append(f"| {r['model']} | {r['device']} | {runtime} | {r['images']} | {r['encode_mpx_s']:.2f} | "
                     f"{r['decode_mpx_s']:.2f} | {net} | {share} | {stages} |")
    if result.get("runtimes"):
        lines += ["", "Decode MP/s of the large photo on the CPU by runtime, idle and with one core taken by another "
                  "process (`python -c \"while True: pass\"`):", "",
                  "| model | runtime | idle | one core busy |", "|---|---|---:|---:|"]
        lines += [f"| {r['model']} | {r['runtime']} | {r['idle_mpx_s']:.2f} | {r['one_core_busy_mpx_s']:.2f} |"
                  for r in result["runtimes"]]
    return "\n".join(lines) + "\n"


def speed_section(folder: str | os.PathLike) -> str:
    """The speed part of ``benchmarks.md``, from the JSON files the speed tools left in ``folder``:
    ``benchmarks-speed.json`` (CPU), ``benchmarks-speed-gpu.json`` (a GPU) and ``scroll_stall.json``."""
    folder = Path(folder)
    parts = []
    for name, title in (("benchmarks-speed", "Speed on this machine's CPU"), ("benchmarks-speed-gpu", "Speed on a GPU")):
        path = folder / f"{name}.json"
        if path.exists():
            result = json.loads(path.read_text())
            gpu = result["machine"].get("gpu")
            body = markdown(result).split("\n", 2)[2]  # without the "# Speed" title
            parts.append(f"## {title}" + (f" ({gpu})" if gpu and "gpu" in name else "") + "\n\n" + body)
    path = folder / "scroll_stall.json"
    if path.exists():
        r = json.loads(path.read_text())
        parts.append(
            "## napari while scrolling\n\n"
            f"Command: `{r['command']}` ({r['machine']}). The slider moved through {r['planes']} planes of "
            f"{r['size']}x{r['size']} uint8 (model {r['model']}, quality {r['quality']}) at {r['rate']:g} steps/s; "
            "a 2 ms timer on napari's GUI thread recorded every gap between its ticks.\n\n"
            "| longest GUI stall | 99th percentile gap | stalls over 100 ms | slider step (median / max) | "
            "last plane restored after the slider stopped |\n|---:|---:|---:|---:|---:|\n"
            f"| {r['longest_stall_ms']} ms | {r['p99_gap_ms']} ms | {r['stalls_over_100ms']} | "
            f"{r['slider_step_ms_median']} / {r['slider_step_ms_max']} ms | {r['restored_after_stop_s']} s |\n")
    return "\n".join(parts)


def run(models: list[str] | None = None, device_list: list[str] | None = None, quality: int = 75,
        repeats: int = 2, megapixels: float = 12.0, out: str | os.PathLike | None = None, name: str = "benchmarks-speed",
        command: str = "cnnjpeg bench --speed", small: int = 16, checks: bool = True) -> dict:
    """Measure every model on every device; write ``NAME.md`` and ``NAME.json`` to ``out`` if given."""
    from ..nn import models as zoo
    from ..nn.models import default_model, default_restore_model

    models = models or [m for m in (default_model(), default_restore_model(), "jpeg") if m]
    images = test_images(megapixels, small)
    rows = []
    for dev in device_list or devices():
        with _setting("CNNJPEG_DEVICE", dev):
            rows += [row for m in models for row in measure(m, dev, images, quality, repeats)]
    with _setting("CNNJPEG_DEVICE", "cpu"):
        crop = np.ascontiguousarray(next(iter(images.values()))[0][:256, :256])
        networked = [m for m in models if zoo.load_stages(m).decoder is not None]
        costs = {m: half_cost(m, crop) for m in networked} if checks else {}
        runtimes = runtime_comparison(networked[0], next(iter(images.values()))[0], repeats) if networked and checks else []
    result = {"command": command, "quality": quality, "repeats": repeats, "machine": machine(), "rows": rows,
              "half_precision_cost_db": costs, "runtimes": runtimes, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / f"{name}.md").write_text(markdown(result))
        from .report_sections import update_report

        update_report(out / "benchmarks.md")
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--devices", nargs="+", default=None)
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--megapixels", type=float, default=12.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="benchmarks-speed")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = run(args.models, args.devices, args.quality, args.repeats, args.megapixels, args.out, args.name,
                 command="python -m napari_cnnjpeg.eval.bench_speed " + " ".join(sys.argv[1:] if argv is None else argv))
    print(markdown(result))


if __name__ == "__main__":
    main()
