"""Launch settings that need no cluster and no GPU: job sizes, a GPU per local worker (with a fake
device list), runs stopped by the cluster, and the optimiser not swallowing a signal's exception.
The launcher against a real Slurm is tests/test_slurm.py."""

import dataclasses
import queue

import pytest
import torch

from bench import cluster, runner, store, sweep
from tests.test_sweep import plan


def fake_gpus(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_job_resources_follow_the_device_and_the_seeds_per_job_unless_given(monkeypatch):
    assert cluster.resources("cpu", 2) == {"gpus_per_node": 0, "cpus_per_task": 2, "mem_gb": 6.0}
    assert cluster.resources("cuda", 1)["gpus_per_node"] == 1
    fake_gpus(monkeypatch, 0)
    assert cluster.resources("auto", 1)["gpus_per_node"] == 0
    fake_gpus(monkeypatch, 2)
    assert cluster.resources("auto", 1)["gpus_per_node"] == 1
    assert cluster.resources("cuda", 5, gpus=2, cpus=3, mem_gb=7.5) == {
        "gpus_per_node": 2, "cpus_per_task": 3, "mem_gb": 7.5}


def test_local_workers_get_the_visible_gpus_round_robin_one_each(monkeypatch):
    fake_gpus(monkeypatch, 4)
    assert sweep.worker_devices("cuda", None) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert sweep.worker_devices("cuda", 6) == [f"cuda:{k}" for k in (0, 1, 2, 3, 0, 1)]
    assert sweep.worker_devices(None, None) == ["cuda:0"]
    assert sweep.worker_devices("cpu", 2) == ["cpu", "cpu"]
    fake_gpus(monkeypatch, 0)
    assert sweep.worker_devices(None, 3) == [None] * 3
    with pytest.raises(store.BenchError, match="--device cuda"):
        sweep.worker_devices("cuda", None)


def test_a_workers_gpu_reaches_the_trainer_and_the_runs_provenance(
        monkeypatch, tmp_path, data_root):
    fake_gpus(monkeypatch, 4)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev: f"fake {dev}")
    seen = []

    def train(data, cfg, seeds, *, device, **kw):
        seen.append(device)
        raise RuntimeError("no real GPU here")

    monkeypatch.setattr("vsboost.train.train", train)
    devices = queue.SimpleQueue()
    for device in sweep.worker_devices("cuda", 2):
        devices.put(device)
    p = plan(tmp_path, data_root, rows=("plain",), seeds=(0,), device="cuda")
    monkeypatch.setattr(runner, "_worker_device", None)
    sweep._take_device(devices)  # what the second worker's initializer does, after the first's
    sweep._take_device(devices)
    runner.run_job(p.jobs[0])
    record = store.read_record(p.folder / p.cells[0].run_id)
    assert seen == ["cuda:1"]
    assert record["provenance"]["device_index"] == 1
    assert record["provenance"]["device_name"] == "fake cuda:1"


def test_a_job_stopped_by_the_cluster_records_its_runs_with_the_reason_and_frees_them(
        monkeypatch, tmp_path, data_root):
    def train(*args, **kw):
        raise runner.Stopped("timeout", "time limit reached, no requeue left")

    monkeypatch.setattr("vsboost.train.train", train)
    p = plan(tmp_path, data_root, rows=("plain",), seeds=(0,))
    with pytest.raises(runner.Stopped):
        runner.run_job(p.jobs[0])
    rid = p.cells[0].run_id
    assert store.read_record(p.folder / rid)["status"] == "timeout"
    assert not store.is_running(p.folder, rid)
    again = plan(tmp_path, data_root, rows=("plain",), seeds=(0,))
    assert [j.seed_indices for j in again.jobs] == [(0,)]  # retried like a failed run
    assert "1 timeout" in sweep.summary(again.cells)


