"""Behaviour of the method itself, observed through the trainer's own code path.

Each test drives :class:`vsboost.methods.vsboost.VSBoost` (or the public evaluation functions)
on tiny synthetic data and watches what the trainer hands to its loss functions, which networks it
builds and updates, and what the evaluation reports. The expectations are hard-coded facts of
the method (Table 4's rows, eq. 3 and 7's targets, per-class accuracy, H-based selection), so a
wrong entry in the configuration or a wrong index in the trainer fails here.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import vsboost.methods.vsboost as vtrain
from vsboost import evaluate
from vsboost.config import make_config
from vsboost.data import load
from vsboost.methods.vsboost import VSBoost

CPU = torch.device("cpu")
# Tiny networks and one short epoch: each VSBoost here builds and steps in milliseconds.
TINY = {"hidden": 16, "enc_dim": 16, "n_way": 4, "k_shot": 4, "steps_per_epoch": 1,
        "critic_steps": 1, "syn_num": 5, "cls_epochs": 1, "gan_epochs": 1}
# Table 4 of the paper, written out here on purpose (not read from the config's registry).
BRANCHES = {"plain": (False, False), "sml": (True, False), "rml": (False, True),
            "full": (True, True)}


@pytest.fixture(scope="module")
def apy(data_root):
    return load(data_root, "APY")


def model_for(data, row: str, seed: int = 0, **overrides) -> VSBoost:
    cfg = make_config("APY", row, "smoke", {**TINY, **overrides})
    return VSBoost(data, cfg, [seed], CPU)


def one_iteration(model: VSBoost) -> dict[str, torch.Tensor]:
    episodes, _ = model.draw_epoch()
    return model.iteration(episodes[:, 0])


def networks(model: VSBoost) -> dict[str, torch.nn.Module]:
    """The trained networks by their paper letter; absent ones are left out."""
    found = {"G": model.G, "D": model.D, "E": model.E, "R": model.R, "F": model.Fr}
    return {k: v for k, v in found.items() if v is not None}


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


class Spy:
    """Stands in for a module-level loss function of vsboost.methods.vsboost: records its arguments,
    delegates to the real function and optionally scales what it returns."""

    def __init__(self, real, scale: float = 1.0):
        self.real, self.scale, self.calls = real, scale, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.real(*args, **kwargs) * self.scale


def spy_on(monkeypatch, name: str, scale: float = 1.0) -> Spy:
    spy = Spy(getattr(vtrain, name), scale)
    monkeypatch.setattr(vtrain, name, spy)
    return spy


def argument(call, position: int, name: str):
    args, kwargs = call
    return args[position] if len(args) > position else kwargs[name]


# ===== RML targets (eq. 7): the cosine of the two classes' embeddings =====

def grouped_embeddings(n_classes: int, att_dim: int) -> tuple[torch.Tensor, dict]:
    """Class c gets direction c % 3 of three unnormalised vectors: groups 0 and 1 orthogonal,
    group 2 at 60 degrees from group 0 and 30 degrees from group 1."""
    vectors = torch.zeros(3, att_dim)
    vectors[0, 0] = 3.0
    vectors[1, 1] = 0.5
    vectors[2, 0], vectors[2, 1] = 1.0, math.sqrt(3.0)
    cos = {(0, 0): 1.0, (1, 1): 1.0, (2, 2): 1.0, (0, 1): 0.0, (1, 0): 0.0,
           (0, 2): 0.5, (2, 0): 0.5, (1, 2): math.sqrt(3) / 2, (2, 1): math.sqrt(3) / 2}
    return vectors[torch.arange(n_classes) % 3], cos


@pytest.mark.parametrize("row", ["rml", "full"])
def test_rml_targets_are_the_cosine_of_the_class_embeddings(apy, monkeypatch, row):
    att, cos = grouped_embeddings(apy.n_classes, apy.att_dim)
    model = model_for(dataclasses.replace(apy, att=att), row)
    spy = spy_on(monkeypatch, "relational_metric_loss")
    # Two images of each of 12 seen classes spanning all three groups; feature 0 of h carries
    # the label so that the pair the trainer drew can be read back from h_pos / h_neg.
    y = apy.seen[:12].repeat_interleave(2)[None]
    h = torch.rand(1, y.shape[1], model.cfg.enc_dim)
    h[..., 0] = y.float()
    seen_negatives = set()
    for _ in range(5):  # pairs are random: several draws
        model.metric_losses(h, y)
        call = spy.calls[-1]
        h_pos, h_neg = argument(call, 2, "h_pos"), argument(call, 3, "h_neg")
        t_pos, t_neg = argument(call, 4, "target_pos"), argument(call, 5, "target_neg")
        y_pos, y_neg = h_pos[..., 0].round().long(), h_neg[..., 0].round().long()
        assert torch.equal(y_pos, y) and (y_neg != y).all()
        for i in range(y.shape[1]):
            a, b = int(y[0, i]) % 3, int(y_neg[0, i]) % 3
            assert float(t_pos[0, i]) == pytest.approx(1.0, abs=1e-5)  # own class: identical
            assert float(t_neg[0, i]) == pytest.approx(cos[a, b], abs=1e-5), (a, b)
            seen_negatives.add((a, b))
    # Both extremes were exercised: identical embeddings of two classes, and orthogonal ones.
    assert {(0, 0), (0, 1)} <= seen_negatives | {(b, a) for a, b in seen_negatives}


@pytest.mark.parametrize("row", ["rml", "full"])
def test_one_way_episodes_take_rml_negatives_from_real_images_of_other_classes(apy, monkeypatch,
                                                                              row):
    # FLO's paper profile trains 1-way episodes: the batch holds one class, so the negative of
    # each item is a real trainval image of another class, refined by E (docs/method.md).
    att, cos = grouped_embeddings(apy.n_classes, apy.att_dim)
    model = model_for(dataclasses.replace(apy, att=att), row, n_way=1)
    spy = spy_on(monkeypatch, "relational_metric_loss")
    drawn = []
    real_outside = model.sampler.outside
    monkeypatch.setattr(model.sampler, "outside",
                        lambda gen, labels: drawn.append(real_outside(gen, labels)) or drawn[-1])
    y = apy.seen[:1].repeat(8)[None]  # one class, as a 1-way episode holds
    h = torch.rand(1, y.shape[1], model.cfg.enc_dim)
    pairs = set()
    for _ in range(5):
        model.metric_losses(h, y)
        (idx,) = drawn[-1:]
        call = spy.calls[-1]
        y_neg = model.data.train_y[idx]
        assert (y_neg != y[0]).all()
        refined = model.E(model.data.train_x[idx][None])[0]
        torch.testing.assert_close(argument(call, 3, "h_neg")[0], refined)
        t_neg = argument(call, 5, "target_neg")[0]
        for i in range(y.shape[1]):
            a, b = int(y[0, i]) % 3, int(y_neg[i]) % 3
            assert float(t_neg[i]) == pytest.approx(cos[a, b], abs=1e-5), (a, b)
            pairs.add(b)
    assert len(drawn) == 5 and len(pairs) > 1  # negatives of several groups were drawn


# ===== SML targets (eq. 3): the true class's row of the candidate table =====

@pytest.mark.parametrize("row", ["sml", "full"])
@pytest.mark.parametrize("sml_over", ["all", "seen"])
def test_sml_target_is_the_true_class_row_of_the_candidate_table(apy, monkeypatch, row,
                                                                 sml_over):
    model = model_for(apy, row, sml_over=sml_over)
    spy = spy_on(monkeypatch, "semantic_metric_loss")
    y = apy.train_y[torch.randperm(len(apy.train_y), generator=torch.Generator().manual_seed(0))]
    y = y[:64][None]
    model.metric_losses(torch.rand(1, 64, model.cfg.enc_dim), y)
    (call,) = spy.calls
    table, target = argument(call, 1, "class_att"), argument(call, 2, "target")
    expected_rows = apy.n_classes if sml_over == "all" else len(apy.seen)
    assert table.shape == (expected_rows, apy.att_dim)
    assert target.shape == y.shape
    assert torch.equal(table[target], apy.att[y])
    if sml_over == "all":  # unseen classes are candidates (negatives) too
        assert torch.equal(table, apy.att)
    else:
        assert torch.equal(table, apy.att[apy.seen])


def test_sml_target_of_the_generator_step_is_the_true_class_too(apy, monkeypatch):
    """With metric_on_fake, SML on E(G(z, a_y)) must point at a_y, the conditioning class."""
    model = model_for(apy, "sml", sml_over="seen")
    spy = spy_on(monkeypatch, "semantic_metric_loss")
    episodes, _ = model.draw_epoch()
    one = episodes[:, 0]
    model.iteration(one)
    assert len(spy.calls) == 2  # the critic step's and the generator step's
    y = apy.train_y[one[:, -1]]  # the generator step uses the last critic episode's classes
    for call in spy.calls:
        table, target = argument(call, 1, "class_att"), argument(call, 2, "target")
        assert torch.equal(table[target], apy.att[y])


# ===== what each row of Table 4 trains =====

@pytest.mark.parametrize("row", list(BRANCHES))
def test_each_row_builds_and_trains_exactly_its_branches(apy, monkeypatch, row):
    sml, rml = BRANCHES[row]
    model = model_for(apy, row)
    nets = networks(model)
    assert set(nets) == {"G", "D"} | ({"E"} if sml or rml else set()) \
        | ({"R"} if sml else set()) | ({"F"} if rml else set())
    semantic = spy_on(monkeypatch, "semantic_metric_loss")
    relational = spy_on(monkeypatch, "relational_metric_loss")
    before = {k: snapshot(n) for k, n in nets.items()}
    one_iteration(model)
    assert bool(semantic.calls) == sml
    assert bool(relational.calls) == rml
    for k, net in nets.items():  # every network the row has is updated by an iteration
        assert not same(before[k], snapshot(net)), f"{row}: {k} was not updated"
    # The final classifiers see E's output in rows with an encoder and raw features in plain.
    features = model.eval_features()
    width = model.cfg.enc_dim if (sml or rml) else apy.feature_dim
    for split in ("train", "syn", "seen", "unseen"):
        x = features[split] if isinstance(features, dict) else getattr(features, split)
        assert x.shape[-1] == width, split


def test_each_row_reports_the_metric_losses_of_its_own_branches_apart(apy):
    # The row's losses as reported by the iteration, by name: loss_sml / loss_rml on real
    # features, *_fake on generated ones, only for the branches the row trains.
    losses = {row: one_iteration(model_for(apy, row)) for row in ("plain", "sml", "rml")}
    plain, sml, rml = losses["plain"], losses["sml"], losses["rml"]
    assert float(plain["loss_metric"][0]) == 0.0 and float(plain["loss_metric_fake"][0]) == 0.0
    assert not {"loss_sml", "loss_rml", "loss_sml_fake", "loss_rml_fake"} & set(plain)
    assert float(sml["loss_sml"][0]) > 0 and float(sml["loss_sml_fake"][0]) > 0
    assert "loss_rml" not in sml and "loss_sml" not in rml
    assert float(rml["loss_rml"][0]) > 0 and float(rml["loss_rml_fake"][0]) > 0
    # eq. 8 with unit weights: the recorded sum is the two branches' sum
    assert float(sml["loss_metric"][0]) == float(sml["loss_sml"][0])


# ===== which step updates which network =====

@pytest.mark.parametrize("row", ["plain", "full"])
def test_critic_steps_leave_g_alone_and_the_generator_step_touches_only_g(apy, row):
    model = model_for(apy, row, critic_steps=2)
    nets = networks(model)
    g_first, d_first = next(model.G.parameters()), next(model.D.parameters())
    start = {k: snapshot(n) for k, n in nets.items()}
    at_g_step, critic_updates = [], []

    def before_step(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if any(p is d_first for p in params):
            # The critic's loss is computed on detached fakes: it leaves no gradient in G
            # that the generator step would then add to its own.
            critic_updates.append(1)
            for p in model.G.parameters():
                assert p.grad is None or not p.grad.any(), "the critic loss reached G"
        if any(p is g_first for p in params):
            assert {id(p) for p in params} == {id(p) for p in model.G.parameters()}, \
                "the generator's optimiser holds parameters of another network"
            at_g_step.append({k: snapshot(n) for k, n in nets.items()})

    hook = register_optimizer_step_pre_hook(before_step)
    try:
        one_iteration(model)
    finally:
        hook.remove()
    assert len(at_g_step) == 1, "one generator step per iteration"
    assert len(critic_updates) == 2, "one critic update per critic step"
    (mid,) = at_g_step
    assert same(start["G"], mid["G"]), "a critic step changed G"
    for k, net in nets.items():
        if k != "G":
            assert not same(start[k], mid[k]), f"the critic steps did not update {k}"
            assert same(mid[k], snapshot(net)), f"the generator step changed {k}"


@pytest.mark.parametrize("row", ["sml", "rml", "full"])
def test_metric_losses_on_fake_features_reach_the_generator(apy, monkeypatch, row):
    def g_after_one_iteration(metric_scale: float, on_fake: bool) -> list[torch.Tensor]:
        with monkeypatch.context() as m:
            spy_on(m, "semantic_metric_loss", metric_scale)
            spy_on(m, "relational_metric_loss", metric_scale)
            model = model_for(apy, row, seed=3, metric_on_fake=on_fake)
            one_iteration(model)
            return snapshot(model.G)

    # The zeroed run draws the same random numbers (the spy still delegates), so any difference
    # in G comes from the metric term's gradient.
    assert not same(g_after_one_iteration(1.0, True), g_after_one_iteration(0.0, True))
    assert same(g_after_one_iteration(1.0, False), g_after_one_iteration(0.0, False))


# ===== the gradient penalty (eq. 1) =====

def test_gradient_penalty_weight_reaches_the_critic_update(apy, monkeypatch):
    def run(gp_weight: float):
        model = model_for(apy, "plain", seed=5, gp_weight=gp_weight)
        losses = one_iteration(model)
        return snapshot(model.D), float(losses["loss_d"][0])

    d0, loss0 = run(0.0)
    d10, loss10 = run(10.0)
    d10_again, _ = run(10.0)
    assert same(d10, d10_again)  # deterministic on CPU: a difference below is the weight's
    assert not same(d0, d10)
    assert loss10 > loss0  # the penalty is non-negative and almost surely non-zero

    critic = spy_on(monkeypatch, "critic_loss")
    one_iteration(model_for(apy, "plain", gp_weight=7.5))
    assert critic.calls and all(float(argument(c, 3, "gp_weight")) == 7.5 for c in critic.calls)


# ===== evaluation: per-class accuracy, H-based selection =====

def test_per_class_accuracy_weighs_every_class_equally():
    labels = torch.tensor([0] * 8 + [1] * 2)
    pred = torch.zeros(10, dtype=torch.long)  # right on all 8 of class 0, wrong on class 1
    assert float(evaluate.per_class_accuracy(pred, labels)) == pytest.approx(0.5)  # not 0.8
    stacked = torch.stack([pred, labels])
    assert evaluate.per_class_accuracy(stacked, labels).tolist() == pytest.approx([0.5, 1.0])


def test_the_trainers_evaluation_reports_per_class_means(apy):
    """A 4-class benchmark (seen 0, 1; unseen 2, 3) built so that every test image of a split
    gets the same prediction: all seen test images equal the training images, all unseen ones
    equal the (zeroed) generator's output. One class of each split is then right and the other
    wrong, so per-class accuracy is exactly 1/2 whatever the classifier picks; per sample it
    would be 0.8 or 0.2 for S (8 + 2 images) and 0.25 or 0.75 for U (1 + 3 images)."""
    d = 8
    v = torch.zeros(d)
    v[0] = 5.0

    def rows(n: int, x: torch.Tensor) -> torch.Tensor:
        return x.expand(n, d).clone()

    att = torch.eye(4, apy.att_dim) + 0.1
    tiny = dataclasses.replace(
        apy, train_x=rows(24, v), train_y=torch.tensor([0] * 16 + [1] * 8),
        test_seen_x=rows(10, v), test_seen_y=torch.tensor([0] * 8 + [1] * 2),
        test_unseen_x=rows(4, torch.zeros(d)), test_unseen_y=torch.tensor([2] * 1 + [3] * 3),
        att=att, seen=torch.tensor([0, 1]), unseen=torch.tensor([2, 3]))
    model = model_for(tiny, "plain", n_way=2, k_shot=4, syn_num=12, cls_epochs=15,
                      cls_lr=0.05, cls_batch=12)
    with torch.no_grad():  # G(z, a) = relu(0) = 0: synthetic unseen features sit at the origin
        for p in model.G.parameters():
            p.zero_()
    gzsl, czsl = model.evaluate(1)
    u, s, h = gzsl[-1, 0].tolist()
    assert (u, s, h) == pytest.approx((0.5, 0.5, 0.5))
    assert float(czsl[-1, 0]) == pytest.approx(0.5)


def test_epoch_entry_picks_the_classifier_epoch_of_best_h():
    gzsl = torch.tensor([[0.9, 0.1, 0.18], [0.5, 0.5, 0.5], [0.3, 0.8, 0.436]])  # U, S, H
    entry = evaluate.epoch_entry(4, gzsl, torch.tensor([0.2, 0.6, 0.4]))
    assert entry["best"] == pytest.approx({"U": 0.5, "S": 0.5, "H": 0.5, "cls_epoch": 2})
    assert (entry["U"], entry["S"], entry["H"]) == pytest.approx((0.3, 0.8, 0.436))
    assert entry["czsl_best"] == pytest.approx({"acc": 0.6, "cls_epoch": 2})
    assert entry["czsl"] == pytest.approx(0.4)


def _entry(epoch, best, last, czsl_best, czsl_last):
    u, s, h, cls_epoch = best
    return {"epoch": epoch, "U": last[0], "S": last[1], "H": last[2], "czsl": czsl_last,
            "best": {"U": u, "S": s, "H": h, "cls_epoch": cls_epoch},
            "czsl_best": {"acc": czsl_best[0], "cls_epoch": czsl_best[1]}}


def test_paper_protocol_maximises_h_and_last_takes_the_last_epoch():
    history = [
        _entry(1, (0.90, 0.10, 0.180, 3), (0.8, 0.1, 0.18), (0.30, 1), 0.2),  # max U
        _entry(2, (0.40, 0.60, 0.480, 2), (0.4, 0.5, 0.44), (0.70, 4), 0.6),  # max H
        _entry(3, (0.20, 0.95, 0.330, 5), (0.2, 0.9, 0.33), (0.50, 2), 0.65),  # max S
        _entry(4, (0.30, 0.50, 0.375, 1), (0.1, 0.4, 0.16), (0.40, 3), 0.1),  # last
    ]
    chosen = evaluate.select(history, cls_epochs=5)
    assert chosen["paper"] == {"U": 0.40, "S": 0.60, "H": 0.480, "cls_epoch": 2, "epoch": 2}
    assert chosen["last"] == {"U": 0.1, "S": 0.4, "H": 0.16, "epoch": 4, "cls_epoch": 5}
    assert chosen["czsl"]["paper"] == {"acc": 0.70, "epoch": 2, "cls_epoch": 4}
    assert chosen["czsl"]["last"] == {"acc": 0.1, "epoch": 4, "cls_epoch": 5}


# ===== episodes (paper §4: N way, K shot) =====

@pytest.mark.parametrize("k_shot", [4, 8])
def test_every_training_episode_is_n_seen_classes_with_k_trainval_images_each(apy, k_shot):
    n_way = 5
    model = model_for(apy, "plain", n_way=n_way, k_shot=k_shot, steps_per_epoch=0,
                      critic_steps=2)
    episodes, _ = model.draw_epoch()
    assert episodes.shape[-1] == n_way * k_shot
    flat = episodes.reshape(-1, n_way * k_shot)
    assert len(flat) == model.steps * 2 >= len(apy.train_y) // (n_way * k_shot)
    assert int(flat.min()) >= 0 and int(flat.max()) < len(apy.train_y)  # trainval rows only
    sizes = torch.bincount(apy.train_y, minlength=apy.n_classes)
    seen = set(apy.seen.tolist())
    drawn_classes = set()
    for episode in flat:
        labels = apy.train_y[episode]
        classes, counts = labels.unique(return_counts=True)
        assert len(classes) == n_way and (counts == k_shot).all(), labels.tolist()
        assert set(classes.tolist()) <= seen
        for c in classes:  # without replacement whenever the class has K images
            if sizes[c] >= k_shot:
                assert len(episode[labels == c].unique()) == k_shot
        drawn_classes |= set(classes.tolist())
    assert len(drawn_classes) > n_way  # classes vary between episodes


def test_the_iteration_trains_on_the_episodes_it_is_given(apy):
    model = model_for(apy, "full", critic_steps=2)
    seen_y = []
    real = model.metric_losses

    def record(h, y):
        seen_y.append(y.clone())
        return real(h, y)

    model.metric_losses = record
    episodes, _ = model.draw_epoch()
    model.iteration(episodes[:, 0])
    for c in range(2):  # the two critic steps, in order
        assert torch.equal(seen_y[c], apy.train_y[episodes[:, 0, c]])


# ===== the per-epoch evaluation =====

def test_an_evaluation_reads_its_labels_classes_once_not_at_every_classifier_epoch(
        apy, monkeypatch):
    # unique() waits for the device; the test labels never change, so 3 splits -> 3 calls
    # (GZSL unseen and seen, CZSL unseen), whatever the number of classifier epochs.
    model = model_for(apy, "plain", cls_epochs=4)
    calls, real = [], torch.Tensor.unique
    monkeypatch.setattr(torch.Tensor, "unique",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    gzsl, czsl = model.evaluate(1)
    assert gzsl.shape[0] == czsl.shape[0] == 4
    assert len(calls) == 3
