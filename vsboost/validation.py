"""The ``val`` protocol (docs/protocols.md): every choice made on validation classes carved from
the seen classes, never on test labels.

:func:`split` derives a validation :class:`~vsboost.data.Benchmark` from trainval alone: the
proposed split's train classes are its seen classes, its validation classes its unseen ones, and
held-out trainval images of the train classes its seen test set. :func:`run` trains the method on
it first, with the same seeds and settings, selects the (generator epoch, classifier epoch) of the
best validation H (CZSL: best validation accuracy), then trains on all seen classes and reports
the test metrics at the selected point. The method itself knows nothing of this: any trainer with
the signature of :func:`vsboost.train.train` that records test metrics at given ``points`` does.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from vsboost import evaluate
from vsboost.config import Config
from vsboost.data import Benchmark, _scale

# choice: FLO ships no class lists; a third of its seen classes held out for validation, the
# proposed split's share in CUB (50 of 150) and close to AWA's (13 of 40).
VAL_SHARE = Fraction(1, 3)
# choice: xlsa17's own share of seen-class images kept for testing (APY 1,483 of 7,415 = 20%).
HOLDOUT_SHARE = Fraction(1, 5)
SPLIT_SEED = 0  # choice: one fixed split per data set, the same for every training seed


def split(data: Benchmark) -> Benchmark:
    """The validation benchmark of ``data``, from its trainval images and labels only: classes
    renumbered 0..S-1 in the order of ``data.seen``, features rescaled on the new training set
    (docs/data.md preprocessing, as if trainval' were trainval)."""
    y = data.train_y.cpu().numpy()
    x = data.train_x.cpu().numpy()
    seen = data.seen.cpu().numpy()
    val = val_classes(data)
    rng = np.random.default_rng([SPLIT_SEED, 1])
    held = []
    for c in np.setdiff1d(seen, val):
        rows = np.flatnonzero(y == c)
        n = int(len(rows) * HOLDOUT_SHARE) if len(rows) >= 2 else 0
        held.append(rng.choice(rows, max(n, 1 if len(rows) >= 2 else 0), replace=False))
    test_seen = np.sort(np.concatenate(held)).astype(np.int64)
    is_val = np.isin(y, val)
    train = np.flatnonzero(~is_val & ~np.isin(np.arange(len(y)), test_seen))
    test_unseen = np.flatnonzero(is_val)
    train_x, seen_x, unseen_x = _scale(x[train], x[test_seen], x[test_unseen])
    slot = np.searchsorted(seen, y)  # old class id -> 0..S-1
    dev = data.train_x.device

    def tensor(arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr)).to(dev)

    return Benchmark(
        name=f"{data.name} validation", synthetic=data.synthetic,
        fingerprint=data.fingerprint, files=data.files,
        train_x=tensor(train_x), train_y=tensor(slot[train]),
        test_seen_x=tensor(seen_x), test_seen_y=tensor(slot[test_seen]),
        test_unseen_x=tensor(unseen_x), test_unseen_y=tensor(slot[test_unseen]),
        att=data.att[data.seen], seen=tensor(np.searchsorted(seen, np.setdiff1d(seen, val))),
        unseen=tensor(np.searchsorted(seen, val)))


def val_classes(data: Benchmark) -> np.ndarray:
    """The validation classes: the data's own list (valclasses1.txt), else a seeded draw of
    :data:`VAL_SHARE` of the seen classes."""
    if data.val_classes is not None:
        return data.val_classes.cpu().numpy()
    seen = data.seen.cpu().numpy()
    n = max(1, min(len(seen) - 1, round(len(seen) * VAL_SHARE)))
    return np.sort(np.random.default_rng(SPLIT_SEED).choice(seen, n, replace=False))


def describe(data: Benchmark, val: Benchmark) -> dict:
    """What the record says about the validation split it was selected on."""
    return {"classes": "valclasses1.txt" if data.val_classes is not None
            else f"seeded split (seed {SPLIT_SEED}, {VAL_SHARE} of the seen classes)",
            "train_classes": len(val.seen), "val_classes": len(val.unseen),
            "train_images": len(val.train_y), "heldout_images": len(val.test_seen_y),
            "val_images": len(val.test_unseen_y)}


