"""f-CLSWGAN (Xian et al., CVPR 2018, "Feature Generating Networks for Zero-Shot Learning"),
rerun beside VS-Boost on the same data, seeds, budgets and protocols.

A conditional WGAN-GP generates CNN features from class embeddings: G(z, a) -> x~ and a critic
D(x, a), each one hidden layer with LeakyReLU (the networks of models.py, which VS-Boost shares),
trained with the gradient penalty (its eq. 2, lambda = 10). Its generator also minimises the
cross-entropy of a softmax classifier, pre-trained on the seen classes' real features and then
frozen, on its generated features (its eq. 4, weight beta = ``cls_weight`` per dataset). The
final classifiers are the suite's (evaluate.py), trained on real seen and generated unseen
features. Hyperparameters and their sources: vsboost/config.py, ``FCLSWGAN``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from vsboost import evaluate
from vsboost.config import FCLSWGAN as HPARAMS
from vsboost.config import Config, ConfigError, epoch_steps
from vsboost.data import Benchmark
from vsboost.losses import critic_loss, gradient_penalty
from vsboost.methods.base import Method, feature_sample, synthesize
from vsboost.models import Critic, Generator, adam, reset_all
from vsboost.sampler import member_rand, member_randn


def classification_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Eq. 4's L_CLS: the pre-trained classifier's cross-entropy on generated features, per
    member. ``logits`` ``[M, B, S]`` over the seen classes, ``target`` ``[M, B]`` seen slots."""
    return F.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(dim=1)


class FCLSWGAN(Method):
    """f-CLSWGAN's M stacked members: G, D and the frozen seen-class classifier P."""

    name = "fclswgan"
    hparams = HPARAMS

    def __init__(self, data: Benchmark, cfg: Config, seeds: Sequence[int], dev: torch.device):
        super().__init__(data, cfg, seeds, dev)
        data = self.data
        att_dim, feat_dim = data.att_dim, data.feature_dim
        self.noise_dim = cfg.noise_dim or att_dim
        self.G = Generator(self.members, self.noise_dim, att_dim, cfg.hidden, feat_dim,
                           cfg.leak).to(dev)
        self.D = Critic(self.members, feat_dim, att_dim, cfg.hidden, cfg.leak).to(dev)
        reset_all([self.G, self.D], self.rng["init"], cfg.init_std)
        # The seen-class softmax classifier, trained before the GAN on real features (its §3.2)
        # from the init stream, after G and D: a member's G and D start as VS-Boost's do.
        self.seen_slot = torch.full((data.n_classes,), -1, dtype=torch.long, device=dev)
        self.seen_slot[data.seen] = torch.arange(len(data.seen), device=dev)
        train_x = data.train_x.expand(self.members, -1, -1)
        *_, trained = evaluate.fit_softmax(
            train_x, self.seen_slot[data.train_y], len(data.seen), self.rng["init"],
            epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr, batch=cfg.pretrain_batch,
            betas=(cfg.cls_beta1, cfg.cls_beta2), init_std=cfg.init_std)
        self.P = trained.requires_grad_(False)
        self.nets = {"G": self.G, "D": self.D, "P": self.P}
        betas = (cfg.beta1, cfg.beta2)
        self.opts = {"G": adam(self.G.parameters(), cfg.lr_gan, betas),
                     "D": adam(self.D.parameters(), cfg.lr_gan, betas)}
        self.g_params = list(self.G.parameters())
        self.batch = cfg.batch_size
        self.steps = epoch_steps(cfg, len(data.train_y))
        self.draws = self.steps * cfg.critic_steps

    @classmethod
    def check(cls, data: Benchmark, cfg: Config) -> None:
        if cfg.batch_size > len(data.train_y):
            raise ConfigError(f"config key 'batch_size': expected at most the "
                              f"{len(data.train_y)} trainval images of {data.name}, found "
                              f"{cfg.batch_size}; e.g. --set batch_size=64")

    def draw_epoch(self) -> tuple[Tensor, Tensor]:
        """Random minibatches of trainval, distinct images within a batch (lineage): indices
        ``[M, steps, critic_steps, batch_size]``; none is drawn with replacement."""
        n = len(self.data.train_y)
        idx = torch.stack([
            torch.stack([torch.randperm(n, generator=g, device=g.device)[:self.batch]
                         for _ in range(self.draws)]) for g in self.rng["episodes"]])
        shape = (self.members, self.steps, self.cfg.critic_steps, self.batch)
        return idx.view(shape), torch.zeros((), dtype=torch.long)

    def iteration(self, batches: Tensor) -> dict[str, Tensor]:
        """``critic_steps`` critic updates, each on a batch of its own, then one generator update
        on the last batch's classes: -E[D(G(z, a))] + beta L_CLS (its eq. 4)."""
        cfg, data, G, D, opts = self.cfg, self.data, self.G, self.D, self.opts
        batch, noise = self.batch, self.rng["noise"]
        for c in range(cfg.critic_steps):
            b = batches[:, c]
            x, y = data.train_x[b], data.train_y[b]
            a = data.att[y]
            with torch.no_grad():
                fake = G(member_randn(noise, batch, self.noise_dim), a)
            penalty = gradient_penalty(D, x, fake, a, member_rand(noise, batch, 1))
            d_real, d_fake = D(torch.cat([x, fake], 1), torch.cat([a, a], 1)).split(batch, 1)
            d_loss = critic_loss(d_real, d_fake, penalty, cfg.gp_weight)
            for opt in opts.values():
                opt.zero_grad(set_to_none=True)
            d_loss.sum().backward()
            opts["D"].step()
        fake = G(member_randn(noise, batch, self.noise_dim), a)
        g_loss = -D(fake, a).mean(dim=1)
        cls_loss = classification_loss(self.P(fake), self.seen_slot[y])
        # `inputs=`: only G learns here; D and the frozen classifier are left untouched.
        (g_loss + cfg.cls_weight * cls_loss).sum().backward(inputs=self.g_params)
        opts["G"].step()
        return {"loss_d": d_loss.detach(), "loss_g": g_loss.detach(),
                "loss_cls": cls_loss.detach()}

    def eval_features(self) -> evaluate.EvalFeatures:
        """Raw real features and ``syn_num`` generated features per unseen class, ``[M, n, d]``."""
        data, members = self.data, self.members
        with torch.no_grad():
            syn_x, syn_y = synthesize(self.G, data.att, data.unseen, self.cfg.syn_num,
                                      self.rng["eval"], self.noise_dim)

        def every(x: Tensor) -> Tensor:
            return x.expand(members, -1, -1)

        return evaluate.EvalFeatures(train=every(data.train_x), syn=syn_x, syn_y=syn_y,
                                     seen=every(data.test_seen_x),
                                     unseen=every(data.test_unseen_x))

    def feature_sample(self, member: int) -> dict:
        return feature_sample(self.data, self.G, None, member, self.rng["figure"][member],
                              self.noise_dim)
