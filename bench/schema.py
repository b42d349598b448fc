"""The one schema of a run record, checked before anything uses a record.

Records travel: results folders are shared on clusters, attached to pull requests, sent as
tarballs. So a record is input, not our own memory: :func:`problem` checks every field a reader
uses (types, ranges, finite numbers, a run id equal to its folder's name and to the id its key
makes) and says which field is wrong. :mod:`bench.store` calls it on every read and write.
"""

from __future__ import annotations

import math
import re
from typing import Any

from vsboost.config import DATASET_NAME, DATASETS, PROFILES, all_rows

SCHEMAS = (1,)  # record schemas this code reads
FINISHED = ("done", "diverged")
UNFINISHED = ("failed", "cancelled", "timeout")  # records of runs the next sweep retries
RECORD_STATUSES = (*FINISHED, *UNFINISHED)  # what a record can say
KEY_FIELDS = ("dataset", "row", "seed_index", "seed", "config_hash", "data_fingerprint")
# The key's optional "device": the kind of a run not trained on the CPU (absent for the CPU).
DEVICE_KINDS = ("cuda",)
# choice: a sweep has a handful of seeds; a bound keeps one crafted record from making a report
# allocate a table of 10**9 seeds.
MAX_SEED_INDEX = 999
RATES = frozenset({"U", "S", "H", "acc", "czsl"})  # accuracies: fractions in [0, 1]
PLAIN = re.compile(r"[A-Za-z0-9_.]{1,64}")  # hashes and fingerprints: one safe file-name part
# Metric and setting names become table columns and runs.csv headers: identifiers only, so none
# can be a spreadsheet formula (=HYPERLINK(...)) or a Markdown heading.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DATA_KINDS = ("real", "synthetic", "custom", "rehearsal")
SCALAR = (str, int, float, bool, type(None))
# provenance fields a reader uses, with the types they may hold (others are kept as written)
PROVENANCE = {"git_commit": (str, type(None)), "git_dirty": (bool, type(None)),
              "python": (str, type(None)), "torch": (str, type(None)), "cuda": (str, type(None)),
              "device": (str, type(None)), "device_name": (str, type(None)),
              "host": (str, type(None)), "started": (str, type(None)),
              "finished": (str, type(None)), "data_root": (str, type(None)),
              "wall_s": (int, float, type(None)), "job_wall_s": (int, float, type(None)),
              "device_index": (int, type(None))}
CODE = re.compile(r"[0-9a-f]{64}")  # provenance.code: vsboost.fingerprint.code()
# (field, expected, found), or None when the record holds the schema.
Problem = tuple[str, str, Any] | None


