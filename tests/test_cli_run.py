"""`bench run`, `bench sweep` and `bench table*` from the command line: records, reruns, errors."""

import json

import pytest
import torch
from click.testing import CliRunner

from bench import store
from bench.cli import cli
from vsboost import synthetic
from vsboost.config import make_config, seed_for

TINY = ["gan_epochs=2", "steps_per_epoch=2", "hidden=32", "enc_dim=32", "syn_num=10",
        "cls_epochs=1", "n_way=2", "k_shot=8"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    synthetic.write(root, ["APY"], scale=0.05, seed=0, real_meta=None)
    return root


def bench(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def tiny(data_root, results):
    sets = [x for kv in TINY for x in ("--set", kv)]
    return ["--profile", "smoke", *sets, "--data-root", data_root, "--results", results]


def test_an_xlsa17_folder_of_another_name_runs_under_that_name_with_data_label(tmp_path,
                                                                                 data_root):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(data_root / "APY", root / "AWA1")  # AWA1-format files under their own name
    refused = bench("run", "-d", "AWA1", "-r", "full", *tiny(root, tmp_path), "--name", "a")
    assert refused.exit_code == 2 and "--data-label" in refused.output
    (root / "AWA1" / "res101.mat").rename(root / "AWA1" / "clip.mat")  # a feature file's name
    result = bench("run", "-d", "AWA1", "-r", "full", *tiny(root, tmp_path), "--name", "a",
                   "--data-label", "AWA1", "--feature-file", "clip.mat", "--backbone", "CLIP")
    assert result.exit_code == 0, result.output
    (run,) = store.run_dirs(tmp_path / "a")
    record = json.loads((run / store.RECORD).read_text())
    assert run.name.startswith("AWA1-full-s0-") and record["key"]["dataset"] == "AWA1"
    assert record["config"]["syn_num"] == 10 and record["data"]["feature_dim"] == 2048
    assert (record["data"]["feature_file"], record["data"]["backbone"]) == ("clip.mat", "CLIP")
    assert record["config"]["gan_epochs"] == 2 and record["deviations"]["syn_num"] == {
        "value": 10, "default": 300}  # the generic default, vsboost/config.py GENERIC
    out = tmp_path / "reports"
    report = bench("report", "--results", tmp_path, "--name", "a", "--out", out)
    assert report.exit_code == 0, report.output
    table2 = (out / "table2.md").read_text()
    assert "| AWA1 " in table2 and (out / "curves_AWA1.png").is_file()
    assert "AWA1 2048 / 64 (clip.mat, CLIP)" in table2  # dimensions, file and backbone shown


def test_run_writes_one_record_with_key_config_and_provenance(tmp_path, data_root):
    result = bench("run", "--dataset", "APY", "--row", "sml", "--seed-index", "1",
                   *tiny(data_root, tmp_path), "--name", "one")
    assert result.exit_code == 0, result.output
    (run,) = store.run_dirs(tmp_path / "one")
    record = json.loads((run / store.RECORD).read_text())
    cfg = make_config("APY", "sml", "smoke", dict(kv.split("=") for kv in TINY))
    assert record["run_id"] == run.name
    assert record["key"] == {"dataset": "APY", "row": "sml", "seed_index": 1,
                             "seed": seed_for("APY", 1), "config_hash": cfg.hash(),
                             "data_fingerprint": record["key"]["data_fingerprint"]}
    assert record["config"] == cfg.to_dict()
    assert record["status"] == "done" and record["synthetic"] is True
    assert set(record["metrics"]) == {"paper", "last", "val", "czsl"}
    assert record["validation"]["status"] == "done"
    assert [e["epoch"] for e in record["history"] if "val" in e] == [2]  # validation metrics
    assert record["history"] and record["error"] is None
    provenance = record["provenance"]
    for key in ("git_commit", "python", "torch", "cuda", "device", "wall_s", "finished"):
        assert key in provenance
    assert provenance["device"] == "cpu" and provenance["cuda"] is None

    again = bench("run", "--dataset", "APY", "--row", "sml", "--seed-index", "1",
                  *tiny(data_root, tmp_path), "--name", "one")
    assert again.exit_code == 0
    assert "-> 0 to run" in again.output
    assert (run / store.LOG).read_text().count(" start ") == 1


def test_the_default_sweep_name_says_synthetic(tmp_path, data_root):
    result = bench("sweep", "--datasets", "APY", "--rows", "plain", "--seeds", "1", "--dry-run",
                   *tiny(data_root, tmp_path))
    assert result.exit_code == 0, result.output
    assert "smoke-synthetic" in result.output and "would run APY plain seeds [0]" in result.output
    assert not tmp_path.joinpath("smoke-synthetic").exists()


def test_table4_plans_every_row_and_table2_only_the_full_row(tmp_path, data_root):
    four = bench("table4", "--datasets", "APY", "--seeds", "2", "--dry-run",
                 *tiny(data_root, tmp_path))
    assert four.exit_code == 0, four.output
    assert [line.split()[3] for line in four.output.splitlines()
            if line.startswith("would run")] == ["plain", "sml", "rml", "full"]
    two = bench("table2", "--datasets", "APY", "--seeds", "2", "--dry-run",
                *tiny(data_root, tmp_path))
    assert [line for line in two.output.splitlines() if line.startswith("would run")] == [
        "would run APY full seeds [0, 1]"]


def test_table2_trains_what_is_missing_then_writes_the_report(tmp_path, data_root):
    out = tmp_path / "reports"
    result = bench("table2", "--datasets", "APY", "--seeds", "1", "--out", out,
                   *tiny(data_root, tmp_path / "results"), "--name", "t2")
    assert result.exit_code == 0, result.output
    assert [c.name for c in store.run_dirs(tmp_path / "results" / "t2")] == [
        store.load_records(tmp_path / "results" / "t2")[0]["run_id"]]
    written = [line.removeprefix("wrote ") for line in result.output.splitlines()
               if line.startswith("wrote ")]
    assert written and all(tmp_path.joinpath(out, p).exists() for p in written)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "XYZ", "--row", "full"], "dataset 'XYZ': expected one of APY, AWA2, CUB, FLO, "
                                            "SUN; fix: pick one of those, or pass --data-label"),
    (["--dataset", "X/Y", "--row", "full"], "expected one of APY, AWA2, CUB, FLO, SUN, found X/Y"),
    (["--dataset", "APY", "--row", "best"],
     "expected one of plain, sml, rml, full, fclswgan, found best"),
    (["--dataset", "APY", "--row", "full", "--seed-index", "-1"], "'--seed-index'"),
    (["--dataset", "APY", "--row", "full", "--set", "epochs=3"], "unknown config key 'epochs'"),
    (["--dataset", "APY", "--row", "full", "--set", "gan_epochs=ten"], "expected int"),
    (["--dataset", "APY", "--row", "full", "--set", "gan_epochs=-1"], "expected >= 1"),
    (["--dataset", "APY", "--row", "full", "--set", "gan_epochs"], "expected key=value"),
    (["--dataset", "APY", "--row", "full", "--name", "../x"], "--name"),
])
def test_bad_options_print_one_error_line_exit_2_and_write_nothing(tmp_path, data_root, args,
                                                                   message):
    result = bench("run", *args, "--data-root", data_root, "--results", tmp_path / "results")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "results").exists()


