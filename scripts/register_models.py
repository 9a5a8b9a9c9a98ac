"""Export finished training runs into the package's model zoo.

Usage: python scripts/register_models.py [--default MODEL_ID] [MODEL_ID ...]

Each run is loaded from its checkpoint (configs/*.json name the run folders), its
weights are written to src/napari_cnnjpeg/weights/<id>.safetensors and its entry
(architecture, SHA-256, model card) to weights/zoo.json. A model that supersedes an
older one leaves the older one installed (files made with it still decode) but no
longer offered. Afterwards run ``python scripts/quality_range.py <ids> --write`` (each
model's monotone quality range) and
``cnnjpeg bench --data ../shared/data/kodak --out docs --name benchmarks --update-cards``.
"""

import argparse
import os
from pathlib import Path

from napari_cnnjpeg.training import TrainConfig, Trainer, register

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "src" / "napari_cnnjpeg" / "weights"
RESTORE = "decoder-only JPEG artefact removal, conditioned on the quantisation tables"
JOINT = "pre-processing encoder + JPEG + restoring decoder, trained jointly"
COMPACT = "compact: JPEG at half resolution (Lanczos), decoder upsamples and restores; for low bit rates"
TUNED = " (JPEG with quantisation tables tuned for PSNR)"
VIEW = ("pre-processing encoder + JPEG + restoring decoder, trained jointly with the payload kept right for "
        "ordinary image viewers")
WASHED = ("a distorted, washed-out image: the encoder network reshapes it for its own decoder "
          "(open it with napari-cnnjpeg)")
HALF = "the image at half size (the payload is stored at 1/2 resolution)"
MICRO = ("decoder-only artefact removal for 12-bit JPEG of microscopy and other data of more than 8 bits, "
         "conditioned on the quantisation tables")
TWELVE = ("nothing in Pillow or web browsers (12-bit JPEG); libjpeg-turbo 3 and imagecodecs show the plain "
          "12-bit JPEG")
TWELVE_WEIGHTED = ("nothing in Pillow or web browsers (12-bit JPEG); libjpeg-turbo 3 and imagecodecs show the "
                   "plain 12-bit JPEG up to quality 60, and above it the plane frequency weighted (flattened: "
                   "only napari-cnnjpeg undoes the weighting)")
#: What a stock viewer shows of each kind of file, where it is not simply the image.
STOCK_VIEWER = {"joint-s": WASHED, "joint-s-v2": WASHED, "joint-s-v3": WASHED, "compact-s": HALF,
                "compact-s-v2": HALF, "micro-s": TWELVE, "micro-s-v2": TWELVE,
                "micro-s-v3": TWELVE_WEIGHTED, "micro-s-v4": TWELVE_WEIGHTED,
                "micro-s-v6": TWELVE_WEIGHTED}
#: model id: (training config, description, id of the model it supersedes, float16 weights).
#: The models of 2026-11-25/26 were exported as float32 and stay so, to keep their hashes.
RUNS = {
    "restore-s": ("configs/restore-2.json", RESTORE, None, False),
    "joint-s": ("configs/joint.json", JOINT, None, False),
    "restore-s-v2": ("configs/restore-3.json", RESTORE, "restore-s", False),
    "joint-s-v2": ("configs/joint-2.json", JOINT, "joint-s", False),
    "compact-s": ("configs/compact.json", COMPACT, None, False),
    "compact-s-v2": ("configs/compact-t.json", COMPACT + TUNED, "compact-s", True),
    "joint-s-v3": ("configs/joint-t.json", JOINT + TUNED, "joint-s-v2", True),
    "joint-s-v4": ("configs/joint-v.json", VIEW + TUNED, "joint-s-v3", True),
    "joint-s-v5": ("configs/joint-w4.json", VIEW + TUNED + ", fine-tuned with SSIM in the loss", "joint-s-v4", True),
    "restore-s-v3": ("configs/restore-grid.json", RESTORE + "; trained on the robustness grid (Pillow at three "
                     "subsamplings, progressive, grey, double compression, jpegli, scaled and flat tables)",
                     "restore-s-v2", True),
    "micro-s": ("configs/micro12.json", MICRO, None, True),
    "joint-s-v6": ("configs/joint-tr.json", VIEW + TUNED + ", SSIM in the loss, payloads coded by mozjpeg's "
                   "trellis quantisation", "joint-s-v5", True),
    "joint-s-v7": ("configs/joint-dec.json", VIEW + TUNED + ", SSIM in the loss, payloads coded by mozjpeg's "
                   "trellis quantisation; joint-s-v6's encoder with its decoder fine-tuned on that encoder's "
                   "payloads", "joint-s-v6", True),
    "joint-s-v8": ("configs/joint-dec3.json", VIEW + TUNED + ", SSIM in the loss, payloads coded by mozjpeg's "
                   "trellis quantisation; joint-s-v6's encoder with flatter tables (flatness 0.1) and its decoder "
                   "fine-tuned on those payloads (configs/joint-dec.json, joint-dec2.json, then joint-dec3.json)",
                   "joint-s-v7", True),
    "micro-s-v2": ("configs/micro12c.json", MICRO + "; micro-s fine-tuned on the 12-bit path that raises the levels "
                   "at JPEG quality 1's flat tables first (codec.twelve_bit_setting), then on planes mapped with "
                   "their block means aligned to the DC grid (configs/micro12b.json, then micro12c.json)",
                   "micro-s", True),
    "micro-s-v3": ("configs/micro12e.json", MICRO + "; micro-s-v2 fine-tuned on 12-bit payloads that are frequency "
                   "weighted above quality 60 (format.weighting: nearly flat effective steps), conditioned on "
                   "the effective steps, then on a mix with plain 12-bit JPEG as other writers make it "
                   "(configs/micro12d.json, then micro12e.json)", "micro-s-v2", True),
    "micro-s-v4": ("configs/micro12f.json", MICRO + "; micro-s-v3 fine-tuned with 30 % of the patches from photos "
                   "made into 12-bit grey planes (training.photo_planes12: dense texture, detail finer than 8-bit "
                   "steps, noise), for microscopes other than fluorescence and brightfield", "micro-s-v3", True),
    "micro-s-v6": ("configs/micro12h.json", MICRO + "; micro-s-v4 fine-tuned on payloads whose block means have "
                   "their own capped step (weighting_dc), as files have since that field (photos made into 12-bit "
                   "grey planes for 30 % of the patches, as for micro-s-v4)", "micro-s-v4", True),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--default", default=None,
                   help="model id that encode() uses by default (for its payload precision, 8 or 12 bits)")
    p.add_argument("ids", nargs="*", default=list(RUNS))
    args = p.parse_args()
    os.chdir(ROOT)  # the configs' paths are relative to the repository
    for model_id in args.ids:
        config, description, supersedes, half = RUNS[model_id]
        cfg = TrainConfig.load(config)
        trainer = Trainer(cfg, device="cpu")
        if trainer.step < cfg.steps:
            raise SystemExit(f"{model_id}: run {cfg.out} stopped at step {trainer.step} of {cfg.steps}")
        entry = register(trainer, model_id, description, WEIGHTS, default=model_id == args.default,
                         supersedes=supersedes, half=half, stock_viewer=STOCK_VIEWER.get(model_id))
        print(model_id, entry["sha256"], entry["card"]["parameters"], "parameters")


if __name__ == "__main__":
    main()
