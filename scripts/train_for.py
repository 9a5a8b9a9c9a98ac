"""Train a config for a wall-clock budget (how lent GPU time is used).

Usage: python scripts/train_for.py CONFIG --seconds S

Runs the first steps, measures the step rate after the warm-up, sets ``steps`` so
that the run's cosine schedule ends inside ``margin`` of the rest of the budget (the
remainder is left for validation and checkpoints), and trains to that step. The
``config.json`` written beside the checkpoint records the steps it settled on;
``cnnjpeg train --config`` on that file repeats the run (the first 40 steps' learning
rates differ by under 0.1 %, as the schedule's length was not yet known).
"""

import argparse
import time

from napari_cnnjpeg.training import TrainConfig, Trainer

WARMUP, MEASURED = 10, 30


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--margin", type=float, default=0.9, help="share of the budget the steps may take")
    args = p.parse_args()
    start = time.perf_counter()
    cfg = TrainConfig.load(args.config)
    cfg.steps = 10**9
    trainer = Trainer(cfg)
    for _ in range(WARMUP):
        trainer.train_step()
    t0 = time.perf_counter()
    for _ in range(MEASURED):
        trainer.train_step()
    rate = MEASURED / (time.perf_counter() - t0)
    left = args.seconds - (time.perf_counter() - start)
    cfg.steps = trainer.step + max(1, int(rate * left * args.margin))
    print(f"{rate:.1f} steps/s: training to step {cfg.steps}", flush=True)
    trainer.run(progress=False)
    print(f"done: step {trainer.step} after {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
