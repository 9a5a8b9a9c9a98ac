"""Running a network on a plane: tiles, the device, and the runtime that executes it.

A plane goes to the device once (in its dtype), colour conversion and clipping run there,
tiles of equal shape run in batches, and the result comes back in one copy. On the CPU,
shipped models run through NNPACK's Winograd convolutions where torch has them
(:mod:`.nnpack_runtime`) and the CPU has no AVX-512 (NNPACK's kernels stop at AVX2, and
on AVX-512 CPUs ONNX Runtime's are faster), else under ONNX Runtime when it is installed: the
architecture's graph ships in ``graphs/`` (no weights in it) and the hash-checked
safetensors weights are handed to it in memory. Both match torch's output to float
rounding. Elsewhere, and for networks being trained, torch runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import lru_cache
from importlib import resources

import numpy as np

# ONNX Runtime (1.29 on) writes a telemetry device id under ~/.cache/Microsoft when imported, which
# reading a file must not do; a user who set this variable keeps their choice.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

#: Tile sizes by device or runtime (measured fastest on each): a tile keeps at most this side
#: squared pixels, in any shape (see :func:`_tiles`), computed with an overlap on each side;
#: tiles bound the memory.
TILE = {"cpu": 512, "onnxruntime": 1024, "nnpack": 1792, "cuda": 2048}
OVERLAP = 48
#: Pixels (including overlaps) run together in one batch of tiles on a GPU.
GPU_BATCH_PIXELS = 4 * 2144**2
#: Runtimes: "auto" picks NNPACK (ONNX Runtime first on AVX-512 CPUs), else ONNX Runtime, on the
#: CPU for shipped models, else torch.
RUNTIMES = ("auto", "torch", "onnxruntime", "nnpack")
#: Values of ``CNNJPEG_HALF`` (any case) that turn float16 autocast off, and on.
HALF_OFF, HALF_ON = ("0", "false", "no", "off"), ("1", "true", "yes", "on")


def device() -> str:
    """The torch device the networks run on (``CNNJPEG_DEVICE``: auto, cpu, cuda, cuda:1...; unset or
    empty: auto). A device torch cannot use here is a :class:`CjpgError` naming the setting."""
    import torch

    from ..errors import CjpgError

    want = os.environ.get("CNNJPEG_DEVICE", "").strip().lower() or "auto"
    if want in ("auto", "cpu"):
        return "cuda" if want == "auto" and torch.cuda.is_available() else "cpu"
    kind, _, index = want.partition(":")
    if kind != "cuda" or (index and not (index.isascii() and index.isdigit())):
        raise CjpgError(f"CNNJPEG_DEVICE={want!r} is not one of auto, cpu, cuda, cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if int(index or 0) >= count:
        raise CjpgError(f"CNNJPEG_DEVICE={want!r}, but torch sees {count} CUDA device(s) here; use cpu or auto")
    return want


def half_precision(dev: str) -> bool:
    """Whether networks run under float16 autocast: on CUDA, unless ``CNNJPEG_HALF`` is 0 (or false, no,
    off); a value that is neither on nor off is a :class:`CjpgError` there."""
    if not dev.startswith("cuda"):
        return False
    value = os.environ.get("CNNJPEG_HALF", "1").strip().lower()
    if value not in HALF_OFF + HALF_ON:
        from ..errors import CjpgError

        raise CjpgError(f"CNNJPEG_HALF={value!r} is neither on ({', '.join(HALF_ON)}) nor off ({', '.join(HALF_OFF)})")
    return value in HALF_ON


# -- ONNX Runtime -------------------------------------------------------------
def _graph_index() -> list[dict]:
    return json.loads(resources.files("napari_cnnjpeg").joinpath("graphs", "index.json").read_text())


def graph_key(net) -> dict:
    """What fixes a network's graph: its architecture and sizes."""
    return {"arch": type(net).__name__, "ch1": net.ch1, "ch2": net.ch2, "blocks": net.blocks}


def shipped_graph(net) -> bytes | None:
    """The shipped ONNX graph (weights left out) for ``net``'s architecture, if there is one."""
    return _graph(*graph_key(net).values())


