"""The embedded synthetic benchmark: xlsa17-format files with no image behind any feature.

:func:`write` produces, per dataset, the files :func:`vsboost.data.load` reads, with the real
attribute dimension, class counts, seen/unseen split, split sizes (docs/data.md) times ``scale``.
Every file carries a key ``synthetic`` saying what it is. Features follow docs/synthetic.md (see
:class:`Knobs`); the defaults are calibrated so that :func:`reference`, a closed-form ridge
baseline, lands in H = 0.3-0.8 on every dataset at scale 0.1, with or without ``real_meta``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from vsboost import matfile
from vsboost.config import DATASETS
from vsboost.data import CLASS_LISTS, FEATURE_DIM, SENT_FILE, SPLITS, DataError, data_files, load
from vsboost.errors import UserError
from vsboost.files import atomic_path


@dataclass(frozen=True)
class _Layout:
    att_dim: int
    n_seen: int
    n_unseen: int
    trainval: int
    test_seen: int
    test_unseen: int
    att_offset: float  # offset of the random attribute generator: sets sparsity and mean cosine
    signed: bool  # FLO's sentence embedding has negative entries; attributes do not


# Sizes: docs/data.md (measured on the real files). Offsets (choice) set the mean pairwise cosine
# near the real one (APY 0.28, AWA2 0.58, SUN 0.50, FLO 0.77) and the sparsity; the measured
# comparison with the real files is in docs/synthetic.md.
LAYOUT = {
    "APY": _Layout(64, 20, 12, 5932, 1483, 7924, -1.1, False),
    "AWA2": _Layout(85, 40, 10, 23527, 5882, 7913, 0.0, False),
    "CUB": _Layout(312, 150, 50, 7057, 1764, 2967, -0.5, False),
    "FLO": _Layout(1024, 82, 20, 5631, 1403, 1155, 1.2, True),
    "SUN": _Layout(102, 645, 72, 10320, 2580, 1440, 0.0, False),
}
SENT_DIM = 1024  # CUB's CNN-RNN sentence embedding (docs/data.md): mean cosine 0.79, 7% zeros
SENT_OFFSET = 1.1  # choice: matches those two numbers
SENT_NORMS = (17.0, 22.0)  # docs/data.md: real CUB sentence columns are stored with norms ~17-22
MIN_PER_SPLIT = 2  # choice: every class has >= 2 images in each split it appears in
FLO_SPLIT_SEED = 102  # choice: fixes the stand-in for FLO's unknown real unseen set (see below)
RIDGE = 1.0  # choice: ridge penalty of reference()
# Validation classes of the proposed split (valclasses1.txt of the real metadata, docs/data.md);
# FLO's real release has no class lists, so neither has its synthetic stand-in.
VAL_CLASSES = {"APY": 5, "AWA2": 13, "CUB": 50, "SUN": 65}

# ----- machine-independent arithmetic (docs/synthetic.md, "Same bytes on every machine") -----
# The last bits of a BLAS matmul, a SIMD reduction or a transcendental differ between kernels,
# CPUs and libm builds. So: every matmul runs on integers (fixed point, exact in any order), every
# sum is math.fsum (correctly rounded, order-free), and every value written to a file is first
# rounded to a coarse grid, which a one-ulp difference upstream crosses with probability ~1e-11.
FIXED_BITS = 16  # choice: fraction bits of the fixed-point matmul inputs (resolution 1.5e-5)
KEPT_BITS = 16  # choice: significant bits of every written feature (float32 holds them exactly)


def _fixed(x: np.ndarray) -> np.ndarray:
    scaled = np.rint(np.ldexp(np.asarray(x, np.float64), FIXED_BITS))
    if np.abs(scaled).max(initial=0) >= 2.0**40:  # keeps every product sum far from int64 overflow
        raise ValueError("fixed-point input out of range")
    return scaled.astype(np.int64)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with both rounded to FIXED_BITS: exact integer arithmetic, the same everywhere."""
    return np.ldexp((_fixed(a) @ _fixed(b)).astype(np.float64), -2 * FIXED_BITS)


def _sum(x: np.ndarray, axis: int) -> np.ndarray:
    """Correctly rounded sums along ``axis`` (numpy's pairwise SIMD sums depend on the build)."""
    moved = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    return np.array([math.fsum(row) for row in flat]).reshape(moved.shape[:-1])


