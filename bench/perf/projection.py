"""The arithmetic of ``bench perf`` (pure functions of the measured dicts, no torch): rates and
fractions of peak, projected training and grid times, and the verdict on each target.
"""

from __future__ import annotations

from dataclasses import dataclass

from vsboost.config import ROWS

GIB = 2**30
STEP_DATASET = "CUB"  # choice: the step and multi-seed stacking are judged at CUB's shapes


@dataclass(frozen=True)
class Target:
    title: str
    wanted: str
    bound: dict[str, float | None]  # device type -> bound; None: no target on that device
    upper: bool  # the bound is a maximum (else a minimum)
    why: str


# choice: the suite's own performance targets (none comes from the paper), one per device type.
TARGETS = {
    "step": Target(
        "1. step at CUB shapes, of peak", ">= 40% on CPU", {"cpu": 0.40, "cuda": None}, False,
        "One generator iteration is almost all matmuls, so the fraction of the device's own "
        "matmul peak it reaches shows how much goes to overhead. No bound on a GPU: CUB's "
        "64-sample episodes cannot fill one."),
    "eval": Target(
        "2. evaluation / generator epoch", "<= 25%, every dataset", {"cpu": 0.25, "cuda": 0.25},
        True,
        "The lineage evaluates after every generator epoch, so this share is added to the "
        "whole training; at a quarter the generator's training still dominates."),
    "stacking": Target(
        "3. seeds stacked vs separate runs", ">= 1.5x CPU, >= 4x GPU", {"cpu": 1.5, "cuda": 4.0},
        False,
        "Training seeds stacked in one pass is worth its complexity only when it beats the same "
        "seeds run one after the other; a GPU, which one member leaves mostly idle, must gain "
        "more."),
    "grid": Target(
        "4. reproduce grid on one GPU", "<= 60 min", {"cpu": None, "cuda": 3600.0}, True,
        "The whole `reproduce` grid (5 datasets x 4 rows x 5 seeds) in an hour of one GPU, so "
        "that a reproduction fits in one session. Reported, not judged, on a CPU."),
    "demo": Target(
        "5. demo peak memory", "<= 4 GiB", {"cpu": 4 * GIB, "cuda": 4 * GIB}, True,
        "The demo (`nox -s demo`) is what a newcomer runs first, on whatever machine is at "
        "hand: it must fit in a small one's memory."),
}


@dataclass(frozen=True)
class Verdict:
    value: float  # what is compared with the bound
    met: bool | None  # None: no bound on this device type
    detail: dict  # the figures the report prints beside the value


def project(ds: dict) -> dict:
    """Derived figures of one dataset's measurements: rates, fractions and projected times.
    ``training_s`` counts one member's checkpoints where they were measured (``ckpt_s``)."""
    epoch_s = ds["steps"] * ds["iter_s"]
    evals_per_epoch = 1 / ds["eval_every"]
    checkpoint_s = checkpoints_s(ds)
    return {
        "iter_gflops": ds["iter_flops"] / ds["iter_s"] / 1e9,
        "iter_of_peak": ds["iter_flops"] / ds["iter_s"] / 1e9 / ds["peak_gflops"],
        "step_mm_of_peak": ds["step_mm_gflops"] / ds["peak_gflops"],
        "epoch_s": epoch_s,
        "eval_of_epoch": ds["eval_s"] / epoch_s,
        # What the evaluation would cost at the step's own efficiency: the floor of eval_of_epoch.
        "eval_flops_of_epoch": ds["eval_flops"] / (ds["steps"] * ds["iter_flops"]),
        "training_s": ds["epochs"] * (epoch_s + evals_per_epoch * ds["eval_s"])
        + (checkpoint_s or 0.0),
        "checkpoint_s": checkpoint_s,
        "fit_gflops": ds["gzsl_flops"] / ds["gzsl_s"] / 1e9,
        "fit_of_peak": ds["gzsl_flops"] / ds["gzsl_s"] / 1e9 / ds["peak_gflops"],
    }


def checkpoints_s(ds: dict) -> float | None:
    """One member's checkpoint writes over a training (every ``checkpoint_every`` epochs and
    after the last, train.py); None where not measured (runs of an older ``bench perf``)."""
    if ds.get("ckpt_s") is None or not ds.get("checkpoint_every"):
        return None
    writes = ds["epochs"] // ds["checkpoint_every"] + (ds["epochs"] % ds["checkpoint_every"] > 0)
    return writes * ds["ckpt_s"]


def stack_ratio(stack: dict) -> float:
    """Throughput of M stacked members over M separate runs: M * t(1) / t(M)."""
    return stack["members"] * stack["single_s"] / stack["stacked_s"]


def stack_of_peak(stack: dict) -> dict[str, float]:
    """Fraction of peak reached by one member alone and by M stacked members."""
    return {k: stack[f"{k}_flops"] / stack[f"{k}_s"] / 1e9 / stack["peak_gflops"]
            for k in ("single", "stacked")}


def grid_seconds(trainings: dict[str, float], seeds: int, speedup: float,
                 rows: int = len(ROWS), checkpoints: dict[str, float] | None = None) -> float:
    """The reproduce grid: every dataset x ``rows`` x ``seeds``, each training costed as the
    ``full`` row (an upper bound: the other rows train fewer networks), run ``seeds`` at a time
    stacked when that is faster (``speedup`` > 1), else one by one. ``checkpoints``: the share
    of each training that is checkpoint writes, which stacking does not speed up (a checkpoint
    of M members is M times one member's)."""
    checkpoints = checkpoints or {}
    compute = sum(t - checkpoints.get(ds, 0.0) for ds, t in trainings.items())
    return (compute / max(speedup, 1.0) + sum(checkpoints.values())) * rows * seeds


def verdicts(run: dict) -> dict[str, Verdict]:
    """{target key: verdict} for one device's run, for the targets it measured."""
    kind = run["env"]["device"]
    by_ds = {d["dataset"]: d for d in run["datasets"]}
    out = {}

    def judge(key: str, value: float, **detail) -> None:
        target = TARGETS[key]
        bound = target.bound[kind]
        met = None if bound is None else (value <= bound if target.upper else value >= bound)
        out[key] = Verdict(value, met, detail)

    if STEP_DATASET in by_ds:
        p = project(by_ds[STEP_DATASET])
        judge("step", p["iter_of_peak"], step_mm_of_peak=p["step_mm_of_peak"])
    if by_ds:
        worst = max(by_ds.values(), key=lambda d: project(d)["eval_of_epoch"])
        judge("eval", project(worst)["eval_of_epoch"], dataset=worst["dataset"])
    if run.get("stacking"):
        judge("stacking", stack_ratio(run["stacking"]), members=run["stacking"]["members"])
    if run.get("grid_s") is not None:
        judge("grid", run["grid_s"], device=kind)
    if run.get("demo"):
        judge("demo", run["demo"]["mem_peak"])
    return out


def over_eval_bound(run: dict) -> list[dict]:
    """The datasets whose evaluation costs more than the ``eval`` target allows."""
    bound = TARGETS["eval"].bound[run["env"]["device"]]
    if bound is None:
        return []
    return [d for d in run["datasets"] if project(d)["eval_of_epoch"] > bound]
