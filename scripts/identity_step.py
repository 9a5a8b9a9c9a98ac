"""Measure where a model's networks stop helping, on held-out training data (never Kodak).

Usage: python scripts/identity_step.py MODEL_ID [--data FOLDER] [--val-images 4] [--write]

Codes centre crops of the held-out images (the last ``--val-images`` files of the
model's training folder by name; for a 12-bit model, the planes of those TIFFs) at
qualities 60-100, with every variant of the robustness grid (8-bit) or 12-bit JPEG, and
restores them. Each stream's mean luma quantisation step (in 8-bit units) and the mean
PSNR change over the crops are recorded per cell. An 8-bit model is measured on a second
set too: centre crops of the colour photographs scikit-image ships (astronaut, chelsea,
coffee, rocket, immunohistochemistry), which no model trained on. The identity step of a
chroma layout (4:2:0, 4:4:4, grey...) is the largest step of its cells whose mean change
over both sets is below zero (0 where none is): streams of that layout with tables that
fine or finer are returned unchanged (``ModelInfo.identity_step``), so restoring never
makes them worse. ``--write`` records it in ``weights/zoo.json``.

An 8-bit model with an encoder network (a joint model) is measured on its own payloads instead:
each crop is coded at each chroma layout and quality with both networks and with neither (the
same tables and trellis quantisation; the files' sizes differ by about 1 %), and the change is the
PSNR of the first minus that of the second. At or below its identity step a layout's payloads
are coded and decoded without the networks.
"""

import argparse
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from napari_cnnjpeg.codec import (
    _to_levels,
    decode,
    decode_levels12,
    encode,
    encode_levels12,
    twelve_bit_setting,
    twelve_bit_weighting,
)
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.container import write_atomic
from napari_cnnjpeg.format.jpeg import (
    MAX12,
    chroma_layout,
    decode_jpeg,
    luma,
    quant_tables,
    tables_for_quality,
)
from napari_cnnjpeg.format.jpeg_grid import available_variants, encode_variant
from napari_cnnjpeg.nn.models import load_stages, model_info
from napari_cnnjpeg.training import _center_crop, load_images, split_held_out

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "src" / "napari_cnnjpeg" / "weights" / "zoo.json"
QUALITIES = (60, 70, 80, 85, 90, 92, 94, 95, 96, 97, 98, 99, 100)


def held_out(model: str, data: str | None, n: int) -> list[np.ndarray]:
    """Centre crops (384) of the last ``n`` files of the model's training folder."""
    info = model_info(model)
    folder = data or info.card.get("config", {}).get("data", "../shared/data/train")
    return [_center_crop(im, 384) for _, im in split_held_out(load_images(folder, info.bits), n)[1]]


def skimage_photos() -> list[np.ndarray]:
    """Centre crops (384) of scikit-image's colour photographs: a second held-out set."""
    from skimage import data

    return [_center_crop(f(), 384) for f in (data.astronaut, data.chelsea, data.coffee, data.rocket,
                                            data.immunohistochemistry)]


def cells(model: str, crops: list[np.ndarray]) -> list[dict]:
    """Per (variant, quality): the mean luma step (8-bit units) and the mean PSNR change of restoring."""
    stages = dataclasses.replace(load_stages(model), identity_step=None)  # the network itself, on every stream
    twelve = model_info(model).bits == 12
    variants = ["12-bit"] if twelve else available_variants()
    out = []
    for v in variants:
        for q in QUALITIES:
            steps, deltas = [], []
            for crop in crops:
                ref = luma(crop) if v == "grey" else crop
                levels = twelve_bit_setting(q)[1] if twelve else 255
                if twelve:  # as the codec writes 12-bit payloads (frequency weighted where it does)
                    weighting = twelve_bit_weighting(q, rgb=False)
                    data = encode_levels12(_to_levels(ref, 0, MAX12, levels, np.uint16), q, weighting=weighting)
                    plain, luma_t, chroma_t = decode_levels12(data, weighting, levels)
                else:
                    data = encode_variant(ref, v, q)
                    plain = decode_jpeg(data)
                    luma_t, chroma_t = quant_tables(data)
                layout = chroma_layout(data)
                restored = stages.post(plain, luma_t, chroma_t, levels=levels, layout=layout)
                scale = (MAX12 / levels) if twelve else 1.0
                peak = MAX12 if twelve else 255
                ref64 = ref.astype(np.float64)  # outputs rounded as the codec rounds them
                deltas.append(psnr(ref64, np.rint(restored * scale), peak) - psnr(ref64, np.rint(plain * scale), peak))
                steps.append(float(luma_t.mean()) / ((levels + 1) / 256))
            out.append({"variant": v, "layout": layout, "quality": q, "step": float(np.mean(steps)),
                        "delta_db": float(np.mean(deltas))})
            print(f"{v:12s} q{q:3d} step {out[-1]['step']:7.3f} {out[-1]['delta_db']:+.3f} dB", flush=True)
    return out


def joint_cells(model: str, crops: list[np.ndarray]) -> list[dict]:
    """Per (layout, quality) of a joint model: the payload's mean luma step (8-bit units) and the mean PSNR
    change of coding with both networks over coding with neither."""
    full = dataclasses.replace(load_stages(model), identity_step=None)  # the networks themselves, everywhere
    bare = dataclasses.replace(full, encoder=None, decoder=None, frozen=False, _runners={})
    out = []
    for layout in ("4:2:0", "4:2:2", "4:4:4", "grey"):
        for q in QUALITIES:
            deltas, ratios = [], []
            for crop in crops:
                ref = luma(crop) if layout == "grey" else crop
                coded = [encode(ref, quality=q, model=s, subsampling=None if layout == "grey" else layout)
                         for s in (full, bare)]
                got = [psnr(ref, decode(c, model=s), 255) for c, s in zip(coded, (full, bare))]
                deltas.append(got[0] - got[1])
                ratios.append(len(coded[0]) / len(coded[1]))
            step = float(tables_for_quality(q, full.tables)[0].mean())
            out.append({"layout": layout, "quality": q, "step": step, "delta_db": float(np.mean(deltas)),
                        "size_ratio": float(np.mean(ratios))})
            print(f"{layout:6s} q{q:3d} step {step:7.3f} {out[-1]['delta_db']:+.3f} dB "
                  f"size x{out[-1]['size_ratio']:.3f}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--data", default=None, help="training folder (default: the model card's)")
    p.add_argument("--val-images", type=int, default=4)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    os.chdir(ROOT)
    crops = held_out(args.model, args.data, args.val_images)
    if model_info(args.model).bits == 8:
        crops += skimage_photos()
    joint = model_info(args.model).bits == 8 and load_stages(args.model).encoder is not None
    table = (joint_cells if joint else cells)(args.model, crops)
    step = {layout: max([c["step"] for c in table if c["layout"] == layout and c["delta_db"] < 0], default=0.0)
            for layout in dict.fromkeys(c["layout"] for c in table)}
    print(f"{args.model}: identity steps {step}")
    if args.write:
        zoo = json.loads(ZOO.read_text())
        for e in zoo:
            if e["id"] == args.model:
                e["identity_step"] = {k: round(v, 4) for k, v in step.items()}
        write_atomic(ZOO, (json.dumps(zoo, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
