"""Tables 2-4 from run records: cells, honesty rules, golden markdown, files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import reports, store, tables
from bench.cells import PROTOCOLS, ReportError, cell
from bench.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = FIXTURES / "records"  # hand-made real-looking records (see their values there)
GOLDEN = FIXTURES / "golden"


def record(dataset="CUB", row="full", seed_index=0, *, H=0.6, last_H=None, status="done",
           config_hash="aaaaaaaaaaaa", fingerprint="f" * 16, synthetic=False, profile="paper",
           history=None):
    """A minimal record in record.json's format; U = S = H so every metric is easy to read."""
    last_H = H if last_H is None else last_H
    metrics = None
    if status == "done":
        metrics = {"paper": {"U": H, "S": H, "H": H, "epoch": 1, "cls_epoch": 1},
                   "last": {"U": last_H, "S": last_H, "H": last_H, "epoch": 2, "cls_epoch": 2},
                   "val": {"U": H, "S": H, "H": H, "epoch": 2, "cls_epoch": 1},
                   "czsl": {"paper": {"acc": H, "epoch": 1, "cls_epoch": 1},
                            "last": {"acc": last_H, "epoch": 2, "cls_epoch": 2},
                            "val": {"acc": H, "epoch": 2, "cls_epoch": 1}}}
    return {
        "schema": 1,
        "run_id": f"{dataset}-{row}-s{seed_index}-{config_hash}-{fingerprint[:8]}",
        "key": {"dataset": dataset, "row": row, "seed_index": seed_index, "seed": seed_index,
                "config_hash": config_hash, "data_fingerprint": fingerprint},
        "status": status, "synthetic": synthetic, "profile": profile,
        "config": {"dataset": dataset, "row": row, "profile": profile, "gan_epochs": 6},
        "metrics": metrics, "history": history or [],
        "sampler": {}, "error": "boom" if status == "failed" else None,
        "diverged_epoch": 3 if status == "diverged" else None,
        "provenance": {"git_commit": "abc", "python": "3.11", "torch": "2", "cuda": None,
                       "device": "cpu", "wall_s": 1.0, "finished": "t"},
    }


def write(folder: Path, records: list[dict]) -> Path:
    for r in records:
        (folder / r["run_id"]).mkdir(parents=True, exist_ok=True)
        (folder / r["run_id"] / "record.json").write_text(json.dumps(r))
    return folder


def cells(frame) -> list[str]:
    return [str(v) for v in frame.to_numpy().ravel()]


# ===== cells =====

def test_cell_is_mean_pm_sample_std_in_percent_with_n():
    recs = [record(seed_index=0, H=0.50), record(seed_index=1, H=0.60)]
    c = cell(recs, "CUB", "full", "H", "paper", expected=2)
    # values 50 and 60: sample std (ddof 1) = 7.07, population std would be 5.0
    assert c.text() == "55.0 ± 7.1 (2)"


def test_single_seed_cell_has_no_spread():
    c = cell([record(H=0.6854)], "CUB", "full", "H", "paper", expected=1)
    assert c.text() == "68.5 (1)"


def test_cell_missing_seeds_says_how_many_are_done_instead_of_a_mean():
    recs = [record(seed_index=0), record(seed_index=1)]
    assert cell(recs, "CUB", "full", "H", "paper", expected=5).text() == \
        "— 2/5 seeds done"


def test_cell_reports_failed_and_diverged_runs():
    failed = [record(seed_index=i, status="failed") for i in range(2)]
    assert cell(failed, "CUB", "full", "H", "paper", 2).text() == "failed (2)"
    mixed = [record(seed_index=0), record(seed_index=1, status="diverged")]
    assert cell(mixed, "CUB", "full", "H", "paper", 2).text() == \
        "60.0 (1) · diverged (1)"
    pending = [record(seed_index=0), record(seed_index=1, status="failed")]
    assert cell(pending, "CUB", "full", "H", "paper", 3).text() == \
        "— 1/3 seeds done, failed (1)"


def test_cell_says_which_runs_the_cluster_cancelled_or_timed_out():
    stopped = [record(seed_index=0), record(seed_index=1, status="cancelled"),
               record(seed_index=2, status="timeout")]
    assert cell(stopped, "CUB", "full", "H", "paper", 4).text() == \
        "— 1/4 seeds done, cancelled (1), timeout (1)"


