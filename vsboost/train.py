"""One training of any method, top to bottom: set-up, the epoch loop, evaluation, results.

``train(data, cfg, seeds)`` trains ``len(seeds)`` independent members in one pass (stacked weights,
see models.py) and returns one :class:`RunResult` per seed. A single seed is simply M = 1.
The method of ``cfg`` (:mod:`vsboost.methods`) holds what one pass trains and does one generator
iteration or one evaluation at a time; ``train`` is the loop around it (epochs, divergence,
history, checkpoints) and knows no method. Each member draws its randomness from named streams
of its seed (sampler.py); the float32 precision is the run's setting, restored when it ends
(runtime.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vsboost import evaluate, methods
from vsboost.config import Config
from vsboost.data import Benchmark
from vsboost.errors import UserError
from vsboost.files import atomic_path
from vsboost.runtime import effective, run_dtype, run_precision

# 2: one generator per random stream. A checkpoint of another format came from an older trainer
# whose draws this one cannot continue.
CHECKPOINT_FORMAT = 2


@dataclass
class RunResult:
    seed: int
    status: str  # "done" | "diverged"
    diverged_epoch: int | None
    metrics: dict | None
    history: list[dict]
    sampler: dict
    wall_s: float
    features: dict[str, np.ndarray] | None = None
    precision: dict | None = None  # the float32 arithmetic the run got (runtime.effective)
    validation: dict | None = None  # the val protocol's split and training (vsboost.validation)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("features")
        return out


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto": CUDA when torch sees a GPU, else the CPU; anything else as given."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train(
    data: Benchmark, cfg: Config, seeds: Sequence[int], *, device="cpu",
    checkpoint: Path | None = None, progress: Callable[[int, int], None] | None = None,
    feature_sample: bool = False, points: Sequence[dict | None] | None = None,
    log: Callable[[int, int, list[dict | None]], None] | None = None,
) -> list[RunResult]:
    """Train one member per seed of ``seeds`` with ``cfg`` on ``data``; resume from ``checkpoint``
    when it exists and write it every ``cfg.checkpoint_every`` epochs. ``progress(epoch, total)``
    runs after every epoch; ``feature_sample`` adds Figure 4 material to the results.

    ``device`` defaults to the CPU, never silently to a GPU: the numbers differ between device
    kinds, so the caller chooses (``"auto"`` asks for CUDA when available; the harness resolves
    it once per sweep, bench.sweep).

    ``points``: per member, the (generator epoch, classifier epoch) pairs the val protocol
    selected (vsboost.validation); the test metrics there are kept in the history.
    ``log(epoch, total, per_member)`` runs after every epoch with each member's losses, its
    evaluation when there was one, and the elapsed and projected seconds (None: diverged)."""
    dev = resolve_device(device)
    # The precision and the dtype are settings of this run, not of the process: set for the run,
    # restored after.
    with run_precision(cfg.tf32, dev), run_dtype(cfg.dtype) as dtype:
        precision = effective(dev)
        results = _train(data.to(dev, dtype), cfg, seeds, dev, checkpoint, progress,
                         feature_sample, points, log)
    for result in results:
        result.precision = precision
    return results


def _train(
    data: Benchmark, cfg: Config, seeds: Sequence[int], dev: torch.device,
    checkpoint: Path | None, progress: Callable[[int, int], None] | None, feature_sample: bool,
    points: Sequence[dict | None] | None = None,
    log: Callable[[int, int, list[dict | None]], None] | None = None,
) -> list[RunResult]:
    # ===== set-up =====
    model = methods.get(cfg.method)(data, cfg, seeds, dev)
    data, members = model.data, model.members
    start_epoch, history, diverged = 0, [[] for _ in seeds], [None] * members
    repl_draws, wall_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, dev)
        if state["seeds"] != list(seeds) or state["config_hash"] != cfg.hash():
            raise CheckpointError(f"{checkpoint}: checkpoint belongs to another run; fix: "
                                  "delete it")
        model.check_rng_kind(state, checkpoint)
        model.load_state_dict(state)
        start_epoch, history, diverged = state["epoch"], state["history"], state["diverged"]
        repl_draws, wall_before = state["repl_draws"], state["wall_s"]
    t0 = time.perf_counter()

    # ===== training =====
    for epoch in range(start_epoch, cfg.gan_epochs):
        batches, repl = model.draw_epoch()  # [M, steps, ...] image indices
        sums: dict[str, Tensor] = {}  # each loss of the method, summed over the epoch, [M]
        for it in range(model.steps):
            for name, loss in model.iteration(batches[:, it]).items():
                sums[name] = sums.get(name, 0) + loss

        # ===== end of epoch: the only host synchronisation =====
        repl_draws += int(repl)
        losses = {name: (total / model.steps).cpu() for name, total in sums.items()}
        for m in range(members):
            if diverged[m] is None and not all(torch.isfinite(v[m]) for v in losses.values()):
                diverged[m] = epoch + 1
        if all(d is not None for d in diverged):
            break
        last = epoch + 1 == cfg.gan_epochs
        if (epoch + 1) % cfg.eval_every == 0 or last:
            gzsl, czsl = model.evaluate(epoch + 1)  # its own stream: training never sees it
            learnt = model.diagnostics()
            for m in range(members):
                if diverged[m] is None:
                    entry = evaluate.epoch_entry(epoch + 1, gzsl[:, m], czsl[:, m])
                    if points is not None and points[m] is not None:
                        entry.update(evaluate.at_points(points[m], epoch + 1, gzsl[:, m],
                                                        czsl[:, m]))
                    entry.update({name: float(v[m]) for name, v in losses.items()})
                    entry.update({name: float(v[m]) for name, v in learnt.items()})
                    entry["wall_s"] = wall_before + time.perf_counter() - t0
                    history[m].append(entry)
        # The last epoch too: a training whose records then cannot be written (disk full) is
        # kept whole, and the rerun resumes past the loop.
        due = cfg.checkpoint_every and ((epoch + 1) % cfg.checkpoint_every == 0 or last)
        if checkpoint is not None and due:
            _save(checkpoint, {
                **model.state_dict(), "format": CHECKPOINT_FORMAT, "epoch": epoch + 1,
                "seeds": list(seeds), "config_hash": cfg.hash(), "history": history,
                "diverged": diverged, "repl_draws": repl_draws,
                "wall_s": wall_before + time.perf_counter() - t0,
            })
        if progress is not None:
            progress(epoch + 1, cfg.gan_epochs)
        if log is not None:
            spent = time.perf_counter() - t0
            timing = {"elapsed_s": wall_before + spent,
                      "projected_s": wall_before + spent / (epoch + 1 - start_epoch)
                      * (cfg.gan_epochs - start_epoch)}
            log(epoch + 1, cfg.gan_epochs, [
                None if diverged[m] is not None else
                {"losses": {name: float(v[m]) for name, v in losses.items()}, **timing,
                 "eval": history[m][-1] if history[m] and history[m][-1]["epoch"] == epoch + 1
                 else None} for m in range(members)])

    # ===== results =====
    wall = wall_before + time.perf_counter() - t0
    results = []
    for m, seed in enumerate(seeds):
        ok = diverged[m] is None and history[m]
        results.append(RunResult(
            seed=int(seed), status="done" if diverged[m] is None else "diverged",
            diverged_epoch=diverged[m],
            metrics=evaluate.select(history[m], cfg.cls_epochs) if ok else None,
            history=history[m],
            sampler={"episodes": model.draws * cfg.gan_epochs,
                     "with_replacement_draws": repl_draws},
            wall_s=wall,
            features=model.feature_sample(m) if feature_sample and ok else None,
        ))
    return results


class CheckpointError(UserError):
    """A checkpoint file that is not one this trainer wrote; one line naming the file."""


# Every key a checkpoint holds (see the _save call in _train); anything else is not ours.
CHECKPOINT_KEYS = frozenset({"nets", "opts", "rng", "format", "epoch", "seeds", "config_hash",
                             "history", "diverged", "repl_draws", "wall_s"})


def load_checkpoint(path: Path, dev: torch.device) -> dict:
    """A checkpoint read with pickle disabled (``weights_only=True``): results folders travel
    between people, and a full unpickle would run whatever code a crafted file carries. Anything
    that is not a checkpoint of this trainer raises :class:`CheckpointError` naming the file."""
    fix = "fix: delete it (the run restarts from epoch 0)"
    if not Path(path).is_file() or Path(path).is_symlink():
        raise CheckpointError(f"{path}: expected a checkpoint file, found something else; {fix}")
    try:
        state = torch.load(path, map_location=dev, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read means the same to a person
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise CheckpointError(f"{path}: expected a checkpoint of this trainer, found a file "
                              f"that does not load with pickle disabled ({reason}); {fix}") from exc
    if isinstance(state, dict) and state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint of an older trainer; {fix}")
    if not isinstance(state, dict) or set(state) != CHECKPOINT_KEYS:
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: expected a checkpoint holding {sorted(CHECKPOINT_KEYS)}, "
                              f"found {found}; {fix}")
    return state


def _save(path: Path, state: dict) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint intact; the temporary file
    has a unique name and is removed on error (a full disk stays as full as it was)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
