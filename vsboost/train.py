"""One VS-Boost training, top to bottom: set-up, the WGAN-GP + metric-learning loop, evaluation.

``train(data, cfg, seeds)`` trains ``len(seeds)`` independent members in one pass (stacked weights,
see models.py) and returns one :class:`RunResult` per seed. A single seed is simply M = 1.
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
from vsboost.config import Config
from vsboost.data import Benchmark
from vsboost.losses import (
    critic_loss,
    gradient_penalty,
    relational_metric_loss,
    semantic_metric_loss,
)
from vsboost.models import Critic, Encoder, Generator, Regressor, Relation, reset_all
from vsboost.sampler import EpisodeSampler, draw_pairs, member_rand, member_randn

BETA2 = 0.999  # lineage: Adam betas (0.5, 0.999)


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
    feature_sample: bool = False,
) -> list[RunResult]:
    # ===== set-up =====
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 tensor cores: ~8x fp32 on A100/H100
    data = data.to(dev)
    members = len(seeds)
    gens = [torch.Generator(dev).manual_seed(int(s)) for s in seeds]
    att_dim, feat_dim = data.att_dim, data.feature_dim
    noise_dim = cfg.noise_dim or att_dim

    G = Generator(members, noise_dim, att_dim, cfg.hidden, feat_dim).to(dev)
    D = Critic(members, feat_dim, att_dim, cfg.hidden).to(dev)
    nets = {"G": G, "D": D}
    if cfg.uses_encoder:
        nets["E"] = Encoder(members, feat_dim, cfg.enc_dim).to(dev)
    if cfg.sml:
        nets["R"] = Regressor(members, cfg.enc_dim, cfg.hidden, att_dim).to(dev)
    if cfg.rml:
        nets["F"] = Relation(members, cfg.enc_dim).to(dev)
    reset_all(list(nets.values()), gens)
    E, R, Fr = nets.get("E"), nets.get("R"), nets.get("F")

    betas = (cfg.beta1, BETA2)
    opts = {"G": torch.optim.Adam(G.parameters(), lr=cfg.lr_gan, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=cfg.lr_gan, betas=betas)}
    metric_params = [p for k in ("E", "R", "F") if k in nets for p in nets[k].parameters()]
    if metric_params:
        opts["M"] = torch.optim.Adam(metric_params, lr=cfg.lr_metric, betas=betas)
    g_params = list(G.parameters())

    sampler = EpisodeSampler(data.train_y, cfg.n_way, cfg.k_shot, cfg.sample_with_replacement)
    batch = sampler.batch_size
    steps = cfg.steps_per_epoch or max(1, len(data.train_y) // batch)
    episodes = steps * cfg.critic_steps
    # SML candidates: all S+U class embeddings by default (paper: "all semantic embeddings").
    sml_att = data.att if cfg.sml_over == "all" else data.att[data.seen]
    sml_slot = torch.arange(data.n_classes, device=dev)
    if cfg.sml_over == "seen":
        sml_slot[data.seen] = torch.arange(len(data.seen), device=dev)
    unit_att = F.normalize(data.att, dim=-1)  # RML targets are cosines of class embeddings
    outside_negatives = cfg.n_way == 1  # a 1-way episode (FLO) holds no other class

    def metric_losses(h: Tensor, y: Tensor) -> Tensor:
        """L_SM + L_RM per member for refined features h ``[M, B, enc]`` of classes y ``[M, B]``."""
        loss = h.new_zeros(members)
        if cfg.sml:
            loss = loss + semantic_metric_loss(R(h), sml_att, sml_slot[y], cfg.tau, cfg.sml_cosine)
        if cfg.rml:
            pos, neg = draw_pairs(gens, y)
            h_pos, y_pos = _take(h, pos), torch.gather(y, 1, pos)
            if outside_negatives:
                idx = torch.stack([sampler.outside(g, y[m]) for m, g in enumerate(gens)])
                h_neg, y_neg = E(data.train_x[idx]), data.train_y[idx]
            else:
                h_neg, y_neg = _take(h, neg), torch.gather(y, 1, neg)
            t_pos = (unit_att[y] * unit_att[y_pos]).sum(-1)
            t_neg = (unit_att[y] * unit_att[y_neg]).sum(-1)
            loss = loss + relational_metric_loss(Fr, h, h_pos, h_neg, t_pos, t_neg)
        return loss

    start_epoch, history, diverged = 0, [[] for _ in seeds], [None] * members
    repl_draws, wall_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=dev, weights_only=False)
        if state["seeds"] != list(seeds) or state["config_hash"] != cfg.hash():
            raise ValueError(f"{checkpoint}: checkpoint belongs to another run; delete it")
        for k, net in nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in opts.items():
            opt.load_state_dict(state["opts"][k])
        for g, s in zip(gens, state["gens"]):
            g.set_state(s.cpu() if dev.type == "cpu" else s)
        start_epoch, history, diverged = state["epoch"], state["history"], state["diverged"]
        repl_draws, wall_before = state["repl_draws"], state["wall_s"]
    t0 = time.perf_counter()

    # ===== training =====
    for epoch in range(start_epoch, cfg.gan_epochs):
        # One epoch of episodes drawn up front, on the device: the step has no sampling code.
        drawn = [sampler.sample(g, episodes) for g in gens]
        idx = torch.stack([d[0] for d in drawn])  # [M, episodes, N*K]
        repl = sum(d[1] for d in drawn)
        sums = torch.zeros(members, 4, device=dev)  # loss_d, loss_g, metric(real), metric(fake)
        for it in range(steps):
            for c in range(cfg.critic_steps):
                b = idx[:, it * cfg.critic_steps + c]
                x, y = data.train_x[b], data.train_y[b]
                a = data.att[y]
                with torch.no_grad():
                    fake = G(member_randn(gens, batch, noise_dim), a)
                alpha = member_rand(gens, batch, 1)
                penalty = gradient_penalty(D, x, fake, a, alpha)
                d_loss = critic_loss(D(x, a), D(fake, a), penalty, cfg.gp_weight)
                # E, R, F learn on real features at every critic step (SPEC §4, lineage CE-GZSL);
                # they share no parameter with D, so one backward serves both optimisers.
                m_loss = metric_losses(E(x), y) if E is not None else torch.zeros_like(d_loss)
                for opt in opts.values():
                    opt.zero_grad(set_to_none=True)
                (d_loss + m_loss).sum().backward()
                opts["D"].step()
                if "M" in opts:
                    opts["M"].step()
            # Generator step on the last critic episode's classes (lineage).
            fake = G(member_randn(gens, batch, noise_dim), a)
            g_loss = -D(fake, a).mean(dim=1)
            f_loss = torch.zeros_like(g_loss)
            if E is not None and cfg.metric_on_fake:
                # Metric losses on E(G(z, a)) steer G; `inputs=` leaves E, R, F, D untouched here.
                f_loss = metric_losses(E(fake), y)
            (g_loss + f_loss).sum().backward(inputs=g_params)
            opts["G"].step()
            sums += torch.stack([d_loss, g_loss, m_loss, f_loss], dim=1).detach()

        # ===== end of epoch: the only host synchronisation =====
        repl_draws += int(repl)
        losses = (sums / steps).cpu()
        for m in range(members):
            if diverged[m] is None and not torch.isfinite(losses[m]).all():
                diverged[m] = epoch + 1
        if all(d is not None for d in diverged):
            break
        last = epoch + 1 == cfg.gan_epochs
        if (epoch + 1) % cfg.eval_every == 0 or last:
            gzsl, czsl = _evaluate(data, cfg, G, E, gens, noise_dim)
            for m in range(members):
                if diverged[m] is None:
                    entry = evaluate.epoch_entry(epoch + 1, gzsl[:, m], czsl[:, m])
                    entry.update(dict(zip(("loss_d", "loss_g", "loss_metric", "loss_metric_fake"),
                                          losses[m].tolist())))
                    entry["wall_s"] = wall_before + time.perf_counter() - t0
                    history[m].append(entry)
        due = cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0
        if checkpoint is not None and due:
            _save(checkpoint, {
                "epoch": epoch + 1, "seeds": list(seeds), "config_hash": cfg.hash(),
                "nets": {k: n.state_dict() for k, n in nets.items()},
                "opts": {k: o.state_dict() for k, o in opts.items()},
                "gens": [g.get_state() for g in gens], "history": history, "diverged": diverged,
                "repl_draws": repl_draws, "wall_s": wall_before + time.perf_counter() - t0,
            })
        if progress is not None:
            progress(epoch + 1, cfg.gan_epochs)

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
            sampler={"episodes": episodes * cfg.gan_epochs, "with_replacement_draws": repl_draws},
            wall_s=wall,
            features=_feature_sample(data, G, E, m, int(seed), noise_dim)
            if feature_sample and ok else None,
        ))
    return results


def _take(h: Tensor, pos: Tensor) -> Tensor:
    """``h[m, pos[m, i]]`` for every member m: ``[M, B, d]``."""
    return torch.gather(h, 1, pos[..., None].expand(-1, -1, h.shape[-1]))


def _synthesize(G, att: Tensor, classes: Tensor, per_class: int, gens, noise_dim: int):
    """``per_class`` generated features per class, ``[M, len(classes) * per_class, d]``, labels."""
    labels = classes.repeat_interleave(per_class)
    z = member_randn(gens, len(labels), noise_dim)
    return G(z, att[labels].expand(len(gens), -1, -1)), labels


def _evaluate(data: Benchmark, cfg: Config, G, E, gens, noise_dim: int) -> tuple[Tensor, Tensor]:
    """GZSL ``[cls_epochs, M, 3]`` and CZSL ``[cls_epochs, M]`` scores of the current generator."""
    members = len(gens)
    with torch.no_grad():
        syn_x, syn_y = _synthesize(G, data.att, data.unseen, cfg.syn_num, gens, noise_dim)

        def refine(x: Tensor) -> Tensor:  # the plain row classifies raw features
            x = x.expand(members, -1, -1) if x.dim() == 2 else x
            return E(x) if E is not None else x

        train_h, syn_h = refine(data.train_x), refine(syn_x)
        seen_h, unseen_h = refine(data.test_seen_x), refine(data.test_unseen_x)
    kw = {"epochs": cfg.cls_epochs, "lr": cfg.cls_lr, "batch": cfg.cls_batch or cfg.syn_num}
    gzsl = evaluate.gzsl_scores(train_h, data.train_y, syn_h, syn_y, seen_h, data.test_seen_y,
                                unseen_h, data.test_unseen_y, data.n_classes, gens, **kw)
    czsl = evaluate.czsl_scores(syn_h, syn_y, unseen_h, data.test_unseen_y, data.unseen, gens, **kw)
    return gzsl.cpu(), czsl.cpu()


def _feature_sample(data: Benchmark, G, E, member: int, seed: int, noise_dim: int,
                    n_classes: int = 10, per_class: int = 50) -> dict[str, np.ndarray]:
    """Figure 4 material for one member: real vs synthetic unseen features and seen features,
    before and after E, for at most ``n_classes`` classes. Uses its own generator so that asking
    for it changes no reported number."""
    gen = torch.Generator(data.train_x.device).manual_seed(seed + 1)

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
        z = torch.randn(members, len(labels), noise_dim, generator=gen, device=gen.device)
        su_x = G(z, data.att[labels].expand(members, -1, -1))[member]

        def refine(x: Tensor) -> Tensor:
            return E(x.expand(members, -1, -1))[member] if E is not None else x

        out = {
            "real_unseen_raw": ru_x, "real_unseen_refined": refine(ru_x), "real_unseen_y": ru_y,
            "syn_unseen_raw": su_x, "syn_unseen_refined": refine(su_x), "syn_unseen_y": labels,
            "seen_raw": s_x, "seen_refined": refine(s_x), "seen_y": s_y,
        }
    return {k: v.cpu().numpy() for k, v in out.items()}


def _save(path: Path, state: dict) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint intact."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
