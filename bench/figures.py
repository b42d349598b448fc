"""Figures as PNG bytes: training curves and the t-SNE of Figure 4.

Pure functions of arrays; the caller writes the bytes. Reproducible on purpose: the Agg canvas (no
display, no pyplot state), fixed t-SNE random states, and no ``Software`` entry or timestamp in the
PNG, so an unchanged figure is byte-identical and does not show up as changed in a pull request.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

ROW_COLORS = {"plain": "tab:gray", "sml": "tab:blue", "rml": "tab:orange", "full": "tab:red"}
# Rows of other methods, in the order met: colours none of VS-Boost's rows use.
OTHER_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
TSNE_SEED = 0  # choice: any fixed value; the figure must not change between regenerations
TSNE_ITER = 500  # choice: enough for <= 1,000 points to settle; sklearn's minimum is 250


def png(fig: Figure, stamp: str | None = None) -> bytes:
    """Render through Agg with no metadata that varies (matplotlib writes only 'Software');
    ``stamp``, when given, is kept in the PNG's text chunk :data:`STAMP` (see :func:`stamp_of`)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100,
                metadata={"Software": None, **({STAMP: stamp} if stamp else {})})
    return buf.getvalue()


STAMP = "vsboost-input"  # what a figure was drawn from: a hash of its inputs


def stamp_of(path: Path) -> str | None:
    """The :data:`STAMP` text of a PNG this module wrote; None for anything else."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.text.get(STAMP) if image.format == "PNG" else None
    except (OSError, ValueError):  # absent, unreadable or not an image: draw it again
        return None


# ===== training curves =====

# The panels of the training curves: (title, y label, columns of bench.tables.curves; a second
# column is drawn dashed in the same colour).
PANELS = (("U (test)", "accuracy (%)", ("U",)), ("S (test)", "accuracy (%)", ("S",)),
          ("H (test)", "accuracy (%)", ("H",)),
          ("H on validation classes (val protocol)", "accuracy (%)", ("val_H",)),
          ("critic loss (WGAN-GP)", "loss", ("loss_d",)),
          ("generator loss (WGAN)", "loss", ("loss_g",)),
          ("SML loss (real features)", "loss", ("loss_sml",)),
          ("RML loss (real features)", "loss", ("loss_rml",)),
          ("relation F: same class (solid), other class (dashed)", "sigmoid(F)",
           ("relation_same", "relation_other")))


def training_curves(frame: pd.DataFrame, title: str) -> bytes:
    """:func:`curves_figure` as PNG bytes."""
    return png(curves_figure(frame, title))


def curves_figure(frame: pd.DataFrame, title: str) -> Figure:
    """Every value of :data:`PANELS` per epoch: one line per row, mean over seeds, band = ± std
    (ddof 1). Every point is marked, so a history of one evaluated epoch still shows; a panel
    no run has a value for says so.

    ``frame`` columns: row, seed, epoch, U, S, H and ``bench.tables.CURVE_VALUES``.
    """
    fig = Figure(figsize=(13, 10))
    axes = fig.subplots(3, 3, sharex=True).ravel()
    for ax, (name, unit, columns) in zip(axes, PANELS, strict=True):
        drawn = False
        others = [r for r in frame["row"].unique() if r not in ROW_COLORS]
        colors = {**ROW_COLORS, **{r: OTHER_COLORS[i % len(OTHER_COLORS)]
                                   for i, r in enumerate(others)}}
        for row, part in frame.groupby("row", sort=False):
            for column, style in zip(columns, ("-", "--"), strict=False):
                if column not in part or part[column].isna().all():
                    continue
                stats = part.groupby("epoch")[column].agg(["mean", "std", "count"]).sort_index()
                n = int(part["seed"].nunique())
                color = colors[row]
                ax.plot(stats.index, stats["mean"], style, marker="o", markersize=3, color=color,
                        label=f"{row} (n={n})" if style == "-" else None)
                spread = stats["std"].where(stats["count"] > 1)
                if spread.notna().any():
                    ax.fill_between(stats.index, stats["mean"] - spread, stats["mean"] + spread,
                                    color=color, alpha=0.2, linewidth=0)
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not recorded by these runs", ha="center", va="center",
                    transform=ax.transAxes, fontsize="small", color="gray")
        ax.set_title(name, fontsize="small")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
    for ax in axes[-3:]:
        ax.set_xlabel("generator epoch")
    axes[2].legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


# ===== t-SNE (paper Figure 4) =====

def embed(x: np.ndarray, *, random_state: int = TSNE_SEED, max_iter: int = TSNE_ITER) -> np.ndarray:
    """2-D t-SNE of the rows of ``x`` with a fixed random state."""
    x = np.asarray(x, dtype=np.float64)
    # sklearn renamed n_iter to max_iter in 1.5; the project allows sklearn >= 1.3.
    iters = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca",
                random_state=random_state, **{iters: max_iter})
    # One OpenMP thread (choice): the same bytes on every machine, and on a busy 2-core box
    # OpenMP's spin-waiting made it 10x slower than a single thread.
    with threadpool_limits(limits=1):
        return tsne.fit_transform(x)


def _colors(labels: np.ndarray) -> tuple[np.ndarray, list]:
    classes = np.unique(labels)
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    return classes, [cmap(i % cmap.N) for i in range(len(classes))]


def _panel_unseen(ax, real: np.ndarray, real_y: np.ndarray, syn: np.ndarray,
                  syn_y: np.ndarray, **tsne) -> None:
    """Real (dots) vs generated (crosses) unseen features; numbers mark each class's centres."""
    xy = embed(np.concatenate([real, syn]), **tsne)
    real_xy, syn_xy = xy[: len(real)], xy[len(real):]
    classes, palette = _colors(np.concatenate([real_y, syn_y]))
    for k, (c, color) in enumerate(zip(classes, palette, strict=True)):
        for pts, marker in ((real_xy[real_y == c], "o"), (syn_xy[syn_y == c], "x")):
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=6, marker=marker, color=color,
                           linewidths=0.6)
                cx, cy = pts.mean(axis=0)
                weight = "bold" if marker == "x" else "normal"
                ax.text(cx, cy, str(k), fontsize=8, weight=weight, ha="center", va="center")
    ax.scatter([], [], s=6, marker="o", color="k", label="real x")
    ax.scatter([], [], s=6, marker="x", color="k", label="generated G(z, a) (bold number)")
    ax.legend(fontsize="x-small", loc="best")


