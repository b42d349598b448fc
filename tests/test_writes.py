"""Writes never follow a planted symlink, never hang on a FIFO and never leave partial files
(issue 20, findings 2, 4 and 5): folders the suite writes into must be real folders, temporary
files are unique and removed on error, a full disk names the file, a report set is whole."""

# ruff: noqa: F811 - the results-folder fixtures of tests/test_untrusted.py, reused
from __future__ import annotations

import errno
import os

import pytest
import torch

from bench import reports, store
from tests.test_untrusted import bench, folder, one_error_line, run_args, sweep_folder  # noqa: F401
from vsboost.errors import UserError
from vsboost.files import atomic_path, atomic_write
from vsboost.train import _save


def test_a_symlink_at_the_old_checkpoint_temp_name_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    ckpt = tmp_path / "_ckpt" / "run.pt"
    ckpt.parent.mkdir()
    (ckpt.parent / "run.pt.tmp").symlink_to(victim)
    _save(ckpt, {"x": torch.zeros(2)})
    assert victim.read_text() == "precious"
    assert torch.load(ckpt, weights_only=True)["x"].shape == (2,)


def test_a_full_disk_names_the_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "run.pt"
    with pytest.raises(OSError) as err:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"part")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a full disk raises
    assert err.value.filename == str(target) and err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_leaves_the_previous_report_set_whole(tmp_path, monkeypatch):
    out = tmp_path / "out"
    reports._write_all(out, {"a.md": "old a", "b.md": "old b"})
    calls = []

    def fails_second(path, body):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return atomic_write(path, body)

    monkeypatch.setattr(reports, "atomic_write", fails_second)
    with pytest.raises(OSError):
        reports._write_all(out, {"a.md": "new a", "b.md": "new b"})
    assert sorted(p.name for p in out.iterdir()) == ["a.md", "b.md"]
    assert (out / "a.md").read_text() == "old a" and (out / "b.md").read_text() == "old b"


def test_a_fifo_as_log_txt_is_one_line_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / store.LOG)
    with pytest.raises(store.BenchError, match=r"log\.txt: expected a regular log file"):
        store.append_log(tmp_path, "start")


@pytest.mark.parametrize("planted", [store.LOCK_DIR, store.CKPT_DIR, "run folder"])
def test_a_symlinked_folder_in_a_results_folder_is_refused_with_one_line(
        folder, data_root, tmp_path, planted):
    import shutil

    outside = tmp_path / "outside"
    outside.mkdir()
    (run,) = store.run_dirs(folder)
    (run / store.RECORD).unlink()  # the run is retried
    target = run if planted == "run folder" else folder / planted
    shutil.rmtree(target, ignore_errors=True)
    target.symlink_to(outside, target_is_directory=True)
    line = one_error_line(bench(*run_args(data_root, folder.parent)))
    assert "expected a real folder to write into, found a symlink" in line
    assert list(outside.iterdir()) == []


def test_a_symlinked_reference_folder_is_refused(folder, tmp_path):
    import shutil

    outside = tmp_path / "outside"
    shutil.move(folder / store.REFERENCE_DIR, outside)
    (folder / store.REFERENCE_DIR).symlink_to(outside, target_is_directory=True)
    with pytest.raises(UserError, match="expected a real folder"):
        store.write_reference(folder, "APY", "0" * 16, {"U": 0.1, "S": 0.1, "H": 0.1})
    assert len(list(outside.iterdir())) == 1
