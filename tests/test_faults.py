"""The faults that concern runs (docs/harness.md): a killed sweep, a crash inside one run, two
sweeps at once, resuming inside a run, divergence, and a results folder that cannot be written."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench import store, sweep
from bench.cli import cli
from vsboost import train as vtrain

REPO = Path(__file__).resolve().parents[1]
TINY = (("gan_epochs", "2"), ("steps_per_epoch", "2"), ("hidden", "32"), ("enc_dim", "32"),
        ("syn_num", "10"), ("cls_epochs", "1"), ("n_way", "2"), ("k_shot", "8"))


def plan(results, data_root, rows, overrides=TINY, seeds=(0,)):
    return sweep.make_plan(["APY"], list(rows), list(seeds), results=results, name="t",
                           profile="smoke", overrides=overrides, data_root=data_root,
                           seeds_per_job=1)


def bench_process(results, data_root, rows, overrides):
    """A `bench sweep` in its own process, as a person or a cluster would start it."""
    sets = [x for key, value in overrides for x in ("--set", f"{key}={value}")]
    command = [sys.executable, "-m", "bench", "sweep", "--datasets", "APY", "--rows", rows,
               "--seeds", "1", "--seeds-per-job", "1", "--profile", "smoke", *sets,
               "--data-root", str(data_root), "--results", str(results), "--name", "t"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def starts(run_dir: Path) -> int:
    return (run_dir / store.LOG).read_text().count(" start ")


def all_records_parse(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in folder.glob(f"*/{store.RECORD}")]


def test_a_killed_sweep_resumes_without_redoing_finished_runs(tmp_path, data_root):
    # Long enough (choice) that the second run can be caught between two checkpoints.
    overrides = (*TINY[1:], ("gan_epochs", "6"), ("checkpoint_every", "1"))
    p = plan(tmp_path, data_root, ("plain", "full"), overrides)
    first, second = (p.folder / c.run_id for c in p.cells)
    process = bench_process(tmp_path, data_root, "plain,full", overrides)
    deadline = time.monotonic() + 120
    while not (store.status_of(first) == "done" and list(p.folder.glob("_ckpt/*full*.pt"))):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the sweep ended before it could be killed in its second run:\n"
                        + process.stdout.read().decode())
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()

    assert store.status_of(second) == "incomplete"
    assert [r["run_id"] for r in all_records_parse(p.folder)] == [first.name]

    cells = sweep.execute(plan(tmp_path, data_root, ("plain", "full"), overrides))
    assert [c.status for c in cells] == ["done", "done"]
    assert (starts(first), starts(second)) == (1, 2)
    assert len(all_records_parse(p.folder)) == 2
    with open(p.folder / store.RUNS_CSV, newline="") as f:
        assert sorted(r["status"] for r in csv.DictReader(f)) == ["done", "done"]
    assert not list(p.folder.glob("_ckpt/*.pt"))


def test_a_crash_in_one_run_is_recorded_as_failed_the_sweep_goes_on_and_a_rerun_retries_it(
        tmp_path, data_root, monkeypatch):
    real_train = vtrain.train

    def crash_on_sml(data, cfg, seeds, **kw):
        if cfg.row == "sml":
            raise RuntimeError("injected\ntrainer failure")
        return real_train(data, cfg, seeds, **kw)

    monkeypatch.setattr(vtrain, "train", crash_on_sml)
    cells = sweep.execute(plan(tmp_path, data_root, ("sml", "plain")))
    assert [c.status for c in cells] == ["failed", "done"]
    failed = tmp_path / "t" / cells[0].run_id
    record = store.read_record(failed)
    assert record["error"] == "RuntimeError: injected trainer failure"
    assert record["metrics"] is None
    assert "Traceback" in (failed / store.LOG).read_text()
    with open(tmp_path / "t" / store.RUNS_CSV, newline="") as f:
        assert sorted(r["status"] for r in csv.DictReader(f)) == ["done", "failed"]

    monkeypatch.setattr(vtrain, "train", real_train)
    again = plan(tmp_path, data_root, ("sml", "plain"))
    assert [j.row for j in again.jobs] == ["sml"]
    assert [c.status for c in sweep.execute(again)] == ["done", "done"]
    assert store.read_record(failed)["error"] is None


def test_two_concurrent_sweeps_never_train_a_run_twice_and_lose_nothing(tmp_path, data_root):
    # Both start with the sml run, so without locks both would train it.
    first = bench_process(tmp_path, data_root, "sml,plain", TINY)
    second = bench_process(tmp_path, data_root, "sml,rml", TINY)
    for process in (first, second):
        output = process.communicate(timeout=300)[0].decode()
        assert process.returncode == 0, output
    p = plan(tmp_path, data_root, ("sml", "plain", "rml"))
    assert [c.status for c in p.cells] == ["done"] * 3
    assert [starts(p.folder / c.run_id) for c in p.cells] == [1, 1, 1]
    with open(p.folder / store.RUNS_CSV, newline="") as f:
        assert sorted(r["run_id"] for r in csv.DictReader(f)) == sorted(c.run_id for c in p.cells)


class Killed(BaseException):
    """Stands for SIGKILL inside one process: nothing catches it, no record gets written."""


def test_a_run_resumed_from_its_checkpoint_ends_with_the_metrics_of_an_uninterrupted_run(
        tmp_path, data_root, monkeypatch):
    overrides = (*TINY[1:], ("gan_epochs", "4"), ("checkpoint_every", "2"))
    whole = plan(tmp_path / "whole", data_root, ("full",), overrides)
    sweep.execute(whole)

    real_train = vtrain.train

    def killed_after_epoch_3(data, cfg, seeds, **kw):
        def progress(epoch, total):
            if epoch == 3:
                raise Killed

        return real_train(data, cfg, seeds, **{**kw, "progress": progress})

    cut = plan(tmp_path / "cut", data_root, ("full",), overrides)
    monkeypatch.setattr(vtrain, "train", killed_after_epoch_3)
    with pytest.raises(Killed):
        sweep.execute(cut)
    assert store.status_of(cut.folder / cut.cells[0].run_id) == "incomplete"
    (checkpoint,) = cut.folder.glob("_ckpt/*.pt")
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 2

    monkeypatch.setattr(vtrain, "train", real_train)
    sweep.execute(cut)
    resumed = store.read_record(cut.folder / cut.cells[0].run_id)
    uninterrupted = store.read_record(whole.folder / whole.cells[0].run_id)
    assert metrics(resumed) == pytest.approx(metrics(uninterrupted))
    assert [h["H"] for h in resumed["history"]] == pytest.approx(
        [h["H"] for h in uninterrupted["history"]])


def metrics(record: dict) -> dict:
    return {k: v for k, v in store.flatten(record).items()
            if k.startswith(("paper_", "last_", "czsl_"))}


def test_a_diverged_run_is_recorded_as_diverged_with_its_epoch_and_no_nan(
        tmp_path, data_root, monkeypatch):
    real_train = vtrain.train

    def with_infinite_features(data, cfg, seeds, **kw):
        data.train_x[:] = float("inf")  # every loss of the first epoch becomes NaN
        return real_train(data, cfg, seeds, **kw)

    monkeypatch.setattr(vtrain, "train", with_infinite_features)
    cells = sweep.execute(plan(tmp_path, data_root, ("full",)))
    assert [c.status for c in cells] == ["diverged"]
    text = (tmp_path / "t" / cells[0].run_id / store.RECORD).read_text()
    record = json.loads(text)
    assert record["diverged_epoch"] == 1 and record["metrics"] is None
    assert "NaN" not in text and "Infinity" not in text
    assert plan(tmp_path, data_root, ("full",)).jobs == []  # finished: never retrained


@pytest.mark.parametrize("make_unwritable", ["file", "read-only"])
def test_a_results_folder_that_cannot_be_written_is_one_error_line_exit_2(
        tmp_path, data_root, make_unwritable):
    if make_unwritable == "file":
        (tmp_path / "blocker").write_text("")
        results = tmp_path / "blocker" / "results"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes through permission bits")
        (tmp_path / "ro").mkdir(mode=0o500)
        results = tmp_path / "ro" / "results"
    args = ["sweep", "--datasets", "APY", "--rows", "plain", "--seeds", "1", "--profile", "smoke",
            "--data-root", str(data_root), "--results", str(results)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: results folder ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not results.exists()
