"""The costs `bench perf` reports, as pytest-benchmark suites: one generator iteration (single
and stacked seeds), the evaluation's pieces, and the device's square-matmul peak.

Each records its FLOPs per call in ``extra_info`` so that GFLOP/s can be read off the table.
"""

import pytest
import torch

from bench.perf import measure
from vsboost import evaluate
from vsboost.train import VSBoost

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
ROUNDS = 3  # choice: a CUB iteration takes seconds on 2 CPU cores


def _model(dataset: str, members: int) -> VSBoost:
    return measure.paper_model(dataset, DEVICE, range(members))


def _run(benchmark, fn):
    """Benchmark ``fn``; its FLOPs are counted on the warm-up call (skipped with
    --benchmark-disable, where the body runs once)."""
    def synced():
        out = fn()
        measure.sync(DEVICE)
        return out

    if not benchmark.disabled:
        benchmark.extra_info["gflop_per_call"] = measure.counted(synced)[0] / 1e9
    return benchmark.pedantic(synced, rounds=ROUNDS)


@pytest.mark.parametrize("members", [1, 5])
def test_generator_iteration_at_cub_shapes(benchmark, members):
    model = _model("CUB", members)
    episodes = model.draw_epoch()[0]
    losses = _run(benchmark, lambda: model.iteration(episodes[:, 1]))
    assert losses.shape == (members, 6) and torch.isfinite(losses).all()


@pytest.fixture(scope="module")
def cub_eval():
    model = _model("CUB", 1)
    return model, model.eval_features()


def test_eval_features_at_cub_shapes(benchmark, cub_eval):
    model, _ = cub_eval
    feats = _run(benchmark, model.eval_features)
    assert feats.syn.shape == (1, len(model.data.unseen) * model.cfg.syn_num, model.cfg.enc_dim)


def test_gzsl_classifier_epoch_at_cub_shapes(benchmark, cub_eval):
    model, feats = cub_eval
    settings = {**evaluate.fit_settings(model.cfg), "epochs": 1}
    scores = _run(benchmark, lambda: evaluate.gzsl_scores(feats, model.data, model.rng["eval"],
                                                          **settings))
    assert scores.shape == (1, 1, 3)


def test_square_matmul_peak(benchmark):
    n = measure.SQUARE_N
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    out = _run(benchmark, lambda: a @ b)
    assert out.shape == (n, n)
