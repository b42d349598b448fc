"""One table cell: which runs it averages, and the mean ± std (n) it shows or why it shows none.

Pure functions of run records (``bench.store``'s ``record.json`` dicts). The honesty rules live
here: a cell averages the runs of one variant only (per dataset the data version of its most
recently finished run, left-out versions noted; per (dataset, row) one config hash and one code,
several refused with each named); real and synthetic records never
meet in one report; a cell without all its seeds finished says how many are done, or that runs
failed or diverged. ``docs/protocols.md`` explains the three selection protocols.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from bench.schema import device_of
from vsboost.errors import UserError

PROTOCOLS = {
    "paper": "`paper` protocol (test-selected: best test H over generator and classifier epochs, "
    "as the paper's lineage selects; optimistic)",
    "last": "`last` protocol (honest: last generator epoch, last classifier epoch; never looks at "
    "test labels)",
    "val": "`val` protocol (honest: generator and classifier epoch of the best H on validation "
    "classes carved from the seen classes, then the test metrics there; never looks at test "
    "labels)",
}
GZSL = ("U", "S", "H")


class ReportError(UserError):
    """Records that cannot make an honest report; the message is one line meant for a person."""


# The data kinds judged against the paper: its real files, and a rehearsal of the real path on
# stand-in files (bench rehearse), which every report and verdict labels REHEARSAL.
PAPER_KINDS = ("real", "rehearsal")
REHEARSAL_NOTE = ("**REHEARSAL**: stand-in files with the real archives' layout, served locally "
                  "by `bench rehearse`; NOT the paper's data and NOT a reproduction: every "
                  "number here only shows that the real path runs end to end.")


def kind_title(data: str) -> str:
    """How a report's title names its data kind."""
    return {"real": "real data", "synthetic": "SYNTHETIC data",
            "rehearsal": "REHEARSAL (stand-in data)"}.get(data, "CUSTOM data")


def data_kind(record: dict) -> str:
    """``real``, ``synthetic``, ``rehearsal`` or ``custom:<label>`` (the user's own data under
    that label).
    Records made before data verification have no ``data`` block: their ``synthetic`` flag says."""
    data = record.get("data") or {}
    found = data.get("kind") or ("synthetic" if record["synthetic"] else "real")
    return f"custom:{data.get('label')}" if found == "custom" else found


def kind(records: list[dict]) -> str:
    """The one data kind of ``records`` (:func:`data_kind`); refuses a mix or nothing, so that real,
    synthetic and custom runs never meet in one report, cell or comparison."""
    if not records:
        raise ReportError("no run records: expected results/<name>/<run>/record.json; "
                          "fix: run `bench sweep` first, or check --name")
    kinds = Counter(data_kind(r) for r in records)
    if len(kinds) > 1:
        mix = " and ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        raise ReportError(
            f"records mix {mix} runs: expected one kind of data per report; fix: keep real, "
            "synthetic and custom results under different --name"
        )
    return next(iter(kinds))


def deviation_text(record: dict) -> list[str]:
    """``key=value (default d)`` for each setting the run changed from its profile's defaults."""
    return [f"{k}={v['value']} (default {v['default']})"
            for k, v in sorted((record.get("deviations") or {}).items())]


