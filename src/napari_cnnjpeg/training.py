"""Training of the shipped networks, reproducible on a few CPU cores.

Three recipes:

- ``restore``: a decoder-only :class:`~napari_cnnjpeg.nn.nets.RestoreNet` learns to undo
  real JPEG (Pillow) at random qualities 5-95, RGB 4:2:0 / 4:4:4 and grayscale.
- ``compact``: the same, but each patch is shrunk by :data:`COMPACT_DOWNSCALE`
  (Lanczos) before JPEG and enlarged (bicubic) after it, as compact models store
  their files (:mod:`napari_cnnjpeg.nn.resample`); the RestoreNet learns to upsample
  and restore at once.
- ``joint``: a :class:`~napari_cnnjpeg.nn.nets.PreNet` encoder and a RestoreNet decoder
  learn together. The forward pass runs the real JPEG encoder on the encoder's
  output; gradients flow through :mod:`napari_cnnjpeg.nn.jpeg_proxy`. The loss is
  log10 MSE (-PSNR/10) plus ``rate_weight``/10 x log2 of the rate proxy, so the
  encoder gains only where it beats JPEG's own trade-off of ``rate_weight`` dB per
  doubling of the bits. With ``view_weight`` w, the distortion term is (1 - w) x that
  of the decoder's output plus w x that of the JPEG payload as a stock decoder shows it,
  so the payload stays right in viewers that run no network. With ``ssim_weight`` s,
  each distortion term is (1 - s) x log10 MSE plus s x log10(1 - SSIM), SSIM as the
  benchmark measures it (:func:`ssim_torch`).

``jpeg`` "emulated" runs the round trips in torch on the training device
(:mod:`napari_cnnjpeg.nn.jpeg_emulation`, bit-exact to Pillow) instead of Pillow on the CPU.

Each step draws its batch from a generator seeded by (seed, step), so a resumed run
follows the same path as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .format.container import write_atomic
from .format.jpeg import (
    MAX12,
    SUBSAMPLING,
    check_tables,
    decode_jpeg,
    encode_jpeg,
    luma,
    quant_tables,
    tables_for_quality,
)

VAL_QUALITIES = (10, 30, 50, 70, 90)
#: 12-bit validation reaches the top, where the network must not cost the payload's precision.
VAL_QUALITIES_12 = (10, 30, 50, 70, 90, 98, 100)
RECIPES = ("restore", "joint", "compact")
#: Where training's JPEG round trips run (TrainConfig.jpeg).
JPEG_PATHS = ("real", "emulated")
#: Resolution factor of the ``compact`` recipe's JPEG.
COMPACT_DOWNSCALE = 2

if TYPE_CHECKING:
    from .nn.models import ModelStages


@dataclass
class TrainConfig:
    """Everything that decides a training run."""

    recipe: str = "restore"  # "restore", "joint" or "compact"
    data: str = "../shared/data/train"
    out: str = "runs/restore"
    steps: int = 20000
    patch: int = 96
    batch: int = 16
    lr: float = 1e-3
    seed: int = 0
    val_images: int = 4  # held out from the data folder (the last names in sorted order)
    train_images: int = 0  # train on the first this many of the others (0: all of them)
    val_every: int = 500
    checkpoint_every: int = 250
    threads: int = 2  # torch CPU threads, and parallel JPEG round trips
    device: str = "cpu"  # "cpu", "cuda" or "auto" (CUDA when available)
    jpeg: str = "real"  # "real": Pillow on the CPU; "emulated": jpeg_emulation on the training device
    quality_range: tuple[int, int] = (5, 95)
    gray_fraction: float = 0.15
    rate_weight: float = 3.5  # dB of PSNR one doubling of the bits is worth (plain JPEG's slope on photos)
    view_weight: float = 0.0  # joint: share of the loss given to the payload as a stock decoder shows it
    loss: str = "mse"  # "mse" or "logmse" (per-patch log10 MSE: every quality weighs the same in dB)
    #: logmse: the MSE (of [0, 1] samples) below which a patch stops counting; 1e-5 is 50 dB, enough
    #: for 8-bit JPEG; 12-bit payloads reach 80 dB and need about 1e-9.
    log_floor: float = 1e-5
    ssim_weight: float = 0.0  # share of the distortion given to per-patch log10(1 - SSIM) (the bench's SSIM)
    clip_grad: float = 1.0
    tables: dict = field(default_factory=dict)  # quantisation-table tuning (jpeg.tables_for_quality); {}: libjpeg's
    init: str = ""  # a checkpoint or safetensors file whose weights start the run
    restore_config: dict = field(default_factory=dict)
    pre_config: dict = field(default_factory=dict)
    #: Payload precision: 8, or 12 (restore recipe: 12-bit JPEG of the planes of a folder of
    #: 12/16-bit or float TIFFs, each mapped from its min/max; validation holds out whole files).
    bits: int = 8
    #: restore recipe: JPEG variants of the robustness grid (:mod:`jpeg_grid`) to train on, one
    #: drawn per patch; [] for Pillow at 4:2:0, or 4:4:4 for a fifth of the patches.
    variants: list = field(default_factory=list)
    #: 8-bit real JPEG coded by mozjpeg with trellis quantisation (jpeg.encode_trellis), as the
    #: model's files will be; the model's zoo entry records it.
    trellis: bool = False
    #: bits 12: share of patches coded as plain 12-bit JPEG at their quality as the JPEG quality (4096
    #: levels, no frequency weighting, no DC alignment), as other writers make the files ``restore`` gets.
    plain12_fraction: float = 0.0
    #: bits 12: a folder of 8-bit photos made into 12-bit grey planes (:func:`photo_planes12`), dense
    #: textures such as electron micrographs have, drawn for ``photo_fraction`` of the patches.
    photo_data: str = ""
    photo_fraction: float = 0.0
    photo_rgb: float = 0.0  # share of those photos kept in colour (12-bit RGB)
    #: bits 12: share of patches drawn from synthetic planes (:func:`synthetic_planes12`: ramps,
    #: smooth surfaces, flat shapes, few-valued steps, with little or no noise), which test writers
    #: and some instruments make and which microscopy data rarely shows a network. ``photo_fraction``
    #: is then a share of the other patches.
    synthetic_fraction: float = 0.0
    #: joint recipe: train the decoder alone on the payloads of a fixed encoder (from ``init``);
    #: the payload, its bytes and its stock view stay as they are, so only the restoration's loss counts.
    freeze_encoder: bool = False

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            raw = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ValueError(f"cannot read training config {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"training config {path} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"training config {path} must be a JSON object of settings, got {type(raw).__name__}")
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        defaults = cls()
        if wrong := [f"{k}: {v!r}" for k, v in raw.items() if not _same_kind(v, getattr(defaults, k))]:
            raise ValueError(f"training settings of the wrong type in {path}: {', '.join(wrong)} "
                             "(see the defaults in napari_cnnjpeg.training.TrainConfig)")
        if "quality_range" in raw:
            raw["quality_range"] = tuple(raw["quality_range"])
        raw["tables"] = check_tables(raw.get("tables")) or {}
        return cls(**raw)

    def check(self) -> None:
        """Refuse counts below 1 and a quality range outside 1-100 (a ValueError naming them)."""
        if small := [f"{k} {getattr(self, k)}" for k in POSITIVE_SETTINGS if getattr(self, k) < 1]:
            raise ValueError(f"training settings must be at least 1: {', '.join(small)}")
        qr = tuple(self.quality_range)
        if not (len(qr) == 2 and all(type(q) is int for q in qr) and 1 <= qr[0] <= qr[1] <= 100):
            raise ValueError(f"quality_range must be two qualities from 1 to 100, the lower first, got {list(qr)}")


#: Settings that count something and must be at least 1.
POSITIVE_SETTINGS = ("steps", "patch", "batch", "val_images", "val_every", "checkpoint_every", "threads")


def _same_kind(value, default) -> bool:
    """Whether a JSON value suits a setting with ``default`` (a number for a float; an array for a tuple)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, list if isinstance(default, tuple) else type(default))


