"""``bench compare``: two sets of runs (A, then B), judged cell by cell: is B better or worse?

Each side is a results folder, or one variant of a folder (``PATH@PREFIX``: the runs whose config
hash or code fingerprint starts with PREFIX). Per (dataset, row, metric, protocol) it gives the
difference B − A of the means, its interval at the stated level, and one verdict:

- ``better`` / ``worse``: the interval excludes 0 (an accuracy rose / fell);
- ``no detectable difference (MDD d)``: the interval holds 0; d is the smallest true difference
  this test, with this n and spread, finds with probability 90% (:func:`bench.stats.detectable`);
- ``negligible``: the interval excludes 0 but |Δ| is below a floor the caller sets
  (``--negligible``; the regression check uses the one-decimal display, 0.1 points);
- ``cannot judge``: fewer than 3 runs per side (pairs, when paired), or the sides are not
  comparable (another data version or kind, another device kind, a protocol one side lacks);
  the reason is printed.

Pairing: when the sides share at least 3 seed indices, each with the same seed on both sides
(the seed derives from the dataset and the seed index, so both variants drew their random
streams from the same seeds), the per-seed differences on those shared indices are judged
(paired t); a change that keeps the random draws then gives exact per-seed effects, and one that
redraws them gives independent pairs, for which the paired test stays valid. Otherwise the two
samples are compared unpaired (Welch). The table says which; the n of a paired cell counts
pairs. Losses and other training diagnostics are shown apart, in their own units, and called
higher or lower, never better or worse. Each cell is judged at the stated level on its own (no
correction for the number of cells: a table of 40 cells at 95% holds about two false verdicts
when nothing changed; the regression check corrects for it, docs/regression.md).

Across datasets, where at least two datasets have ≥ 3 runs per side, the probability that a run
of B beats a run of A (rliable's probability of improvement: the Mann-Whitney statistic per
dataset, averaged) with a stratified bootstrap interval (runs resampled within each dataset and
side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench import cells, stats, store
from vsboost.config import DATASETS, ROWS

ACCURACIES = ("U", "S", "H", "acc")  # acc: CZSL top-1 (Table 3)
BETTER, WORSE, SAME, CANNOT = "better", "worse", "no detectable difference", "cannot judge"
NEGLIGIBLE = "negligible"  # the interval excludes 0 but |Δ| is below the --negligible floor
BOOTSTRAP = 2000  # choice: resamples of the aggregate's interval (rliable uses 2000 too)
BOOTSTRAP_SEED = 0  # choice: a fixed stream, so the same records print the same interval


class CompareRefused(store.BenchError):
    """Inputs that cannot be compared at all (one line; exit 2)."""


@dataclass(frozen=True)
class Side:
    label: str
    records: list[dict]


@dataclass(frozen=True)
class Judged:
    """One compared cell."""

    dataset: str
    row: str
    metric: str
    protocol: str
    a: list[float]
    b: list[float]
    verdict: str
    interval: stats.Interval | None = None
    test: str = ""  # "paired" or "Welch"
    why: str = ""  # what "cannot judge" lacks
    detectable: float | None = None

    @property
    def loss(self) -> bool:
        return self.metric in cells.LOSSES

    def as_row(self) -> list[str]:
        digits = 4 if self.loss else 1

        def summary(values: list[float]) -> str:
            if not values:
                return "—"
            sd = f" ± {np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else ""
            return f"{np.mean(values):.{digits}f}{sd} ({len(values)})"

        iv = self.interval
        delta = (f"{np.mean(self.b) - np.mean(self.a) + 0.0:+.{digits}f}"
                 if self.a and self.b else "—")
        span = (f"[{iv.low + 0.0:+.{digits}f}, {iv.high + 0.0:+.{digits}f}]"
                if iv is not None and iv.low is not None else "—")
        verdict = self.verdict
        if self.verdict == SAME and self.detectable is not None:
            verdict += f" (MDD {self.detectable:.{digits}f})"
        if self.why:
            verdict += f": {self.why}"
        return [self.dataset, self.row, self.metric, self.protocol, summary(self.a),
                summary(self.b), delta, span, self.test or "—", verdict]


def side(spec: str) -> Side:
    """``PATH`` or ``PATH@PREFIX`` → its records (the variant's only, with a prefix)."""
    path, _, prefix = spec.partition("@")
    if not Path(path).is_dir():
        raise CompareRefused(f"{path}: expected a results folder (results/<sweep>), found none; "
                             "fix: pass a folder that holds run folders")
    records = store.load_records(Path(path))
    if prefix:
        records = [r for r in records if r["key"]["config_hash"].startswith(prefix)
                   or (store.code_of(r) or "unrecorded").startswith(prefix)]
        if not records:
            raise CompareRefused(f"{spec}: no run of {path} has a config hash or code starting "
                                 f"with {prefix!r}; fix: use a prefix `bench report` or an "
                                 "error naming the variants shows")
    if not records:
        raise CompareRefused(f"{path}: expected run records, found none; fix: run `bench sweep` "
                             "first")
    cells.kind(records)  # one kind of data per side
    return Side(spec, records)


def compare(a: Side, b: Side, confidence: float = stats.CONFIDENCE,
            metrics: Sequence[str] = (*ACCURACIES, *cells.LOSSES),
            negligible: float = 0.0) -> list[Judged]:
    """Every (dataset, row, metric, protocol) both sides have, judged. ``negligible``: an
    accuracy difference smaller than this (points) is never called better or worse."""
    pairs = sorted({_pair(r) for r in a.records} & {_pair(r) for r in b.records}, key=_order)
    if not pairs:
        raise CompareRefused(f"{a.label} and {b.label} share no (dataset, row): nothing to "
                             "compare; fix: compare folders that ran the same datasets and rows")
    out = []
    for ds, row in pairs:
        runs_a, runs_b = _one_variant(a, ds, row), _one_variant(b, ds, row)
        why = _not_comparable(a, b, ds, runs_a, runs_b)
        for metric in metrics:
            for protocol in (("last",) if metric in cells.LOSSES else tuple(cells.PROTOCOLS)):
                va, vb = _values(runs_a, metric, protocol), _values(runs_b, metric, protocol)
                if va is None and vb is None:
                    continue  # neither side records it (a row without that loss)
                out.append(_judge(ds, row, metric, protocol, va, vb, why, confidence,
                                  negligible))
    return out


def _judge(ds, row, metric, protocol, va, vb, why, confidence, negligible) -> Judged:
    head = (ds, row, metric, protocol)
    if va is None or vb is None:
        missing = "A" if va is None else "B"
        return Judged(*head, [], [], CANNOT, why=f"{missing} does not record it")
    a, b = list(va.values()), list(vb.values())
    if why:
        return Judged(*head, a, b, CANNOT, why=why)
    # same seed indices hold the same seeds (_not_comparable checks it)
    common = sorted(va.keys() & vb.keys())
    paired = len(common) >= stats.MIN_N
    if paired:  # A and B shown over the pairs judged, so that Δ is their mean difference
        a, b = [va[i] for i in common], [vb[i] for i in common]
    iv = (stats.paired(vb, va, confidence) if paired else stats.welch(b, a, confidence))
    test = "paired" if paired else "Welch"
    if iv.low is None:
        return Judged(*head, a, b, CANNOT, iv, test, why=f"n={iv.n} < {stats.MIN_N}")
    if not iv.excludes_zero:
        return Judged(*head, a, b, SAME, iv, test, detectable=stats.detectable(iv))
    up = iv.low > 0
    if metric in cells.LOSSES:
        return Judged(*head, a, b, "higher" if up else "lower", iv, test)
    if abs(iv.mean) < negligible:
        return Judged(*head, a, b, NEGLIGIBLE, iv, test, why=f"|Δ| < {negligible:g}")
    return Judged(*head, a, b, BETTER if up else WORSE, iv, test)


def _one_variant(s: Side, ds: str, row: str) -> list[dict]:
    groups = cells.variants(s.records, ds, row)
    if len(groups) > 1:
        named = "; ".join(cells.variant_text(k, v) for k, v in sorted(groups.items()))
        raise CompareRefused(f"{s.label}: {ds} {row} holds {len(groups)} variants: {named}; "
                             "expected one per side; fix: name one as PATH@<config hash or code "
                             "prefix>")
    return next(iter(groups.values()), [])


def _not_comparable(a: Side, b: Side, ds: str, runs_a: list[dict], runs_b: list[dict]) -> str:
    """Why runs of the two sides cannot be compared ('' when they can)."""
    kinds = cells.kind(a.records), cells.kind(b.records)
    if kinds[0] != kinds[1]:
        return f"data kind {kinds[0]} vs {kinds[1]}"
    versions = cells.data_version(a.records, ds), cells.data_version(b.records, ds)
    if versions[0] != versions[1]:
        return f"data version {versions[0][:8]} vs {versions[1][:8]}"
    devices = [sorted({(r.get("provenance") or {}).get("device") or "unrecorded" for r in runs})
               for runs in (runs_a, runs_b)]
    if devices[0] != devices[1]:
        return f"device kind {','.join(devices[0])} vs {','.join(devices[1])}"
    seeds = [{r["key"]["seed_index"]: r["key"]["seed"] for r in runs} for runs in (runs_a, runs_b)]
    clash = [i for i in seeds[0].keys() & seeds[1].keys() if seeds[0][i] != seeds[1][i]]
    if clash:
        return f"seed index {min(clash)} has another seed on each side"
    return ""


def _values(runs: list[dict], metric: str, protocol: str) -> dict[int, float] | None:
    """{seed index: value} of the done runs; accuracies in points, losses in their own units.
    None when no done run records it."""
    out = {}
    for r in runs:
        if r["status"] != "done":
            continue
        if metric in cells.LOSSES:
            value = ((r.get("history") or [{}])[-1] or {}).get(metric)
        else:
            metrics = r.get("metrics") or {}
            part = (metrics.get("czsl") or {}) if metric == "acc" else metrics
            value = (part.get(protocol) or {}).get(metric)
        if value is None:
            return None
        out[r["key"]["seed_index"]] = float(value) * (1 if metric in cells.LOSSES else 100)
    return dict(sorted(out.items())) or None


def aggregate(a: Side, b: Side, judged: list[Judged]) -> list[list[str]]:
    """Per (row, protocol): P(a run of B beats a run of A) on H over the datasets where both
    sides have ≥ 3 comparable runs, with its stratified bootstrap 95% interval."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    out = []
    for row in ROWS:
        for protocol in cells.PROTOCOLS:
            tasks = [(np.array(j.a), np.array(j.b)) for j in judged
                     if (j.row, j.metric, j.protocol) == (row, "H", protocol)
                     and j.verdict != CANNOT]
            if len(tasks) < 2:
                continue
            point = np.mean([_improvement(x, y) for x, y in tasks])
            boot = [np.mean([_improvement(rng.choice(x, len(x)), rng.choice(y, len(y)))
                             for x, y in tasks]) for _ in range(BOOTSTRAP)]
            low, high = np.percentile(boot, [2.5, 97.5])
            out.append([row, protocol, str(len(tasks)), f"{point:.2f} [{low:.2f}, {high:.2f}]"])
    return out


def _improvement(a: np.ndarray, b: np.ndarray) -> float:
    """P(B > A) + P(B = A)/2 over all pairs of a run of A and a run of B (Mann-Whitney)."""
    diff = b[:, None] - a[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def render(a: Side, b: Side, judged: list[Judged], confidence: float) -> str:
    head = ["dataset", "row", "metric", "protocol", "A mean ± sd (n)", "B mean ± sd (n)",
            "Δ = B − A", f"{int(round(100 * confidence))}% interval", "test", "verdict"]
    acc = [j.as_row() for j in judged if not j.loss]
    loss = [j.as_row() for j in judged if j.loss]
    lines = [f"A = {a.label}; B = {b.label}. Accuracies in points (percent); sd with ddof 1; "
             f"each cell judged on its own at {100 * confidence:g}%; MDD = the smallest true "
             f"difference this test detects with {100 * stats.POWER:g}% probability.", ""]
    if acc:
        lines += ["## Accuracies", "", tabulate(acc, headers=head, tablefmt="pipe",
                                                disable_numparse=True), ""]
    if loss:
        lines += ["## Training diagnostics (last epoch, own units: not accuracies, never judged "
                  "better or worse)", "",
                  tabulate(loss, headers=head, tablefmt="pipe", disable_numparse=True), ""]
    agg = aggregate(a, b, judged)
    if agg:
        lines += ["## Across datasets: probability that a run of B beats a run of A on H "
                  f"(stratified bootstrap 95% interval, {BOOTSTRAP} resamples)", "",
                  tabulate(agg, headers=["row", "protocol", "datasets", "P(B > A)"],
                           tablefmt="pipe", disable_numparse=True), ""]
    counts = {w: sum(j.verdict == w for j in judged if not j.loss)
              for w in (BETTER, WORSE, SAME, NEGLIGIBLE, CANNOT)}
    lines.append("accuracy cells: " + ", ".join(f"{n} {w}" for w, n in counts.items()))
    return "\n".join(lines)


def worse(judged: list[Judged]) -> list[Judged]:
    return [j for j in judged if j.verdict == WORSE]


def _pair(record: dict) -> tuple[str, str]:
    return record["key"]["dataset"], record["key"]["row"]


def _order(pair: tuple[str, str]):
    ds, row = pair
    return (DATASETS.index(ds), list(ROWS).index(row))