@pytest.mark.parametrize("defaults", [1, 2, 3])
def test_a_cell_refuses_several_variants_naming_each_whatever_their_counts(defaults):
    recs = [record(seed_index=i, H=0.6) for i in range(defaults)]
    recs += [record(seed_index=i, H=0.1, config_hash="bbbbbbbbbbbb") for i in range(2)]
    with pytest.raises(ReportError, match="2 variants") as err:
        cell(recs, "CUB", "full", "H", "paper", expected=3)
    assert "config aaaaaaaaaaaa" in str(err.value) and "config bbbbbbbbbbbb" in str(err.value)


def test_runs_of_other_code_are_another_variant():
    recs = [record(seed_index=i, H=0.6) for i in range(2)]
    recs[1]["provenance"]["code"] = "c" * 64
    with pytest.raises(ReportError, match="code cccccccccccc"):
        cell(recs, "CUB", "full", "H", "paper", expected=2)


def finished_at(rec: dict, when: str) -> dict:
    rec["provenance"]["finished"] = when
    return rec


def test_a_report_shows_one_data_version_per_dataset_that_of_its_newest_run(tmp_path):
    # The old version has more runs and the smaller fingerprint: neither decides.
    old = [finished_at(record(row=row, seed_index=i, H=0.6, fingerprint="0" * 16),
                       "2026-01-01T00:00:00+00:00") for row in ("plain", "full") for i in range(3)]
    new = [finished_at(record(row=row, seed_index=0, H=0.3, fingerprint="e" * 16),
                       f"2026-02-0{d}T00:00:00+00:00") for d, row in ((1, "plain"), (2, "full"))]
    recs = old + new
    for row in ("plain", "full"):  # every row on the same data: rows stay paired
        assert cell(recs, "CUB", row, "H", "paper", expected=1).values == [30.0]
    text = tables.render(4, recs, "x")
    notes = [line for line in text.splitlines() if "data fingerprint 00000000 left out" in line]
    assert len(notes) == 1 and "6 run(s)" in notes[0] and "eeeeeeee" in notes[0]


def test_protocols_are_separate_tables_never_one_cell():
    recs = [record(H=0.60, last_H=0.40)]
    assert tables.table2(recs, "paper").loc[0, "H"] == "60.0 (1)"
    assert tables.table2(recs, "last").loc[0, "H"] == "40.0 (1)"
    text = tables.render(2, recs, "x")
    assert text.count("## `paper` protocol") == 1 and text.count("## `last` protocol") == 1


def test_table2_puts_paper_number_and_delta_beside_each_cell():
    frame = tables.table2([record(dataset="APY", H=0.591)], "paper")
    assert frame.loc[0, ["H", "H paper", "H Δ"]].tolist() == ["59.1 (1)", "58.1", "+1.0"]


def test_table4_shows_the_rows_that_were_run_and_names_the_others_once():
    recs = [record(row="full"), record(row="plain")]
    assert tables.table4(recs, "paper")["row"].tolist() == ["plain", "full"]
    text = tables.render(4, recs, "x")
    assert "Not run, so left out of every table here: datasets APY, AWA2, FLO, SUN; rows sml, " \
           "rml." in text
    assert "sml − plain" not in text and "full − plain" in text  # gains only between rows run


def test_a_one_cell_report_and_its_claims_speak_of_that_cell_only(tmp_path):
    results = write(tmp_path / "results" / "one", [record(dataset="CUB", row="full")])
    out = tmp_path / "reports"
    reports.write_reports(results, out)
    texts = {p.name: p.read_text() for p in out.glob("*.md")}
    for name, text in texts.items():
        assert "0/1 seeds done" not in text, name  # no cell that was never asked for
        assert "| runs missing" not in text and not re.search(r"runs missing \d", text), name
    assert tables.table2([record()], "paper")["dataset"].tolist() == ["CUB"]
    assert tables.table4([record()], "paper")[["dataset", "row"]].values.tolist() == [
        ["CUB", "full"]]
    claims_md = texts["claims.md"]
    judged = [line.split("(")[0].strip("# ") for line in claims_md.splitlines()
              if line.startswith("## ") and line != "## Summary"]
    assert judged and "- Not judged, no run of the cells they need:" in claims_md
    # every judged assertion is about CUB's full row (G6's ranks there, for one)
    rows = [line for line in claims_md.splitlines() if line.startswith("| ") and "CUB" not in line
            and not line.startswith("| asserts") and not line.startswith("|:")]
    assert rows == []


