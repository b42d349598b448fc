"""The interface every method implements, and what feature-generating methods share.

A method is one class (DomainBed's ``Algorithm``): it builds its networks and optimisers for M
stacked members (one per seed, models.py), draws an epoch's training batches, does one generator
iteration and returns its losses by name, and hands the final classifiers its features
(:class:`~vsboost.evaluate.EvalFeatures`: real seen features and generated unseen ones). The
generic loop (:func:`vsboost.train.train`: epochs, divergence, evaluation, history,
checkpoints) drives it and knows no method. Its hyperparameters are its block of the registry in
vsboost/config.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from vsboost import evaluate
from vsboost.config import Config, Hyperparameters
from vsboost.data import Benchmark
from vsboost.runtime import keep_freed_memory
from vsboost.sampler import STREAMS, member_randn, stream_seed, streams


class Method:
    """M stacked members of one configuration: networks, optimisers, per-member randomness.

    A subclass sets ``name`` and ``hparams`` (its registry block), builds ``nets`` and ``opts``
    in ``__init__`` after calling this one, and sets ``steps`` (generator iterations per epoch)
    and ``draws`` (training batches drawn per epoch). It implements :meth:`draw_epoch`,
    :meth:`iteration` and :meth:`eval_features`; the rest has defaults. The float32 precision and
    the dtype are not set here but by the caller (:func:`vsboost.train.train`).
    """

    name: ClassVar[str]
    hparams: ClassVar[Hyperparameters]

    def __init__(self, data: Benchmark, cfg: Config, seeds: Sequence[int], dev: torch.device):
        if dev.type != "cuda":
            keep_freed_memory()
        self.data = data.to(dev)
        self.cfg, self.members = cfg, len(seeds)
        self.seeds = [int(s) for s in seeds]
        # rng[stream][m]: member m's generator of that stream (sampler.STREAMS says who uses which)
        per_member = [streams(s, dev) for s in self.seeds]
        self.rng = {name: [g[name] for g in per_member] for name in STREAMS}
        self.nets: dict[str, torch.nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.steps = self.draws = 0

    @classmethod
    def check(cls, data: Benchmark, cfg: Config) -> None:
        """Refuse settings ``data`` cannot satisfy with a one-line ConfigError; ``bench`` calls it
        while planning, before any record is written."""

    def draw_epoch(self) -> tuple[Tensor, Tensor]:
        """One epoch's training batches, drawn up front on the device, indexed by iteration on
        dimension 1 (``[M, steps, ...]``), and the number of draws made with replacement."""
        raise NotImplementedError

    def iteration(self, batches: Tensor) -> dict[str, Tensor]:
        """One generator iteration on ``batches`` (one slice of :meth:`draw_epoch` along dim 1):
        its losses by name, each ``[M]``, left on the device. The names become history keys."""
        raise NotImplementedError

    def eval_features(self) -> evaluate.EvalFeatures:
        """What the final classifiers see (docs/protocols.md), each ``[M, n, d]``."""
        raise NotImplementedError

    def diagnostics(self) -> dict[str, Tensor]:
        """Values of what the method has learnt, recorded in the history at every evaluation:
        ``{name: [M]}`` on the host; none by default."""
        return {}

    def feature_sample(self, member: int) -> dict[str, np.ndarray] | None:
        """Figure 4 material for one member (:func:`feature_sample`), or None."""
        return None

    def evaluate(self, epoch: int) -> tuple[Tensor, Tensor]:
        """GZSL ``[cls_epochs, M, 3]`` and CZSL ``[cls_epochs, M]`` scores of the current
        generator after generator epoch ``epoch``, on the host. The eval stream restarts from
        (seed, epoch): an evaluation depends on no other evaluation, nor on how many there were."""
        for g, seed in zip(self.rng["eval"], self.seeds):
            g.manual_seed(stream_seed(seed, "eval", epoch))
        gzsl, czsl = evaluate.scores(self.eval_features(), self.data, self.rng["eval"],
                                     **evaluate.fit_settings(self.cfg))
        return gzsl.cpu(), czsl.cpu()

    def state_dict(self) -> dict:
        # get_state() is a CPU uint8 tensor whatever the generator's device.
        return {"nets": {k: n.state_dict() for k, n in self.nets.items()},
                "opts": {k: o.state_dict() for k, o in self.opts.items()},
                "rng": {name: [g.get_state().cpu() for g in gens]
                        for name, gens in self.rng.items()}}

    def load_state_dict(self, state: dict) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.opts.items():
            opt.load_state_dict(state["opts"][k])
        # torch.load(map_location=...) moves the saved states to the device with everything else,
        # but set_state takes a CPU uint8 tensor only, CUDA generators included.
        for name, gens in self.rng.items():
            for g, s in zip(gens, state["rng"][name], strict=True):
                g.set_state(s.cpu())

    @classmethod
    def code_modules(cls) -> tuple[str, ...]:
        """The modules of this method whose code decides its numbers, beside the shared ones
        (vsboost.fingerprint.METHOD_MODULES): this interface and the method's own module."""
        return ("vsboost.methods.base", cls.__module__)

    def check_rng_kind(self, state: dict, path) -> None:
        """Refuse a checkpoint whose generator states are of another device kind: a CPU
        generator's state (Mersenne Twister, 5,056 bytes) cannot continue a CUDA one (Philox,
        16 bytes) or the reverse, and no mapping would give the draws an uninterrupted run on
        either kind makes. A choice (docs/harness.md): refused in one line with the fix."""
        from vsboost.train import CheckpointError  # train imports the methods

        for name, gens in self.rng.items():
            for g, s in zip(gens, state["rng"][name], strict=True):
                if s.numel() != g.get_state().numel():
                    here = self.data.train_x.device.type
                    raise CheckpointError(
                        f"{path}: checkpoint written on another kind of device than {here} (its "
                        f"{name!r} generator state has {s.numel()} bytes, {here}'s has "
                        f"{g.get_state().numel()}); fix: resume it on the device kind that "
                        "wrote it (--device), or delete it to restart on this one")


