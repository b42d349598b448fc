"""Files from elsewhere (results folders, checkpoints, locks, archives, data) are checked, never
trusted: each crafted input of issue 13 ends in one line naming the file, or is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsboost.config import make_config
from vsboost.data import load
from vsboost.train import CheckpointError, train

FAST = {"hidden": 32, "enc_dim": 32, "n_way": 8, "k_shot": 8, "steps_per_epoch": 3,
        "syn_num": 10, "cls_epochs": 2, "eval_every": 1, "checkpoint_every": 1}


@pytest.fixture(scope="module")
def apy(data_root):
    return load(data_root, "APY")


class _Touch:
    """A pickle payload that creates a file when unpickled: harmless, but it proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ===== finding 1: checkpoints load with pickle disabled =====

def test_a_checkpoint_carrying_a_pickle_payload_does_not_run_it(apy, tmp_path):
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2})
    marker, ckpt = tmp_path / "fired", tmp_path / "run.pt"
    torch.save({"format": 2, "seeds": [0], "payload": _Touch(marker)}, ckpt)
    with pytest.raises(CheckpointError, match=r"run\.pt: .*pickle disabled.*fix: delete it"):
        train(apy, cfg, [0], checkpoint=ckpt)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"\x80\x02}q\x00."])
def test_a_corrupt_checkpoint_is_one_line_naming_the_file_and_the_fix(apy, tmp_path, content):
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2})
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        train(apy, cfg, [0], checkpoint=ckpt)
    message = str(err.value)
    assert str(ckpt) in message and "fix: delete it" in message and "\n" not in message


def test_a_genuine_checkpoint_loads_with_pickle_disabled_and_resumes(apy, tmp_path):
    cfg = make_config("APY", "plain", "smoke", {**FAST, "gan_epochs": 2})
    whole = train(apy, cfg, [0])[0]
    ckpt = tmp_path / "run.pt"

    def stop_after_one(epoch, total):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(apy, cfg, [0], checkpoint=ckpt, progress=stop_after_one)
    torch.load(ckpt, weights_only=True)  # what the trainer does: raises if it needed pickle
    assert train(apy, cfg, [0], checkpoint=ckpt)[0].metrics == whole.metrics


# ===== findings 2, 6, 7, 8, 10: results folders from elsewhere =====

TINY = ["gan_epochs=1", "steps_per_epoch=2", "hidden=32", "enc_dim=32", "syn_num=10",
        "cls_epochs=1", "n_way=2", "k_shot=8"]


def bench(*args):
    from click.testing import CliRunner

    from bench.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def run_args(data_root, results, *extra):
    sets = [x for kv in TINY for x in ("--set", kv)]
    return ["run", "-d", "APY", "-r", "plain", "--profile", "smoke", *sets,
            "--data-root", data_root, "--results", results, "--name", "demo", *extra]


@pytest.fixture(scope="module")
def sweep_folder(data_root, tmp_path_factory):
    """One genuine run's folder, copied fresh into each test that tampers with it."""
    results = tmp_path_factory.mktemp("results")
    done = bench(*run_args(data_root, results))
    assert done.exit_code == 0, done.output
    return results / "demo"


@pytest.fixture
def folder(sweep_folder, tmp_path):
    import shutil

    copy = tmp_path / "results" / "demo"
    shutil.copytree(sweep_folder, copy, symlinks=True)
    return copy


def tamper(folder, change):
    import json

    from bench import store

    (run,) = store.run_dirs(folder)
    record = json.loads((run / store.RECORD).read_text())
    change(record)
    (run / store.RECORD).write_text(json.dumps(record))
    return run


def _set(path, value):
    def change(record):
        *parents, last = path.split(".")
        node = record
        for p in parents:
            node = node[p]
        node[last] = value
    return change


@pytest.mark.parametrize(("path", "value", "field"), [
    ("key.seed_index", 10**9, "key.seed_index"),  # finding 2: a report the size of memory
    ("key.seed_index", "0", "key.seed_index"),
    ("key.dataset", "../../x", "key.dataset"),  # went into report file names
    ("run_id", "../../../outside/x", "run_id"),  # was used as a path
    ("metrics.paper.H", 1e308, "metrics.paper.H"),  # showed as inf, passed check --baseline
    ("metrics.paper.U", 7.5, "metrics.paper.U"),  # showed as 750.0
    ("metrics.last.S", None, "metrics.last.S"),
    ("history", {}, "history"),
    ("status", "ok", "status"),
    ("synthetic", "yes", "synthetic"),
])
def test_a_record_breaking_the_schema_stops_report_and_check_with_one_line(folder, tmp_path,
                                                                           path, value, field):
    tamper(folder, _set(path, value))
    out = tmp_path / "out"
    line = one_error_line(bench("report", "--results", folder.parent, "--name", "demo",
                                "--out", out))
    assert "record.json" in line and f"field '{field}'" in line and "fix:" in line
    assert not out.exists()
    line = one_error_line(bench("check", "--results", folder.parent, "--name", "demo"))
    assert f"field '{field}'" in line