def test_no_table_cell_is_blank_or_nan():
    recs = store.load_records(RECORDS)
    for build in (tables.table2, tables.table3, tables.table4):
        for protocol in PROTOCOLS:
            for text in cells(build(recs, protocol)):
                assert text.strip() and "nan" not in text.lower()


# ===== honesty guards =====

def test_mixing_real_and_synthetic_records_is_refused():
    with pytest.raises(ReportError, match="mix 1 real and 1 synthetic"):
        tables.render(2, [record(seed_index=0), record(seed_index=1, synthetic=True)], "x")


def test_synthetic_report_says_synthetic_and_has_no_paper_columns():
    recs = [record(synthetic=True)]
    text = tables.render(2, recs, "demo")
    assert text.splitlines()[0].endswith("SYNTHETIC data")
    assert "real data" not in text.splitlines()[0]
    assert list(tables.table2(recs, "paper").columns) == ["dataset", "U", "S", "H"]
    assert list(tables.table3(recs, "paper").columns) == ["dataset", "CZSL top-1"]


def test_done_record_with_non_finite_metric_is_refused_not_printed():
    bad = record(H=float("nan"))
    with pytest.raises(ReportError, match="expected a finite fraction"):
        tables.table2([bad], "paper")


# ===== golden markdown on checked-in hand-made records =====

@pytest.mark.parametrize("table", [2, 3, 4])
def test_markdown_matches_golden_file(table):
    """Regenerate after a deliberate format change: VSBOOST_UPDATE_GOLDEN=1 pytest ..."""
    text = tables.render(table, store.load_records(RECORDS), "records")
    golden = GOLDEN / f"table{table}.md"
    if os.environ.get("VSBOOST_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


# ===== files =====

def test_load_records_reads_every_run_folder_and_skips_unfinished_ones(tmp_path):
    write(tmp_path, [record(seed_index=0), record(seed_index=1)])
    (tmp_path / "CUB-full-s2-running").mkdir()  # a run in progress has no record yet
    assert [r["key"]["seed_index"] for r in store.load_records(tmp_path)] == [0, 1]


def test_unreadable_record_is_retrained_by_sweeps_and_refused_by_reports(tmp_path):
    write(tmp_path, [record(seed_index=0)])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "record.json").write_text("{not json")
    with pytest.raises(store.RecordError, match=r"run/record\.json: expected a JSON record"):
        store.load_records(tmp_path)
    assert store.status_of(tmp_path / "run") == "incomplete"


def test_write_reports_writes_tables_and_curves_atomically_and_reproducibly(tmp_path):
    history = [{"epoch": e, "U": 0.1 * e, "S": 0.2, "H": 0.15} for e in range(3)]
    results = write(tmp_path / "results" / "demo",
                    [record(seed_index=i, row=row, H=0.5 + 0.01 * i, history=history)
                     for i in range(2) for row in ("plain", "full")])
    out = tmp_path / "reports"
    paths = reports.write_reports(results, out)
    assert sorted(p.name for p in paths) == ["claims.md", "curves_CUB.png", "table2.md",
                                             "table3.md", "table4.md"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files
    first = {p.name: p.read_bytes() for p in paths}
    reports.write_reports(results, out)
    assert {p.name: p.read_bytes() for p in paths} == first


def test_write_reports_on_an_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(ReportError, match="run `bench sweep` first"):
        reports.write_reports(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ===== command line =====

def test_bench_report_regenerates_from_records_alone(tmp_path):
    write(tmp_path / "results" / "demo", [record(seed_index=i, synthetic=True) for i in range(2)])
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "results"),
                                      "--name", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in (out / "table2.md").read_text().splitlines()[0]


def test_bench_report_refuses_mixed_records_in_one_line_and_writes_nothing(tmp_path):
    write(tmp_path / "results" / "mix", [record(seed_index=0), record(seed_index=1,
                                                                      synthetic=True)])
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "results"),
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: records mix")
    assert not out.exists()