def load_images(folder: str | Path, bits: int = 8) -> list[tuple[str, np.ndarray]]:
    """Every lossless image in a folder as uint8 RGB, by file stem, sorted by name.

    ``bits=12``: the planes of its TIFFs (up to :data:`PLANES_PER_FILE` of a stack, named
    ``stem[index]``), each mapped from its min/max onto 12-bit values in uint16.
    """
    if bits == 12:
        from .eval.bench_scientific import _to12, load_planes

        return [(name, _to12(plane)[0]) for name, plane in load_planes(folder, PLANES_PER_FILE)]
    from .eval.bench import load_images as load
    from .eval.bench import prepare

    return [(name, prepare(image, gray=False)) for name, image in load(folder)]


def photo_planes12(images: list[tuple[str, np.ndarray]], seed: int = 0,
                   rgb_share: float = 0.0) -> list[tuple[str, np.ndarray]]:
    """8-bit photos as 12-bit planes with detail finer than 8-bit steps: halved by 2x2 means
    (quarter-step values), with Gaussian noise of up to 16 12-bit levels (as a camera adds),
    mapped from min/max onto 0-4095 as the codec maps a plane. ``rgb_share`` of them stay in
    colour (as a colour camera's 16-bit images); the others become their luma."""
    from skimage.transform import downscale_local_mean

    from .eval.bench_scientific import _to12

    rng = np.random.default_rng(seed)
    out = []
    for name, im in images:
        colour = im.ndim == 3 and rgb_share > 0 and rng.random() < rgb_share  # (rgb_share 0 draws nothing)
        im = im if colour or im.ndim == 2 else luma(im)
        small = downscale_local_mean(im.astype(np.float32), (2, 2, 1) if colour else (2, 2))
        plane = small * 16 + rng.normal(0, 1, small.shape).astype(np.float32) * rng.uniform(0, 16)
        out.append((f"photo:{name}", _to12(plane)[0]))
    return out


