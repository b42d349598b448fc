"""Planning a grid, grouping seeds into batched jobs, and the local and submitit launchers."""

import csv

import numpy as np
import torch

from bench import runner, store, sweep
from vsboost.config import make_config
from vsboost.fingerprint import of_method

# Smallest settings that still run every part of the trainer (choice: test speed).
TINY = (("gan_epochs", "2"), ("steps_per_epoch", "2"), ("hidden", "32"), ("enc_dim", "32"),
        ("syn_num", "10"), ("cls_epochs", "1"), ("n_way", "2"), ("k_shot", "8"))


def plan(results, data_root, rows=("plain", "full"), seeds=(0, 1), **kw):
    return sweep.make_plan(["APY"], list(rows), list(seeds), results=results, name="t",
                           profile="smoke", overrides=TINY, data_root=data_root, **kw)


def test_a_plan_on_a_cuda_machine_gives_its_runs_cuda_ids_and_jobs_that_train_there(
        tmp_path, data_root, monkeypatch):
    on_cpu = plan(tmp_path, data_root, rows=("plain",), seeds=(0,))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # what --device auto sees
    on_gpu = plan(tmp_path, data_root, rows=("plain",), seeds=(0,))
    assert on_gpu.cells[0].run_id == on_cpu.cells[0].run_id + "-cuda"
    assert (on_cpu.jobs[0].kind, on_gpu.jobs[0].kind) == ("cpu", "cuda")
    assert runner.run_ids(on_gpu.jobs[0]) == {0: on_gpu.cells[0].run_id}


def test_pending_seeds_of_a_cell_are_grouped_into_jobs_of_at_most_seeds_per_job(
        tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("plain", "full"), seeds=range(5), seeds_per_job=2)
    assert [(j.row, j.seed_indices) for j in p.jobs] == [
        ("plain", (0, 1)), ("plain", (2, 3)), ("plain", (4,)),
        ("full", (0, 1)), ("full", (2, 3)), ("full", (4,))]
    assert all(c.run_id.endswith("-" + p.jobs[0].fingerprint[:8]) for c in p.cells)
    assert all(j.data["kind"] == "synthetic" for j in p.jobs)
    assert set(p.references) == {"APY"}


def test_planning_writes_nothing(tmp_path, data_root):
    plan(tmp_path / "results", data_root)
    assert not (tmp_path / "results").exists()


def test_finished_and_failed_runs_are_planned_differently(tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("full",), seeds=(0, 1, 2), seeds_per_job=5)
    for cell, status in zip(p.cells, ("done", "failed")):
        run = p.folder / cell.run_id
        run.mkdir(parents=True)
        config_hash, fingerprint = cell.run_id.split("-")[3:5]
        key = {"dataset": "APY", "row": "full", "seed_index": cell.seed_index, "seed": 0,
               "config_hash": config_hash, "data_fingerprint": fingerprint}
        scores = {"U": 0.5, "S": 0.5, "H": 0.5}
        store.write_record(run, {"schema": 1, "run_id": cell.run_id, "key": key,
                                 "status": status, "synthetic": True,
                                 "metrics": {"paper": scores, "last": scores},
                                 "provenance": {"code": of_method("vsboost")}})
    p = plan(tmp_path, data_root, rows=("full",), seeds=(0, 1, 2), seeds_per_job=5)
    assert [c.status for c in p.cells] == ["done", "failed", "not launched"]
    assert [j.seed_indices for j in p.jobs] == [(1, 2)]
    assert sweep.summary(p.cells) == (
        "3 runs: 1 done / 1 failed / 0 incomplete / 1 not launched -> 2 to run")


def test_the_seed_depends_on_dataset_and_index_not_on_the_row(tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("plain", "full"), seeds=(1,))
    hashes = {row: make_config("APY", row, "smoke", dict(TINY)).hash() for row in ("plain", "full")}
    assert [c.run_id.split("-")[3] for c in p.cells] == [hashes["plain"], hashes["full"]]
    assert [c.seed_index for c in p.cells] == [1, 1]


def test_features_are_kept_for_the_full_row_seed_0_by_default(tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("plain", "full"), seeds=(0, 1))
    assert [j.features for j in p.jobs] == [(), (0,)]
    p = plan(tmp_path, data_root, rows=("plain",), seeds=(0, 1), features="all")
    assert [j.features for j in p.jobs] == [(0, 1)]


def test_parallel_local_sweep_trains_each_run_once_and_a_rerun_trains_nothing(
        tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("plain", "full"), seeds=(0, 1), seeds_per_job=2)
    cells = sweep.execute(p, launcher="local", jobs=2)
    assert [c.status for c in cells] == ["done"] * 4
    for cell in cells:
        log = (p.folder / cell.run_id / store.LOG).read_text()
        assert log.count(" start ") == 1
        # Both seeds of a cell were one batched job.
        assert "job seeds=[0, 1]" in log
    with open(p.folder / store.RUNS_CSV, newline="") as f:
        assert sorted(r["run_id"] for r in csv.DictReader(f)) == sorted(c.run_id for c in cells)
    features = np.load(p.folder / cells[2].run_id / store.FEATURES)
    assert features["real_unseen_raw"].dtype == np.float32
    assert features["real_unseen_raw"].shape[1] <= runner.PCA_DIMS
    assert len(features["real_unseen_raw"]) == len(features["real_unseen_y"])
    assert not any((p.folder / c.run_id / store.FEATURES).exists() for c in cells[:2])
    assert not list((p.folder).glob(f"{store.CKPT_DIR}/*.pt"))

    again = plan(tmp_path, data_root, rows=("plain", "full"), seeds=(0, 1))
    assert again.jobs == []
    assert sweep.summary(again.cells).endswith("-> 0 to run")


def test_submitit_launcher_runs_a_sweep_through_its_local_executor(tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("plain",), seeds=(0,))
    cells = sweep.execute(p, launcher="submitit", cluster="local",
                          submitit_options={"timeout_min": 10})
    assert [c.status for c in cells] == ["done"]
    assert store.read_record(p.folder / cells[0].run_id)["metrics"]["paper"]["H"] >= 0
    assert list((p.folder / "_submitit").iterdir())