def test_a_copied_run_folder_is_refused_instead_of_counted_twice(folder, tmp_path):
    import shutil

    from bench import store

    (run,) = store.run_dirs(folder)
    shutil.copytree(run, folder / (run.name + "-copy"))
    line = one_error_line(bench("report", "--results", folder.parent, "--name", "demo",
                                "--out", tmp_path / "out"))
    assert "-copy/record.json" in line and "field 'run_id'" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink"])
def test_a_record_json_that_is_not_a_regular_file_is_one_line_and_no_hang(folder, tmp_path,
                                                                          kind):
    import os

    from bench import store

    (run,) = store.run_dirs(folder)
    (run / store.RECORD).unlink()
    if kind == "folder":
        (run / store.RECORD).mkdir()
    elif kind == "fifo":
        os.mkfifo(run / store.RECORD)
    else:
        (tmp_path / "elsewhere.json").write_text("{}")
        (run / store.RECORD).symlink_to(tmp_path / "elsewhere.json")
    line = one_error_line(bench("report", "--results", folder.parent, "--name", "demo",
                                "--out", tmp_path / "out"))
    assert "expected a regular file" in line


def test_a_runs_csv_cell_that_looks_like_a_formula_is_neutralised(folder):
    import csv

    from bench import store

    tamper(folder, _set("error", '=HYPERLINK("http://x","y")'))
    with open(store.write_runs_csv(folder), newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["error"].startswith("'=")


def test_log_txt_planted_as_a_symlink_is_not_followed(folder, tmp_path, data_root):
    from bench import store

    (run,) = store.run_dirs(folder)
    (run / store.RECORD).unlink()  # so the run is retried and appends to its log
    (run / store.LOG).unlink()
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    (run / store.LOG).symlink_to(outside)
    line = one_error_line(bench(*run_args(data_root, folder.parent)))
    assert "log.txt: expected a regular log file, found a symlink" in line
    assert outside.read_text() == ""


def test_a_full_disk_after_training_is_one_line_and_keeps_the_checkpoint(data_root, tmp_path,
                                                                         monkeypatch):
    import errno

    from bench import store

    write = store.atomic_write

    def full_after_training(path, data):
        if path.name == store.RECORD:  # the disk fills up while the training runs
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write(path, data)

    with monkeypatch.context() as m:
        m.setattr(store, "atomic_write", full_after_training)
        line = one_error_line(bench(*run_args(data_root, tmp_path, "--set", "checkpoint_every=5")))
    assert "No space left on device" in line and "checkpoint" in line
    (ckpt,) = (tmp_path / "demo" / store.CKPT_DIR).glob("*.pt")
    import torch

    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # the whole training, kept
    again = bench(*run_args(data_root, tmp_path))
    assert again.exit_code == 0, again.output
    assert not ckpt.exists()


def test_a_read_only_report_folder_is_one_line(folder, tmp_path, monkeypatch):
    import errno

    from bench import reports

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(reports, "atomic_write", read_only)
    line = one_error_line(bench("report", "--results", folder.parent, "--name", "demo",
                                "--out", tmp_path / "out"))
    assert "Read-only file system" in line


def test_a_300_character_name_is_one_line_and_nothing_written(data_root, tmp_path):
    args = run_args(data_root, tmp_path)
    args[args.index("demo")] = "n" * 300
    line = one_error_line(bench(*args))
    assert "--name" in line and "at most" in line
    assert not any(tmp_path.iterdir())


def test_an_infinite_override_is_refused_with_one_line(data_root, tmp_path):
    line = one_error_line(bench(*run_args(data_root, tmp_path, "--set", "tau=inf")))
    assert "'tau'" in line
    assert not any(tmp_path.iterdir())


def test_a_second_run_of_a_run_in_training_names_no_record_that_does_not_exist(
        sweep_folder, data_root, tmp_path):
    from bench import store

    results = tmp_path / "results"
    (rid,) = [p.name for p in store.run_dirs(sweep_folder)]
    lock = store.try_claim(results / "demo", rid)  # another process training it
    try:
        result = bench(*run_args(data_root, results))
    finally:
        lock.release()
    assert "record: " not in result.output
    assert "held by another process" in result.output


def test_every_fetch_hint_is_a_command_the_cli_accepts():
    import re
    from pathlib import Path

    from bench.commands import data

    fetch = data.commands["fetch"]
    sources = [*Path("bench").glob("*.py"), *Path("vsboost").glob("*.py")]
    hints = {m.group(1).replace("{dataset}", "APY").replace("{rel.split('/')[0]}", "APY")
             for p in sources for m in re.finditer(r"`bench data fetch([^`]*)`", p.read_text())}
    assert hints
    for hint in hints:
        fetch.make_context("fetch", hint.split())  # raises a usage error if it does not parse


# ===== findings 3, 4, 9: locks and archives from elsewhere =====

def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


PINNED = b"pinned bytes"


def _lock(tmp_path, **files):
    """A lock of APY: a pinned att_splits.mat, an unpinned res101.mat, plus ``files``."""
    import json

    lock = {"schema": 1,
            "archives": {"xlsa17.zip": {"url": "https://example.invalid/xlsa17.zip",
                                        "size": None, "sha256": None, "provenance": "test"}},
            "files": {"APY/att_splits.mat": {"archive": "xlsa17.zip", "required": True,
                                             "size": len(PINNED), "sha256": _sha(PINNED)},
                      "APY/res101.mat": {"archive": "xlsa17.zip", "required": True,
                                         "size": None, "sha256": None},
                      **files}}
    path = tmp_path / "datasets.lock"
    path.write_text(json.dumps(lock))
    return path


def _zip(path, members: dict[str, bytes]):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr("xlsa17/data/" + name, data)
    return path


def _fetch(tmp_path, lock, archive, root):
    """`bench data fetch -d APY` with the archive already downloaded (no network)."""
    import shutil

    (tmp_path / "archives").mkdir(exist_ok=True)
    shutil.copyfile(archive, tmp_path / "archives" / "xlsa17.zip")
    return bench("data", "fetch", "-d", "APY", "--data-root", root, "--lock", lock,
                 "--archives", tmp_path / "archives")


@pytest.mark.parametrize("key", ["APY/../../escape.txt", "/etc/hostname", "APY/sub/x.mat",
                                 "XYZ/res101.mat", "APY/..", "APY/.hidden"])
def test_a_lock_key_outside_the_data_root_is_refused_before_any_use(tmp_path, key):
    entry = {"archive": "xlsa17.zip", "required": True, "size": 3, "sha256": _sha(b"abc")}
    lock = _lock(tmp_path, **{key: entry})
    archive = _zip(tmp_path / "src.zip", {"APY/att_splits.mat": PINNED, "APY/res101.mat": b"x",
                                          "APY/../../escape.txt": b"abc"})
    root = tmp_path / "data" / "root"
    line = one_error_line(_fetch(tmp_path, lock, archive, root))
    assert "datasets.lock: files: expected keys <DATASET>/<file name>" in line
    assert not (tmp_path / "data" / "escape.txt").exists() and not root.exists()
    line = one_error_line(bench("data", "verify", "--data-root", root, "--lock", lock))
    assert "expected keys" in line


def test_a_zip_bomb_is_not_unpacked_and_leaves_nothing_in_the_data_root(tmp_path, monkeypatch):
    from bench import datasets

    monkeypatch.setattr(datasets, "MAX_MEMBER", 1 << 16)  # the bound of a file without a pin
    lock = _lock(tmp_path)
    archive = _zip(tmp_path / "src.zip", {"APY/att_splits.mat": bytes(10 << 20),  # pinned: 12 B
                                          "APY/res101.mat": bytes(1 << 20)})  # unpinned: bound
    assert archive.stat().st_size < 100_000
    root = tmp_path / "data"
    line = one_error_line(_fetch(tmp_path, lock, archive, root))
    assert "att_splits.mat: unpacks to more than 12 bytes" in line
    assert "res101.mat: unpacks to more than 65,536 bytes" in line
    assert [p for p in root.rglob("*") if p.is_file()] == []  # nothing unverified, no staging


def test_an_unpacked_file_that_contradicts_its_pin_is_not_moved_into_place(tmp_path):
    lock = _lock(tmp_path)
    archive = _zip(tmp_path / "src.zip", {"APY/att_splits.mat": b"tampered!!!!",
                                          "APY/res101.mat": b"first use"})
    root = tmp_path / "data"
    line = one_error_line(_fetch(tmp_path, lock, archive, root))
    assert "att_splits.mat: sha256" in line and "not moved into" in line
    assert not (root / "APY" / "att_splits.mat").exists()
    # Nor the unpinned one (issue 20): an archive that contradicted a pin vouches for nothing.
    assert not (root / "APY" / "res101.mat").exists()


def test_lock_refuses_to_pin_a_file_whose_size_contradicts_the_pinned_size(tmp_path):
    entry = {"archive": "xlsa17.zip", "required": False, "size": 5, "sha256": None}
    lock = _lock(tmp_path, **{"APY/testclasses.txt": entry})
    root = tmp_path / "data"
    (root / "APY").mkdir(parents=True)
    (root / "APY" / "testclasses.txt").write_bytes(b"not five bytes")
    before = lock.read_bytes()
    line = one_error_line(bench("data", "lock", "-d", "APY", "--data-root", root, "--lock", lock,
                                "--archives", tmp_path / "archives"))
    assert "pins 5 bytes" in line
    assert lock.read_bytes() == before


@pytest.mark.parametrize(("text", "field"), [
    ("[]", "(top level)"),
    ('{"schema": 1, "files": {}}', "archives"),
    ('{"schema": 1, "archives": {}, "files": {"APY/res101.mat": {"archive": "other.zip"}}}',
     "files.APY/res101.mat.archive"),
    ('{"schema": 1, "archives": {"a.zip": {"url": "https://x/a.zip", "size": "12"}}, '
     '"files": {}}', "archives.a.zip.size"),
    ('{"schema": 1, "archives": {"a.zip": {"url": "https://x/a.zip", "sha256": 12}}, '
     '"files": {}}', "archives.a.zip.sha256"),
    ('{"schema": 1, "archives": {"a.zip": {"url": "http://x/a.zip"}}, "files": {}}',
     "archives.a.zip.url"),
    ('{"schema": 1, "archives": {}, "files": {}', "JSONDecodeError"),
])
def test_a_malformed_lock_is_one_line_naming_the_field(tmp_path, text, field):
    lock = tmp_path / "datasets.lock"
    lock.write_text(text)
    line = one_error_line(bench("data", "verify", "--data-root", tmp_path / "d", "--lock", lock))
    assert str(lock) in line and field in line and "fix:" in line


def test_the_checked_in_lock_holds_its_own_schema_with_https_and_no_invented_archive_hash():
    import json

    from bench import datasets

    lock = datasets.read_lock("datasets.lock")
    for a in json.loads(open("datasets.lock").read())["archives"].values():
        assert a["url"].startswith("https://")
        assert a["sha256"] is None and "trust on first" in a["provenance"]
    assert lock["files"]


# ===== finding 5: hostile data files =====

def _tiny_root(tmp_path, **changes):
    from tests.test_data import broken

    return broken(tmp_path, **changes)


def test_a_feature_finite_in_float64_but_not_in_float32_is_a_data_error(tmp_path):
    from tests.test_data import tiny_files
    from vsboost.data import DataError

    features = tiny_files()["res101.mat"]["features"].astype(np.float64)
    features[0, 0] = 1e39  # float32 tops out at 3.4e38: it would train as inf, "diverged"
    root = _tiny_root(tmp_path, file="res101.mat", features=features)
    with pytest.raises(DataError, match=r"res101\.mat: key 'features': expected finite"):
        load(root, "APY")


def test_an_att_finite_in_float64_but_not_in_float32_is_a_data_error(tmp_path):
    from tests.test_data import tiny_files
    from vsboost.data import DataError

    att = tiny_files()["att_splits.mat"]["att"]
    att[0, 0] = 1e300
    root = _tiny_root(tmp_path, file="att_splits.mat", att=att)
    with pytest.raises(DataError, match=r"att_splits\.mat: key 'att': expected finite"):
        load(root, "APY")


def test_a_variable_the_loader_does_not_need_is_never_read(tmp_path, monkeypatch):
    from vsboost import matfile

    # 8 MB of train_loc over a 1 MB bound: loading works only if it is skipped, never decompressed
    monkeypatch.setattr(matfile, "MAX_ARRAY_BYTES", 1 << 20)
    root = _tiny_root(tmp_path, file="att_splits.mat", train_loc=np.zeros((1000, 1000)))
    load(root, "APY")


def test_an_oversized_needed_array_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    from vsboost import data as vdata
    from vsboost import matfile

    root = _tiny_root(tmp_path, file="att_splits.mat")
    monkeypatch.setattr(matfile, "MAX_ARRAY_BYTES", 1000)  # features: 2048 x 20 x 8 bytes
    with pytest.raises(vdata.DataError, match=r"res101\.mat: key 'features': expected an array "
                                              r"of at most 1,000 bytes, found 327,680"):
        load(root, "APY")


def test_a_file_is_hashed_and_compared_with_its_pin_before_it_is_parsed(tmp_path, monkeypatch):
    import scipy.io

    from vsboost.data import DataError

    root = _tiny_root(tmp_path, file="att_splits.mat")
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: pytest.fail("parsed before hash"))
    monkeypatch.setattr(scipy.io, "whosmat", lambda *a, **k: pytest.fail("parsed before hash"))
    with pytest.raises(DataError, match=r"res101\.mat: sha256 .* was expected .*not parsed"):
        load(root, "APY", pins={"res101.mat": "0" * 64})