def synthetic_planes12(n: int, size: int = 256, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``n`` synthetic 12-bit planes (uint16, mapped from min/max onto 0-4095 as the codec maps a plane).

    Each is a ramp at a random angle, a quadratic surface, Gaussian blobs, sines, flat
    rectangles and disks or a smooth random field, alone or over a ramp; its values may be
    rounded to a few hundred or thousand levels first (as 8-bit or low-bit data scaled up is),
    and it gets no noise a third of the time, else Gaussian or Poisson-like noise of up to 2 %
    of its range.
    """
    from scipy.ndimage import gaussian_filter

    from .eval.bench_scientific import _to12

    rng = np.random.default_rng([seed, 12])
    y, x = (np.mgrid[0:size, 0:size] / size).astype(np.float64)
    kinds = ("ramp", "quadratic", "blobs", "sines", "shapes", "field")
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * x + np.sin(angle) * y
        if kind == "ramp":
            plane = ramp
        elif kind == "quadratic":
            a, b, c = rng.normal(0, 1, 3)
            plane = a * (x - 0.5) ** 2 + b * (y - 0.5) ** 2 + c * (x - 0.5) * (y - 0.5) + rng.normal(0, 0.3) * ramp
        elif kind == "blobs":
            plane = rng.uniform(0, 1) * ramp
            for cy, cx, r, h in rng.uniform((0, 0, 0.02, 0.2), (1, 1, 0.15, 1), (rng.integers(1, 12), 4)):
                plane = plane + h * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        elif kind == "sines":
            f = rng.uniform(1, 20, 2)
            plane = np.sin(2 * np.pi * f[0] * ramp) + rng.uniform(0, 1) * np.cos(2 * np.pi * f[1] * (x - y))
        elif kind == "shapes":
            plane = rng.uniform(0, 1) * ramp
            for cy, cx, r, h in rng.uniform((0, 0, 0.03, -1), (1, 1, 0.3, 1), (rng.integers(1, 10), 4)):
                inside = np.maximum(abs(y - cy), abs(x - cx)) < r if rng.random() < 0.5 else np.hypot(y - cy, x - cx) < r
                plane = plane + h * inside
        else:
            smooth = gaussian_filter(rng.normal(0, 1, (size, size)), rng.uniform(2, 24))
            plane = smooth / smooth.std() + rng.uniform(0, 4) * ramp
        plane = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-12)
        if rng.random() < 0.3:  # few levels, as low-bit data scaled up
            steps = int(rng.choice([64, 256, 1024, 4096]))
            plane = np.round(plane * steps) / steps
        noise = rng.choice(["none", "gauss", "poisson"], p=[1 / 3, 1 / 3, 1 / 3])
        if noise == "gauss":
            plane = plane + rng.normal(0, rng.uniform(0.0005, 0.02), plane.shape)
        elif noise == "poisson":
            peak = rng.uniform(50, 5000)
            plane = rng.poisson(plane * peak) / peak
        out.append((f"synthetic:{kind}{i}", _to12(plane)[0] if np.ptp(plane) > 0 else np.zeros(plane.shape, np.uint16)))
    return out


#: Synthetic planes (:func:`synthetic_planes12`) a run with ``synthetic_fraction`` draws from.
SYNTHETIC_PLANES = 96


def split_held_out(images: list[tuple[str, np.ndarray]], n: int) -> tuple[list, list]:
    """(training, held out): the last ``n`` files by name are held out, a stack's planes
    (``stem[index]``) together."""
    files = list(dict.fromkeys(name.split("[")[0] for name, _ in images))
    if n >= len(files):
        raise ValueError(f"{len(files)} image file(s) cannot spare {n} for validation (val_images): "
                         "the data needs more images than that")
    held = set(files[len(files) - n :])
    return [x for x in images if x[0].split("[")[0] not in held], [x for x in images if x[0].split("[")[0] in held]


#: Variant name of a patch coded as plain 12-bit JPEG (:attr:`TrainConfig.plain12_fraction`).
PLAIN12 = "plain-12bit"
#: Planes taken from one stack for 12-bit training (evenly spaced).
PLANES_PER_FILE = 8


def _jpeg_pair(
    img: np.ndarray, quality: int, subsampling: str, tables: dict | None = None, trellis: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded JPEG of an image and the conditioning features of its tables (8-bit steps).

    A uint16 image holds 12-bit samples (0-4095) and goes through 12-bit JPEG as the codec
    writes it, at the quality's JPEG quality and levels (:func:`codec.twelve_bit_setting`); its
    decode comes back as float32 in [0, 1]. ``subsampling`` may name a variant of the
    robustness grid (:data:`jpeg_grid.VARIANTS`) instead. ``trellis``: 8-bit JPEG by mozjpeg's
    trellis quantisation (:func:`jpeg.encode_trellis`).
    """
    from .format.jpeg_grid import VARIANTS, encode_variant
    from .nn.nets import table_features

    if subsampling not in SUBSAMPLING and subsampling in VARIANTS:
        data = encode_variant(img, subsampling, quality)
        return decode_jpeg(data), table_features(*quant_tables(data))

    if subsampling == PLAIN12:
        from .format.jpeg import decode_jpeg12, encode_jpeg12

        data = encode_jpeg12(img, quality, "4:2:0")
        luma_t, chroma_t = quant_tables(data)
        unit = (MAX12 + 1) / 256  # the tables' steps in 8-bit units
        return (decode_jpeg12(data).astype(np.float32) / MAX12,
                table_features(luma_t / unit, None if chroma_t is None else chroma_t / unit))
    if img.dtype == np.uint16:
        from .codec import (
            _to_levels,
            decode_levels12,
            encode_levels12,
            twelve_bit_setting,
            twelve_bit_weighting,
        )

        levels, weighting = twelve_bit_setting(quality)[1], twelve_bit_weighting(quality, rgb=img.ndim == 3)
        data = encode_levels12(_to_levels(img, 0, MAX12, levels, np.uint16), quality, subsampling, weighting)
        pixels, luma, chroma = decode_levels12(data, weighting, levels)
        unit = (levels + 1) / 256
        return (pixels.astype(np.float32) / levels,
                table_features(luma / unit, None if chroma is None else chroma / unit))
    data = encode_jpeg(img, quality, subsampling, tables, trellis)
    return decode_jpeg(data), table_features(*quant_tables(data))


def _aligned_low(image: np.ndarray, quality: int) -> float:
    """The low end the codec maps a whole 12-bit grey plane (0-4095) from at ``quality``
    (:func:`codec._dc_aligned_low`): at or below 0, so that its block means sit near the DC grid."""
    from .codec import _dc_aligned_low, twelve_bit_setting, twelve_bit_weighting

    jpeg_quality, levels = twelve_bit_setting(quality)
    return _dc_aligned_low(image, 0.0, float(MAX12), levels, jpeg_quality,
                           weighting=twelve_bit_weighting(quality, False))


def _remapped(crop: np.ndarray, low: float) -> np.ndarray:
    """A crop of a 12-bit plane with the plane's range widened down to ``low``, back in 0-4095."""
    return np.rint((crop - low) * (MAX12 / (MAX12 - low))).astype(np.uint16)


def _as_rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a


class PatchSampler:
    """Random crops with flips, a random quality and colour mode per patch."""

    def __init__(self, images: list[np.ndarray], cfg: TrainConfig, photos: list[np.ndarray] = (),
                 synthetic: list[np.ndarray] = ()):
        self.images = [im for im in images if min(im.shape[:2]) >= cfg.patch]
        self.photos = [im for im in photos if min(im.shape[:2]) >= cfg.patch]
        self.synthetic = [im for im in synthetic if min(im.shape[:2]) >= cfg.patch]
        if not self.images:
            raise ValueError(f"no training image is at least {cfg.patch} pixels a side")
        self.cfg = cfg
        self._lows: dict[tuple[int, int], float] = {}

    def _low(self, image: np.ndarray, quality: int) -> float:
        """The codec's low end for a whole plane at ``quality``, so that a crop is aligned as its plane is."""
        key = (id(image), quality)
        if key not in self._lows:
            self._lows[key] = _aligned_low(image, quality)
        return self._lows[key]

    def batch(self, step: int) -> dict[str, np.ndarray]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, step])
        clean, gray, quality, sub = [], [], [], []
        for _ in range(cfg.batch):
            if self.synthetic and rng.random() < cfg.synthetic_fraction:
                pool = self.synthetic
            elif self.photos and rng.random() < cfg.photo_fraction:
                pool = self.photos
            else:
                pool = self.images
            im = pool[rng.integers(len(pool))]
            y = rng.integers(im.shape[0] - cfg.patch + 1)
            x = rng.integers(im.shape[1] - cfg.patch + 1)
            crop = im[y : y + cfg.patch, x : x + cfg.patch]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            if rng.random() < 0.5:
                crop = crop.swapaxes(0, 1)
            variant = cfg.variants[rng.integers(len(cfg.variants))] if cfg.variants else None
            g = crop.ndim == 2 or variant == "grey" or rng.random() < cfg.gray_fraction
            q = int(rng.integers(cfg.quality_range[0], cfg.quality_range[1] + 1))
            if crop.dtype == np.uint16 and cfg.plain12_fraction and rng.random() < cfg.plain12_fraction:
                variant = PLAIN12
            elif crop.dtype == np.uint16 and crop.ndim == 2:
                crop = _remapped(crop, self._low(im, q))
            clean.append(_as_rgb(crop if crop.ndim == 2 else luma(crop)) if g else np.ascontiguousarray(crop))
            gray.append(g)
            quality.append(q)
            sub.append(variant or ("4:4:4" if (cfg.recipe != "joint" and rng.random() < 0.2) else "4:2:0"))
        return {"clean": np.stack(clean), "gray": np.array(gray), "quality": np.array(quality), "sub": sub}


