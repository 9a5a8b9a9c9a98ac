"""The model zoo: ids, hashed weights, and the encoder/decoder stages they run.

A model has an id, an optional encoder stage (a network run before JPEG), an
optional decoder stage (a network run after JPEG) and the SHA-256 of its weights.
A compact model also stores its JPEG at reduced resolution (``downscale``): the
plane is shrunk before JPEG and enlarged again before the decoder network.
The shipped models are listed in ``weights/zoo.json`` beside their safetensors
files; ``"jpeg"`` is plain JPEG with no network and ``"jpeg-tuned"`` plain JPEG with
quantisation tables tuned for PSNR (a model's ``tables``). A file can only name one
of these ids: it never chooses code or weights beyond them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..errors import CjpgError
from ..format.jpeg import LAYOUTS, TUNED_TABLES, check_tables
from . import inference, resample


BASELINE = "jpeg"
TUNED = "jpeg-tuned"
#: Model tiers: "s" for CPUs, "l" where a GPU makes a larger network pay.
TIERS = ("s", "l")


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: what it is, and where its verified weights live."""

    id: str
    description: str
    kind: str  # "baseline", "restore" (decoder only), "joint" (encoder + decoder) or "compact"
    weights: str | None = None  # file name inside napari_cnnjpeg/weights
    sha256: str | None = None
    encoder: dict | None = None  # {"arch": ..., "config": {...}}
    decoder: dict | None = None
    downscale: int = 1  # the JPEG holds the plane at 1/downscale resolution
    tables: dict | None = None  # quantisation-table tuning (jpeg.tables_for_quality); None: libjpeg's
    #: Payloads coded by mozjpeg with trellis quantisation (jpeg.encode_trellis), as the networks were trained.
    trellis: bool = False
    superseded_by: str | None = None  # kept so that files made with it still decode
    #: Qualities this model codes as asked; a quality outside is coded at the nearest end
    #: (measured: beyond it, PSNR would stop rising or fall), so quality is monotone from 1 to 100.
    quality_range: tuple[int, int] = (1, 100)
    #: What an ordinary image viewer (no network) shows of the JPEG payload.
    stock_viewer: str = "the image, as plain JPEG shows it"
    #: Payload precision its networks work on: 8, or 12 (12-bit JPEG of data of more than 8 bits).
    bits: int = 8
    #: "s": runs at 2 MP/s or more on 2 CPU cores; "l": larger, worth running only on a GPU.
    tier: str = "s"
    #: Decoder-only models, per chroma layout (:data:`IDENTITY_LAYOUTS`): at or below this mean luma
    #: quantisation step (in 8-bit units) the decoder returns its input unchanged (measured: on
    #: finer tables it stops helping). A layout not listed, or not known, gets the largest step.
    identity_step: dict | None = None
    card: dict = field(default_factory=dict, compare=False, hash=False)

    def effective_quality(self, quality: int) -> int:
        """The JPEG quality this model codes a requested ``quality`` at (clamped to :attr:`quality_range`)."""
        lo, hi = self.quality_range
        return min(max(int(quality), lo), hi)


def _zoo_entries() -> list[dict]:
    path = resources.files("napari_cnnjpeg") / "weights" / "zoo.json"
    return json.loads(path.read_text()) if path.is_file() else []


@lru_cache(maxsize=1)
def registry() -> dict[str, ModelInfo]:
    """Every model this installation ships, by id."""
    models = {
        BASELINE: ModelInfo(BASELINE, "plain baseline JPEG (Pillow/libjpeg-turbo), no network", "baseline"),
        # below quality 10 the tuned tables saturate at 255 and PSNR dips (scripts/quality_range.py)
        TUNED: ModelInfo(TUNED, "plain JPEG with quantisation tables tuned for PSNR and mozjpeg's trellis "
                         "quantisation, no network", "baseline", tables=TUNED_TABLES, trellis=True,
                         quality_range=(10, 100)),
    }
    for e in _zoo_entries():
        models[e["id"]] = ModelInfo(
            id=e["id"], description=e["description"], kind=e["kind"], weights=e["weights"],
            sha256=e["sha256"], encoder=e.get("encoder"), decoder=e.get("decoder"),
            downscale=int(e.get("downscale", 1)), tables=check_tables(e.get("tables")),
            trellis=e.get("trellis", False) is True, superseded_by=e.get("superseded_by"), quality_range=_quality_range(e.get("quality_range")),
            stock_viewer=e.get("stock_viewer", ModelInfo.stock_viewer), bits=_bits(e.get("bits", 8)),
            tier=_tier(e.get("tier", "s")), identity_step=_identity_steps(e.get("identity_step")),
            card=e.get("card", {}),
        )
    return models


