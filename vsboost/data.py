"""Xian et al.'s xlsa17 files ("Proposed Split v2.0") -> one preprocessed :class:`Benchmark`.

Layout and preprocessing follow docs/data.md: ``<root>/<DS>/res101.mat`` holds ``features`` (D x N)
and 1-based ``labels``; ``att_splits.mat`` holds the class embeddings ``att`` (A x C) and the
1-based row lists ``trainval_loc``, ``test_seen_loc`` and ``test_unseen_loc``. CUB takes its
embedding from ``sent_splits.mat`` instead. ``train_loc``/``val_loc`` are never read: their union
holds test_seen (the xlsa17 trap). The proposed split's validation classes come from
``trainclasses1.txt``/``valclasses1.txt`` (class names, matched to ``allclasses_names``) when the
folder has them (vsboost/validation.py uses them). Every malformed input raises a one-line
:class:`DataError` naming the file, the key, what was expected, what was found and the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vsboost import matfile
from vsboost.config import DATASET_NAME, DATASETS
from vsboost.errors import UserError

FEATURE_DIM = 2048  # ResNet-101 pool5 width (docs/data.md)
SPLITS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")
# choice: every difference of two features then stays finite in float32 (max 3.4e38), so the
# min-max scaler cannot overflow; real features are below ~100.
MAX_FEATURE = 1e38
# CUB's class embedding: the 1024-d CNN-RNN sentence embedding, not 312 attributes (docs/data.md).
SENT_FILE = {"CUB": "sent_splits.mat"}
# The only variables read from any file: a file may carry others of any size, and they are never
# decompressed; of the synthetic benchmark's marker only its presence. Bounds: vsboost/matfile.py.
VARIABLES = ("features", "labels", "att", *SPLITS, "allclasses_names")
# The proposed split's first validation fold (Xian et al. ship three; the first is the one the
# lineage's validation code reads): class names, one a line.
CLASS_LISTS = ("trainclasses1.txt", "valclasses1.txt")
FEATURE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,60}\.mat")
MAX_LIST_BYTES = 1 << 20  # choice: SUN's lists, the longest, are 12 kB


class DataError(UserError):
    """A missing or malformed data file; the message is one line meant for a person."""


@dataclass
class Benchmark:
    name: str
    synthetic: bool  # True when any file carries the `synthetic` marker key
    fingerprint: str  # 16 hex of sha256 over the loaded arrays: path- and container-independent
    files: dict[str, str]  # file name -> sha256 of its bytes (provenance)
    train_x: Tensor  # [n_trainval, D] float32, preprocessed (docs/data.md)
    train_y: Tensor  # [n_trainval] int64, class index 0..C-1
    test_seen_x: Tensor
    test_seen_y: Tensor
    test_unseen_x: Tensor
    test_unseen_y: Tensor
    att: Tensor  # [C, A] float32, row c = embedding of class c
    seen: Tensor  # [S] int64, sorted
    unseen: Tensor  # [U] int64, sorted
    # [V] int64, sorted: the seen classes the proposed split holds out for validation
    # (valclasses1.txt); None when the folder has no class lists (FLO)
    val_classes: Tensor | None = None

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> Benchmark:
        """On ``device``; with ``dtype``, the features and embeddings converted to it."""
        moved = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                cast = dtype if dtype is not None and value.is_floating_point() else None
                moved[f.name] = value.to(device, cast)
        return dataclasses.replace(self, **moved)

    @property
    def n_classes(self) -> int:
        return self.att.shape[0]

    @property
    def att_dim(self) -> int:
        return self.att.shape[1]

    @property
    def feature_dim(self) -> int:
        return self.train_x.shape[1]


FEATURE_FILE = "res101.mat"  # xlsa17's ResNet-101 features; another file via feature_file


def data_files(dataset: str, feature_file: str = FEATURE_FILE) -> list[str]:
    """Paths, relative to the data root, of the files :func:`load` reads for ``dataset``."""
    if dataset not in DATASETS and not DATASET_NAME.fullmatch(dataset):
        raise DataError(
            f"dataset {dataset!r}: expected one of {', '.join(DATASETS)} or another xlsa17 "
            f"folder name of letters, digits and '_', found {dataset!r}; fix: rename it"
        )
    if not FEATURE_NAME.fullmatch(feature_file) or feature_file in ("att_splits.mat",
                                                                     *SENT_FILE.values()):
        raise DataError(f"feature file {feature_file!r}: expected a .mat file name of letters, "
                        "digits, '_', '-' or '.' beside att_splits.mat; fix: rename it")
    names = [feature_file, "att_splits.mat"]
    if dataset in SENT_FILE:
        names.append(SENT_FILE[dataset])
    return [f"{dataset}/{name}" for name in names]


def load(
    root: str | Path,
    dataset: str,
    *,
    normalize_sent: bool = True,
    device: str | torch.device | None = "cpu",
    pins: dict[str, str] | None = None,
    feature_file: str = FEATURE_FILE,
) -> Benchmark:
    """Read, validate and preprocess one dataset; ``device=None`` picks CUDA when present.
    ``pins``: {file name: sha256} the bytes must match before they are parsed (the lock's pins,
    or the hashes a sweep planned with). ``feature_file``: the features' file name in the
    dataset folder (xlsa17: res101.mat; any backbone's features in the same layout)."""
    root = Path(root)
    paths = [root / rel for rel in data_files(dataset, feature_file)]
    fetch = (f"fix: run `bench data fetch -d {dataset}` (real data) or `bench data synth` "
             "(synthetic)")
    if not (root / dataset).is_dir():
        if dataset not in DATASETS:  # a typo of a paper dataset, or the user's own folder
            fetch = (f"fix: check the name (the paper's datasets are {', '.join(DATASETS)}) or "
                     f"put the xlsa17-format files of {dataset} there")
        raise DataError(
            f"{root / dataset}: expected the {dataset} dataset folder, found nothing there; {fetch}"
        )
    for path in paths:
        if not path.exists():  # anything else there is refused by matfile, naming what it is
            raise DataError(f"{path}: expected {path.name}, found no such file; {fetch}")
    pins = pins or {}
    if pins:  # the lock's pins: a user's own variant of the files is custom data
        fetch += ("; or pass --data-label NAME to run your own files as custom data (never "
                  "compared with the paper)")
    try:  # in a child process, pins checked first (vsboost/matfile.py)
        parsed = matfile.read(paths, VARIABLES, fix=fetch, presence=("synthetic",),
                              cells=("allclasses_names",),
                              pins={p: pins[p.name] for p in paths if p.name in pins})
    except matfile.MatError as err:
        raise DataError(str(err)) from None
    mats = {p.name: m.arrays for p, m in zip(paths, parsed, strict=True)}
    files = {p.name: m.sha256 for p, m in zip(paths, parsed, strict=True)}
    res_path, split_path = paths[0], paths[1]
    emb_path = paths[2] if len(paths) > 2 else split_path

    # ===== res101.mat: features and labels =====
    features = _numeric(mats[feature_file], "features", res_path)
    labels = _integers(mats[feature_file], "labels", res_path)
    n = labels.size
    if features.ndim != 2 or features.shape[1] != n:
        rows, cols = features.shape if features.ndim == 2 else (None, None)
        if rows == n or (rows != FEATURE_DIM and cols == FEATURE_DIM):
            found = f"{rows}x{cols} (transposed: N x D)"
            fix = "fix: save features.T (MATLAB layout, one column per image)"
        else:
            found, fix = f"shape {features.shape} for {n} labels", "fix: re-export res101.mat"
        raise _error(res_path, "features",
                     f"D x N, one column per image ({FEATURE_DIM} x {n} in xlsa17)", found, fix)
    if n == 0:
        raise _error(res_path, "labels", "one label per image", "no labels", fetch)
    if labels.min() < 1:
        raise _error(res_path, "labels", "1-based class ids (min 1)", f"min label {labels.min()}",
                     "fix: add 1 to the labels (xlsa17 labels are 1-based)")
    with np.errstate(over="ignore"):  # an overflow becomes inf, which _finite names
        x = np.ascontiguousarray(features.T, dtype=np.float32)
    _finite(x, res_path, "features")  # after the cast: 1e39 is finite in float64, not float32
    top = float(np.abs(x).max()) if x.size else 0.0
    if top > MAX_FEATURE:  # the scaler's differences would overflow float32 into inf
        raise _error(res_path, "features", f"magnitudes of at most {MAX_FEATURE:g}",
                     f"{top:.3g}", "fix: rescale the features (ResNet-101 pool5 features are "
                     "non-negative, below ~100)")
    y = labels - 1
    n_classes = int(y.max()) + 1

    # ===== att_splits.mat: split lists, class embedding =====
    locs = {}
    for key in SPLITS:
        loc = _integers(mats["att_splits.mat"], key, split_path)
        if loc.size == 0:
            raise _error(split_path, key, "a non-empty list of image rows", "an empty list", fetch)
        if loc.min() < 1 or loc.max() > n:
            raise _error(split_path, key, f"1-based rows of res101.mat in 1..{n}",
                         f"values in {loc.min()}..{loc.max()}",
                         "fix: the split file does not belong to this res101.mat; refetch both")
        locs[key] = loc - 1  # int64 already: uint16 - 1 would wrap at 0
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1:]:
            shared = np.intersect1d(locs[first], locs[second])
            if shared.size:
                raise _error(split_path, f"{first}/{second}", "disjoint splits",
                             f"{shared.size} shared images (e.g. row {shared[0] + 1})", fetch)
    if emb_path is not split_path:
        for key in SPLITS:
            if key in mats[emb_path.name]:
                other = _integers(mats[emb_path.name], key, emb_path) - 1
                if not np.array_equal(np.sort(other), np.sort(locs[key])):
                    raise _error(emb_path, key, f"the same rows as {split_path.name}",
                                 "different rows", fetch)
    att = _numeric(mats[emb_path.name], "att", emb_path)
    if att.ndim != 2 or att.shape[1] != n_classes:
        hint = " (transposed: C x A)" if att.ndim == 2 and att.shape[0] == n_classes else ""
        raise _error(emb_path, "att", f"A x C with C = {n_classes} (the max label) columns",
                     f"shape {att.shape}{hint}", "fix: att and res101.mat labels must match")
    with np.errstate(over="ignore"):
        _finite(att.astype(np.float32), emb_path, "att")  # the network sees it as float32
    att = np.ascontiguousarray(att, dtype=np.float64)

    # ===== class partition (docs/data.md: seen = trainval labels, unseen = test_unseen's) =====
    seen = np.unique(y[locs["trainval_loc"]])
    unseen = np.unique(y[locs["test_unseen_loc"]])
    for key, classes in (("test_unseen_loc", np.intersect1d(seen, unseen)),
                         ("test_seen_loc", np.setdiff1d(y[locs["test_seen_loc"]], seen))):
        if classes.size:
            expected = "only unseen classes" if key == "test_unseen_loc" else "only seen classes"
            raise _error(split_path, key, expected,
                         f"class(es) {(classes[:5] + 1).tolist()} (1-based) that are "
                         f"{'in' if key == 'test_unseen_loc' else 'not in'} trainval", fetch)

    val_classes, list_files = _val_classes(root / dataset, mats["att_splits.mat"], split_path,
                                           seen)
    files.update(list_files)

    # The class lists stay out of the fingerprint, so that run ids made before they were read
    # (the regression baseline's among them) still name the same data; their sha256 is in files.
    fingerprint = hashlib.sha256()
    for name, arr in (("features", x), ("labels", y), *locs.items(), ("att", att)):
        fingerprint.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
        fingerprint.update(arr.tobytes())

    # ===== preprocessing (docs/data.md) =====
    emb = att
    if dataset in SENT_FILE and normalize_sent:
        emb = att / np.maximum(np.linalg.norm(att, axis=0, keepdims=True), 1e-12)
    train_x, seen_x, unseen_x = _scale(*(x[locs[key]] for key in SPLITS))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"

    def tensor(arr: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr)).to(device)

    return Benchmark(
        name=dataset,
        synthetic=any("synthetic" in mat for mat in mats.values()),
        fingerprint=fingerprint.hexdigest()[:16],
        files=files,
        train_x=tensor(train_x),
        train_y=tensor(y[locs["trainval_loc"]]),
        test_seen_x=tensor(seen_x),
        test_seen_y=tensor(y[locs["test_seen_loc"]]),
        test_unseen_x=tensor(unseen_x),
        test_unseen_y=tensor(y[locs["test_unseen_loc"]]),
        att=tensor(emb.T.astype(np.float32)),
        seen=tensor(seen),
        unseen=tensor(unseen),
        val_classes=None if val_classes is None else tensor(val_classes),
    )


