"""End-to-end trainings on the synthetic benchmark at smoke scale (CPU)."""

import math

import pytest
import torch

from vsboost.config import ROWS, make_config
from vsboost.data import load
from vsboost.train import train

# Small enough for seconds per training, large enough to learn (choice).
TINY = {"hidden": 64, "enc_dim": 64, "n_way": 8, "k_shot": 8, "steps_per_epoch": 0,
        "syn_num": 30, "cls_epochs": 4, "checkpoint_every": 1}


@pytest.fixture(scope="module")
def apy(synthetic_root):
    return load(synthetic_root, "APY")


def _numbers(result):
    """Everything a run reports, without wall-clock times."""
    return [{k: v for k, v in e.items() if k != "wall_s"} for e in result.history]


@pytest.mark.parametrize("row", list(ROWS))
def test_every_row_learns_well_above_chance(apy, row):
    cfg = make_config("APY", row, "smoke", {**TINY, "gan_epochs": 30})
    (result,) = train(apy, cfg, [11])
    assert result.status == "done"
    chance = 1 / apy.n_classes  # GZSL predicts over all S+U classes
    for protocol in ("paper", "last"):
        m = result.metrics[protocol]
        assert m["S"] > 2 * chance and m["H"] > 2 * chance, (protocol, m)
        assert m["H"] == pytest.approx(2 * m["U"] * m["S"] / (m["U"] + m["S"]))
    # U at the last epoch, chosen by nobody, is noisier at this tiny scale than the selected one.
    assert result.metrics["paper"]["U"] > 2 * chance, result.metrics["paper"]
    assert result.metrics["last"]["U"] > chance, result.metrics["last"]
    assert result.metrics["czsl"]["paper"]["acc"] > 2 / len(apy.unseen)
    assert result.metrics["paper"]["H"] >= result.metrics["last"]["H"]
    assert len(result.history) == cfg.gan_epochs


def test_same_seed_on_cpu_gives_identical_numbers(apy):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 2})
    first, second = train(apy, cfg, [5]), train(apy, cfg, [5])
    assert _numbers(first[0]) == _numbers(second[0])
    assert _numbers(first[0]) != _numbers(train(apy, cfg, [6])[0])


@pytest.mark.parametrize("row", ["plain", "full"])
def test_each_member_of_a_multi_seed_pass_equals_its_solo_run(apy, row):
    cfg = make_config("APY", row, "smoke", {**TINY, "gan_epochs": 2})
    stacked = train(apy, cfg, [5, 6, 7])
    solo = train(apy, cfg, [6])[0]
    assert stacked[1].seed == solo.seed
    for got, want in zip(stacked[1].history, solo.history):
        for key in ("U", "S", "H", "czsl", "loss_d", "loss_g", "loss_metric"):
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-4), key


def test_run_killed_after_a_checkpoint_resumes_to_the_same_result(apy, tmp_path):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 3})
    whole = train(apy, cfg, [9])[0]
    ckpt = tmp_path / "run.pt"

    def stop_after_two(epoch, total):
        if epoch == 2:
            raise KeyboardInterrupt  # stands in for a kill right after the epoch-2 checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [9], checkpoint=ckpt, progress=stop_after_two)
    assert ckpt.exists()
    resumed = train(apy, cfg, [9], checkpoint=ckpt)[0]
    assert _numbers(resumed) == _numbers(whole)
    assert resumed.metrics == whole.metrics


def test_nan_in_the_losses_stops_the_member_as_diverged_with_its_epoch(apy):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 3})
    broken = apy.to("cpu")
    broken.train_x = apy.train_x.clone()
    broken.train_x[:] = math.nan  # every real batch carries NaN
    (result,) = train(broken, cfg, [3])
    assert result.status == "diverged"
    assert result.diverged_epoch == 1
    assert result.metrics is None
    assert not any(math.isnan(e["H"]) for e in result.history)


def test_feature_sample_has_raw_and_refined_views_and_changes_no_number(apy):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 1})
    plain = train(apy, cfg, [4])[0]
    sampled = train(apy, cfg, [4], feature_sample=True)[0]
    assert _numbers(plain) == _numbers(sampled)
    f = sampled.features
    assert f["real_unseen_raw"].shape[1] == apy.feature_dim
    assert f["real_unseen_refined"].shape[1] == cfg.enc_dim
    assert len(f["syn_unseen_raw"]) == len(f["syn_unseen_y"])
    assert set(f["seen_y"].tolist()) <= set(apy.seen.tolist())
    assert torch.isfinite(torch.from_numpy(f["syn_unseen_refined"])).all()
