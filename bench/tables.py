"""Run records -> Tables 2, 3 and 4 as pandas DataFrames and markdown: pure functions.

Records in (``bench.store.load_records``), DataFrames and markdown text out; ``bench.reports``
writes the files. A cell's value and the runs behind it come from :mod:`bench.cells`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable

import pandas as pd
from tabulate import tabulate

from bench import paper, published, stats
from bench.cells import (
    GZSL,
    PAPER_KINDS,
    PROTOCOLS,
    REHEARSAL_NOTE,
    Cell,
    cell,
    data_version,
    data_version_notes,
    deviation_text,
    expected_seeds,
    kind,
    kind_title,
    not_run,
    present,
    ran,
    select,
)
from bench.store import RECORD_STATUSES
from vsboost.config import BASE_METHOD, DATASETS, HPARAMS, ROWS, ConfigError, defaults, method_of

FOOTNOTE = (
    "Cells: mean ± sample standard deviation (ddof = 1) over seeds, in percent, one decimal; "
    "(n) = number of seeds averaged; n = 1 shows no spread. U, S and H of one seed come from the "
    "same selected epoch, and H is averaged per seed, not recomputed from the mean U and S. "
    "Δ = ours − paper, in points (real data only). A cell shows a mean once every expected "
    "seed has finished (done or diverged); before that it says how many are done. Diverged "
    "runs are not averaged."
)


# ===== tables as DataFrames =====
def _delta(c: Cell, reference: float | None) -> str:
    if reference is None or not c.complete:
        return "—"
    return f"{round(c.mean, 1) - reference + 0.0:+.1f}"


def _paper_text(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def headlines(records: list[dict]) -> list[tuple[str, str]]:
    """(label, row) of the row each method with runs in ``records`` reports in Tables 2 and 3
    (VS-Boost: full), in the registry's order, VS-Boost first."""
    found = {r["key"]["row"] for r in records}
    return [(b.label, b.headline) for name, b in HPARAMS.items()
            if name == BASE_METHOD or found & set(b.rows)]


def _reference(table: int, ds: str, metric: str, row: str) -> float | None:
    """The printed number a row is set against: the paper's own for VS-Boost's rows, the
    number the paper quotes as published for another method (Tables 2 and 3)."""
    method = method_of(row)
    if method == BASE_METHOD:
        return paper.value(table, ds, metric, row)
    label = HPARAMS[method].label
    quoted = [p for p in published.methods(table) if p.method == label] if table in (2, 3) else []
    return quoted[0].value(ds, metric) if quoted else None


def _gzsl_frame(records: list[dict], pairs: list[tuple[str, str]], table: int, protocol: str,
                expected: int) -> pd.DataFrame:
    # Only real data gets a paper column: on synthetic or custom data a Δ against the paper would
    # invite a comparison that means nothing (the title says which data it is instead).
    with_paper = kind(records) in PAPER_KINDS
    rows = []
    for ds, row in pairs:
        line = {"dataset": ds, "row": row}
        for m in GZSL:
            c = cell(records, ds, row, m, protocol, expected)
            line[m] = c.text()
            if with_paper:
                ref = _reference(table, ds, m, row)
                line.update({f"{m} paper": _paper_text(ref), f"{m} Δ": _delta(c, ref)})
        rows.append(line)
    return pd.DataFrame(rows)


def _by_method(frame: pd.DataFrame, shown: list[tuple[str, str]]) -> pd.DataFrame:
    """Without its ``row`` column, and with a ``method`` column when methods other than VS-Boost
    have runs (a VS-Boost-only table keeps its layout)."""
    if frame.empty:  # nothing of these rows was run
        return frame
    if len(shown) > 1:
        frame.insert(1, "method", [HPARAMS[method_of(row)].label for row in frame["row"]])
    return frame.drop(columns="row")