# ===== shared by the methods that generate features with a conditional G(z, a) =====
def synthesize(G, att: Tensor, classes: Tensor, per_class: int, gens, noise_dim: int):
    """``per_class`` generated features per class, ``[M, len(classes) * per_class, d]``, labels."""
    labels = classes.repeat_interleave(per_class)
    z = member_randn(gens, len(labels), noise_dim)
    return G(z, att[labels].expand(len(gens), -1, -1)), labels


def feature_sample(data: Benchmark, G, E, member: int, gen: torch.Generator, noise_dim: int,
                   n_classes: int = 10, per_class: int = 50) -> dict[str, np.ndarray]:
    """Figure 4 material for one member: real vs synthetic unseen features and seen features,
    before and after E (the identity without one), for at most ``n_classes`` classes. ``gen`` is
    the member's figure stream, so asking for it changes no reported number."""

    def first(x: Tensor, y: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        keep = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in classes])
        return x[keep], y[keep]

    unseen = data.unseen[:n_classes]
    seen = data.seen[:n_classes]
    with torch.no_grad():
        ru_x, ru_y = first(data.test_unseen_x, data.test_unseen_y, unseen)
        s_x, s_y = first(data.test_seen_x, data.test_seen_y, seen)
        labels = unseen.repeat_interleave(per_class)
        members = G.fc1.weight.shape[0]
        # Member m's z alone, given to every member's G: the sample ignores the other members.
        z = torch.randn(len(labels), noise_dim, generator=gen, device=gen.device)
        z = z.expand(members, -1, -1)
        su_x = G(z, data.att[labels].expand(members, -1, -1))[member]

        def refine(x: Tensor) -> Tensor:
            return E(x.expand(members, -1, -1))[member] if E is not None else x

        out = {
            "real_unseen_raw": ru_x, "real_unseen_refined": refine(ru_x), "real_unseen_y": ru_y,
            "syn_unseen_raw": su_x, "syn_unseen_refined": refine(su_x), "syn_unseen_y": labels,
            "seen_raw": s_x, "seen_refined": refine(s_x), "seen_y": s_y,
        }
    return {k: v.cpu().numpy() for k, v in out.items()}
