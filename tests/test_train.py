"""End-to-end trainings on the synthetic benchmark at smoke scale (CPU)."""

import math
from collections import defaultdict

import pytest
import torch

from vsboost import runtime
from vsboost import train as vtrain
from vsboost.config import ROWS, make_config
from vsboost.data import load
from vsboost.methods.vsboost import VSBoost
from vsboost.train import CheckpointError, train

# Small enough for seconds per training, large enough to learn (choice).
TINY = {"hidden": 64, "enc_dim": 64, "n_way": 8, "k_shot": 8, "steps_per_epoch": 0,
        "syn_num": 30, "cls_epochs": 4, "eval_every": 1, "checkpoint_every": 1}
# Smaller still, for tests of the plumbing that need no learning (choice).
FAST = {"hidden": 32, "enc_dim": 32, "n_way": 8, "k_shot": 8, "steps_per_epoch": 3,
        "syn_num": 10, "cls_epochs": 2, "eval_every": 1, "checkpoint_every": 0}


@pytest.fixture(scope="module")
def apy(synthetic_root):
    return load(synthetic_root, "APY")


def _numbers(result):
    """Everything a run reports, without wall-clock times."""
    return [{k: v for k, v in e.items() if k != "wall_s"} for e in result.history]


@pytest.mark.parametrize("row", list(ROWS))
def test_every_row_learns_well_above_chance(apy, row):
    # 45 epochs (choice): plain and rml only begin to place unseen images around epoch 25 at this
    # size, and the last epoch's U (chosen by nobody) swings around chance until well after.
    # float64: in float32 the last bits of other CPU kernels grow through GAN training into
    # points of H (docs/regression.md), so the same seed could pass here and fail elsewhere.
    cfg = make_config("APY", row, "smoke", {**TINY, "gan_epochs": 45, "dtype": "float64"})
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


class OnGpu(torch.Tensor):
    """What torch.load(map_location="cuda") makes of a saved generator state, on a machine
    without a GPU: a tensor that says it lives on the GPU; ``.cpu()`` gives the CPU tensor."""

    @property
    def device(self):
        return torch.device("cuda", 0)

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).clone()


class AsIfOnGpu:
    """A CUDA generator's view of a CPU one: its ``set_state`` refuses what torch's refuses,
    anything but a CPU uint8 tensor, then hands the state on."""

    def __init__(self, gen: torch.Generator):
        self.gen, self.device = gen, torch.device("cuda", 0)

    def set_state(self, state):
        if type(state) is not torch.Tensor or state.device.type != "cpu" \
                or state.dtype != torch.uint8:
            raise TypeError("RNG state must be a torch.ByteTensor")
        self.gen.set_state(state)


def _restore_as_if_on_gpu(monkeypatch):
    """Resume as a CUDA run would: generator states loaded onto the GPU, CUDA generators."""
    real_load, real_restore = torch.load, VSBoost.load_state_dict

    def load_onto_gpu(*args, **kwargs):
        state = real_load(*args, **kwargs)
        state["rng"] = {k: [s.as_subclass(OnGpu) for s in v] for k, v in state["rng"].items()}
        return state

    def restore(self, state):
        real = self.rng
        self.rng = {k: [AsIfOnGpu(g) for g in v] for k, v in real.items()}
        try:
            real_restore(self, state)
        finally:
            self.rng = real

    monkeypatch.setattr(torch, "load", load_onto_gpu)
    monkeypatch.setattr(VSBoost, "load_state_dict", restore)


@pytest.mark.parametrize("where", ["as saved", "moved to the GPU"])
def test_run_killed_after_a_checkpoint_resumes_to_the_same_result(apy, tmp_path, monkeypatch,
                                                                  where):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 3})
    whole = train(apy, cfg, [9])[0]
    ckpt = tmp_path / "run.pt"

    def stop_after_two(epoch, total):
        if epoch == 2:
            raise KeyboardInterrupt  # stands in for a kill right after the epoch-2 checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [9], checkpoint=ckpt, progress=stop_after_two)
    assert ckpt.exists()
    if where == "moved to the GPU":
        _restore_as_if_on_gpu(monkeypatch)
    resumed = train(apy, cfg, [9], checkpoint=ckpt)[0]
    assert _numbers(resumed) == _numbers(whole)
    assert resumed.metrics == whole.metrics


def test_a_checkpoint_of_another_device_kind_is_refused_in_one_line_naming_the_fix(apy,
                                                                                 tmp_path):
    cfg = make_config("APY", "full", "smoke", {**FAST, "gan_epochs": 2, "checkpoint_every": 1})
    ckpt = tmp_path / "run.pt"

    def stop_after_one(epoch, total):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [9], checkpoint=ckpt, progress=stop_after_one)
    # What a CUDA run leaves: Philox generator states of 16 bytes, not the CPU's 5,056.
    state = torch.load(ckpt, weights_only=True)
    state["rng"] = {k: [torch.zeros(16, dtype=torch.uint8) for _ in v]
                    for k, v in state["rng"].items()}
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match=r"another kind of device.*fix: resume it on"):
        train(apy, cfg, [9], checkpoint=ckpt)


