"""N-way K-shot episodes, the replacement fallback and RML pairs."""

import pytest
import torch

from vsboost.config import ConfigError
from vsboost.sampler import STREAMS, EpisodeSampler, draw_pairs, stream_seed, streams

# classes 0..3 with 10, 3, 6 and 20 images, stored out of class order
LABELS = torch.tensor([0] * 10 + [1] * 3 + [2] * 6 + [3] * 20)[torch.randperm(39)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_episode_has_n_distinct_classes_with_k_images_each_without_replacement():
    sampler = EpisodeSampler(LABELS, n_way=3, k_shot=3, with_replacement=True)
    idx, repl = sampler.sample(_gen(), 200)
    assert idx.shape == (200, 9)
    assert int(repl) == 0
    for episode in idx:
        per_class = LABELS[episode].view(3, 3)
        assert (per_class == per_class[:, :1]).all()  # K images of one class per way
        assert len(per_class[:, 0].unique()) == 3  # N different classes
        assert len(episode.unique()) == 9  # no image twice


def test_classes_smaller_than_k_fall_back_to_replacement_and_are_counted():
    sampler = EpisodeSampler(LABELS, n_way=4, k_shot=8, with_replacement=True)
    idx, repl = sampler.sample(_gen(), 50)
    # every episode holds all 4 classes; classes 1 (3 images) and 2 (6) are short of 8
    assert int(repl) == 50 * 2
    for episode in idx:
        blocks = LABELS[episode].view(4, 8)
        for block, ids in zip(blocks, episode.view(4, 8)):
            if int(block[0]) in (0, 3):
                assert len(ids.unique()) == 8


def test_replacement_off_refuses_k_larger_than_smallest_class():
    with pytest.raises(ConfigError, match="k_shot.*smallest seen class.*3 images"):
        EpisodeSampler(LABELS, n_way=2, k_shot=4, with_replacement=False)


def test_n_way_larger_than_class_count_is_refused():
    with pytest.raises(ConfigError, match="n_way"):
        EpisodeSampler(LABELS, n_way=5, k_shot=1, with_replacement=True)


def test_classes_are_drawn_uniformly():
    sampler = EpisodeSampler(LABELS, n_way=1, k_shot=1, with_replacement=True)
    idx, _ = sampler.sample(_gen(3), 4000)
    freq = torch.bincount(LABELS[idx.flatten()], minlength=4).float() / 4000
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.03)


def test_same_generator_state_gives_same_episodes():
    sampler = EpisodeSampler(LABELS, n_way=2, k_shot=2, with_replacement=True)
    assert torch.equal(sampler.sample(_gen(7), 5)[0], sampler.sample(_gen(7), 5)[0])


def test_outside_negative_is_always_another_class():
    sampler = EpisodeSampler(LABELS, n_way=1, k_shot=4, with_replacement=True)
    labels = torch.tensor([0, 1, 2, 3] * 250)
    other = sampler.outside(_gen(), labels)
    assert (LABELS[other] != labels).all()
    # every other class is reachable
    assert set(LABELS[other[labels == 1]].tolist()) == {0, 2, 3}


def test_pairs_positive_same_class_other_instance_negative_other_class():
    labels = torch.tensor([[0, 0, 1, 1, 2], [5, 5, 5, 6, 6]])
    pos, neg = draw_pairs([_gen(1), _gen(2)], labels)
    rows = torch.arange(2)[:, None]
    same = labels[rows, pos] == labels
    assert same.all()
    singleton = (labels == 2)
    assert (pos[singleton] == 4).all()  # class 2 has one instance: itself
    assert (pos[~singleton] != torch.arange(5).expand(2, 5)[~singleton]).all()
    assert (labels[rows, neg] != labels).all()


def test_each_stream_of_a_seed_is_its_own_repeatable_sequence():
    first, again, other = streams(5), streams(5), streams(6)
    assert set(first) == set(STREAMS)
    draws = {name: torch.rand(8, generator=g) for name, g in first.items()}
    for name in STREAMS:
        assert torch.equal(draws[name], torch.rand(8, generator=again[name]))
        assert not torch.equal(draws[name], torch.rand(8, generator=other[name]))
    assert len({tuple(d.tolist()) for d in draws.values()}) == len(STREAMS)
    # Reseeding with a salt (the evaluation's epoch) gives a fresh, repeatable sequence.
    assert stream_seed(5, "eval", 1) == stream_seed(5, "eval", 1) != stream_seed(5, "eval", 2)
    assert stream_seed(5, "eval") != stream_seed(5, "eval", 1)
    assert 0 <= stream_seed(5, "noise") < 2**63
