"""Report files from a sweep folder's records: Tables 2-4 and the paper's claims (markdown),
training curves and the Figure 4 t-SNE (PNG). The only IO of the reporting side: records are
read with ``bench.store.load_records`` and every file is written with
``vsboost.files.atomic_write``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bench import claims, figures, store
from bench.cells import ReportError, kind, present
from bench.tables import curves, render, tsne_runs
from vsboost.config import DATASETS
from vsboost.files import atomic_write


def write_reports(results_dir: str | Path, out_dir: str | Path,
                  seeds: int | None = None) -> list[Path]:
    """Regenerate table2.md, table3.md, table4.md, claims.md and curves_<DS>.png from records
    alone.

    ``seeds``: seeds expected per cell (default: the highest seed index present + 1).
    """
    results_dir, out_dir, expected = Path(results_dir), Path(out_dir), seeds
    records = store.load_records(results_dir)
    if not records:
        raise ReportError(f"{results_dir}: expected run folders with record.json, found none; "
                          "fix: run `bench sweep` first, or check --name")
    kind(records)
    references = store.load_references(results_dir)
    texts = {f"table{t}.md": render(t, records, results_dir.name, expected, references)
             for t in (2, 3, 4)}
    texts["claims.md"] = claims.render(records, results_dir.name, expected)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        path = out_dir / name
        atomic_write(path, text)
        written.append(path)
    data_note = _data_note(kind(records))
    for ds in present(records, "dataset", DATASETS):
        frame = curves(records, ds, expected)
        if frame.empty:
            continue
        title = f"{ds}: U / S / H per epoch (last classifier epoch)"
        title += data_note
        path = out_dir / f"curves_{ds}.png"
        atomic_write(path, figures.training_curves(frame, title))
        written.append(path)
    return written


def write_tsne(results_dir: str | Path, out_dir: str | Path,
               datasets: Iterable[str] | None = None, **tsne) -> list[Path]:
    """Figure 4 per dataset (tsne_<DS>.png) from the chosen run's features.npz."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    records = store.load_records(results_dir)
    data_note = _data_note(kind(records))
    with_features = [r for r in records if (results_dir / r["run_id"] / store.FEATURES).is_file()]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in tsne_runs(with_features, datasets):
        with np.load(results_dir / r["run_id"] / store.FEATURES) as f:
            features = {k: f[k] for k in f.files}
        title = (f"{r['key']['dataset']} t-SNE, run {r['run_id']}"
                 + data_note)
        path = out_dir / f"tsne_{r['key']['dataset']}.png"
        atomic_write(path, figures.tsne_figure(features, title, **tsne))
        written.append(path)
    if not written:
        raise ReportError(f"{results_dir}: expected a done full-row run with features.npz, "
                          "found none; fix: run the full row with feature sampling "
                          "(train(feature_sample=True) gives the features.npz)")
    return written


def _data_note(data_kind: str) -> str:
    """What a figure title says about its data: nothing for the paper's real data."""
    return {"real": "", "synthetic": " — SYNTHETIC data"}.get(data_kind, " — CUSTOM data")
