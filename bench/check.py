"""``bench check``: reproduced means against the paper's Tables 2-4, or against earlier records.

Paper mode compares runs on the paper's data with the paper's settings under the ``paper``
protocol (the one the paper's numbers come from), and refuses anything else: synthetic or custom
data, files that do not match the data lock, another profile, changed settings (unless allowed,
and then each change is printed beside its verdict). Baseline mode compares runs with earlier
runs made on the same data with the same settings (same kind, profile, config hash and data
fingerprint per cell), cell by cell under both protocols, so a change that lowers H shows up in
review even where the real data cannot be had.

Against the paper it judges U, S and H (Tables 2 and 4) and CZSL top-1 accuracy (Table 3, full
row) under the ``paper`` protocol, a cell failing when its mean falls more than ``--tolerance``
points below the paper's number (a rise never fails). A reproduction is judged only when it is
complete: every (dataset, row) that has records must have all its expected seeds done
(:data:`PAPER_SEEDS`, or ``--seeds N``); failed, diverged and missing runs are named, and a
dataset or row with no records at all is listed as not compared. ``--allow-partial`` compares
what is done anyway and says so on the verdict line.

``bench check`` exits 0 when every compared cell is within tolerance (and, against the paper,
every expected run is done or ``--allow-partial`` was given), 1 when some cell falls below the
reference minus the tolerance or expected runs are not done, 2 when the comparison is refused
(synthetic vs paper, mixed kinds, nothing to compare): :class:`CheckRefused` is a people's error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench import cells, paper, store
from bench.cells import Cell, expected_seeds
from bench.schema import device_of
from vsboost.config import DATASETS, ROWS
from vsboost.errors import UserError

GZSL = ("U", "S", "H")
METRICS = (*GZSL, "acc")
# choice: the seeds of the paper reproduction (`nox -s reproduce`, `bench sweep --seeds` default):
# each (dataset, row) compared with the paper needs this many done runs unless --seeds says other.
PAPER_SEEDS = 5


class CheckRefused(UserError):
    """The comparison would be meaningless; the message is one line meant for a person."""


# Baseline mode answers "changed?" (docs/regression.md): the float64 golden master. Machine noise
# is what the same code and seeds give on another machine (other kernels, threads, stacking),
# measured by reruns of the baseline's seeds under simulated machines (--machines). A cell whose
# paired mean difference Δ stays within that band is unchanged; beyond it, the numbers changed.
# Whether a change made the method worse is a statistical question this stage does not answer:
# `bench compare` answers it (bench/compare.py), and `nox -s regress` runs both.
# choice: per-cell two-sided false-alarm rate of the machine band. 2e-4 per cell keeps a run of
# ~40 cells unchanged with probability >= 99% where the noise is as measured (Bonferroni).
CELL_ALPHA = 2e-4
# choice: the smallest tolerance, in points: the one-decimal display. In the regress profile
# (float64) the measured machine noise is below 1e-6 points, so this floor is what applies.
MIN_TOLERANCE = 0.1
TOLERANCE_RULE = (f"machine band per cell: t(1 - {CELL_ALPHA:g}/2, dof) × σ_m / √n, at least "
                  f"{MIN_TOLERANCE:g} points (σ_m: RMS paired difference of the baseline's seeds "
                  f"rerun under the simulated machines of --machines, dof their count; n: our "
                  f"seeds); without --machines, the fixed --tolerance")


@dataclass
class Comparison:
    source: str  # "Table 2", "Table 3", "Table 4" or "baseline"
    ours: Cell
    reference: float  # percent: the paper's number or the baseline's mean
    reference_n: int | None  # baseline seeds (None for the paper)
    tolerance: float
    exact: bool = True  # a baseline cell that changed fails only with --exact (paper: always)

    @property
    def delta(self) -> float:
        return self.ours.mean - self.reference

    @property
    def beyond(self) -> bool:
        # against a baseline a rise is a change too; against the paper only a fall fails
        return self.delta < -self.tolerance or (self.source == "baseline"
                                                and self.delta > self.tolerance)

    @property
    def verdict(self) -> str:
        """Against the paper: ``ok`` / ``BELOW``. Against a baseline: ``unchanged`` /
        ``CHANGED (lower)`` / ``CHANGED (higher)``: whether the numbers moved beyond the
        tolerance, never whether that is worse."""
        if self.source != "baseline":
            return "BELOW" if self.beyond else "ok"
        if not self.beyond:
            return "unchanged"
        return f"CHANGED ({'lower' if self.delta < 0 else 'higher'})"

    @property
    def failing(self) -> bool:
        return self.beyond and self.exact

    def as_row(self) -> list[str]:
        c = self.ours
        ours = (c.ours() + (f" · diverged ({c.diverged})" if c.diverged else "")
                + ("" if c.complete else f" · {c.n}/{c.expected} seeds done"))
        ref = f"{self.reference:.1f}" + ("" if self.reference_n is None
                                         else f" ({self.reference_n})")
        verdict = self.verdict
        if c.deviations:
            verdict += f" † changed: {'; '.join(c.deviations)}"
        return [self.source, c.dataset, c.row, c.metric, c.protocol, ref, ours,
                f"{self.delta + 0.0:+.1f}", f"{self.tolerance:.1f}", verdict]


def _named(runs: list[dict]) -> str:
    ids = [r["run_id"] for r in runs]
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def paper_refusal(records: list[dict], allow_deviations: bool = False) -> str | None:
    """Why ``records`` cannot be compared with the paper, as one line; None when they can.

    The paper's numbers hold for the paper's data and settings only: real files that match the
    data lock, the ``paper`` profile, and no changed setting (unless ``allow_deviations``; the
    changes are then printed beside each verdict)."""
    if not records:
        return ("nothing to compare: no run records; fix: run `bench sweep` first, or check "
                "--name")
    data = cells.kind(records)
    if data == "synthetic":
        return (f"refusing to compare {len(records)} SYNTHETIC runs with the paper: its numbers "
                "are for the real xlsa17 data; fix: run on real data (`bench data fetch`), or "
                "compare with earlier synthetic runs via `bench check --baseline DIR`")
    if data not in cells.PAPER_KINDS:
        return (f"refusing to compare {len(records)} runs on CUSTOM data "
                f"'{data.removeprefix('custom:')}' with the paper: they are not the paper's "
                "files; fix: compare them with --baseline DIR of the same data")
    reasons = [
        ("were recorded without checking their files against datasets.lock",
         [r for r in records if not (r.get("data") or {}).get("files")],
         "rerun them with this version of the suite"),
        ("read files that do not match datasets.lock",
         [r for r in records if any(f["status"] == "mismatch"
                                    for f in ((r.get("data") or {}).get("files") or {}).values())],
         "`bench data fetch`, then rerun them"),
        ("use another profile than `paper`",
         [r for r in records if r.get("profile") != "paper"],
         "rerun them with --profile paper"),
        ("were recorded without their changed settings",
         [r for r in records if "deviations" not in r],
         "rerun them with this version of the suite"),
    ]
    if not allow_deviations:
        reasons.append(("changed settings of the paper profile",
                        [r for r in records if r.get("deviations")],
                        "rerun them without --set, or pass --allow-deviations to compare anyway "
                        "with each change printed"))
    for why, runs, fix in reasons:
        if runs:
            return (f"refusing to compare with the paper: {len(runs)} run(s) {why} "
                    f"({_named(runs)}); fix: {fix}")
    return None


def compare_paper(records: list[dict], tolerance: float = 1.0, protocol: str = "paper",
                  allow_deviations: bool = False, seeds: int | None = None) -> list[Comparison]:
    """Every paper cell (Tables 2-4) that has at least one done run among seed indices
    0..seeds-1 (default :func:`paper_seeds`); refuses records that are not the paper's data and
    settings (:func:`paper_refusal`). Whether the cells are complete is :func:`missing_runs`'s."""
    refusal = paper_refusal(records, allow_deviations)
    if refusal is not None:
        raise CheckRefused(refusal)
    expected = seeds or paper_seeds(records)
    out = []
    for num in paper.NUMBERS:
        c = cells.cell(records, num.dataset, num.row, num.metric, protocol, expected)
        if c.n:
            out.append(Comparison(f"Table {num.table}", c, num.value, None, tolerance))
    if not out:
        raise CheckRefused("nothing to compare: no done run matches a paper cell "
                           "(datasets APY AWA2 CUB FLO SUN, rows plain sml rml full)")
    return out


