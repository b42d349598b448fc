"""Run ids, run states, atomic records, runs.csv and run locks (bench/store.py)."""

import csv
import json
import os

import pytest

from bench import store


def record(rid="APY-full-s0-abc-def", status="done", H=0.5, **extra):
    dataset, row, seed = rid.split("-")[:3]
    metrics = None if status != "done" else {
        "paper": {"U": H, "S": H, "H": H, "epoch": 2, "cls_epoch": 1},
        "last": {"U": H, "S": H, "H": H, "epoch": 2, "cls_epoch": 1},
        "czsl": {"paper": {"acc": H, "epoch": 2, "cls_epoch": 1},
                 "last": {"acc": H, "epoch": 2, "cls_epoch": 1}},
    }
    return {"schema": 1, "run_id": rid,
            "key": {"dataset": dataset, "row": row, "seed_index": int(seed[1:]), "seed": 1,
                    "config_hash": "abc", "data_fingerprint": "def"},
            "status": status, "synthetic": True, "profile": "smoke", "config": {},
            "metrics": metrics, "history": [], "sampler": {}, "error": None,
            "diverged_epoch": None, "provenance": {"device": "cpu", "wall_s": 1.0}, **extra}


def test_run_id_holds_the_key_and_no_path():
    rid = store.run_id("CUB", "full", 3, "0123456789ab", "fedcba9876543210")
    assert rid == "CUB-full-s3-0123456789ab-fedcba98"


def test_the_device_kind_enters_the_run_id_only_when_not_the_cpu():
    # CPU ids are those made before the device was part of the key, so CPU records stay valid.
    assert store.run_id("CUB", "full", 3, "0123456789ab", "fedcba9876543210", "cpu") == \
        "CUB-full-s3-0123456789ab-fedcba98"
    assert store.run_id("CUB", "full", 3, "0123456789ab", "fedcba9876543210", "cuda") == \
        "CUB-full-s3-0123456789ab-fedcba98-cuda"


@pytest.mark.parametrize("name", ["", "a/b", "../up", "_ckpt", ".hidden", " demo"])
def test_sweep_folder_refuses_names_that_are_not_one_plain_folder(tmp_path, name):
    with pytest.raises(store.BenchError, match="--name"):
        store.sweep_folder(tmp_path, name)


def test_status_follows_the_run_folder(tmp_path):
    run = tmp_path / "APY-full-s0-abc-def"
    assert store.status_of(run) == "not launched"
    run.mkdir()
    assert store.status_of(run) == "incomplete"
    for status in ("failed", "diverged", "done"):
        store.write_record(run, record(status=status))
        assert store.status_of(run) == status


def test_a_record_that_does_not_parse_counts_as_incomplete_and_stops_reports(tmp_path):
    run = tmp_path / "APY-full-s0-abc-def"
    run.mkdir()
    (run / store.RECORD).write_text('{"status": "done", "metr')
    assert store.status_of(run) == "incomplete"  # the sweep retrains it
    with pytest.raises(store.RecordError, match=r"APY-full-s0-abc-def/record\.json: .*fix: "):
        store.load_records(tmp_path)  # a report or check refuses instead of skipping it


def test_write_record_turns_non_finite_numbers_into_null(tmp_path):
    rec = record(status="diverged", history=[{"epoch": 1, "loss_d": float("nan"),
                                              "loss_g": float("inf")}])
    store.write_record(tmp_path, rec)
    text = (tmp_path / store.RECORD).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["history"][0] == {"epoch": 1, "loss_d": None, "loss_g": None}


def test_a_failed_write_leaves_the_previous_record_and_no_temp_file(tmp_path, monkeypatch):
    tmp_path = tmp_path / "APY-full-s0-abc-def"  # a record is read from the folder of its run id
    tmp_path.mkdir()
    store.write_record(tmp_path, record(H=0.25))

    def crash(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.write_record(tmp_path, record(H=0.75))
    assert store.read_record(tmp_path)["metrics"]["paper"]["H"] == 0.25
    assert sorted(p.name for p in tmp_path.iterdir()) == [store.RECORD]


def test_load_records_reads_run_folders_only_sorted_by_run_id(tmp_path):
    for rid in ("SUN-full-s0-abc-def", "APY-plain-s1-abc-def"):
        (tmp_path / rid).mkdir()
        store.write_record(tmp_path / rid, record(rid))
    (tmp_path / "CUB-full-s0-abc-def").mkdir()  # incomplete
    (tmp_path / store.CKPT_DIR).mkdir()
    store.write_record(tmp_path / store.CKPT_DIR, record("FLO-full-s0-abc-def"))
    assert [r["run_id"] for r in store.load_records(tmp_path)] == [
        "APY-plain-s1-abc-def", "SUN-full-s0-abc-def"]


def test_runs_csv_has_one_flat_row_per_record(tmp_path):
    for rid, status in (("APY-full-s0-abc-def", "done"), ("APY-full-s1-abc-def", "failed")):
        (tmp_path / rid).mkdir()
        store.write_record(tmp_path / rid, record(rid, status, error=None))
    path = store.write_runs_csv(tmp_path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["done", "failed"]
    assert rows[0]["paper_H"] == "0.5" and rows[0]["czsl_last_acc"] == "0.5"
    assert rows[1]["paper_H"] == ""
    assert list(rows[0])[:3] == ["run_id", "dataset", "row"]


def test_a_claimed_run_cannot_be_claimed_again_until_released(tmp_path):
    first = store.try_claim(tmp_path, "APY-full-s0-abc-def")
    assert first is not None
    assert store.try_claim(tmp_path, "APY-full-s0-abc-def") is None
    assert store.is_running(tmp_path, "APY-full-s0-abc-def")
    assert store.try_claim(tmp_path, "APY-full-s1-abc-def") is not None
    first.release()
    assert not store.is_running(tmp_path, "APY-full-s0-abc-def")


def test_check_writable_refuses_a_folder_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(store.BenchError, match="is a file"):
        store.check_writable(tmp_path / "file" / "results")
    store.check_writable(tmp_path / "new" / "results")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    tmp_path.joinpath("ro").mkdir(mode=0o500)
    with pytest.raises(store.BenchError, match="not writable"):
        store.check_writable(tmp_path / "ro" / "results")


def test_provenance_counts_only_code_changes_as_uncommitted(tmp_path, monkeypatch):
    import subprocess

    from bench import runner

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    for rel in ("vsboost/x.py", "results/demo/runs.csv", "reports/demo/table2.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    monkeypatch.setattr(runner, "SOURCE", tmp_path)
    runner._git.cache_clear()
    for rel in ("results/demo/runs.csv", "reports/demo/table2.md"):  # what a sweep writes
        (tmp_path / rel).write_text("b\n")
    assert runner._git()[1] == []
    runner._git.cache_clear()
    (tmp_path / "vsboost/x.py").write_text("b\n")
    assert runner._git()[1] == ["vsboost/x.py"]
    runner._git.cache_clear()
