"""Final classifiers, metrics and the two selection protocols (paper §3.7, §4; docs/protocols.md).

Metrics are per-class mean top-1 accuracy, as fractions: U over the unseen classes on
test_unseen and S over the seen classes on test_seen, both predicted over all S+U classes;
H = 2SU / (S+U). Classifiers are trained stacked over members, on whole device tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn import functional as F

from vsboost.models import StackedLinear, adam
from vsboost.sampler import member_rand

if TYPE_CHECKING:
    from vsboost.data import Benchmark


@dataclass(frozen=True)
class Classes:
    """One split's labels ``[n]`` with their class bookkeeping, made once: each sample's slot
    among the classes present and each class's count. ``unique`` and ``bincount`` wait for the
    device, and the labels never change, so an evaluation asks them once, not at every
    classifier epoch."""

    labels: Tensor
    slot: Tensor
    counts: Tensor

    @classmethod
    def of(cls, labels: Tensor) -> Classes:
        classes, slot = labels.unique(return_inverse=True)
        counts = torch.bincount(slot, minlength=len(classes)).to(torch.float32)
        return cls(labels, slot, counts)


def per_class_accuracy(pred: Tensor, labels: Tensor | Classes) -> Tensor:
    """Mean over the classes present in ``labels`` of each class's top-1 accuracy.

    ``pred`` is ``[M, n]`` (one row per member) or ``[n]``; ``labels`` is ``[n]``, or its
    :class:`Classes` (no wait for the device). Unlike per-sample accuracy, a large class weighs
    no more than a small one.
    """
    split = labels if isinstance(labels, Classes) else Classes.of(labels)
    squeeze = pred.dim() == 1
    pred = pred.reshape(-1, split.labels.shape[0])
    correct = (pred == split.labels).to(torch.float32)
    hits = torch.zeros(pred.shape[0], split.counts.shape[0], device=pred.device,
                       dtype=correct.dtype)
    hits.index_add_(1, split.slot, correct)  # whole counts: exact in float32 (below 2^24)
    acc = (hits / split.counts).mean(dim=1)
    return acc[0] if squeeze else acc


def harmonic_mean(u: Tensor, s: Tensor) -> Tensor:
    """H = 2SU / (S+U), defined as 0 where both are 0."""
    return torch.where(u + s > 0, 2 * u * s / (u + s).clamp_min(1e-12), torch.zeros_like(u))


def train_softmax(
    x: Tensor, y: Tensor, n_out: int, gens: list[torch.Generator], *, epochs: int, lr: float,
    batch: int, betas: tuple[float, float], init_std: float,
    score: Callable[[StackedLinear], Tensor],
) -> Tensor:
    """Fit a fresh stacked Linear(d -> n_out) (:func:`fit_softmax`) and ``score`` it after every
    epoch. Returns the stacked scores ``[epochs, ...]``: the lineage evaluates after every
    classifier epoch."""
    scores = []
    for clf in fit_softmax(x, y, n_out, gens, epochs=epochs, lr=lr, batch=batch, betas=betas,
                           init_std=init_std):
        with torch.no_grad():
            scores.append(score(clf))
    return torch.stack(scores)


def fit_softmax(
    x: Tensor, y: Tensor, n_out: int, gens: list[torch.Generator], *, epochs: int, lr: float,
    batch: int, betas: tuple[float, float], init_std: float,
) -> Iterator[StackedLinear]:
    """Fit a fresh stacked Linear(d -> n_out) with Adam and cross-entropy, yielding it after every
    epoch. ``x`` is ``[M, n, d]`` and ``y`` ``[n]`` (targets shared by all members)."""
    members, n, d = x.shape
    clf = StackedLinear(members, d, n_out).to(x.device)
    clf.reset(gens, init_std)
    opt = adam(clf.parameters(), lr, betas)
    rows = torch.arange(members, device=x.device)[:, None]
    for _ in range(epochs):
        order = member_rand(gens, n).argsort(dim=1)
        # The epoch's shuffled copy in one pass, so that every batch is a contiguous slice: ~10%
        # faster than gathering each batch on its own (one more copy of x in memory).
        x_epoch, y_epoch = x[rows, order], y[order]
        for start in range(0, n, batch):
            xb, yb = x_epoch[:, start : start + batch], y_epoch[:, start : start + batch]
            # Sum over members of each member's mean loss, computed on [M*b, C] rows: softmax over
            # a contiguous last dimension, not the slow strided path of a [M, C, b] input.
            loss = F.cross_entropy(clf(xb).flatten(0, 1), yb.flatten(), reduction="sum")
            opt.zero_grad(set_to_none=True)
            (loss / xb.shape[1]).backward()
            opt.step()
        yield clf


def predict(clf: StackedLinear, x: Tensor, chunk: int = 8192) -> Tensor:
    """argmax class slot, ``[M, n]``; chunked so large test sets never materialise all logits."""
    return torch.cat([clf(x[:, i : i + chunk]).argmax(-1) for i in range(0, x.shape[1], chunk)], 1)


@dataclass(frozen=True)
class EvalFeatures:
    """What the final classifiers see, each ``[M, n, d]`` (one slice per member): the real
    trainval features, ``syn_num`` synthetic features per unseen class with their labels
    ``syn_y`` ``[n_syn]``, and the two test splits. Labels of the real splits are the
    :class:`~vsboost.data.Benchmark`'s own."""

    train: Tensor
    syn: Tensor
    syn_y: Tensor
    seen: Tensor
    unseen: Tensor