def _val_classes(folder: Path, splits: dict, split_path: Path, seen: np.ndarray
                 ) -> tuple[np.ndarray | None, dict[str, str]]:
    """The validation classes of the proposed split (0-based, sorted) and {file: sha256} of the
    two lists; (None, {}) when the folder has neither list. The lists name classes; their
    indices are the positions of the names in ``allclasses_names``. Together they must be
    exactly the seen classes, disjoint."""
    paths = [folder / name for name in CLASS_LISTS]
    present = [p.is_file() and not p.is_symlink() for p in paths]
    if not any(present):
        return None, {}
    fix = "fix: restore both lists from xlsa17.zip, or remove both (a seeded split is used)"
    if not all(present):
        missing = paths[present.index(False)]
        raise DataError(f"{missing}: expected it beside {paths[present.index(True)].name}, "
                        f"found nothing; {fix}")
    names = splits.get("allclasses_names")
    if names is None:
        raise _error(split_path, "allclasses_names", "the class names the lists refer to",
                     "no such key", fix)
    index = {str(np.ravel(n)[0]) if np.size(n) else "": i for i, n in enumerate(np.ravel(names))}
    classes, files = [], {}
    for path in paths:
        size = path.stat().st_size
        if size > MAX_LIST_BYTES:
            raise DataError(f"{path}: expected at most {MAX_LIST_BYTES:,} bytes of class names, "
                            f"found {size:,}; {fix}")
        raw = path.read_bytes()
        files[path.name] = hashlib.sha256(raw).hexdigest()
        try:
            listed = raw.decode("utf-8").split()
        except UnicodeDecodeError:
            raise DataError(f"{path}: expected UTF-8 class names, one a line, found other bytes; "
                            f"{fix}") from None
        unknown = [n for n in listed if n not in index]
        if unknown:
            raise DataError(f"{path}: expected names of allclasses_names in {split_path.name}, "
                            f"found {unknown[0]!r}; {fix}")
        classes.append(np.unique([index[n] for n in listed]).astype(np.int64))
    train, val = classes
    if (np.intersect1d(train, val).size or val.size == 0 or train.size == 0
            or not np.array_equal(np.union1d(train, val), seen)):
        raise DataError(f"{paths[1]}: expected, with {paths[0].name}, a split of the "
                        f"{seen.size} seen (trainval) classes into two disjoint non-empty parts, "
                        f"found {train.size} + {val.size} classes that are not; {fix}")
    return val, files


