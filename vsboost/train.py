"""One VS-Boost training, top to bottom: set-up, the WGAN-GP + metric-learning loop, evaluation.

``train(data, cfg, seeds)`` trains ``len(seeds)`` independent members in one pass (stacked weights,
see models.py) and returns one :class:`RunResult` per seed. A single seed is simply M = 1.
:class:`VSBoost` holds what one pass trains and does one generator iteration or one evaluation at
a time; ``train`` is the loop around it (epochs, divergence, history, checkpoints). Each member
draws its randomness from named streams of its seed (sampler.py); the float32 precision is the
run's setting, restored when it ends (runtime.py).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from vsboost import evaluate
from vsboost.config import Config, epoch_steps
from vsboost.data import Benchmark
from vsboost.errors import UserError
from vsboost.losses import (
    critic_loss,
    gradient_penalty,
    relational_metric_loss,
    semantic_metric_loss,
)
from vsboost.models import Critic, Encoder, Generator, Regressor, Relation, adam, reset_all
from vsboost.runtime import effective, keep_freed_memory, run_dtype, run_precision
from vsboost.sampler import (
    STREAMS,
    EpisodeSampler,
    draw_pairs,
    member_rand,
    member_randn,
    stream_seed,
    streams,
)

# What VSBoost.iteration returns per member, in order: the critic's and the generator's WGAN
# losses, then L_SM and L_RM on real features (what E, R, F train on) and on E(G(z, a)) (what
# reaches G).
LOSSES = ("loss_d", "loss_g", "loss_sml", "loss_rml", "loss_sml_fake", "loss_rml_fake")


def loss_entry(losses: Tensor, cfg: Config) -> dict:
    """One member's epoch-mean losses for its history: the branches the row trains, and their
    sums ``loss_metric`` (real) and ``loss_metric_fake``, as recorded before the two were apart
    (a baseline comparison watches ``loss_metric``)."""
    values = dict(zip(LOSSES, losses.tolist(), strict=True))
    out = {"loss_d": values["loss_d"], "loss_g": values["loss_g"],
           "loss_metric": values["loss_sml"] + values["loss_rml"],
           "loss_metric_fake": values["loss_sml_fake"] + values["loss_rml_fake"]}
    for branch in ("sml", "rml"):
        if getattr(cfg, branch):
            out[f"loss_{branch}"] = values[f"loss_{branch}"]
            out[f"loss_{branch}_fake"] = values[f"loss_{branch}_fake"]
    return out


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
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train(
    data: Benchmark, cfg: Config, seeds: Sequence[int], *, device=None,
    checkpoint: Path | None = None, progress: Callable[[int, int], None] | None = None,
    feature_sample: bool = False, points: Sequence[dict | None] | None = None,
    log: Callable[[int, int, list[dict | None]], None] | None = None,
) -> list[RunResult]:
    """Train one member per seed of ``seeds`` with ``cfg`` on ``data``; resume from ``checkpoint``
    when it exists and write it every ``cfg.checkpoint_every`` epochs. ``progress(epoch, total)``
    runs after every epoch; ``feature_sample`` adds Figure 4 material to the results.
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
    model = VSBoost(data, cfg, seeds, dev)
    data, members = model.data, model.members
    start_epoch, history, diverged = 0, [[] for _ in seeds], [None] * members
    repl_draws, wall_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, dev)
        if state["seeds"] != list(seeds) or state["config_hash"] != cfg.hash():
            raise CheckpointError(f"{checkpoint}: checkpoint belongs to another run; fix: "
                                  "delete it")
        model.load_state_dict(state)
        start_epoch, history, diverged = state["epoch"], state["history"], state["diverged"]
        repl_draws, wall_before = state["repl_draws"], state["wall_s"]
    t0 = time.perf_counter()

    # ===== training =====
    for epoch in range(start_epoch, cfg.gan_epochs):
        episodes, repl = model.draw_epoch()  # [M, steps, critic_steps, N*K] image indices
        sums = torch.zeros(members, len(LOSSES), device=dev)
        for it in range(model.steps):
            sums += model.iteration(episodes[:, it])

        # ===== end of epoch: the only host synchronisation =====
        repl_draws += int(repl)
        losses = (sums / model.steps).cpu()
        for m in range(members):
            if diverged[m] is None and not torch.isfinite(losses[m]).all():
                diverged[m] = epoch + 1
        if all(d is not None for d in diverged):
            break
        last = epoch + 1 == cfg.gan_epochs
        if (epoch + 1) % cfg.eval_every == 0 or last:
            gzsl, czsl = model.evaluate(epoch + 1)  # its own stream: training never sees it
            relation = model.relation_scores()
            for m in range(members):
                if diverged[m] is None:
                    entry = evaluate.epoch_entry(epoch + 1, gzsl[:, m], czsl[:, m])
                    if points is not None and points[m] is not None:
                        entry.update(evaluate.at_points(points[m], epoch + 1, gzsl[:, m],
                                                        czsl[:, m]))
                    entry.update(loss_entry(losses[m], cfg))
                    if relation is not None:
                        entry["relation_same"], entry["relation_other"] = relation[m].tolist()
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
                {"losses": loss_entry(losses[m], cfg), **timing,
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
            sampler={"episodes": model.episodes * cfg.gan_epochs,
                     "with_replacement_draws": repl_draws},
            wall_s=wall,
            features=_feature_sample(data, model.G, model.E, m, model.rng["figure"][m],
                                     model.noise_dim) if feature_sample and ok else None,
        ))
    return results