def fit_settings(cfg) -> dict:
    """The final classifiers' ``epochs``, ``lr``, ``batch``, Adam ``betas`` and ``init_std`` from
    a :class:`~vsboost.config.Config`; the batch defaults to ``syn_num`` (lineage). Their betas
    are ``cls_beta1``/``cls_beta2``, not the generator's ``beta1`` (the lineage fixes 0.5)."""
    return {"epochs": cfg.cls_epochs, "lr": cfg.cls_lr, "batch": cfg.cls_batch or cfg.syn_num,
            "betas": (cfg.cls_beta1, cfg.cls_beta2), "init_std": cfg.init_std}


def scores(
    features: EvalFeatures, data: Benchmark, gens: list[torch.Generator], **fit,
) -> tuple[Tensor, Tensor]:
    """The per-epoch evaluation: GZSL ``[epochs, M, 3]`` holding (U, S, H) and CZSL
    ``[epochs, M]``, after every classifier epoch. The GZSL classifier draws from ``gens``
    before the CZSL one, always in this order. ``fit``: :func:`fit_settings`."""
    return gzsl_scores(features, data, gens, **fit), czsl_scores(features, data, gens, **fit)


def gzsl_scores(
    features: EvalFeatures, data: Benchmark, gens: list[torch.Generator], **fit,
) -> Tensor:
    """GZSL: classifier over all S+U classes on real seen + synthetic unseen features.

    Returns ``[epochs, M, 3]`` holding (U, S, H) after every classifier epoch."""
    f = features
    unseen, seen = Classes.of(data.test_unseen_y), Classes.of(data.test_seen_y)

    def score(clf: StackedLinear) -> Tensor:
        u = per_class_accuracy(predict(clf, f.unseen), unseen)
        s = per_class_accuracy(predict(clf, f.seen), seen)
        return torch.stack([u, s, harmonic_mean(u, s)], dim=-1)

    x = torch.cat([f.train, f.syn], dim=1)
    y = torch.cat([data.train_y, f.syn_y])
    return train_softmax(x, y, data.n_classes, gens, score=score, **fit)


def czsl_scores(
    features: EvalFeatures, data: Benchmark, gens: list[torch.Generator], **fit,
) -> Tensor:
    """CZSL (Table 3): classifier over the unseen classes only, trained on synthetic features.

    Returns ``[epochs, M]``: per-class accuracy on test_unseen after every classifier epoch."""
    f, unseen = features, data.unseen
    # Sized from the class count, not unseen.max(): reading a device value would wait for it.
    slot = torch.full((data.n_classes,), -1, dtype=torch.long, device=unseen.device)
    slot[unseen] = torch.arange(len(unseen), device=unseen.device)
    target = Classes.of(slot[data.test_unseen_y])

    def score(clf: StackedLinear) -> Tensor:
        return per_class_accuracy(predict(clf, f.unseen), target)

    return train_softmax(f.syn, slot[f.syn_y], len(unseen), gens, score=score, **fit)


def epoch_entry(epoch: int, gzsl: Tensor, czsl: Tensor) -> dict:
    """One member's history entry from its GZSL ``[cls_epochs, 3]`` and CZSL ``[cls_epochs]``."""
    best = int(gzsl[:, 2].argmax())
    best_czsl = int(czsl.argmax())
    u, s, h = (float(v) for v in gzsl[-1])
    return {
        "epoch": epoch, "U": u, "S": s, "H": h, "czsl": float(czsl[-1]),
        "best": {"U": float(gzsl[best, 0]), "S": float(gzsl[best, 1]),
                 "H": float(gzsl[best, 2]), "cls_epoch": best + 1},
        "czsl_best": {"acc": float(czsl[best_czsl]), "cls_epoch": best_czsl + 1},
    }


def at_points(points: dict, epoch: int, gzsl: Tensor, czsl: Tensor) -> dict:
    """``{"at_val": ...}``: the test metrics at the points the val protocol selected on
    validation classes (vsboost.validation.points) that fall in generator epoch ``epoch``; {}
    when none does. Only the selected point is kept, not every classifier epoch."""
    out = {}
    e, c = points["gzsl"]
    if e == epoch:
        out.update(zip(("U", "S", "H"), (float(v) for v in gzsl[c - 1])), cls_epoch=c)
    e, c = points["czsl"]
    if e == epoch:
        out.update(czsl=float(czsl[c - 1]), czsl_cls_epoch=c)
    return {"at_val": out} if out else {}


def select(history: list[dict], cls_epochs: int) -> dict:
    """The reported numbers under both protocols, from the per-epoch history.

    ``paper``: the lineage's protocol, best test H over generator and classifier epochs, with U
    and S of that same point: it looks at test labels to choose, as the paper's numbers do.
    ``last``: honest, never chooses: the last generator epoch's classifier after its last epoch.
    """
    top = max(history, key=lambda e: e["best"]["H"])
    top_czsl = max(history, key=lambda e: e["czsl_best"]["acc"])
    last = history[-1]
    return {
        "paper": {**{k: top["best"][k] for k in ("U", "S", "H", "cls_epoch")},
                  "epoch": top["epoch"]},
        "last": {"U": last["U"], "S": last["S"], "H": last["H"], "epoch": last["epoch"],
                 "cls_epoch": cls_epochs},
        "czsl": {
            "paper": {"acc": top_czsl["czsl_best"]["acc"], "epoch": top_czsl["epoch"],
                      "cls_epoch": top_czsl["czsl_best"]["cls_epoch"]},
            "last": {"acc": last["czsl"], "epoch": last["epoch"], "cls_epoch": cls_epochs},
        },
    }
