"""Per-class accuracy, H and the two selection protocols on hand-made predictions."""

import pytest
import torch

from vsboost.evaluate import epoch_entry, harmonic_mean, per_class_accuracy, select


def test_per_class_accuracy_weighs_classes_equally_unlike_per_sample_accuracy():
    # class 0: 8 images, all right; class 1: 2 images, none right
    labels = torch.tensor([0] * 8 + [1] * 2)
    pred = torch.tensor([0] * 8 + [0] * 2)
    assert float(per_class_accuracy(pred, labels)) == pytest.approx(0.5)
    assert float((pred == labels).float().mean()) == pytest.approx(0.8)


def test_per_class_accuracy_is_computed_per_member_row():
    labels = torch.tensor([3, 3, 5, 7])
    pred = torch.tensor([[3, 0, 5, 7], [0, 0, 0, 0]])
    torch.testing.assert_close(per_class_accuracy(pred, labels), torch.tensor([(0.5 + 2) / 3, 0.0]))


def test_harmonic_mean_matches_definition_and_is_zero_when_both_are_zero():
    u, s = torch.tensor([0.5, 0.0, 0.2]), torch.tensor([0.7, 0.0, 0.0])
    torch.testing.assert_close(harmonic_mean(u, s), torch.tensor([2 * 0.35 / 1.2, 0.0, 0.0]))


def _history():
    # two generator epochs x three classifier epochs of (U, S, H), and CZSL accuracies
    def gzsl(rows):
        t = torch.tensor(rows, dtype=torch.float64)
        return torch.cat([t, harmonic_mean(t[:, :1], t[:, 1:2])], 1)

    e1 = epoch_entry(1, gzsl([[0.2, 0.8], [0.5, 0.6], [0.3, 0.7]]), torch.tensor([0.4, 0.6, 0.5]))
    e2 = epoch_entry(2, gzsl([[0.4, 0.5], [0.1, 0.9], [0.45, 0.55]]), torch.tensor([0.3, 0.2, 0.1]))
    return [e1, e2]


def test_paper_protocol_takes_best_test_h_with_u_and_s_of_that_same_point():
    metrics = select(_history(), cls_epochs=3)
    paper = metrics["paper"]
    assert (paper["epoch"], paper["cls_epoch"]) == (1, 2)
    assert (paper["U"], paper["S"]) == pytest.approx((0.5, 0.6))
    assert paper["H"] == pytest.approx(2 * 0.3 / 1.1)
    assert metrics["czsl"]["paper"]["acc"] == pytest.approx(0.6)


def test_honest_protocol_takes_last_generator_and_classifier_epoch_without_choosing():
    metrics = select(_history(), cls_epochs=3)
    last = metrics["last"]
    assert (last["epoch"], last["cls_epoch"]) == (2, 3)
    assert (last["U"], last["S"]) == pytest.approx((0.45, 0.55))
    assert metrics["czsl"]["last"]["acc"] == pytest.approx(0.1)
    assert last["H"] <= metrics["paper"]["H"]
