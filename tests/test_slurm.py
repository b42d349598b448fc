"""The submitit launcher against a real one-node Slurm with accounting.

Needs the cluster that ``scripts/slurm-one-node.sh start`` starts (as root; .ci/run does it) and
``VSBOOST_SLURM_CONF`` naming its slurm.conf; skipped otherwise. Each test runs ``bench sweep`` as
a person would, in a subprocess, on the tiny APY data; jobs ask for 1 core and 3 GB, so two run at
once on a 2-core node.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cluster, store

SLURM_CONF = os.environ.get("VSBOOST_SLURM_CONF", "")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (SLURM_CONF and Path(SLURM_CONF).is_file() and shutil.which("sbatch")),
    reason="no Slurm cluster: run `scripts/slurm-one-node.sh start` as root and set "
           "VSBOOST_SLURM_CONF=<its folder>/etc/slurm.conf (.ci/run does both)")


@pytest.fixture
def env():
    return {**os.environ, "SLURM_CONF": SLURM_CONF, "PYTHONPATH": str(ROOT)}


def sweep_args(tmp_path, data_root, *extra, rows="plain", seeds=1):
    return [sys.executable, "-m", "bench", "sweep", "--synthetic", "--data-root", str(data_root),
            "--profile", "smoke", "-d", "APY", "-r", rows, "--seeds", str(seeds),
            "--seeds-per-job", "1", "--set", "gan_epochs=1", "--device", "cpu",
            "--launcher", "submitit", "--cluster", "slurm", "--results", str(tmp_path),
            "--name", "s", *extra]


def bench(args, env, timeout=300):
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def records(folder: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in store.load_records(folder)}


def queued(job_ids) -> dict:
    return cluster.queue_states(list(job_ids), "bench-s")


def wait_until(condition, timeout=180, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_grid_goes_through_sbatch_to_records_and_a_rerun_finds_nothing_to_do(
        tmp_path, data_root, env):
    done = bench(sweep_args(tmp_path, data_root, rows="plain,full"), env)
    assert done.returncode == 0, done.stderr
    assert "submitted 2 jobs to slurm" in done.stdout
    found = records(tmp_path / "s")
    assert [r["status"] for r in found.values()] == ["done", "done"]
    # --device cpu asked for no GPU: the node has none, and sbatch would refuse a gres request.
    remembered = json.loads((tmp_path / "s" / "_submitit" / cluster.JOBS_FILE).read_text())
    assert len(remembered) == 2
    again = bench(sweep_args(tmp_path, data_root, rows="plain,full"), env)
    assert again.returncode == 0, again.stderr
    assert "0 jobs to run" in again.stdout and "submitted" not in again.stdout


def test_a_partition_that_does_not_exist_is_one_error_line_and_leaves_nothing(
        tmp_path, data_root, env):
    done = bench(sweep_args(tmp_path, data_root, "--partition", "nosuch"), env)
    assert done.returncode == 2
    assert done.stderr.startswith("error: slurm refused the jobs:")
    assert len(done.stderr.strip().splitlines()) == 1 and "--partition" in done.stderr
    assert not (tmp_path / "s").exists()


def test_a_job_that_can_never_be_scheduled_is_cancelled_and_named_with_the_option(
        tmp_path, data_root, env):
    nproc = os.cpu_count() or 1
    done = bench(sweep_args(tmp_path, data_root, "--cpus-per-job", str(nproc * 4)), env)
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: job ") and "PartitionConfig" in last
    assert "--cpus-per-job" in last
    job_id = last.split()[2]
    wait_until(lambda: not queued([job_id]), 30, "the job to leave the queue")
    assert not (tmp_path / "s").exists()


def test_scancel_of_a_running_job_records_its_runs_cancelled_and_frees_their_locks(
        tmp_path, data_root, env):
    proc = subprocess.Popen(sweep_args(tmp_path, data_root, "--set", "gan_epochs=30"), env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    folder = tmp_path / "s"
    try:
        wait_until(lambda: any(" start " in p.read_text() for p in folder.glob("*/log.txt")),
                   what="training to start")
        ids = list(json.loads((folder / "_submitit" / cluster.JOBS_FILE).read_text()))
        subprocess.run(["scancel", *ids], env=env, check=True)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, out
    (record,) = records(folder).values()
    assert record["status"] == "cancelled"
    assert not store.is_running(folder, record["run_id"])
    assert "APY plain s0: cancelled" in out


def test_a_time_limit_shorter_than_the_run_requeues_from_the_checkpoint_then_records_timeout(
        tmp_path, data_root, env):
    # --timeout-min 1: the warning comes 15 s before the limit; one requeue, then timeout.
    done = bench(sweep_args(tmp_path, data_root, "--set", "gan_epochs=400", "--set",
                            "checkpoint_every=1", "--timeout-min", "1", "--max-requeues", "1"),
                 env, timeout=400)
    assert done.returncode == 1, done.stdout + done.stderr
    (record,) = records(tmp_path / "s").values()
    assert record["status"] == "timeout"
    log = (tmp_path / "s" / record["run_id"] / store.LOG).read_text()
    assert log.count(" start ") == 2, log  # the first try and the requeued one
    assert "timeout" in done.stdout


def test_a_rerun_attaches_to_the_jobs_an_interrupted_sweep_left_queued(
        tmp_path, data_root, env):
    # Jobs long enough (20 epochs, the smoke default) that they are still queued or running when
    # the rerun plans: with one epoch they could all finish first, leaving nothing to attach to.
    args = sweep_args(tmp_path, data_root, "--set", "gan_epochs=20", seeds=3)
    proc = subprocess.Popen(args, env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    jobs_file = tmp_path / "s" / "_submitit" / cluster.JOBS_FILE
    try:
        wait_until(jobs_file.is_file, 60, "the jobs to be submitted")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    ids = list(json.loads(jobs_file.read_text()))
    assert f"scancel {' '.join(ids)}" in out
    again = bench(args, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "submitted" not in again.stdout and "attached to" in again.stdout
    # The jobs already running when the rerun planned finish on their own.
    wait_until(lambda: len(records(tmp_path / "s")) == 3, 180, "every run's record")
    found = records(tmp_path / "s")
    assert [r["status"] for r in found.values()] == ["done"] * 3
    for rid in found:
        assert (tmp_path / "s" / rid / store.LOG).read_text().count(" start ") == 1
