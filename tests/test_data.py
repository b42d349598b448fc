"""The xlsa17 loader: layout, preprocessing (docs/data.md) and one-line errors for bad files."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from sklearn.preprocessing import MinMaxScaler

from vsboost import synthetic
from vsboost.data import DataError, data_files, load

# docs/data.md, measured on the real metadata: trainval, test_seen, test_unseen, seen, unseen.
REAL_SIZES = {
    "APY": (5932, 1483, 7924, 20, 12),
    "AWA2": (23527, 5882, 7913, 40, 10),
    "CUB": (7057, 1764, 2967, 150, 50),
    "FLO": (5631, 1403, 1155, 82, 20),
    "SUN": (10320, 2580, 1440, 645, 72),
}


# ----- a tiny valid dataset, to break one thing at a time -----

def tiny_files(dim: int = 2048) -> dict[str, dict]:
    """5 classes x 4 images; classes 1-3 seen (3 trainval + 1 test_seen each), 4-5 unseen."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 6), 4)
    features = rng.random((dim, 20), dtype=np.float32) + labels  # class-dependent, positive
    rows = np.arange(1, 21).reshape(5, 4)
    res101 = {"features": features, "labels": labels[:, None].astype(float)}
    splits = {
        "att": rng.random((7, 5)),
        "trainval_loc": rows[:3, :3].reshape(-1, 1).astype(np.uint16),
        "test_seen_loc": rows[:3, 3:].reshape(-1, 1).astype(np.uint16),
        "test_unseen_loc": rows[3:].reshape(-1, 1).astype(np.uint16),
    }
    return {"res101.mat": res101, "att_splits.mat": splits}


def write_tiny(root, dataset="APY", files=None):
    files = files or tiny_files()
    (root / dataset).mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        scipy.io.savemat(root / dataset / name, content)
    return root


def broken(tmp_path, file, **changes):
    """Write the tiny dataset with keys of one file replaced (None = key removed)."""
    files = tiny_files()
    for key, value in changes.items():
        if value is None:
            del files[file][key]
        else:
            files[file][key] = value
    return write_tiny(tmp_path, files=files)


def error_of(root, dataset="APY") -> str:
    with pytest.raises(DataError) as info:
        load(root, dataset)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----- the loader on the synthetic benchmark -----

def test_synthetic_benchmark_loads_with_the_contract_shapes(synthetic_root):
    data = load(synthetic_root, "CUB")
    assert data.train_x.dtype == torch.float32 and data.train_x.shape[1] == 2048
    assert data.train_y.dtype == torch.int64 and len(data.train_y) == len(data.train_x)
    assert len(data.test_seen_y) == len(data.test_seen_x)
    assert len(data.test_unseen_y) == len(data.test_unseen_x)
    assert data.att.shape == (200, 1024) and data.n_classes == 200 and data.att_dim == 1024
    assert data.feature_dim == 2048 and data.name == "CUB"
    assert len(data.fingerprint) == 16 and set(data.files) == {
        "res101.mat", "att_splits.mat", "sent_splits.mat", "trainclasses1.txt", "valclasses1.txt"}
    assert len(data.val_classes) == 50  # the proposed split's CUB validation classes


def test_labels_become_zero_based_rows_of_res101(synthetic_root):
    data = load(synthetic_root, "APY")
    labels = scipy.io.loadmat(synthetic_root / "APY" / "res101.mat")["labels"].ravel()
    rows = scipy.io.loadmat(synthetic_root / "APY" / "att_splits.mat")["trainval_loc"].ravel()
    expected = labels[rows.astype(np.int64) - 1] - 1
    assert torch.equal(data.train_y, torch.from_numpy(expected.astype(np.int64)))
    assert data.train_y.min() >= 0 and int(data.test_unseen_y.max()) <= data.n_classes - 1


