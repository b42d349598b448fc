"""Execute one job: a few seeds of one (dataset, row) trained in one batched pass, one record each.

A job claims the lock of each member run, skips members that are finished or held by another
process, trains the rest with ``vsboost.train.train`` and writes their records. An exception from
the loader or the trainer becomes a ``failed`` record per member (error line in the record,
traceback in ``log.txt``), never a lost run and never a cached result: the next sweep retries it.
Jobs are plain picklable dataclasses so that submitit can ship them to a cluster.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import socket
import subprocess
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import filelock
import numpy as np
from tqdm import tqdm

from bench import store
from vsboost import fingerprint, settings
from vsboost.files import atomic_path, real_folder

# The checkout this code runs from, for the git commit in each record's provenance. Data and
# results never live here: their locations come from vsboost.settings.
SOURCE = Path(__file__).resolve().parents[1]
PCA_DIMS = 50  # choice: features.npz holds the t-SNE sample reduced to 50 dims per space
# The GPU of this worker process, set by the local launcher's pool (bench.sweep): each worker
# trains on its own device instead of all on cuda:0.
_worker_device: str | None = None


class Stopped(BaseException):
    """The cluster stopped this job (cancelled, or out of time with no requeue left): raised by
    a signal handler, so a BaseException like KeyboardInterrupt, never caught as a trainer error.
    Its members are recorded with ``status`` instead of ``failed``."""

    def __init__(self, status: str, why: str):
        super().__init__(why)
        self.status = status


def set_worker_device(device: str) -> None:
    global _worker_device
    _worker_device = device


@dataclass(frozen=True)
class Job:
    """What a worker needs to train some seeds of one cell; everything already validated."""

    dataset: str
    row: str
    profile: str
    overrides: tuple[tuple[str, str], ...]
    seed_indices: tuple[int, ...]
    data_root: str
    folder: str  # the sweep folder results/<name>
    fingerprint: str  # of the data the plan was made with: part of every member's run id
    data: dict  # kind, label and verified files: bench.sweep.data_provenance
    device: str | None = None  # None: CUDA when available
    # "cpu" or "cuda", resolved when the sweep was planned: part of the run ids; a job whose
    # device is None trains on this kind (not on whatever the node it lands on has).
    kind: str | None = None
    features: tuple[int, ...] = ()  # seed indices whose t-SNE sample is saved
    progress: bool = True  # an epoch progress bar (off in worker processes)
    threads: int | None = None  # torch intra-op threads; set when jobs share the CPU cores


def synthetic_root(data_root: Path | None, datasets) -> Path:
    """The data root of ``--synthetic``, with the embedded benchmark written there for every
    dataset whose files are missing."""
    from vsboost import synthetic

    root = settings.synthetic_root(data_root)
    written = synthetic.ensure(root, datasets)
    if written:
        tqdm.write(f"wrote the synthetic benchmark for {', '.join(written)} into {root}")
    return root


def run_job(job: Job) -> dict[int, str]:
    """Train the job's unfinished members; returns {seed index: status or 'skipped'}."""
    from vsboost import config, train, validation
    from vsboost.data import FEATURE_FILE, load

    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    if _worker_device is not None and job.device in (None, "cuda"):
        job = replace(job, device=_worker_device)
    if job.device is None and job.kind is not None:
        job = replace(job, device=job.kind)
    folder = Path(job.folder)
    cfg = config.make_config(job.dataset, job.row, job.profile, dict(job.overrides))
    rids = run_ids(job)
    locks = _claim(folder, rids, fingerprint.of_method(cfg.method))
    outcome = {i: "skipped" for i in rids if i not in locks}
    if not locks:
        return outcome
    members = sorted(locks)
    started = _now()
    for i in members:
        real_folder(folder / rids[i])
        # A retried run reads as incomplete until it finishes; the old error stays in log.txt.
        (folder / rids[i] / store.RECORD).unlink(missing_ok=True)
        store.append_log(folder / rids[i], f"{started} start pid={os.getpid()} "
                         f"host={socket.gethostname()} job seeds={members}")
    ckpt = folder / store.CKPT_DIR / (
        f"{job.dataset}-{job.row}-{cfg.hash()}-{job.fingerprint[:8]}-"
        f"s{'_'.join(map(str, members))}{'' if _kind(job) == 'cpu' else '-' + _kind(job)}.pt")
    real_folder(ckpt.parent)
    seeds = [config.seed_for(job.dataset, i) for i in members]
    t0 = time.perf_counter()
    try:
        # ===== data: the fingerprint must be the one the run ids were made with =====
        # The bytes must be those the sweep planned with, checked before they are parsed.
        pins = {rel.split("/", 1)[1]: f["sha256"] for rel, f in job.data["files"].items()}
        data = load(job.data_root, job.dataset, normalize_sent=cfg.normalize_sent, pins=pins,
                    feature_file=job.data.get("feature_file") or FEATURE_FILE)
        if data.fingerprint != job.fingerprint:
            raise store.BenchError(
                f"{job.data_root}/{job.dataset}: data changed since the sweep was planned "
                f"(fingerprint {data.fingerprint} != {job.fingerprint}); rerun the sweep")
        # ===== training =====
        with tqdm(total=cfg.gan_epochs, desc=f"{job.dataset} {job.row} s{members}", unit="epoch",
                  leave=False, disable=None if job.progress else True) as bar:
            def progress(epoch: int, total: int) -> None:
                bar.update(epoch - bar.n)

            # The val protocol trains on the validation split first (vsboost/validation.py).
            def log(epoch: int, total: int, per_member: list, phase: str = "training") -> None:
                for i, info in zip(members, per_member, strict=True):
                    if info is not None:
                        store.append_log(folder / rids[i], epoch_line(epoch, total, info, phase))

            results = validation.run(train.train, data, cfg, seeds, device=job.device,
                                     checkpoint=ckpt, progress=progress, log=log,
                                     feature_sample=bool(set(members) & set(job.features)))
    except Stopped as stop:
        for i in members:
            run_dir = folder / rids[i]
            store.append_log(run_dir, f"{_now()} {stop.status}: {stop}")
            store.write_record(run_dir, _run_record(
                job, cfg, i, rids[i], stop.status, error=str(stop),
                wall=time.perf_counter() - t0, started=started, members=members))
        raise
    except Exception as exc:  # noqa: BLE001 - any trainer error becomes a failed record
        error = one_line(exc)
        trace = traceback.format_exc()
        for i in members:
            run_dir = folder / rids[i]
            store.append_log(run_dir, trace)
            record = _run_record(job, cfg, i, rids[i], "failed", error=error,
                             wall=time.perf_counter() - t0, started=started, members=members)
            store.write_record(run_dir, record)
            outcome[i] = "failed"
    else:
        # ===== records: features first, the record last (its presence means finished) =====
        wall = time.perf_counter() - t0
        try:
            for i, result in zip(members, results, strict=True):
                run_dir = folder / rids[i]
                if result.features is not None and i in job.features:
                    _save_features(run_dir / store.FEATURES, result.features)
                record = _run_record(job, cfg, i, rids[i], result.status, result=result,
                                     wall=wall, started=started, members=members)
                store.write_record(run_dir, record)
                store.append_log(run_dir, f"{_now()} {result.status}")
                outcome[i] = result.status
        except OSError as exc:  # disk full, read-only: the training is kept in its checkpoint
            _record_unwritable(job, cfg, rids, members, outcome, exc, ckpt, started, t0)
        ckpt.unlink(missing_ok=True)
    finally:
        for lock in locks.values():
            lock.release()
    store.write_runs_csv(folder)
    return outcome


