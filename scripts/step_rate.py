"""Training steps per second of one config on the real (Pillow, CPU) and emulated (torch) JPEG paths.

Usage: python scripts/step_rate.py CONFIG [--device cpu|cuda] [--steps N] [--threads N]

Builds the config's trainer in a temporary folder (nothing of the run is touched),
runs a few warm-up steps, then times ``--steps`` steps on each JPEG path. Run it on
the CPU and on a GPU to compare (docs/training.md).
"""

import argparse
import dataclasses
import tempfile
import time

from napari_cnnjpeg.training import JPEG_PATHS, TrainConfig, Trainer, load_images

WARMUP = 3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--device", default=None, help="override the config's device")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="override the config's threads")
    args = p.parse_args()
    base = TrainConfig.load(args.config)
    images = load_images(base.data)
    for path in JPEG_PATHS:
        with tempfile.TemporaryDirectory() as out:
            cfg = dataclasses.replace(base, out=out, init="", jpeg=path, steps=10**9,
                                      device=args.device or base.device, threads=args.threads or base.threads)
            trainer = Trainer(cfg, images)
            for _ in range(WARMUP):
                trainer.train_step()
            if trainer.device.type == "cuda":
                import torch

                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step()  # .item() on the loss waits for the device
            rate = args.steps / (time.perf_counter() - t0)
            print(f"{cfg.recipe} batch {cfg.batch} patch {cfg.patch}, {trainer.device.type}, "
                  f"{cfg.threads} threads, jpeg {path}: {rate:.2f} steps/s", flush=True)


if __name__ == "__main__":
    main()