@pytest.mark.parametrize("dataset", synthetic.DATASETS)
def test_seen_and_unseen_partition_the_classes(synthetic_root, dataset):
    data = load(synthetic_root, dataset)
    seen, unseen = set(data.seen.tolist()), set(data.unseen.tolist())
    assert not seen & unseen and seen | unseen == set(range(data.n_classes))
    assert set(data.test_seen_y.tolist()) <= seen and set(data.test_unseen_y.tolist()) == unseen
    assert data.seen.tolist() == sorted(seen)
    assert data.synthetic


def test_trainval_is_scaled_into_unit_interval_with_max_one(synthetic_root):
    data = load(synthetic_root, "AWA2")
    assert float(data.train_x.min()) == 0.0 and float(data.train_x.max()) == 1.0


def test_preprocessing_matches_minmax_fit_on_trainval_then_division_by_its_max(tmp_path):
    files = tiny_files()
    data = load(write_tiny(tmp_path, files=files), "APY")
    x = files["res101.mat"]["features"].T
    tv = files["att_splits.mat"]["trainval_loc"].ravel().astype(np.int64) - 1
    tu = files["att_splits.mat"]["test_unseen_loc"].ravel().astype(np.int64) - 1
    scaler = MinMaxScaler().fit(x[tv])
    top = scaler.transform(x[tv]).max()
    np.testing.assert_allclose(data.train_x.numpy(), scaler.transform(x[tv]) / top, atol=1e-6)
    np.testing.assert_allclose(data.test_unseen_x.numpy(), scaler.transform(x[tu]) / top,
                               atol=1e-5)
    assert data.test_unseen_x.max() > 1  # unseen classes have larger features: not clipped


def test_scaler_is_fit_on_trainval_only(tmp_path):
    files = tiny_files()
    before = load(write_tiny(tmp_path / "a", files=files), "APY")
    files["res101.mat"]["features"][:, 19] *= 100  # an image of test_unseen
    after = load(write_tiny(tmp_path / "b", files=files), "APY")
    assert torch.equal(before.train_x, after.train_x)
    assert torch.equal(before.test_seen_x, after.test_seen_x)
    assert not torch.equal(before.test_unseen_x, after.test_unseen_x)


def test_fingerprint_follows_contents_not_path_or_container(tmp_path, synthetic_root):
    first = load(synthetic_root, "FLO")
    shutil.copytree(synthetic_root / "FLO", tmp_path / "moved" / "FLO")
    res = scipy.io.loadmat(tmp_path / "moved" / "FLO" / "res101.mat")
    scipy.io.savemat(tmp_path / "moved" / "FLO" / "res101.mat",
                     {k: v for k, v in res.items() if not k.startswith("__")},
                     do_compression=True)
    moved = load(tmp_path / "moved", "FLO")
    assert moved.fingerprint == first.fingerprint
    assert moved.files["res101.mat"] != first.files["res101.mat"]
    res["features"][0, 0] += 1
    scipy.io.savemat(tmp_path / "moved" / "FLO" / "res101.mat",
                     {k: v for k, v in res.items() if not k.startswith("__")})
    assert load(tmp_path / "moved", "FLO").fingerprint != first.fingerprint


def test_matlab_v73_hdf5_files_load_like_v5_files(tmp_path):
    files = tiny_files()
    v5 = load(write_tiny(tmp_path / "v5", files=files), "APY")
    write_tiny(tmp_path / "v73", files=files)
    path = tmp_path / "v73" / "APY" / "res101.mat"
    path.unlink()
    with h5py.File(path, "w", userblock_size=512) as mat:  # MATLAB's layout: column-major
        for key, value in files["res101.mat"].items():
            mat[key] = np.asarray(value).T
    header = b"MATLAB 7.3 MAT-file, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM"
    with open(path, "r+b") as raw:
        raw.write(header)
    v73 = load(tmp_path / "v73", "APY")
    assert torch.equal(v5.train_x, v73.train_x) and torch.equal(v5.train_y, v73.train_y)
    assert v5.fingerprint == v73.fingerprint


