"""The embedded synthetic benchmark: xlsa17 format, real shapes, determinism, calibration."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from vsboost import synthetic
from vsboost.data import DataError, data_files, load
from vsboost.errors import UserError
from vsboost.synthetic import LAYOUT, Knobs

REPO = Path(__file__).resolve().parents[1]

SPLITS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


def mat(root, dataset, name):
    return scipy.io.loadmat(root / dataset / name)


@pytest.fixture(scope="module")
def real_root(tmp_path_factory, real_meta):
    """All five datasets in real_meta mode at the calibrated setting (scale 0.1, seed 0)."""
    root = tmp_path_factory.mktemp("synthetic_real")
    synthetic.write(root, real_meta=real_meta)
    return root


def test_same_seed_gives_identical_arrays_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        synthetic.write(tmp_path / name, ["FLO"], scale=0.05, seed=seed)
    for file in ("res101.mat", "att_splits.mat"):
        a, b = mat(tmp_path / "a", "FLO", file), mat(tmp_path / "b", "FLO", file)
        for key in a:
            if not key.startswith("__"):
                np.testing.assert_array_equal(a[key], b[key])
    c = mat(tmp_path / "c", "FLO", "res101.mat")
    assert not np.array_equal(mat(tmp_path / "a", "FLO", "res101.mat")["features"],
                              c["features"])


@pytest.mark.parametrize("dataset", synthetic.DATASETS)
def test_files_follow_the_xlsa17_layout(synthetic_root, dataset):
    res = mat(synthetic_root, dataset, "res101.mat")
    splits = mat(synthetic_root, dataset, "att_splits.mat")
    layout = LAYOUT[dataset]
    n_classes = layout.n_seen + layout.n_unseen
    n_images = res["labels"].shape[0]
    assert res["features"].dtype == np.float32 and res["features"].shape == (2048, n_images)
    assert res["labels"].shape == (n_images, 1)
    assert res["labels"].min() == 1 and res["labels"].max() == n_classes
    assert len(res["image_files"]) == n_images
    assert splits["att"].shape == splits["original_att"].shape == (layout.att_dim, n_classes)
    np.testing.assert_allclose(np.linalg.norm(splits["att"], axis=0), 1.0)
    for key in (*SPLITS, "train_loc", "val_loc"):
        loc = splits[key]
        assert loc.dtype == np.uint16 and loc.shape[1] == 1
        assert loc.min() >= 1 and loc.max() <= n_images
    all_rows = np.concatenate([splits[key].ravel() for key in SPLITS])
    assert sorted(all_rows.tolist()) == list(range(1, n_images + 1))
    assert ("allclasses_names" in splits) == (dataset != "FLO")


def test_train_and_val_loc_reproduce_the_xlsa17_trap(synthetic_root):
    splits = mat(synthetic_root, "AWA2", "att_splits.mat")
    union = np.union1d(splits["train_loc"], splits["val_loc"])
    assert np.isin(splits["test_seen_loc"], union).all()
    assert np.array_equal(union, np.union1d(splits["trainval_loc"], splits["test_seen_loc"]))


def test_cub_sentence_file_is_stored_unnormalised_with_the_same_splits(synthetic_root):
    sent = mat(synthetic_root, "CUB", "sent_splits.mat")
    splits = mat(synthetic_root, "CUB", "att_splits.mat")
    assert sent["att"].shape == (1024, 200)
    norms = np.linalg.norm(sent["att"], axis=0)
    assert norms.min() >= 17 and norms.max() <= 22
    for key in SPLITS:
        np.testing.assert_array_equal(sent[key], splits[key])


@pytest.mark.parametrize("dataset", synthetic.DATASETS)
def test_split_sizes_are_real_sizes_times_scale_with_two_per_class(synthetic_root, dataset):
    data = load(synthetic_root, dataset)
    layout = LAYOUT[dataset]
    assert (len(data.seen), len(data.unseen)) == (layout.n_seen, layout.n_unseen)
    for labels, real, n_classes in ((data.train_y, layout.trainval, layout.n_seen),
                                    (data.test_seen_y, layout.test_seen, layout.n_seen),
                                    (data.test_unseen_y, layout.test_unseen, layout.n_unseen)):
        assert len(labels) == max(round(0.1 * real), 2 * n_classes)
        counts = np.bincount(labels.numpy())
        assert counts[counts > 0].min() >= 2 and (counts > 0).sum() == n_classes


def test_per_class_counts_are_unequal(synthetic_root):
    counts = np.bincount(load(synthetic_root, "AWA2").train_y.numpy())
    assert counts.max() >= 2 * counts.min()


def test_full_scale_gives_exactly_the_real_split_sizes(tmp_path):
    synthetic.write(tmp_path, ["FLO"], scale=1.0)
    data = load(tmp_path, "FLO")
    assert (len(data.train_y), len(data.test_seen_y), len(data.test_unseen_y)) == (
        5631, 1403, 1155)


def test_features_are_dense_non_negative_and_heavy_tailed(synthetic_root):
    x = mat(synthetic_root, "APY", "res101.mat")["features"]
    assert x.min() > 0  # no exact zeros, unlike ReLU features
    centred = x - x.mean()
    kurtosis = (centred**4).mean() / (centred**2).mean() ** 2
    assert kurtosis > 6  # a Gaussian has 3


def test_embedding_fidelity_knob_controls_zero_shot_transfer(tmp_path):
    synthetic.write(tmp_path / "none", ["APY"], knobs=Knobs(fidelity=0.0))
    synthetic.write(tmp_path / "full", ["APY"], knobs=Knobs(fidelity=1.0))
    assert synthetic.reference(tmp_path / "none", "APY")["H"] < 0.2
    assert synthetic.reference(tmp_path / "full", "APY")["H"] > 0.5


def test_every_file_carries_the_synthetic_marker(synthetic_root):
    for dataset in synthetic.DATASETS:
        for name in data_files(dataset):
            marker = str(scipy.io.loadmat(synthetic_root / name)["synthetic"][0])
            assert "not real data" in marker
        assert load(synthetic_root, dataset).synthetic


@pytest.mark.parametrize("dataset", synthetic.DATASETS)
def test_reference_h_is_in_the_calibrated_range(synthetic_root, dataset):
    assert 0.3 <= synthetic.reference(synthetic_root, dataset)["H"] <= 0.8


@pytest.mark.parametrize("dataset", synthetic.DATASETS)
def test_reference_h_is_in_the_calibrated_range_with_real_metadata(real_root, dataset):
    assert 0.3 <= synthetic.reference(real_root, dataset)["H"] <= 0.8


def test_real_metadata_mode_uses_the_real_embeddings_classes_and_sizes(real_root, real_meta):
    for dataset in synthetic.DATASETS:
        real = scipy.io.loadmat(real_meta / dataset / "att_splits.mat")
        written = mat(real_root, dataset, "att_splits.mat")
        np.testing.assert_allclose(written["att"], real["att"], atol=1e-12)
        seen, unseen = synthetic.real_classes(real_meta, dataset)
        data = load(real_root, dataset)
        assert data.seen.tolist() == seen.tolist() and data.unseen.tolist() == unseen.tolist()
        assert len(data.test_unseen_y) == max(round(0.1 * real["test_unseen_loc"].size),
                                              2 * len(unseen))
    real_sent = scipy.io.loadmat(real_meta / "CUB" / "sent_splits.mat")["att"]
    np.testing.assert_array_equal(mat(real_root, "CUB", "sent_splits.mat")["att"], real_sent)


def test_real_classes_follow_the_class_lists(real_meta):
    seen, unseen = synthetic.real_classes(real_meta, "AWA2")
    names = [str(np.ravel(n)[0]) for n in
             scipy.io.loadmat(real_meta / "AWA2" / "att_splits.mat")["allclasses_names"].ravel()]
    assert sorted(names[c] for c in unseen) == sorted(
        (real_meta / "AWA2" / "testclasses.txt").read_text().split())
    assert len(seen) == 40
    flo_seen, flo_unseen = synthetic.real_classes(real_meta, "FLO")
    assert (len(flo_seen), len(flo_unseen)) == (82, 20)


def test_unknown_dataset_is_refused(tmp_path):
    with pytest.raises(UserError, match="AWA3"):
        synthetic.write(tmp_path, ["AWA3"])


def test_default_files_are_byte_identical_wherever_and_whenever_written(tmp_path, monkeypatch):
    synthetic.write(tmp_path / "a", ["APY", "CUB"], scale=0.05)
    monkeypatch.chdir(tmp_path)  # another working directory, another day for scipy's header
    monkeypatch.setattr("time.asctime", lambda *a: "Thu Jan  1 00:00:00 2099")
    synthetic.write(tmp_path / "b", ["APY", "CUB"], scale=0.05)
    for folder in ("APY", "CUB"):
        for path in sorted((tmp_path / "a" / folder).iterdir()):
            assert path.read_bytes() == (tmp_path / "b" / folder / path.name).read_bytes(), path


def test_default_files_match_their_pins(synthetic_root):
    pinned = synthetic.pins()
    written = [rel for ds in synthetic.DATASETS for rel in synthetic.benchmark_files(ds)]
    assert sorted(pinned) == sorted(written)
    for rel, digest in pinned.items():
        assert hashlib.sha256((synthetic_root / rel).read_bytes()).hexdigest() == digest, rel


# Other machines, simulated: another OpenBLAS kernel (or the variable unset, which picks this
# CPU's own), numpy's SIMD paths off, torch's generic kernels, one thread.
MACHINES = {
    "openblas-own-kernel": {},
    "openblas-prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "numpy-baseline-simd": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL"},
    "torch-default-one-thread": {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
                                 "OPENBLAS_NUM_THREADS": "1"},
}


@pytest.mark.parametrize("machine", MACHINES)
def test_default_files_are_the_pinned_bytes_under_other_kernels(tmp_path, machine):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env.update(MACHINES[machine], PYTHONPATH=str(REPO))
    code = ("import sys; from vsboost import synthetic; "
            "synthetic.ensure(sys.argv[1], synthetic.DATASETS)")  # writes, then checks the pins
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_default_file_that_differs_from_its_pin_is_refused_naming_both_hashes(tmp_path):
    synthetic.ensure(tmp_path, ["APY"])
    path = tmp_path / "APY" / "res101.mat"
    path.write_bytes(path.read_bytes()[:-1] + b"\x01")
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=f"{found}.*pins {synthetic.pins()['APY/res101.mat']}"):
        synthetic.ensure(tmp_path, ["APY"])


def test_files_written_with_other_settings_are_not_held_to_the_pins(tmp_path):
    synthetic.write(tmp_path, ["APY"], scale=0.05)
    synthetic.write(tmp_path / "knobs", ["APY"], knobs=Knobs(noise=0.4))
    assert synthetic.ensure(tmp_path, ["APY"]) == []  # present, not the default: left alone
    assert synthetic.ensure(tmp_path / "knobs", ["APY"]) == []