def _mean(x: np.ndarray, axis: int) -> np.ndarray:
    return _sum(x, axis) / x.shape[axis]


def _norm(x: np.ndarray, axis: int) -> np.ndarray:
    return np.sqrt(_sum(np.square(x), axis))  # squaring and sqrt are exactly rounded everywhere


def _round(x: np.ndarray, bits: int = KEPT_BITS) -> np.ndarray:
    """``x`` rounded to ``bits`` significant bits (exact scalings by powers of two)."""
    mantissa, exponent = np.frexp(np.asarray(x, np.float64))
    return np.ldexp(np.rint(np.ldexp(mantissa, bits)), exponent - bits)


@dataclass(frozen=True)
class Knobs:
    """What makes the features a useful stand-in for ResNet-101 features (docs/synthetic.md).

    A class c gets a latent centre z_c (``latent`` wide) from a fixed random non-linear map of its
    embedding; images add a mode offset, their class's own spread and a nuisance block, are
    projected to 2048 dims and pass through a scaled softplus (dense, non-negative, heavy-tailed).

    latent:        width of the class space (rank of everything class-related in the features).
    nonlinearity:  gain inside the tanh of the embedding map; 0 would make it linear, so a ridge
                   map from embedding to features would be exact.
    fidelity:      share of each centre that follows the embedding; the rest is a random
                   class-specific part. 1 = embedding cosine predicts visual similarity fully,
                   0 = not at all (no zero-shot transfer possible).
    shift:         seen->unseen shift: a common offset, in centre standard deviations, added to
                   every unseen centre and predicted by no embedding (APY's unseen look unlike its
                   seen).
    modes:         modes per class (sub-centres such as views or sub-species).
    mode_spread:   distance of the modes from their class centre, in centre standard deviations.
    class_spread:  median within-class spread around a mode, in the same units.
    spread_jitter: log-normal sigma of each class's own spread around that median.
    nuisance:      standard deviation, per output dimension, of a block of within-class variance
                   shared by all classes and explained by none (pose, background, lighting);
                   large compared with the class signal, as in real features.
    nuisance_rank: rank of that block.
    noise:         isotropic noise per output dimension.
    imbalance:     log-normal sigma of the class-size weights (unequal per-class counts).

    Every default is a choice, tuned with :func:`reference` (H 0.477-0.694 at scale 0.1, seed 0).
    """

    latent: int = 64
    nonlinearity: float = 1.5
    fidelity: float = 0.85
    shift: float = 0.5
    modes: int = 3
    mode_spread: float = 0.5
    class_spread: float = 0.7
    spread_jitter: float = 0.3
    nuisance: float = 1.5
    nuisance_rank: int = 32
    noise: float = 0.5
    imbalance: float = 0.5


MARKER = (
    "SYNTHETIC stand-in written by vsboost.synthetic ({detail}): not real data, no image behind "
    "any feature; for testing the pipeline only, never for reporting results."
)


# The 116-byte text field that opens a MAT 5 file, fixed so that the files are byte-identical
# on every machine and every day (scipy writes the creation time there).
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by vsboost.synthetic".ljust(116, b" ")


