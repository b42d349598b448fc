"""The submitit launcher: one cluster job per job of the plan, sized from the run, watched while it
waits, and recorded as it ended.

- Resources follow the run (:func:`resources`): GPUs from ``--device``, CPU cores and memory from
  the seeds a job trains together; every value can be overridden.
- Submission errors (sbatch refusing a partition or a GPU request) become one line, with nothing
  left behind: the submission's pickles are removed.
- Jobs are :class:`TrainJob` objects, checkpointable: at the time limit's warning signal submitit
  requeues the job, which resumes from the trainer's checkpoint, at most ``max_num_timeout``
  times; after that its runs are recorded ``timeout``. ``scancel`` records them ``cancelled``.
- While jobs wait, the bar shows pending / running / done and Slurm's pending reason; a reason
  that never clears (``NEVER``) cancels the jobs and says which option to change.
- ``_submitit/jobs.json`` remembers the submitted job ids, so a rerun attaches to jobs still
  queued instead of submitting them again; Ctrl-C says what stays queued and how to cancel it.

The folder is not trusted (results folders travel, and an interrupted sweep leaves its files):
a remembered job is attached to, polled or cancelled only when Slurm itself lists it among the
current user's jobs named for this sweep (``squeue --user --name``; ``scancel`` gets the same
filters), and only for runs of this plan, recorded in the plan's folder whatever ``jobs.json``
says. An attached job's result pickle is never read: its runs' records are, through
:mod:`bench.schema`. Only jobs this process submitted and waited for have their result read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import pwd
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError
from tqdm import tqdm

from bench import runner, store
from vsboost.errors import UserError
from vsboost.files import atomic_write, real_folder

JOBS_FILE = "jobs.json"
POLL_S = 5.0  # choice: one squeue call per 5 s is light for the scheduler, prompt for a person
# Slurm pending reasons that never clear by waiting (squeue --help-reasons / slurm.conf limits),
# with the option that changes the request.
NEVER = {
    "PartitionConfig": "--cpus-per-job, --mem-gb or --gpus-per-job (more than a node of the "
                       "partition has), or --partition",
    "PartitionNodeLimit": "--cpus-per-job or --mem-gb, or --partition",
    "PartitionTimeLimit": "--timeout-min (above the partition's MaxTime), or --partition",
    "BadConstraints": "--cpus-per-job, --mem-gb or --gpus-per-job",
    "ReqNodeNotAvail": "--partition",
    "InvalidAccount": "your Slurm account (sacctmgr) or --partition",
    "InvalidQOS": "your Slurm QOS or --partition",
    "QOSMaxCpuPerJobLimit": "--cpus-per-job",
    "QOSMaxMemoryPerJob": "--mem-gb",
    "QOSMaxGRESPerJob": "--gpus-per-job",
    "QOSMaxWallDurationPerJobLimit": "--timeout-min",
}
QUEUED = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")
STOPPED = {"CANCELLED": "cancelled", "TIMEOUT": "timeout", "PREEMPTED": "cancelled"}
# choice: per seed trained together, one core and 2 GB (the batched trainer's tensors grow with
# the members; APY at the paper profile stays under 1 GB per member), plus 2 GB for the process.
CPUS_PER_SEED, MEM_GB_PER_SEED, MEM_GB_BASE = 1, 2.0, 2.0


def resources(device: str, seeds_per_job: int, *, gpus: int | None = None,
              cpus: int | None = None, mem_gb: float | None = None) -> dict:
    """submitit parameters of one job: GPUs from ``--device`` (none for cpu; for auto, one when
    this machine has CUDA), cores and memory from the seeds per job; each ``None`` is a default."""
    if gpus is None:
        if device == "auto":
            import torch

            gpus = 1 if torch.cuda.is_available() else 0
        else:
            gpus = 1 if device == "cuda" else 0
    return {"gpus_per_node": gpus,
            "cpus_per_task": cpus if cpus is not None else CPUS_PER_SEED * seeds_per_job,
            "mem_gb": mem_gb if mem_gb is not None else MEM_GB_BASE + MEM_GB_PER_SEED
            * seeds_per_job}


class TrainJob(submitit.helpers.Checkpointable):
    """What a cluster job runs: :func:`bench.runner.run_job`, checkpointable. Requeued after a
    time-limit warning it resumes from the trainer's checkpoint (the default ``checkpoint``
    resubmits the same job, and the trainer finds its checkpoint file)."""

    def __call__(self, job: runner.Job) -> dict[int, str]:
        _stop_on_signals()
        return runner.run_job(job)


def _stop_on_signals() -> None:
    """SIGTERM (scancel, or the end of the time limit) stops the job at once, its runs recorded
    ``cancelled`` and their locks released, instead of submitit's ignoring it until Slurm's
    KillWait kills the process with the locks held. Out of requeues, the time-limit warning
    records the runs ``timeout``, not ``failed``."""
    requeue = signal.getsignal(signal.SIGUSR2)  # submitit's: checkpoint and requeue
    requeued = False

    def on_warning(signum, frame):
        nonlocal requeued
        requeued = True
        try:
            requeue(signum, frame)  # on success it requeues and exits (SystemExit)
        except UncompletedJobError as exc:
            requeued = False
            raise runner.Stopped("timeout", f"time limit reached, no requeue left ({exc})") \
                from None

    def on_term(signum, frame):
        if not requeued:  # a requeued job's SIGTERM is Slurm stopping it to run it again
            raise runner.Stopped("cancelled", "cancelled (SIGTERM from the cluster)")

    if callable(requeue):
        signal.signal(signal.SIGUSR2, on_warning)
    signal.signal(signal.SIGTERM, on_term)


def run(plan, cluster: str | None, options: dict, *, max_requeues: int = 3) -> None:
    """Submit the plan's jobs not already queued, then wait for all of them."""
    folder = Path(plan.folder) / "_submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster,
                                     slurm_max_num_timeout=max_requeues)
    params = {k: v for k, v in options.items() if v is not None}
    if executor.cluster == "slurm":
        # choice: the time-limit warning a quarter of the limit ahead, at most 90 s (submitit's
        # default), so that short limits leave time to train before it
        params["slurm_signal_delay_s"] = min(90, params.get("timeout_min", 60) * 15)
    else:
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    name = job_name(plan.folder)
    executor.update_parameters(name=name, **params)
    attached = _attach(plan, folder, executor.cluster, name)
    queued_runs = {rid for job, _ in attached for rid in runner.run_ids(job).values()}
    jobs = [dataclasses.replace(j, progress=False) for j in plan.jobs]
    jobs = [j for j in jobs if not set(runner.run_ids(j).values()) <= queued_runs]
    handles = _submit(executor, folder, jobs) if jobs else []
    if handles:
        tqdm.write(f"submitted {len(handles)} jobs to {executor.cluster}; logs in {folder}")
    if attached:
        tqdm.write(f"attached to {len(attached)} jobs still queued from an earlier sweep: "
                   f"{' '.join(h.job_id for _, h in attached)}")
    waiting = [*attached, *zip(jobs, handles, strict=True)]
    _remember(folder, waiting)
    _wait(waiting, executor.cluster, name, mine={h.job_id for h in handles})


