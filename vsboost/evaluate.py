"""Final classifiers, metrics and the two selection protocols (paper §3.7, §4; SPEC §7).

Metrics are per-class mean top-1 accuracy, as fractions: U over the unseen classes on
test_unseen and S over the seen classes on test_seen, both predicted over all S+U classes;
H = 2SU / (S+U). Classifiers are trained stacked over members, on whole device tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from vsboost.models import StackedLinear, adam
from vsboost.sampler import member_rand


def per_class_accuracy(pred: Tensor, labels: Tensor) -> Tensor:
    """Mean over the classes present in ``labels`` of each class's top-1 accuracy.

    ``pred`` is ``[M, n]`` (one row per member) or ``[n]``; ``labels`` is ``[n]``. Unlike
    per-sample accuracy, a large class weighs no more than a small one.
    """
    squeeze = pred.dim() == 1
    pred = pred.reshape(-1, labels.shape[0])
    classes, slot = labels.unique(return_inverse=True)
    correct = (pred == labels).to(torch.float32)
    hits = torch.zeros(pred.shape[0], len(classes), device=pred.device).index_add_(1, slot, correct)
    counts = torch.bincount(slot, minlength=len(classes)).to(torch.float32)
    acc = (hits / counts).mean(dim=1)
    return acc[0] if squeeze else acc


def harmonic_mean(u: Tensor, s: Tensor) -> Tensor:
    """H = 2SU / (S+U), defined as 0 where both are 0."""
    return torch.where(u + s > 0, 2 * u * s / (u + s).clamp_min(1e-12), torch.zeros_like(u))


def train_softmax(
    x: Tensor, y: Tensor, n_out: int, gens: list[torch.Generator], *, epochs: int, lr: float,
    batch: int, score: Callable[[StackedLinear], Tensor],
) -> Tensor:
    """Fit a fresh stacked Linear(d -> n_out) with Adam and cross-entropy; ``score`` it after every
    epoch. ``x`` is ``[M, n, d]`` and ``y`` ``[n]`` (targets shared by all members). Returns the
    stacked scores ``[epochs, ...]``: the lineage evaluates after every classifier epoch."""
    members, n, d = x.shape
    clf = StackedLinear(members, d, n_out).to(x.device)
    clf.reset(gens)
    opt = adam(clf.parameters(), lr, (0.5, 0.999))  # lineage: Adam, betas (0.5, 0.999)
    rows = torch.arange(members, device=x.device)[:, None]
    scores = []
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
        with torch.no_grad():
            scores.append(score(clf))
    return torch.stack(scores)


def predict(clf: StackedLinear, x: Tensor, chunk: int = 8192) -> Tensor:
    """argmax class slot, ``[M, n]``; chunked so large test sets never materialise all logits."""
    return torch.cat([clf(x[:, i : i + chunk]).argmax(-1) for i in range(0, x.shape[1], chunk)], 1)


def gzsl_scores(
    train_h: Tensor, train_y: Tensor, syn_h: Tensor, syn_y: Tensor, seen_h: Tensor,
    seen_y: Tensor, unseen_h: Tensor, unseen_y: Tensor, n_classes: int,
    gens: list[torch.Generator], *, epochs: int, lr: float, batch: int,
) -> Tensor:
    """GZSL: classifier over all S+U classes on real seen + synthetic unseen features.

    Returns ``[epochs, M, 3]`` holding (U, S, H) after every classifier epoch."""

    def score(clf: StackedLinear) -> Tensor:
        u = per_class_accuracy(predict(clf, unseen_h), unseen_y)
        s = per_class_accuracy(predict(clf, seen_h), seen_y)
        return torch.stack([u, s, harmonic_mean(u, s)], dim=-1)

    x = torch.cat([train_h, syn_h], dim=1)
    y = torch.cat([train_y, syn_y])
    return train_softmax(x, y, n_classes, gens, epochs=epochs, lr=lr, batch=batch, score=score)


def czsl_scores(
    syn_h: Tensor, syn_y: Tensor, unseen_h: Tensor, unseen_y: Tensor, unseen: Tensor,
    gens: list[torch.Generator], *, epochs: int, lr: float, batch: int,
) -> Tensor:
    """CZSL (Table 3): classifier over the unseen classes only, trained on synthetic features.

    Returns ``[epochs, M]``: per-class accuracy on test_unseen after every classifier epoch."""
    slot = torch.full((int(unseen.max()) + 1,), -1, dtype=torch.long, device=unseen.device)
    slot[unseen] = torch.arange(len(unseen), device=unseen.device)
    target = slot[unseen_y]

    def score(clf: StackedLinear) -> Tensor:
        return per_class_accuracy(predict(clf, unseen_h), target)

    return train_softmax(
        syn_h, slot[syn_y], len(unseen), gens, epochs=epochs, lr=lr, batch=batch, score=score
    )


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