def _net(cls, config: dict, setting: str):
    """A network built from a config's ``setting``; keys it does not take are a ValueError naming them."""
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"{setting} {config} does not suit {cls.__name__}: {exc}") from None


def _read(path, load) -> dict:
    """``load(path)`` (a checkpoint or safetensors reader); a file it cannot read is a ValueError naming it."""
    try:
        return load(path)
    except FileNotFoundError:
        raise ValueError(f"no such checkpoint or weights file: {path}") from None
    except Exception as exc:  # noqa: BLE001 - torch and safetensors raise many kinds for a file they cannot read
        why = ("it holds objects other than tensors and numbers, which are not loaded (they could run code)"
               if "Unsupported global" in str(exc) else f"it is no readable checkpoint or weights ({type(exc).__name__})")
        raise ValueError(f"cannot load {path}: {why}") from None


def _torch_checkpoint(path) -> dict:
    """A checkpoint's tensors and numbers; ``weights_only``: no code in it is unpickled."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


@contextmanager
def _fitting(path, action: str, hint: str = ""):
    """Turn weights that do not fit the run's networks into a ValueError naming their file (no traceback)."""
    try:
        yield
    except KeyError as exc:
        raise ValueError(f"cannot {action} {path}: it holds no {exc.args[0]!r}{hint}") from None
    except (RuntimeError, TypeError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        detail = " ".join(lines[:2])
        raise ValueError(f"cannot {action} {path}: {detail[:200]}{'...' if len(detail) > 200 else ''}{hint}") from None


def _to_tensor(a: np.ndarray, device="cpu"):
    import torch

    levels = {np.dtype(np.uint8): 255, np.dtype(np.uint16): MAX12}.get(a.dtype, 1)  # float: already [0, 1]
    return torch.from_numpy(np.ascontiguousarray(a)).to(device).permute(0, 3, 1, 2).float() / levels


def _jpeg_batch(
    clean: np.ndarray, gray, quality, sub, factor: int = 1, pool=None, tables: dict | None = None,
    trellis: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Each image through real JPEG (at 1/``factor`` resolution, enlarged back), and its table features.

    ``pool`` (an executor) runs the round trips in parallel; Pillow releases the GIL.
    """
    from .nn.resample import downscale, upscale

    def one(img, g, q, s):
        plane = img[..., 0] if g else img
        d, c = _jpeg_pair(downscale(plane, factor), int(q), s, tables, trellis)
        return _as_rgb(upscale(d, plane.shape[:2])), c

    done = list((pool.map if pool else map)(one, clean, gray, quality, sub))
    return np.stack([d for d, _ in done]), np.stack([c for _, c in done])


class Trainer:
    """One training run: model(s), optimiser, schedule, checkpoints, validation log."""

    def __init__(
        self, cfg: TrainConfig, images: list[tuple[str, np.ndarray]] | None = None, *, device: str | None = None
    ):
        """``device`` overrides ``cfg.device`` (to load a CUDA run's checkpoint on a CPU, say)."""
        import torch

        from .nn.nets import PreNet, RestoreNet

        cfg.check()
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        device = device or cfg.device
        if device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"unknown device {device!r}; use cpu, cuda or auto")
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
        self.device = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
        if cfg.bits not in (8, 12) or (cfg.bits == 12 and (cfg.recipe == "compact" or cfg.jpeg != "real"
                                                          or cfg.photo_rgb or cfg.tables)):
            raise ValueError(f"bits {cfg.bits!r}: use 8, or 12 with the restore or joint recipe, real JPEG, grey "
                             "planes and libjpeg's tables")
        if cfg.trellis and (cfg.bits != 8 or cfg.jpeg != "real" or cfg.variants):
            raise ValueError("trellis needs 8-bit real JPEG and no variants (mozjpeg codes the payloads)")
        if cfg.variants:
            from .format.jpeg_grid import available_variants

            unknown = set(cfg.variants) - set(available_variants())
            if unknown or cfg.recipe != "restore" or cfg.bits != 8 or cfg.jpeg != "real":
                raise ValueError(f"variants {sorted(unknown) or cfg.variants} need the restore recipe on 8-bit real "
                                 f"JPEG and known variants ({', '.join(available_variants())})")
        images = images if images is not None else load_images(cfg.data, cfg.bits)
        kept, held = split_held_out(images, cfg.val_images)
        images, split = kept + held, len(kept)
        train = images[: min(split, cfg.train_images)] if cfg.train_images > 0 else images[:split]
        self.train_names = [n for n, _ in train]
        self.val_names = [n for n, _ in images[split:]]
        if cfg.photo_fraction and (cfg.bits != 12 or not cfg.photo_data):
            raise ValueError("photo_fraction needs bits 12 and a photo_data folder")
        photos = photo_planes12(load_images(cfg.photo_data), cfg.seed, cfg.photo_rgb) if cfg.photo_fraction else []
        if cfg.synthetic_fraction and cfg.bits != 12:
            raise ValueError("synthetic_fraction needs bits 12 (the planes are 12-bit)")
        synthetic = synthetic_planes12(SYNTHETIC_PLANES, seed=cfg.seed) if cfg.synthetic_fraction else []
        self.sampler = PatchSampler([im for _, im in train], cfg, [im for _, im in photos], [im for _, im in synthetic])
        self.val_crops = [_center_crop(im, 256) for _, im in images[split:]]
        self.nets = {"decoder": _net(RestoreNet, cfg.restore_config, "restore_config")}
        if cfg.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {cfg.recipe!r}; use one of {', '.join(RECIPES)}")
        if cfg.jpeg not in JPEG_PATHS or (cfg.jpeg == "emulated" and cfg.recipe == "compact"):
            raise ValueError(f"jpeg {cfg.jpeg!r} does not suit recipe {cfg.recipe!r}; use one of "
                             f"{', '.join(JPEG_PATHS)} ('emulated' for restore and joint only: compact "
                             "resamples on the CPU)")
        if cfg.recipe == "joint":
            self.nets["encoder"] = _net(PreNet, cfg.pre_config, "pre_config")
        elif cfg.freeze_encoder:
            raise ValueError("freeze_encoder needs the joint recipe (the others have no encoder)")
        for net in self.nets.values():
            net.to(self.device)
        self.downscale = COMPACT_DOWNSCALE if cfg.recipe == "compact" else 1
        if cfg.freeze_encoder:
            self.nets["encoder"].requires_grad_(False)
        params = [p for n in self.nets.values() for p in n.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=cfg.lr)
        self.pool = ThreadPoolExecutor(cfg.threads) if cfg.threads > 1 else None  # threads start on first use
        self.step = 0
        self.elapsed = 0.0
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if (self.out / "checkpoint.pt").exists():
            self._resume()
        elif cfg.init:
            self._init_from(cfg.init)

    # -- persistence ---------------------------------------------------------
    def _state(self) -> dict:
        return {name: {k: v.cpu() for k, v in net.state_dict().items()} for name, net in self.nets.items()}

    def save_checkpoint(self) -> None:
        import torch

        tmp = self.out / "checkpoint.pt.tmp"
        torch.save(
            {"nets": self._state(), "opt": self.opt.state_dict(), "step": self.step, "elapsed": self.elapsed},
            tmp,
        )
        tmp.replace(self.out / "checkpoint.pt")
        (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(self.cfg), indent=2))

    def _resume(self) -> None:
        """Continue the run of ``out``'s checkpoint."""
        path = self.out / "checkpoint.pt"
        ck = _read(path, _torch_checkpoint)
        with _fitting(path, "resume from", "; if it is another run's, give this run another out folder"):
            for name, net in self.nets.items():
                net.load_state_dict(ck["nets"][name])
            self.opt.load_state_dict(ck["opt"])
            self.step, self.elapsed = int(ck["step"]), float(ck["elapsed"])

    def _init_from(self, path: str) -> None:
        """Start from another run's weights: its checkpoint (.pt) or exported safetensors."""
        from safetensors.torch import load_file

        checkpoint = str(path).endswith(".pt")
        state = _read(path, _torch_checkpoint if checkpoint else load_file)
        with _fitting(path, "start (init) from"):
            nets = state["nets"] if checkpoint else {
                n: {k[len(n) + 1 :]: v for k, v in state.items() if k.startswith(n + ".")} for n in self.nets}
            for name, net in self.nets.items():
                if nets.get(name):
                    net.load_state_dict(grow_state(nets[name], net))

    def export(self, path: str | Path, half: bool = False) -> None:
        """Write the trained weights as one safetensors file ("decoder.*", "encoder.*"), atomically.

        ``half`` stores them as float16 (half the bytes; loading casts them back to float32).
        """
        import torch
        from safetensors.torch import save

        dtype = torch.float16 if half else torch.float32
        flat = {f"{name}.{k}": (v.to(dtype) if v.is_floating_point() else v).contiguous()
                for name, sd in self._state().items() for k, v in sd.items()}
        write_atomic(path, save(flat))

    # -- training ------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / 200)
        cos = 0.5 * (1 + math.cos(math.pi * min(step, self.cfg.steps) / self.cfg.steps))
        return self.cfg.lr * warm * (0.02 + 0.98 * cos)

    def train_step(self) -> float:
        import torch

        from .nn.nets import rgb_to_ycc, ycc_to_rgb

        dev, cfg = self.device, self.cfg
        b = self.sampler.batch(self.step)
        clean = _to_tensor(b["clean"], dev)
        if cfg.recipe == "joint":
            enc, dec = self.nets["encoder"], self.nets["decoder"]
            twelve = cfg.bits == 12
            conds = np.stack([_quality_features12(int(q)) if twelve else _quality_features(int(q), g, cfg.tables)
                              for q, g in zip(b["quality"], b["gray"])])
            conds = torch.from_numpy(conds).to(dev)
            with torch.set_grad_enabled(not cfg.freeze_encoder):
                pre_ycc = enc(rgb_to_ycc(clean), conds)
            gray = torch.from_numpy(b["gray"]).to(dev)[:, None, None, None]
            pre_ycc = torch.where(gray & (torch.arange(3, device=dev) > 0).view(1, 3, 1, 1), 0.5, pre_ycc)
            pre = ycc_to_rgb(pre_ycc).clamp(0, 1)
            if twelve:  # plain 12-bit JPEG of other writers has no encoder in front of it
                coded = torch.tensor([s != PLAIN12 for s in b["sub"]], device=dev)[:, None, None, None]
                pre = torch.where(coded, pre, clean)
            if cfg.jpeg == "emulated":
                real = emulated_batch(pre.detach(), b["gray"], b["quality"], b["sub"], cfg.tables)
            else:
                top, dtype = (MAX12, np.uint16) if twelve else (255, np.uint8)
                samples = (pre.detach() * top).round().permute(0, 2, 3, 1).cpu().numpy().astype(dtype)
                decoded, stream_conds = _jpeg_batch(samples, b["gray"], b["quality"], b["sub"], pool=self.pool,
                                                    tables=cfg.tables, trellis=cfg.trellis)
                real = _to_tensor(decoded, dev)
                if twelve:  # plain 12-bit payloads have other tables than the codec's: the decoder reads the stream's
                    conds = torch.from_numpy(stream_conds).to(dev)
            if cfg.freeze_encoder:
                jpeg, rate = real, None
            else:
                from .nn.jpeg_proxy import straight_through

                proxy, rate = _proxy_batch12(pre, b["quality"]) if twelve else _proxy_batch(pre, b["quality"],
                                                                                             cfg.tables)
                jpeg = straight_through(real, proxy)
        else:
            dec = self.nets["decoder"]
            if cfg.jpeg == "emulated":
                jpeg = emulated_batch(clean, b["gray"], b["quality"], b["sub"], cfg.tables)
                c = np.stack([_quality_features(int(q), g, cfg.tables) for q, g in zip(b["quality"], b["gray"])])
            else:
                u8, c = _jpeg_batch(b["clean"], b["gray"], b["quality"], b["sub"], self.downscale, self.pool,
                                    cfg.tables, cfg.trellis)
                jpeg = _to_tensor(u8, dev)
            conds, rate = torch.from_numpy(c).to(dev), None
        out = ycc_to_rgb(dec(rgb_to_ycc(jpeg), conds))
        loss = self._distortion(out, clean)
        if rate is not None and cfg.view_weight:  # the payload in a viewer with no network must look right too
            loss = (1 - cfg.view_weight) * loss + cfg.view_weight * self._distortion(jpeg, clean)
        if rate is not None:  # log10 MSE is -PSNR/10: the encoder must beat rate_weight dB per doubling
            loss = loss + self.cfg.rate_weight / 10 * torch.log2(rate).mean()
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], self.cfg.clip_grad)
        self.opt.step()
        self.step += 1
        return loss.item()

    def _distortion(self, out, clean):
        import torch

        mse = (out - clean).square().mean(dim=(1, 2, 3))
        d = torch.log10(mse + self.cfg.log_floor).mean() if self.cfg.loss == "logmse" else mse.mean() * 1e3
        if self.cfg.ssim_weight:
            dssim = torch.log10(1 - ssim_torch(out, clean) + 1e-4).mean()
            d = (1 - self.cfg.ssim_weight) * d + self.cfg.ssim_weight * dssim
        return d

    def stages(self) -> ModelStages:
        """The run's networks as :class:`~napari_cnnjpeg.nn.models.ModelStages`, to encode and decode with."""
        from .nn.models import ModelStages

        return ModelStages(encoder=self.nets.get("encoder"), decoder=self.nets["decoder"], downscale=self.downscale,
                           tables=self.cfg.tables or None, trellis=self.cfg.trellis, bits=self.cfg.bits)

    def validate(self) -> dict:
        """PSNR gain (dB) and size ratio of the model over JPEG on held-out crops, per quality."""
        from .codec import decode, encode
        from .eval.metrics import psnr
        from .nn.models import ModelStages

        stages = self.stages()
        for net in self.nets.values():
            net.eval()
        result = {}
        for q in VAL_QUALITIES_12 if self.cfg.bits == 12 else ():  # through the codec, as files are
            gains, ratios = [], []
            for crop in self.val_crops:
                blob = encode(crop, quality=q, model=stages, mapping=(0, MAX12))
                # against the payload of no encoder, decoded with no network
                ref = encode(crop, quality=q, model=ModelStages(bits=12), mapping=(0, MAX12)) if stages.encoder else blob
                gains.append(psnr(crop, decode(blob, model=stages), MAX12) - psnr(crop, decode(ref, model="jpeg"), MAX12))
                ratios.append(len(blob) / len(ref))
            result[str(q)] = {"gain_db": round(float(np.mean(gains)), 3), "size_ratio": round(float(np.mean(ratios)), 3)}
        for q in VAL_QUALITIES if self.cfg.bits == 8 else ():
            gains, views, ratios = [], [], []
            for crop in self.val_crops:
                base, mine = encode(crop, quality=q, model="jpeg"), encode(crop, quality=q, model=stages)
                plain = psnr(crop, decode(base))
                gains.append(psnr(crop, decode(mine, model=stages)) - plain)
                views.append(psnr(crop, decode(mine, model=ModelStages())) - plain)  # as a stock viewer shows it
                ratios.append(len(mine) / len(base))
            result[str(q)] = {"gain_db": round(float(np.mean(gains)), 3), "view_db": round(float(np.mean(views)), 3),
                              "size_ratio": round(float(np.mean(ratios)), 3)}
        for net in self.nets.values():
            net.train()
        return result

    def run(self, progress: bool = True) -> None:
        from tqdm import tqdm

        if self.step >= self.cfg.steps:
            print(f"cnnjpeg: note: {self.out / 'checkpoint.pt'} is at step {self.step} of {self.cfg.steps}: "
                  "nothing left to train (raise steps to go on)", file=sys.stderr)
            return
        log = (self.out / "log.jsonl").open("a")
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not progress, desc=self.cfg.recipe)
        t0, losses = time.perf_counter(), []
        while self.step < self.cfg.steps:
            losses.append(self.train_step())
            bar.update(1)
            done = self.step == self.cfg.steps
            if self.step % self.cfg.checkpoint_every == 0 or done:
                self.elapsed += time.perf_counter() - t0
                t0 = time.perf_counter()
                self.save_checkpoint()
            if self.step % self.cfg.val_every == 0 or done:
                rec = {"step": self.step, "loss": float(np.mean(losses)), "elapsed_s": round(self.elapsed, 1),
                       "val": self.validate()}
                losses = []
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix_str(" ".join(f"q{k}:{v['gain_db']:+.2f}" for k, v in rec["val"].items()))
        bar.close()
        log.close()