def same_passes(cfg: Config, n_val_train: int, n_trainval: int) -> Config:
    """The validation training's settings: ``cfg``, with as many passes over its training set per
    epoch as the main training makes over trainval. With ``steps_per_epoch = 0`` (one pass per
    epoch, the paper profile) that holds already; a fixed ``steps_per_epoch`` (the smoke profile)
    is scaled by the size ratio, so epoch e of both trainings has seen each image as often."""
    fixed = cfg.values.get("steps_per_epoch")  # a method may have no such setting
    if not fixed:
        return cfg
    steps = max(1, round(fixed * n_val_train / n_trainval))
    return dataclasses.replace(cfg, values={**cfg.values, "steps_per_epoch": steps})


def points(val_history: list[dict], cls_epochs: int) -> dict:
    """The (generator epoch, classifier epoch) of the best validation H and of the best
    validation CZSL accuracy: the selection rule of ``paper``, applied to validation metrics."""
    best = evaluate.select(val_history, cls_epochs)
    return {"gzsl": (best["paper"]["epoch"], best["paper"]["cls_epoch"]),
            "czsl": (best["czsl"]["paper"]["epoch"], best["czsl"]["paper"]["cls_epoch"])}


def select(history: list[dict]) -> tuple[dict, dict] | None:
    """``metrics.val`` and ``metrics.czsl.val`` from a main history whose entries carry the test
    metrics at the validation-selected point (``at_val``) and the validation metrics (``val``);
    None when the validation training gave no point (it diverged)."""
    gzsl = next((e for e in history if "H" in e.get("at_val", {})), None)
    czsl = next((e for e in history if "czsl" in e.get("at_val", {})), None)
    if gzsl is None or czsl is None:
        return None
    g, c = gzsl["at_val"], czsl["at_val"]
    return ({"U": g["U"], "S": g["S"], "H": g["H"], "epoch": gzsl["epoch"],
             "cls_epoch": g["cls_epoch"], "val_H": gzsl["val"]["best"]["H"]},
            {"acc": c["czsl"], "epoch": czsl["epoch"], "cls_epoch": c["czsl_cls_epoch"],
             "val_acc": czsl["val"]["czsl_best"]["acc"]})


VAL_KEYS = ("U", "S", "H", "czsl", "best", "czsl_best")  # what history[i]["val"] keeps


def run(train: Callable, data: Benchmark, cfg: Config, seeds: Sequence[int], *,
        checkpoint: Path | None = None, **kwargs) -> list:
    """``train(data, cfg, seeds, ...)`` under the ``val`` protocol: first on :func:`split`
    (checkpointed beside ``checkpoint``), then on ``data`` with the selected points; the
    results' histories gain the validation metrics and their metrics ``val``. Without
    ``cfg.val_protocol``, simply ``train``."""
    if not cfg.val_protocol:
        return train(data, cfg, seeds, checkpoint=checkpoint, **kwargs)
    t0 = time.perf_counter()
    val_data = split(data)
    val_cfg = same_passes(cfg, len(val_data.train_y), len(data.train_y))
    val_ckpt = None if checkpoint is None else Path(checkpoint).with_suffix(".val.pt")
    val_kwargs = {k: v for k, v in kwargs.items() if k not in ("feature_sample", "log")}
    if kwargs.get("log") is not None:  # the same log, each line saying which training it is
        val_kwargs["log"] = functools.partial(kwargs["log"], phase="validation")
    val_results = train(val_data, val_cfg, seeds, checkpoint=val_ckpt, **val_kwargs)
    val_wall = time.perf_counter() - t0
    picks = [points(r.history, cfg.cls_epochs) if r.status == "done" and r.history else None
             for r in val_results]
    results = train(data, cfg, seeds, checkpoint=checkpoint, points=picks, **kwargs)
    info = describe(data, val_data)
    for result, val_result in zip(results, val_results, strict=True):
        by_epoch = {e["epoch"]: e for e in val_result.history}
        for entry in result.history:
            if entry["epoch"] in by_epoch:
                entry["val"] = {k: by_epoch[entry["epoch"]][k] for k in VAL_KEYS}
        result.validation = {**info, "status": val_result.status, "wall_s": val_result.wall_s,
                             "steps_per_epoch": val_cfg.steps_per_epoch}
        result.wall_s += val_wall
        chosen = select(result.history) if result.metrics is not None else None
        if chosen is not None:
            result.metrics["val"], result.metrics["czsl"]["val"] = chosen
    if val_ckpt is not None:
        val_ckpt.unlink(missing_ok=True)
    return results