#: Keys of :attr:`ModelInfo.identity_step`: a stream's chroma layout (:data:`jpeg.LAYOUTS`), or
#: "component": one component of an RGB-, CMYK- or YCCK-coded stream restored as a grey plane on its own
#: (``restore``; measured by ``scripts/component_identity.py``).
IDENTITY_LAYOUTS = LAYOUTS + ("component",)


def _identity_steps(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value or not all(
            k in IDENTITY_LAYOUTS and isinstance(v, (int, float)) and np.isfinite(v) and v >= 0
            for k, v in value.items()):
        raise CjpgError(f"a model's identity_step maps chroma layouts ({', '.join(IDENTITY_LAYOUTS)}) to steps of "
                        f"at least 0, got {value!r}")
    return {k: float(v) for k, v in value.items()}


def _tier(value) -> str:
    if value not in TIERS:
        raise CjpgError(f"a model's tier must be one of {', '.join(TIERS)}, got {value!r}")
    return value


def _bits(value) -> int:
    if value not in (8, 12):
        raise CjpgError(f"a model's bits must be 8 or 12, got {value!r}")
    return value


def _quality_range(value) -> tuple[int, int]:
    if value is None:
        return (1, 100)
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        lo, hi = 0, 0
    if not 1 <= lo <= hi <= 100:
        raise CjpgError(f"a model's quality_range must be two qualities within 1-100, got {value!r}")
    return lo, hi


def available_models(bits: int | None = None) -> list[str]:
    """Ids of the models to choose from, plain JPEG (``"jpeg"``) first.

    :func:`model_summary` says what each one is and what a stock viewer shows of its
    files. Superseded models are left out: they stay installed only so that files made
    with them still decode (:func:`model_info` knows them). ``bits`` (8 or 12) keeps the
    models that can code payloads of that precision (:func:`payload_bits`).
    """
    return [m.id for m in registry().values()
            if not m.superseded_by and (bits is None or payload_bits(m.id) in (None, bits))]


def payload_bits(model_id: str) -> int | None:
    """The payload precision a model needs (its networks', or 8 for tuned tables, which only 8-bit
    JPEG writes); None for plain JPEG, which codes 8- and 12-bit payloads."""
    info = model_info(model_id)
    return info.bits if info.encoder or info.decoder or info.tables else None


def model_summary(model_id: str) -> str:
    """One paragraph on a model for people choosing one: what it is, what an ordinary
    viewer shows of its files, and the qualities it codes (its ceiling)."""
    info = model_info(model_id)
    lo, hi = info.quality_range
    if (lo, hi) == (1, 100):
        qualities = "qualities 1-100"
    else:
        below = f"below {lo} it codes at {lo}" if lo > 1 else ""
        above = f"above {hi} it codes at {hi}, its ceiling" if hi < 100 else ""
        qualities = f"qualities {lo}-{hi} ({'; '.join(x for x in (below, above) if x)})"
    payload = " It decodes 12-bit JPEG payloads (data of more than 8 bits)." if info.bits == 12 else ""
    return (f"{info.description}.{payload} A stock image viewer shows {info.stock_viewer}. "
            f"{qualities[0].upper()}{qualities[1:]}.")


def quality_note(model_id: str, quality: int) -> str:
    """Why a model codes ``quality`` as another (outside its quality range), or "" where it does not."""
    info = model_info(model_id)
    effective = info.effective_quality(quality)
    if effective == int(quality):
        return ""
    lo, hi = info.quality_range
    return f"{info.id} codes qualities {lo}-{hi}: quality {quality} is coded as {effective}"


def default_model(bits: int = 8) -> str:
    """The model :func:`~napari_cnnjpeg.encode` uses when none is named: the zoo's entry marked default
    (chosen by BD-rate on held-out data when it was registered).

    ``bits=12``: the one for 12-bit payloads (data of more than 8 bits); plain JPEG where
    the zoo has none.
    """
    ranked = [e for e in _zoo_entries() if e.get("default") and e.get("bits", 8) == bits]
    return ranked[0]["id"] if ranked else BASELINE


def default_restore_model(bits: int = 8, device: str | None = None) -> str | None:
    """The best decoder-only model for ``bits``-bit JPEG on ``device``, used by :func:`~napari_cnnjpeg.restore`.

    On a GPU (``device`` default: :func:`inference.device`) an "l"-tier model is preferred
    where one is installed; elsewhere only "s"-tier models are considered. Best then means
    the lowest Kodak BD-rate recorded in the model cards (by ``cnnjpeg bench
    --update-cards``); without figures, the first listed.
    """
    restore = [m for m in registry().values() if m.kind == "restore" and not m.superseded_by and m.bits == bits]
    gpu = (device or inference.device()).startswith("cuda")
    large = [m for m in restore if m.tier == "l"]
    restore = large if gpu and large else [m for m in restore if m.tier == "s"]
    if not restore:
        return None
    measured = [m for m in restore if "bd_rate_psnr" in m.card.get("kodak", {})]
    return min(measured, key=lambda m: m.card["kodak"]["bd_rate_psnr"]).id if measured else restore[0].id


def model_info(model_id: str) -> ModelInfo:
    """The registry entry of a model id, or :class:`CjpgError` naming the known ids."""
    try:
        return registry()[model_id]
    except (KeyError, TypeError):
        shown = repr(model_id) if len(repr(model_id)) <= 80 else repr(model_id)[:77] + "..."  # a crafted file's id
        raise CjpgError(
            f"unknown model {shown} (not shipped by this installation; a file made with it still decodes "
            f"as plain JPEG with model='jpeg'); available: {', '.join(available_models())}"
        ) from None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_weights(info: ModelInfo, data: bytes | None = None) -> dict[str, Any]:
    """The model's tensors, after checking their SHA-256 against the registry."""
    from safetensors.torch import load as load_safetensors

    if data is None:
        data = (resources.files("napari_cnnjpeg") / "weights" / info.weights).read_bytes()
    if sha256_of(data) != info.sha256:
        raise CjpgError(f"weights of model {info.id!r} fail their SHA-256 check; the installation is altered")
    return load_safetensors(data)


# -- devices and threads ------------------------------------------------------
def set_threads(n: int | None) -> None:
    """Number of CPU threads the networks use (None: torch's default)."""
    import torch

    if n:
        torch.set_num_threads(int(n))


# -- stages -------------------------------------------------------------------
@dataclass
class ModelStages:
    """The networks of one model, ready to run on numpy planes.

    Either stage may be None (no network on that side of JPEG). With ``downscale``
    above 1 the encoder stage first shrinks the plane by that factor; the reader
    enlarges the decoded JPEG to full size before :meth:`post`. ``tables`` is the
    quantisation-table tuning the JPEG is written with (None: libjpeg's tables).
    """

    encoder: Any = None
    decoder: Any = None
    tile: int | None = None  # None: the device's default (inference.TILE)
    downscale: int = 1
    tables: dict | None = None
    trellis: bool = False  # payloads by mozjpeg's trellis quantisation (jpeg.encode_trellis)
    bits: int = 8  # payload precision the networks work on
    identity_step: dict | None = None  # see ModelInfo.identity_step
    #: Shipped, frozen networks may run under NNPACK or ONNX Runtime on the CPU; networks in training never do.
    frozen: bool = False
    _runners: dict = field(default_factory=dict, repr=False, compare=False)

    def _run(self, name: str, plane: np.ndarray, luma, chroma, rounded: bool = False,
             levels: int | None = None) -> np.ndarray:
        net = getattr(self, name)
        runner = None
        if self.frozen:
            dev = str(next(net.parameters()).device)
            runtime = inference.choose_runtime(net, dev)
            key = (name, runtime, inference.runtime_threads())
            if key not in self._runners:
                with _RUNNERS_LOCK:  # threads decoding at once make one runner (an ONNX Runtime session), not one each
                    if key not in self._runners:
                        self._runners[key] = inference.make_runner(net, runtime, key[2])
            runner = self._runners[key]
        return inference.run_network(net, plane, luma, chroma, self.tile, runner, rounded=rounded, levels=levels)

    def pre(self, plane: np.ndarray, quality: int, luma: np.ndarray | None = None,
            levels: int | None = None, layout: str | None = None) -> np.ndarray:
        """Encoder stage on a uint8 plane, for JPEG at ``quality`` in chroma ``layout`` (:func:`jpeg.chroma_layout`;
        default: "grey" for a 2D plane, "4:2:0" for RGB); returns uint8. A grey uint16 plane of 12-bit samples
        0..``levels`` comes with ``luma``, the steps its payload's frequencies get (in sample units), and returns
        as uint16. Where the payload's luma steps are as fine as :attr:`identity_step`'s for ``layout``, the
        decoder leaves the payload as it is, and so does the encoder."""
        plane = resample.downscale(plane, self.downscale)
        if self.encoder is None:
            return plane
        chroma = None
        if luma is None:
            from ..format.jpeg import tables_for_quality

            luma, chroma = tables_for_quality(int(quality), self.tables)
        layout = layout or ("grey" if plane.ndim == 2 else "4:2:0")
        if luma.mean() / (((levels or 255) + 1) / 256) <= self._identity_step(layout):
            return plane
        return self._run("encoder", plane, luma, None if plane.ndim == 2 else chroma, rounded=True, levels=levels)

    def post(self, plane: np.ndarray, luma: np.ndarray, chroma: np.ndarray | None, rounded: bool = False,
             levels: int | None = None, layout: str | None = None) -> np.ndarray:
        """Decoder stage on a decoded plane (uint8, or uint16 of 12-bit samples 0..``levels``,
        default 4095) and its JPEG tables; returns float32 in the plane's scale (``rounded``:
        the plane's dtype). ``layout`` is the stream's chroma layout (:func:`jpeg.chroma_layout`;
        None: not known), for :attr:`identity_step`. A decoder-only model also leaves a plane of at most
        :data:`FLAT_VALUES` sample values as it is (:func:`few_values`)."""
        levels = levels or inference.plane_levels(plane.dtype)
        unit = (levels + 1) / 256  # the tables' steps, in 8-bit units
        if (self.decoder is None or luma.mean() / unit <= self._identity_step(layout)
                or (self.encoder is None and few_values(plane))):
            return plane if rounded else plane.astype(np.float32)
        return self._run("decoder", plane, luma, chroma, rounded, levels)

    def _identity_step(self, layout: str | None) -> float:
        steps = self.identity_step or {}
        return steps.get(layout, max(steps.values(), default=-1.0))


#: Most sample values a decoded plane may hold for a decoder-only model to leave it as it is: JPEG
#: decodes such piecewise-flat planes (masks, labels, block-aligned patterns) exactly or nearly, and
#: the networks, which take their edges for blocking, made them worse (a two-valued 16-bit checkerboard
#: of 8x8 squares: 70.7 dB plain, 23.8 dB restored, at quality 13).
FLAT_VALUES = 8


def few_values(plane: np.ndarray) -> bool:
    """Whether ``plane`` (uint8 or uint16) holds at most :data:`FLAT_VALUES` distinct values; a sparse
    sample answers for most planes without a pass over all of them."""
    return all(np.count_nonzero(np.bincount(part.ravel())) <= FLAT_VALUES for part in (plane[::7, ::7], plane))


#: Held while runners (:meth:`ModelStages._run`) or stages (:func:`load_stages`) are made.
_RUNNERS_LOCK = threading.Lock()
_STAGES_LOCK = threading.RLock()


def load_stages(model_id: str) -> ModelStages:
    """The networks of a registered model, loaded once per process and hash-checked (threads asking at
    once wait for the first load: an lru_cache alone would load the model once per thread)."""
    with _STAGES_LOCK:
        return _load_stages(model_id)


@lru_cache(maxsize=16)
def _load_stages(model_id: str) -> ModelStages:
    info = model_info(model_id)
    if info.weights is None and info.kind != "baseline":
        return load_stages(_retired_successor(info))
    if info.weights is None:
        return ModelStages(downscale=info.downscale, tables=info.tables, trellis=info.trellis, bits=info.bits)
    from .nets import build

    state = load_weights(info)
    nets = {}
    for name in ("encoder", "decoder"):
        spec = getattr(info, name)
        if spec is None:
            continue
        net = build(spec["arch"], spec.get("config"))
        prefix = name + "."
        net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        nets[name] = net.eval().to(inference.device())
    return ModelStages(**nets, downscale=info.downscale, tables=info.tables, trellis=info.trellis, bits=info.bits,
                       identity_step=info.identity_step, frozen=True)


def _retired_successor(info: ModelInfo) -> str:
    """The model that decodes a retired model's files (weights removed from the package).

    Only a decoder-only model can be retired: its files hold plain JPEG, which the
    decoder-only model that superseded it restores.
    """
    seen = {info.id}
    successor = info
    while successor.weights is None and successor.superseded_by and successor.superseded_by not in seen:
        seen.add(successor.superseded_by)
        successor = model_info(successor.superseded_by)
    if info.kind != "restore" or successor.kind != "restore" or successor.weights is None:
        raise CjpgError(
            f"the weights of model {info.id!r} are no longer installed; decode with model='jpeg' for the plain JPEG"
        )
    return successor.id


def resolve(model: str | ModelStages) -> tuple[str, str | None, ModelStages]:
    """(id, weights hash, stages) for a model id or for ready stages (used in training)."""
    if isinstance(model, ModelStages):
        return "unregistered", None, model
    info = model_info(model)
    return info.id, info.sha256, load_stages(info.id)


load_stages.cache_clear = _load_stages.cache_clear  # type: ignore[attr-defined]
load_stages.cache_info = _load_stages.cache_info  # type: ignore[attr-defined]
load_stages.__wrapped__ = _load_stages.__wrapped__  # type: ignore[attr-defined]
