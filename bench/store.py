"""Run ids, run folders and records: the only code that reads or writes ``record.json``.

A sweep folder ``results/<name>/`` holds one folder per run plus ``runs.csv`` and two transient
folders (``_ckpt/`` for checkpoints, ``_locks/`` for lock files). A run's state is read from its
folder alone (DomainBed's idea: relaunching a sweep is how it resumes):

- ``not launched``: no folder;
- ``incomplete``: a folder without a record (killed, or running right now: see :func:`is_running`);
- ``failed``: a record with status ``failed``; never counted, retried by the next sweep;
- ``cancelled`` / ``timeout``: a record saying the cluster job was cancelled (``scancel``) or ran
  out of time and requeues; like ``failed``, never counted and retried by the next sweep;
- ``done`` / ``diverged``: finished; never retrained while the code is the same;
- ``other code``: finished by other code (its ``provenance.code`` is not today's
  :func:`vsboost.fingerprint.code`, or it names none): the next sweep moves its folder to
  ``_superseded/`` and retrains it, so a sweep folder never mixes code versions per run.

``record.json`` is written last and atomically (:func:`vsboost.files.atomic_write`), so a record
is either absent or complete: a killed process can leave an incomplete run, never a partial record.
Records are input (results folders travel between people): every read checks the record against
:mod:`bench.schema`, as a regular file of bounded size. A record that is not valid counts as absent
for the sweep that would retrain its run, and stops every report and check with one line naming
the file, the field and the fix (:func:`load_records`): nothing is computed from it.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from bench import schema
from vsboost.errors import UserError
from vsboost.files import atomic_write, real_folder

SCHEMA = 1
SCHEMAS = schema.SCHEMAS
RECORD = "record.json"
LOG = "log.txt"
FEATURES = "features.npz"
RUNS_CSV = "runs.csv"
CKPT_DIR = "_ckpt"
REFERENCE_DIR = "_reference"
REFERENCE_METHOD = ("closed-form ridge from class embedding to class-mean feature, nearest "
                    "predicted centre over S+U; no training")
LOCK_DIR = "_locks"
SUPERSEDED_DIR = "_superseded"  # run folders of other code, kept aside, never read by reports
OTHER_CODE = "other code"

FINISHED, UNFINISHED = schema.FINISHED, schema.UNFINISHED  # retried: the unfinished
RECORD_STATUSES = schema.RECORD_STATUSES  # what a record can say
STATUSES = (*RECORD_STATUSES, OTHER_CODE, "incomplete", "not launched")  # what a run can be

# runs.csv: these columns first, in this order; flattened metrics follow, sorted by name.
KEY_COLUMNS = ("run_id", "dataset", "row", "seed_index", "seed", "config_hash", "data_fingerprint",
               "status", "synthetic", "profile", "diverged_epoch", "error")
PROVENANCE_COLUMNS = ("git_commit", "device", "torch", "wall_s", "finished")


# choice: records are a few hundred KB at the paper's budgets; anything far larger is not ours.
MAX_RECORD_BYTES = 16 << 20
# choice: a --name is one folder name; run folders and temp files add ~80 characters below it, and
# most file systems stop at 255 bytes per name.
MAX_NAME = 100


class BenchError(UserError):
    """A problem a person must fix (bad folder, bad name): one line, printed without traceback."""


class RecordError(BenchError):
    """A record.json that is not a record of this suite; the message names the file and field."""


def run_id(dataset: str, row: str, seed_index: int, config_hash: str, data_fingerprint: str,
           device: str = "cpu") -> str:
    # Only what changes the result (docs/harness.md: no paths, hosts or times in the key). The
    # device kind does (CUDA draws and arithmetic differ): named only when not the CPU, so the
    # ids of every CPU run made before it was part of the key stay valid.
    tail = "" if device == "cpu" else f"-{device}"
    return f"{dataset}-{row}-s{seed_index}-{config_hash}-{data_fingerprint[:8]}{tail}"



def sweep_folder(results: Path, name: str) -> Path:
    """``results/<name>``; the name must be one plain folder name."""
    plain = name.strip() == name and not any(c in name for c in "/\\")
    if not name or not plain or name.startswith((".", "_")) or len(name.encode()) > MAX_NAME:
        raise BenchError(f"--name {name[:40]!r}{'…' if len(name) > 40 else ''}: expected a plain "
                         f"folder name of at most {MAX_NAME} bytes (no slashes, not starting with "
                         ". or _), e.g. --name demo")
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


def status_of(run_dir: Path, code: str | None = None) -> str:
    """The run's state; with ``code`` (a :func:`vsboost.fingerprint.code`), a finished record
    made by other code reads :data:`OTHER_CODE`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "not launched"
    record = read_record(run_dir)
    if record is None:
        return "incomplete"
    if code is not None and record["status"] in FINISHED and code_of(record) != code:
        return OTHER_CODE
    return record["status"]