def _submit(executor, folder: Path, jobs: list[runner.Job]) -> list:
    before = set(folder.glob("**/*")) if folder.is_dir() else set()
    try:
        # submitit prints sbatch's stderr before raising; the error line below says it once
        with contextlib.redirect_stderr(io.StringIO()):
            return executor.map_array(TrainJob(), jobs)
    except (FailedJobError, subprocess.CalledProcessError, OSError) as exc:
        for path in sorted(set(folder.glob("**/*")) - before, reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        raise store.BenchError(
            f"{executor.cluster} refused the jobs: {_sbatch_error(exc)}; fix: --partition, "
            "--gpus-per-job, --cpus-per-job, --mem-gb or --timeout-min (see `bench sweep "
            "--help`)") from exc


def _sbatch_error(exc: BaseException) -> str:
    text = "\n".join(str(x) for x in (exc, getattr(exc, "stderr", None),
                                      getattr(exc, "output", None)) if x)
    lines = [line.strip() for line in text.splitlines() if "error" in line.lower()]
    chosen = lines[-1] if lines else runner.one_line(exc)
    return " ".join(chosen.split())


def _remember(folder: Path, waiting: list) -> None:
    """``jobs.json``: {job id: the runner.Job it trains} of the jobs this sweep waits for."""
    if not waiting:
        return
    atomic_write(real_folder(folder) / JOBS_FILE, json.dumps(
        {h.job_id: dataclasses.asdict(j) for j, h in waiting}, indent=1) + "\n")


def job_name(folder: Path) -> str:
    """The Slurm job name of a sweep's jobs: what tells its jobs from anyone else's."""
    return f"bench-{Path(folder).name}"


JOB_ID = re.compile(r"[0-9]{1,20}(_[0-9]{1,9})?")  # a Slurm job id, array task included
MAX_JOBS_BYTES = 16 << 20  # choice: a job entry is ~1 KB; a sweep has at most a few thousand


def _attach(plan, folder: Path, cluster: str, name: str) -> list:
    """[(runner.Job, handle)] of the remembered jobs Slurm still has queued or running as the
    current user's, under this sweep's name, training runs of this plan."""
    path = folder / JOBS_FILE
    if cluster != "slurm" or not os.path.lexists(path):
        return []
    fix = f"fix: delete {path} (jobs it lists keep running; cancel yours with scancel)"
    remembered = store.read_json(path, fix, MAX_JOBS_BYTES)
    if not isinstance(remembered, dict) or not all(JOB_ID.fullmatch(k) for k in remembered):
        raise store.BenchError(f"{path}: expected an object of Slurm job ids, found "
                               f"{store.short(remembered)}; {fix}")
    states = queue_states(list(remembered), name)  # Slurm's word, not the folder's
    planned = {cell.run_id for cell in plan.cells}
    attached = []
    for jid, fields in remembered.items():
        if states.get(jid, ("",))[0] not in QUEUED:
            continue
        try:
            job = dataclasses.replace(_job(fields), folder=str(plan.folder))
            rids = set(runner.run_ids(job).values())
        except (TypeError, ValueError, KeyError, UserError) as err:
            raise store.BenchError(f"{path}: job {jid}: expected the fields of a job, found "
                                   f"{runner.one_line(err)}; {fix}") from None
        if rids <= planned:
            attached.append((job, submitit.SlurmJob(folder=folder, job_id=jid)))
    return attached


def _job(fields: dict) -> runner.Job:
    """A runner.Job back from JSON (lists to the tuples the dataclass holds)."""
    return runner.Job(**{**fields, "overrides": tuple(map(tuple, fields["overrides"])),
                         "seed_indices": tuple(fields["seed_indices"]),
                         "features": tuple(fields["features"])})


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def queue_states(job_ids: list[str], name: str) -> dict[str, tuple[str, str]]:
    """{job id: (state, reason)} from squeue, array tasks one by one, of the current user's jobs
    named ``name`` only; jobs that left the queue (or are someone else's) are absent."""
    if not job_ids:
        return {}
    done = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r", f"--user={_user()}",
                           f"--name={name}", "-j", ",".join(job_ids)],
                          capture_output=True, text=True, timeout=60, check=False)
    out = {}
    for line in done.stdout.splitlines():
        jid, state, reason = (line.split("|") + ["", ""])[:3]
        if jid.strip() in job_ids:
            out[jid.strip()] = (state.strip(), reason.strip())
    return out