def _record_unwritable(job: Job, cfg, rids: dict[int, str], members: list[int],
                       outcome: dict, exc: OSError, ckpt: Path, started: str, t0: float) -> None:
    """A finished training whose records cannot be written: mark the members not yet recorded
    as failed with the reason where the disk still allows it, and stop with one line. The
    checkpoint holds the last epoch (unless checkpoint_every is 0), so the rerun resumes there
    instead of training again."""
    reason = f"{exc.strerror or exc} ({exc.filename or 'record'})"
    kept = ckpt.is_file()
    for i in members:
        if outcome.get(i) in store.FINISHED:
            continue
        record = _run_record(job, cfg, i, rids[i], "failed", wall=time.perf_counter() - t0,
                             started=started, members=members,
                             error=f"could not write the record: {reason}")
        try:
            store.write_record(Path(job.folder) / rids[i], record)
            outcome[i] = "failed"
        except OSError:
            pass  # the same full disk: the checkpoint is what keeps the training
    raise store.BenchError(
        f"{job.folder}: training of {job.dataset} {job.row} seeds {members} finished but its "
        f"records could not be written: {reason}; "
        + (f"its checkpoint {ckpt} is kept; " if kept else "")
        + "fix: free space or make the folder writable, then rerun (it resumes from the "
        "checkpoint)") from exc