def _panel_all(ax, x: np.ndarray, y: np.ndarray, n_seen: int, **tsne) -> None:
    """Every seen and unseen feature, one colour per class (seen dots, unseen triangles)."""
    xy = embed(x, **tsne)
    classes, palette = _colors(y)
    for c, color in zip(classes, palette, strict=True):
        for part, marker in ((slice(0, n_seen), "o"), (slice(n_seen, None), "^")):
            pts = xy[part][y[part] == c]
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=5, marker=marker, color=color)


def tsne_figure(features: dict[str, np.ndarray], title: str, stamp: str | None = None,
                **tsne) -> bytes:
    """Figure 4: (a, b) generated vs real unseen before / after E; (c, d) all classes likewise.

    ``features`` holds the keys of ``RunResult.features`` (``real_unseen_raw``, ...); for the
    plain row "refined" equals "raw".
    """
    f = {k: np.asarray(v) for k, v in features.items()}
    fig = Figure(figsize=(11, 10))
    axes = fig.subplots(2, 2).ravel()
    for ax, stage, letter in ((axes[0], "raw", "a"), (axes[1], "refined", "b")):
        _panel_unseen(ax, f[f"real_unseen_{stage}"], f["real_unseen_y"],
                      f[f"syn_unseen_{stage}"], f["syn_unseen_y"], **tsne)
        ax.set_title(f"({letter}) unseen: real vs generated, {_stage(stage)}")
    for ax, stage, letter in ((axes[2], "raw", "c"), (axes[3], "refined", "d")):
        x = np.concatenate([f[f"seen_{stage}"], f[f"real_unseen_{stage}"]])
        y = np.concatenate([f["seen_y"], f["real_unseen_y"]])
        _panel_all(ax, x, y, len(f[f"seen_{stage}"]), **tsne)
        ax.set_title(f"({letter}) seen (o) and unseen (^), {_stage(stage)}")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return png(fig, stamp)


def _stage(stage: str) -> str:
    return "before refinement (x)" if stage == "raw" else "after refinement (E(x))"
