"""`bench check`: against the paper (real runs only) and against a baseline of the same kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import check, paper
from bench.cli import cli

RECORDS = Path(__file__).parent / "fixtures" / "records"


def record(dataset, row, seed_index, usg, *, acc=None, synthetic=False, profile="paper"):
    """A done record whose `paper`-protocol U, S, H (percent) are ``usg``; `last` is 10 lower."""
    u, s, h = (v / 100 for v in usg)
    acc = h if acc is None else acc / 100
    return {
        "schema": 1, "run_id": f"{dataset}-{row}-s{seed_index}-aaaaaaaaaaaa-ffffffff",
        "key": {"dataset": dataset, "row": row, "seed_index": seed_index, "seed": 1,
                "config_hash": "aaaaaaaaaaaa", "data_fingerprint": "f" * 16},
        "status": "done", "synthetic": synthetic, "profile": profile,
        "config": {"dataset": dataset, "row": row, "profile": profile},
        "metrics": {"paper": {"U": u, "S": s, "H": h, "epoch": 1, "cls_epoch": 1},
                    "last": {"U": u - 0.1, "S": s - 0.1, "H": h - 0.1, "epoch": 1,
                             "cls_epoch": 1},
                    "czsl": {"paper": {"acc": acc, "epoch": 1, "cls_epoch": 1},
                             "last": {"acc": acc - 0.1, "epoch": 1, "cls_epoch": 1}}},
        "history": [], "sampler": {}, "error": None, "diverged_epoch": None, "provenance": {},
    }


def as_paper(dataset="CUB", rows=("full",), seeds=2, shift=0.0, **kw):
    """Records equal to the paper's Table 4 numbers (+ shift), Table 3 for CZSL."""
    out = []
    for row in rows:
        usg = [paper.value(4, dataset, m, row) + shift for m in "USH"]
        acc = paper.value(3, dataset, "acc") + shift
        out += [record(dataset, row, s, usg, acc=acc, **kw) for s in range(seeds)]
    return out


def write(folder: Path, records: list[dict]) -> Path:
    for r in records:
        (folder / r["run_id"]).mkdir(parents=True, exist_ok=True)
        (folder / r["run_id"] / "record.json").write_text(json.dumps(r))
    return folder


# ===== against the paper =====

def test_runs_matching_the_paper_pass():
    comps = check.compare_paper(as_paper(rows=("plain", "full")))
    assert comps and not check.failing(comps)
    assert {c.source for c in comps} == {"Table 2", "Table 3", "Table 4"}


def test_cells_below_paper_minus_tolerance_fail_and_are_listed(tmp_path):
    recs = as_paper(rows=("full",)) + as_paper(rows=("plain",), shift=-1.5)
    code, text = check.run(write(tmp_path, recs), tolerance=1.0)
    assert code == 1
    assert "FAIL: 3 of" in text and "Table 4 CUB plain H (paper) -1.5" in text
    assert check.run(tmp_path, tolerance=2.0)[0] == 0


def test_check_compares_the_paper_protocol_only():
    # the `last` protocol is 10 points lower in these records: it must not make cells fail
    assert {c.ours.protocol for c in check.compare_paper(as_paper())} == {"paper"}


def test_hand_made_real_looking_records_pass_and_fail_where_they_should():
    """The checked-in fixtures: all within 1 point of the paper but CUB plain U (-2.4), H (-1.2)."""
    failing = check.failing(check.compare_paper(check.tables.load_records(RECORDS)))
    assert {(c.source, c.ours.dataset, c.ours.row, c.ours.metric) for c in failing} == {
        ("Table 4", "CUB", "plain", "U"), ("Table 4", "CUB", "plain", "H")}


def test_synthetic_runs_are_refused_with_exit_2(tmp_path):
    code, text = check.run(write(tmp_path, as_paper(synthetic=True)))
    assert code == 2
    assert "refusing to compare 2 SYNTHETIC runs with the paper" in text
    assert "--baseline" in text


def test_nothing_to_compare_is_exit_2(tmp_path):
    code, text = check.run(tmp_path)
    assert code == 2 and "nothing to compare" in text


# ===== against a baseline =====

def test_baseline_catches_a_drop_in_h_on_synthetic_data(tmp_path):
    base = write(tmp_path / "base", as_paper(synthetic=True, profile="smoke"))
    same = write(tmp_path / "same", as_paper(synthetic=True, profile="smoke"))
    worse = write(tmp_path / "worse", as_paper(synthetic=True, profile="smoke", shift=-3.0))
    assert check.run(same, baseline_dir=base)[0] == 0
    code, text = check.run(worse, baseline_dir=base)
    assert code == 1 and "baseline CUB full H (paper) -3.0" in text


def test_baseline_of_another_kind_or_profile_is_refused(tmp_path):
    syn = write(tmp_path / "syn", as_paper(synthetic=True, profile="smoke"))
    real = write(tmp_path / "real", as_paper(profile="smoke"))
    paper_profile = write(tmp_path / "pp", as_paper(synthetic=True, profile="paper"))
    code, text = check.run(syn, baseline_dir=real)
    assert code == 2 and "baseline runs are real but these are synthetic" in text
    code, text = check.run(syn, baseline_dir=paper_profile)
    assert code == 2 and "expected the same profile" in text


# ===== command line =====

@pytest.mark.parametrize(("shift", "synthetic", "code"), [(0.0, False, 0), (-2.0, False, 1),
                                                          (0.0, True, 2)])
def test_bench_check_exit_codes(tmp_path, shift, synthetic, code):
    write(tmp_path / "results" / "x", as_paper(shift=shift, synthetic=synthetic))
    result = CliRunner().invoke(cli, ["check", "--results", str(tmp_path / "results"),
                                      "--name", "x"])
    assert result.exit_code == code, result.output
