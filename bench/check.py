"""``bench check``: reproduced means against the paper's Tables 2-4, or against earlier records.

Paper mode compares real-data runs under the ``paper`` protocol (the one the paper's numbers come
from) and refuses synthetic runs. Baseline mode compares runs with earlier runs of the same kind
(synthetic with synthetic, same profile), cell by cell under both protocols, so a change that
lowers H shows up in review even where the real data cannot be had.

Exit codes (:func:`run`): 0 every compared cell within tolerance, 1 some cell below the
reference minus the tolerance, 2 refused (synthetic vs paper, mixed kinds, nothing to compare).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench import paper, tables
from bench.tables import Cell, expected_seeds
from vsboost.config import DATASETS, ROWS

GZSL = ("U", "S", "H")
METRICS = (*GZSL, "acc")


class CheckRefused(ValueError):
    """The comparison would be meaningless; the message is one line meant for a person."""


@dataclass
class Comparison:
    source: str  # "Table 2", "Table 3", "Table 4" or "baseline"
    ours: Cell
    reference: float  # percent: the paper's number or the baseline's mean
    reference_n: int | None  # baseline seeds (None for the paper)
    tolerance: float

    @property
    def delta(self) -> float:
        return self.ours.mean - self.reference

    @property
    def failing(self) -> bool:
        return self.delta < -self.tolerance

    def as_row(self) -> list[str]:
        c = self.ours
        ours = (c.ours() + (f" · diverged ({c.diverged})" if c.diverged else "")
                + ("" if c.complete else f" · {c.n}/{c.expected} seeds done"))
        ref = f"{self.reference:.1f}" + ("" if self.reference_n is None
                                         else f" ({self.reference_n})")
        return [self.source, c.dataset, c.row, c.metric, c.protocol, ref, ours,
                f"{self.delta + 0.0:+.1f}", "BELOW" if self.failing else "ok"]


def compare_paper(records: list[dict], tolerance: float = 1.0,
                  protocol: str = "paper") -> list[Comparison]:
    """Every paper cell (Tables 2-4) that has at least one done run."""
    if not records:
        raise CheckRefused("nothing to compare: no run records; fix: run `bench sweep` first, "
                           "or check --name")
    if tables.kind(records):
        raise CheckRefused(
            f"refusing to compare {len(records)} SYNTHETIC runs with the paper: its numbers are "
            "for the real xlsa17 data; fix: run on real data (`bench data fetch`), or compare "
            "with earlier synthetic runs via `bench check --baseline DIR`")
    expected = expected_seeds(records)
    out = []
    for num in paper.NUMBERS:
        c = tables.cell(records, num.dataset, num.row, num.metric, protocol, expected)
        if c.n:
            out.append(Comparison(f"Table {num.table}", c, num.value, None, tolerance))
    if not out:
        raise CheckRefused("nothing to compare: no done run matches a paper cell "
                           "(datasets APY AWA2 CUB FLO SUN, rows plain sml rml full)")
    return out


def compare_baseline(records: list[dict], baseline: list[dict],
                     tolerance: float = 1.0) -> list[Comparison]:
    """Every (dataset, row, metric, protocol) cell that both sets of runs have."""
    if not records or not baseline:
        which = "current results" if not records else "baseline"
        raise CheckRefused(f"nothing to compare: no run records in the {which}; fix: point "
                           "--name and --baseline at folders with record.json files")
    ours_kind, base_kind = tables.kind(records), tables.kind(baseline)
    if ours_kind != base_kind:
        names = {True: "synthetic", False: "real"}
        raise CheckRefused(f"baseline runs are {names[base_kind]} but these are "
                           f"{names[ours_kind]}: expected the same kind; fix: pick a baseline "
                           "made on the same data")
    profiles = (sorted(Counter(r.get("profile") for r in records)),
                sorted(Counter(r.get("profile") for r in baseline)))
    if profiles[0] != profiles[1]:
        raise CheckRefused(f"baseline profile {', '.join(map(str, profiles[1]))} but these runs "
                           f"use {', '.join(map(str, profiles[0]))}: expected the same profile; "
                           "fix: pick a baseline of the same profile")
    n_ours, n_base = expected_seeds(records), expected_seeds(baseline)
    out = []
    for ds, row in sorted(_pairs(records) & _pairs(baseline), key=_pair_order):
        for metric in METRICS if row == "full" else GZSL:  # CZSL is Table 3: full row only
            for protocol in tables.PROTOCOLS:
                c = tables.cell(records, ds, row, metric, protocol, n_ours)
                b = tables.cell(baseline, ds, row, metric, protocol, n_base)
                if c.n and b.n:
                    out.append(Comparison("baseline", c, b.mean, b.n, tolerance))
    if not out:
        raise CheckRefused("nothing to compare: the runs and the baseline share no "
                           "(dataset, row) with done runs")
    return out


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
    headers = ["table", "dataset", "row", "metric", "protocol", reference, "ours", "Δ", "verdict"]
    return tabulate([c.as_row() for c in comparisons], headers=headers, tablefmt="pipe",
                    disable_numparse=True)


def run(results_dir: str | Path, *, tolerance: float = 1.0,
        baseline_dir: str | Path | None = None) -> tuple[int, str]:
    """Exit code and the text to print (the table, then a verdict line)."""
    try:
        records = tables.load_records(results_dir)
        if baseline_dir is None:
            comps = compare_paper(records, tolerance)
            against = "the paper (Tables 2-4, `paper` protocol)"
        else:
            comps = compare_baseline(records, tables.load_records(baseline_dir), tolerance)
            against = f"baseline {Path(baseline_dir).name}"
    except (CheckRefused, tables.ReportError) as err:
        return 2, f"bench check: {err}"
    bad = failing(comps)
    lines = [f"Comparing {Path(results_dir).name} with {against}; tolerance {tolerance:.1f} "
             "points; ours = mean ± std (ddof 1) (n).", "", format_comparisons(comps), ""]
    if bad:
        cells = "; ".join(f"{c.source} {c.ours.dataset} {c.ours.row} {c.ours.metric} "
                          f"({c.ours.protocol}) {c.delta + 0.0:+.1f}" for c in bad)
        lines.append(f"FAIL: {len(bad)} of {len(comps)} cells below the reference by more "
                     f"than {tolerance:.1f}: {cells}")
        return 1, "\n".join(lines)
    lines.append(f"PASS: all {len(comps)} compared cells within {tolerance:.1f} of the reference "
                 "or above")
    return 0, "\n".join(lines)
