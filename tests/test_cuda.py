"""Written for a GPU and skipped without one (conftest.py): what only CUDA shows. Run by
benchmarks/gpu_check.sh, whose CPU comparisons train the same tiny runs on both kinds.

CUDA and CPU draw different random numbers from the same seed, so a CUDA run is compared with
CPU runs as another sample of the same seed distribution, not number for number; within CUDA,
stacked seeds and a resumed run are compared with their solo and uninterrupted runs.
"""

import statistics

import pytest
import torch

from vsboost.config import make_config
from vsboost.data import load
from vsboost.train import train

pytestmark = pytest.mark.cuda

# Small enough for seconds per run, large enough to learn on the synthetic APY (choice).
TINY = {"hidden": 64, "enc_dim": 64, "n_way": 8, "k_shot": 8, "steps_per_epoch": 0,
        "syn_num": 30, "cls_epochs": 4, "eval_every": 1, "checkpoint_every": 1,
        "tf32": False}  # IEEE float32 on both kinds: only the draws differ
SEEDS = [0, 1, 2, 3]
# choice: CUDA's mean H over SEEDS within 3 standard errors of the CPU seeds' spread, plus 0.02
# for the few seeds: what "the same distribution" allows at 4 seeds.
SE_MULTIPLE, SLACK = 3.0, 0.02


@pytest.fixture(scope="module")
def apy(synthetic_root):
    return load(synthetic_root, "APY")


def _h(results):
    return [r.metrics["last"]["H"] for r in results]


def test_a_tiny_cuda_run_gives_the_cpu_runs_metrics_within_seed_noise(apy):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 3})
    cpu, cuda = _h(train(apy, cfg, SEEDS, device="cpu")), _h(train(apy, cfg, SEEDS,
                                                                    device="cuda"))
    bound = SE_MULTIPLE * statistics.stdev(cpu) / len(cpu) ** 0.5 + SLACK
    assert abs(statistics.mean(cuda) - statistics.mean(cpu)) <= bound, (cpu, cuda)


def test_a_short_cuda_run_learns(apy):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 3})
    (result,) = train(apy, cfg, [0], device="cuda")
    chance = 1 / apy.n_classes
    assert result.status == "done" and result.metrics["last"]["H"] > 5 * chance
    losses = [e["loss_d"] for e in result.history]
    assert all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("row", ["plain", "full"])
def test_stacked_cuda_seeds_match_their_solo_runs(apy, row):
    # Not bit for bit: stacked matmuls may sum in another order, and the gather in the RML loss
    # has a non-deterministic CUDA backward.
    cfg = make_config("APY", row, "smoke", {**TINY, "gan_epochs": 2})
    stacked = train(apy, cfg, [5, 6, 7], device="cuda")
    solo = train(apy, cfg, [6], device="cuda")[0]
    for got, want in zip(stacked[1].history, solo.history, strict=True):
        for key in ("loss_d", "loss_g", "loss_metric"):
            assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-4), key
        assert got["H"] == pytest.approx(want["H"], abs=0.02)


def stop_after(epochs: int):
    """A progress callback that interrupts the training after ``epochs`` epochs."""
    def progress(epoch, total):
        if epoch == epochs:
            raise KeyboardInterrupt
    return progress


def test_a_cuda_run_resumes_from_its_checkpoint(apy, tmp_path):
    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 3})
    whole = train(apy, cfg, [9], device="cuda")[0]
    ckpt = tmp_path / "run.pt"

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [9], device="cuda", checkpoint=ckpt, progress=stop_after(2))
    resumed = train(apy, cfg, [9], device="cuda", checkpoint=ckpt)[0]
    assert resumed.status == "done" and len(resumed.history) == 3
    for got, want in zip(resumed.history, whole.history, strict=True):
        for key in ("loss_d", "loss_g", "loss_metric"):
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-5), key


def test_a_cpu_checkpoint_is_refused_by_a_cuda_run_naming_the_fix(apy, tmp_path):
    from vsboost.train import CheckpointError

    cfg = make_config("APY", "full", "smoke", {**TINY, "gan_epochs": 2})
    ckpt = tmp_path / "run.pt"

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [9], device="cpu", checkpoint=ckpt, progress=stop_after(1))
    with pytest.raises(CheckpointError, match="another kind of device.*fix"):
        train(apy, cfg, [9], device="cuda", checkpoint=ckpt)