def test_cub_uses_sentence_embedding_normalised_only_when_asked(synthetic_root):
    unit = load(synthetic_root, "CUB").att.norm(dim=1)
    raw = load(synthetic_root, "CUB", normalize_sent=False).att.norm(dim=1)
    torch.testing.assert_close(unit, torch.ones(200))
    assert 16 < float(raw.min()) and float(raw.max()) < 23  # as stored (docs/data.md: ~17-22)


def test_to_moves_every_tensor(synthetic_root):
    data = load(synthetic_root, "FLO", device=None).to("cpu")
    assert data.train_x.device.type == "cpu" and data.unseen.device.type == "cpu"


def test_data_files_names_what_load_reads():
    assert data_files("CUB") == ["CUB/res101.mat", "CUB/att_splits.mat", "CUB/sent_splits.mat"]
    assert data_files("SUN") == ["SUN/res101.mat", "SUN/att_splits.mat"]


# ----- the loader on the real metadata, joined with a res101.mat consistent with it -----

@pytest.mark.parametrize("dataset", sorted(REAL_SIZES))
def test_real_metadata_gives_the_real_split_sizes(tmp_path, real_meta, dataset):
    folder = tmp_path / dataset
    folder.mkdir()
    for name in data_files(dataset)[1:]:
        shutil.copy(real_meta / name, folder / name.split("/")[1])
    splits = scipy.io.loadmat(folder / "att_splits.mat")
    n_images = max(int(splits[key].max()) for key in ("trainval_loc", "test_seen_loc",
                                                       "test_unseen_loc"))
    seen, unseen = synthetic.real_classes(real_meta, dataset)
    labels = np.zeros(n_images, np.int64)
    for key, classes in (("trainval_loc", seen), ("test_seen_loc", seen),
                         ("test_unseen_loc", unseen)):
        rows = splits[key].ravel().astype(np.int64) - 1
        labels[rows] = classes[np.arange(len(rows)) % len(classes)] + 1
    features = np.random.default_rng(0).random((8, n_images), dtype=np.float32)  # D=8: small
    scipy.io.savemat(folder / "res101.mat", {"features": features, "labels": labels[:, None],
                                             "synthetic": "test stand-in"})
    data = load(tmp_path, dataset)
    trainval, test_seen, test_unseen, n_seen, n_unseen = REAL_SIZES[dataset]
    assert (len(data.train_y), len(data.test_seen_y), len(data.test_unseen_y)) == (
        trainval, test_seen, test_unseen)
    assert (len(data.seen), len(data.unseen)) == (n_seen, n_unseen)
    assert data.seen.tolist() == seen.tolist() and data.unseen.tolist() == unseen.tolist()
    rows = splits["trainval_loc"].ravel().astype(np.int64) - 1
    assert torch.equal(data.train_y, torch.from_numpy(labels[rows] - 1))  # 0-based, both ways
    if dataset == "CUB":
        assert data.att.shape == (200, 1024)
        torch.testing.assert_close(data.att.norm(dim=1), torch.ones(200))


# ----- one-line errors naming file, key and fix -----

def test_missing_dataset_folder_says_how_to_get_it(tmp_path):
    message = error_of(tmp_path, "SUN")
    assert str(tmp_path / "SUN") in message
    assert "bench data fetch -d SUN" in message and "bench data synth" in message


def test_missing_file_is_named(tmp_path):
    write_tiny(tmp_path)
    (tmp_path / "APY" / "att_splits.mat").unlink()
    message = error_of(tmp_path)
    assert "att_splits.mat" in message and "bench data fetch -d APY" in message


def test_cub_without_sentence_file_is_named(tmp_path):
    write_tiny(tmp_path, "CUB")
    message = error_of(tmp_path, "CUB")
    assert str(tmp_path / "CUB" / "sent_splits.mat") in message


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    message = error_of(tmp_path, "AWA3")
    assert "AWA3" in message and "AWA2" in message


