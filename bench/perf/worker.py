"""Worker processes: every measurement runs in a fresh spawned Python process, so that its peak
memory is its own and no cache is warm from the one before.

A job is a JSON-able dict ``{"kind": ..., **arguments}``; :func:`run` sends it to a new process
and returns the measurement's dict.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from bench import store
from bench.perf import measure

JOBS = {"dataset": measure.measure_dataset, "stacking": measure.measure_stacking,
        "demo": measure.measure_demo, "environment": measure.environment}


def measure_here(job: dict, threads: int) -> dict:
    """Run one job in this process with ``threads`` torch threads (0 = torch's default)."""
    import torch

    from vsboost.config import COMMON
    from vsboost.runtime import run_precision

    if threads:
        torch.set_num_threads(threads)
    args = {k: v for k, v in job.items() if k != "kind"}
    # Measured as the paper profile trains: its float32 matmul precision (tf32, on CUDA only).
    with run_precision(COMMON["tf32"][0], args.get("device", "cpu")):
        return JOBS[job["kind"]](**args)


def run(job: dict, threads: int) -> dict:
    """Run one job in a fresh spawned process (spawn: no state inherited, CUDA-safe)."""
    if job["kind"] not in JOBS:
        raise ValueError(f"unknown job kind {job['kind']!r}: expected one of {', '.join(JOBS)}")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        try:
            return pool.submit(measure_here, job, threads).result()
        except Exception as exc:  # the worker's error, or its death (BrokenProcessPool)
            raise store.BenchError(
                f"bench perf: the {job['kind']} measurement failed: {type(exc).__name__}: "
                f"{exc} (--debug shows the worker's traceback)") from exc
