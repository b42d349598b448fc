"""The pure parts of `bench perf` (FLOP counting, projections, target verdicts, the report) and
the exactness of the core's performance rewrites: none may change a number beyond float rounding."""

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.cli import cli
from bench.perf import measure, projection, render, worker
from bench.store import BenchError
from vsboost.losses import gradient_penalty
from vsboost.models import Critic, StackedLinear, reset_all

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def _dataset(**over):
    ds = {"dataset": "CUB", "batch": 64, "steps": 110, "epochs": 300, "eval_every": 1,
          "syn_num": 100, "cls_epochs": 25, "cls_epochs_timed": 2, "iter_s": 2.0,
          "iter_s_all": [2.0, 2.5], "iter_flops": 100e9, "peak_gflops": 100.0,
          "step_mm_gflops": 60.0, "step_mm_shape": "[64 x 2048] @ [2048 x 4096], forward",
          "prep_s": 1.0, "gzsl_s": 10.0, "czsl_s": 4.0, "eval_s": 15.0, "eval_flops": 300e9,
          "gzsl_flops": 200e9, "mem_start": 2**28, "mem_peak": 2**30}
    return {**ds, **over}


def _run(device="cpu", datasets=None, **over):
    run = {"env": {"device": device, "name": "Test CPU 9000", "torch": "2.13.0", "threads": 2,
                   "cores": 2, "python": "3.11.7", "tf32": False},
           "datasets": datasets if datasets is not None else [_dataset()], "seeds": 5,
           "command": "bench perf",
           "stacking": {"dataset": "CUB", "members": 5, "single_s": 2.0, "stacked_s": 8.0,
                        "single_flops": 100e9, "stacked_flops": 500e9, "peak_gflops": 100.0},
           "demo": {"dataset": "AWA2", "scale": 0.1, "members": 2, "epoch_s": 3.0,
                    "mem_start": 2**28, "mem_peak": 2**29}}
    return {**run, **over}


def test_projection_is_steps_times_iteration_plus_evaluation_per_epoch():
    p = projection.project(_dataset())
    assert p["epoch_s"] == 110 * 2.0
    assert p["training_s"] == 300 * (220.0 + 15.0)
    assert p["iter_gflops"] == pytest.approx(50.0)
    assert p["iter_of_peak"] == pytest.approx(0.5)
    assert p["step_mm_of_peak"] == pytest.approx(0.6)
    assert p["eval_of_epoch"] == pytest.approx(15.0 / 220.0)
    assert p["eval_flops_of_epoch"] == pytest.approx(300e9 / (110 * 100e9))
    assert p["fit_gflops"] == pytest.approx(20.0)  # 200 GFLOP in 10 s
    assert p["fit_of_peak"] == pytest.approx(0.2)


def test_evaluating_every_second_epoch_halves_the_evaluation_share_of_a_training():
    p = projection.project(_dataset(eval_every=2))
    assert p["training_s"] == 300 * (220.0 + 7.5)


def test_stack_ratio_compares_m_single_runs_with_one_stacked_run():
    stack = _run()["stacking"]
    assert projection.stack_ratio(stack) == 1.25
    assert projection.stack_of_peak(stack) == pytest.approx({"single": 0.5, "stacked": 0.625})


def test_a_training_counts_its_checkpoint_writes_and_stacking_does_not_speed_them_up():
    # 300 epochs, a checkpoint every 25 (12 writes) of 4 s each for one member.
    p = projection.project(_dataset(checkpoint_every=25, ckpt_s=4.0))
    assert p["checkpoint_s"] == 12 * 4.0
    assert p["training_s"] == 300 * (220.0 + 15.0) + 48.0
    trainings, writes = {"APY": 148.0}, {"APY": 48.0}
    assert projection.grid_seconds(trainings, seeds=5, speedup=2.0, checkpoints=writes) == \
        (100.0 / 2 + 48.0) * 4 * 5
    assert projection.project(_dataset())["checkpoint_s"] is None  # an older run: not measured


def test_grid_stacks_only_when_stacking_is_faster():
    trainings = {"APY": 100.0, "CUB": 300.0}
    assert projection.grid_seconds(trainings, seeds=5, speedup=2.0) == 400 * 4 * 5 / 2
    assert projection.grid_seconds(trainings, seeds=5, speedup=0.8) == 400 * 4 * 5