def test_a_missing_data_folder_is_one_error_line_and_nothing_written(tmp_path):
    result = bench("sweep", "--datasets", "CUB", "--data-root", tmp_path / "nowhere",
                   "--results", tmp_path / "results")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "CUB" in result.stderr
    assert not (tmp_path / "results").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = bench("run", "--dataset", "APY", "--row", "full", "--set", "epochs=3", "--debug",
                   "--results", tmp_path / "results")
    assert result.exit_code == 2  # still a wrong input, not "a check found a problem"
    assert "Traceback" in result.output and "ConfigError: unknown config key" in result.output


def test_help_lists_commands_and_options_by_section_with_defaults():
    top = bench("--help")
    assert top.exit_code == 0
    for section in ("Training:", "Paper tables", "Reports and checks", "Data:"):
        assert section in top.output
    for command in ("run", "sweep", "table2", "table3", "table4", "report", "tsne", "check"):
        assert f"  {command} " in top.output
    text = bench("sweep", "--help").output
    for section in ("Grid:", "Training:", "Data:", "Results:", "Launch:", "Debugging:"):
        assert section in text
    assert "[default: paper]" in text and "[default: 5; x>=1]" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_one_error_line_and_nothing_written(tmp_path, data_root):
    result = bench("run", "--dataset", "APY", "--row", "plain", "--device", "cuda",
                   *tiny(data_root, tmp_path / "results"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --device cuda") and result.stderr.count("\n") == 1
    assert not (tmp_path / "results").exists()


def _perf_run(path, iter_s):
    """A bench perf run file for APY: 10 steps of ``iter_s`` and a 5 s evaluation per epoch."""
    path.write_text(json.dumps({"env": {"device": "cpu", "name": "Test CPU"}, "datasets": [
        {"dataset": "APY", "steps": 10, "iter_s": iter_s, "eval_s": 5.0}]}))


def test_a_paper_profile_sweep_says_its_projected_wall_time_and_the_smoke_profile_first(
        tmp_path, data_root, monkeypatch):
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setenv("VSBOOST_REPORTS", str(reports))
    _perf_run(reports / "perf-cpu.json", iter_s=2.0)
    result = bench("sweep", "-d", "APY", "-r", "plain", "--seeds", "2", "--seeds-per-job", "1",
                   "--device", "cpu", "--data-root", data_root, "--results", tmp_path,
                   "--set", "gan_epochs=4", "--dry-run")
    assert result.exit_code == 0, result.output
    # 2 jobs x 4 epochs x (10 x 2 s + 5 s): 200 s; checkpoints not measured here.
    assert "projected wall time: 3.3 min for 2 jobs" in result.output
    assert "measured by bench perf on this kind of device" in result.output
    assert "`--profile smoke` tries the same pipeline" in result.output
    smoke = bench("sweep", "-d", "APY", "-r", "plain", "--seeds", "1", "--dry-run",
                  *tiny(data_root, tmp_path))
    assert "projected" not in smoke.output


def test_without_a_measurement_of_this_device_the_projection_says_it_is_an_estimate(
        tmp_path, monkeypatch):
    from bench.perf import forecast
    from bench.runner import Job

    _perf_run(tmp_path / "perf-cpu.json", iter_s=1.0)
    job = Job("APY", "plain", "paper", (("gan_epochs", "1"),), (0,), "", "", "", {})
    said = forecast.lines([job], "cuda", tmp_path)
    assert said[0].startswith("projected wall time: 15.0 s for 1 jobs")
    assert "ESTIMATE from another device's bench perf" in said[0]
    assert not any("smoke" in line for line in said)  # the hint is for CPUs
    (tmp_path / "perf-cpu.json").write_text("[1, 2]")  # not bench perf's
    assert "no bench perf measurement" in forecast.lines([job], "cpu", tmp_path)[0]
def test_a_sweep_refuses_rows_of_another_method_naming_the_fix(tmp_path, data_root):
    result = bench("sweep", "--method", "fclswgan", "-r", "full", "-d", "APY", "--seeds", "1",
                   "--data-root", data_root, "--results", tmp_path / "results")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "expected rows of fclswgan (fclswgan), found full of vsboost" in result.stderr
    assert "--method vsboost" in result.stderr and not (tmp_path / "results").exists()