def problem(record: Any, folder_name: str | None = None) -> Problem:
    """What is wrong with ``record``; ``folder_name``: the run folder it was read from (its name
    must be the record's run id)."""
    from bench.store import run_id  # store imports this module

    if not isinstance(record, dict):
        return "(top level)", "a JSON object", type(record).__name__
    if record.get("schema") not in SCHEMAS:
        return "schema", f"one of {', '.join(map(str, SCHEMAS))}", record.get("schema")
    key = record.get("key")
    if not isinstance(key, dict):
        return "key", f"an object holding {', '.join(KEY_FIELDS)}", type(key).__name__
    for field, wrong in _key_problems(key):
        return f"key.{field}", *wrong
    rid = record.get("run_id")
    made = run_id(key["dataset"], key["row"], key["seed_index"], key["config_hash"],
                  key["data_fingerprint"], key.get("device", "cpu"))
    if rid != made:
        return "run_id", f"{made!r} (the id its key makes)", rid
    if folder_name is not None and folder_name != rid:
        return "run_id", f"the name of its folder {folder_name!r}", rid
    status = record.get("status")
    if status not in RECORD_STATUSES:
        return "status", f"one of {', '.join(RECORD_STATUSES)}", status
    if not isinstance(record.get("synthetic"), bool):
        return "synthetic", "true or false", record.get("synthetic")
    if record.get("profile") not in (*PROFILES, None):
        return "profile", f"one of {', '.join(PROFILES)}", record.get("profile")
    if not isinstance(record.get("error"), (str, type(None))):
        return "error", "a string or null", record.get("error")
    for field in ("data", "deviations", "config", "sampler", "provenance"):
        if not isinstance(record.get(field, {}), dict):
            return field, "an object", type(record.get(field)).__name__
    wrong = _leaves(record)
    if wrong:
        return wrong
    code = (record.get("provenance") or {}).get("code")
    if code is not None and not (isinstance(code, str) and CODE.fullmatch(code)):
        return "provenance.code", "null or a sha256 of the code (64 hex digits)", code
    if not isinstance(record.get("validation"), (dict, type(None))):
        return "validation", "an object or null", type(record.get("validation")).__name__
    epoch = record.get("diverged_epoch")
    if epoch is not None and not _count(epoch, low=1):
        return "diverged_epoch", "null or an epoch >= 1", epoch
    metrics = record.get("metrics")
    if status == "done":
        if not isinstance(metrics, dict):
            return "metrics", "an object (status is done)", type(metrics).__name__
        for part in ("paper", "last"):
            if not isinstance(metrics.get(part), dict) or any(
                    isinstance(metrics[part].get(m, {}), dict) for m in ("U", "S", "H")):
                return f"metrics.{part}", "an object holding U, S and H", metrics.get(part)
        # val: absent in records made without the val protocol (or whose validation diverged)
        if metrics.get("val") is not None and (not isinstance(metrics["val"], dict) or any(
                m not in metrics["val"] for m in ("U", "S", "H", "epoch", "cls_epoch"))):
            return "metrics.val", "null or an object holding U, S, H and the selected epochs", \
                metrics.get("val")
    elif metrics is not None and not isinstance(metrics, dict):
        return "metrics", "an object or null", type(metrics).__name__
    wrong = _numbers(metrics or {}, "metrics")
    if wrong:
        return wrong
    czsl = (metrics or {}).get("czsl")
    for part in ("paper", "last") if czsl is not None else ():
        if not isinstance(czsl, dict) or not isinstance(czsl.get(part), dict) or \
                isinstance(czsl[part].get("acc", {}), dict):
            return f"metrics.czsl.{part}", "an object holding acc", (czsl or {}).get(part) \
                if isinstance(czsl, dict) else czsl
    history = record.get("history", [])
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        return "history", "a list of objects, one per evaluated epoch", type(history).__name__
    for i, entry in enumerate(history):
        wrong = _numbers(entry, f"history[{i}]", nulls=True)
        if wrong:
            return wrong
    return None


def _leaves(record: dict) -> Problem:
    """Types inside data, deviations, config and provenance: what tables and runs.csv print."""
    data = record.get("data", {})
    if "kind" in data and data["kind"] not in DATA_KINDS:
        return "data.kind", f"one of {', '.join(DATA_KINDS)}", data["kind"]
    if not isinstance(data.get("label"), (str, type(None))):
        return "data.label", "a string or null", data.get("label")
    files = data.get("files", {})
    if not isinstance(files, dict):
        return "data.files", "an object", type(files).__name__
    for rel, entry in files.items():
        if not isinstance(entry, dict):
            return f"data.files.{rel}", "an object", entry
        for field in ("sha256", "pinned", "status"):
            if not isinstance(entry.get(field), (str, type(None))):
                return f"data.files.{rel}.{field}", "a string or null", entry.get(field)
    for name, change in record.get("deviations", {}).items():
        if not NAME.fullmatch(name) or not isinstance(change, dict) or not all(
                isinstance(change.get(k), SCALAR) for k in ("value", "default")):
            return f"deviations.{name}", "a setting name -> {value, default} (plain values)", \
                change
    for name, value in record.get("config", {}).items():
        if not NAME.fullmatch(name) or not isinstance(value, SCALAR):
            return f"config.{name}", "a setting name -> a plain value", value
    provenance = record.get("provenance", {})
    for field, types in PROVENANCE.items():
        if not isinstance(provenance.get(field), types):
            return f"provenance.{field}", "a " + " or ".join(
                {"NoneType": "null"}.get(t.__name__, t.__name__) for t in types), \
                provenance.get(field)
    changes = provenance.get("git_changes")
    if changes is not None and not (isinstance(changes, list)
                                    and all(isinstance(c, str) for c in changes)):
        return "provenance.git_changes", "null or a list of file names", changes
    precision = provenance.get("precision")
    if precision is not None and not (isinstance(precision, dict) and all(
            isinstance(v, (str, type(None))) for v in precision.values())):
        return "provenance.precision", "null or an object of strings", precision
    return None
