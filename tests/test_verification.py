"""Real-looking xlsa17 files against a data lock: verified runs compare with the paper, files that
do not match the lock are refused or run as labelled custom data, changed settings are recorded
and refused by `bench check`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from bench import datasets, store
from bench.cli import cli
from vsboost import config, synthetic
from vsboost.data import CLASS_LISTS, data_files

# The paper profile shrunk to seconds for these tests: patched into the registry, so a run with
# no --set has no deviations, as a real paper run would.
TINY_PAPER = {"gan_epochs": 1, "steps_per_epoch": 1, "hidden": 32, "enc_dim": 32, "syn_num": 5,
              "cls_epochs": 1, "n_way": 2, "k_shot": 4}


@pytest.fixture(scope="module")
def real_looking(tmp_path_factory):
    """An APY folder in the xlsa17 format without the synthetic marker, and its sha256s."""
    root = tmp_path_factory.mktemp("xlsa17")
    synthetic.write(root, ["APY"], scale=0.05, seed=0)
    for rel in data_files("APY"):
        content = {k: v for k, v in scipy.io.loadmat(root / rel).items()
                   if not k.startswith("__") and k != "synthetic"}
        scipy.io.savemat(root / rel, content)
    # the proposed split's class lists are read too (the val protocol), so pinned as well
    read = [*data_files("APY"), *(f"APY/{name}" for name in CLASS_LISTS)]
    return root, {rel: datasets.sha256(root / rel) for rel in read}


@pytest.fixture
def paper_tiny(monkeypatch):
    for key, value in TINY_PAPER.items():
        table = config.PER_DATASET["APY"] if key in config.PER_DATASET["APY"] else config.COMMON
        monkeypatch.setitem(table, key, (value, "test"))


def lock_file(path, pins: dict[str, str]):
    files = {rel: {"archive": "xlsa17.zip", "required": True, "size": None, "sha256": digest}
             for rel, digest in pins.items()}
    archives = {"xlsa17.zip": {"url": "https://example.invalid/xlsa17.zip", "sha256": None}}
    path.write_text(json.dumps({"schema": 1, "archives": archives, "files": files}))
    return path


def bench(*args, lock):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"VSBOOST_LOCK": str(lock)})


def run_apy(root, results, lock, *extra):
    return bench("run", "--dataset", "APY", "--row", "full", "--profile", "paper",
                 "--data-root", root, "--results", results, "--device", "cpu", *extra, lock=lock)


def test_verified_files_are_recorded_and_compared_with_the_paper(tmp_path, real_looking,
                                                                  paper_tiny):
    root, pins = real_looking
    lock = lock_file(tmp_path / "test.lock", pins)
    result = run_apy(root, tmp_path / "results", lock, "--name", "pinned")
    assert result.exit_code == 0, result.output
    (record,) = store.load_records(tmp_path / "results" / "pinned")
    assert record["data"]["kind"] == "real" and record["deviations"] == {}
    assert {rel: f["status"] for rel, f in record["data"]["files"].items()} == {
        rel: "verified" for rel in pins}
    checked = bench("check", "--results", tmp_path / "results", "--name", "pinned", lock=lock)
    assert checked.exit_code in (0, 1), checked.output  # compared: a verdict, not a refusal
    assert "| Table 2 | APY" in checked.output


def test_an_unpinned_lock_entry_is_trusted_on_first_use_and_says_so(tmp_path, real_looking,
                                                                     paper_tiny):
    root, pins = real_looking
    lock = lock_file(tmp_path / "test.lock", dict.fromkeys(pins))
    assert run_apy(root, tmp_path / "results", lock, "--name", "tofu").exit_code == 0
    (record,) = store.load_records(tmp_path / "results" / "tofu")
    assert {f["status"] for f in record["data"]["files"].values()} == {"unpinned"}


def test_files_that_differ_from_the_lock_are_refused_in_one_line(tmp_path, real_looking,
                                                                 paper_tiny):
    root, pins = real_looking
    wrong = {**pins, "APY/att_splits.mat": "0" * 64}
    result = run_apy(root, tmp_path / "results", lock_file(tmp_path / "test.lock", wrong))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "APY/att_splits.mat" in line and pins["APY/att_splits.mat"] in line
    assert "0" * 64 in line and "--data-label" in line
    assert not (tmp_path / "results").exists()


def test_labelled_custom_data_runs_and_is_never_compared_with_the_paper(tmp_path, real_looking,
                                                                        paper_tiny):
    root, pins = real_looking
    lock = lock_file(tmp_path / "test.lock", {**pins, "APY/att_splits.mat": "0" * 64})
    result = run_apy(root, tmp_path / "results", lock, "--data-label", "mine")
    assert result.exit_code == 0, result.output
    (record,) = store.load_records(tmp_path / "results" / "paper-custom-mine")
    assert record["data"]["kind"] == "custom" and record["data"]["label"] == "mine"
    assert record["data"]["files"]["APY/att_splits.mat"]["status"] == "mismatch"
    checked = bench("check", "--results", tmp_path / "results", "--name", "paper-custom-mine",
                    lock=lock)
    assert checked.exit_code == 2
    assert "CUSTOM data 'mine'" in checked.output and len(checked.output.splitlines()) == 1


def test_overrides_are_recorded_as_deviations_and_refused_by_the_paper_check(
        tmp_path, real_looking, paper_tiny):
    root, pins = real_looking
    lock = lock_file(tmp_path / "test.lock", pins)
    result = run_apy(root, tmp_path / "results", lock, "--set", "hidden=16", "--name", "changed")
    assert result.exit_code == 0, result.output
    (record,) = store.load_records(tmp_path / "results" / "changed")
    assert record["deviations"] == {"hidden": {"value": 16, "default": 32}}
    checked = bench("check", "--results", tmp_path / "results", "--name", "changed", lock=lock)
    assert checked.exit_code == 2 and len(checked.output.splitlines()) == 1
    assert "changed settings" in checked.output and "--allow-deviations" in checked.output
    allowed = bench("check", "--results", tmp_path / "results", "--name", "changed",
                    "--allow-deviations", lock=lock)
    assert allowed.exit_code in (0, 1) and "† changed: hidden=16 (default 32)" in allowed.output


def test_the_record_checksums_are_those_of_the_files_read(real_looking):
    root, pins = real_looking
    lock = {"files": {rel: {"sha256": digest} for rel, digest in pins.items()}}
    names = {rel.split("/")[1]: digest for rel, digest in pins.items()}
    statuses = datasets.file_statuses(lock, "APY", names)
    assert {rel: f["sha256"] for rel, f in statuses.items()} == pins
    assert np.all([f["status"] == "verified" for f in statuses.values()])