def table2(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """GZSL U / S / H per dataset of each method's headline row (VS-Boost: the full model), the
    printed number (the paper's, or the one it quotes for another method) and Δ beside each."""
    expected = expected or expected_seeds(records)
    shown = headlines(records)
    pairs = [(ds, row) for ds in present(records, "dataset", DATASETS) for _, row in shown
             if ran(records, ds, row)]
    return _by_method(_gzsl_frame(records, pairs, 2, protocol, expected), shown)


def _with_full(records: list[dict]) -> list[str]:
    """The datasets whose full row was run: what the as-printed Tables 2 and 3 can show."""
    return [ds for ds in present(records, "dataset", DATASETS) if ran(records, ds, "full")]


def table3(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """CZSL top-1 accuracy per dataset of each method's headline row."""
    expected = expected or expected_seeds(records)
    shown = headlines(records)
    rows = []
    for ds in present(records, "dataset", DATASETS):
        for _, row in shown:
            if not ran(records, ds, row):
                continue
            c = cell(records, ds, row, "acc", protocol, expected)
            ref = _reference(3, ds, "acc", row)
            rows.append({"dataset": ds, "row": row, "CZSL top-1": c.text()}
                        | ({} if kind(records) not in PAPER_KINDS else {
                            "paper": _paper_text(ref), "Δ": _delta(c, ref)}))
    return _by_method(pd.DataFrame(rows), shown)


def table4(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """Ablation: every row of VS-Boost (plain, sml, rml, full) x dataset, U / S / H."""
    expected = expected or expected_seeds(records)
    # the ablation rows that were run; other methods are not its rows
    pairs = [(ds, row) for ds in present(records, "dataset", DATASETS)
             for row in ROWS if ran(records, ds, row)]
    return _gzsl_frame(records, pairs, 4, protocol, expected)


# Table 4's paired gains: every row over plain, and the full model over each single branch.
GAINS = (("sml", "plain"), ("rml", "plain"), ("full", "plain"), ("full", "sml"), ("full", "rml"))
GAINS_FOOTNOTE = (
    f"Gain = mean over seeds of the paired difference (row − base, the runs of the same seed "
    f"index: same seed, same episodes), in points, with its {int(100 * stats.CONFIDENCE)}% "
    f"{stats.METHOD} interval and (n) the number of pairs; * marks an interval that excludes 0; "
    f"with fewer than {stats.MIN_N} pairs no interval is given (cannot judge). "
    "Paper: the same difference of Table 4's printed numbers (real data only).")


def gains(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """Per dataset, each gain of :data:`GAINS` on U, S and H, beside the paper's (real data)."""
    expected = expected or expected_seeds(records)
    with_paper = kind(records) in PAPER_KINDS
    lines = []
    for ds in present(records, "dataset", DATASETS):
        for row, base in GAINS:
            if not (ran(records, ds, row) and ran(records, ds, base)):
                continue  # a gain over a row that was not run
            line = {"dataset": ds, "gain": f"{row} − {base}"}
            for m in GZSL:
                line[m] = _gain_text(records, ds, row, base, m, protocol, expected)
                if with_paper:
                    d = paper.value(4, ds, m, row) - paper.value(4, ds, m, base)
                    line[f"{m} paper"] = f"{d + 0.0:+.1f}"
            lines.append(line)
    return pd.DataFrame(lines)


def _gain_text(records, ds, row, base, metric, protocol, expected) -> str:
    top, bottom = (cell(records, ds, r, metric, protocol, expected) for r in (row, base))
    if not (top.complete and bottom.complete):
        return "— runs missing"
    iv = stats.paired(top.by_seed(), bottom.by_seed())
    if iv is None:
        return "— no seed index in common"
    return iv.text() + (" *" if iv.excludes_zero else "")


# ===== VS-Boost against another method rerun here (paired by seed index) =====
METHOD_PAIRS_FOOTNOTE = (
    f"Difference = mean over seed indices of VS-Boost full − the method (the runs of the same "
    f"seed index: the same seed), in points, with its {int(100 * stats.CONFIDENCE)}% "
    f"{stats.METHOD} interval and (n) the number of pairs; * marks an interval that excludes 0. "
    "The two methods share the data, seeds, evaluation and protocols, not their training "
    "batches, which each method draws its own way.")


def method_pairs(records: list[dict], protocol: str, expected: int | None = None) -> pd.DataFrame:
    """Per dataset and other method rerun here: VS-Boost full − that method's headline row on
    U, S and H, paired by seed index, with its interval (:func:`bench.stats.paired`)."""
    expected = expected or expected_seeds(records)
    base = HPARAMS[BASE_METHOD].headline
    lines = []
    for ds in present(records, "dataset", DATASETS):
        for label, row in headlines(records):
            if row == base:
                continue
            line = {"dataset": ds, "difference": f"VS-Boost {base} − {label}"}
            for m in GZSL:
                line[m] = _gain_text(records, ds, base, row, m, protocol, expected)
            lines.append(line)
    return pd.DataFrame(lines)


def side_by_side(records: list[dict], metric_of_row: dict[str, str],
                 expected: int) -> pd.DataFrame:
    """Per (dataset, row), the headline metric under every protocol and the optimism of test
    selection, ``paper − val``: the paired mean difference over seeds with its interval."""
    lines = []
    for ds in present(records, "dataset", DATASETS):
        for row, metric in metric_of_row.items():
            if not select(records, ds, row, expected):
                continue  # a row that was not run
            found = {p: cell(records, ds, row, metric, p, expected) for p in PROTOCOLS}
            line = {"dataset": ds, "row": row, "metric": metric}
            line |= {f"`{p}`": c.text() for p, c in found.items()}
            line["paper − val"] = _optimism(found["paper"], found["val"])
            lines.append(line)
    return pd.DataFrame(lines)


def _optimism(test: Cell, val: Cell) -> str:
    if not (test.complete and val.complete):
        return "—"
    iv = stats.paired(test.by_seed(), val.by_seed())
    return "—" if iv is None else iv.text() + (" *" if iv.excludes_zero else "")


SIDE_FOOTNOTE = (
    "paper − val: how much choosing on test labels adds over choosing the same two epochs on "
    "validation classes, in points: the mean over seeds of the paired difference, with its "
    f"{int(100 * stats.CONFIDENCE)}% {stats.METHOD} interval and (n) pairs; * marks an interval "
    "that excludes 0. The val protocol costs about one more training per run (docs/protocols.md).")


def printed(table: int, records: list[dict], expected: int | None = None) -> pd.DataFrame:
    """Table 2 or 3 as printed in the paper (the other methods as published, not rerun, and the
    paper's VS-Boost row), the reproduced VS-Boost row under each protocol, and the rank of each
    reproduced mean among the other methods' published numbers on that column."""
    expected = expected or expected_seeds(records)
    columns = [(ds, m) for ds in _with_full(records) for m in (GZSL if table == 2 else ("acc",))]
    head = ["method", "year", "kind", "source"]

    def name(ds, m):
        return f"{ds} {m}" if table == 2 else ds

    rerun = {HPARAMS[method_of(row)].label: row for _, row in headlines(records)}
    lines = []
    for p in published.methods(table):
        lines.append(dict(zip(head, (p.method, str(p.year), p.kind, "as published, not rerun"),
                              strict=True))
                     | {name(ds, m): _paper_text(p.value(ds, m)) for ds, m in columns})
        if p.method in rerun:  # rerun here: same data, seeds, budgets and protocols as VS-Boost
            for protocol in PROTOCOLS:
                line = dict(zip(head, (p.method, "", "", f"rerun here, `{protocol}` protocol"),
                                strict=True))
                for ds, m in columns:
                    c = cell(records, ds, rerun[p.method], m, protocol, expected)
                    line[name(ds, m)] = f"{c.mean:.1f}" if c.complete else c.text()
                lines.append(line)
    lines.append(dict(zip(head, ("VS-Boost", "2023", "", "the paper, as printed"), strict=True))
                 | {name(ds, m): _paper_text(paper.value(table, ds, m)) for ds, m in columns})
    ranks = []
    for protocol in PROTOCOLS:
        line = dict(zip(head, ("VS-Boost", "", "", f"reproduced, `{protocol}` protocol"),
                        strict=True))
        rank = dict(zip(head, ("rank of the reproduction", "", "", f"`{protocol}` protocol"),
                        strict=True))
        for ds, m in columns:
            c = cell(records, ds, "full", m, protocol, expected)
            others = published.numbers(table, ds, m)
            line[name(ds, m)] = f"{c.mean:.1f}" if c.complete else c.text()
            rank[name(ds, m)] = (f"{1 + sum(v > c.mean for v in others.values())}/"
                                 f"{len(others) + 1}" if c.complete else "—")
        lines.append(line)
        ranks.append(rank)
    return pd.DataFrame(lines + ranks)


PRINTED_FOOTNOTE = (
    "The other methods' numbers are the paper's, as published, not rerun by this suite; — = the "
    "paper prints none. Table 2's kind: ‡ feature generation method, † other method; Table 3's: "
    "early CZSL or recent GZSL method. A reproduced cell is the mean over seeds (spread and n in "
    "the tables above). Rank r/N: the reproduced mean's place among the N − 1 other methods with "
    "a number in that column (the paper's own VS-Boost row not counted), 1 = best.")
RERUN_NOTE = ("Rows marked 'rerun here' are the exception: that method trained by this suite on "
              "the same data, seeds, budgets and protocols as the reproduction; ranks count only "
              "the published numbers.")
GXE_NOTE = ("GXE's APY U is not legible in the copy of the paper read here (S 74.0 and H 39.0 "
            "imply about 26.5); it is shown as —.")


def per_seed(records: list[dict], metric_of_row: dict[str, str],
             expected: int) -> pd.DataFrame:
    """Per-seed values (percent) of one headline metric per row, both protocols."""
    lines = []
    for ds in present(records, "dataset", DATASETS):
        for row, metric in metric_of_row.items():
            if not ran(records, ds, row):
                continue
            for protocol in PROTOCOLS:
                c = cell(records, ds, row, metric, protocol, expected)
                line = {"dataset": ds, "row": row, "metric": metric, "protocol": protocol}
                status = {r["key"]["seed_index"]: r["status"]
                          for r in select(records, ds, row, expected)}
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
    """Where the numbers come from: data kind and verification, profile, changed settings,
    fingerprints, code and machines."""
    data = kind(records)
    prov = [r.get("provenance") or {} for r in records]
    status = Counter(r["status"] for r in records)
    lines = [
        ("runs", f"{len(records)} records in {name}/ ("
         + ", ".join(f"{s} {status[s]}" for s in RECORD_STATUSES if status[s]) + ")"),
        ("data", DATA_WORDS.get(data, f"CUSTOM data '{data.removeprefix('custom:')}' (the "
                                "user's own files; not comparable with the paper)")),
        *_verification(records),
        ("profile", _counts(r.get("profile") for r in records)),
        ("settings changed (†)", _changed(records)),
        ("data version shown", "; ".join(f"{ds} {data_version(records, ds)}"
                                         for ds in present(records, "dataset", DATASETS))),
        ("method code (fingerprint)", _counts((p.get("code") or "unrecorded")[:12]
                                              for p in prov)),
        ("feature / embedding dimension (file, backbone)", _counts(_dims(r) for r in records)),
        ("git commits", _counts(p.get("git_commit") and p["git_commit"] + _changes(p)
                                for p in prov)),
        ("devices", _counts(p.get("device") for p in prov)),
        ("python", _counts(p.get("python") for p in prov)),
        ("torch", _counts(p.get("torch") for p in prov)),
        ("cuda", _counts(p.get("cuda") for p in prov)),
        ("float32 matmuls", _counts((p.get("precision") or {}).get("float32_matmul")
                                    for p in prov)),
    ]
    return tabulate(lines, headers=["provenance", "value (number of runs)"], tablefmt="pipe",
                    disable_numparse=True)


def _dims(record: dict) -> str:
    data = record.get("data") or {}
    if data.get("feature_dim") is None:
        return f"{record['key']['dataset']} not recorded"
    made = ", ".join(str(v) for v in (data.get("feature_file"), data.get("backbone")) if v)
    return (f"{record['key']['dataset']} {data['feature_dim']} / {data.get('att_dim')}"
            + (f" ({made})" if made else ""))


def _changes(prov: dict) -> str:
    """`` + uncommitted changes to FILES`` when the run's code differed from its commit."""
    if not prov.get("git_dirty"):
        return ""
    files = prov.get("git_changes")
    return " + uncommitted changes" + (f" to {', '.join(map(str, files))}" if files else "")


DATA_WORDS = {"real": "real (xlsa17 / cvpr18xian)",
              "rehearsal": "REHEARSAL (stand-in files in the real layout, not the paper's data)",
              "synthetic": "SYNTHETIC (embedded benchmark, not comparable with the paper)"}


def _changed(records: list[dict]) -> str:
    """Each changed setting with its number of runs; runs recorded before deviations were
    recorded say so instead of passing for unchanged."""
    unknown = sum("deviations" not in r for r in records)
    text = _counts(d for r in records for d in deviation_text(r))
    if unknown:
        text = ", ".join(filter(None, [text, f"not recorded ({unknown})"]))
    return text or "none: every run used its profile's defaults"


def _verification(records: list[dict]) -> list[tuple[str, str]]:
    """The provenance line on data verification, for records that carry it."""
    files = [f for r in records for f in ((r.get("data") or {}).get("files") or {}).values()]
    if not files:
        return []
    return [("data files vs datasets.lock", _counts(f["status"] for f in files))]


def hyperparameters(records: list[dict]) -> str:
    """The settings the runs used, one table per method with runs (titled by the method when
    there are several): :func:`method_hyperparameters`."""
    methods = [m for m in HPARAMS if any(method_of(r["key"]["row"]) == m for r in records)]
    if len(methods) == 1:
        return method_hyperparameters(records, methods[0])
    return "\n\n".join(f"### {HPARAMS[m].label}\n\n" + method_hyperparameters(
        [r for r in records if method_of(r["key"]["row"]) == m], m) for m in methods)


def method_hyperparameters(records: list[dict], method: str) -> str:
    """The settings the runs of one method used, per dataset (its most common config), and where
    each default comes from (``vsboost.config.defaults``). A value the run changed (its recorded
    deviations) says so; a value that is not today's default but was not changed by the run says
    that the default has changed since."""
    datasets = present(records, "dataset", DATASETS)
    # in the table's rows, its title and the provenance already
    skip = ("dataset", "row", "profile", "method")
    configs, sources, changed = {}, {}, {}
    for ds in datasets:
        mine = [r.get("config") or {} for r in records if r["key"]["dataset"] == ds]
        blobs = Counter(json.dumps({k: v for k, v in c.items() if k not in skip}, sort_keys=True)
                        for c in mine)
        common = json.loads(blobs.most_common(1)[0][0])
        changed[ds] = {k for r in records if r["key"]["dataset"] == ds
                       for k in (r.get("deviations") or {})}
        # keep the Config field order (grouped by topic) of a record, not alphabetical order
        configs[ds] = {k: common[k] for k in mine[0] if k in common} | common
        try:
            sources[ds] = defaults(ds, Counter(c.get("profile") for c in mine).most_common(1)[0][0],
                                   method)
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
                elif k in changed[ds]:
                    value = f"{_fmt(value)} (changed; default {_fmt(default)})"
                else:
                    value = f"{_fmt(value)} (default now {_fmt(default)})"
            line.append(_fmt(value))
        lines.append([*line, "; ".join(sorted(why)) or "—"])
    return tabulate(lines, headers=["key", *datasets, "source of the default"], tablefmt="pipe",
                    disable_numparse=True)


def _fmt(v) -> str:
    return json.dumps(v) if isinstance(v, bool | type(None)) else str(v)


def _notes(records: list[dict]) -> list[str]:
    return [n for ds in present(records, "dataset", DATASETS)
            for n in data_version_notes(records, ds)]


def reference_frame(records: list[dict], references: list[dict]) -> pd.DataFrame:
    """Per dataset, the closed-form reference on the same files as the runs (same data
    fingerprint), in percent; datasets without one are left out."""
    lines = []
    for ds in present(records, "dataset", DATASETS):
        shown = data_version(records, ds)
        for ref in references:
            if ref["dataset"] == ds and ref["data_fingerprint"] == shown:
                # acc: CZSL, the nearest predicted centre among the unseen classes only; older
                # reference records lack it (shown as —)
                lines.append({"dataset": ds, **{m: _percent(ref["metrics"].get(m))
                                                for m in (*GZSL, "acc")},
                              "data fingerprint": ref["data_fingerprint"]})
    return pd.DataFrame(lines)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def render(table: int, records: list[dict], name: str, expected: int | None = None,
           references: list[dict] | None = None) -> str:
    """One report file (Table 2, 3 or 4): title, provenance, both protocols, the closed-form
    reference where there is one, notes, settings."""
    data = kind(records)
    expected = expected or expected_seeds(records)
    build, what, headline = {
        2: (table2, "GZSL U / S / H, full model",
            {row: "H" for _, row in headlines(records)}),
        3: (table3, "CZSL top-1 accuracy on unseen classes, full model",
            {row: "acc" for _, row in headlines(records)}),
        4: (table4, "ablation, GZSL U / S / H per row",
            {r: "H" for r in ROWS if r in present(records, "row", ROWS)}),
    }[table]
    if table in (2, 3) and len(headlines(records)) > 1:
        what = what.replace("full model", "each method's headline row (VS-Boost: full model)")
    title = kind_title(data)
    out = [f"# Table {table} — {what} — {title}", ""]
    if data == "rehearsal":
        out += [REHEARSAL_NOTE, ""]
    elif data == "synthetic":
        out += ["**SYNTHETIC**: these runs use the embedded synthetic benchmark. They test the "
                "code, not the paper, so the paper's numbers and Δ columns are left out.", ""]
    elif data not in PAPER_KINDS:
        out += ["**CUSTOM**: these runs use the user's own files, labelled "
                f"'{data.removeprefix('custom:')}', not the paper's; the paper's numbers and Δ "
                "columns are left out.", ""]
    changed = sorted({d for r in records for d in deviation_text(r)})
    if changed:
        profiles = ", ".join(sorted({str(r.get("profile")) for r in records}))
        out += [f"**† Changed settings**: cells marked † average runs whose settings differ from "
                f"the {profiles} profile ({'; '.join(changed)}); they are not that profile's "
                "numbers.", ""]
    out += [provenance(records, name), ""]
    missing = [f"{axis} {', '.join(names)}" for axis, names in (
        ("datasets", not_run(records, DATASETS, "dataset")),
        ("rows", not_run(records, ROWS, "row"))) if names]
    if missing:
        out += [f"Not run, so left out of every table here: {'; '.join(missing)}.", ""]
    out += ["## The three protocols side by side", "",
            markdown(side_by_side(records, headline, expected)), "", SIDE_FOOTNOTE, ""]
    for protocol, label in PROTOCOLS.items():
        frame = build(records, protocol, expected)
        out += [f"## {label}", "", markdown(frame) if not frame.empty
                else "No run of the full row here: nothing to show.", ""]
    out += [f"Footnote: {FOOTNOTE} Expected seeds per cell: {expected}.", ""]
    if table in (2, 3) and data in PAPER_KINDS:
        out += [f"## Table {table} as printed, with the reproduction", "",
                markdown(printed(table, records, expected)), "",
                PRINTED_FOOTNOTE + (" " + GXE_NOTE if table == 2 else "")
                + (" " + RERUN_NOTE if len(headlines(records)) > 1 else ""), ""]
    if table == 4:
        for protocol, label in PROTOCOLS.items():
            out += [f"## Paired gains over seeds, {label}", "",
                    markdown(gains(records, protocol, expected)), ""]
        out += [GAINS_FOOTNOTE, ""]
    if table == 2 and len(headlines(records)) > 1:
        for protocol, label in PROTOCOLS.items():
            out += [f"## VS-Boost against the methods rerun here, paired over seeds, {label}", "",
                    markdown(method_pairs(records, protocol, expected)), ""]
        out += [METHOD_PAIRS_FOOTNOTE, ""]
    ref = reference_frame(records, references or [])
    if not ref.empty:
        among = ("the unseen classes only (CZSL)" if table == 3
                 else "all S+U classes (GZSL U, S, H)")
        ref = ref.drop(columns=list(GZSL) if table == 3 else ["acc"])
        out += ["## Reference: closed-form ridge on the same files (no training, not a row of "
                "the method)", "",
                "Ridge regression from class embedding to class-mean feature, fit on the seen "
                f"classes, then the nearest predicted centre among {among}; per-class "
                "accuracy, percent. The level a good generator should approach on these files.",
                "", markdown(ref), ""]
    notes = _notes(records)
    out += ["## Left out", ""] + ([f"- {n}" for n in notes] or ["- none"]) + [""]
    out += ["## Per seed (headline metric, percent)", "",
            markdown(per_seed(records, headline, expected)), ""]
    out += ["## Hyperparameters", "", hyperparameters(records), ""]
    return "\n".join(out)


# ===== training curves =====

# What the curves show beside U / S / H (history keys; vsboost.train.LOSSES, relation_scores):
# the losses per epoch (mean over the epoch's iterations) and what the relation head F predicts
# for same-class and other-class pairs. val_H: H on the validation classes (val protocol).
CURVE_VALUES = ("val_H", "loss_d", "loss_g", "loss_sml", "loss_rml", "relation_same",
                "relation_other")


def curves(records: list[dict], dataset: str, expected: int | None = None) -> pd.DataFrame:
    """Per-epoch U / S / H (percent) of the done runs of one dataset, and :data:`CURVE_VALUES`
    (NaN where a run has none: a row without that loss, a run without the val protocol), long
    format."""
    expected = expected or expected_seeds(records)
    lines = []
    for row in present(records, "row", ROWS):
        for r in select(records, dataset, row, expected):
            if r["status"] != "done":
                continue
            for h in r.get("history") or []:
                vals = {m: h.get(m) for m in GZSL}
                if all(_finite(v) for v in vals.values()):
                    extra = {k: h.get(k) for k in CURVE_VALUES}
                    extra["val_H"] = 100.0 * h["val"]["H"] if "val" in h else None
                    lines.append({"row": row, "seed": r["key"]["seed_index"],
                                  "epoch": h["epoch"], **{m: 100.0 * v for m, v in vals.items()},
                                  **{k: v if _finite(v) else math.nan for k, v in extra.items()}})
    return pd.DataFrame(lines, columns=["row", "seed", "epoch", *GZSL, *CURVE_VALUES])


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def tsne_runs(records: list[dict], datasets: Iterable[str] | None = None) -> list[dict]:
    """Per dataset, the run Figure 4 shows: full row, done, lowest seed index."""
    chosen = {}
    for r in sorted(records, key=lambda r: r["key"]["seed_index"]):
        ds = r["key"]["dataset"]
        wanted = datasets is None or ds in datasets
        if wanted and r["key"]["row"] == "full" and r["status"] == "done" and ds not in chosen:
            chosen[ds] = r
    return [chosen[ds] for ds in present(list(chosen.values()), "dataset", DATASETS)]