def test_a_job_cancelled_before_it_started_is_recorded_cancelled_by_the_launcher(
        tmp_path, data_root):
    p = plan(tmp_path, data_root, rows=("plain",), seeds=(0, 1), seeds_per_job=2)
    runner.record_stopped(p.jobs[0], "cancelled", "job 12_0 cancelled by 0", wait_s=1)
    assert [store.status_of(p.folder / c.run_id) for c in p.cells] == ["cancelled"] * 2


def test_a_cuda_job_stopped_while_queued_is_recorded_from_a_login_node_without_cuda(
        tmp_path, data_root, monkeypatch):
    p = plan(tmp_path, data_root, rows=("plain",), seeds=(0,))
    job = dataclasses.replace(p.jobs[0], device="cuda", kind="cuda")

    def no_cuda(*args, **kwargs):
        raise AssertionError("Torch not compiled with CUDA enabled")  # a CPU build's answer

    monkeypatch.setattr(torch.cuda, "get_device_name", no_cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runner.record_stopped(job, "cancelled", "job 12_0 cancelled by 0", wait_s=1)
    (rid,) = runner.run_ids(job).values()
    (record,) = store.load_records(p.folder)
    assert (record["run_id"], record["status"]) == (rid, "cancelled")
    assert record["provenance"]["device"] == "cuda"  # what the job asked for
    assert record["provenance"]["device_name"] is None  # nothing probed here


def test_the_optimiser_lets_an_exception_raised_during_its_construction_through(monkeypatch):
    from vsboost import models

    class SignalError(RuntimeError):
        pass

    def adam(*args, fused=None, **kw):
        if fused:  # the signal lands in the first constructor; a fallback would swallow it
            raise SignalError("raised by a signal handler")
        return "the fallback optimiser"

    monkeypatch.setattr(torch.optim, "Adam", adam)
    with pytest.raises(SignalError):
        models.adam([torch.nn.Parameter(torch.zeros(2))], 1e-3, (0.5, 0.999))


def test_the_sbatch_error_line_is_kept_from_submitits_message():
    from submitit.core.utils import FailedJobError

    exc = FailedJobError("Could not submit job.\nsbatch: error: invalid partition specified: "
                         "nosuch\nsbatch: error: Batch job submission failed: Invalid partition")
    assert cluster._sbatch_error(exc) == "sbatch: error: Batch job submission failed: Invalid " \
                                         "partition"


def _paper_shapes(dataset):
    from vsboost.memory import Shapes
    from vsboost.synthetic import LAYOUT, SENT_DIM

    lay = LAYOUT[dataset]
    return Shapes(lay.trainval, lay.test_seen, lay.test_unseen, lay.n_unseen, 2048,
                  SENT_DIM if dataset == "CUB" else lay.att_dim)


@pytest.mark.parametrize("dataset", ["APY", "AWA2", "CUB", "FLO", "SUN"])
def test_default_seeds_per_job_fit_a_12_gb_card_by_the_memory_estimate(dataset):
    from vsboost import memory
    from vsboost.config import ROWS, make_config

    cfgs = [make_config(dataset, row, "paper", {}) for row in ROWS]
    shapes = _paper_shapes(dataset)
    card = 12 * 10**9
    n = sweep.default_seeds_per_job("cuda", cfgs, shapes, card)
    widest = max(memory.per_seed_bytes(c, shapes) for c in cfgs)
    assert 1 <= n and memory.shared_bytes(shapes) + n * widest <= memory.USABLE * card
    assert sweep.default_seeds_per_job("cuda", cfgs, shapes, 80 * 2**30) == 5  # an 80 GB card
    assert sweep.default_seeds_per_job("cpu", cfgs, shapes) == 5


def test_the_estimate_sizes_awa2_below_five_seeds_on_a_12_gb_card():
    # ~9-10 GB at 5 seeds (the training state and the evaluation's copies): 5 would not fit.
    from vsboost.config import ROWS, make_config

    cfgs = [make_config("AWA2", row, "paper", {}) for row in ROWS]
    assert sweep.default_seeds_per_job("cuda", cfgs, _paper_shapes("AWA2"), 12 * 10**9) < 5