def paper_seeds(records: list[dict]) -> int:
    """Seeds each paper cell needs: :data:`PAPER_SEEDS`, or more when higher seed indices exist."""
    return max(PAPER_SEEDS, expected_seeds(records))


def missing_runs(records: list[dict], seeds: int) -> list[str]:
    """One line per (dataset, row) with records whose seed indices 0..seeds-1 are not all done:
    which seeds failed, diverged or have no finished record."""
    out = []
    for ds, row in sorted(_pairs(records), key=_pair_order):
        kept = cells.select(records, ds, row, seeds)
        status = {r["key"]["seed_index"]: r["status"] for r in kept}
        parts = []
        for word in ("failed", "diverged"):
            found = [i for i in range(seeds) if status.get(i) == word]
            if found:
                parts.append(f"{word} " + ", ".join(f"s{i}" for i in found))
        absent = [i for i in range(seeds) if status.get(i) not in ("done", "failed", "diverged")]
        if absent:
            parts.append("missing " + ", ".join(f"s{i}" for i in absent))
        if parts:
            done = sum(s == "done" for s in status.values())
            out.append(f"{ds} {row}: {done}/{seeds} seeds done ({'; '.join(parts)})")
    return out


def not_compared(records: list[dict]) -> list[str]:
    """The paper's datasets, and rows of the datasets present, that have no record at all."""
    pairs = _pairs(records)
    present = {ds for ds, _ in pairs}
    out = [f"{ds} (no runs)" for ds in DATASETS if ds not in present]
    out += [f"{ds} {row} (no runs)" for ds in DATASETS if ds in present for row in ROWS
            if (ds, row) not in pairs]
    return out


