"""Pinned data: the lock file, verify, lock (trust on first use), fetch, Table 1 statistics."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from bench import datasets, paper
from bench.cli import cli
from vsboost.data import data_files

REPO = Path(__file__).resolve().parents[1]
REAL_META = Path(os.environ.get("VSBOOST_REAL_META", REPO.parent / "shared" / "real-data"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tiny(tmp_path):
    """A lock of one dataset with a pinned file, an unpinned file and an optional file."""
    files = {"APY/att_splits.mat": b"pinned bytes",
             "APY/res101.mat": b"MATLAB 5.0 MAT-file, unpinned",
             "APY/testclasses.txt": b"aeroplane\n"}
    lock = {"about": "test", "schema": 1,
            "archives": {"xlsa17.zip": {"url": "https://example.invalid/xlsa17.zip",
                                        "size": None, "sha256": None, "provenance": "test"}},
            "files": {
                "APY/att_splits.mat": {"archive": "xlsa17.zip", "required": True,
                                       "size": len(files["APY/att_splits.mat"]),
                                       "sha256": sha(files["APY/att_splits.mat"]),
                                       "provenance": "pinned"},
                "APY/res101.mat": {"archive": "xlsa17.zip", "required": True, "size": None,
                                   "sha256": None, "provenance": "tofu"},
                "APY/testclasses.txt": {"archive": "xlsa17.zip", "required": False,
                                        "size": len(files["APY/testclasses.txt"]),
                                        "sha256": sha(files["APY/testclasses.txt"]),
                                        "provenance": "pinned"}}}
    lock_path = tmp_path / "datasets.lock"
    lock_path.write_text(json.dumps(lock))
    return lock_path, files, tmp_path / "data"


def put(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def errors(found) -> list[str]:
    return [f.message for f in found if f.error]


# ===== the checked-in lock =====

def test_lock_pins_the_known_hashes_and_leaves_resaved_copies_unpinned():
    lock = datasets.read_lock()
    files = lock["files"]
    sums = {"APY/att_splits.mat": "737bbff19a338b2f", "AWA2/att_splits.mat": "dfe0e4f26ef5debaa",
            "FLO/att_splits.mat": "f7c2841a236b54c7", "SUN/att_splits.mat": "90dcb2a60704ce11"}
    for rel, prefix in sums.items():
        assert files[rel]["sha256"].startswith(prefix)
    assert files["APY/res101.mat"]["size"] == 129_153_547  # docs/data.md
    assert files["AWA2/res101.mat"]["size"] == 310_966_408
    for rel in ("CUB/att_splits.mat", "CUB/sent_splits.mat"):
        assert files[rel]["sha256"] is None and "RE-SAVED" in files[rel]["provenance"]


def test_lock_lists_every_file_the_loader_reads_as_required():
    lock = datasets.read_lock()
    for ds in paper.TABLE1:
        for rel in data_files(ds):
            entry = lock["files"][rel]
            assert entry["required"] and entry["archive"] in lock["archives"]


@pytest.mark.skipif(not REAL_META.is_dir(), reason="real metadata (VSBOOST_REAL_META) absent")
def test_lock_agrees_with_the_shared_real_metadata_where_pinned():
    lock = datasets.read_lock()
    checked = 0
    for rel, entry in lock["files"].items():
        if entry["sha256"] and (REAL_META / rel).is_file():
            assert datasets.sha256(REAL_META / rel) == entry["sha256"], rel
            assert (REAL_META / rel).stat().st_size == entry["size"], rel
            checked += 1
    assert checked >= 30


# ===== verify =====

def test_verify_names_each_missing_file_and_how_to_get_it(tiny):
    lock_path, _, root = tiny
    found = datasets.verify(root, ["APY"], datasets.read_lock(lock_path))
    missing = errors(found)
    assert len(missing) == 2  # the two required files; the optional one is a note
    assert all("missing" in m and "bench data fetch -d APY" in m and "xlsa17.zip" in m
               for m in missing)


def test_verify_flags_wrong_size_and_wrong_hash(tiny):
    lock_path, files, root = tiny
    put(root, files)
    (root / "APY/testclasses.txt").write_bytes(b"truncat")
    (root / "APY/att_splits.mat").write_bytes(b"pinned bytez")  # same size, other content
    found = errors(datasets.verify(root, ["APY"], datasets.read_lock(lock_path)))
    assert any("testclasses.txt: expected 10 bytes, found 7" in m for m in found)
    assert any("att_splits.mat: sha256" in m and "but datasets.lock pins" in m for m in found)


def test_verify_notes_unpinned_files_without_failing(tiny):
    lock_path, files, root = tiny
    put(root, files)
    found = datasets.verify(root, ["APY"], datasets.read_lock(lock_path))
    assert not errors(found)
    assert any("hash not pinned yet" in f.message for f in found)


# ===== lock =====

def test_lock_records_unpinned_files_only(tiny):
    lock_path, files, root = tiny
    put(root, files)
    assert datasets.lock_present(root, ["APY"], lock_path, root / "archives") == ["APY/res101.mat"]
    entry = datasets.read_lock(lock_path)["files"]["APY/res101.mat"]
    assert entry["sha256"] == sha(files["APY/res101.mat"])
    assert entry["size"] == len(files["APY/res101.mat"])
    assert datasets.lock_present(root, ["APY"], lock_path, root / "archives") == []


def test_lock_never_overwrites_a_pinned_hash(tiny):
    lock_path, files, root = tiny
    put(root, {**files, "APY/att_splits.mat": b"another file"})
    before = lock_path.read_bytes()
    with pytest.raises(datasets.DatasetError, match="a pinned hash is never overwritten"):
        datasets.lock_present(root, ["APY"], lock_path, root / "archives")
    assert lock_path.read_bytes() == before


# ===== fetch =====

def make_zip(path: Path, files: dict[str, bytes], top="xlsa17/data/") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for rel, data in files.items():
            z.writestr(top + rel, data)
    return path


def local(zip_path: Path):
    """A pooch downloader that copies a local file instead of using the network."""
    def download(url, output_file, _pooch):
        shutil.copyfile(zip_path, output_file)
    return download


def test_fetch_extracts_nested_members_into_the_root_and_verifies(tiny, tmp_path):
    lock_path, files, root = tiny
    archive = make_zip(tmp_path / "src.zip", files)
    datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=local(archive))
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data
    assert not list(root.rglob(".*"))  # no temp files left


def test_fetch_refuses_an_archive_whose_file_disagrees_with_the_lock(tiny, tmp_path):
    lock_path, files, root = tiny
    archive = make_zip(tmp_path / "src.zip", {**files, "APY/att_splits.mat": b"tampered!!!!"})
    # 2: the tampered file, and the unpinned one it no longer vouches for (not moved)
    with pytest.raises(datasets.DatasetError, match="after fetch, 2 problem"):
        datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=local(archive))


def test_fetch_moves_no_unpinned_file_from_an_archive_that_contradicted_a_pin(tiny, tmp_path):
    lock_path, files, root = tiny
    archive = make_zip(tmp_path / "src.zip", {**files, "APY/att_splits.mat": b"tampered!!!!"})
    with pytest.raises(datasets.DatasetError):
        datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=local(archive))
    assert not (root / "APY" / "res101.mat").exists()
    assert not (root / "APY" / "att_splits.mat").exists()


def test_fetch_moves_no_unpinned_mat_file_that_is_not_a_mat_file(tiny, tmp_path):
    lock_path, files, root = tiny
    archive = make_zip(tmp_path / "src.zip", {**files, "APY/res101.mat": b"\0" * 1000})
    with pytest.raises(datasets.DatasetError, match=r"expected a MATLAB \.mat file"):
        datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=local(archive))
    assert not (root / "APY" / "res101.mat").exists()


def test_lock_refuses_to_pin_an_archive_whose_members_contradict_their_pins(tiny, tmp_path):
    lock_path, files, root = tiny
    archives = tmp_path / "archives"
    archives.mkdir()
    make_zip(archives / "xlsa17.zip", {**files, "APY/att_splits.mat": b"tampered!!!!"})
    before = lock_path.read_bytes()
    with pytest.raises(datasets.DatasetError, match="contradict their pins is not pinned"):
        datasets.lock_present(root, ["APY"], lock_path, archives)
    assert lock_path.read_bytes() == before


def test_fetch_says_which_required_file_the_archive_lacks(tiny, tmp_path):
    lock_path, files, root = tiny
    archive = make_zip(tmp_path / "src.zip", {k: v for k, v in files.items()
                                              if k != "APY/res101.mat"})
    with pytest.raises(datasets.DatasetError, match=r"xlsa17.zip holds no \*/APY/res101.mat"):
        datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=local(archive))


def test_a_failed_download_names_the_files_still_missing(tiny, tmp_path):
    lock_path, files, root = tiny
    put(root, {k: v for k, v in files.items() if k != "APY/res101.mat"})

    def offline(*_):
        raise ConnectionError("Name or service not known")

    with pytest.raises(datasets.DatasetError, match="ConnectionError") as err:
        datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=offline)
    assert "missing under" in str(err.value) and "APY/res101.mat" in str(err.value)
    assert "APY/att_splits.mat" not in str(err.value)  # present and verified


def test_fetch_downloads_nothing_when_every_required_file_verifies(tiny, tmp_path):
    lock_path, files, root = tiny
    put(root, {k: v for k, v in files.items() if k != "APY/testclasses.txt"})  # optional absent

    def no_network(*_):
        raise AssertionError("downloaded although every file was present")

    datasets.fetch(["APY"], root, lock_path, tmp_path / "archives", downloader=no_network)


# ===== Table 1 =====

@pytest.mark.skipif(not REAL_META.is_dir(), reason="real metadata (VSBOOST_REAL_META) absent")
def test_stats_on_real_metadata_flag_exactly_the_known_misprints():
    frame = datasets.stats(REAL_META)
    assert "DIFFERS" not in set(frame["note"])
    flagged = frame[frame["note"].str.startswith("known misprint")]
    assert sorted(zip(flagged["dataset"], flagged["quantity"], strict=True)) == [
        ("APY", "test_seen"), ("APY", "test_unseen"), ("SUN", "test_seen")]


def test_stats_flag_an_unexplained_difference(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "pinned", lambda lock: {})  # files of one's own: no pins apply
    folder = tmp_path / "FLO"
    folder.mkdir()
    scipy.io.savemat(folder / "att_splits.mat", {
        "att": np.ones((1024, 102)), "trainval_loc": np.arange(1, 11)[:, None],
        "test_seen_loc": np.arange(11, 1414)[:, None],
        "test_unseen_loc": np.arange(1414, 2569)[:, None]})
    labels = np.r_[np.repeat(np.arange(1, 6), 2), np.ones(1403), np.full(1155, 90)]
    scipy.io.savemat(folder / "res101.mat", {"labels": labels[:, None]})
    frame = datasets.stats(tmp_path, ["FLO"]).set_index("quantity")
    assert frame.loc["trainval", "note"] == "DIFFERS"  # 10 instead of 5,631
    assert frame.loc["seen", "measured"] == 5 and frame.loc["seen", "note"] == "DIFFERS"
    assert frame.loc["test_seen", "note"] == ""


def test_stats_refuse_a_pinned_file_that_differs_before_parsing_it(tmp_path):
    folder = tmp_path / "FLO"
    folder.mkdir()
    scipy.io.savemat(folder / "att_splits.mat", {"att": np.ones((3, 3))})
    with pytest.raises(datasets.DatasetError, match=r"FLO/att_splits\.mat: sha256 .*not parsed"):
        datasets.stats(tmp_path, ["FLO"])


# ===== command line =====

def test_bench_data_verify_exits_1_listing_what_is_missing(tiny):
    lock_path, _, root = tiny
    result = CliRunner().invoke(cli, ["data", "verify", "-d", "APY", "--data-root", str(root),
                                      "--lock", str(lock_path)])
    assert result.exit_code == 1  # a check that found a problem, not a wrong input
    assert "APY/res101.mat: missing" in result.output