def run_ids(job: Job) -> dict[int, str]:
    """{seed index: run id} of the job's members."""
    from vsboost import config

    chash = config.make_config(job.dataset, job.row, job.profile, dict(job.overrides)).hash()
    return {i: store.run_id(job.dataset, job.row, i, chash, job.fingerprint, _kind(job))
            for i in job.seed_indices}


def record_stopped(job: Job, status: str, why: str, *, wait_s: float = 60) -> None:
    """Record the job's unfinished members as ``status`` (cancelled, timeout) when the cluster
    ended the job before it could say so itself (cancelled while queued, or killed). Waits up to
    ``wait_s`` for a member's lock: a killed job's process may still be exiting."""
    from vsboost import config

    folder = Path(job.folder)
    cfg = config.make_config(job.dataset, job.row, job.profile, dict(job.overrides))
    for i, rid in run_ids(job).items():
        lock = store.run_lock(folder, rid)
        try:
            lock.acquire(timeout=wait_s)
        except filelock.Timeout:
            continue  # still held: the run's own process records it
        try:
            if store.status_of(folder / rid) in ("not launched", "incomplete"):
                real_folder(folder / rid)
                store.append_log(folder / rid, f"{_now()} {status}: {why}")
                store.write_record(folder / rid, _run_record(
                    job, cfg, i, rid, status, error=why, wall=0.0, started=_now(), members=[i],
                    probe=False))
        finally:
            lock.release()
    store.write_runs_csv(folder)


def _claim(folder: Path, rids: dict[int, str], code: str) -> dict:
    """Lock every member no other process holds and that is not finished by this ``code``:
    {seed index: lock}. A member finished by other code is moved aside (``_superseded/``)."""
    locks = {}
    for i, rid in rids.items():
        lock = store.try_claim(folder, rid)
        if lock is None:
            continue
        # Checked again under the lock: another sweep may have finished it since we planned.
        status = store.status_of(folder / rid, code)
        if status in store.FINISHED:
            lock.release()
            continue
        if status == store.OTHER_CODE:
            store.supersede(folder, rid)
        locks[i] = lock
    return locks


def _run_record(job: Job, cfg, seed_index: int, rid: str, status: str, *, result=None,
                error: str | None = None, wall: float, started: str, members: list[int],
                probe: bool = True) -> dict:
    from vsboost.config import seed_for

    provenance = {**_environment(job.device, probe=probe),
                  "wall_s": result.wall_s if result else wall, "job_wall_s": wall,
                  "job_seed_indices": members, "started": started,
                  "finished": _now(), "data_root": str(job.data_root),
                  "precision": result.precision if result else None,
                  "code": fingerprint.of_method(cfg.method)}
    return {
        "schema": store.SCHEMA,
        "run_id": rid,
        "key": {"dataset": job.dataset, "row": job.row, "seed_index": seed_index,
                "seed": seed_for(job.dataset, seed_index), "config_hash": cfg.hash(),
                "data_fingerprint": job.fingerprint,
                **({} if _kind(job) == "cpu" else {"device": _kind(job)})},
        "status": status,
        "synthetic": job.data["kind"] == "synthetic",
        "data": job.data,
        "profile": cfg.profile,
        "deviations": cfg.deviations(),
        "config": cfg.to_dict(),
        "metrics": result.metrics if result else None,
        "history": result.history if result else [],
        "sampler": result.sampler if result else {},
        "error": error,
        "diverged_epoch": result.diverged_epoch if result else None,
        "validation": result.validation if result else None,
        "provenance": provenance,
    }


