"""The val protocol: selection on validation classes inside the seen classes, never on test labels
(vsboost/validation.py, docs/protocols.md)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from vsboost import config, evaluate, train, validation
from vsboost.data import CLASS_LISTS, DataError, _val_classes, load

TINY = {"gan_epochs": 4, "eval_every": 2, "cls_epochs": 3, "hidden": 32, "enc_dim": 32,
        "steps_per_epoch": 2, "syn_num": 20}


def _run(data, row="full"):
    cfg = config.make_config("APY", row, "smoke", TINY)
    return validation.run(train.train, data, cfg, [1, 2], device="cpu")


def _permuted(data):
    """The same data with the test labels shuffled within each test split."""
    g = torch.Generator().manual_seed(0)
    return dataclasses.replace(
        data, test_seen_y=data.test_seen_y[torch.randperm(len(data.test_seen_y), generator=g)],
        test_unseen_y=data.test_unseen_y[torch.randperm(len(data.test_unseen_y), generator=g)])


def test_val_selection_is_unchanged_when_the_test_labels_are_permuted(data_root):
    data = load(data_root, "APY")
    runs = [_run(data), _run(_permuted(data))]
    first, second = ([(r.metrics["val"], r.metrics["czsl"]["val"], [e["val"] for e in r.history])
                      for r in rs] for rs in runs)
    for a, b in zip(first, second, strict=True):
        for key in ("epoch", "cls_epoch", "val_H"):
            assert a[0][key] == b[0][key]
        assert (a[1]["epoch"], a[1]["cls_epoch"]) == (b[1]["epoch"], b[1]["cls_epoch"])
        assert a[2] == b[2]  # every validation metric, epoch by epoch
    # the test metrics themselves did move: the permutation reached the test sets
    assert [r.metrics["paper"] for r in runs[0]] != [r.metrics["paper"] for r in runs[1]]


def test_points_pick_the_epoch_of_the_best_validation_h_not_the_best_test_h():
    val_h = [[0.1, 0.2, 0.3], [0.6, 0.5, 0.2]]  # best validation H: epoch 4, classifier epoch 1
    val_history = [
        {"epoch": 2, "U": 0, "S": 0, "H": 0.3, "czsl": 0.5,
         "best": {"U": 0, "S": 0, "H": 0.3, "cls_epoch": 3},
         "czsl_best": {"acc": 0.5, "cls_epoch": 2}},
        {"epoch": 4, "U": 0, "S": 0, "H": 0.2, "czsl": 0.1,
         "best": {"U": 0, "S": 0, "H": max(val_h[1]), "cls_epoch": 1},
         "czsl_best": {"acc": 0.4, "cls_epoch": 3}},
    ]
    assert validation.points(val_history, 3) == {"gzsl": (4, 1), "czsl": (2, 2)}


def test_at_points_keeps_the_test_metrics_of_the_selected_classifier_epoch():
    gzsl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    czsl = torch.tensor([0.11, 0.22, 0.33])
    points = {"gzsl": (4, 2), "czsl": (4, 3)}
    kept = evaluate.at_points(points, 4, gzsl, czsl)["at_val"]
    assert kept["cls_epoch"] == 2 and kept["H"] == pytest.approx(0.6)
    assert kept["czsl"] == pytest.approx(0.33) and kept["czsl_cls_epoch"] == 3
    assert evaluate.at_points(points, 2, gzsl, czsl) == {}


def test_validation_split_uses_trainval_images_only_and_disjoint_classes(data_root):
    data = load(data_root, "APY")
    val = validation.split(data)
    assert data.val_classes is not None  # the synthetic APY ships valclasses1.txt
    assert len(val.train_y) + len(val.test_seen_y) + len(val.test_unseen_y) == len(data.train_y)
    assert set(val.seen.tolist()).isdisjoint(val.unseen.tolist())
    assert set(val.test_seen_y.tolist()) <= set(val.seen.tolist())
    assert set(val.test_unseen_y.tolist()) == set(val.unseen.tolist())
    assert len(val.unseen) == len(data.val_classes) and val.n_classes == len(data.seen)
    # the train classes keep images for training beside the held-out ones
    assert set(val.train_y.tolist()) == set(val.seen.tolist())


def test_data_without_class_lists_gets_a_seeded_third_of_the_seen_classes(data_root, tmp_path):
    shutil.copytree(data_root / "APY", tmp_path / "APY")
    for name in CLASS_LISTS:
        (tmp_path / "APY" / name).unlink()
    data = load(tmp_path, "APY")
    assert data.val_classes is None
    picked = validation.val_classes(data)
    assert len(picked) == round(len(data.seen) / 3)
    assert np.array_equal(picked, validation.val_classes(data))  # seeded: the same every time


def test_a_class_list_naming_an_unknown_class_is_refused_naming_the_file(data_root, tmp_path):
    shutil.copytree(data_root / "APY", tmp_path / "APY")
    (tmp_path / "APY" / "valclasses1.txt").write_text("no_such_class\n")
    with pytest.raises(DataError, match=r"valclasses1.txt: .*'no_such_class'"):
        load(tmp_path, "APY")


def test_real_proposed_split_lists_resolve_to_the_published_sizes(real_meta):
    import scipy.io

    sizes = {"APY": 5, "AWA1": 13, "AWA2": 13, "CUB": 50, "SUN": 65}
    for dataset, n_val in sizes.items():
        folder = real_meta / dataset
        mat = scipy.io.loadmat(folder / "att_splits.mat")
        names = [str(np.ravel(n)[0]) for n in mat["allclasses_names"].ravel()]
        trainval = set((folder / "trainvalclasses.txt").read_text().split())
        seen = np.array([i for i, n in enumerate(names) if n in trainval])
        val, files = _val_classes(folder, mat, folder / "att_splits.mat", seen)
        assert len(val) == n_val and set(files) == set(CLASS_LISTS)
    assert _val_classes(real_meta / "FLO", {}, real_meta / "FLO" / "att_splits.mat",
                        np.arange(82)) == (None, {})


def test_the_validation_training_makes_as_many_passes_per_epoch_as_the_main_one():
    smoke = config.make_config("APY", "full", "smoke")  # steps_per_epoch fixed at 10
    assert validation.same_passes(smoke, 60, 100).steps_per_epoch == 6
    paper = config.make_config("APY", "full", "paper")  # one pass per epoch already
    assert validation.same_passes(paper, 60, 100) == paper
