"""f-CLSWGAN (vsboost/methods/fclswgan.py) trained by the generic loop on tiny synthetic data."""

from __future__ import annotations

import pytest
import torch

from vsboost.config import make_config, seed_for
from vsboost.data import load
from vsboost.methods.fclswgan import FCLSWGAN
from vsboost.train import train

CPU = torch.device("cpu")
# choice: narrow networks and 10 short epochs; a large classification weight lets its loss shape
# G within the 100 generator updates such a test can afford (the paper's weights are 0.01-0.1,
# which act over thousands of updates).
TINY = {"hidden": "64", "gan_epochs": "10", "eval_every": "10", "syn_num": "50",
        "cls_weight": "5"}
# APY's 20 seen + 12 unseen classes: a classifier guessing at random scores U = 1/32 and
# S = 1/32, so H ~ 0.03. Measured here: 0.59 for this test's run; 0.17 with cls_weight 0 (the
# adversarial loss alone at this budget).
WELL_ABOVE_CHANCE = 0.35


@pytest.fixture(scope="module")
def apy(data_root):
    return load(data_root, "APY")


def trained_h(data, **overrides) -> float:
    cfg = make_config("APY", "fclswgan", "smoke", {**TINY, **overrides})
    (result,) = train(data, cfg, [seed_for("APY", 0)], device=CPU)
    assert result.status == "done"
    return result.metrics["paper"]["H"]


def test_fclswgan_trains_well_above_chance_and_its_classification_loss_matters(apy):
    assert trained_h(apy) > WELL_ABOVE_CHANCE
    assert trained_h(apy, cls_weight="0") < WELL_ABOVE_CHANCE


def test_the_pretrained_classifier_knows_the_seen_classes_and_stays_frozen(apy):
    model = FCLSWGAN(apy, make_config("APY", "fclswgan", "smoke", TINY), [1], CPU)
    with torch.no_grad():
        pred = model.P(apy.train_x[None]).argmax(-1)[0]
    assert float((pred == model.seen_slot[apy.train_y]).float().mean()) > 0.9
    before = [p.clone() for p in model.P.parameters()]
    losses = model.iteration(model.draw_epoch()[0][:, 0])
    assert set(losses) == {"loss_d", "loss_g", "loss_cls"}
    assert all(torch.equal(a, b) for a, b in zip(before, model.P.parameters()))


def test_a_batch_larger_than_trainval_is_refused(apy):
    from vsboost.config import ConfigError

    cfg = make_config("APY", "fclswgan", "smoke", {"batch_size": "100000"})
    with pytest.raises(ConfigError, match="batch_size"):
        FCLSWGAN.check(apy, cfg)