# ===== randomness: one stream per consumer =====


def test_rows_of_one_seed_train_on_the_same_episodes_in_every_epoch(apy, monkeypatch):
    drawn = defaultdict(list)
    real = VSBoost.draw_epoch

    def spy(self):
        out = real(self)
        drawn[self.cfg.row].append(out[0].clone())
        return out

    monkeypatch.setattr(VSBoost, "draw_epoch", spy)
    for row in ("plain", "rml", "full"):
        train(apy, make_config("APY", row, "smoke", {**FAST, "gan_epochs": 3}), [4])
    assert len(drawn["plain"]) == 3
    for row in ("rml", "full"):
        for epoch, (got, want) in enumerate(zip(drawn[row], drawn["plain"]), 1):
            assert torch.equal(got, want), (row, epoch)


def test_rows_of_one_seed_start_from_the_same_generator_and_critic(apy):
    cpu = torch.device("cpu")
    plain, full = (VSBoost(apy, make_config("APY", row, "smoke", FAST), [4], cpu)
                   for row in ("plain", "full"))
    for net in ("G", "D"):
        a, b = plain.nets[net].state_dict(), full.nets[net].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net


def test_how_often_one_evaluates_changes_no_trained_weight_and_no_evaluation(apy):
    history = {}
    for every in (1, 2):
        cfg = make_config("APY", "full", "smoke", {**FAST, "gan_epochs": 4, "eval_every": every})
        history[every] = {e["epoch"]: e for e in _numbers(train(apy, cfg, [4])[0])}
    assert sorted(history[2]) == [2, 4]
    for epoch in (2, 4):
        assert history[1][epoch] == history[2][epoch], epoch  # losses and scores, exactly


# ===== precision =====


def _flags():
    """Every reading of the float32 settings; outside a run torch answers them all."""
    return (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32, runtime.cuda_settings(), runtime.effective("cpu"))


@pytest.mark.parametrize("tf32", [True, False])
def test_the_float32_precision_is_the_runs_setting_and_is_restored_after_it(apy, monkeypatch,
                                                                            tf32):
    # The settings are process-wide and settable without a GPU: run as a CUDA run sets them.
    real = vtrain.run_precision
    monkeypatch.setattr(vtrain, "run_precision", lambda on, device: real(on, "cuda"))
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2, "tf32": tf32})
    before, inside = _flags(), []
    train(apy, cfg, [1], progress=lambda epoch, total: inside.append(runtime.cuda_settings()))
    want = "tf32" if tf32 else "ieee"
    assert inside == [{"matmul": want, "cudnn": want}] * 2
    assert _flags() == before

    def killed(epoch, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [1], progress=killed)
    assert _flags() == before


def test_run_precision_restores_a_precision_the_cublas_flag_cannot_say():
    original = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")  # the cuBLAS flag reads True, as for "high"
        before = _flags()
        with runtime.run_precision(False, "cuda"):
            assert runtime.cuda_settings() == {"matmul": "ieee", "cudnn": "ieee"}
        assert _flags() == before
    finally:
        torch.set_float32_matmul_precision(original)


def test_a_cpu_run_reports_ieee_float32_and_changes_no_flag(apy):
    before = _flags()
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 1, "tf32": True})
    (result,) = train(apy, cfg, [1], device="cpu")
    assert result.precision == {"device": "cpu", "float32_matmul": "ieee"}
    assert result.to_dict()["precision"] == result.precision
    assert _flags() == before


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


@pytest.mark.parametrize("row", list(ROWS))
def test_the_relation_probe_draws_no_randomness_and_exists_only_with_rml(apy, row):
    cfg = make_config("APY", row, "smoke", FAST)
    model = VSBoost(apy, cfg, [1, 2], torch.device("cpu"))
    before = {name: [g.get_state() for g in gens] for name, gens in model.rng.items()}
    scores = model.relation_scores()
    after = {name: [g.get_state() for g in gens] for name, gens in model.rng.items()}
    assert all(torch.equal(a, b) for name in before for a, b in zip(before[name], after[name]))
    if not cfg.settings["rml"]:
        assert scores is None
        return
    assert scores.shape == (2, 2) and bool(((scores > 0) & (scores < 1)).all())
    (result,) = train(apy, make_config("APY", row, "smoke", {**FAST, "gan_epochs": 1}), [1])
    assert {"relation_same", "relation_other"} <= set(result.history[-1])