def test_a_data_file_changed_after_planning_is_refused_before_it_is_parsed(tmp_path,
                                                                          monkeypatch):
    import json

    import scipy.io

    from bench import runner, store
    from bench.sweep import make_plan
    from tests.test_data import write_tiny

    root = write_tiny(tmp_path / "data")  # no synthetic marker: its files are hashed in the plan
    plan = make_plan(["APY"], ["plain"], [0], results=tmp_path / "results", name="demo",
                     profile="smoke", overrides=[kv.split("=") for kv in TINY], data_root=root,
                     synthetic=False, data_label="mine")
    (root / "APY" / "res101.mat").write_bytes(b"swapped after planning")
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: pytest.fail("parsed before hash"))
    assert runner.run_job(plan.jobs[0]) == {0: "failed"}
    (run,) = store.run_dirs(plan.folder)
    error = json.loads((run / store.RECORD).read_text())["error"]
    assert "res101.mat: sha256" in error and "not parsed" in error


@pytest.mark.parametrize("command", ["synthetic root", "fetch root"])
def test_a_read_only_data_folder_is_one_line(tmp_path, monkeypatch, command):
    import errno
    import pathlib

    mkdir = pathlib.Path.mkdir
    read_only = tmp_path / "ro"

    def refuse(self, *args, **kwargs):
        if self.is_relative_to(read_only):  # root writes through permission bits: simulate
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    if command == "synthetic root":
        args = run_args(read_only / "synthetic", tmp_path / "results", "--synthetic")
    else:
        lock = _lock(tmp_path)
        archive = _zip(tmp_path / "src.zip", {"APY/att_splits.mat": PINNED})
        (tmp_path / "archives").mkdir()
        (tmp_path / "archives" / "xlsa17.zip").write_bytes(archive.read_bytes())
        args = ["data", "fetch", "-d", "APY", "--data-root", read_only / "data", "--lock", lock,
                "--archives", tmp_path / "archives"]
    line = one_error_line(bench(*args))
    assert "Permission denied" in line and str(read_only) in line


