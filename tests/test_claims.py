"""The paper's claims judged against its own tables and a reproduction; `bench claims`.

The real-kind fixture is the paper's own Table 4 (and Table 3 for CZSL) plus small seed noise,
written with test_check's record helpers: a reproduction that matches the paper, so every claim
that adds up against the paper's tables must come out supported, and the ones that do not add
up must be flagged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_check import record, write

from bench import claims, paper, store, tables
from bench.cli import cli

REPO = Path(__file__).resolve().parents[1]
DS = ("APY", "AWA2", "CUB", "FLO", "SUN")
ROWS = ("plain", "sml", "rml", "full")


def like_the_paper(datasets=DS, rows=ROWS, seeds=5, shift=None):
    """Records at Table 4's U, S, H (+ ``shift[(dataset, row)]`` points): a seed effect shared by
    the rows of a seed (so that rows are paired, as real runs are) plus a smaller row noise."""
    rng = np.random.default_rng(7)
    shift = shift or {}
    out = []
    for ds in datasets:
        seed_effect = rng.normal(0, 0.05, seeds)
        for row in rows:
            for s in range(seeds):
                noise = seed_effect[s] + rng.normal(0, 0.02, 3)
                usg = [paper.value(4, ds, m, row) + shift.get((ds, row), 0.0) + e
                       for m, e in zip("USH", noise, strict=True)]
                acc = paper.value(3, ds, "acc") + noise[2]
                out.append(record(ds, row, s, usg, acc=acc))
    return out


@pytest.fixture(scope="module")
def rows():
    return claims.evaluate(like_the_paper())


def by_label(rows, claim_id):
    return {r.assertion.label(): r for r in rows if r.claim.id == claim_id}


# ===== against the paper's own tables =====

def test_the_papers_internal_inconsistencies_are_flagged_with_their_arithmetic(rows):
    flagged = {(r.claim.id, r.assertion.label()): (r.arithmetic.text, r.arithmetic.verdict)
               for r in rows if r.arithmetic.flagged}
    assert flagged == {
        ("A2", "CUB H: rml − plain = +6.0"): ("Table 4: 63.8 − 58.8 = +5.0",
                                              "inconsistent by 1.0"),
        ("G4", "AWA2 U: VS-Boost best, 2.7 above the runner-up"): (
            "Table 2: VS-Boost 67.9, best of 14; runner-up ICCE 65.3: 67.9 − 65.3 = +2.6",
            "inconsistent by 0.1 (within rounding)"),
        ("A5", "APY H: full − plain = +12.6"): ("Table 4: 58.1 − 45.4 = +12.7",
                                                "inconsistent by 0.1 (within rounding)"),
        ("A5", "AWA2 H: full − plain = +10.7"): ("Table 4: 74.1 − 63.5 = +10.6",
                                                 "inconsistent by 0.1 (within rounding)"),
        ("A5", "CUB H: full − plain = +9.6"): (
            "Table 4: 68.3 − 58.8 = +9.5 (9.6 is Table 2's 68.4 − 58.8)",
            "inconsistent by 0.1 (within rounding)"),
        ("T1", "Table 4 full row = Table 2 VS-Boost row (U, S, H, five datasets)"): (
            "CUB H: Table 4 68.3 vs Table 2 68.4", "inconsistent"),
        ("G3", "SUN U: VS-Boost below CE-GZSL"): ("Table 2: VS-Boost 49.2 − CE-GZSL 48.8 = +0.4",
                                                  "inconsistent"),
        ("G3", "SUN U: VS-Boost below TF-VAEGAN"): (
            "Table 2: VS-Boost 49.2 − TF-VAEGAN 45.6 = +3.6", "inconsistent"),
    }


def test_every_claim_of_the_text_is_encoded_once():
    ids = [c.id for c in claims.CLAIMS]
    assert ids == ["G1", "G2", "G3", "G4", "C1", "C2", "A1", "A2", "A3", "A4", "A5", "T1"]
    labels = [a.label() for c in claims.CLAIMS for a in c.asserts]
    assert len(labels) == len(set(labels)) == 50
    assert {c.section for c in claims.CLAIMS} == {"§4.1", "§4.2", "§4.3", "Tables 2, 4"}


# ===== against a reproduction that matches the paper =====

def test_a_reproduction_at_the_papers_numbers_supports_every_consistent_claim(rows):
    paper_protocol = {(r.claim.id, r.assertion.label()): r.judgements["paper"].verdict
                      for r in rows if not r.arithmetic.flagged}
    assert set(paper_protocol.values()) == {claims.SUPPORTED}
    assert len(paper_protocol) == 42


def test_claims_that_do_not_add_up_are_judged_on_what_the_runs_show(rows):
    verdicts = {(r.claim.id, r.assertion.label()): r.judgements["paper"].verdict
                for r in rows if r.arithmetic.flagged}
    # the runs give CUB's RML gain as 5.0, not the text's 6.0: right direction, wrong size
    assert verdicts["A2", "CUB H: rml − plain = +6.0"] == claims.DIRECTION
    # SUN U at 49.2 is above CE-GZSL's 48.8: the text's "inferior in U" is contradicted
    assert verdicts["G3", "SUN U: VS-Boost below CE-GZSL"] == claims.CONTRADICTED
    assert verdicts["T1", "Table 4 full row = Table 2 VS-Boost row (U, S, H, five datasets)"] \
        == claims.TEXT_ONLY


def test_best_claims_are_judged_per_protocol_against_the_published_numbers(rows):
    # the fixture's `last` protocol is 10 points below its `paper` protocol: CUB H 58.3 is 7th
    g1 = by_label(rows, "G1")["CUB H: VS-Boost best, 0.3 above MSDN"]
    assert g1.judgements["paper"].verdict == claims.SUPPORTED
    assert g1.judgements["last"].verdict == claims.CONTRADICTED
    assert "7th" in g1.judgements["last"].evidence


def test_claims_md_lists_each_claim_with_its_sentence_and_intervals():
    text = claims.render(like_the_paper(), "fixture")
    assert text.splitlines()[0].endswith("real data")
    assert "95% paired t" in text
    for c in claims.CLAIMS:
        assert f"## {c.id} ({c.section}): {c.sentence}" in text
    assert "| CUB H: rml − plain = +6.0 | Table 4: 63.8 − 58.8 = +5.0 | inconsistent by 1.0" \
        in " ".join(text.split())
    assert "**CONTRADICTED**" in text


# ===== Tables 2-4 on the same fixture =====

def test_tables_2_and_3_show_the_published_rows_the_papers_row_and_the_reproductions_rank():
    recs = like_the_paper()
    t2 = tables.printed(2, recs)
    assert (t2["source"] == "as published, not rerun").sum() == 14
    assert t2["source"].tolist()[-7:] == ["the paper, as printed", "reproduced, `paper` protocol",
                                          "reproduced, `last` protocol",
                                          "reproduced, `val` protocol", "`paper` protocol",
                                          "`last` protocol", "`val` protocol"]
    rank = t2.set_index("source").loc["`paper` protocol"]
    # at the paper's numbers the reproduction ranks where the paper's VS-Boost row does
    assert rank[["APY H", "CUB U", "SUN H", "SUN S"]].tolist() == ["1/8", "2/15", "3/12", "7/12"]
    assert t2.set_index("source").loc["`last` protocol", "CUB H"] == "7/15"
    t3 = tables.printed(3, recs)
    assert t3.set_index("source").loc["`paper` protocol"][list(DS)].tolist() == [
        "1/12", "1/14", "1/14", "1/10", "3/13"]
    text = tables.render(2, recs, "fixture")
    assert "## Table 2 as printed, with the reproduction" in text
    assert "| ICCE " in text and "as published, not rerun" in text


def test_table4_shows_paired_gains_with_intervals_beside_the_papers_gain():
    frame = tables.gains(like_the_paper(datasets=("CUB",)), "paper")
    assert frame["gain"].tolist() == ["sml − plain", "rml − plain", "full − plain", "full − sml",
                                      "full − rml"]
    line = frame.set_index("gain").loc["rml − plain"]
    assert line["H paper"] == "+5.0"
    assert re.fullmatch(r"\+5\.0 \[\+\d\.\d, \+\d\.\d\] \(5\) \*", line["H"]), line["H"]


def test_unpaired_spread_does_not_widen_a_paired_gain():
    # a large seed effect shared by the rows of a seed cancels in the paired difference
    recs = like_the_paper(datasets=("CUB",), rows=("plain", "sml"))
    wide = [dict(r) for r in recs]
    for r in wide:
        bump = 0.05 * r["key"]["seed_index"]  # +0..+20 points, the same for both rows
        r["metrics"] = json.loads(json.dumps(r["metrics"]))
        for m in "USH":
            r["metrics"]["paper"][m] += bump
    narrow = tables.gains(recs, "paper").set_index("gain").loc["sml − plain", "H"]
    same = tables.gains(wide, "paper").set_index("gain").loc["sml − plain", "H"]
    assert same == narrow


def test_synthetic_and_custom_reports_leave_the_published_rows_out():
    recs = [dict(r, data={"kind": "synthetic", "label": None, "files": {}}, synthetic=True)
            for r in like_the_paper(datasets=("CUB",))]
    assert "as printed" not in tables.render(2, recs, "demo")
    assert "as published" not in tables.render(3, recs, "demo")
    assert "H paper" not in tables.gains(recs, "paper").columns


# ===== bench claims: the gate =====

def invoke(tmp_path, recs, *extra):
    write(tmp_path / "results" / "mine", recs)
    return CliRunner().invoke(cli, ["claims", "--results", str(tmp_path / "results"), "--name",
                                    "mine", *extra])


def test_bench_claims_exits_0_when_the_ablation_gains_hold(tmp_path):
    result = invoke(tmp_path, like_the_paper(datasets=("CUB",), rows=("plain", "sml", "rml")))
    assert result.exit_code == 0, result.output
    assert "No claim is contradicted at 95%." in result.output


def test_bench_claims_exits_1_when_one_ablation_gain_is_reversed(tmp_path):
    reversed_sml = {("CUB", "sml"): -2 * (65.9 - 58.8)}  # SML now 7.1 below plain on CUB
    result = invoke(tmp_path, like_the_paper(datasets=("CUB",), rows=("plain", "sml", "rml"),
                                             shift=reversed_sml))
    assert result.exit_code == 1, result.output
    assert "A1 CUB H: sml − plain = +7.1 (paper)" in result.output


def test_bench_claims_can_gate_on_one_protocol(tmp_path):
    # `last` is 10 points below `paper` here: the best-H claims fail under `last` only
    recs = like_the_paper(datasets=("CUB",))
    assert invoke(tmp_path, recs, "--protocol", "last").exit_code == 1
    assert invoke(tmp_path, recs, "--protocol", "paper").exit_code == 0


def test_bench_claims_on_an_empty_folder_is_a_one_line_error_with_exit_2(tmp_path):
    (tmp_path / "results" / "none").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["claims", "--results", str(tmp_path / "results"),
                                      "--name", "none"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


# ===== the committed synthetic demo =====

def test_bench_report_on_the_demo_judges_only_the_ablation_directions(tmp_path):
    # the demo's records only (their features.npz would add minutes of t-SNE)
    results = tmp_path / "results" / "demo"
    for rec in store.load_records(REPO / "results" / "demo"):
        write(results, [rec])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "results"),
                                      "--name", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "claims.md").read_text()
    assert text.splitlines()[0].endswith("SYNTHETIC data")
    rows = claims.evaluate(store.load_records(results))
    for r in rows:
        verdict = r.judgements["paper"].verdict
        if isinstance(r.assertion, claims.Gain):
            assert verdict not in (claims.NEEDS_REAL, claims.PENDING, claims.DIRECTION)
        elif isinstance(r.assertion, claims.SameRow):
            assert verdict == claims.TEXT_ONLY
        else:
            assert verdict == claims.NEEDS_REAL
    assert text.count("needs real data") >= 2 * 19
    assert "(direction only judged: SYNTHETIC)" in text


def test_docs_list_every_encoded_claim_with_its_sentence():
    doc = (REPO / "docs" / "claims.md").read_text()
    for c in claims.CLAIMS:
        assert f"| {c.id} | {c.section} | {c.sentence} |" in doc