def test_synthetic_reports_show_the_closed_form_reference_of_the_same_files_only(tmp_path):
    results = write(tmp_path / "results" / "demo",
                    [record(seed_index=i, synthetic=True) for i in range(2)])
    store.write_reference(results, "CUB", "f" * 16, {"U": 0.41, "S": 0.62, "H": 0.4935})
    store.write_reference(results, "APY", "e" * 16, {"U": 0.1, "S": 0.2, "H": 0.13})
    reports.write_reports(results, tmp_path / "out")
    text = (tmp_path / "out" / "table2.md").read_text()
    assert "## Reference: closed-form ridge on the same files" in text
    assert "| CUB       | 41.0 | 62.0 | 49.4 | ffffffffffffffff   |" in text
    assert "APY" not in text.split("## Reference")[1].split("##")[0]  # no runs on those files
    assert store.load_records(results) and len(store.load_references(results)) == 2
    # a reference record without the CZSL number (made before it existed): shown as —
    table3 = (tmp_path / "out" / "table3.md").read_text().split("## Reference")[1].split("##")[0]
    assert "among the unseen classes only (CZSL)" in table3
    assert "| CUB       | —     | ffffffffffffffff   |" in table3


def test_table3_shows_the_czsl_reference_and_table2_the_gzsl_one(tmp_path):
    results = write(tmp_path / "results" / "demo",
                    [record(seed_index=i, synthetic=True) for i in range(2)])
    store.write_reference(results, "CUB", "f" * 16,
                          {"U": 0.41, "S": 0.62, "H": 0.4935, "acc": 0.583})
    reports.write_reports(results, tmp_path / "out")
    table3 = (tmp_path / "out" / "table3.md").read_text().split("## Reference")[1].split("##")[0]
    table2 = (tmp_path / "out" / "table2.md").read_text().split("## Reference")[1].split("##")[0]
    assert "| CUB       | 58.3  | ffffffffffffffff   |" in table3 and "41.0" not in table3
    assert "41.0 | 62.0 | 49.4" in table2 and "58.3" not in table2


def test_provenance_names_the_uncommitted_code_changes_a_run_was_made_with():
    dirty = record(seed_index=0)
    dirty["provenance"].update(git_dirty=True, git_changes=["vsboost/train.py"])
    text = tables.provenance([dirty, record(seed_index=1)], "x")
    assert "abc + uncommitted changes to vsboost/train.py (1)" in text
    assert "abc (1)" in text


# ===== another method rerun beside VS-Boost =====

def with_fclswgan(vs=(0.60, 0.62), other=(0.50, 0.55)):
    return ([record("CUB", "full", i, H=h) for i, h in enumerate(vs)]
            + [record("CUB", "fclswgan", i, H=h, config_hash="bbbbbbbbbbbb")
               for i, h in enumerate(other)])


def test_table2_shows_each_methods_headline_row_against_its_published_number():
    frame = tables.table2(with_fclswgan(), "paper")
    assert list(frame["method"]) == ["VS-Boost", "f-CLSWGAN"]
    assert list(frame["H"]) == ["61.0 ± 1.4 (2)", "52.5 ± 3.5 (2)"]
    # f-CLSWGAN's CUB H as the paper quotes it: 49.7; VS-Boost's own: the paper's full row.
    assert list(frame["H paper"])[1] == "49.7" and list(frame["H Δ"])[1] == "+2.8"
    assert "method" not in tables.table2(with_fclswgan()[:2], "paper")  # VS-Boost alone


def test_printed_table2_shows_the_rerun_under_the_published_row():
    frame = tables.printed(2, with_fclswgan())
    published = frame.index[frame["method"].eq("f-CLSWGAN")].tolist()
    assert list(frame.loc[published, "source"]) == [
        "as published, not rerun", "rerun here, `paper` protocol", "rerun here, `last` protocol",
        "rerun here, `val` protocol"]
    assert frame.loc[published[1], "CUB H"] == "52.5"


def test_vsboost_minus_another_method_is_paired_by_seed_index():
    # Paired differences 10, 7 and 9 points: mean 8.7, t(0.975, 2) * sd / sqrt(3) = 3.8.
    three = with_fclswgan((0.60, 0.62, 0.64), (0.50, 0.55, 0.55))
    frame = tables.method_pairs(three, "paper")
    assert list(frame["difference"]) == ["VS-Boost full − f-CLSWGAN"]
    assert frame["H"][0] == "+8.7 [+4.9, +12.5] (3) *"
    # two pairs are too few for an interval (bench/stats.py MIN_N)
    assert tables.method_pairs(with_fclswgan(), "paper")["H"][0] == "+8.5 (n=2, cannot judge)"
    unpaired = with_fclswgan()[:2] + [record("CUB", "fclswgan", 5, H=0.5)]
    assert tables.method_pairs(unpaired, "paper", expected=6)["H"][0] == "— runs missing"