def code_of(record: dict) -> str | None:
    """The code fingerprint a record names; None for records made before records named it
    (they count as other code)."""
    return (record.get("provenance") or {}).get("code")


def supersede(folder: Path, rid: str) -> Path:
    """Move the run folder ``rid`` (a record of other code) to ``_superseded/<rid>-<code>/``,
    where no report or check reads it; the caller holds the run's lock. Returns the new place."""
    record = read_record(Path(folder) / rid) or {}
    code = (code_of(record) or "unrecorded")[:12]
    target = Path(folder) / SUPERSEDED_DIR / f"{rid}-{code}"
    target.parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while target.exists():  # the same run superseded twice by the same old code: keep both
        target = target.with_name(f"{rid}-{code}-{k}")
        k += 1
    os.replace(Path(folder) / rid, target)
    return target


def read_record(run_dir: Path) -> dict | None:
    """The run's record, or None when there is none yet or it is not a valid record (hand-edited
    or from elsewhere: our writes are atomic), so the run is redone instead of trusted."""
    try:
        return _read_record(Path(run_dir))
    except RecordError:
        return None


def _read_record(run_dir: Path) -> dict | None:
    """The run's valid record, None when absent; :class:`RecordError` when it is not valid."""
    path = run_dir / RECORD
    fix = (f"fix: delete the run folder {run_dir} (the next sweep retrains it) or restore it "
           "from where it came")
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    record = read_json(path, fix)
    wrong = schema.problem(record, run_dir.name)
    if wrong is not None:
        field, expected, found = wrong
        raise RecordError(f"{path}: field '{field}': expected {expected}, found "
                          f"{short(found)}; {fix}")
    return record


def read_json(path: Path, fix: str, limit: int | None = None) -> Any:
    """A JSON file from a results folder: a regular file (never a symlink, folder or FIFO, which
    would hang the reader) of at most ``limit`` bytes (default :data:`MAX_RECORD_BYTES`);
    :class:`RecordError` otherwise. The one way the harness reads JSON it did not just write."""
    limit = MAX_RECORD_BYTES if limit is None else limit
    try:
        info = os.lstat(path)
    except OSError as err:
        raise RecordError(f"{path}: expected a regular file, found {err.strerror}; {fix}") \
            from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        found = ("a symlink" if stat.S_ISLNK(info.st_mode) else "a folder" if stat.S_ISDIR(
            info.st_mode) else f"{info.st_size:,} bytes" if stat.S_ISREG(info.st_mode)
            else "not a regular file")
        raise RecordError(f"{path}: expected a regular file of at most {limit:,} "
                          f"bytes, found {found}; {fix}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            return json.loads(f.read(limit + 1).decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSON and UTF-8 errors are ValueErrors
        raise RecordError(f"{path}: expected a JSON record, found one that does not parse "
                          f"({type(err).__name__}); {fix}") from err


def short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def problem(record: Any) -> str | None:
    """What is wrong with a record against the schema (one phrase), or None when it is valid."""
    wrong = schema.problem(record)
    return None if wrong is None else f"'{wrong[0]}' {wrong[1]}"


def write_record(run_dir: Path, record: dict) -> Path:
    """Write ``record.json`` atomically. Non-finite floats become null (JSON has no NaN, and a NaN
    must never reach a table). A record that breaks the schema is a bug: it raises, writes
    nothing."""
    safe = _json_safe(record)
    wrong = problem(safe)
    if wrong is not None:
        raise ValueError(f"refusing to write a record without {wrong}")
    text = json.dumps(safe, indent=1, allow_nan=False) + "\n"
    return atomic_write(Path(run_dir) / RECORD, text)


def append_log(run_dir: Path, text: str) -> None:
    # O_NOFOLLOW: a log.txt planted as a symlink must not make us append outside the folder;
    # O_NONBLOCK: one planted as a FIFO must not block the open (then refused as not regular).
    path = Path(run_dir) / LOG
    fix = "fix: delete it (the run's next start writes a new one)"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_NONBLOCK, 0o644)
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.ENXIO):  # ENXIO: a FIFO nobody reads
            raise
        found = "a symlink" if err.errno == errno.ELOOP else "a FIFO"
        raise BenchError(f"{path}: expected a regular log file, found {found}; {fix}") from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BenchError(f"{path}: expected a regular log file, found something else; {fix}")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
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
    sweeps, tables, figures and checks read records. Raises :class:`RecordError` on the first
    record that is not valid: a table or check from a folder holding one would mislead. A run
    folder must be named by its record's run id, so a copied folder cannot count twice."""
    records = (_read_record(d) for d in run_dirs(folder))
    return [r for r in records if r is not None]