def _scale(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Min-max scaler fit on trainval only, then everything divided by the scaled trainval max."""
    low = train.min(axis=0)
    span = train.max(axis=0) - low
    span[span == 0] = 1  # a constant feature maps to 0, as sklearn's MinMaxScaler does
    scaled = [(arr - low) / span for arr in (train, *others)]
    top = scaled[0].max()  # 1 unless every trainval feature is constant
    return [arr / top for arr in scaled] if top > 0 else scaled


def _error(path: Path, key: str, expected: str, found: str, fix: str) -> DataError:
    return DataError(f"{path}: key '{key}': expected {expected}, found {found}; {fix}")


def _numeric(mat: dict, key: str, path: Path) -> np.ndarray:
    if key not in mat:
        present = ", ".join(sorted(k for k in mat if not k.startswith("__")))
        raise _error(path, key, f"a key '{key}'", f"only [{present}]",
                     "fix: the file is not an xlsa17 file or is from another release; refetch it")
    arr = np.asarray(mat[key])
    if arr.dtype.kind not in "biuf":
        raise _error(path, key, "a numeric array", f"dtype {arr.dtype}", "fix: refetch the file")
    return arr


def _integers(mat: dict, key: str, path: Path) -> np.ndarray:
    arr = _numeric(mat, key, path).ravel()
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise _error(path, key, "whole numbers", "fractional or non-finite values",
                     "fix: refetch the file")
    return arr.astype(np.int64)  # before any arithmetic: xlsa17 stores uint16


def _finite(arr: np.ndarray, path: Path, key: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise _error(path, key, "finite values", f"{int(bad.sum())} NaN/Inf entries",
                     "fix: refetch or regenerate the file")