def ssim_torch(x, y):
    """Per-image SSIM of (N, C, H, W) tensors in [0, 1], as :func:`napari_cnnjpeg.eval.metrics.ssim` computes it.

    Gaussian window (sigma 1.5, 11 taps), population covariances, the mean over channels
    and over the pixels whose window lies inside the image (scikit-image's settings).
    """
    import torch
    import torch.nn.functional as F

    from .eval.metrics import SSIM_SETTINGS

    sigma = SSIM_SETTINGS["sigma"]
    r = int(3.5 * sigma + 0.5)
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    g = g / g.sum()
    c = x.shape[1]
    wy, wx = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, wy, groups=c), wx, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def _center_crop(im: np.ndarray, size: int) -> np.ndarray:
    h, w = im.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(im[y : y + size, x : x + size])


def _quality_features(quality: int, gray: bool, tables: dict | None = None) -> np.ndarray:
    from .nn.nets import table_features

    luma, chroma = tables_for_quality(quality, tables)
    return table_features(luma, None if gray else chroma)


def _quality_features12(quality: int) -> np.ndarray:
    """The conditioning of a 12-bit grey payload at ``quality``, as its decoder gets it from the stream."""
    from .codec import twelve_bit_luma, twelve_bit_setting
    from .nn.nets import table_features

    return table_features(twelve_bit_luma(quality) / ((twelve_bit_setting(quality)[1] + 1) / 256), None)


