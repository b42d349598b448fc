"""Report files from a sweep folder's records: Tables 2-4 and the paper's claims (markdown),
training curves and the Figure 4 t-SNE (PNG). The only IO of the reporting side: records are
read with ``bench.store.load_records`` and every file is written with
``vsboost.files.atomic_write``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
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
    # Everything is rendered before the first file is written: a report is whole or not at all.
    files = {f"table{t}.md": render(t, records, results_dir.name, expected, references)
             for t in (2, 3, 4)}
    files["claims.md"] = claims.render(records, results_dir.name, expected)
    data_note = _data_note(kind(records))
    for ds in present(records, "dataset", DATASETS):
        frame = curves(records, ds, expected)
        if frame.empty:
            continue
        title = (f"{ds}: U / S / H (last classifier epoch), losses and relation F per evaluated "
                 "epoch")
        title += data_note
        files[f"curves_{ds}.png"] = figures.training_curves(frame, title)
    return _write_all(out_dir, files)


def _write_all(out_dir: Path, files: dict[str, str | bytes]) -> list[Path]:
    """The whole set or nothing: every file is written into a staging folder beside them first
    (a full disk fails there, the old set intact), then renamed in, which needs no space."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    try:
        for name, body in files.items():
            atomic_write(stage / name, body)
        for name in files:
            os.replace(stage / name, out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out_dir / name for name in files]


def write_tsne(results_dir: str | Path, out_dir: str | Path,
               datasets: Iterable[str] | None = None, **tsne) -> list[Path]:
    """Figure 4 per dataset (tsne_<DS>.png) from the chosen run's features.npz.

    t-SNE's result depends on the BLAS kernel's last bits (it amplifies them over its
    iterations), so a figure is redrawn only when its inputs changed: each PNG carries a hash of
    the features, title, settings and library version it was drawn from, and one whose hash
    matches is left as it is (the same bytes on every machine)."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    records = store.load_records(results_dir)
    data_note = _data_note(kind(records))
    with_features = [r for r in records if (results_dir / r["run_id"] / store.FEATURES).is_file()]
    files = {}
    chosen, unchanged = tsne_runs(with_features, datasets), []
    for r in chosen:
        source = results_dir / r["run_id"] / store.FEATURES
        features = read_features(source)
        title = (f"{r['key']['dataset']} t-SNE, run {r['run_id']}"
                 + data_note)
        name = f"tsne_{r['key']['dataset']}.png"
        stamp = _tsne_stamp(source, title, tsne)
        if figures.stamp_of(out_dir / name) == stamp:
            unchanged.append(out_dir / name)
        else:
            files[name] = figures.tsne_figure(features, title, stamp=stamp, **tsne)
    if not chosen:
        raise ReportError(f"{results_dir}: expected a done full-row run with features.npz, "
                          "found none; fix: run the full row with feature sampling "
                          "(train(feature_sample=True) gives the features.npz)")
    return _write_all(out_dir, files) + unchanged


def _tsne_stamp(source: Path, title: str, tsne: dict) -> str:
    import sklearn

    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps([title, sorted(tsne.items()), sklearn.__version__,
                              figures.TSNE_SEED, figures.TSNE_ITER]).encode())
    return digest.hexdigest()


# The arrays bench.runner._save_features writes: float32 samples, int64 labels.
FEATURE_KEYS = frozenset(f"{who}_{view}" for who in ("real_unseen", "syn_unseen", "seen")
                         for view in ("raw", "refined", "y"))
MAX_FEATURES_BYTES = 64 << 20  # choice: ~1,500 points x 50 dims x 6 arrays is well under 1 MB


def read_features(path: Path) -> dict[str, np.ndarray]:
    """A run's features.npz, read with pickle disabled and checked (a regular file of bounded
    size, the expected arrays, numeric, finite): :class:`ReportError` naming the file if not."""
    fix = f"fix: delete {path} (rerun the run with feature sampling to get it back)"
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FEATURES_BYTES:
        raise ReportError(f"{path}: expected a regular file of at most {MAX_FEATURES_BYTES:,} "
                          f"bytes; {fix}")
    try:
        _check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as f:
            if set(f.files) != FEATURE_KEYS:
                raise ValueError(f"arrays {sorted(f.files)[:8]}, expected {sorted(FEATURE_KEYS)}")
            features = {k: f[k] for k in f.files}
        for k, v in features.items():
            if v.dtype.kind not in "iuf" or not np.isfinite(v).all():
                raise ValueError(f"array {k!r} of dtype {v.dtype} or with non-finite values")
    except Exception as err:  # noqa: BLE001 - zip, npy header and pickle refusals alike
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:160]
        raise ReportError(f"{path}: expected the features.npz of a run, found {reason}; "
                          f"{fix}") from err
    return features


def _check_npz_sizes(path: Path) -> None:
    """Bound what np.load would allocate before it does: the members' uncompressed sizes from the
    zip directory (a zip member never yields more than its declared size), and each array's
    header shape, which numpy allocates before reading a byte of it."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > MAX_FEATURES_BYTES:
            raise ValueError(f"{total:,} bytes uncompressed, over {MAX_FEATURES_BYTES:,}")
        for m in members:
            with archive.open(m) as f:
                major, _ = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if major == 1
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
                nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if nbytes > m.file_size:
                    raise ValueError(f"array {m.filename!r} declares {nbytes:,} bytes in a "
                                     f"{m.file_size:,}-byte member")


def _data_note(data_kind: str) -> str:
    """What a figure title says about its data: nothing for the paper's real data."""
    return {"real": "", "synthetic": " — SYNTHETIC data",
            "rehearsal": " — REHEARSAL (stand-in data)"}.get(data_kind, " — CUSTOM data")
