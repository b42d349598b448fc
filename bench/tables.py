"""Run records -> Tables 2, 3 and 4 as pandas DataFrames and markdown.

Everything here except :func:`load_records` and :func:`write_reports` is a pure function of the
records (the contract's ``record.json`` dicts), so reports are regenerated from ``results/`` alone
and golden-tested on hand-made records. Honesty rules (issues 3 and 5) live here:

- a cell averages only the runs of one setting: per (dataset, row) the majority (config hash, data
  fingerprint) group; the rest are left out and the report says how many and why;
- the two selection protocols get separate tables, never one cell;
- real and synthetic records are never in one report; synthetic reports say SYNTHETIC in the title;
- a cell without all its seeds finished says how many are done, or that runs failed or diverged.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench import figures, paper
from vsboost.config import DATASETS, ROWS, ConfigError, defaults

PROTOCOLS = {
    "paper": "`paper` protocol (test-selected: best test H over generator and classifier epochs, "
    "as the paper's lineage selects; optimistic)",
    "last": "`last` protocol (honest: last generator epoch, last classifier epoch; never looks at "
    "test labels)",
}
GZSL = ("U", "S", "H")
STATUSES = ("done", "diverged", "failed")

FOOTNOTE = (
    "Cells: mean ± sample standard deviation (ddof = 1) over seeds, in percent, one decimal; "
    "(n) = number of seeds averaged; n = 1 shows no spread. U, S and H of one seed come from the "
    "same selected epoch, and H is averaged per seed, not recomputed from the mean U and S. "
    "Δ = ours − paper, in points (real data only). A cell shows a mean once every expected "
    "seed has finished (done or diverged); before that it says how many are done. Diverged "
    "runs are not averaged."
)


class ReportError(ValueError):
    """Records that cannot make an honest report; the message is one line meant for a person."""


# ===== reading records =====

def load_records(results_dir: str | Path) -> list[dict]:
    """Every ``*/record.json`` under ``results_dir`` (one folder per run), sorted by run id."""
    records = []
    for path in sorted(Path(results_dir).glob("*/record.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ReportError(
                f"{path}: expected a JSON run record, found unreadable content ({err}); "
                "fix: delete that run folder and rerun the sweep"
            ) from err
        _validate(record, path)
        records.append(record)
    return records


def _validate(record: dict, path: Path) -> None:
    def bad(what: str) -> ReportError:
        return ReportError(
            f"{path}: expected a schema-1 run record with {what}; "
            "fix: delete that run folder and rerun the sweep"
        )

    if not isinstance(record, dict) or record.get("schema") != 1:
        raise bad("'schema': 1")
    key = record.get("key")
    needed = ("dataset", "row", "seed_index", "config_hash", "data_fingerprint")
    if not isinstance(key, dict) or any(k not in key for k in needed):
        raise bad(f"'key' holding {', '.join(needed)}")
    if record.get("status") not in STATUSES:
        raise bad(f"'status' one of {', '.join(STATUSES)} (found {record.get('status')!r})")
    if not isinstance(record.get("synthetic"), bool):
        raise bad("'synthetic' true or false")
    if record["status"] == "done" and not isinstance(record.get("metrics"), dict):
        raise bad("'metrics' (status is done)")


def kind(records: list[dict]) -> bool:
    """True if every record is synthetic, False if every one is real; refuses a mix or nothing."""
    if not records:
        raise ReportError("no run records: expected results/<name>/<run>/record.json; "
                          "fix: run `bench sweep` first, or check --name")
    synthetic = Counter(r["synthetic"] for r in records)
    if len(synthetic) > 1:
        raise ReportError(
            f"records mix {synthetic[True]} synthetic and {synthetic[False]} real runs: expected "
            "one kind per report; fix: keep synthetic and real results under different --name"
        )
    return next(iter(synthetic))


# ===== one cell =====

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
    left_out: list[str] = field(default_factory=list)

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

    def ours(self) -> str:
        """``mean ± std (n)`` (no ± for n = 1), without any status note."""
        if not self.values:
            return "—"
        spread = f" ± {self.std:.1f}" if self.std is not None else ""
        return f"{self.mean:.1f}{spread} ({self.n})"

    def text(self) -> str:
        """The table cell: the mean once complete, otherwise why it is missing; never blank."""
        if self.complete:
            return self.ours() + (f" · diverged ({self.diverged})" if self.diverged else "")
        broken = [f"{word} ({k})" for word, k in (("diverged", self.diverged),
                                                  ("failed", self.failed)) if k]
        pending = self.expected - self.n - self.diverged - self.failed
        if self.n == 0 and pending <= 0 and broken:
            return ", ".join(broken)
        return ", ".join([f"— {self.n}/{self.expected} seeds done", *broken])


def _metric(record: dict, metric: str, protocol: str) -> float:
    metrics = record["metrics"]
    try:
        raw = metrics["czsl"][protocol]["acc"] if metric == "acc" else metrics[protocol][metric]
    except (KeyError, TypeError) as err:
        where = f"czsl.{protocol}.acc" if metric == "acc" else f"{protocol}.{metric}"
        raise ReportError(f"run {record['run_id']}: expected metrics.{where} in its record, "
                          f"found none; fix: rerun that run") from err
    if not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ReportError(f"run {record['run_id']}: expected a finite fraction for metric "
                          f"{metric} ({protocol}), found {raw!r}; fix: rerun that run")
    return 100.0 * float(raw)


def expected_seeds(records: Iterable[dict]) -> int:
    """Default seed count of a report: highest seed index present + 1."""
    return 1 + max((r["key"]["seed_index"] for r in records), default=0)


def select(records: list[dict], dataset: str, row: str,
           expected: int) -> tuple[list[dict], list[str]]:
    """The runs one cell averages, and a note per group left out.

    Runs are grouped by (config hash, data fingerprint); the largest group is kept (ties: the one
    with more finished runs, then the smaller hash, so the choice is stable).
    """
    runs = [r for r in records if r["key"]["dataset"] == dataset and r["key"]["row"] == row
            and r["key"]["seed_index"] < expected]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["key"]["config_hash"], r["key"]["data_fingerprint"]), []).append(r)
    if not groups:
        return [], []

    def rank(item):
        (chash, fp), members = item
        finished = sum(m["status"] != "failed" for m in members)
        return (-len(members), -finished, chash, fp)

    ordered = sorted(groups.items(), key=rank)
    (keep_hash, keep_fp), kept = ordered[0]
    notes = []
    for (chash, fp), members in ordered[1:]:
        why = []
        if chash != keep_hash:
            why.append(f"config hash {chash} ≠ {keep_hash}")
        if fp != keep_fp:
            why.append(f"data fingerprint {fp[:8]} ≠ {keep_fp[:8]}")
        notes.append(f"{dataset} {row}: {len(members)} run(s) left out, {' and '.join(why)} "
                     "(the majority's)")
    return sorted(kept, key=lambda r: r["key"]["seed_index"]), notes


def cell(records: list[dict], dataset: str, row: str, metric: str, protocol: str,
         expected: int) -> Cell:
    kept, notes = select(records, dataset, row, expected)
    out = Cell(dataset, row, metric, protocol, expected, left_out=notes)
    for r in kept:
        if r["status"] == "done":
            out.values.append(_metric(r, metric, protocol))
            out.seeds.append(r["key"]["seed_index"])
        elif r["status"] == "diverged":
            out.diverged += 1
        else:
            out.failed += 1
    return out


# ===== tables as DataFrames =====

def _present(records: list[dict], axis: str, order: Iterable[str]) -> list[str]:
    found = {r["key"][axis] for r in records}
    return [x for x in order if x in found] + sorted(found - set(order))


def _delta(c: Cell, reference: float | None) -> str:
    if reference is None or not c.complete:
        return "—"
    return f"{round(c.mean, 1) - reference + 0.0:+.1f}"


def _paper_text(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def _gzsl_frame(records: list[dict], pairs: list[tuple[str, str]], table: int, protocol: str,
                expected: int) -> pd.DataFrame:
    # Synthetic runs get no paper column: a Δ against the paper would invite a comparison that
    # means nothing (the title says SYNTHETIC instead).
    with_paper = not kind(records)
    rows = []
    for ds, row in pairs:
        line = {"dataset": ds, "row": row}
        for m in GZSL:
            c = cell(records, ds, row, m, protocol, expected)
            line[m] = c.text()
            if with_paper:
                ref = paper.value(table, ds, m, row)
                line.update({f"{m} paper": _paper_text(ref), f"{m} Δ": _delta(c, ref)})
        rows.append(line)
    return pd.DataFrame(rows)


def table2(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """GZSL U / S / H of the full model per dataset, paper number and Δ beside each."""
    expected = expected or expected_seeds(records)
    pairs = [(ds, "full") for ds in _present(records, "dataset", DATASETS)]
    return _gzsl_frame(records, pairs, 2, protocol, expected).drop(columns="row")


def table3(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """CZSL top-1 accuracy of the full model per dataset."""
    expected = expected or expected_seeds(records)
    rows = []
    for ds in _present(records, "dataset", DATASETS):
        c = cell(records, ds, "full", "acc", protocol, expected)
        ref = paper.value(3, ds, "acc")
        rows.append({"dataset": ds, "CZSL top-1": c.text()} | ({} if kind(records) else {
            "paper": _paper_text(ref), "Δ": _delta(c, ref)}))
    return pd.DataFrame(rows)


def table4(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """Ablation: every row (plain, sml, rml, full) x dataset, U / S / H."""
    expected = expected or expected_seeds(records)
    rows = _present(records, "row", ROWS)
    rows += [r for r in ROWS if r not in rows]  # every ablation row, done or not
    pairs = [(ds, row) for ds in _present(records, "dataset", DATASETS)
             for row in sorted(rows, key=_order(ROWS))]
    return _gzsl_frame(records, pairs, 4, protocol, expected)


def _order(order: Iterable[str]):
    order = list(order)
    return lambda x: (order.index(x), x) if x in order else (len(order), x)


def per_seed(records: list[dict], metric_of_row: dict[str, str],
             expected: int) -> pd.DataFrame:
    """Per-seed values (percent) of one headline metric per row, both protocols."""
    lines = []
    for ds in _present(records, "dataset", DATASETS):
        for row, metric in metric_of_row.items():
            for protocol in PROTOCOLS:
                c = cell(records, ds, row, metric, protocol, expected)
                line = {"dataset": ds, "row": row, "metric": metric, "protocol": protocol}
                status = {r["key"]["seed_index"]: r["status"]
                          for r in select(records, ds, row, expected)[0]}
                values = dict(zip(c.seeds, c.values, strict=True))
                for s in range(expected):
                    line[f"s{s}"] = (f"{values[s]:.1f}" if s in values
                                     else status.get(s, "—"))
                lines.append(line)
    return pd.DataFrame(lines)


# ===== markdown =====

def markdown(df: pd.DataFrame) -> str:
    # disable_numparse keeps "+0.4" and "58.0" exactly as formatted above.
    return tabulate(df, headers="keys", tablefmt="pipe", showindex=False, disable_numparse=True)


def _counts(values: Iterable) -> str:
    counts = Counter("none" if v is None else str(v) for v in values)
    return ", ".join(f"{v} ({k})" for v, k in sorted(counts.items()))


def provenance(records: list[dict], name: str) -> str:
    """Where the numbers come from: data kind, profile, fingerprints, code and machines."""
    synthetic = kind(records)
    prov = [r.get("provenance") or {} for r in records]
    fps = {}
    for r in records:
        fps.setdefault(r["key"]["dataset"], set()).add(r["key"]["data_fingerprint"])
    status = Counter(r["status"] for r in records)
    lines = [
        ("runs", f"{len(records)} records in {name}/ ("
         + ", ".join(f"{s} {status[s]}" for s in STATUSES if status[s]) + ")"),
        ("data", "SYNTHETIC (embedded benchmark, not comparable with the paper)" if synthetic
         else "real (xlsa17 / cvpr18xian)"),
        ("profile", _counts(r.get("profile") for r in records)),
        ("data fingerprints", "; ".join(f"{ds} {', '.join(sorted(fps[ds]))}"
                                        for ds in _present(records, "dataset", DATASETS))),
        ("git commits", _counts(p.get("git_commit") for p in prov)),
        ("devices", _counts(p.get("device") for p in prov)),
        ("python", _counts(p.get("python") for p in prov)),
        ("torch", _counts(p.get("torch") for p in prov)),
        ("cuda", _counts(p.get("cuda") for p in prov)),
    ]
    return tabulate(lines, headers=["provenance", "value (number of runs)"], tablefmt="pipe",
                    disable_numparse=True)


def hyperparameters(records: list[dict]) -> str:
    """The settings the runs used, per dataset (its most common config), and where each default
    comes from (``vsboost.config.defaults``); a value that is not the default says so."""
    datasets = _present(records, "dataset", DATASETS)
    skip = ("dataset", "row", "profile")  # in the table's rows and the provenance already
    configs, sources = {}, {}
    for ds in datasets:
        mine = [r.get("config") or {} for r in records if r["key"]["dataset"] == ds]
        blobs = Counter(json.dumps({k: v for k, v in c.items() if k not in skip}, sort_keys=True)
                        for c in mine)
        common = json.loads(blobs.most_common(1)[0][0])
        # keep the Config field order (grouped by topic) of a record, not alphabetical order
        configs[ds] = {k: common[k] for k in mine[0] if k in common} | common
        try:
            sources[ds] = defaults(ds, Counter(c.get("profile") for c in mine).most_common(1)[0][0])
        except ConfigError:
            sources[ds] = {}
    keys = list(dict.fromkeys(k for ds in datasets for k in configs[ds]))
    lines = []
    for k in keys:
        line, why = [k], set()
        for ds in datasets:
            value = configs[ds].get(k, "—")
            if k in sources[ds]:
                default, source = sources[ds][k]
                if value == default:
                    why.add(source)
                else:
                    value = f"{_fmt(value)} (override; default {_fmt(default)})"
            line.append(_fmt(value))
        lines.append([*line, "; ".join(sorted(why)) or "—"])
    return tabulate(lines, headers=["key", *datasets, "source of the default"], tablefmt="pipe",
                    disable_numparse=True)


def _fmt(v) -> str:
    return json.dumps(v) if isinstance(v, bool | type(None)) else str(v)


def _notes(records: list[dict], pairs: list[tuple[str, str]], expected: int) -> list[str]:
    notes = [n for ds, row in pairs for n in select(records, ds, row, expected)[1]]
    for ds in _present(records, "dataset", DATASETS):
        fps = {r["key"]["data_fingerprint"] for r in records if r["key"]["dataset"] == ds}
        if len(fps) > 1:
            notes.append(f"{ds}: runs on {len(fps)} different data versions; each cell keeps "
                         "its majority, so rows may not be paired")
    return notes


def render(table: int, records: list[dict], name: str, expected: int | None = None) -> str:
    """One report file (Table 2, 3 or 4): title, provenance, both protocols, notes, settings."""
    synthetic = kind(records)
    expected = expected or expected_seeds(records)
    build, what, headline = {
        2: (table2, "GZSL U / S / H, full model", {"full": "H"}),
        3: (table3, "CZSL top-1 accuracy on unseen classes, full model", {"full": "acc"}),
        4: (table4, "ablation, GZSL U / S / H per row", {r: "H" for r in ROWS}),
    }[table]
    data = "SYNTHETIC data" if synthetic else "real data"
    out = [f"# Table {table} — {what} — {data}", ""]
    if synthetic:
        out += ["**SYNTHETIC**: these runs use the embedded synthetic benchmark. They test the "
                "code, not the paper, so the paper's numbers and Δ columns are left out.", ""]
    out += [provenance(records, name), ""]
    for protocol, label in PROTOCOLS.items():
        out += [f"## {label}", "", markdown(build(records, protocol, expected)), ""]
    out += [f"Footnote: {FOOTNOTE} Expected seeds per cell: {expected}.", ""]
    pairs = [(ds, row) for ds in _present(records, "dataset", DATASETS) for row in headline]
    notes = _notes(records, pairs, expected)
    out += ["## Left out", ""] + ([f"- {n}" for n in notes] or ["- none"]) + [""]
    out += ["## Per seed (headline metric, percent)", "",
            markdown(per_seed(records, headline, expected)), ""]
    out += ["## Hyperparameters", "", hyperparameters(records), ""]
    return "\n".join(out)


# ===== training curves =====

def curves(records: list[dict], dataset: str, expected: int | None = None) -> pd.DataFrame:
    """Per-epoch U / S / H (percent) of the done runs of one dataset, long format."""
    expected = expected or expected_seeds(records)
    lines = []
    for row in _present(records, "row", ROWS):
        for r in select(records, dataset, row, expected)[0]:
            if r["status"] != "done":
                continue
            for h in r.get("history") or []:
                vals = {m: h.get(m) for m in GZSL}
                if all(isinstance(v, int | float) and math.isfinite(v) for v in vals.values()):
                    lines.append({"row": row, "seed": r["key"]["seed_index"],
                                  "epoch": h["epoch"], **{m: 100.0 * v for m, v in vals.items()}})
    return pd.DataFrame(lines, columns=["row", "seed", "epoch", *GZSL])


# ===== files =====

def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temp file in the same folder and os.replace, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(results_dir: str | Path, out_dir: str | Path,
                  seeds: int | None = None) -> list[Path]:
    """Regenerate table2.md, table3.md, table4.md and curves_<DS>.png from records alone.

    ``seeds``: seeds expected per cell (default: the highest seed index present + 1).
    """
    results_dir, out_dir, expected = Path(results_dir), Path(out_dir), seeds
    records = load_records(results_dir)
    if not records:
        raise ReportError(f"{results_dir}: expected run folders with record.json, found none; "
                          "fix: run `bench sweep` first, or check --name")
    kind(records)
    texts = {t: render(t, records, results_dir.name, expected) for t in (2, 3, 4)}
    written = []
    for t, text in texts.items():
        path = out_dir / f"table{t}.md"
        write_atomic(path, text.encode())
        written.append(path)
    synthetic = kind(records)
    for ds in _present(records, "dataset", DATASETS):
        frame = curves(records, ds, expected)
        if frame.empty:
            continue
        title = f"{ds}: U / S / H per epoch (last classifier epoch)"
        title += " — SYNTHETIC data" if synthetic else ""
        path = out_dir / f"curves_{ds}.png"
        write_atomic(path, figures.training_curves(frame, title))
        written.append(path)
    return written


def tsne_runs(records: list[dict], datasets: Iterable[str] | None = None) -> list[dict]:
    """Per dataset, the run Figure 4 shows: full row, done, lowest seed index."""
    chosen = {}
    for r in sorted(records, key=lambda r: r["key"]["seed_index"]):
        ds = r["key"]["dataset"]
        wanted = datasets is None or ds in datasets
        if wanted and r["key"]["row"] == "full" and r["status"] == "done" and ds not in chosen:
            chosen[ds] = r
    return [chosen[ds] for ds in _present(list(chosen.values()), "dataset", DATASETS)]


def write_tsne(results_dir: str | Path, out_dir: str | Path,
               datasets: Iterable[str] | None = None, **tsne) -> list[Path]:
    """Figure 4 per dataset (tsne_<DS>.png) from the chosen run's features.npz."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    records = load_records(results_dir)
    synthetic = kind(records)
    with_features = [r for r in records if (results_dir / r["run_id"] / "features.npz").is_file()]
    written = []
    for r in tsne_runs(with_features, datasets):
        with np.load(results_dir / r["run_id"] / "features.npz") as f:
            features = {k: f[k] for k in f.files}
        title = (f"{r['key']['dataset']} t-SNE, run {r['run_id']}"
                 + (" — SYNTHETIC data" if synthetic else ""))
        path = out_dir / f"tsne_{r['key']['dataset']}.png"
        write_atomic(path, figures.tsne_figure(features, title, **tsne))
        written.append(path)
    if not written:
        raise ReportError(f"{results_dir}: expected a done full-row run with features.npz, "
                          "found none; fix: run the full row with feature sampling "
                          "(train(feature_sample=True) gives the features.npz)")
    return written