def _save_features(path: Path, features: dict[str, np.ndarray]) -> None:
    """PCA to 50 dims per space, fitted on all the space's points together so that real and
    synthetic features land in one shared projection (what Figure 4 compares)."""
    from sklearn.decomposition import PCA

    out: dict[str, np.ndarray] = {}
    for space in ("raw", "refined"):
        keys = sorted(k for k in features if k.endswith(f"_{space}"))
        stacked = np.concatenate([np.asarray(features[k], dtype=np.float64) for k in keys])
        dims = min(PCA_DIMS, *stacked.shape)
        reduced = PCA(n_components=dims, random_state=0).fit_transform(stacked).astype(np.float32)
        bounds = np.cumsum([len(features[k]) for k in keys])[:-1]
        out.update(zip(keys, np.split(reduced, bounds), strict=True))
    for key in features:
        if key.endswith("_y"):
            out[key] = np.asarray(features[key], dtype=np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez adds no suffix
        np.savez_compressed(f, **out)


# What a record's code is: the package, its configuration and the data lock. Results, reports,
# docs and tests are not: records being written into results/ must not make a run "dirty".
CODE_PATHS = ("vsboost", "bench", "pyproject.toml", "datasets.lock")


@functools.cache
def _git() -> tuple[str | None, list[str] | None]:
    """The commit of the checkout and its uncommitted changes to :data:`CODE_PATHS` (None
    outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True,
                                  text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    if not commit or status is None:
        return None, None
    return commit.strip(), sorted(line[3:] for line in status.splitlines() if line.strip())


def _environment(device: str | None, *, probe: bool = True) -> dict:
    """Where a run trained, for its record. ``probe`` False: this process is not the one that
    trained (the submitting login node records a job the cluster stopped), so the record says
    what the job asked for and touches no GPU: a login node's torch may have no CUDA at all."""
    import torch

    commit, changes = _git()
    if probe:
        from vsboost.train import resolve_device

        dev = resolve_device(device)
        cuda = dev.type == "cuda"
        name = torch.cuda.get_device_name(dev) if cuda else platform.machine()
        kind, index, version = dev.type, dev.index, torch.version.cuda if cuda else None
    else:
        kind, index, version, name = device_kind(device), None, None, None
    return {
        "git_commit": commit, "git_dirty": None if changes is None else bool(changes),
        "git_changes": changes,
        "python": platform.python_version(), "torch": torch.__version__,
        "cuda": version,
        "device": kind,
        "device_index": index,  # which GPU of the node (the local launcher's worker's)
        "device_name": name,
        "host": socket.gethostname(),
    }


def _kind(job: Job) -> str:
    return job.kind or device_kind(job.device)


def device_kind(device: str | None) -> str:
    """"cpu" or "cuda": the kind of device a job trains on, part of its runs' identity (CUDA
    draws and arithmetic differ from the CPU's). None ("auto") asks torch here, which never
    touches a GPU and works on a login node without CUDA."""
    from vsboost.train import resolve_device

    return resolve_device(device).type


def epoch_line(epoch: int, total: int, info: dict, phase: str) -> str:
    """One log.txt line per epoch: which training, the losses, the evaluation when there was one
    (U, S, H and CZSL of the last classifier epoch, percent), elapsed and projected time."""
    losses = " ".join(f"{k.removeprefix('loss_')}={v:.4g}" for k, v in info["losses"].items())
    e = info["eval"]
    score = (f" | U={100 * e['U']:.1f} S={100 * e['S']:.1f} H={100 * e['H']:.1f} "
             f"czsl={100 * e['czsl']:.1f}" if e else "")
    return (f"{_now()} {phase} epoch {epoch}/{total} {losses}{score} | "
            f"{info['elapsed_s']:.0f}s elapsed, {info['projected_s']:.0f}s projected")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