def test_file_that_is_not_a_mat_file(tmp_path):
    write_tiny(tmp_path)
    (tmp_path / "APY" / "res101.mat").write_text("<html>404 Not Found</html>")
    message = error_of(tmp_path)
    assert "res101.mat" in message and "not a MAT file or truncated" in message


def test_truncated_mat_file(tmp_path):
    write_tiny(tmp_path)
    path = tmp_path / "APY" / "res101.mat"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = error_of(tmp_path)
    assert "res101.mat" in message and "truncated" in message


def test_missing_key(tmp_path):
    message = error_of(broken(tmp_path, "res101.mat", labels=None))
    assert "res101.mat" in message and "'labels'" in message


def test_features_stored_n_by_2048_are_called_transposed(tmp_path):
    features = tiny_files()["res101.mat"]["features"]
    message = error_of(broken(tmp_path, "res101.mat", features=features.T.copy()))
    assert "res101.mat" in message and "'features'" in message and "transposed" in message


def test_zero_based_labels(tmp_path):
    labels = tiny_files()["res101.mat"]["labels"] - 1
    message = error_of(broken(tmp_path, "res101.mat", labels=labels))
    assert "res101.mat" in message and "'labels'" in message and "1-based" in message


def test_label_and_feature_counts_disagree(tmp_path):
    labels = tiny_files()["res101.mat"]["labels"][:-1]
    message = error_of(broken(tmp_path, "res101.mat", labels=labels))
    assert "res101.mat" in message and "'features'" in message and "19 labels" in message


@pytest.mark.parametrize("row", [0, 21])
def test_index_out_of_range(tmp_path, row):
    loc = tiny_files()["att_splits.mat"]["trainval_loc"].copy()
    loc[0] = row
    message = error_of(broken(tmp_path, "att_splits.mat", trainval_loc=loc))
    assert "att_splits.mat" in message and "'trainval_loc'" in message and "1..20" in message


def test_overlapping_splits(tmp_path):
    loc = tiny_files()["att_splits.mat"]["test_seen_loc"].copy()
    loc[0] = 1  # also in trainval
    message = error_of(broken(tmp_path, "att_splits.mat", test_seen_loc=loc))
    assert "att_splits.mat" in message and "'trainval_loc/test_seen_loc'" in message


def test_empty_split(tmp_path):
    message = error_of(broken(tmp_path, "att_splits.mat",
                              test_seen_loc=np.zeros((0, 1), np.uint16)))
    assert "att_splits.mat" in message and "'test_seen_loc'" in message and "empty" in message


def test_nan_in_features(tmp_path):
    features = tiny_files()["res101.mat"]["features"]
    features[3, 5] = np.nan
    message = error_of(broken(tmp_path, "res101.mat", features=features))
    assert "res101.mat" in message and "'features'" in message and "NaN/Inf" in message


def test_inf_in_attributes(tmp_path):
    att = tiny_files()["att_splits.mat"]["att"]
    att[0, 0] = np.inf
    message = error_of(broken(tmp_path, "att_splits.mat", att=att))
    assert "att_splits.mat" in message and "'att'" in message and "NaN/Inf" in message


def test_attribute_class_count_differs_from_max_label(tmp_path):
    att = tiny_files()["att_splits.mat"]["att"][:, :4]
    message = error_of(broken(tmp_path, "att_splits.mat", att=att))
    assert "att_splits.mat" in message and "'att'" in message and "C = 5" in message


def test_seen_class_in_test_unseen(tmp_path):
    loc = tiny_files()["att_splits.mat"]["test_unseen_loc"].copy()
    loc[0] = 4  # the test_seen image of class 1
    seen_loc = np.array([[8], [12]], np.uint16)
    message = error_of(broken(tmp_path, "att_splits.mat", test_unseen_loc=loc,
                              test_seen_loc=seen_loc))
    assert "att_splits.mat" in message and "'test_unseen_loc'" in message