def _proxy_batch12(pre, qualities):
    """The JPEG proxy of a batch of grey 12-bit payloads (RGB in [0, 1] of 4095), each at its own quality."""
    import torch

    from .codec import twelve_bit_luma, twelve_bit_setting
    from .nn.jpeg_proxy import grey_proxy

    tables = torch.from_numpy(np.stack([twelve_bit_luma(int(q)) for q in qualities])).float()
    levels = torch.tensor([twelve_bit_setting(int(q))[1] for q in qualities], dtype=torch.float32)
    out, rate = grey_proxy(pre[:, 0], tables, levels, (MAX12 + 1) / 2)
    return out[:, None].expand(-1, 3, -1, -1), rate


def emulated_batch(x, gray, qualities, subsampling, tables: dict | None = None):
    """Each image of a batch (RGB in [0, 1], on any device) through the torch JPEG emulation.

    The same JPEG as :func:`_jpeg_batch` makes with Pillow (bit for bit), without
    leaving the device: gray images are coded as one component, each image at its own
    quality and subsampling.
    """
    import torch

    from .nn.jpeg_emulation import jpeg_roundtrip

    luma_t, chroma_t = (torch.from_numpy(np.stack(t)).to(x.device)
                        for t in zip(*(tables_for_quality(int(q), tables) for q in qualities)))
    out = torch.empty_like(x)
    groups: dict[tuple[bool, str], list[int]] = {}
    for i, key in enumerate(zip(np.asarray(gray, bool).tolist(), subsampling)):
        groups.setdefault(key, []).append(i)
    for (g, sub), idx in groups.items():
        idx_t = torch.tensor(idx, device=x.device)
        if g:
            out[idx_t] = jpeg_roundtrip(x[idx_t, :1], luma_t[idx_t]).expand(-1, 3, -1, -1)
        else:
            out[idx_t] = jpeg_roundtrip(x[idx_t], luma_t[idx_t], chroma_t[idx_t], sub)
    return out


