"""Run ids, run folders and records: the only code that reads or writes ``record.json``.

A sweep folder ``results/<name>/`` holds one folder per run plus ``runs.csv`` and two transient
folders (``_ckpt/`` for checkpoints, ``_locks/`` for lock files). A run's state is read from its
folder alone (DomainBed's idea: relaunching a sweep is how it resumes):

- ``not launched``: no folder;
- ``incomplete``: a folder without a record (killed, or running right now: see :func:`is_running`);
- ``failed``: a record with status ``failed``; never counted, retried by the next sweep;
- ``cancelled`` / ``timeout``: a record saying the cluster job was cancelled (``scancel``) or ran
  out of time and requeues; like ``failed``, never counted and retried by the next sweep;
- ``done`` / ``diverged``: finished; never retrained.

``record.json`` is written last and atomically (:func:`vsboost.files.atomic_write`), so a record
is either absent or complete: a killed process can leave an incomplete run, never a partial record.
A record that does not parse or does not hold the schema's fields (hand-edited) counts as absent
everywhere: sweeps redo the run and reports never see it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from vsboost.errors import UserError
from vsboost.files import atomic_write

SCHEMA = 1
SCHEMAS = (1,)  # record schemas this code reads
RECORD = "record.json"
LOG = "log.txt"
FEATURES = "features.npz"
RUNS_CSV = "runs.csv"
CKPT_DIR = "_ckpt"
REFERENCE_DIR = "_reference"
REFERENCE_METHOD = ("closed-form ridge from class embedding to class-mean feature, nearest "
                    "predicted centre over S+U; no training")
LOCK_DIR = "_locks"

FINISHED = ("done", "diverged")
UNFINISHED = ("failed", "cancelled", "timeout")  # records of runs the next sweep retries
RECORD_STATUSES = (*FINISHED, *UNFINISHED)  # what a record can say
STATUSES = (*RECORD_STATUSES, "incomplete", "not launched")  # what a run can be
KEY_FIELDS = ("dataset", "row", "seed_index", "config_hash", "data_fingerprint")

# runs.csv: these columns first, in this order; flattened metrics follow, sorted by name.
KEY_COLUMNS = ("run_id", "dataset", "row", "seed_index", "seed", "config_hash", "data_fingerprint",
               "status", "synthetic", "profile", "diverged_epoch", "error")
PROVENANCE_COLUMNS = ("git_commit", "device", "torch", "wall_s", "finished")


class BenchError(UserError):
    """A problem a person must fix (bad folder, bad name): one line, printed without traceback."""


def run_id(dataset: str, row: str, seed_index: int, config_hash: str, data_fingerprint: str) -> str:
    # Only what changes the result (docs/harness.md: no paths, hosts or times in the key).
    return f"{dataset}-{row}-s{seed_index}-{config_hash}-{data_fingerprint[:8]}"


def sweep_folder(results: Path, name: str) -> Path:
    """``results/<name>``; the name must be one plain folder name."""
    plain = name.strip() == name and not any(c in name for c in "/\\")
    if not name or not plain or name.startswith((".", "_")):
        raise BenchError(f"--name {name!r}: expected a plain folder name (no slashes, not "
                         "starting with . or _), e.g. --name demo")
    return Path(results) / name


def check_writable(folder: Path) -> None:
    """Raise :class:`BenchError` unless ``folder`` is writable or creatable; writes nothing."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        found = "is a file" if probe == folder else f"its parent {probe} is a file"
        raise BenchError(
            f"results folder {folder}: expected a writable folder, found that {found}; "
            "pass --results to a writable folder"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BenchError(
            f"results folder {folder}: expected a writable folder, found {probe} not writable; "
            "fix its permissions or pass --results to a writable folder"
        )


def status_of(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "not launched"
    record = read_record(run_dir)
    if record is None:
        return "incomplete"
    return record["status"]


def read_record(run_dir: Path) -> dict | None:
    """The run's record, or None when there is none yet. A record that does not parse or lacks
    the schema's fields (hand-edited: our writes are atomic) counts as absent, so the run is redone
    instead of trusted."""
    path = Path(run_dir) / RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if problem(record) is None else None


def problem(record: Any) -> str | None:
    """What is wrong with a record against the schema, or None when it is a valid record."""
    if not isinstance(record, dict) or record.get("schema") not in SCHEMAS:
        return f"'schema' one of {', '.join(map(str, SCHEMAS))}"
    key = record.get("key")
    if not isinstance(key, dict) or any(k not in key for k in KEY_FIELDS):
        return f"'key' holding {', '.join(KEY_FIELDS)}"
    if not isinstance(record.get("run_id"), str):
        return "'run_id'"
    if record.get("status") not in RECORD_STATUSES:
        return f"'status' one of {', '.join(RECORD_STATUSES)}"
    if not isinstance(record.get("synthetic"), bool):
        return "'synthetic' true or false"
    if record["status"] == "done" and not isinstance(record.get("metrics"), dict):
        return "'metrics' (status is done)"
    return None


def write_record(run_dir: Path, record: dict) -> Path:
    """Write ``record.json`` atomically. Non-finite floats become null (JSON has no NaN, and a NaN
    must never reach a table). A record that breaks the schema is a bug: it raises, writes
    nothing."""
    wrong = problem(record)
    if wrong is not None:
        raise ValueError(f"refusing to write a record without {wrong}")
    text = json.dumps(_json_safe(record), indent=1, allow_nan=False) + "\n"
    return atomic_write(Path(run_dir) / RECORD, text)


def append_log(run_dir: Path, text: str) -> None:
    with open(Path(run_dir) / LOG, "a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def run_dirs(folder: Path) -> Iterator[Path]:
    """Every run folder of a sweep folder (transient ``_*`` and hidden folders excluded), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return iter(())
    runs = (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    return iter(sorted(runs))


def load_records(folder: Path) -> list[dict]:
    """Every record of a sweep folder (done, diverged and failed), sorted by run id: the one way
    sweeps, tables, figures and checks read records."""
    records = (read_record(d) for d in run_dirs(folder))
    return [r for r in records if r is not None]


# ---------------------------------------------------------------- reference records
def write_reference(folder: Path, dataset: str, fingerprint: str, scores: dict) -> Path:
    """The closed-form reference of one dataset's files (:func:`vsboost.synthetic.reference`):
    a record kind of its own, ``_reference/<DS>-<fingerprint>.json``, never a run."""
    path = Path(folder) / REFERENCE_DIR / f"{dataset}-{fingerprint[:8]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"kind": "reference", "method": REFERENCE_METHOD, "dataset": dataset,
            "data_fingerprint": fingerprint, "metrics": scores}
    return atomic_write(path, json.dumps(_json_safe(body), indent=1, allow_nan=False) + "\n")


def has_reference(folder: Path, dataset: str, fingerprint: str) -> bool:
    return (Path(folder) / REFERENCE_DIR / f"{dataset}-{fingerprint[:8]}.json").is_file()


def load_references(folder: Path) -> list[dict]:
    """Every reference record of a sweep folder; one that does not parse counts as absent."""
    out = []
    for path in sorted((Path(folder) / REFERENCE_DIR).glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(body, dict) and body.get("kind") == "reference":
            out.append(body)
    return out


# ---------------------------------------------------------------- locks
def run_lock(folder: Path, rid: str) -> filelock.FileLock:
    """The lock a process holds while it trains ``rid``. An OS-level lock (flock), so a killed
    process releases it and the next sweep can take the run over."""
    lock_dir = Path(folder) / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(lock_dir / f"{rid}.lock")


# choice: how long to wait for a run's lock. A training holds it for minutes, while is_running's
# probe holds it for microseconds: waiting this long tells the two apart.
CLAIM_WAIT_S = 0.5


def try_claim(folder: Path, rid: str) -> filelock.FileLock | None:
    """Take the run's lock; None when another process is training that run."""
    lock = run_lock(folder, rid)
    try:
        lock.acquire(timeout=CLAIM_WAIT_S)
    except filelock.Timeout:
        return None
    return lock


def is_running(folder: Path, rid: str) -> bool:
    """True when some process is training the run right now (it holds the run's lock)."""
    if not (Path(folder) / LOCK_DIR / f"{rid}.lock").exists():
        return False
    lock = try_claim(folder, rid)
    if lock is None:
        return True
    lock.release()
    return False


# ---------------------------------------------------------------- runs.csv
def flatten(record: dict) -> dict[str, Any]:
    """One runs.csv row: the key, the status, metrics as ``paper_H``, ``czsl_last_acc``..., and a
    little provenance."""
    row: dict[str, Any] = {"run_id": record["run_id"], **record["key"]}
    for name in ("status", "synthetic", "profile", "diverged_epoch", "error"):
        row[name] = record.get(name)
    row.update(_flat(record.get("metrics") or {}))
    provenance = record.get("provenance") or {}
    for name in PROVENANCE_COLUMNS:
        row[name] = provenance.get(name)
    return row


def write_runs_csv(folder: Path) -> Path:
    """Regenerate ``runs.csv`` from the records. Under a lock, so that two sweeps finishing at once
    cannot replace each other's newer table with an older one."""
    folder = Path(folder)
    (folder / LOCK_DIR).mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(folder / LOCK_DIR / "runs.csv.lock"):
        rows = [flatten(r) for r in load_records(folder)]
        metric_columns = sorted({k for r in rows for k in r} - set(KEY_COLUMNS)
                                - set(PROVENANCE_COLUMNS))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, [*KEY_COLUMNS, *metric_columns, *PROVENANCE_COLUMNS],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write(folder / RUNS_CSV, buffer.getvalue())


def _flat(metrics: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy / torch scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
