"""`bench check`: against the paper (real runs only) and against a baseline of the same kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import cells, check, paper, store
from bench.cli import cli

RECORDS = Path(__file__).parent / "fixtures" / "records"


def record(dataset, row, seed_index, usg, *, acc=None, synthetic=False, profile="paper",
           data_kind=None, status="verified", deviations=None, config_hash="a" * 12,
           fingerprint="f" * 16, device="cpu"):
    """A done record whose `paper`-protocol U, S, H (percent) are ``usg``; `last` is 10 lower."""
    u, s, h = (v / 100 for v in usg)
    acc = h if acc is None else acc / 100
    kind = data_kind or ("synthetic" if synthetic else "real")
    files = {} if kind == "synthetic" else {f"{dataset}/att_splits.mat": {
        "sha256": "1" * 64, "pinned": "1" * 64 if status == "verified" else "2" * 64,
        "status": status}}
    return {
        "schema": 1, "run_id": f"{dataset}-{row}-s{seed_index}-{config_hash}-{fingerprint[:8]}"
                               + ("" if device == "cpu" else f"-{device}"),
        "key": {"dataset": dataset, "row": row, "seed_index": seed_index, "seed": 1,
                "config_hash": config_hash, "data_fingerprint": fingerprint,
                **({} if device == "cpu" else {"device": device})},
        "status": "done", "synthetic": synthetic, "profile": profile,
        "data": {"kind": kind, "label": "mine" if kind == "custom" else None, "files": files},
        "deviations": deviations or {},
        "config": {"dataset": dataset, "row": row, "profile": profile},
        "metrics": {"paper": {"U": u, "S": s, "H": h, "epoch": 1, "cls_epoch": 1},
                    "last": {"U": u - 0.1, "S": s - 0.1, "H": h - 0.1, "epoch": 1,
                             "cls_epoch": 1},
                    "czsl": {"paper": {"acc": acc, "epoch": 1, "cls_epoch": 1},
                             "last": {"acc": acc - 0.1, "epoch": 1, "cls_epoch": 1}}},
        "history": [], "sampler": {}, "error": None, "diverged_epoch": None, "provenance": {},
    }


def as_paper(dataset="CUB", rows=("full",), seeds=5, shift=0.0, **kw):
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
    passed, text = check.run(write(tmp_path, recs), tolerance=1.0)
    assert not passed
    assert "FAIL: 3 of" in text and "Table 4 CUB plain H (paper) -1.5" in text
    assert check.run(tmp_path, tolerance=2.0)[0]


def test_check_compares_the_paper_protocol_only():
    # the `last` protocol is 10 points lower in these records: it must not make cells fail
    assert {c.ours.protocol for c in check.compare_paper(as_paper())} == {"paper"}


def test_hand_made_real_looking_records_pass_and_fail_where_they_should():
    """The checked-in fixtures: all within 1 point of the paper but CUB plain U (-2.4), H (-1.2)."""
    failing = check.failing(check.compare_paper(store.load_records(RECORDS)))
    assert {(c.source, c.ours.dataset, c.ours.row, c.ours.metric) for c in failing} == {
        ("Table 4", "CUB", "plain", "U"), ("Table 4", "CUB", "plain", "H")}


def test_a_partial_reproduction_fails_naming_the_failed_diverged_and_missing_runs(tmp_path):
    recs = as_paper(seeds=5)
    recs[1]["status"], recs[2]["status"] = "failed", "diverged"
    write(tmp_path, recs[:4])  # s4 never ran
    passed, text = check.run(tmp_path)
    assert not passed
    assert "CUB full: 2/5 seeds done (failed s1; diverged s2; missing s4)" in text
    assert "not compared: APY (no runs)" in text and "CUB plain (no runs)" in text
    assert text.splitlines()[-1].startswith("FAIL: incomplete reproduction")


def test_one_seed_of_five_done_is_not_a_pass_and_allow_partial_says_so(tmp_path):
    write(tmp_path / "results" / "x", as_paper(seeds=1))
    args = ["check", "--results", str(tmp_path / "results"), "--name", "x"]
    assert CliRunner().invoke(cli, args).exit_code == 1
    partial = CliRunner().invoke(cli, [*args, "--allow-partial"])
    assert partial.exit_code == 0, partial.output
    assert "PASS" in partial.output.splitlines()[-1]
    assert "PARTIAL (--allow-partial)" in partial.output.splitlines()[-1]
    assert CliRunner().invoke(cli, [*args, "--seeds", "1"]).exit_code == 0


def test_the_check_states_what_it_judges(tmp_path):
    passed, text = check.run(write(tmp_path, as_paper()))
    assert passed
    assert "U, S, H (Tables 2, 4) and CZSL top-1 (Table 3)" in text.splitlines()[0]
    assert "5 seeds per cell" in text.splitlines()[0]
    help_text = CliRunner().invoke(cli, ["check", "--help"]).output
    assert "CZSL top-1" in help_text and "--allow-partial" in help_text


def test_synthetic_runs_are_refused_with_exit_2(tmp_path):
    with pytest.raises(check.CheckRefused, match="refusing to compare 5 SYNTHETIC runs") as err:
        check.run(write(tmp_path, as_paper(synthetic=True)))
    assert "--baseline" in str(err.value)


def test_nothing_to_compare_is_exit_2(tmp_path):
    with pytest.raises(check.CheckRefused, match="nothing to compare"):
        check.run(tmp_path)


@pytest.mark.parametrize(("kw", "why"), [
    ({"data_kind": "custom"}, "runs on CUSTOM data 'mine'"),
    ({"status": "mismatch"}, "read files that do not match datasets.lock"),
    ({"profile": "smoke"}, "use another profile than `paper`"),
    ({"deviations": {"gan_epochs": {"value": 1, "default": 300}}}, "changed settings"),
])
def test_paper_comparison_refuses_what_is_not_the_papers_data_and_settings(tmp_path, kw, why):
    with pytest.raises(check.CheckRefused, match=why) as err:
        check.run(write(tmp_path, as_paper(**kw)))
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_records_without_data_verification_are_refused_for_the_paper(tmp_path):
    recs = as_paper()
    for r in recs:
        del r["data"]
    with pytest.raises(check.CheckRefused, match="without checking their files"):
        check.compare_paper(recs)


def test_allowed_deviations_are_printed_beside_each_verdict(tmp_path):
    changed = {"gan_epochs": {"value": 1, "default": 300}}
    passed, text = check.run(write(tmp_path, as_paper(deviations=changed)),
                             allow_deviations=True)
    assert passed
    verdicts = [line for line in text.splitlines() if line.startswith("| Table")]
    assert verdicts and all("† changed: gan_epochs=1 (default 300)" in v for v in verdicts)


# ===== against a baseline =====

def test_baseline_catches_a_drop_in_h_on_synthetic_data(tmp_path):
    base = write(tmp_path / "base", as_paper(synthetic=True, profile="smoke"))
    same = write(tmp_path / "same", as_paper(synthetic=True, profile="smoke"))
    worse = write(tmp_path / "worse", as_paper(synthetic=True, profile="smoke", shift=-3.0))
    assert check.run(same, baseline_dir=base)[0]
    passed, text = check.run(worse, baseline_dir=base)
    assert passed and "CHANGED: " in text and "baseline CUB full H (paper) -3.0" in text
    passed, text = check.run(worse, baseline_dir=base, exact=True)
    assert not passed and "FAIL:" in text.splitlines()[-1]


def test_baseline_of_another_kind_or_profile_is_refused(tmp_path):
    syn = write(tmp_path / "syn", as_paper(synthetic=True, profile="smoke"))
    real = write(tmp_path / "real", as_paper(profile="smoke"))
    paper_profile = write(tmp_path / "pp", as_paper(synthetic=True, profile="paper"))
    with pytest.raises(check.CheckRefused, match="baseline is real but these runs are synthetic"):
        check.run(syn, baseline_dir=real)
    with pytest.raises(check.CheckRefused, match="expected the same profile"):
        check.run(syn, baseline_dir=paper_profile)


@pytest.mark.parametrize(("kw", "what"), [({"fingerprint": "e" * 16}, "data fingerprint"),
                                          ({"config_hash": "b" * 12}, "config hash"),
                                          ({"device": "cuda"}, "device kind")])
def test_baseline_on_other_data_or_settings_is_refused(tmp_path, kw, what):
    base = write(tmp_path / "base", as_paper(synthetic=True, profile="smoke"))
    other = write(tmp_path / "other", as_paper(synthetic=True, profile="smoke", **kw))
    with pytest.raises(check.CheckRefused, match=f"CUB full: the baseline has {what}"):
        check.run(other, baseline_dir=base)


def test_a_cell_never_averages_cpu_and_cuda_seeds_and_names_both_kinds(tmp_path):
    cpu = as_paper(seeds=3, synthetic=True, profile="smoke")
    cuda = [record("CUB", "full", s, (90, 90, 90), synthetic=True, profile="smoke",
                   device="cuda") for s in range(2)]
    folder = write(tmp_path / "mixed", cpu + cuda)
    records = store.load_records(folder)  # through the schema: a CUDA record is valid
    with pytest.raises(cells.ReportError) as err:
        cells.cell(records, "CUB", "full", "H", "paper", 3)
    assert "2 variants" in str(err.value)
    assert "on cpu (3 run(s)" in str(err.value) and "on cuda (2 run(s)" in str(err.value)
    alone = store.load_records(write(tmp_path / "cpu", cpu))
    c = cells.cell(alone, "CUB", "full", "H", "paper", 3)
    assert c.values == pytest.approx([100 * r["metrics"]["paper"]["H"] for r in cpu])


# ===== command line =====

@pytest.mark.parametrize(("shift", "synthetic", "code"), [(0.0, False, 0), (-2.0, False, 1),
                                                          (0.0, True, 2)])
def test_bench_check_exit_codes(tmp_path, shift, synthetic, code):
    write(tmp_path / "results" / "x", as_paper(shift=shift, synthetic=synthetic))
    result = CliRunner().invoke(cli, ["check", "--results", str(tmp_path / "results"),
                                      "--name", "x"])
    assert result.exit_code == code, result.output


def test_baseline_compares_the_same_seeds_within_the_tolerance_and_a_rise_is_a_change(tmp_path):
    spread = [-2.0, 2.0, -1.0, 1.0, 0.0, 0.0]  # baseline seeds 0..5 around the paper's numbers
    base = [r for i, d in enumerate(spread)
            for r in as_paper(synthetic=True, profile="smoke", seeds=6, shift=d)
            if r["key"]["seed_index"] == i]
    ours = [r for r in base if r["key"]["seed_index"] < 2]  # seeds 0 and 1, unchanged
    (comp,) = [c for c in check.compare_baseline(ours, base, tolerance=0.5)
               if (c.ours.metric, c.ours.protocol) == ("H", "paper")]
    assert comp.reference == comp.ours.mean  # paired: the baseline's seeds 0 and 1
    assert comp.tolerance == 0.5 and comp.verdict == "unchanged"
    moved = [dict(r, metrics={k: {m: (v + 0.01 if isinstance(v, float) else v)
                                  for m, v in p.items()} if k != "czsl" else p
                              for k, p in r["metrics"].items()}) for r in ours]
    up = check.compare_baseline(moved, base, tolerance=0.5, exact=True)
    assert {c.verdict for c in up if c.ours.metric != "acc"} == {"CHANGED (higher)"}
    assert all(c.failing for c in up if c.ours.metric != "acc")
    assert not check.failing(check.compare_baseline(moved, base, tolerance=0.5))  # reported


def test_baseline_watches_the_training_losses_of_the_rows_that_have_them(tmp_path):
    def with_losses(recs, metric_loss):
        for r in recs:
            i = r["key"]["seed_index"]
            r["history"] = [{"epoch": 1, "loss_d": -1.0 + 0.01 * i,
                             "loss_metric": metric_loss + 0.01 * i}]
        return recs

    base = with_losses(as_paper(rows=("plain", "full"), synthetic=True, profile="smoke",
                                seeds=6), 0.7)
    ours = [r for r in with_losses(as_paper(rows=("plain", "full"), synthetic=True,
                                            profile="smoke", seeds=2), 0.9)]
    comps = check.compare_baseline(ours, base)
    watched = {(c.ours.row, c.ours.metric) for c in comps if c.ours.metric.startswith("loss")}
    assert watched == {("plain", "loss_d"), ("full", "loss_d"), ("full", "loss_metric")}
    (moved,) = [c for c in check.failing(check.compare_baseline(ours, base,
                                                                 exact=True))]
    assert (moved.ours.row, moved.ours.metric, moved.verdict) == (
        "full", "loss_metric", "CHANGED (higher)")


# ===== baseline with machine noise: unchanged or changed (never "worse": bench compare) =====

def _shifted(records, points, metric="H", protocol="paper"):
    """Copies of ``records`` with one metric moved by ``points``."""
    out = []
    for r in records:
        metrics = json.loads(json.dumps(r["metrics"]))
        metrics[protocol][metric] += points / 100
        out.append(dict(r, metrics=metrics))
    return out


def _baseline_with_machines(tmp_path, machine_noise):
    spread = [-2.0, 2.0, -1.0, 1.0, 0.0, 0.0]  # six baseline seeds: σ = √2 points
    base = [r for i, d in enumerate(spread)
            for r in as_paper(synthetic=True, profile="smoke", seeds=6, shift=d)
            if r["key"]["seed_index"] == i]
    machines = tmp_path / "machines"
    for j, noise in enumerate(machine_noise):  # two reruns of seeds 0 and 1 on other machines
        write(machines / f"m{j}", _shifted([r for r in base if r["key"]["seed_index"] < 2],
                                           noise))
    write(tmp_path / "base", base)
    return base, machines


def _h_paper(comps):
    (comp,) = [c for c in comps if (c.ours.metric, c.ours.protocol) == ("H", "paper")]
    return comp


def test_machine_band_comes_from_the_reruns_and_an_unchanged_rerun_passes(tmp_path):
    base, machines = _baseline_with_machines(tmp_path, [0.0, 0.0])
    ours = write(tmp_path / "ours", [r for r in base if r["key"]["seed_index"] < 2])
    passed, text = check.run(ours, baseline_dir=tmp_path / "base", machines_dir=machines)
    assert passed, text
    assert "2 simulated machines" in text and "CHANGED" not in text
    comp = _h_paper(check.compare_baseline(store.load_records(ours), base,
                                           machines=[store.load_records(machines / "m0")]))
    assert comp.tolerance == check.MIN_TOLERANCE  # no machine noise: the display's resolution


def test_machine_band_widens_with_the_measured_machine_noise(tmp_path):
    base, machines = _baseline_with_machines(tmp_path, [0.5, -0.5])
    ours = [r for r in base if r["key"]["seed_index"] < 2]
    runs = [store.load_records(machines / m) for m in ("m0", "m1")]
    comp = _h_paper(check.compare_baseline(ours, base, machines=runs))
    # four paired differences of ±0.5: σ_m = 0.5, n = 2
    assert comp.tolerance == pytest.approx(check._t(4) * 0.5 / 2**0.5)


@pytest.mark.parametrize(("points", "verdict"), [(0.5, "CHANGED (higher)"),
                                                 (-20.0, "CHANGED (lower)")])
def test_a_move_beyond_machine_noise_reads_changed_and_fails_only_with_exact(
        tmp_path, points, verdict):
    base, machines = _baseline_with_machines(tmp_path, [0.0, 0.0])
    ours = write(tmp_path / "ours", _shifted([r for r in base if r["key"]["seed_index"] < 2],
                                             points))
    runs = [store.load_records(machines / m) for m in ("m0", "m1")]
    comp = _h_paper(check.compare_baseline(store.load_records(ours), base,
                                           machines=runs))
    assert comp.verdict == verdict
    for exact in (False, True):
        passed, text = check.run(ours, baseline_dir=tmp_path / "base", machines_dir=machines,
                                 exact=exact)
        assert passed != exact and "CHANGED: 1 of" in text
        assert "seed noise" not in text


def test_machine_reruns_of_other_settings_are_refused(tmp_path):
    base, machines = _baseline_with_machines(tmp_path, [0.0])
    other = tmp_path / "other-machines"
    write(other / "m0", as_paper(synthetic=True, profile="smoke", seeds=2,
                                  config_hash="c" * 12))
    with pytest.raises(check.CheckRefused, match="machine-noise rerun has cccccccccccc"):
        check.run(write(tmp_path / "ours", base[:2]), baseline_dir=tmp_path / "base",
                  machines_dir=other)


def test_any_seed_indices_pair_with_the_baselines_same_seeds(tmp_path):
    base, machines = _baseline_with_machines(tmp_path, [0.0, 0.0])
    ours = [r for r in base if r["key"]["seed_index"] in (2, 3)]  # spread -1 and +1
    runs = [store.load_records(machines / m) for m in ("m0", "m1")]
    comp = _h_paper(check.compare_baseline(ours, base, machines=runs))
    assert comp.ours.seeds == [2, 3] and comp.reference == comp.ours.mean and not comp.failing