@dataclass
class Cell:
    """The runs behind one (dataset, row) and the values of one metric under one protocol."""

    dataset: str
    row: str
    metric: str
    protocol: str
    expected: int
    values: list[float] = field(default_factory=list)  # percent, done runs, by seed index
    seeds: list[int] = field(default_factory=list)
    diverged: int = 0
    failed: int = 0
    cancelled: int = 0  # by the cluster (scancel)
    timeout: int = 0  # out of time after its requeues
    unselected: int = 0  # done, but recorded without this protocol (val_protocol off)
    deviations: list[str] = field(default_factory=list)  # settings changed from the profile

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else None

    @property
    def complete(self) -> bool:
        return self.n > 0 and self.n + self.diverged >= self.expected

    def by_seed(self) -> dict[int, float]:
        """Seed index -> value of the done runs: what a paired difference pairs on."""
        return dict(zip(self.seeds, self.values, strict=True))

    def ours(self) -> str:
        """``mean ± std (n)`` (no ± for n = 1), without any status note."""
        if not self.values:
            return "—"
        spread = f" ± {self.std:.1f}" if self.std is not None else ""
        return f"{self.mean:.1f}{spread} ({self.n})"

    def text(self) -> str:
        """The table cell: the mean once complete, otherwise why it is missing; never blank."""
        if self.complete:
            return (self.ours() + (" †" if self.deviations else "")
                    + (f" · diverged ({self.diverged})" if self.diverged else ""))
        broken = [f"{word} ({k})" for word, k in (
            ("diverged", self.diverged), ("failed", self.failed), ("cancelled", self.cancelled),
            ("timeout", self.timeout), ("not recorded for this protocol", self.unselected)) if k]
        pending = (self.expected - self.n - self.diverged - self.failed - self.cancelled
                   - self.timeout - self.unselected)
        if self.n == 0 and pending <= 0 and broken:
            return ", ".join(broken)
        return ", ".join([f"— {self.n}/{self.expected} seeds done", *broken])


# Training values a baseline comparison also watches, from the last evaluated epoch:
# protocol-independent, shown x100 like the percentages (one decimal = the value to 1e-3).
# loss_d: the critic's loss; loss_metric: L_SM + L_RM on real features; relation_same: the mean
# relation F predicts for same-class pairs (vsboost.methods.vsboost.VSBoost.relation_scores).
LOSSES = ("loss_d", "loss_metric", "relation_same")


def _metric(record: dict, metric: str, protocol: str) -> float:
    metrics = record["metrics"]
    try:
        if metric in LOSSES:
            raw = record["history"][-1][metric]
        else:
            raw = metrics["czsl"][protocol]["acc"] if metric == "acc" else metrics[protocol][metric]
    except (KeyError, TypeError, IndexError) as err:
        where = (f"history[-1].{metric}" if metric in LOSSES else
                 f"czsl.{protocol}.acc" if metric == "acc" else f"{protocol}.{metric}")
        raise ReportError(f"run {record['run_id']}: expected {where} in its record, "
                          f"found none; fix: rerun that run") from err
    if not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ReportError(f"run {record['run_id']}: expected a finite fraction for metric "
                          f"{metric} ({protocol}), found {raw!r}; fix: rerun that run")
    return 100.0 * float(raw)


def _recorded(record: dict, metric: str, protocol: str) -> bool:
    """False for a ``val`` value of a run made without the val protocol (or whose validation
    training diverged): the run is done but has no such number."""
    if protocol != "val" or metric in LOSSES:
        return True
    metrics = record.get("metrics") or {}
    found = (metrics.get("czsl") or {}).get("val") if metric == "acc" else metrics.get("val")
    return found is not None


def expected_seeds(records: Iterable[dict]) -> int:
    """Default seed count of a report: highest seed index present + 1."""
    return 1 + max((r["key"]["seed_index"] for r in records), default=0)


def data_version(records: list[dict], dataset: str) -> str | None:
    """The one data version (fingerprint) a report shows for ``dataset``: that of its most recently
    finished run. So a report follows the files the runs were last made on, every row of a
    dataset uses the same data, and the choice never depends on hash order."""
    runs = [r for r in records if r["key"]["dataset"] == dataset]
    if not runs:
        return None
    newest = max(runs, key=lambda r: ((r.get("provenance") or {}).get("finished") or "",
                                      r["run_id"]))
    return newest["key"]["data_fingerprint"]


def data_version_notes(records: list[dict], dataset: str) -> list[str]:
    """One line per data version of ``dataset`` left out by :func:`data_version`."""
    keep = data_version(records, dataset)
    other = Counter(r["key"]["data_fingerprint"] for r in records
                    if r["key"]["dataset"] == dataset and r["key"]["data_fingerprint"] != keep)
    return [f"{dataset}: {n} run(s) on data fingerprint {fp[:8]} left out; this report uses "
            f"{keep[:8]}, the data of the most recently finished {dataset} run"
            for fp, n in sorted(other.items())]


