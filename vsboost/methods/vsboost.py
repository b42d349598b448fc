"""VS-Boost (Li et al., IJCAI 2023): a WGAN-GP feature generator with semantic (SML, eq. 3) and
relational (RML, eq. 5-7) metric learning on features refined by an encoder E (paper §3).

Its rows (Table 4: plain, sml, rml, full) are its settings: which metric branches they train
(vsboost/config.py ``ROWS``). The losses are in losses.py, the networks in models.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from vsboost import evaluate
from vsboost.config import VSBOOST, Config, epoch_steps
from vsboost.data import Benchmark
from vsboost.losses import (
    critic_loss,
    gradient_penalty,
    relational_metric_loss,
    semantic_metric_loss,
)
from vsboost.methods.base import Method, feature_sample, synthesize
from vsboost.models import Critic, Encoder, Generator, Regressor, Relation, adam, reset_all
from vsboost.sampler import (
    EpisodeSampler,
    check_episodes,
    draw_pairs,
    member_rand,
    member_randn,
)


class VSBoost(Method):
    """VS-Boost's M stacked members: G, D and, per row, E, R, F; ``iteration`` is one generator
    iteration (critic steps with the metric nets, then the generator step). ``bench perf``
    times its steps one by one."""

    name = "vsboost"
    hparams = VSBOOST

    def __init__(self, data: Benchmark, cfg: Config, seeds: Sequence[int], dev: torch.device):
        super().__init__(data, cfg, seeds, dev)
        data = self.data
        self.sml, self.rml = cfg.settings["sml"], cfg.settings["rml"]
        att_dim, feat_dim = data.att_dim, data.feature_dim
        self.noise_dim = cfg.noise_dim or att_dim

        leak = cfg.leak
        self.G = Generator(self.members, self.noise_dim, att_dim, cfg.hidden, feat_dim,
                           leak).to(dev)
        self.D = Critic(self.members, feat_dim, att_dim, cfg.hidden, leak).to(dev)
        self.nets = {"G": self.G, "D": self.D}
        if self.sml or self.rml:
            self.nets["E"] = Encoder(self.members, feat_dim, cfg.enc_dim, leak).to(dev)
        if self.sml:
            self.nets["R"] = Regressor(self.members, cfg.enc_dim, cfg.hidden, att_dim,
                                       leak).to(dev)
        if self.rml:
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
        self.draws = self.steps * cfg.critic_steps
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
        drawn = [self.sampler.sample(g, self.draws) for g in self.rng["episodes"]]
        idx = torch.stack([d[0] for d in drawn])
        shape = (self.members, self.steps, self.cfg.critic_steps, self.batch)
        return idx.view(shape), sum(d[1] for d in drawn)

    @classmethod
    def check(cls, data: Benchmark, cfg: Config) -> None:
        check_episodes(data.train_y, cfg.n_way, cfg.k_shot, cfg.sample_with_replacement)

    def metric_losses(self, h: Tensor, y: Tensor) -> dict[str, Tensor]:
        """L_SM (eq. 3) and L_RM (eq. 5-7) per member, ``[M]`` each, of the branches the row
        trains, unweighted, for refined features h ``[M, B, enc]`` of classes y ``[M, B]``: apart,
        so that each is recorded."""
        cfg, data = self.cfg, self.data
        terms = {}
        if self.sml:
            terms["sml"] = semantic_metric_loss(self.R(h), self.sml_att, self.sml_slot[y],
                                                cfg.tau, cfg.sml_cosine)
        if self.rml:
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
            terms["rml"] = relational_metric_loss(self.Fr, h, h_pos, h_neg, t_pos, t_neg)
        return terms

    def metric_loss(self, terms: dict[str, Tensor], like: Tensor) -> Tensor:
        """λ_SM·L_SM + λ_RM·L_RM (eq. 8) of :meth:`metric_losses`, ``[M]`` (zeros like ``like``
        for a row without either)."""
        loss = torch.zeros_like(like)
        for name, term in terms.items():
            loss = loss + getattr(self.cfg, f"{name}_weight") * term
        return loss

    def diagnostics(self) -> dict[str, Tensor]:
        """The relation head's scores (:meth:`relation_scores`), rows with RML only."""
        scores = self.relation_scores()
        if scores is None:
            return {}
        return {"relation_same": scores[:, 0], "relation_other": scores[:, 1]}

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

    def iteration(self, episodes: Tensor) -> dict[str, Tensor]:
        """One generator iteration on ``episodes`` ``[M, critic_steps, N*K]``: the critic steps
        (with E, R, F updates), then one generator step. Returns the losses by name, each
        ``[M]``, left on the device: nothing here waits for the device. ``loss_metric``:
        λ_SM·L_SM + λ_RM·L_RM (eq. 8) on real features at the last critic step;
        ``loss_metric_fake``: the same on E(G(z, a)) at the generator step; ``loss_sml``,
        ``loss_rml`` (and ``_fake``): each branch's loss, unweighted."""
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
            m_terms = self.metric_losses(E(x), y) if E is not None else {}
            m_loss = self.metric_loss(m_terms, d_loss)
            for opt in opts.values():
                opt.zero_grad(set_to_none=True)
            (d_loss + m_loss).sum().backward()
            opts["D"].step()
            if "M" in opts:
                opts["M"].step()
        # Generator step on the last critic episode's classes (lineage).
        fake = G(member_randn(noise, batch, noise_dim), a)
        g_loss = -D(fake, a).mean(dim=1)
        f_terms = {}
        if E is not None and cfg.metric_on_fake:
            # Metric losses on E(G(z, a)) steer G; `inputs=` leaves E, R, F, D untouched here.
            f_terms = self.metric_losses(E(fake), y)
        f_loss = self.metric_loss(f_terms, g_loss)
        (g_loss + f_loss).sum().backward(inputs=self.g_params)
        opts["G"].step()
        return {"loss_d": d_loss.detach(), "loss_g": g_loss.detach(),
                "loss_metric": m_loss.detach(), "loss_metric_fake": f_loss.detach(),
                **{f"loss_{k}": v.detach() for k, v in m_terms.items()},
                **{f"loss_{k}_fake": v.detach() for k, v in f_terms.items()}}

    def eval_features(self) -> evaluate.EvalFeatures:
        """What the final classifiers see (docs/protocols.md): ``syn_num`` generated features per
        unseen class and every real split, all through E (the plain row classifies raw
        features), each ``[M, n, d]``; ``syn_y`` holds the synthetic labels."""
        data, members, E = self.data, self.members, self.E
        with torch.no_grad():
            syn_x, syn_y = synthesize(self.G, data.att, data.unseen, self.cfg.syn_num,
                                       self.rng["eval"], self.noise_dim)

            def refine(x: Tensor) -> Tensor:
                x = x.expand(members, -1, -1) if x.dim() == 2 else x
                return E(x) if E is not None else x

            return evaluate.EvalFeatures(
                train=refine(data.train_x), syn=refine(syn_x), syn_y=syn_y,
                seen=refine(data.test_seen_x), unseen=refine(data.test_unseen_x))

    def feature_sample(self, member: int) -> dict:
        return feature_sample(self.data, self.G, self.E, member, self.rng["figure"][member],
                              self.noise_dim)


def _take(h: Tensor, pos: Tensor) -> Tensor:
    """``h[m, pos[m, i]]`` for every member m: ``[M, B, d]``."""
    return torch.gather(h, 1, pos[..., None].expand(-1, -1, h.shape[-1]))
