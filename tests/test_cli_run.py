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
    (["--dataset", "APY", "--row", "best"], "expected one of plain, sml, rml, full, found best"),
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