def device_of(record: dict) -> str:
    """The device kind a run's key says it trained on ("cpu" when the key names none)."""
    return record["key"].get("device", "cpu")


def _key_problems(key: dict):
    missing = [f for f in KEY_FIELDS if f not in key]
    if missing:
        yield missing[0], ("present", "nothing")
        return
    if not _dataset_name(key["dataset"]):
        yield "dataset", (f"one of {', '.join(DATASETS)} or another dataset folder's name",
                          key["dataset"])
    if key["row"] not in all_rows():  # a tuple: an unhashable value is simply not in it
        yield "row", (f"one of {', '.join(all_rows())}", key["row"])
    if not _count(key["seed_index"], high=MAX_SEED_INDEX):
        yield "seed_index", (f"a whole number in 0..{MAX_SEED_INDEX}", key["seed_index"])
    if not _count(key["seed"], high=2**63 - 1):
        yield "seed", ("a whole number >= 0", key["seed"])
    for field in ("config_hash", "data_fingerprint"):
        if not isinstance(key[field], str) or not PLAIN.fullmatch(key[field]):
            yield field, ("up to 64 letters, digits, '_' or '.'", key[field])
    if "device" in key and key["device"] not in DEVICE_KINDS:
        yield "device", (f"absent (CPU) or one of {', '.join(DEVICE_KINDS)}", key["device"])


def _dataset_name(value: Any) -> bool:
    """One of the paper's datasets, or another xlsa17 folder's name (run with --data-label)."""
    return value in DATASETS or (isinstance(value, str) and bool(DATASET_NAME.fullmatch(value)))


def _count(value: Any, low: int = 0, high: int = 10**9) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _numbers(tree: dict, where: str, nulls: bool = False) -> Problem:
    """Every leaf of a metrics/history object: a finite number (accuracies in [0, 1]); null only
    where the writer turns a non-finite loss into null (history)."""
    for name, value in tree.items():
        field = f"{where}.{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            return field, "a metric name (letters, digits, '_')", name
        if isinstance(value, dict):
            wrong = _numbers(value, field, nulls)
            if wrong:
                return wrong
            continue
        if value is None and nulls:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value):
            return field, "a finite number", value
        if name in RATES and not 0 <= value <= 1:
            return field, "an accuracy in [0, 1] (a fraction, not a percentage)", value
    return None


def reference_problem(body: Any) -> Problem:
    """The same for a reference record (``_reference/<DS>-<fp8>.json``, bench.store)."""
    if not isinstance(body, dict) or body.get("kind") != "reference":
        return "kind", "'reference'", body.get("kind") if isinstance(body, dict) else body
    if not _dataset_name(body.get("dataset")):
        return "dataset", f"one of {', '.join(DATASETS)} or another dataset folder's name", \
            body.get("dataset")
    if not isinstance(body.get("data_fingerprint"), str):
        return "data_fingerprint", "a string", body.get("data_fingerprint")
    metrics = body.get("metrics")
    if not isinstance(metrics, dict) or any(m not in metrics for m in ("U", "S", "H")):
        return "metrics", "an object holding U, S and H", metrics
    return _numbers(metrics, "metrics")
