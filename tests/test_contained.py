"""Parsing a MAT or npz file from elsewhere cannot take the process down or exhaust its memory:
a crash or a blow-up is one line naming the file (issue 20, finding 3 and 4)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from tests.test_data import tiny_files, write_tiny
from vsboost import matfile
from vsboost.data import DataError, load


def test_a_mat_file_that_segfaults_scipy_is_one_line_and_the_process_lives(tmp_path):
    root = write_tiny(tmp_path)
    path = root / "APY" / "att_splits.mat"
    raw = path.read_bytes()
    assert len(raw) == 728  # the file the segfault was found with (seed 1 of the fuzz tests)
    path.write_bytes(raw[:577] + b"\x5e\x60" + raw[579:])  # two bytes into att's array header
    with pytest.raises(DataError) as err:
        load(root, "APY")
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "crashed the parser" in message
    assert "\n" not in message


def write_apy(root, files):
    """``files`` ({file name: {variable: array}}) as compressed MAT files in ``root``/APY."""
    (root / "APY").mkdir()
    for name, content in files.items():
        scipy.io.savemat(root / "APY" / name, content, do_compression=True)
    return root


def test_a_needed_variable_inside_a_cell_is_refused_within_the_childs_memory(tmp_path,
                                                                           monkeypatch):
    files = tiny_files()
    cell = np.empty((1, 1), dtype=object)
    # 160 MB inside a 1x1 cell (its header says 1 element): scipy's whosmat inflates it while
    # listing the file, so the child's memory limit is what bounds it
    cell[0, 0] = np.zeros((2048, 10000))
    files["res101.mat"]["features"] = cell
    write_apy(tmp_path, files)
    monkeypatch.setattr(matfile, "CHILD_MEMORY_BYTES", 256 << 20)
    with pytest.raises(DataError) as err:
        load(tmp_path, "APY")
    message = str(err.value)
    assert message.startswith(str(tmp_path / "APY" / "res101.mat")) and "\n" not in message
    assert "needs more" in message


def test_a_parse_that_outgrows_the_childs_memory_is_one_line(tmp_path, monkeypatch):
    files = tiny_files()
    files["res101.mat"]["features"] = np.zeros((2048, 10000))  # 164 MB, compressed to ~160 KB
    root = write_apy(tmp_path, files)
    monkeypatch.setattr(matfile, "CHILD_MEMORY_BYTES", 256 << 20)
    with pytest.raises(DataError) as err:
        load(root, "APY")
    message = str(err.value)
    assert message.startswith(str(root / "APY" / "res101.mat")) and "\n" not in message
    assert "memory" in message or "crashed the parser" in message


def test_a_fifo_in_place_of_a_mat_file_is_one_line_not_a_hang(tmp_path):
    import os

    root = write_tiny(tmp_path)
    path = root / "APY" / "res101.mat"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(DataError, match=r"res101\.mat: expected a regular file"):
        load(root, "APY")


def test_a_cell_of_class_names_comes_back_as_strings(tmp_path):
    names = np.empty((3, 1), dtype=object)
    names[:, 0] = ["cat", "dog", ""]
    scipy.io.savemat(tmp_path / "a.mat", {"allclasses_names": names})
    (got,) = matfile.read([tmp_path / "a.mat"], ("allclasses_names",), fix="fix: x",
                          cells=("allclasses_names",))
    assert got.arrays["allclasses_names"].ravel().tolist() == ["cat", "dog", ""]


def test_features_finite_in_float32_but_too_large_to_scale_are_refused_at_load(tmp_path):
    files = tiny_files()
    files["res101.mat"]["features"][0, 0] = 3e38  # finite in float32; its span with -3e38 is not
    files["res101.mat"]["features"][1, 0] = -3e38
    root = write_tiny(tmp_path, files=files)
    with pytest.raises(DataError, match=r"res101\.mat: key 'features': expected magnitudes of at "
                                        r"most 1e\+38, found 3e\+38"):
        load(root, "APY")


def test_a_small_features_npz_that_inflates_past_the_bound_is_refused_before_loading(
        tmp_path, monkeypatch):
    import zipfile

    from bench import reports, store
    from bench.cells import ReportError

    monkeypatch.setattr(reports, "MAX_FEATURES_BYTES", 1 << 20)
    path = tmp_path / store.FEATURES
    # zeros compress ~1000x (the 974 KB file held 1 GB): the bound must count what
    # np.load would allocate, not the file's size
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("seen_raw.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(1 << 20, np.float32))
    assert path.stat().st_size < reports.MAX_FEATURES_BYTES
    with pytest.raises(ReportError, match=r"features\.npz: .*bytes uncompressed, over"):
        reports.read_features(path)


def test_an_npz_header_claiming_more_than_its_member_holds_is_refused(tmp_path):
    import zipfile

    from bench import reports, store
    from bench.cells import ReportError

    path = tmp_path / store.FEATURES
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0, np.float32))
    header["shape"] = (1 << 40,)  # numpy would allocate 4 TB before reading a byte
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("seen_raw.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
    with pytest.raises(ReportError, match=r"declares .* bytes in a"):
        reports.read_features(path)


def test_a_huge_synthetic_marker_is_neither_loaded_by_the_loader_nor_by_the_pin_check(
        tmp_path, monkeypatch):
    from vsboost import synthetic

    files = tiny_files()
    files["att_splits.mat"]["synthetic"] = "x" * 100_000  # 400 KB as numpy holds it
    root = write_tiny(tmp_path, files=files)
    monkeypatch.setattr(matfile, "MAX_ARRAY_BYTES", 350_000)  # above features, below the marker
    assert load(root, "APY").synthetic  # presence is enough: never loaded
    assert synthetic.marker(root / "APY" / "att_splits.mat") is None  # over its own bound