def _proxy_batch(pre, qualities, tables: dict | None = None):
    """The JPEG proxy of a batch, each image at its own quality."""
    import torch

    from .nn.jpeg_proxy import jpeg_proxy

    luma, chroma = zip(*(tables_for_quality(int(q), tables) for q in qualities))
    return jpeg_proxy(pre, torch.from_numpy(np.stack(luma)), torch.from_numpy(np.stack(chroma)))


def register(
    trainer: Trainer, model_id: str, description: str, weights_dir: str | Path, *, default: bool = False,
    supersedes: str | None = None, half: bool = True, stock_viewer: str | None = None,
) -> dict:
    """Export a run's weights into the package and add (or replace) its zoo entry.

    The entry records the architecture, the SHA-256 of the weights and a model card
    (parameters, data, steps, wall time, seed) and the payload precision it works on
    (``bits``; ``default`` is per precision); Kodak figures are added by
    ``cnnjpeg bench --update-cards``. The model named by ``supersedes`` stays in the
    zoo, so files made with it still decode, but is no longer offered. Weights are
    stored as float16 unless ``half`` is False (half the bytes).
    ``stock_viewer`` says what an ordinary viewer shows of the model's files, where that is
    not simply the image (:attr:`~napari_cnnjpeg.nn.models.ModelInfo.stock_viewer`).
    """
    from .nn.models import sha256_of

    weights_dir = Path(weights_dir)
    zoo_path = weights_dir / "zoo.json"
    zoo = json.loads(zoo_path.read_text()) if zoo_path.exists() else []
    previous = next((e for e in zoo if e["id"] == model_id), {})
    if previous.get("retired"):
        raise ValueError(f"model {model_id!r} is retired (its weights left the package); register a new id")
    path = weights_dir / f"{model_id}.safetensors"
    trainer.export(path, half=half)
    cfg = trainer.cfg
    n_params = sum(p.numel() for net in trainer.nets.values() for p in net.parameters())
    entry = {
        "id": model_id,
        "description": description,
        "kind": cfg.recipe,  # each recipe makes one kind of model
        "weights": path.name,
        "sha256": sha256_of(path.read_bytes()),
        "decoder": {"arch": "RestoreNet", "config": cfg.restore_config},
        "encoder": {"arch": "PreNet", "config": cfg.pre_config} if "encoder" in trainer.nets else None,
        "downscale": trainer.downscale,
        "tables": cfg.tables or None,
        "trellis": cfg.trellis,
        "default": default,
        "bits": cfg.bits,
        "card": {
            "architecture": {k: type(v).__name__ for k, v in trainer.nets.items()},
            "parameters": int(n_params),
            "weights_bytes": path.stat().st_size,
            "weights_dtype": "float16" if half else "float32",
            "training_data": f"{cfg.data} ({len(trainer.train_names)} images; held out for validation: "
            f"{', '.join(trainer.val_names)})",
            "config": dataclasses.asdict(cfg),
            "steps": trainer.step,
            "wall_time_s": round(trainer.elapsed, 1),
            "seed": cfg.seed,
        },
    }
    if cfg.init.endswith(".pt") and Path(cfg.init).exists():  # record the run it continued from
        import torch

        ck = torch.load(cfg.init, map_location="cpu", weights_only=True)
        entry["card"]["initialised_from"] = {
            "checkpoint": cfg.init, "steps": int(ck["step"]), "wall_time_s": round(float(ck["elapsed"]), 1),
        }
    if stock_viewer:
        entry["stock_viewer"] = stock_viewer
    if previous.get("superseded_by"):
        entry["superseded_by"] = previous["superseded_by"]
    zoo = [e for e in zoo if e["id"] != model_id]
    for e in zoo:
        if e["id"] == supersedes:
            e["superseded_by"] = model_id
            e["default"] = False
    if default:  # one default per payload precision
        for e in zoo:
            if e.get("bits", 8) == cfg.bits:
                e["default"] = False
    zoo.append(entry)
    write_atomic(zoo_path, (json.dumps(zoo, indent=2) + "\n").encode())
    return entry


