"""`bench compare` on hand-built records: its verdicts, its pairing and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import compare, stats
from bench.cli import cli

# choice: per-seed H (percent) with a spread of a few points, as seeds give on synthetic APY
BASE = [60.0, 64.0, 58.0, 66.0, 62.0, 59.0]


def record(seed_index: int, H: float, *, config_hash="aaaaaaaaaaaa", fingerprint="f" * 16,
           device="cpu", code="c" * 64, loss_d=-4.0) -> dict:
    scores = {"U": H / 100, "S": H / 100, "H": H / 100}
    return {
        "schema": 1, "run_id": f"APY-full-s{seed_index}-{config_hash}-{fingerprint[:8]}",
        "key": {"dataset": "APY", "row": "full", "seed_index": seed_index,
                "seed": 1000 + seed_index, "config_hash": config_hash,
                "data_fingerprint": fingerprint},
        "status": "done", "synthetic": True, "profile": "smoke", "data": {"kind": "synthetic"},
        "metrics": {"paper": scores, "last": scores},
        "history": [{"epoch": 1, "loss_d": loss_d}],
        "provenance": {"device": device, "code": code, "finished": "t"},
    }


def folder(path: Path, records: list[dict]) -> Path:
    for r in records:
        (path / r["run_id"]).mkdir(parents=True, exist_ok=True)
        (path / r["run_id"] / "record.json").write_text(json.dumps(r))
    return path


def judge(tmp_path, a: list[dict], b: list[dict]) -> dict:
    sa = compare.side(str(folder(tmp_path / "a", a)))
    sb = compare.side(str(folder(tmp_path / "b", b)))
    return {(j.metric, j.protocol): j for j in compare.compare(sa, sb)}


def shifted(delta: float, seeds=range(6), noise=(0.3, -0.2, 0.1, -0.3, 0.2, 0.0), **kw):
    return [record(i, BASE[i] + delta + noise[i], **kw) for i in seeds]


def test_two_seeds_per_side_cannot_be_judged(tmp_path):
    j = judge(tmp_path, shifted(0, range(2)), shifted(-10, range(2)))["H", "paper"]
    assert j.verdict == compare.CANNOT and "n=2" in j.why
    assert "cannot judge" in j.as_row()[-1]


@pytest.mark.parametrize("delta, verdict", [(-3.0, compare.WORSE), (3.0, compare.BETTER)])
def test_a_shift_beyond_seed_noise_is_judged_better_or_worse(tmp_path, delta, verdict):
    j = judge(tmp_path, shifted(0), shifted(delta))["H", "paper"]
    assert j.test == "paired" and j.verdict == verdict
    assert j.interval.mean == pytest.approx(delta, abs=0.01)


def test_no_detectable_difference_comes_with_its_detectable_difference(tmp_path):
    j = judge(tmp_path, shifted(0), shifted(0.05, noise=(-0.4, 0.5, 0.0, 0.6, -0.5, 0.1)))[
        "H", "last"]
    assert j.verdict == compare.SAME
    assert j.detectable == pytest.approx(stats.detectable(j.interval)) and j.detectable > 0
    assert f"(MDD {j.detectable:.1f})" in j.as_row()[-1]


def test_shared_seeds_are_paired_and_disjoint_seeds_are_compared_unpaired(tmp_path):
    # B's seeds 0-5 shifted by -3: paired, every per-seed difference is about -3
    assert judge(tmp_path / "p", shifted(0), shifted(-3))["H", "paper"].test == "paired"
    other = [record(i + 10, BASE[i] - 3) for i in range(6)]  # seed indices 10-15
    j = judge(tmp_path / "w", shifted(0), other)["H", "paper"]
    assert j.test == "Welch"
    ref = stats.welch([r["metrics"]["paper"]["H"] * 100 for r in other],
                      [BASE[i] + n for i, n in enumerate((0.3, -0.2, 0.1, -0.3, 0.2, 0.0))])
    assert (j.interval.low, j.interval.high) == pytest.approx((ref.low, ref.high))


def test_two_variants_of_one_folder_are_compared_and_never_mixed(tmp_path):
    both = folder(tmp_path / "x", shifted(0) + shifted(-3, config_hash="bbbbbbbbbbbb"))
    a, b = compare.side(f"{both}@aaaa"), compare.side(f"{both}@bbbb")
    assert {j.verdict for j in compare.compare(a, b) if j.metric == "H"} == {compare.WORSE}
    with pytest.raises(compare.CompareRefused, match="2 variants") as err:
        compare.compare(compare.side(str(both)), b)
    assert "config aaaaaaaaaaaa" in str(err.value) and "config bbbbbbbbbbbb" in str(err.value)


@pytest.mark.parametrize("change, why", [({"fingerprint": "e" * 16}, "data version"),
                                         ({"device": "cuda"}, "device kind")])
def test_runs_that_are_not_comparable_cannot_be_judged_and_say_why(tmp_path, change, why):
    j = judge(tmp_path, shifted(0), shifted(-10, **change))["H", "paper"]
    assert j.verdict == compare.CANNOT and why in j.why


def test_losses_are_shown_apart_in_their_own_units_as_higher_or_lower(tmp_path):
    a = [record(i, BASE[i], loss_d=-4.0 + 0.01 * i) for i in range(6)]
    b = [record(i, BASE[i], loss_d=-3.0 + 0.01 * i) for i in range(6)]
    j = judge(tmp_path, a, b)["loss_d", "last"]
    assert j.loss and j.verdict == "higher" and j.interval.mean == pytest.approx(1.0)
    text = compare.render(compare.side(str(tmp_path / "a")), compare.side(str(tmp_path / "b")),
                          [j], 0.95)
    assert "Training diagnostics" in text and "points" not in text.split("Training")[1]


def test_exit_codes_judged_worse_with_the_flag_and_bad_input(tmp_path):
    a, b = folder(tmp_path / "a", shifted(0)), folder(tmp_path / "b", shifted(-3))
    run = CliRunner()
    assert run.invoke(cli, ["compare", str(a), str(b)]).exit_code == 0
    flagged = run.invoke(cli, ["compare", str(a), str(b), "--fail-on-worse"])
    assert flagged.exit_code == 1 and "worse" in flagged.output
    assert run.invoke(cli, ["compare", str(a), str(b), "--fail-on-worse"][:3]).exit_code == 0
    bad = run.invoke(cli, ["compare", str(a), str(tmp_path / "none")])
    assert bad.exit_code == 2 and "error:" in bad.output


def test_the_aggregate_is_the_probability_of_improvement(tmp_path):
    a = compare.side(str(folder(tmp_path / "a", shifted(0))))
    judged = compare.compare(a, a)
    fake = [j for j in judged if j.metric == "H"]
    other = [compare.Judged("CUB", *(getattr(j, f) for f in ("row", "metric", "protocol")),
                            j.a, [v + 100 for v in j.b], j.verdict) for j in fake]
    rows = compare.aggregate(a, a, fake + other)
    # identical runs on APY: 0.5; B always above on CUB: 1.0; averaged over datasets: 0.75
    assert [r[3].split()[0] for r in rows] == ["0.75", "0.75"]


def test_a_difference_below_the_negligible_floor_is_never_worse(tmp_path):
    # a constant -0.05 on every seed: exact, so the interval excludes 0
    a, b = shifted(0), shifted(-0.05)
    assert judge(tmp_path / "x", a, b)["H", "paper"].verdict == compare.WORSE
    sa, sb = compare.side(str(tmp_path / "x" / "a")), compare.side(str(tmp_path / "x" / "b"))
    (j,) = [j for j in compare.compare(sa, sb, metrics=("H",), negligible=0.1)
            if j.protocol == "paper"]
    assert j.verdict == compare.NEGLIGIBLE


def test_the_regression_worse_stage_is_one_sided_at_the_family_level_over_its_h_cells(tmp_path):
    from bench import regression

    args = regression.worse_args("base", "fresh")
    assert regression.worse_cells() == 10  # APY's 4 rows and FLO full, both protocols
    assert args[args.index("--confidence") + 1] == "0.99"  # one-sided 0.005 per cell
    base = folder(tmp_path / "base", shifted(0))
    same = folder(tmp_path / "same", shifted(0, range(3)))
    drop = folder(tmp_path / "drop", shifted(-3.0, range(3), noise=(0.1, -0.1, 0.0, 0, 0, 0)))
    run = CliRunner()
    for fresh, code in ((same, 0), (drop, 1)):
        result = run.invoke(cli, regression.worse_args(str(base), str(fresh)))
        assert result.exit_code == code, result.output
