"""The Slurm launcher trusts only its own jobs (issue 20, findings 1, 2 and 4): a results folder
naming jobs, or a result file beside them, runs no code, cancels nothing and writes nowhere else.
Slurm is answered by stand-in ``squeue``/``sacct``/``scancel`` scripts on PATH that keep Slurm's
filters: a job listed for another user or under another name is not shown to ``--user/--name``."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys

import pytest
import submitit

from bench import cluster, runner, store
from tests.test_sweep import plan
from tests.test_untrusted import _Touch

# The queue the stand-ins answer from: job id -> (user, name, state).
STAND_IN = '''#!{python}
import json, sys
queue = json.load(open({queue!r}))
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv) + "\\n")
args = sys.argv[1:]
user = next((a.split("=", 1)[1] for a in args if a.startswith("--user=")), None)
name = next((a.split("=", 1)[1] for a in args if a.startswith("--name=")), None)
mine = [j for j, (u, n, s) in queue.items()
        if (user is None or u == user) and (name is None or n == name)]
if sys.argv[0].endswith("squeue"):
    print("\\n".join(f"{{j}}|{{queue[j][2]}}|None" for j in mine))
'''


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """Stand-in squeue and scancel; returns (queue file, call log)."""
    bin_dir, queue, log = tmp_path / "bin", tmp_path / "queue.json", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("squeue", "scancel", "sacct"):
        script = bin_dir / tool
        script.write_text(STAND_IN.format(python=sys.executable, queue=str(queue), log=str(log)))
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return queue, log


def planted(tmp_path, data_root, queue, owner, name):
    """A plan, plus a jobs.json naming job 4242 (one of the plan's jobs) and a result pickle
    beside it whose unpickling would create a marker file; 4242 is RUNNING for ``owner``."""
    p = plan(tmp_path / "results", data_root, rows=("plain",), seeds=(0,))
    folder = p.folder / "_submitit"
    folder.mkdir(parents=True)
    fields = dataclasses.asdict(p.jobs[0])
    (folder / cluster.JOBS_FILE).write_text(json.dumps({"4242": fields}))
    marker = tmp_path / "fired"
    (folder / "4242_0_result.pkl").write_bytes(pickle.dumps(("success", _Touch(marker))))
    queue.write_text(json.dumps({"4242": [owner, name, "RUNNING"]}))
    return p, folder, marker


def test_a_planted_job_of_another_user_is_not_attached_to_and_its_pickle_never_runs(
        tmp_path, data_root, slurm):
    queue, log = slurm
    p, folder, marker = planted(tmp_path, data_root, queue, "mallory", "anything")
    assert cluster._attach(p, folder, "slurm", cluster.job_name(p.folder)) == []
    assert not marker.exists()
    assert f"--user={cluster._user()}" in log.read_text()


def test_a_job_of_ours_under_another_sweeps_name_is_not_attached_to(tmp_path, data_root, slurm):
    queue, _ = slurm
    p, folder, marker = planted(tmp_path, data_root, queue, cluster._user(), "bench-other")
    assert cluster._attach(p, folder, "slurm", cluster.job_name(p.folder)) == []


def test_an_attached_job_is_collected_from_its_records_never_its_result_pickle(
        tmp_path, data_root, slurm, capsys):
    queue, _ = slurm
    p, folder, marker = planted(tmp_path, data_root, queue, cluster._user(),
                                cluster.job_name(tmp_path / "results" / "t"))
    (pair,) = cluster._attach(p, folder, "slurm", cluster.job_name(p.folder))
    assert pair[1].job_id == "4242"
    cluster._collect(*pair, waited=False)
    assert not marker.exists()
    assert "s0 not launched (job 4242, attached)" in capsys.readouterr().out


def test_jobs_json_cannot_point_the_launcher_at_another_folder(tmp_path, data_root, slurm):
    queue, _ = slurm
    p, folder, _ = planted(tmp_path, data_root, queue, cluster._user(),
                           cluster.job_name(tmp_path / "results" / "t"))
    jobs = json.loads((folder / cluster.JOBS_FILE).read_text())
    jobs["4242"]["folder"] = str(tmp_path / "elsewhere")
    (folder / cluster.JOBS_FILE).write_text(json.dumps(jobs))
    ((job, _),) = cluster._attach(p, folder, "slurm", cluster.job_name(p.folder))
    assert job.folder == str(p.folder)
    runner.record_stopped(job, "cancelled", "test", wait_s=0)
    assert not (tmp_path / "elsewhere").exists()


def test_a_remembered_job_training_runs_outside_the_plan_is_not_attached_to(
        tmp_path, data_root, slurm):
    queue, _ = slurm
    p, folder, _ = planted(tmp_path, data_root, queue, cluster._user(),
                           cluster.job_name(tmp_path / "results" / "t"))
    jobs = json.loads((folder / cluster.JOBS_FILE).read_text())
    jobs["4242"]["seed_indices"] = [7]
    (folder / cluster.JOBS_FILE).write_text(json.dumps(jobs))
    assert cluster._attach(p, folder, "slurm", cluster.job_name(p.folder)) == []


@pytest.mark.parametrize("body", ['{"4242": {"dataset": 1}}', '{"../x": {}}', "[1]", "{"])
def test_a_damaged_jobs_json_is_one_line_naming_it(tmp_path, data_root, slurm, body):
    queue, _ = slurm
    p, folder, _ = planted(tmp_path, data_root, queue, cluster._user(),
                           cluster.job_name(tmp_path / "results" / "t"))
    (folder / cluster.JOBS_FILE).write_text(body)
    with pytest.raises(store.BenchError) as err:
        cluster._attach(p, folder, "slurm", cluster.job_name(p.folder))
    assert str(folder / cluster.JOBS_FILE) in str(err.value) and "\n" not in str(err.value)


def test_scancel_is_restricted_by_slurm_to_our_jobs_under_the_sweeps_name(tmp_path, slurm):
    queue, log = slurm
    queue.write_text("{}")
    left = [(None, submitit.SlurmJob(folder=tmp_path, job_id=j)) for j in ("4242", "5555")]
    states = {"4242": ("PENDING", "PartitionConfig")}
    with pytest.raises(store.BenchError, match="can never start"):
        cluster._refuse_never(left, states, "bench-t")
    (call,) = [line for line in log.read_text().splitlines() if "scancel" in line.split()[0]]
    assert f"--user={cluster._user()}" in call and "--name=bench-t" in call