def grow_state(old: dict, net) -> dict:
    """Fit a state dict from a net with fewer residual blocks to ``net``, preserving its function.

    The new blocks start as the identity (their second convolution is zero; the first keeps
    its random weights, so gradients reach both), and the FiLM rows of the old blocks and of
    the fine block move to where the deeper net reads them. Equal shapes load unchanged.
    """
    import torch

    new = net.state_dict()
    old_blocks = len({k.split(".")[1] for k in old if k.startswith("body.")})
    if old_blocks == net.blocks:
        return old
    if old_blocks > net.blocks:
        raise ValueError(f"cannot shrink a net of {old_blocks} blocks to {net.blocks}")
    out = {k: v for k, v in old.items() if k in new and v.shape == new[k].shape}
    for i in range(old_blocks, net.blocks):
        out[f"body.{i}.c1.weight"], out[f"body.{i}.c1.bias"] = new[f"body.{i}.c1.weight"], new[f"body.{i}.c1.bias"]
        out[f"body.{i}.c2.weight"] = torch.zeros_like(new[f"body.{i}.c2.weight"])
        out[f"body.{i}.c2.bias"] = torch.zeros_like(new[f"body.{i}.c2.bias"])
    ch1, ch2 = net.ch1, net.ch2
    half_old, half_new = ch2 * old_blocks + ch1, ch2 * net.blocks + ch1
    for part in ("weight", "bias"):
        src, dst = old[f"cond.2.{part}"], torch.zeros_like(new[f"cond.2.{part}"])
        for o, n in ((0, 0), (half_old, half_new)):  # gammas, then betas
            dst[n : n + ch2 * old_blocks] = src[o : o + ch2 * old_blocks]
            dst[n + ch2 * net.blocks : n + half_new] = src[o + ch2 * old_blocks : o + half_old]
        out[f"cond.2.{part}"] = dst
    missing = set(new) - set(out)
    if missing:
        raise ValueError(f"weights do not fit the net: {sorted(missing)[:4]}")
    return out

