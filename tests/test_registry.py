"""Every hyperparameter the trainer uses comes from the registry (vsboost/config.py) and reaches
the code it names; adding them kept every run key."""

import pytest
import torch

from vsboost import evaluate, synthetic
from vsboost.config import COMMON, make_config
from vsboost.data import load
from vsboost.methods.vsboost import VSBoost

TINY = {"hidden": "16", "enc_dim": "16", "syn_num": "5", "n_way": "2", "k_shot": "4"}


@pytest.fixture(scope="module")
def apy(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    synthetic.write(root, ["APY"], scale=0.05, seed=0, real_meta=None)
    return load(root, "APY")


def model(data, **overrides):
    cfg = make_config("APY", "full", "smoke", {**TINY, **overrides})
    return VSBoost(data, cfg, [1], torch.device("cpu"))


def test_generator_betas_reach_g_d_and_the_metric_nets_not_the_final_classifiers(apy):
    m = model(apy, beta1="0.3", beta2="0.9")
    assert {opt.param_groups[0]["betas"] for opt in m.opts.values()} == {(0.3, 0.9)}
    assert evaluate.fit_settings(m.cfg)["betas"] == (0.5, 0.999)
    cfg = make_config("APY", "full", "smoke", {"cls_beta1": "0.1", "cls_beta2": "0.8"})
    assert evaluate.fit_settings(cfg)["betas"] == (0.1, 0.8)


def test_leak_and_init_std_reach_every_network(apy):
    m = model(apy, leak="0.1", init_std="0.5")
    assert {net.leak for k, net in m.nets.items() if k != "F"} == {0.1}
    assert 0.3 < float(m.G.fc1.weight.detach().std()) < 0.7  # drawn from N(0, 0.5), not N(0, 0.02)
    assert float(model(apy).G.fc1.weight.detach().std()) < 0.05


def test_hard_coded_values_moved_into_the_registry_unchanged():
    """The values train.py, evaluate.py and models.py used before they were settings."""
    assert {k: COMMON[k][0] for k in ("beta2", "cls_beta1", "cls_beta2", "init_std", "leak")} == {
        "beta2": 0.999, "cls_beta1": 0.5, "cls_beta2": 0.999, "init_std": 0.02, "leak": 0.2}


@pytest.mark.parametrize("bad", [{"beta2": "1.0"}, {"cls_beta1": "-0.1"}, {"leak": "1.5"},
                                 {"init_std": "0"}])
def test_out_of_range_new_settings_are_refused(bad):
    from vsboost.config import ConfigError

    with pytest.raises(ConfigError, match=next(iter(bad))):
        make_config("CUB", "full", overrides=bad)


def test_the_leak_of_the_critic_gradient_follows_the_setting():
    from vsboost.models import Critic, reset_all

    critic = Critic(1, 4, 2, 8, leak=0.3)
    reset_all([critic], [torch.Generator().manual_seed(0)], 0.5)
    x, a = torch.randn(1, 5, 4, requires_grad=True), torch.randn(1, 5, 2)
    (auto,) = torch.autograd.grad(critic(x, a).sum(), x)
    assert torch.allclose(critic.input_gradient(x, a), auto, atol=1e-6)


@pytest.mark.parametrize("row, weight", [("sml", "sml_weight"), ("rml", "rml_weight")])
def test_a_loss_weight_scales_its_metric_loss_of_eq_8(apy, row, weight):
    def first_metric_loss(value: str) -> float:
        cfg = make_config("APY", row, "smoke", {**TINY, "steps_per_epoch": "1", weight: value})
        m = VSBoost(apy, cfg, [1], torch.device("cpu"))
        episodes, _ = m.draw_epoch()
        return float(m.iteration(episodes[:, 0])["loss_metric"][0])  # on real features

    # the same draws (the weight redraws nothing), so the ratio is the weight exactly
    assert first_metric_loss("0.5") == pytest.approx(0.5 * first_metric_loss("1"), rel=1e-6)
    assert first_metric_loss("0") == 0.0


def test_the_other_loss_weight_leaves_a_row_without_that_loss_alone(apy):
    def g(overrides):
        cfg = make_config("APY", "sml", "smoke", {**TINY, "steps_per_epoch": "1", **overrides})
        m = VSBoost(apy, cfg, [1], torch.device("cpu"))
        episodes, _ = m.draw_epoch()
        m.iteration(episodes[:, 0])
        return [p.detach().clone() for p in m.G.parameters()]

    base = g({})
    assert all(torch.equal(a, b) for a, b in zip(base, g({"rml_weight": "3"}), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(base, g({"sml_weight": "3"}), strict=True))


def test_loss_weights_are_settings_that_keep_default_run_ids():
    default = make_config("APY", "full", "smoke")
    assert (default.sml_weight, default.rml_weight) == (1.0, 1.0)
    assert COMMON["sml_weight"][1].startswith("paper") and COMMON["rml_weight"][1].startswith(
        "paper")
    assert make_config("APY", "full", "smoke", {"rml_weight": "1"}).hash() == default.hash()
    assert make_config("APY", "full", "smoke", {"rml_weight": "0.5"}).hash() != default.hash()
    assert make_config("APY", "full", "smoke", {"sml_weight": "0.5"}).hash() != default.hash()