# ---------------------------------------------------------------- reference records
def write_reference(folder: Path, dataset: str, fingerprint: str, scores: dict) -> Path:
    """The closed-form reference of one dataset's files (:func:`vsboost.synthetic.reference`):
    a record kind of its own, ``_reference/<DS>-<fingerprint>.json``, never a run."""
    path = real_folder(Path(folder) / REFERENCE_DIR) / f"{dataset}-{fingerprint[:8]}.json"
    body = {"kind": "reference", "method": REFERENCE_METHOD, "dataset": dataset,
            "data_fingerprint": fingerprint, "metrics": scores}
    return atomic_write(path, json.dumps(_json_safe(body), indent=1, allow_nan=False) + "\n")


def has_reference(folder: Path, dataset: str, fingerprint: str) -> bool:
    return (Path(folder) / REFERENCE_DIR / f"{dataset}-{fingerprint[:8]}.json").is_file()


def load_references(folder: Path) -> list[dict]:
    """Every reference record of a sweep folder, checked like a run's record: one that is not a
    regular file, does not parse or breaks its schema raises :class:`RecordError`."""
    out = []
    for path in sorted((Path(folder) / REFERENCE_DIR).glob("*.json")):
        fix = f"fix: delete {path} (the next sweep on synthetic data writes it again)"
        body = read_json(path, fix)
        wrong = schema.reference_problem(body)
        if wrong is not None:
            field, expected, found = wrong
            raise RecordError(f"{path}: field '{field}': expected {expected}, found "
                              f"{short(found)}; {fix}")
        out.append(body)
    return out


# ---------------------------------------------------------------- locks
def run_lock(folder: Path, rid: str) -> filelock.FileLock:
    """The lock a process holds while it trains ``rid``. An OS-level lock (flock), so a killed
    process releases it and the next sweep can take the run over."""
    return filelock.FileLock(real_folder(Path(folder) / LOCK_DIR) / f"{rid}.lock")


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
    with filelock.FileLock(real_folder(folder / LOCK_DIR) / "runs.csv.lock"):
        rows = [flatten(r) for r in load_records(folder)]
        metric_columns = sorted({k for r in rows for k in r} - set(KEY_COLUMNS)
                                - set(PROVENANCE_COLUMNS))
        buffer = io.StringIO()
        columns = [*KEY_COLUMNS, *metric_columns, *PROVENANCE_COLUMNS]
        csv.writer(buffer, lineterminator="\n").writerow([_cell(c) for c in columns])
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        return atomic_write(folder / RUNS_CSV, buffer.getvalue())


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=, +, -, @ first) gets a leading quote
    (OWASP's CSV-injection advice); numbers are left as they are."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


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