def test_flop_counter_counts_two_flops_per_multiply_add_of_a_stacked_layer():
    layer = StackedLinear(3, 16, 8)
    flops, out = measure.counted(lambda: layer(torch.rand(3, 5, 16)))
    assert out.shape == (3, 5, 8)
    assert flops == 2 * 3 * 5 * 16 * 8


@pytest.mark.parametrize(("seconds", "text"), [(5.04, "5.0 s"), (600, "10.0 min"),
                                               (36000, "10.0 h"), (864000, "10.0 days")])
def test_times_print_in_a_readable_unit(seconds, text):
    assert render.fmt_time(seconds) == text


def test_targets_compare_each_measurement_with_its_bound():
    got = projection.verdicts(_run(datasets=[_dataset(), _dataset(dataset="SUN", eval_s=100.0)]))
    assert got["step"].met is True  # 50% >= 40%
    assert got["eval"].value == pytest.approx(100.0 / 220.0)
    assert (got["eval"].detail, got["eval"].met) == ({"dataset": "SUN"}, False)  # 45% > 25%
    assert (got["stacking"].value, got["stacking"].met) == (1.25, False)  # 1.25x < 1.5x
    assert (got["demo"].value, got["demo"].met) == (2**29, True)  # 0.5 GiB <= 4 GiB
    assert "grid" not in got  # only measured with every dataset


def test_a_value_on_the_bound_meets_it():
    at_bound = _dataset(eval_s=0.25 * 220.0, iter_flops=80e9)  # exactly 25%, 40%
    got = projection.verdicts(_run(datasets=[at_bound]))
    assert got["step"].met is True and got["eval"].met is True
    assert projection.over_eval_bound(_run(datasets=[at_bound])) == []


def test_gpu_run_has_no_step_bound_but_a_grid_bound():
    got = projection.verdicts(_run(device="cuda", grid_s=4000.0))
    assert got["step"].met is None
    assert (got["grid"].value, got["grid"].met) == (4000.0, False)
    assert (got["stacking"].met, got["eval"].met) == (False, True)  # 1.25x < 4x; 7% <= 25%


