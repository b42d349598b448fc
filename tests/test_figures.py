"""Figures: reproducible PNG bytes (no metadata that varies), t-SNE material picked from runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from bench import figures, reports, store, tables
from bench.cells import ReportError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = {"max_iter": 250}  # sklearn's minimum: enough to test the plumbing, not a pretty figure


def features(n_per_class=20, classes=3, dims=10, seed=0):
    """t-SNE material shaped like RunResult.features: ~200 points over the four panels."""
    rng = np.random.default_rng(seed)

    def blob(offset, labels_from):
        y = np.repeat(np.arange(labels_from, labels_from + classes), n_per_class)
        x = rng.normal(size=(len(y), dims)) + 6.0 * (y[:, None] % dims == np.arange(dims))
        return (x + offset).astype(np.float32), y

    ru, ruy = blob(0.0, 10)
    su, suy = blob(0.5, 10)
    se, sey = blob(0.0, 0)
    return {"real_unseen_raw": ru, "real_unseen_refined": 2 * ru, "real_unseen_y": ruy,
            "syn_unseen_raw": su, "syn_unseen_refined": 2 * su, "syn_unseen_y": suy,
            "seen_raw": se, "seen_refined": 2 * se, "seen_y": sey}


def curve_frame():
    lines = [{"row": row, "seed": s, "epoch": e, "U": 10.0 * e + s, "S": 50.0, "H": 20.0 + e}
             for row in ("plain", "full") for s in range(2) for e in range(4)]
    return pd.DataFrame(lines)


def test_training_curves_are_byte_identical_png_without_software_or_time():
    a = figures.training_curves(curve_frame(), "CUB")
    assert a.startswith(PNG_SIGNATURE)
    assert a == figures.training_curves(curve_frame(), "CUB")
    for word in (b"Software", b"matplotlib", b"tIME", b"Creation"):
        assert word not in a


def test_training_curves_handle_a_single_seed_without_spread():
    frame = curve_frame()
    assert figures.training_curves(frame[frame["seed"] == 0], "one seed").startswith(
        PNG_SIGNATURE)


def _record_with_losses(epochs):
    history = [{"epoch": e, "U": 0.1 * e, "S": 0.5, "H": 0.2, "loss_d": -1.0 - e,
                "loss_g": 0.5, "loss_sml": 2.0 + e, "loss_rml": 0.25 * e, "loss_metric": 9.0,
                "relation_same": 0.9, "relation_other": 0.3, "val": {"H": 0.15}}
               for e in epochs]
    key = {"dataset": "CUB", "row": "full", "seed_index": 0, "seed": 1, "config_hash": "c",
           "data_fingerprint": "f"}
    return {"run_id": "r", "key": key, "status": "done", "synthetic": True, "history": history,
            "metrics": {}}


def _panel(fig, title):
    return next(ax for ax in fig.axes if ax.get_title() == title)


def test_loss_curves_draw_sml_and_rml_apart():
    frame = tables.curves([_record_with_losses([5, 10])], "CUB")
    fig = figures.curves_figure(frame, "CUB")
    (sml,) = _panel(fig, "SML loss (real features)").get_lines()
    (rml,) = _panel(fig, "RML loss (real features)").get_lines()
    assert list(sml.get_ydata()) == [7.0, 12.0] and list(rml.get_ydata()) == [1.25, 2.5]
    same, other = _panel(fig, "relation F: same class (solid), other class (dashed)").get_lines()
    assert (same.get_ydata()[0], other.get_ydata()[0]) == (0.9, 0.3)
    (val,) = _panel(fig, "H on validation classes (val protocol)").get_lines()
    assert list(val.get_ydata()) == [15.0, 15.0]


def test_each_row_of_every_method_has_its_own_colour():
    lines = [{"row": row, "seed": 0, "epoch": e, "U": 1.0, "S": 2.0, "H": 3.0}
             for row in ("plain", "sml", "rml", "full", "fclswgan") for e in range(2)]
    fig = figures.curves_figure(pd.DataFrame(lines), "APY")
    colours = [to_hex(line.get_color()) for line in _panel(fig, "H (test)").get_lines()]
    assert len(colours) == 5 and len(set(colours)) == 5


def test_a_one_point_history_draws_a_visible_marker():
    fig = figures.curves_figure(tables.curves([_record_with_losses([20])], "CUB"), "CUB")
    for ax in fig.axes:
        for line in ax.get_lines():
            assert len(line.get_xdata()) == 1 and line.get_marker() not in ("None", "", None)


def test_tsne_figure_is_reproducible():
    a = figures.tsne_figure(features(), "AWA2", **FAST)
    assert a.startswith(PNG_SIGNATURE) and b"Software" not in a
    assert a == figures.tsne_figure(features(), "AWA2", **FAST)


def test_tsne_embedding_keeps_separated_classes_apart():
    f = features(classes=2, n_per_class=30)
    xy = figures.embed(f["seen_raw"], max_iter=300)  # past the 250 early-exaggeration steps
    y = f["seen_y"]
    centres = np.stack([xy[y == c].mean(axis=0) for c in (0, 1)])
    spread = max(np.linalg.norm(xy[y == c] - centres[i], axis=1).mean()
                 for i, c in enumerate((0, 1)))
    assert np.linalg.norm(centres[0] - centres[1]) > spread


def _run(folder, row, seed_index, with_features):
    rid = f"AWA2-{row}-s{seed_index}-aaaaaaaaaaaa-ffffffff"
    (folder / rid).mkdir(parents=True)
    rec = {"schema": 1, "run_id": rid, "status": "done", "synthetic": True, "profile": "smoke",
           "key": {"dataset": "AWA2", "row": row, "seed_index": seed_index, "seed": 1,
                   "config_hash": "aaaaaaaaaaaa", "data_fingerprint": "f" * 16},
           "metrics": {"paper": {"U": 0.5, "S": 0.5, "H": 0.5},
                       "last": {"U": 0.5, "S": 0.5, "H": 0.5}}, "config": {}, "history": []}
    (folder / rid / "record.json").write_text(json.dumps(rec))
    if with_features:
        np.savez(folder / rid / "features.npz", **features())
    return rid


def test_tsne_uses_the_full_row_run_with_features_at_the_lowest_seed(tmp_path):
    results = tmp_path / "demo"
    _run(results, "plain", 0, True)
    _run(results, "full", 0, False)
    chosen = _run(results, "full", 1, True)
    _run(results, "full", 2, True)
    records = [r for r in store.load_records(results)
               if (results / r["run_id"] / "features.npz").is_file()]
    assert [r["run_id"] for r in tables.tsne_runs(records)] == [chosen]
    paths = reports.write_tsne(results, tmp_path / "out", **FAST)
    assert [p.name for p in paths] == ["tsne_AWA2.png"]


def test_a_tsne_figure_is_redrawn_only_when_its_inputs_change(tmp_path, monkeypatch):
    results = tmp_path / "demo"
    chosen = _run(results, "full", 0, True)
    (path,) = reports.write_tsne(results, tmp_path / "out", **FAST)
    first = path.read_bytes()
    drawn = []
    real = figures.tsne_figure
    monkeypatch.setattr(figures, "tsne_figure", lambda *a, **k: drawn.append(1) or real(*a, **k))
    assert reports.write_tsne(results, tmp_path / "out", **FAST) == [path]
    assert drawn == [] and path.read_bytes() == first  # same inputs: kept as it is
    with np.load(results / chosen / "features.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["seen_raw"] = arrays["seen_raw"] + 1.0  # other features: drawn again
    np.savez_compressed(results / chosen / "features.npz", **arrays)
    reports.write_tsne(results, tmp_path / "out", **FAST)
    assert drawn == [1] and figures.stamp_of(path) != figures.stamp_of(tmp_path / "missing.png")


def test_tsne_without_features_says_how_to_get_them(tmp_path):
    _run(tmp_path / "demo", "full", 0, False)
    with pytest.raises(ReportError, match="features.npz"):
        reports.write_tsne(tmp_path / "demo", tmp_path / "out")