def compare_baseline(records: list[dict], baseline: list[dict], tolerance: float = 1.0,
                     machines: list[list[dict]] | None = None,
                     exact: bool = False) -> list[Comparison]:
    """Every (dataset, row, metric, protocol) cell that both sets of runs have, when both were
    made on the same data with the same settings: Δ against the baseline's same seed indices
    (paired), judged against its machine band (``machines``: reruns of the baseline's seeds under
    other kernels, one record list per simulated machine) or, without them, ``tolerance``.
    Changed cells fail only with ``exact``."""
    if not records or not baseline:
        which = "current results" if not records else "baseline"
        raise CheckRefused(f"nothing to compare: no run records in the {which}; fix: point "
                           "--name and --baseline at folders with record.json files")
    _same_kind_and_profile(records, baseline, "these runs")
    for rerun in machines or []:
        _same_kind_and_profile(rerun, baseline, "the machine-noise reruns")
    n_ours, n_base = expected_seeds(records), expected_seeds(baseline)
    pairs = sorted(_pairs(records) & _pairs(baseline), key=_pair_order)
    for ds, row in pairs:
        base = _setting(baseline, ds, row, n_base)
        for other, what in ((records, "these runs have"),
                            *((m, "a machine-noise rerun has") for m in machines or [])):
            if (ds, row) in _pairs(other) and _setting(other, ds, row, n_base) != base:
                ours = _setting(other, ds, row, n_base)
                i = next(k for k in (1, 0, 2) if ours[k] != base[k])
                field = ("config hash", "data fingerprint", "device kind")[i]
                raise CheckRefused(
                    f"{ds} {row}: the baseline has {field} {base[i][:12]} but {what} "
                    f"{ours[i][:12]}: a baseline must be trained on the same data with the same "
                    "settings; fix: compare variants with `bench compare`, or after an intended "
                    "change regenerate the baseline (`nox -s noise`) and commit it")
    out = []
    for ds, row in pairs:
        for metric, protocol in _watched(row):
            if metric in cells.LOSSES and not _has_loss(records + baseline, ds, row, metric):
                continue  # records that carry no per-epoch losses (made by hand)
            c = cells.cell(records, ds, row, metric, protocol, n_ours)
            noise = cells.cell(baseline, ds, row, metric, protocol, n_base)
            if not (c.n and noise.n):
                continue
            base = noise.by_seed()
            # paired: the baseline's values at our seed indices, where it has them all
            ref = [base[i] for i in c.seeds] if set(c.seeds) <= set(base) else noise.values
            tol = tolerance
            diffs = _machine_diffs(machines or [], noise, ds, row, metric, protocol, n_base)
            if machines and diffs:
                sigma = (sum(d * d for d in diffs) / len(diffs)) ** 0.5
                tol = max(MIN_TOLERANCE, _t(len(diffs)) * sigma / c.n ** 0.5)
            out.append(Comparison("baseline", c, sum(ref) / len(ref), len(ref), tol, exact))
    if not out:
        raise CheckRefused("nothing to compare: the runs and the baseline share no "
                           "(dataset, row) with done runs")
    return out