def _cells(text: str, first: str) -> list[str]:
    """The cells of the markdown table row whose first cell is ``first``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no table row {first!r} in:\n{text}")


def test_report_marks_the_gpu_column_not_measured_without_a_gpu_run():
    text = render.render({"cpu": _run()})
    assert _cells(text, "1. step at CUB shapes, of peak") == [
        "1. step at CUB shapes, of peak", ">= 40% on CPU",
        "50% (matmul at the step's shapes: 60%)", "yes", "not measured", "-"]
    assert _cells(text, "5. demo peak memory")[2:4] == ["0.50 GiB", "yes"]
    assert "## GPU\n\nNot measured" in text
    assert "## CPU: Test CPU 9000" in text
    assert _cells(text, "CUB") == ["CUB", "64", "2.00 s", "100", "50", "50%", "60%", "15.0 s",
                                   "7% (3%)", "3.7 min", "19.6 h", "1.00 GiB"]


def test_report_fills_both_columns_and_is_the_same_text_for_the_same_numbers():
    runs = {"cpu": _run(), "cuda": _run(device="cuda", grid_s=1800.0)}
    text = render.render(runs)
    assert text == render.render(runs)
    assert _cells(text, "4. reproduce grid on one GPU") == [
        "4. reproduce grid on one GPU", "<= 60 min", "-", "-", "30.0 min", "yes"]
    assert "not measured" not in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text)  # no timestamps


def test_report_says_what_each_target_is_for():
    text = render.render({"cpu": _run()})
    for target in projection.TARGETS.values():
        assert f"- {target.title}: {target.why}" in text


def test_committed_cpu_run_renders_with_its_verdicts_and_rates():
    run = json.loads((REPORTS / "perf-cpu.json").read_text())
    text = render.render({"cpu": run})
    assert _cells(text, "1. step at CUB shapes, of peak")[2:] == [
        "56% (matmul at the step's shapes: 70%)", "yes", "not measured", "-"]
    assert _cells(text, "2. evaluation / generator epoch")[2:4] == ["worst: SUN 38%", "**no**"]
    assert _cells(text, "3. seeds stacked vs separate runs")[2:4] == ["0.95x (5 seeds)", "**no**"]
    assert _cells(text, "4. reproduce grid on one GPU")[2:4] == ["37.7 days on this CPU", "-"]
    assert _cells(text, "5. demo peak memory")[2:4] == ["0.46 GiB", "yes"]
    assert _cells(text, "CUB")[1:6] == ["64", "1.16 s", "109", "94", "56%"]
    assert "- CPU, evaluation, SUN: its FLOPs alone are 25% of a generator epoch's" in text
    assert "so 0.95x the throughput of 5 separate runs" in text
    assert "(5 datasets x 4 rows x 5 seeds): 37.7 days" in text
    assert "## GPU\n\nNot measured" in text


def test_shaped_benchmark_has_the_real_dimensions_and_class_split():
    data = measure.shaped_benchmark("CUB", scale=0.01)
    assert data.att.shape == (200, 1024)  # CUB: 1024-d sentence embedding, 150 + 50 classes
    assert data.train_x.shape[1] == 2048
    assert set(data.train_y.tolist()) == set(data.seen.tolist())
    assert set(data.test_unseen_y.tolist()) == set(data.unseen.tolist())
    assert len(data.seen) == 150 and len(data.unseen) == 50


def test_a_measurement_runs_in_a_spawned_worker_with_the_threads_asked():
    env = worker.run({"kind": "environment", "device": "cpu"}, threads=2)
    assert env["device"] == "cpu"
    assert env["threads"] == 2  # this process runs one thread (conftest)


def test_a_failed_measurement_is_one_line_for_people():
    job = {"kind": "dataset", "dataset": "NOPE", "device": "cpu", "reps": 1, "cls_epochs": 1}
    with pytest.raises(BenchError, match="the dataset measurement failed: KeyError"):
        worker.run(job, threads=1)


def test_perf_help_lists_its_options_by_section_with_debug():
    result = CliRunner().invoke(cli, ["perf", "--help"])
    assert result.exit_code == 0, result.output
    for section in ("Measurement:", "Output:", "Debugging:"):
        assert section in result.output
    assert "--debug" in result.output


def test_perf_refuses_an_unknown_dataset_before_measuring_anything():
    result = CliRunner().invoke(cli, ["perf", "--device", "cpu", "--datasets", "CUB,XYZ"])
    assert result.exit_code == 2
    assert "expected some of APY, AWA2, CUB, FLO, SUN, found XYZ" in result.output


def test_closed_form_gradient_penalty_gives_the_double_backward_weight_gradients():
    # The critic's input gradient comes in closed form (no double backward); its gradients with
    # respect to every critic weight must equal autograd's second-order ones.
    torch.manual_seed(0)
    critic = Critic(members=2, feat_dim=6, att_dim=3, hidden=16)
    reset_all([critic], [torch.Generator().manual_seed(s) for s in (1, 2)])
    with torch.no_grad():
        for p in critic.parameters():
            p.normal_(0, 0.5)
    real, fake, att = torch.rand(2, 5, 6), torch.rand(2, 5, 6), torch.rand(2, 5, 3)
    alpha = torch.rand(2, 5, 1)

    gradient_penalty(critic, real, fake, att, alpha).sum().backward()
    closed = {n: _grad(p) for n, p in critic.named_parameters()}
    critic.zero_grad()
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed, att).sum(), mixed, create_graph=True)
    ((grad.norm(dim=-1) - 1) ** 2).mean(dim=1).sum().backward()
    for name, p in critic.named_parameters():
        torch.testing.assert_close(closed[name], _grad(p), rtol=1e-5, atol=1e-6, msg=name)


def _grad(p):
    """A parameter's gradient; none means the loss does not depend on it."""
    return p.grad.clone() if p.grad is not None else torch.zeros_like(p)


def test_split_critic_layer_initialises_as_one_layer_over_the_concatenation():
    critic = Critic(members=2, feat_dim=6, att_dim=3, hidden=4)
    reset_all([critic], [torch.Generator().manual_seed(s) for s in (7, 8)])
    for m, seed in enumerate((7, 8)):
        whole = torch.empty(9, 4).normal_(0.0, 0.02, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(critic.fc1.weight[m], whole[:6], rtol=0, atol=0)
        torch.testing.assert_close(critic.fc1.weight_att[m], whole[6:], rtol=0, atol=0)


def test_report_explains_each_missed_target_with_its_own_numbers():
    sun = _dataset(dataset="SUN", n_classes=717, eval_s=100.0)
    text = render.render({"cpu": _run(datasets=[_dataset(n_classes=200), sun])})
    assert "What stands in the way of the missed targets:" in text
    assert "- CPU, evaluation, SUN: its FLOPs alone are 3% of a generator epoch's" in text
    assert "a 717-way classifier" in text
    assert "one member alone already runs at 50% of peak here (stacked: 62%)" in text
    assert "evaluation, CUB" not in text  # CUB meets the bound
