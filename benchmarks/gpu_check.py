"""The GPU check's measurements (benchmarks/gpu_check.sh runs it after the CUDA tests):

1. The card, driver and torch build.
2. The CUDA step takes no host synchronisation: one generator iteration (every row) under
   torch.cuda.set_sync_debug_mode("error"), which raises on any synchronising call.
3. Peak memory of one epoch with its evaluation at 5 stacked seeds, every dataset at the
   paper's shapes on random tensors, beside vsboost.memory's estimate (what the default
   --seeds-per-job on a GPU is chosen from) and the seeds per job it gives this card.
4. With several GPUs, the local launcher: one worker per GPU, each run recorded on its own.
5. `bench perf --device cuda`: the GPU column of reports/perf.md, the projected grid.
"""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.perf import perf  # noqa: E402
from bench.perf.measure import shaped_benchmark  # noqa: E402
from vsboost.config import DATASETS, ROWS, make_config  # noqa: E402
from vsboost.methods.vsboost import VSBoost  # noqa: E402
from vsboost.train import train  # noqa: E402

SEEDS = 5  # the default seeds per job, trained stacked


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


def peak_memory_at_5_seeds(dev: torch.device) -> None:
    from bench.sweep import default_seeds_per_job
    from vsboost import memory

    total = torch.cuda.get_device_properties(dev).total_memory
    for name in DATASETS:
        data = shaped_benchmark(name, dev)
        cfgs = [make_config(name, row, "paper", {}) for row in ROWS]
        cfg = make_config(name, "full", "paper", {"gan_epochs": 1, "steps_per_epoch": 2,
                                                   "cls_epochs": 1, "checkpoint_every": 0})
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
        train(data, cfg, list(range(SEEDS)), device=dev)
        peak = torch.cuda.max_memory_allocated(dev)
        shapes = memory.Shapes.of(data)
        estimate = memory.shared_bytes(shapes) + SEEDS * memory.per_seed_bytes(cfg, shapes)
        print(f"{name:4s} {SEEDS} stacked seeds, one epoch + evaluation: peak "
              f"{peak / 2**30:.2f} GiB of tensors; estimate {estimate / 2**30:.2f} GiB (with "
              f"{memory.OVERHEAD_BYTES / 2**30:.0f} GiB for context and slack); default seeds "
              f"per job on this card: {default_seeds_per_job('cuda', cfgs, shapes, total)}")
        del data
        torch.cuda.empty_cache()


def multi_gpu_launcher() -> None:
    import json
    import subprocess
    import tempfile

    gpus = torch.cuda.device_count()
    if gpus < 2:
        print("multi-GPU launcher: one GPU here, not exercised")
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "bench", "sweep", "--synthetic", "--data-root",
                        f"{tmp}/data", "--results", f"{tmp}/results", "--name", "multi",
                        "--profile", "smoke", "--datasets", "APY,CUB", "--rows", "plain",
                        "--seeds", str(gpus), "--seeds-per-job", "1", "--device", "cuda",
                        "--set", "gan_epochs=2", "--features", "none"], check=True)
        used = sorted({json.loads(p.read_text())["provenance"]["device_index"]
                       for p in Path(tmp, "results", "multi").glob("*/record.json")})
    print(f"multi-GPU launcher: {gpus} GPUs, runs recorded on cuda:{used}")
    if len(used) < 2:
        sys.exit("multi-GPU launcher: every run went to one GPU")


if __name__ == "__main__":
    device = card()
    no_sync_in_the_step(device)
    peak_memory_at_5_seeds(device)
    multi_gpu_launcher()
    perf(["--device", "cuda"], standalone_mode=False)