def _t(dof: int) -> float:
    """Student's t quantile of the per-cell band, for ``dof`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(1 - CELL_ALPHA / 2, max(dof, 1)))


def _machine_diffs(machines: list[list[dict]], baseline: Cell, ds: str, row: str, metric: str,
                   protocol: str, expected: int) -> list[float]:
    """Paired differences, in points, of every simulated machine's rerun from the baseline's same
    seed: the machine noise of one cell."""
    base = baseline.by_seed()
    diffs = []
    for rerun in machines:
        for seed, value in cells.cell(rerun, ds, row, metric, protocol, expected).by_seed().items():
            if seed in base:
                diffs.append(value - base[seed])
    return diffs


def _same_kind_and_profile(records: list[dict], baseline: list[dict], what: str) -> None:
    ours_kind, base_kind = cells.kind(records), cells.kind(baseline)
    if ours_kind != base_kind:
        raise CheckRefused(f"the baseline is {base_kind} but {what} are {ours_kind}: "
                           "expected the same kind of data; fix: pick a baseline made on the "
                           "same data")
    profiles = (sorted(Counter(r.get("profile") for r in records)),
                sorted(Counter(r.get("profile") for r in baseline)))
    if profiles[0] != profiles[1]:
        raise CheckRefused(f"baseline profile {', '.join(map(str, profiles[1]))} but {what} "
                           f"use {', '.join(map(str, profiles[0]))}: expected the same "
                           "profile; fix: pick a baseline of the same profile")


def _watched(row: str) -> list[tuple[str, str]]:
    """(metric, protocol) cells a baseline comparison watches for a row: U, S, H under both
    protocols, CZSL for the full row (Table 3), and training values (the critic's loss for every
    row, the metric losses where the row has them, the relation F learnt where it has RML): a
    fault in a loss that barely moves the accuracies at this budget, such as an inverted RML
    target, still moves what that loss trains."""
    # not `val`: the regress profile trains no validation split (vsboost/config.py REGRESS)
    metrics = [(m, p) for m in (METRICS if row == "full" else GZSL) for p in ("paper", "last")]
    branches = ROWS.get(row, {})  # another method's row has neither metric branch
    losses = (["loss_d"] + (["loss_metric"] if branches.get("sml") or branches.get("rml") else [])
              + (["relation_same"] if branches.get("rml") else []))
    return metrics + [(loss, "last") for loss in losses]


def _has_loss(records: list[dict], dataset: str, row: str, loss: str) -> bool:
    return all(r.get("history") and loss in r["history"][-1] for r in records
               if (r["key"]["dataset"], r["key"]["row"]) == (dataset, row)
               and r["status"] == "done")


def _setting(records: list[dict], dataset: str, row: str,
             expected: int) -> tuple[str, str, str]:
    """(config hash, data fingerprint, device kind) of the runs a cell averages."""
    kept = cells.select(records, dataset, row, expected)
    key = kept[0]["key"]
    return key["config_hash"], key["data_fingerprint"], device_of(kept[0])


def _pairs(records: list[dict]) -> set[tuple[str, str]]:
    return {(r["key"]["dataset"], r["key"]["row"]) for r in records}


def _pair_order(pair: tuple[str, str]):
    ds, row = pair
    rows = list(ROWS)
    return (DATASETS.index(ds) if ds in DATASETS else len(DATASETS), ds,
            rows.index(row) if row in rows else len(rows), row)


def failing(comparisons: list[Comparison]) -> list[Comparison]:
    return [c for c in comparisons if c.failing]


def format_comparisons(comparisons: list[Comparison]) -> str:
    reference = "baseline (n)" if comparisons and comparisons[0].source == "baseline" else "paper"
    headers = ["table", "dataset", "row", "metric", "protocol", reference, "ours", "Δ",
               "tolerance", "verdict"]
    return tabulate([c.as_row() for c in comparisons], headers=headers, tablefmt="pipe",
                    disable_numparse=True)


def run(results_dir: str | Path, *, tolerance: float = 1.0,
        baseline_dir: str | Path | None = None, allow_deviations: bool = False,
        machines_dir: str | Path | None = None,
        seeds: int | None = None, allow_partial: bool = False,
        exact: bool = False) -> tuple[bool, str]:
    """Whether every compared cell passed (and, against the paper, every expected run is done
    unless ``allow_partial``), and the text to print (the table, what is missing or not
    compared, then a verdict line). Raises :class:`CheckRefused` (or another people's error)
    when the comparison would be meaningless."""
    records = store.load_records(results_dir)
    notes: list[str] = []
    incomplete: list[str] = []
    if baseline_dir is None:
        comps = compare_paper(records, tolerance, allow_deviations=allow_deviations, seeds=seeds)
        expected = seeds or paper_seeds(records)
        # The paper's numbers are VS-Boost's: another method rerun here is not held to them.
        others = sorted({r["key"]["row"] for r in records} - set(ROWS))
        incomplete = missing_runs([r for r in records if r["key"]["row"] in ROWS], expected)
        notes += [f"not done: {line}" for line in incomplete]
        if others:
            notes.append(f"not checked against the paper (other methods): rows {', '.join(others)}")
        skipped = not_compared(records)
        if skipped:
            notes.append(f"not compared: {', '.join(skipped)}")
        against = ("the paper: U, S, H (Tables 2, 4) and CZSL top-1 (Table 3) under the `paper` "
                   f"protocol, {expected} seeds per cell (test-selected, as the paper's numbers "
                   "are; the honest `last` and `val` protocols are in the reports, not checked)")
        rule = f"tolerance {tolerance:.1f} points below the paper (a rise never fails)"
    else:
        machines = None
        if machines_dir is not None:
            machines = [store.load_records(d) for d in sorted(Path(machines_dir).iterdir())
                        if d.is_dir()]
            if not any(machines):
                raise CheckRefused(f"{machines_dir}: expected one sweep folder of reruns per "
                                   "simulated machine, found none; fix: `nox -s noise` makes "
                                   "them, or leave out --machines")
        comps = compare_baseline(records, store.load_records(baseline_dir), tolerance,
                                 machines, exact)
        against = f"baseline {Path(baseline_dir).name}" + (
            f" and the machine noise of {len(machines)} simulated machines" if machines else "")
        rule = (f"changed? tolerance {TOLERANCE_RULE}, in either direction"
                + ("; a changed cell fails (--exact)" if exact else
                   "; a changed cell is reported, not failed (--exact fails on it); whether a "
                   "change is worse is `bench compare`'s question"))
    bad = failing(comps)
    if records and cells.kind(records) == "rehearsal":
        against += " — REHEARSAL: stand-in data, not the paper's; the verdict is a rehearsal's"
    lines = [f"Comparing {Path(results_dir).name} with {against}; {rule}; "
             "ours = mean ± std (ddof 1) (n); Δ and tolerance in points for accuracies, and for "
             "the training losses (loss_d, loss_metric, relation_same) in their own units ×100, "
             "not points.", "",
             format_comparisons(comps), "", *notes, *([""] if notes else [])]
    partial = (f"; PARTIAL (--allow-partial): {len(incomplete)} (dataset, row) not complete, "
               "compared on the seeds done" if incomplete and allow_partial else "")
    changed = [c for c in comps if c.source == "baseline" and c.beyond]
    if changed:
        lines.append(f"CHANGED: {len(changed)} of {len(comps)} cells moved beyond their "
                     f"tolerance: {_named_cells(changed)}"
                     + ("" if exact else " (reported; not a failure without --exact)"))
    if bad:
        if not changed:
            lines.append(f"FAIL: {len(bad)} of {len(comps)} cells below the paper minus the "
                         f"tolerance: {_named_cells(bad)}")
        else:
            lines.append(f"FAIL: {len(bad)} changed cells (--exact)")
        lines[-1] += partial
        return False, "\n".join(lines)
    if incomplete and not allow_partial:
        lines.append(f"FAIL: incomplete reproduction: {len(incomplete)} (dataset, row) without "
                     f"all their seeds done ({'; '.join(incomplete)}); the {len(comps)} cells "
                     "compared on the seeds done are within tolerance; fix: rerun the sweep, or "
                     "pass --allow-partial")
        return False, "\n".join(lines)
    if changed:
        lines.append(f"PASS (changes reported, not judged): {len(comps) - len(changed)} of "
                     f"{len(comps)} cells unchanged" + partial)
    else:
        lines.append(f"PASS: all {len(comps)} compared cells within their tolerance"
                     + ("" if baseline_dir is not None else " or above") + partial)
    return True, "\n".join(lines)


def _named_cells(group: list[Comparison]) -> str:
    return "; ".join(f"{c.source} {c.ours.dataset} {c.ours.row} {c.ours.metric} "
                     f"({c.ours.protocol}) {c.delta + 0.0:+.1f}" for c in group)
