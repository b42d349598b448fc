"""GPU check in one go, for a session that has a GPU: does the `reproduce` grid fit in an hour of
one GPU (target 4 of `bench perf`, reports/perf.md)?

    benchmarks/gpu_check.sh            # or: python benchmarks/gpu_check.py

1. The card, driver and torch build.
2. The CUDA step takes no host synchronisation: one generator iteration (every row) under
   torch.cuda.set_sync_debug_mode("error"), which raises on any synchronising call.
3. One epoch of training (`full` row, paper profile, one evaluation) of every dataset at the
   paper's shapes on random tensors, single seed and 5 stacked seeds, with the projected wall
   time of one training and of the reproduce grid.
4. `bench perf --device cuda`, which fills the GPU column of reports/perf.md beside the CPU one.
Everything it prints is meant to be pasted into reports/perf.md's GPU section as is.
"""

import dataclasses
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.perf import perf  # noqa: E402
from bench.perf.measure import shaped_benchmark  # noqa: E402
from bench.perf.projection import grid_seconds  # noqa: E402
from bench.perf.render import fmt_time  # noqa: E402
from vsboost.config import DATASETS, ROWS, make_config  # noqa: E402
from vsboost.methods.vsboost import VSBoost  # noqa: E402
from vsboost.train import train  # noqa: E402

SEEDS = 5  # the reproduce grid's seeds, trained stacked


def card() -> torch.device:
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible to torch; run it on a GPU machine")
    dev = torch.device("cuda")
    p = torch.cuda.get_device_properties(dev)
    print(f"card: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs; "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    return dev


def no_sync_in_the_step(dev: torch.device) -> None:
    for row in ROWS:
        cfg = make_config("FLO", row, "paper", {"checkpoint_every": 0})  # FLO: outside negatives
        model = VSBoost(shaped_benchmark("FLO", dev), cfg, [0, 1], dev)
        episodes = model.draw_epoch()[0]
        model.iteration(episodes[:, 0])  # warm-up: lazy initialisation may synchronise
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            model.iteration(episodes[:, 1])
        finally:
            torch.cuda.set_sync_debug_mode("default")
        print(f"no host synchronisation inside the step: {row} ok")


def one_epoch(dev: torch.device) -> None:
    trainings = {}
    speedups = []
    for name in DATASETS:
        data = shaped_benchmark(name, dev)
        cfg = make_config(name, "full", "paper", {"checkpoint_every": 0})
        one = dataclasses.replace(cfg, gan_epochs=1)
        walls = {}
        for members in (1, SEEDS):
            train(data, dataclasses.replace(one, steps_per_epoch=2), list(range(members)),
                  device=dev)  # warm-up (kernels, allocator)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            train(data, one, list(range(members)), device=dev)
            torch.cuda.synchronize()
            walls[members] = time.perf_counter() - t0
        speedups.append(SEEDS * walls[1] / walls[SEEDS])
        trainings[name] = cfg.gan_epochs * walls[SEEDS] / SEEDS  # per seed, stacked
        print(f"{name:4s} one epoch incl. evaluation: {walls[1]:.2f} s (1 seed), "
              f"{walls[SEEDS]:.2f} s ({SEEDS} stacked, {speedups[-1]:.1f}x); one training "
              f"{fmt_time(cfg.gan_epochs * walls[1])} alone, "
              f"{fmt_time(cfg.gan_epochs * walls[SEEDS])} for {SEEDS} stacked")
    grid = grid_seconds(trainings, SEEDS, speedup=1.0)  # stacking already in `trainings`
    print(f"projected reproduce grid ({len(DATASETS)} x {len(ROWS)} rows x {SEEDS} seeds, every "
          f"row costed as full, seeds stacked): {fmt_time(grid)}")


if __name__ == "__main__":
    device = card()
    no_sync_in_the_step(device)
    one_epoch(device)
    perf(["--device", "cuda"], standalone_mode=False)
