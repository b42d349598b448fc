"""Randomness of one training: named random streams, N-way K-shot episodes (paper §4), RML
pairs (eq. 7), noise.

Every member draws each kind of randomness from its own stream, derived from its seed by
:func:`streams`, so that one consumer cannot shift another's draws (docs/decisions.md):

- ``episodes``: the episodes of every epoch. Rows of one seed train on the same episodes;
- ``init``: the networks' initial weights. G and D come first, so every row starts from the
  same G and D; E, R, F follow;
- ``noise``: z and the gradient penalty's alpha, drawn alike by every row;
- ``pairs``: RML positives and negatives and outside negatives, drawn only by the RML rows;
- ``eval``: the final classifiers (synthetic features, initialisation, shuffling), reseeded from
  (seed, epoch) before every evaluation, so that how often one evaluates changes no trained
  weight and no evaluation of another epoch;
- ``figure``: the feature samples of Figure 4.

All draws happen on the training device as whole tensors, one epoch of episodes at a time, so the
step itself has no Python-side sampling and no host round-trip. Member m of a stacked training
draws from its own generators only, so it draws what its solo run draws.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from vsboost.config import ConfigError

STREAMS = ("episodes", "init", "noise", "pairs", "eval", "figure")


def stream_seed(seed: int, name: str, *salt: int) -> int:
    """The 63-bit seed of stream ``name`` of training seed ``seed`` (``salt``: e.g. the epoch of
    an evaluation): sha256 of the three, so streams neither collide nor follow from each other."""
    text = ":".join(str(int(p)) if not isinstance(p, str) else p for p in (seed, name, *salt))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def streams(seed: int, device: str | torch.device = "cpu") -> dict[str, torch.Generator]:
    """One fresh generator per stream of :data:`STREAMS` for training seed ``seed``."""
    return {name: torch.Generator(device).manual_seed(stream_seed(seed, name))
            for name in STREAMS}


def member_rand(gens: list[torch.Generator], *shape: int) -> Tensor:
    """``[M, *shape]`` of U(0, 1), row m from generator m."""
    return torch.stack([torch.rand(shape, generator=g, device=g.device) for g in gens])


def member_randn(gens: list[torch.Generator], *shape: int) -> Tensor:
    """``[M, *shape]`` of N(0, 1), row m from generator m."""
    return torch.stack([torch.randn(shape, generator=g, device=g.device) for g in gens])


def check_episodes(labels: Tensor, n_way: int, k_shot: int, with_replacement: bool) -> None:
    """Refuse an episode shape the seen training labels cannot fill, with a one-line
    :class:`ConfigError`; ``bench`` calls it when planning, before any run is recorded."""
    classes, counts = labels.unique(return_counts=True)
    if n_way > len(classes):
        raise ConfigError(
            f"config key 'n_way': expected <= {len(classes)} seen classes, found {n_way}; "
            f"fix: --set n_way={len(classes)} or fewer"
        )
    if not with_replacement and int(counts.min()) < k_shot:
        raise ConfigError(
            f"config key 'k_shot': {k_shot} exceeds the smallest seen class "
            f"({int(counts.min())} images) while sample_with_replacement=false; "
            f"lower k_shot or set sample_with_replacement=true"
        )


class EpisodeSampler:
    """Draws episodes of N classes (without replacement) x K images of each.

    K images are drawn without replacement when the class has at least K, otherwise with
    replacement (docs/method.md: FLO's smallest class has 32, AWA2's 75); ``sample`` counts those
    draws.
    """

    def __init__(self, labels: Tensor, n_way: int, k_shot: int, with_replacement: bool):
        check_episodes(labels, n_way, k_shot, with_replacement)
        classes, counts = labels.unique(return_counts=True)
        self.n_way, self.k_shot = n_way, k_shot
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts
        self.by_class = torch.argsort(labels, stable=True)  # image indices grouped by class
        self.slot = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long, device=labels.device)
        self.slot[classes] = torch.arange(len(classes), device=labels.device)
        self.n_images = len(labels)

    @property
    def batch_size(self) -> int:
        return self.n_way * self.k_shot

    def sample(self, gen: torch.Generator, n_episodes: int) -> tuple[Tensor, Tensor]:
        """Image indices ``[n_episodes, N*K]`` and the number of (episode, class) pairs that had
        to be drawn with replacement (a 0-d tensor, left on the device)."""
        dev = self.counts.device
        n_cls = len(self.counts)
        ways = torch.argsort(torch.rand(n_episodes, n_cls, generator=gen, device=dev), dim=1)
        ways = ways[:, : self.n_way]  # [E, N] class slots, distinct within an episode
        count = self.counts[ways]  # [E, N]
        # Without replacement: the K smallest of random keys over the class's valid positions.
        n_max = int(self.counts.max())
        keys = torch.rand(n_episodes, self.n_way, n_max, generator=gen, device=dev)
        keys = keys.masked_fill(torch.arange(n_max, device=dev) >= count[..., None], 2.0)
        k_sorted = min(self.k_shot, n_max)
        pos = torch.argsort(keys, dim=-1)[..., :k_sorted]
        if k_sorted < self.k_shot:
            pos = torch.cat([pos, pos.new_zeros(*pos.shape[:-1], self.k_shot - k_sorted)], -1)
        # With replacement, for the classes that are smaller than K.
        short = count < self.k_shot
        u = torch.rand(n_episodes, self.n_way, self.k_shot, generator=gen, device=dev)
        pos_repl = (u * count[..., None]).long()
        pos = torch.where(short[..., None], pos_repl, pos)
        idx = self.by_class[self.starts[ways][..., None] + pos]  # [E, N, K]
        return idx.reshape(n_episodes, -1), short.sum()

    def outside(self, gen: torch.Generator, labels: Tensor) -> Tensor:
        """For each label, one uniformly drawn trainval image of another class: ``[B]``."""
        slot = self.slot[labels]
        start, count = self.starts[slot], self.counts[slot]
        u = torch.rand(labels.shape, generator=gen, device=labels.device)
        rank = (u * (self.n_images - count)).long()  # rank among the images of other classes
        rank = torch.where(rank >= start, rank + count, rank)  # skip over the own class's block
        return self.by_class[rank]


def draw_pairs(gens: list[torch.Generator], labels: Tensor) -> tuple[Tensor, Tensor]:
    """RML pairs inside a batch (paper eq. 7): for each item a random positive and negative.

    ``labels`` is ``[M, B]``. The positive is another instance of the same class, or the item
    itself when its class has a single instance in the batch; the negative is an instance of
    another class (the caller substitutes an outside image when the batch holds one class only).
    Returns batch positions ``(pos, neg)``, each ``[M, B]``.
    """
    batch = labels.shape[1]
    scores = member_rand(gens, batch, batch)  # argmax over masked random scores = uniform pick
    same = labels[:, :, None] == labels[:, None, :]
    eye = torch.eye(batch, dtype=torch.bool, device=labels.device)
    pos_mask = same & ~eye
    pos = scores.masked_fill(~pos_mask, -1.0).argmax(-1)
    pos = torch.where(pos_mask.any(-1), pos, torch.arange(batch, device=labels.device))
    neg = scores.masked_fill(same, -1.0).argmax(-1)
    return pos, neg
