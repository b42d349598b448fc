"""Device memory of a training, estimated from its shapes before anything is allocated: how many
seeds one job can stack on a GPU (bench.sweep's default ``--seeds-per-job`` there).

An estimate, not a measurement: float32 tensors the trainer keeps (networks with their gradients
and Adam's two moments, one evaluation's features and classifier copies) and the data, plus a
fixed allowance for the CUDA context and the allocator's slack. ``benchmarks/gpu_check.sh``
measures the peak at 5 stacked seeds to hold it against.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30
FLOAT_BYTES = 4  # float32, the paper profile's dtype
STATE_COPIES = 4  # choice: weights, gradients and Adam's two moments per parameter
# choice: the CUDA context (~0.3-0.5 GiB) and the caching allocator's fragmentation
OVERHEAD_BYTES = 1 * GIB
USABLE = 0.75  # choice: a quarter of the card left to what the estimate misses (step temporaries)
# choice: the smallest card the defaults are sized for, assumed where the GPU is not visible
SMALL_CARD_BYTES = 12 * 10**9
MOST_SEEDS = 5  # choice: the suite's default seeds per job (one batched pass per cell)


@dataclass(frozen=True)
class Shapes:
    """What the estimate needs of a dataset: split sizes, feature and embedding widths."""

    trainval: int
    test_seen: int
    test_unseen: int
    n_unseen: int
    feature_dim: int
    att_dim: int

    @classmethod
    def of(cls, data) -> Shapes:
        """From a loaded :class:`~vsboost.data.Benchmark` (sizes only, nothing read back)."""
        return cls(len(data.train_y), len(data.test_seen_y), len(data.test_unseen_y),
                   len(data.unseen), data.feature_dim, data.att_dim)


def parameters(cfg, shapes: Shapes) -> int:
    """Parameters of one member's networks (models.py): G, D, and E, R, F where the row has them
    (VS-Boost's metric branches; another method's extra heads are small beside G and D)."""
    sml, rml = _branches(cfg)
    f, a, h, e = shapes.feature_dim, shapes.att_dim, cfg.hidden, cfg.values.get("enc_dim", 0)
    z = cfg.noise_dim or a
    n = (z + a) * h + h + h * f + f  # G
    n += (f + a) * h + h + h + 1  # D
    if sml or rml:
        n += f * e + e
    if sml:
        n += e * h + h + h * a + a
    if rml:
        n += e + 1
    return n


def _branches(cfg) -> tuple[bool, bool]:
    """Which of VS-Boost's metric branches (SML, RML) the row trains; none for other methods."""
    return bool(cfg.settings.get("sml")), bool(cfg.settings.get("rml"))


def per_seed_bytes(cfg, shapes: Shapes) -> int:
    """What one more stacked member adds: its training state and its evaluation's copies (the
    refined splits and synthetic features, the GZSL training set with its shuffled copy, the
    CZSL one's shuffled copy; evaluate.py)."""
    d = cfg.enc_dim if any(_branches(cfg)) else shapes.feature_dim
    syn = cfg.syn_num * shapes.n_unseen
    features = shapes.trainval + syn + shapes.test_seen + shapes.test_unseen
    fits = 2 * (shapes.trainval + syn) + syn
    return FLOAT_BYTES * (STATE_COPIES * parameters(cfg, shapes) + d * (features + fits))


def shared_bytes(shapes: Shapes) -> int:
    """What a job holds whatever its members: the data on the device and the fixed overhead."""
    rows = shapes.trainval + shapes.test_seen + shapes.test_unseen
    return FLOAT_BYTES * rows * shapes.feature_dim + OVERHEAD_BYTES


def seeds_that_fit(cfg, shapes: Shapes, device_bytes: int) -> int:
    """Seeds per job on a device of ``device_bytes``: as many as the estimate fits in
    :data:`USABLE` of it, at least 1 and at most :data:`MOST_SEEDS`."""
    room = USABLE * device_bytes - shared_bytes(shapes)
    return max(1, min(MOST_SEEDS, int(room // per_seed_bytes(cfg, shapes))))