def cancel(job_ids: list[str], name: str) -> None:
    """scancel, restricted by Slurm itself to the current user's jobs named ``name``."""
    subprocess.run(["scancel", f"--user={_user()}", f"--name={name}", *job_ids], check=False,
                   timeout=60)


def _wait(waiting: list, cluster: str, name: str, mine: set[str]) -> None:
    """Poll until every job left the queue; ``mine``: the ids this process submitted (the only
    ones whose result file is read)."""
    left = list(waiting)
    counts: Counter = Counter()
    try:
        with tqdm(total=len(left), desc="jobs", unit="job") as bar:
            while left:
                states = (queue_states([h.job_id for _, h in left], name) if cluster == "slurm"
                          else {})
                # A job that left the queue is asked about at once: submitit's own sacct polls
                # slow down to one a minute, and a requeued job would wait for them.
                for pair in [p for p in left
                             if p[1].done(force_check=cluster == "slurm"
                                          and p[1].job_id not in states)]:
                    left.remove(pair)
                    _collect(*pair, waited=pair[1].job_id in mine)
                    bar.update()
                if not left:
                    break
                if cluster == "slurm":
                    _refuse_never(left, states, name)
                    counts = Counter(s for s, _ in states.values())
                    reasons = sorted({r for s, r in states.values()
                                      if s == "PENDING" and r != "None"})
                    bar.set_postfix_str(
                        f"pending {counts['PENDING']}"
                        + (f" ({', '.join(reasons)})" if reasons else "")
                        + f" / running {counts['RUNNING']} / done {bar.n}", refresh=True)
                time.sleep(POLL_S if cluster == "slurm" else 1)
    except KeyboardInterrupt:
        ids = " ".join(h.job_id for _, h in left)
        tqdm.write(f"interrupted: {len(left)} jobs stay queued or running on {cluster} and keep "
                   f"training ({ids}); rerunning this command attaches to them; to stop them: "
                   f"scancel {ids}")
        raise