def write(
    root: str | Path,
    datasets=DATASETS,
    *,
    scale: float = 0.1,
    seed: int = 0,
    real_meta: str | Path | None = None,
    knobs: Knobs | None = None,
    real_pins: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``<root>/<DS>/res101.mat``, ``att_splits.mat`` (and CUB ``sent_splits.mat``).

    Split sizes are the real ones times ``scale``, raised where needed so that every class has
    at least two images in each split it appears in. Deterministic in (dataset, scale, seed,
    real_meta, knobs). ``real_meta``: an xlsa17 data root (real metadata), whose real embeddings,
    seen/unseen classes and split sizes are then used; ``real_pins`` ({``<DS>/<file>``: sha256},
    the data lock's) are checked before its files are parsed. Returns the written paths.
    """
    if not scale > 0:
        raise UserError(f"scale: expected > 0, found {scale}; e.g. scale=0.1")
    for dataset in datasets:
        if dataset not in LAYOUT:
            raise UserError(f"unknown dataset {dataset!r}: expected one of {', '.join(LAYOUT)}")
        needed = Path(real_meta or ".") / dataset / "att_splits.mat"
        if real_meta is not None and not needed.is_file():
            raise UserError(f"{needed}: expected the real metadata file, found nothing; "
                            "fix: point real_meta at an xlsa17 root (<DATASET>/att_splits.mat)")
    written = []
    for dataset in datasets:
        written += _write_one(Path(root) / dataset, dataset, scale, seed, real_meta,
                              knobs or Knobs(), real_pins)
    verify(root, datasets)  # the default files are checked against their pins as written
    return written


# choice: the embedded benchmark's default files, the same on every machine (docs/synthetic.md).
DEFAULT_SCALE = 0.1
DEFAULT_SEED = 0
# The sha256 of every default file, in `sha256sum` format; checked whenever they are written or
# read for a run. Regenerate with `python -m vsboost.synthetic --pin` after changing the generator.
PINS = Path(__file__).with_name("synthetic.sha256")


def benchmark_files(dataset: str) -> list[str]:
    """Every file the benchmark writes for ``dataset``, relative to the root: what the loader
    reads, and the proposed split's class lists where the real dataset has them."""
    lists = [f"{dataset}/{name}" for name in CLASS_LISTS] if dataset in VAL_CLASSES else []
    return data_files(dataset) + lists


def pins() -> dict[str, str]:
    """Relative path (``APY/res101.mat``) -> pinned sha256 of the default files."""
    lines = PINS.read_text().splitlines()
    return {path: digest for digest, path in (line.split() for line in lines if line.strip())}


def ensure(root: str | Path, datasets) -> list[str]:
    """Write the default embedded benchmark into ``root`` for every dataset whose files are
    missing, then check every default file against its pin; returns the datasets written. Under
    a file lock: two sweeps starting at once must not write the same files together. The one way
    every command gets synthetic data."""
    import filelock

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(root / ".synthetic.lock"):
        missing = [ds for ds in datasets
                   if not all((root / f).is_file() for f in benchmark_files(ds))]
        if missing:
            write(root, missing, scale=DEFAULT_SCALE, seed=DEFAULT_SEED)
        verify(root, [ds for ds in datasets if ds not in missing])  # and as read for a run
    return missing


def verify(root: str | Path, datasets) -> None:
    """Compare the files of ``datasets`` under ``root`` with their pins, when they are the default
    files (the marker says so); a mismatch: one line naming the file, both hashes and the cause.
    Hashes first: a file is parsed (for its marker, in a child process) only when it differs."""
    root, pinned = Path(root), pins()
    for dataset in datasets:
        found = {rel: matfile.sha256(root / rel) for rel in benchmark_files(dataset)}
        if all(found[rel] == pinned[rel] for rel in found):
            continue
        default = MARKER.format(detail=_detail(dataset, DEFAULT_SCALE, DEFAULT_SEED, "none",
                                               Knobs()))
        if marker(root / dataset / "att_splits.mat") != default:
            continue  # written with other settings on purpose (`bench data synth --scale ...`)
        for rel, digest in found.items():
            if digest != pinned[rel]:
                raise DataError(
                    f"{root / rel}: sha256 {digest} but the embedded benchmark pins {pinned[rel]}; "
                    f"likely cause: the file was changed after it was written, or numpy "
                    f"{np.__version__} / scipy {scipy.__version__} write other bytes than the "
                    f"tested versions (docs/synthetic.md); fix: delete {root / dataset} and rerun "
                    f"to rewrite it, and report the versions if it persists")


# choice: the marker is one line of ~200 characters (4 bytes each as numpy holds them)
MAX_MARKER_BYTES = 1 << 16


def marker(path: Path) -> str | None:
    """The marker variable, read through the bounded child parser (vsboost/matfile.py)."""
    try:
        (mat,) = matfile.read([path], ("synthetic",), fix="", max_array=MAX_MARKER_BYTES)
    except matfile.MatError:  # not a readable MAT file: the loader names the problem
        return None
    marker = mat.arrays.get("synthetic")
    return str(marker.ravel()[0]) if marker is not None and marker.dtype.kind == "U" \
        and marker.size else None


REAL_VARIABLES = ("att", "original_att", "allclasses_names", *SPLITS)


def _real_mat(real_meta: Path, dataset: str, name: str, pins: dict[str, str] | None) -> dict:
    """A real metadata file, checked against its pin (``pins``: {``<DS>/<file>``: sha256}, the
    data lock's) before it is parsed in the bounded child (vsboost/matfile.py)."""
    path = Path(real_meta) / dataset / name
    pin = (pins or {}).get(f"{dataset}/{name}")
    try:
        (mat,) = matfile.read([path], REAL_VARIABLES, fix="fix: point --real-meta at an "
                              "unchanged xlsa17 root", pins={path: pin} if pin else None,
                              cells=("allclasses_names",))
    except matfile.MatError as err:
        raise DataError(str(err)) from None
    for key in ("att", *([] if name != "att_splits.mat" else SPLITS)):
        if key not in mat.arrays or mat.arrays[key].dtype.kind not in "biuf":
            raise DataError(f"{path}: key '{key}': expected a numeric array, found "
                            f"{'none' if key not in mat.arrays else mat.arrays[key].dtype}; "
                            "fix: point --real-meta at an xlsa17 root")
    return mat.arrays


def real_classes(real_meta: str | Path, dataset: str, pins: dict[str, str] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The real (seen, unseen) 0-based class ids, from ``trainvalclasses``/``testclasses.txt``."""
    folder = Path(real_meta) / dataset
    mat = _real_mat(Path(real_meta), dataset, "att_splits.mat", pins)
    n_classes = mat["att"].shape[1]
    lists = folder / "testclasses.txt"
    if "allclasses_names" in mat and lists.is_file():
        names = [str(name) for name in mat["allclasses_names"].ravel()]
        test = set(lists.read_text().split())
        is_unseen = np.array([name in test for name in names])
    else:
        # FLO ships no class lists and its real unseen set cannot be derived without its labels
        # (docs/data.md), so a fixed draw of the real count stands in for it, equal for every seed.
        draw = np.random.default_rng(FLO_SPLIT_SEED)
        is_unseen = np.zeros(n_classes, bool)
        is_unseen[draw.choice(n_classes, LAYOUT[dataset].n_unseen, replace=False)] = True
    return np.flatnonzero(~is_unseen), np.flatnonzero(is_unseen)


def reference(root: str | Path, dataset: str) -> dict[str, float]:
    """GZSL U, S, H of a closed-form reference: ridge regression from class embedding to
    class-mean feature, fit on the seen classes, then the nearest predicted centre among all S+U
    classes (CZSL ``acc``: among the unseen classes only). No training loop, seconds: the level
    a good generator should approach on the same files. Per-class mean accuracy,
    H = 2SU/(S+U) (docs/protocols.md); also calibrates :class:`Knobs`.
    """
    data = load(root, dataset)
    x, y = data.train_x.double().numpy(), data.train_y.numpy()
    att, seen = data.att.double().numpy(), data.seen.numpy()
    means = np.stack([x[y == c].mean(0) for c in seen])
    att_mean, feat_mean = att[seen].mean(0), means.mean(0)
    a = att[seen] - att_mean
    # dual form: cheaper than the primal when A (up to 1024) exceeds S
    weights = a.T @ np.linalg.solve(a @ a.T + RIDGE * np.eye(len(seen)), means - feat_mean)
    centres = (att - att_mean) @ weights + feat_mean

    def per_class_acc(features, labels, among) -> float:
        near = centres[among]
        dist = (features**2).sum(1)[:, None] - 2 * features @ near.T + (near**2).sum(1)
        hit = among[dist.argmin(1)] == labels
        return float(np.mean([hit[labels == c].mean() for c in np.unique(labels)]))

    every, unseen = np.arange(len(centres)), data.unseen.numpy()
    test_u, test_u_y = data.test_unseen_x.double().numpy(), data.test_unseen_y.numpy()
    s = per_class_acc(data.test_seen_x.double().numpy(), data.test_seen_y.numpy(), every)
    u = per_class_acc(test_u, test_u_y, every)
    czsl = per_class_acc(test_u, test_u_y, unseen)  # Table 3: among the unseen classes only
    return {"U": u, "S": s, "H": 2 * s * u / (s + u) if s + u > 0 else 0.0, "acc": czsl}


def _write_one(folder: Path, dataset: str, scale: float, seed: int, real_meta, knobs: Knobs,
               real_pins: dict[str, str] | None = None) -> list[Path]:
    # independent streams, so e.g. real_meta changes the embeddings but not the feature noise
    emb_rng, split_rng, feat_rng = (
        np.random.default_rng([seed, DATASETS.index(dataset), stream]) for stream in range(3)
    )
    if real_meta is None:
        classes = _random_classes(emb_rng, dataset)
    else:
        classes = _real_classes(Path(real_meta), dataset, real_pins)
    original, sent, names, seen, unseen, sizes = classes
    n_classes = original.shape[1]
    att = original / _norm(original, 0)
    labels, locs = _assign(split_rng, scale, sizes, seen, unseen, knobs.imbalance)
    emb = att if sent is None else sent / _norm(sent, 0)  # what the loader serves
    features = _features(feat_rng, emb, labels, np.isin(np.arange(n_classes), unseen), knobs)

    meta = "none" if real_meta is None else str(real_meta)  # a path the user passed explicitly
    marker = MARKER.format(detail=_detail(dataset, scale, seed, meta, knobs))
    loc_type = np.uint16 if len(labels) <= np.iinfo(np.uint16).max else np.uint32  # as xlsa17
    split_keys = {key: loc.astype(loc_type)[:, None] for key, loc in locs.items()}
    if names is None and dataset != "FLO":  # FLO's real file has no class names either
        names = [f"class_{c + 1:03d}" for c in range(n_classes)]
    class_names = {} if names is None else {"allclasses_names": _cell(names)}
    files = {
        "res101.mat": {
            "features": features.T,
            "labels": (labels + 1.0)[:, None],  # MATLAB double, 1-based (xlsa17 layout)
            # a char matrix, where xlsa17 has a cell column: the loader never reads it and
            # writing 10^4 cells costs seconds
            "image_files": np.array([f"synthetic/{dataset}/{c + 1:03d}/{i + 1:06d}.jpg"
                                     for i, c in enumerate(labels)]),
            "synthetic": marker,
        },
        "att_splits.mat": {"att": att, "original_att": original, **split_keys, **class_names,
                           "synthetic": marker},
    }
    if sent is not None:
        files["sent_splits.mat"] = {"att": sent, **split_keys, **class_names, "synthetic": marker}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if dataset in VAL_CLASSES:  # a stream of its own: the other files keep their bytes
        val = _val_classes(np.random.default_rng([seed, DATASETS.index(dataset), 3]), dataset,
                           seen, real_meta)
        for name, classes in zip(CLASS_LISTS, (np.setdiff1d(seen, val), val), strict=True):
            paths.append(folder / name)
            with atomic_path(paths[-1]) as partial:
                partial.write_text("".join(f"{names[c]}\n" for c in classes))
    for name, content in files.items():
        paths.append(folder / name)
        with atomic_path(paths[-1]) as partial:  # a killed write leaves no half file
            # uncompressed: zlib builds (zlib, zlib-ng) emit different bytes for the same data
            scipy.io.savemat(partial, content, do_compression=False)
            with open(partial, "r+b") as f:  # scipy stamps the time there: same bytes every run
                f.write(MAT_HEADER)
    return paths


def _val_classes(rng, dataset: str, seen: np.ndarray, real_meta) -> np.ndarray:
    """The validation classes: the real valclasses1.txt's when ``real_meta`` has it (matched
    by name), else a draw of the real count from the seen classes."""
    real = None if real_meta is None else Path(real_meta) / dataset / CLASS_LISTS[1]
    if real is not None and real.is_file():
        mat = scipy.io.loadmat(Path(real_meta) / dataset / "att_splits.mat")
        names = [str(np.ravel(name)[0]) for name in mat["allclasses_names"].ravel()]
        listed = set(real.read_text().split())
        return np.array([c for c, name in enumerate(names) if name in listed], dtype=np.int64)
    return np.sort(rng.choice(seen, VAL_CLASSES[dataset], replace=False))


def _random_classes(rng, dataset: str):
    """Random embeddings (A x C; CUB also 1024 x C sentences), class names, seen/unseen, sizes."""
    layout = LAYOUT[dataset]
    n_classes = layout.n_seen + layout.n_unseen
    original = _random_embedding(rng, layout.att_dim, n_classes, layout.att_offset, layout.signed)
    unseen = np.sort(rng.choice(n_classes, layout.n_unseen, replace=False))
    seen = np.setdiff1d(np.arange(n_classes), unseen)
    sent = None
    if dataset in SENT_FILE:
        sent = _random_embedding(rng, SENT_DIM, n_classes, SENT_OFFSET, False)
        low, high = SENT_NORMS  # a uniform norm per class, drawn without rng.uniform's fused ops
        sent = _round(sent * (low + (high - low) * rng.random(n_classes)) / _norm(sent, 0))
    sizes = (layout.trainval, layout.test_seen, layout.test_unseen)
    return original, sent, None, seen, unseen, sizes


def _real_classes(real_meta: Path, dataset: str, pins: dict[str, str] | None):
    """The same from the real metadata: real embeddings, names, class sets and split sizes."""
    real = _real_mat(real_meta, dataset, "att_splits.mat", pins)
    original = real.get("original_att", real["att"]).astype(np.float64)  # FLO has only att
    names = None
    if "allclasses_names" in real:
        names = [str(name) for name in real["allclasses_names"].ravel()]
    sent = None
    if dataset in SENT_FILE:
        sent = _real_mat(real_meta, dataset, SENT_FILE[dataset], pins)["att"].astype(np.float64)
    sizes = tuple(real[key].size for key in SPLITS)
    return (original, sent, names, *real_classes(real_meta, dataset, pins), sizes)


def _assign(rng, scale: float, sizes, seen, unseen, imbalance: float):
    """Class label of every image (images ordered by class, as in xlsa17) and the 1-based row
    lists of the three splits plus the trap lists ``train_loc``/``val_loc``."""
    n_classes = len(seen) + len(unseen)
    weights = np.exp(imbalance * rng.standard_normal(n_classes))
    counts = np.zeros((3, n_classes), np.int64)  # rows: trainval, test_seen, test_unseen
    for row, (size, group) in enumerate(zip(sizes, (seen, seen, unseen))):
        counts[row, group] = _counts(max(round(scale * size), MIN_PER_SPLIT * len(group)),
                                     weights[group])
    labels = np.repeat(np.arange(n_classes), counts.sum(0))
    role = np.concatenate([rng.permutation(np.repeat([0, 1, 2], counts[:, c]))
                           for c in range(n_classes)])
    locs = {key: rng.permutation(np.flatnonzero(role == row)) + 1
            for row, key in enumerate(SPLITS)}
    # The xlsa17 trap (docs/data.md): train_loc/val_loc hold *all* images of their seen classes, so
    # their union covers test_seen too. Val classes: a fifth of the seen ones (choice).
    val_classes = rng.choice(seen, max(1, round(0.2 * len(seen))), replace=False)
    is_val = np.isin(labels, val_classes)
    locs["train_loc"] = rng.permutation(np.flatnonzero(~is_val & (role < 2))) + 1
    locs["val_loc"] = rng.permutation(np.flatnonzero(is_val & (role < 2))) + 1
    return labels, locs


def _random_embedding(rng, dim: int, n_classes: int, offset: float, signed: bool) -> np.ndarray:
    """A dim x C class embedding like the real ones: a few dominant factors and families of
    near-duplicate classes (choice: rank 10, families of ~4; docs/synthetic.md compares the
    result with the real files)."""
    rank, family_size = 10, 4
    factors = rng.standard_normal((dim, rank)) * 0.85 ** np.arange(rank) / np.sqrt(rank)
    families = rng.standard_normal((rank, max(2, n_classes // family_size)))
    codes = (families[:, rng.integers(families.shape[1], size=n_classes)]
             + 0.4 * rng.standard_normal((rank, n_classes)))
    raw = (offset + 0.5 * rng.standard_normal((dim, 1)) + _matmul(factors, codes)
           + 0.25 * rng.standard_normal((dim, n_classes)))
    if not signed:
        raw = np.maximum(raw, 0)
    raw = _round(raw)
    raw[:, _norm(raw, 0) == 0] = 1.0  # an all-zero class cannot be normalised
    return raw


def _counts(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``weights``, at least MIN_PER_SPLIT each."""
    spare = total - MIN_PER_SPLIT * len(weights)
    share = spare * weights / _sum(weights, 0)
    counts = np.floor(share).astype(np.int64)
    # largest remainders; a stable sort, since SIMD sorts order ties by CPU
    counts[np.argsort(counts - share, kind="stable")[: spare - counts.sum()]] += 1
    return MIN_PER_SPLIT + counts


def _features(rng, emb: np.ndarray, labels: np.ndarray, is_unseen: np.ndarray,
              knobs: Knobs) -> np.ndarray:
    """N x 2048 float32 features; ``emb`` is the unit-norm A x C embedding the loader serves."""
    n_classes, latent, rank = emb.shape[1], knobs.latent, knobs.nuisance_rank
    # ----- class centres: fixed random non-linear map of the centred embedding -----
    centred = emb.T - _mean(emb, 1)
    centred /= np.sqrt(_mean(_sum(np.square(centred), 1), 0))
    mapped = np.tanh(knobs.nonlinearity
                     * _matmul(centred, rng.standard_normal((emb.shape[0], latent))))
    mapped -= _mean(mapped, 0)
    mapped /= np.sqrt(_mean(np.square(mapped), 0))  # unit standard deviation per latent axis
    own = rng.standard_normal((n_classes, latent))
    centres = np.sqrt(knobs.fidelity) * mapped + np.sqrt(1 - knobs.fidelity) * own
    centres[is_unseen] += knobs.shift * rng.standard_normal(latent)
    # ----- images: mode, class's own spread, then the shared nuisance block -----
    modes = knobs.mode_spread * rng.standard_normal((n_classes, knobs.modes, latent))
    spread = knobs.class_spread * np.exp(knobs.spread_jitter * rng.standard_normal(n_classes))
    n = len(labels)
    z = (centres[labels] + modes[labels, rng.integers(knobs.modes, size=n)]
         + spread[labels, None] * rng.standard_normal((n, latent)))
    u = knobs.nuisance * rng.standard_normal((n, rank))
    # one projection to 2048 dims for class space and nuisance block alike, each coordinate
    # keeping its variance
    project = np.concatenate([rng.standard_normal((latent, FEATURE_DIM)) / np.sqrt(latent),
                              rng.standard_normal((rank, FEATURE_DIM)) / np.sqrt(rank)])
    pre = _matmul(np.concatenate([z, u], axis=1), project)
    pre += knobs.noise * rng.standard_normal((n, FEATURE_DIM), dtype=np.float32)
    pre += -1.0 + 0.5 * rng.standard_normal(FEATURE_DIM)  # offset (choice): mostly small
    # softplus keeps values dense and positive; log-normal per-dimension scales add heavy tails
    scale = np.exp(0.5 * rng.standard_normal(FEATURE_DIM))
    return _round(scale * np.logaddexp(0.0, pre)).astype(np.float32)


def _detail(dataset: str, scale: float, seed: int, real_meta: str, knobs: Knobs) -> str:
    """How a file was made, as its marker states it; custom knobs are spelled out."""
    detail = f"dataset={dataset}, scale={scale}, seed={seed}, real_meta={real_meta}"
    return detail if knobs == Knobs() else f"{detail}, knobs={knobs}"


def _cell(strings: list[str]) -> np.ndarray:
    """A MATLAB cell column of strings, as xlsa17 stores names."""
    cell = np.empty((len(strings), 1), dtype=object)
    cell[:, 0] = strings
    return cell


def _pin(root: Path) -> None:
    """Write the default files into ``root`` and their sha256 into :data:`PINS`."""
    for dataset in DATASETS:  # not write(): it would check the files against the old pins
        _write_one(root / dataset, dataset, DEFAULT_SCALE, DEFAULT_SEED, None, Knobs())
    lines = [f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  {rel}"
             for ds in DATASETS for rel in benchmark_files(ds)]
    PINS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":  # python -m vsboost.synthetic --pin [ROOT]: after changing the generator
    import sys

    if sys.argv[1:2] != ["--pin"]:
        raise SystemExit("usage: python -m vsboost.synthetic --pin [ROOT]")
    _pin(Path(sys.argv[2] if len(sys.argv) > 2 else "data/synthetic"))