@lru_cache(maxsize=None)
def _graph(arch: str, ch1: int, ch2: int, blocks: int) -> bytes | None:
    key = {"arch": arch, "ch1": ch1, "ch2": ch2, "blocks": blocks}
    for entry in _graph_index():
        if entry["key"] == key:
            data = resources.files("napari_cnnjpeg").joinpath("graphs", entry["file"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                from ..errors import CjpgError

                raise CjpgError(f"graph {entry['file']} fails its SHA-256 check; the installation is altered")
            return data
    return None


_LOCAL = threading.local()


class limit_threads:
    """``with limit_threads(n):`` ONNX Runtime sessions created or used on this thread run ``n``
    threads (napari's restore worker leaves a core to the GUI thread)."""

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))

    def __enter__(self) -> None:
        self.before = getattr(_LOCAL, "threads", None)
        _LOCAL.threads = self.n

    def __exit__(self, *exc) -> None:
        _LOCAL.threads = self.before


def runtime_threads() -> int:
    """Threads for an ONNX Runtime session on this thread: :class:`limit_threads`, else torch's."""
    import torch

    return getattr(_LOCAL, "threads", None) or torch.get_num_threads()


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OrtNet:
    """A frozen network run by ONNX Runtime on the CPU: called like the torch module."""

    def __init__(self, net, graph: bytes, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # idle threads sleep instead of spinning: no cost measured, and a core stays free for others
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # the weights stay referenced by this object: ONNX Runtime reads them in place
        self._weights = {k: np.ascontiguousarray(v.detach().float().cpu().numpy()) for k, v in net.state_dict().items()}
        names = list(self._weights)
        opts.add_external_initializers(names, [ort.OrtValue.ortvalue_from_numpy(self._weights[k]) for k in names])
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        self.multiple = net.multiple

    def __call__(self, x, cond):
        import torch

        feed = {"x": np.ascontiguousarray(x.float().numpy()), "cond": np.ascontiguousarray(cond.float().numpy())}
        y = self.session.run(None, feed)[0]
        return torch.from_numpy(y)


def nnpack_available() -> bool:
    from . import nnpack_runtime

    return nnpack_runtime.available()


def avx512_cpu() -> bool:
    """Whether torch runs its CPU kernels with AVX-512 here (``torch.backends.cpu.get_cpu_capability``)."""
    import torch

    capability = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return capability is not None and capability().startswith("AVX512")


def choose_runtime(net, dev: str) -> str:
    """The runtime for a shipped (frozen) network on ``dev`` (``CNNJPEG_RUNTIME`` overrides).

    NNPACK's Winograd kernels are the fastest on AVX2 CPUs; on AVX-512 CPUs ONNX Runtime's
    are (``cnnjpeg bench --speed`` measures both), so it runs there. NNPACK's thread pool
    keeps the size it first had, so under :class:`limit_threads` (fewer threads than
    torch's) ONNX Runtime runs instead.
    """
    import torch

    want = os.environ.get("CNNJPEG_RUNTIME", "auto")
    if want not in RUNTIMES:
        from ..errors import CjpgError

        raise CjpgError(f"CNNJPEG_RUNTIME={want!r} is not one of {', '.join(RUNTIMES)}")
    if want == "torch" or dev != "cpu":
        return "torch"
    ort_usable = onnxruntime_available() and shipped_graph(net) is not None
    nnpack_usable = nnpack_available()
    if (want == "onnxruntime" and not ort_usable) or (want == "nnpack" and not nnpack_usable):
        from ..errors import CjpgError

        raise CjpgError(f"CNNJPEG_RUNTIME={want}, but it is not installed or cannot run this model here")
    if want != "auto":
        return want
    if nnpack_usable and runtime_threads() >= torch.get_num_threads() and not (ort_usable and avx512_cpu()):
        return "nnpack"
    return "onnxruntime" if ort_usable else "torch"


def make_runner(net, runtime: str, threads: int):
    """What executes a frozen network under ``runtime`` (None: the torch module itself)."""
    if runtime == "onnxruntime":
        return OrtNet(net, shipped_graph(net), threads)
    if runtime == "nnpack":  # small tiles run faster under ONNX Runtime, where it is installed
        from .nnpack_runtime import NnpackNet

        graph = shipped_graph(net) if onnxruntime_available() else None
        return NnpackNet(net, OrtNet(net, graph, threads) if graph is not None else None)
    return None


def runner_name(runner) -> str:
    """The runtime a runner from :func:`make_runner` stands for."""
    return {"OrtNet": "onnxruntime", "NnpackNet": "nnpack"}.get(type(runner).__name__, "torch")


def default_tile(runner, dev) -> int:
    """The tile side run_network uses by default for ``runner`` on ``dev``."""
    name = runner_name(runner)
    return TILE[name] if name != "torch" else TILE.get(str(dev).split(":")[0], TILE["cpu"])


# -- stage timing (the speed benchmark) ---------------------------------------
class StageClock:
    """Seconds spent per stage of :func:`run_network`, while installed with :func:`timing`.

    On CUDA each lap synchronises, so timing slows the pipeline it measures a little.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = 0.0
        self._sync = None

    def start(self, dev) -> None:
        import time

        import torch

        self._sync = torch.cuda.synchronize if dev.type == "cuda" else None
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        import time

        if self._sync:
            self._sync()
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


_CLOCK: StageClock | None = None


class timing:
    """``with timing() as clock:`` records :func:`run_network`'s stages in ``clock.seconds``."""

    def __enter__(self) -> StageClock:
        global _CLOCK
        _CLOCK = StageClock()
        return _CLOCK

    def __exit__(self, *exc) -> None:
        global _CLOCK
        _CLOCK = None


def _lap(stage: str) -> None:
    if _CLOCK is not None:
        _CLOCK.lap(stage)


# -- tiles --------------------------------------------------------------------
def _splits(n: int, parts: int, m: int) -> list[int]:
    """Boundaries cutting ``n`` (a multiple of ``m``) into ``parts`` near-equal multiples of ``m``."""
    return [m * round(k * (n // m) / parts) for k in range(parts + 1)]


def _grid(H: int, W: int, area: int, m: int) -> tuple[int, int]:
    """Rows and columns of tiles for an H x W plane: of the grids whose tiles keep at most
    ``area`` pixels each, the one that computes the fewest pixels with the overlaps (then the
    fewest tiles). Its tiles are equal and as large as ``area`` allows: they run the networks
    fastest, and leave no thin strip at the edge, which runs slower per pixel."""
    best = None
    for ny in range(1, H // m + 1):
        h = m * -(-(H // m) // ny)  # the tallest row of tiles
        if h * m > area:
            continue
        w = max(m, area // h // m * m)
        nx = -(-W // w)
        key = ((H + 2 * OVERLAP * (ny - 1)) * (W + 2 * OVERLAP * (nx - 1)), ny * nx)
        if best is None or key < best[0]:
            best = key, ny, nx
    return (best[1], best[2]) if best else (H // m, W // m)


def _tiles(H: int, W: int, area: int, m: int) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """(y0, y1, x0, x1) kept and (ya, yb, xa, xb) computed, for each tile of :func:`_grid`."""
    ny, nx = _grid(H, W, area, m)
    ys, xs = _splits(H, ny, m), _splits(W, nx, m)
    out = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            ya, xa = max(0, y0 - OVERLAP), max(0, x0 - OVERLAP)
            yb, xb = min(H, y1 + OVERLAP), min(W, x1 + OVERLAP)
            out.append((y0, y1, x0, x1, ya, yb, xa, xb))
    return out


def run_network(
    net,
    plane: np.ndarray,
    luma: np.ndarray,
    chroma: np.ndarray | None,
    tile: int | None = None,
    runner=None,
    batch_pixels: int | None = None,
    rounded: bool = False,
    levels: int | None = None,
) -> np.ndarray:
    """Run a YCbCr network on a uint8 (H, W) or (H, W, 3) plane, tile by tile.

    A uint16 plane holds a 12-bit JPEG's samples, 0 to ``levels`` (default 4095): the
    network sees it scaled to [0, 1] like an 8-bit one, and its tables scaled to match,
    in 8-bit steps (divided by (levels + 1) / 256).

    Tiles keep up to ``tile`` squared pixels each (default: :data:`TILE` for the device or
    runtime; equal tiles, as few as that allows), overlap by :data:`OVERLAP` on each side and
    only their centres are kept, so the result matches a single pass. ``runner`` executes the
    network (default: the torch module itself); one with an ``rgb`` method takes colour tiles
    as RGB (:meth:`nnpack_runtime.NnpackNet.rgb`).
    Tiles of equal shape run together up to ``batch_pixels`` input pixels per batch
    (default: :data:`GPU_BATCH_PIXELS` on CUDA, one tile at a time elsewhere).
    Returns float32 in the plane's scale (0-255, or 0-4095) and shape, clipped to it; with
    ``rounded``, the plane's dtype (rounded on the device, so fewer bytes come back).
    """
    import torch

    from .nets import rgb_to_ycc, table_features, ycc_to_rgb

    gray = plane.ndim == 2
    dev = next(net.parameters()).device
    if _CLOCK is not None:
        _CLOCK.start(dev)
    run = runner or net
    half = runner is None and half_precision(str(dev))
    levels = levels or plane_levels(plane.dtype)
    unit = (levels + 1) / 256  # a 12-bit table's step, in 8-bit units
    cond = torch.from_numpy(table_features(luma / unit, None if gray else chroma / unit))[None].to(dev)
    h, w = plane.shape[:2]
    m = net.multiple
    if h % m or w % m:  # sides to a multiple of m, edge samples repeated
        plane = np.pad(plane, ((0, -h % m), (0, -w % m)) + ((0, 0),) * (plane.ndim - 2), mode="edge")
    plane = np.ascontiguousarray(plane) if plane.flags.writeable else plane.copy()  # torch wants writable memory
    x = torch.from_numpy(plane).to(dev)  # one copy in, in the plane's dtype (none on the CPU)
    _lap("transfer")
    x = x[None, None] if gray else x.permute(2, 0, 1)[None]
    H, W = x.shape[-2:]
    # the result is written tile by tile in its final layout and dtype (12-bit: int16, a view as uint16)
    out_dtype = (torch.uint8 if plane.dtype == np.uint8 else torch.int16) if rounded else torch.float32
    out = torch.empty((h, w) + (() if gray else (3,)), dtype=out_dtype, device=dev)
    side = max(m, tile or default_tile(runner, dev))
    groups: dict[tuple[int, int], list] = {}
    for t in _tiles(H, W, side * side, m):
        groups.setdefault((t[5] - t[4], t[7] - t[6]), []).append(t)
    with torch.inference_mode():
        for (th, tw), tiles in groups.items():
            if batch_pixels is None:
                batch_pixels = GPU_BATCH_PIXELS if dev.type == "cuda" else 0
            per = max(1, batch_pixels // (th * tw))
            for i in range(0, len(tiles), per):
                batch = tiles[i : i + per]
                parts = [x[..., ya:yb, xa:xb].float() for _, _, _, _, ya, yb, xa, xb in batch]  # (uint16: no cat on CUDA)
                rgb = torch.cat(parts) if len(parts) > 1 else parts[0]
                del parts
                _lap("tiling")
                if not gray and hasattr(run, "rgb"):  # the runner folds the colour conversions into the network
                    res = run.rgb(rgb, cond.expand(len(batch), -1), levels)
                    del rgb
                    _lap("network")
                else:
                    if gray:
                        ycc = torch.cat([rgb.div_(levels), torch.full_like(rgb, 0.5), torch.full_like(rgb, 0.5)], 1)
                    else:
                        ycc = rgb_to_ycc(rgb, levels)
                    del rgb
                    _lap("colour")
                    with torch.autocast(dev.type, dtype=torch.float16, enabled=half):
                        res = run(ycc, cond.expand(len(batch), -1))
                    del ycc
                    res = res.to(dev, torch.float32)
                    _lap("network")
                    res = res[:, :1].mul_(levels) if gray else ycc_to_rgb(res, levels)
                res = res.clamp_(0, levels)
                if rounded:
                    res = res.round_()
                _lap("colour")
                for j, (y0, y1, x0, x1, ya, _, xa, _) in enumerate(batch):
                    y1, x1 = min(y1, h), min(x1, w)
                    kept = res[j, :, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
                    out[y0:y1, x0:x1] = kept[0] if gray else kept.permute(1, 2, 0)
                _lap("tiling")
    if hasattr(run, "release"):
        run.release()
    out = out.cpu().numpy()  # one copy out (none on the CPU)
    _lap("transfer")
    return out.view(np.uint16) if out.dtype == np.int16 else out


def plane_levels(dtype: np.dtype) -> int:
    """The largest sample value of a plane's dtype as the networks take it (uint16: 12-bit)."""
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 4095
    raise TypeError(f"networks run on uint8 or 12-bit uint16 planes, got {dtype}")