def variant(record: dict) -> str:
    """What makes two runs of one (dataset, row) the same variant: the config hash (the settings),
    the code that computed them (``provenance.code``; ``unrecorded`` for older records) and the
    device kind (CPU and CUDA draw other numbers from one seed)."""
    code = (record.get("provenance") or {}).get("code") or "unrecorded"
    return f"config {record['key']['config_hash']} code {code[:12]} on {device_of(record)}"


def variants(records: list[dict], dataset: str, row: str) -> dict[str, list[dict]]:
    """The runs of (dataset, row) on the dataset's :func:`data_version`, by :func:`variant`."""
    version = data_version(records, dataset)
    groups: dict[str, list[dict]] = {}
    for r in records:
        if (r["key"]["dataset"], r["key"]["row"], r["key"]["data_fingerprint"]) == (
                dataset, row, version):
            groups.setdefault(variant(r), []).append(r)
    return groups


def variant_text(name: str, members: list[dict]) -> str:
    """``config abc… code def… (3 runs; tau=0.5 (default 0.1))``: one variant, named."""
    changed = sorted({d for r in members for d in deviation_text(r)}) or ["profile defaults"]
    return f"{name} ({len(members)} run(s); {', '.join(changed)})"


def select(records: list[dict], dataset: str, row: str, expected: int) -> list[dict]:
    """The runs one cell averages (seed indices below ``expected``).

    Only runs on the dataset's :func:`data_version` count (the other versions are noted once per
    dataset by :func:`data_version_notes`). They must be one variant (one config hash, one code):
    a folder holding several is refused with each named, never averaged and never decided by
    majority or hash order (`bench compare` compares variants).
    """
    groups = variants(records, dataset, row)
    if len(groups) > 1:
        named = "; ".join(variant_text(k, v) for k, v in sorted(groups.items()))
        raise ReportError(
            f"{dataset} {row}: this folder holds {len(groups)} variants: {named}; a cell shows "
            "one: expected one config, one code and one device kind per (dataset, row); fix: "
            "rerun `bench sweep` with the same settings and seeds (it retrains runs of other "
            "code), keep "
            "other settings under another --name, or compare them with `bench compare`")
    kept = [r for members in groups.values() for r in members
            if r["key"]["seed_index"] < expected]
    return sorted(kept, key=lambda r: r["key"]["seed_index"])


def cell(records: list[dict], dataset: str, row: str, metric: str, protocol: str,
         expected: int) -> Cell:
    kept = select(records, dataset, row, expected)
    changed = sorted({d for r in kept for d in deviation_text(r)})
    out = Cell(dataset, row, metric, protocol, expected, deviations=changed)
    for r in kept:
        if r["status"] == "done" and not _recorded(r, metric, protocol):
            out.unselected += 1
        elif r["status"] == "done":
            out.values.append(_metric(r, metric, protocol))
            out.seeds.append(r["key"]["seed_index"])
        elif r["status"] == "diverged":
            out.diverged += 1
        elif r["status"] in ("cancelled", "timeout"):
            setattr(out, r["status"], getattr(out, r["status"]) + 1)
        else:
            out.failed += 1
    return out


def ran(records: list[dict], dataset: str, row: str) -> bool:
    """Whether any run of (dataset, row) has a record: what was asked for, whatever its status.
    Tables and claims speak of these cells only."""
    return any((r["key"]["dataset"], r["key"]["row"]) == (dataset, row) for r in records)


def not_run(records: list[dict], order: Iterable[str], axis: str) -> list[str]:
    """The names of ``order`` (datasets or rows) that no record has."""
    found = {r["key"][axis] for r in records}
    return [x for x in order if x not in found]


def present(records: list[dict], axis: str, order: Iterable[str]) -> list[str]:
    found = {r["key"][axis] for r in records}
    return [x for x in order if x in found] + sorted(found - set(order))