def _refuse_never(left: list, states: dict, name: str) -> None:
    for _, handle in left:
        state, reason = states.get(handle.job_id, ("", ""))
        if state == "PENDING" and reason in NEVER:
            ids = [h.job_id for _, h in left]
            cancel(ids, name)
            raise store.BenchError(
                f"job {handle.job_id} can never start: Slurm says pending ({reason}); cancelled "
                f"{len(ids)} jobs; fix: {NEVER[reason]}")


def _collect(job: runner.Job, handle, *, waited: bool) -> None:
    """Say how the job ended. ``waited``: this process submitted it, so its result file is its
    own; an attached job's result file could be anyone's, so its runs' records say instead."""
    if not waited:
        said = {i: store.status_of(Path(job.folder) / rid)
                for i, rid in runner.run_ids(job).items()}
        states = ", ".join(f"s{i} {said[i]}" for i in sorted(said))
        tqdm.write(f"{_describe(job)}: {states} (job {handle.job_id}, attached)")
        return
    try:
        outcome = handle.result()
    except (UncompletedJobError, FailedJobError) as exc:
        status = STOPPED.get(handle.state.split()[0]) if handle.state else None
        if status is not None:
            runner.record_stopped(job, status, f"job {handle.job_id} {handle.state.lower()}")
        else:  # out of requeues, the job recorded its runs timeout itself and exited with an error
            said = {store.status_of(Path(job.folder) / rid) for rid in runner.run_ids(job).values()}
            status = said.pop() if len(said) == 1 and said <= set(STOPPED.values()) else None
        what = _describe(job)
        if status is not None:
            tqdm.write(f"{what}: {status} (job {handle.job_id}); rerun to resume")
        else:
            tqdm.write(f"{what}: job crashed, runs stay incomplete: {runner.one_line(exc)}")
        return
    states = ", ".join(f"s{i} {outcome[i]}" for i in sorted(outcome))
    tqdm.write(f"{_describe(job)}: {states}")


def _describe(job: runner.Job) -> str:
    return f"{job.dataset} {job.row} s{','.join(map(str, job.seed_indices))}"
