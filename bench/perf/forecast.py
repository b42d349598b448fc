"""How long a planned sweep will take on this device, said before it starts: from ``bench perf``'s
measured step and evaluation costs (``perf-<device>.json`` in the reports root) when present,
else from another device kind's measurement, said to be one. Nothing is blocked or asked.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench import store
from bench.perf import projection
from bench.perf.render import fmt_time

# What a dataset's measurement must hold for a projection: positive finite numbers.
NEEDED = ("steps", "iter_s", "eval_s")


def read_run(path: Path) -> tuple[dict | None, str | None]:
    """A ``bench perf`` run file, checked for what a projection reads: (run, None), or
    (None, why not) for a file that is missing or is not one."""
    if not path.is_file() or path.is_symlink():
        return None, f"{path}: not found"
    try:  # through the harness's one JSON reader: bounded, no symlink, FIFO or folder
        run = store.read_json(path, "fix: rerun `bench perf`", limit=1 << 22)  # choice: 4 MiB
    except store.RecordError as exc:
        return None, str(exc)
    datasets = run.get("datasets") if isinstance(run, dict) else None
    if not isinstance(datasets, list) or not all(_usable(d) for d in datasets):
        return None, f"{path}: expected bench perf's datasets with {', '.join(NEEDED)}"
    return run, None


def _usable(ds) -> bool:
    return isinstance(ds, dict) and isinstance(ds.get("dataset"), str) and all(
        isinstance(ds.get(k), (int, float)) and not isinstance(ds.get(k), bool)
        and math.isfinite(ds[k]) and ds[k] > 0 for k in NEEDED)


def _stack_ratio(run: dict) -> float:
    try:
        return max(projection.stack_ratio(run["stacking"]), 1.0)
    except (KeyError, TypeError, ZeroDivisionError):
        return 1.0


def job_seconds(ds: dict, cfg, members: int, stack: float) -> float:
    """One job: ``cfg.gan_epochs`` epochs of the measured step and evaluation, ``members``
    stacked seeds at the measured stacking gain, plus their checkpoints where measured."""
    epoch = ds["steps"] * ds["iter_s"] + ds["eval_s"] / cfg.eval_every
    writes = 0.0
    if ds.get("ckpt_s") and cfg.checkpoint_every:
        writes = math.ceil(cfg.gan_epochs / cfg.checkpoint_every) * ds["ckpt_s"] * members
    return cfg.gan_epochs * epoch * members / stack + writes


def lines(jobs, kind: str, reports: Path) -> list[str]:
    """What to print before a paper-profile sweep of ``jobs`` on a ``kind`` device."""
    from vsboost.config import make_config

    if not jobs:
        return []
    own = reports / f"perf-{kind}.json"
    run, why = read_run(own)
    source = f"measured by bench perf on this kind of device ({own})"
    if run is None:
        other = reports / f"perf-{'cuda' if kind == 'cpu' else 'cpu'}.json"
        run, _ = read_run(other)
        source = (f"an ESTIMATE from another device's bench perf ({other}), not this one; "
                  f"`bench perf --device {kind}` measures this one ({why})")
    out = []
    if run is None:
        out.append(f"projected time: no bench perf measurement to project from ({why}); "
                   f"`bench perf --device {kind}` measures it in minutes")
    else:
        by_ds = {d["dataset"]: d for d in run["datasets"]}
        stack = _stack_ratio(run)
        total, missing = 0.0, set()
        for job in jobs:
            if job.dataset not in by_ds:
                missing.add(job.dataset)
                continue
            cfg = make_config(job.dataset, job.row, job.profile, dict(job.overrides))
            total += job_seconds(by_ds[job.dataset], cfg, len(job.seed_indices), stack)
        name = (run.get("env") or {}).get("name", "?") if isinstance(run.get("env"), dict) \
            else "?"
        out.append(f"projected wall time: {fmt_time(total)} for {len(jobs)} jobs one after the "
                   f"other, each costed as the full row ({source}; {name})"
                   + (f"; not projected: {', '.join(sorted(missing))}" if missing else ""))
    if kind == "cpu":
        out.append("on a CPU the paper profile takes hours per run: `--profile smoke` tries the "
                   "same pipeline in minutes")
    return out