def test_bench_run_with_a_planted_pickle_checkpoint_runs_no_code_and_names_the_file(
        sweep_folder, data_root, tmp_path):
    import shutil

    from bench import store

    results = tmp_path / "results"
    shutil.copytree(sweep_folder, results / "demo")
    (run,) = store.run_dirs(results / "demo")
    (run / store.RECORD).unlink()  # the run is retried, from the checkpoint at its known path
    ds, row, _, config_hash, fp8 = run.name.split("-")
    ckpt = results / "demo" / store.CKPT_DIR / f"{ds}-{row}-{config_hash}-{fp8}-s0.pt"
    marker = tmp_path / "fired"
    torch.save({"format": 2, "payload": _Touch(marker)}, ckpt)
    result = bench(*run_args(data_root, results))
    assert result.exit_code == 1 and not marker.exists()
    assert f"{ckpt}: expected a checkpoint of this trainer" in result.output
    assert "fix: delete it" in result.output


@pytest.mark.parametrize("kind", ["fifo", "out of range"])
def test_a_reference_record_from_elsewhere_is_checked_like_a_run_record(folder, tmp_path, kind):
    import json
    import os

    from bench import store

    (path,) = (folder / store.REFERENCE_DIR).glob("*.json")
    if kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        body = json.loads(path.read_text())
        body["metrics"]["H"] = 7.5
        path.write_text(json.dumps(body))
    line = one_error_line(bench("report", "--results", folder.parent, "--name", "demo",
                                "--out", tmp_path / "out"))
    assert path.name in line and ("regular file" in line or "metrics.H" in line)
    assert not (tmp_path / "out").exists()