class VSBoost:
    """M stacked members of one configuration: networks, optimisers, per-member randomness.

    ``iteration`` is one generator iteration and ``evaluate`` the per-epoch classifier fit and
    test; :func:`train` drives them, ``bench perf`` times them one by one. The float32 precision
    is not set here but by the caller (:func:`vsboost.runtime.run_precision`).
    """

    def __init__(self, data: Benchmark, cfg: Config, seeds: Sequence[int], dev: torch.device):
        if dev.type != "cuda":
            keep_freed_memory()
        self.data = data = data.to(dev)
        self.cfg, self.members = cfg, len(seeds)
        self.seeds = [int(s) for s in seeds]
        # rng[stream][m]: member m's generator of that stream (sampler.STREAMS says who uses which)
        per_member = [streams(s, dev) for s in self.seeds]
        self.rng = {name: [g[name] for g in per_member] for name in STREAMS}
        att_dim, feat_dim = data.att_dim, data.feature_dim
        self.noise_dim = cfg.noise_dim or att_dim

        leak = cfg.leak
        self.G = Generator(self.members, self.noise_dim, att_dim, cfg.hidden, feat_dim,
                           leak).to(dev)
        self.D = Critic(self.members, feat_dim, att_dim, cfg.hidden, leak).to(dev)
        self.nets = {"G": self.G, "D": self.D}
        if cfg.uses_encoder:
            self.nets["E"] = Encoder(self.members, feat_dim, cfg.enc_dim, leak).to(dev)
        if cfg.sml:
            self.nets["R"] = Regressor(self.members, cfg.enc_dim, cfg.hidden, att_dim,
                                       leak).to(dev)
        if cfg.rml:
            self.nets["F"] = Relation(self.members, cfg.enc_dim).to(dev)
        reset_all(list(self.nets.values()), self.rng["init"], cfg.init_std)
        self.E, self.R, self.Fr = (self.nets.get(k) for k in "ERF")

        betas = (cfg.beta1, cfg.beta2)
        self.opts = {"G": adam(self.G.parameters(), cfg.lr_gan, betas),
                     "D": adam(self.D.parameters(), cfg.lr_gan, betas)}
        metric_params = [p for k in "ERF" if k in self.nets for p in self.nets[k].parameters()]
        if metric_params:
            self.opts["M"] = adam(metric_params, cfg.lr_metric, betas)
        self.g_params = list(self.G.parameters())

        self.sampler = EpisodeSampler(data.train_y, cfg.n_way, cfg.k_shot,
                                      cfg.sample_with_replacement)
        self.batch = self.sampler.batch_size
        self.steps = epoch_steps(cfg, len(data.train_y))
        self.episodes = self.steps * cfg.critic_steps
        # SML candidates: all S+U class embeddings by default (paper: "all semantic embeddings").
        self.sml_att = data.att if cfg.sml_over == "all" else data.att[data.seen]
        self.sml_slot = torch.arange(data.n_classes, device=dev)
        if cfg.sml_over == "seen":
            self.sml_slot[data.seen] = torch.arange(len(data.seen), device=dev)
        self.unit_att = F.normalize(data.att, dim=-1)  # RML targets: cosines of class embeddings
        self.outside_negatives = cfg.n_way == 1  # a 1-way episode (FLO) holds no other class

    def draw_epoch(self) -> tuple[Tensor, Tensor]:
        """One epoch of episodes drawn up front, on the device, so the step has no sampling code:
        indices ``[M, steps, critic_steps, N*K]`` and the with-replacement count (0-d tensor)."""
        drawn = [self.sampler.sample(g, self.episodes) for g in self.rng["episodes"]]
        idx = torch.stack([d[0] for d in drawn])
        shape = (self.members, self.steps, self.cfg.critic_steps, self.batch)
        return idx.view(shape), sum(d[1] for d in drawn)

    def metric_losses(self, h: Tensor, y: Tensor) -> Tensor:
        """L_SM and L_RM per member, ``[M, 2]`` (0 for a branch the row lacks), for refined
        features h ``[M, B, enc]`` of classes y ``[M, B]``: apart, so that each is recorded."""
        cfg, data = self.cfg, self.data
        sml = rml = h.new_zeros(self.members)
        if cfg.sml:
            sml = semantic_metric_loss(self.R(h), self.sml_att, self.sml_slot[y], cfg.tau,
                                       cfg.sml_cosine)
        if cfg.rml:
            pairs = self.rng["pairs"]
            pos, neg = draw_pairs(pairs, y)
            h_pos, y_pos = _take(h, pos), torch.gather(y, 1, pos)
            if self.outside_negatives:
                idx = torch.stack([self.sampler.outside(g, y[m]) for m, g in enumerate(pairs)])
                h_neg, y_neg = self.E(data.train_x[idx]), data.train_y[idx]
            else:
                h_neg, y_neg = _take(h, neg), torch.gather(y, 1, neg)
            t_pos = (self.unit_att[y] * self.unit_att[y_pos]).sum(-1)
            t_neg = (self.unit_att[y] * self.unit_att[y_neg]).sum(-1)
            rml = relational_metric_loss(self.Fr, h, h_pos, h_neg, t_pos, t_neg)
        return torch.stack([sml, rml], dim=1)

    def relation_scores(self) -> Tensor | None:
        """What the relation head F has learnt (rows with RML), on the host: per member the mean
        F(h_i, h_j) after the sigmoid over pairs of real training images of the same class and of
        neighbouring classes, ``[M, 2]``. RML trains it towards cos(a_i, a_j), so 1 for the same
        class. A fixed probe (the first two images of each seen class): it draws no randomness."""
        if self.Fr is None:
            return None
        keep = self.sampler.counts >= 2
        first = self.sampler.starts[keep]
        probe = self.sampler.by_class[torch.stack([first, first + 1], 1)]  # [C, 2]
        with torch.no_grad():
            h = self.E(self.data.train_x[probe.flatten()].expand(self.members, -1, -1))
            a, b = h[:, 0::2], h[:, 1::2]
            same = torch.sigmoid(self.Fr(a, b)).mean(1)
            other = torch.sigmoid(self.Fr(a, b.roll(1, dims=1))).mean(1)
        return torch.stack([same, other], 1).cpu()

    def iteration(self, episodes: Tensor) -> Tensor:
        """One generator iteration on ``episodes`` ``[M, critic_steps, N*K]``: the critic steps
        (with E, R, F updates), then one generator step. Returns the losses ``[M, 6]``
        (:data:`LOSSES`), left on the device: nothing here waits for the device."""
        cfg, data, G, D, E, opts = self.cfg, self.data, self.G, self.D, self.E, self.opts
        batch, noise_dim, noise = self.batch, self.noise_dim, self.rng["noise"]
        for c in range(cfg.critic_steps):
            b = episodes[:, c]
            x, y = data.train_x[b], data.train_y[b]
            a = data.att[y]
            with torch.no_grad():
                fake = G(member_randn(noise, batch, noise_dim), a)
            alpha = member_rand(noise, batch, 1)
            penalty = gradient_penalty(D, x, fake, a, alpha)
            # Real and fake through D as one batch: its widest weight is read once, not twice.
            d_real, d_fake = D(torch.cat([x, fake], 1), torch.cat([a, a], 1)).split(batch, 1)
            d_loss = critic_loss(d_real, d_fake, penalty, cfg.gp_weight)
            # E, R, F learn on real features at every critic step (lineage CE-GZSL; docs/method.md);
            # they share no parameter with D, so one backward serves both optimisers.
            m_terms = (self.metric_losses(E(x), y) if E is not None
                       else d_loss.new_zeros(self.members, 2))
            for opt in opts.values():
                opt.zero_grad(set_to_none=True)
            (d_loss + m_terms.sum(1)).sum().backward()
            opts["D"].step()
            if "M" in opts:
                opts["M"].step()
        # Generator step on the last critic episode's classes (lineage).
        fake = G(member_randn(noise, batch, noise_dim), a)
        g_loss = -D(fake, a).mean(dim=1)
        f_loss = g_loss.new_zeros(self.members, 2)
        if E is not None and cfg.metric_on_fake:
            # Metric losses on E(G(z, a)) steer G; `inputs=` leaves E, R, F, D untouched here.
            f_loss = self.metric_losses(E(fake), y)
        (g_loss + f_loss.sum(1)).sum().backward(inputs=self.g_params)
        opts["G"].step()
        return torch.cat([torch.stack([d_loss, g_loss], 1), m_terms, f_loss], 1).detach()

    def eval_features(self) -> evaluate.EvalFeatures:
        """What the final classifiers see (docs/protocols.md): ``syn_num`` generated features per
        unseen class and every real split, all through E (the plain row classifies raw
        features), each ``[M, n, d]``; ``syn_y`` holds the synthetic labels."""
        data, members, E = self.data, self.members, self.E
        with torch.no_grad():
            syn_x, syn_y = _synthesize(self.G, data.att, data.unseen, self.cfg.syn_num,
                                       self.rng["eval"], self.noise_dim)

            def refine(x: Tensor) -> Tensor:
                x = x.expand(members, -1, -1) if x.dim() == 2 else x
                return E(x) if E is not None else x

            return evaluate.EvalFeatures(
                train=refine(data.train_x), syn=refine(syn_x), syn_y=syn_y,
                seen=refine(data.test_seen_x), unseen=refine(data.test_unseen_x))

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


def _take(h: Tensor, pos: Tensor) -> Tensor:
    """``h[m, pos[m, i]]`` for every member m: ``[M, B, d]``."""
    return torch.gather(h, 1, pos[..., None].expand(-1, -1, h.shape[-1]))


def _synthesize(G, att: Tensor, classes: Tensor, per_class: int, gens, noise_dim: int):
    """``per_class`` generated features per class, ``[M, len(classes) * per_class, d]``, labels."""
    labels = classes.repeat_interleave(per_class)
    z = member_randn(gens, len(labels), noise_dim)
    return G(z, att[labels].expand(len(gens), -1, -1)), labels


def _feature_sample(data: Benchmark, G, E, member: int, gen: torch.Generator, noise_dim: int,
                    n_classes: int = 10, per_class: int = 50) -> dict[str, np.ndarray]:
    """Figure 4 material for one member: real vs synthetic unseen features and seen features,
    before and after E, for at most ``n_classes`` classes. ``gen`` is the member's figure stream,
    so asking for it changes no reported number."""

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
    """Atomic: a kill during the write leaves the previous checkpoint intact."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
