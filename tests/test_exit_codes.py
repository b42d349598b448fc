"""Exit codes: a wrong setting is exit 2 at plan time (also with --debug), a held run exit 1 from
every command, the same for `python -m vsboost`."""

import json

import pytest
from click.testing import CliRunner

from bench import store
from bench import sweep as sweeps
from bench.cli import cli
from vsboost.__main__ import main as vsboost_main

TINY = ["gan_epochs=1", "steps_per_epoch=1", "hidden=16", "enc_dim=16", "syn_num=5",
        "cls_epochs=1", "n_way=2", "k_shot=4"]


def tiny(data_root, results, *extra):
    sets = [x for kv in [*TINY, *extra] for x in ("--set", kv)]
    return ["--profile", "smoke", *sets, "--data-root", str(data_root), "--results",
            str(results), "--name", "x"]


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_more_ways_than_seen_classes_is_refused_at_plan_time_with_exit_2(tmp_path, data_root,
                                                                         debug):
    result = CliRunner().invoke(cli, ["sweep", "-d", "APY", "-r", "plain", "--seeds", "1",
                                      *tiny(data_root, tmp_path, "n_way=100"), *debug])
    assert result.exit_code == 2, result.output
    assert "config key 'n_way': expected <= " in result.output
    assert not list(tmp_path.rglob(store.RECORD))  # no failed record to retry


def test_python_m_vsboost_refuses_more_ways_than_classes_in_one_line(data_root, capsys):
    code = vsboost_main(["--dataset", "APY", "--data-root", str(data_root), "--set", "n_way=100"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: config key 'n_way'") and "Traceback" not in err


def test_debug_shows_the_traceback_but_keeps_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--results", str(tmp_path), "--name", "nope",
                                      "--debug"])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_a_run_held_by_another_process_exits_1_from_run_and_sweep(tmp_path, data_root):
    args = tiny(data_root, tmp_path)
    plan = sweeps.make_plan(["APY"], ["plain"], [0], results=tmp_path, name="x",
                            profile="smoke", overrides=[kv.split("=") for kv in TINY],
                            data_root=data_root)
    folder = plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    lock = store.try_claim(folder, plan.cells[0].run_id)
    try:
        run = CliRunner().invoke(cli, ["run", "-d", "APY", "-r", "plain", *args])
        sweep = CliRunner().invoke(cli, ["sweep", "-d", "APY", "-r", "plain", "--seeds", "1",
                                         *args])
    finally:
        lock.release()
    assert (run.exit_code, sweep.exit_code) == (1, 1), run.output + sweep.output
    assert "held by another process" in sweep.output
    assert not (folder / plan.cells[0].run_id / store.RECORD).exists()


def test_synthetic_records_hold_the_sha256_of_every_file_read(tmp_path, data_root):
    result = CliRunner().invoke(cli, ["run", "-d", "APY", "-r", "plain", *tiny(data_root,
                                                                             tmp_path)])
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.rglob(store.RECORD)
    files = json.loads(path.read_text())["data"]["files"]
    assert set(files) == {"APY/res101.mat", "APY/att_splits.mat", "APY/trainclasses1.txt",
                          "APY/valclasses1.txt"}
    assert {f["status"] for f in files.values()} == {"synthetic"}
    assert all(len(f["sha256"]) == 64 for f in files.values())
