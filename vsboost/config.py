"""Every hyperparameter in one place, each tagged with where it comes from.

Sources (defined in docs/README.md, "Source tags"): ``paper`` (the VS-Boost paper says so),
``lineage`` (the common practice of the public code VS-Boost descends from: f-CLSWGAN, LisGAN,
CE-GZSL, TF-VAEGAN, FREE), ``choice`` (ours). A ``lineage`` tag names the repository and the
file it was read from (docs/decisions.md gives the full tables).

``make_config(dataset, row, profile, overrides)`` is the only way to build a :class:`Config`; it
refuses unknown keys, wrong types and out-of-range values with a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from vsboost.errors import UserError

DATASETS = ("APY", "AWA2", "CUB", "FLO", "SUN")

# Table 4 of the paper: which metric-learning branches each ablation row trains.
ROWS = {
    "plain": {"sml": False, "rml": False},  # (a)     f-CLSWGAN-style generator, raw features
    "sml": {"sml": True, "rml": False},  # (a+b)   + semantic metric learning
    "rml": {"sml": False, "rml": True},  # (a+c)   + relational metric learning
    "full": {"sml": True, "rml": True},  # (a+b+c) VS-Boost
}

# paper: the paper's settings; smoke: tiny, for tests and the demo; regress: the smoke profile in
# float64, for the regression check (the same numbers on every CPU: docs/regression.md).
PROFILES = ("paper", "smoke", "regress")


DTYPES = ("float32", "float64")


class ConfigError(UserError):
    """A bad dataset, row, profile or override; the message is one line meant for a person."""


@dataclass(frozen=True)
class Config:
    dataset: str
    row: str
    profile: str
    # ---- episodes (paper §4: "N way, K shot") ----
    n_way: int
    k_shot: int
    steps_per_epoch: int  # 0 = |trainval| // (N*K), i.e. one pass over trainval per epoch
    sample_with_replacement: bool  # False: a class with fewer than K images is an error
    # ---- networks (paper §4, docs/method.md) ----
    hidden: int  # hidden units of G, D and R
    enc_dim: int  # output width of the encoder E (= classifier input)
    noise_dim: int  # 0 = attribute dimension (lineage)
    # ---- optimisation ----
    gan_epochs: int
    lr_gan: float
    lr_metric: float
    beta1: float  # Adam β₁ of G, D and the metric nets E, R, F (not the final classifiers)
    critic_steps: int
    gp_weight: float
    # ---- metric losses (paper eq. 3-7) ----
    tau: float
    sml_over: str  # "all" (S+U class embeddings) or "seen"
    sml_cosine: bool
    metric_on_fake: bool  # also apply SML/RML to E(G(z,a)) at the generator step
    normalize_sent: bool  # L2-normalise CUB sentence embeddings per class
    # ---- final classifier and evaluation (paper §3.7, lineage) ----
    syn_num: int
    cls_epochs: int
    cls_lr: float
    cls_batch: int  # 0 = syn_num (lineage)
    eval_every: int  # evaluate after every k-th generator epoch (and always after the last)
    # ---- reliability ----
    checkpoint_every: int  # 0 = never
    # ---- fields added after key schema 1 (see ADDED_FIELDS) ----
    tf32: bool  # allow TF32 tensor-core float32 matmuls and convolutions on CUDA (runtime.py)
    beta2: float  # Adam β₂ of G, D and E, R, F
    cls_beta1: float  # Adam betas of the final classifiers (evaluate.py)
    cls_beta2: float
    init_std: float  # N(0, init_std) initial weights of every linear layer, zero bias
    leak: float  # negative slope of every LeakyReLU (G, D, E, R)
    dtype: str  # "float32" or "float64": the floating-point type of every network and feature
    val_protocol: bool  # also train on the validation split and report the `val` protocol

    @property
    def sml(self) -> bool:
        return ROWS[self.row]["sml"]

    @property
    def rml(self) -> bool:
        return ROWS[self.row]["rml"]

    @property
    def uses_encoder(self) -> bool:
        return self.sml or self.rml

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self, schema: int | None = None) -> str:
        """Short hash of the settings: the part of a run's key that says 'same settings'.

        Stable when fields are added (docs/harness.md): it covers every field of the key schema
        (:data:`KEY_SCHEMA`, the current one, unless ``schema`` names an older one: the hash an
        old record was made with stays computable), and a later field only when its value
        differs from the value it was introduced with, so a config that does not use a new field
        keeps the run id it had before the field existed.
        """
        values = self.to_dict()
        unknown = set(values) - set(KEY_SCHEMA_1) - set(ADDED_FIELDS)
        if unknown:
            raise ConfigError(f"config fields {sorted(unknown)} are missing from ADDED_FIELDS")
        keyed = {k: values[k] for k in KEY_SCHEMAS[schema or KEY_SCHEMA]}
        keyed.update({k: values[k] for k, intro in ADDED_FIELDS.items()
                      if k in values and values[k] != intro})
        blob = json.dumps(keyed, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def deviations(self) -> dict[str, dict[str, Any]]:
        """``{key: {"value": v, "default": d}}`` for every setting that differs from the default
        of its (dataset, profile): what a run changed on purpose, for its record."""
        table = defaults(self.dataset, self.profile)
        return {k: {"value": getattr(self, k), "default": d}
                for k, (d, _) in table.items() if getattr(self, k) != d}


# ===== run keys =====
# Key schema 1: the fields a Config had when run ids were introduced. Their values always enter
# Config.hash(). Never edit this tuple: a changed list changes every run id.
KEY_SCHEMA_1 = (
    "dataset", "row", "profile", "n_way", "k_shot", "steps_per_epoch", "sample_with_replacement",
    "hidden", "enc_dim", "noise_dim", "gan_epochs", "lr_gan", "lr_metric", "beta1",
    "critic_steps", "gp_weight", "tau", "sml_over", "sml_cosine", "metric_on_fake",
    "normalize_sent", "syn_num", "cls_epochs", "cls_lr", "cls_batch", "eval_every",
    "checkpoint_every",
)
# Key schema 2, the current one: schema 1 without the fields that never change what a run trains
# to. checkpoint_every only says how often a run saves its state; a resumed run ends with the
# numbers of an uninterrupted one (tests/test_faults.py, tests/test_train.py). Never edit it
# either: a new schema is a new tuple.
KEY_SCHEMA_2 = tuple(k for k in KEY_SCHEMA_1 if k != "checkpoint_every")
KEY_SCHEMAS = {1: KEY_SCHEMA_1, 2: KEY_SCHEMA_2}
KEY_SCHEMA = 2
# Every field added later, with the value it was introduced with: the value that reproduces what
# runs did before the field existed. It enters the hash only when a config's value differs.
ADDED_FIELDS: dict[str, Any] = {
    "tf32": True,  # the trainer allowed TF32 on CUDA unconditionally before it was a setting
    # hard-coded in train.py, evaluate.py and models.py before they were settings:
    "beta2": 0.999, "cls_beta1": 0.5, "cls_beta2": 0.999, "init_std": 0.02, "leak": 0.2,
    "dtype": "float32",  # the trainer ran in float32 before it was a setting
    "val_protocol": False,  # runs before the val protocol recorded paper and last only
}


# Values shared by all datasets: (value, source).
COMMON: dict[str, tuple[Any, str]] = {
    "steps_per_epoch": (0, "choice: one pass over trainval per epoch (docs/method.md, episodes)"),
    "sample_with_replacement": (True, "choice: classes with < K images are drawn with "
                                      "replacement (docs/method.md)"),
    "hidden": (4096, "paper §4: 4,096-unit hidden layer in G, D, R"),
    "enc_dim": (2048, "paper §4: E is a [2048, 2048] linear layer"),
    "noise_dim": (0, "lineage: --nz equals --attSize in every published command (LisGAN "
                   "README.md, TF-VAEGAN run_*_tfvaegan.py, FREE run_*.py)"),
    "lr_metric": (1e-4, "choice: own Adam for E, R, F"),
    "beta1": (0.5, "lineage: CE-GZSL CE_GZSL.py, --beta1 0.5 as in every published command"),
    "beta2": (0.999, "lineage: CE-GZSL CE_GZSL.py, optim.Adam(betas=(opt.beta1, 0.999))"),
    "cls_beta1": (0.5, "lineage: CE-GZSL CE_GZSL.py, CLASSIFIER(..., opt.classifier_lr, 0.5, "
                       "25, opt.syn_num): a fixed 0.5, not --beta1"),
    "cls_beta2": (0.999, "lineage: CE-GZSL classifier_embed_contras.py, betas=(_beta1, 0.999)"),
    "init_std": (0.02, "lineage: weights_init in f-CLSWGAN and CE-GZSL model.py / util.py, "
                       "N(0, 0.02) weights, zero bias"),
    "leak": (0.2, "lineage: CE-GZSL model.py and f-CLSWGAN's generator and critic, "
                  "nn.LeakyReLU(0.2, True); paper §4 names LeakyReLU but gives no slope"),
    "critic_steps": (5, "lineage: --critic_iter 5 in LisGAN and CE-GZSL README.md, TF-VAEGAN "
                       "run_*_tfvaegan.py"),
    "gp_weight": (10.0, "paper eq. 1: gamma = 10"),
    "tau": (0.1, "lineage: CE-GZSL README.md, --ins_temp 0.1 --cls_temp 0.1"),
    "sml_over": ("all", "choice: paper 'N is the total number of semantic embeddings'"),
    "sml_cosine": (False, "paper eq. 3: raw dot product"),
    "metric_on_fake": (True, "choice (lineage CE-GZSL): metric losses also reach G"),
    "normalize_sent": (True, "lineage: RE-GZSL dataloader.py (the VS-Boost "
                               "authors' lab) L2-normalises CUB sentences"),
    "cls_epochs": (25, "lineage: CE-GZSL CE_GZSL.py, CLASSIFIER(..., 25, ...)"),
    "cls_lr": (1e-3, "lineage: CE-GZSL CE_GZSL.py, --classifier_lr 1e-3"),
    "cls_batch": (0, "lineage: CE-GZSL CE_GZSL.py passes opt.syn_num as batch"),
    "eval_every": (1, "lineage: CE-GZSL CE_GZSL.py evaluates after every generator "
                          "epoch"),
    "checkpoint_every": (5, "choice"),
    "tf32": (True, "choice: what PyTorch 1.7-1.11, the versions of the lineage's era, did by "
                   "default on Ampere GPUs (TF32 matmuls); no lineage file sets it"),
    "dtype": ("float32", "choice: PyTorch's default type, which the lineage's code trains in"),
    "val_protocol": (True, "choice: select on validation classes too (docs/protocols.md, `val`); "
                           "about one more training per run, false skips it"),
}

# Per-dataset values (docs/decisions.md): N-K from the paper, the rest from the lineage's published
# commands. gan_epochs gives at least the generator updates of the lineage's command for the
# dataset (epochs x |trainval| // (N*K); docs/budgets.md derives each).
PER_DATASET: dict[str, dict[str, tuple[Any, str]]] = {
    "APY": {
        "n_way": (8, "paper §4"), "k_shot": (64, "paper §4"),
        "syn_num": (1800, "lineage: LisGAN README.md gzsl_apy"),
        "lr_gan": (1e-5, "lineage: LisGAN README.md gzsl_apy"),
        "gan_epochs": (425, "choice (docs/budgets.md rule): 425 x 11 = 4,675 updates >= "
                       "LisGAN gzsl_apy 50 x 93"),
    },
    "AWA2": {
        "n_way": (8, "paper §4"), "k_shot": (64, "paper §4"),
        "syn_num": (1800, "lineage: TF-VAEGAN run_awa_tfvaegan.py, LisGAN README.md AWA1"),
        "lr_gan": (1e-5, "lineage: LisGAN README.md, TF-VAEGAN run_awa_tfvaegan.py, FREE "
                           "run_awa2.py"),
        "gan_epochs": (250, "choice (docs/budgets.md rule): 250 x 45 = 11,250 updates >= "
                       "LisGAN gzsl_awa 30 x 368"),
    },
    "CUB": {
        "n_way": (4, "paper §4"), "k_shot": (16, "paper §4"),
        "syn_num": (100, "lineage: CE-GZSL README.md"),
        "lr_gan": (1e-4, "lineage: CE-GZSL README.md, LisGAN README.md"),
        "gan_epochs": (75, "choice (docs/budgets.md rule): 75 x 110 = 8,250 updates >= "
                       "CE-GZSL 2000 x 4"),
    },
    "FLO": {
        "n_way": (1, "paper §4"), "k_shot": (32, "paper §4"),
        "syn_num": (1200, "lineage: LisGAN README.md, TF-VAEGAN run_flo_tfvaegan.py"),
        "lr_gan": (1e-4, "lineage: LisGAN README.md gzsl_flo"),
        "gan_epochs": (50, "choice (docs/budgets.md rule): 50 x 175 = 8,750 updates >= "
                       "LisGAN gzsl_flo 80 x 88"),
    },
    "SUN": {
        "n_way": (64, "paper §4"), "k_shot": (2, "paper §4"),
        "syn_num": (400, "lineage: LisGAN README.md, TF-VAEGAN run_sun_tfvaegan.py"),
        "lr_gan": (1e-4, "choice: CE-GZSL's default (CE_GZSL.py, written for CUB); every "
                          "published SUN command differs: LisGAN and FREE 2e-4, TF-VAEGAN 1e-3"),
        "gan_epochs": (100, "choice (docs/budgets.md rule): 100 x 80 = 8,000 updates >= "
                       "LisGAN gzsl_sun 40 x 162"),
    },
}

# Any other dataset in the xlsa17 format (`bench ... -d NAME --data-label LABEL`, e.g. AWA1 or
# a user's own): generic defaults, none of them the paper's. The CUB/SUN middle ground of the
# paper's episodes and the lineage's commands.
GENERIC: dict[str, tuple[Any, str]] = {
    "n_way": (8, "choice: generic dataset; the paper's APY/AWA2 episode width"),
    "k_shot": (16, "choice: generic dataset; fits classes of >= 16 trainval images (CUB's K)"),
    "syn_num": (300, "choice: generic dataset; within the lineage's 100-1,800 per class"),
    "lr_gan": (1e-4, "choice: generic dataset; the lineage's CUB/FLO/SUN rate"),
    "gan_epochs": (100, "choice: generic dataset; SUN's budget, the longest but AWA2/APY's"),
}
# A dataset name outside DATASETS: one safe file-name part (it names folders and run ids).
DATASET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")

# Seeds (lineage); seed index i > 0 derives from the first so that runs are repeatable.
BASE_SEEDS = {"APY": 9182, "AWA2": 9182, "CUB": 3483, "FLO": 806, "SUN": 4115}
GENERIC_SEED = 0  # choice: the base seed of any other dataset

# The smoke profile: tests and the demo. Narrow layers, few epochs, and a larger generator learning
# rate because 1e-4 learns nothing in a few hundred steps (docs/decisions.md). Never the paper's
# settings.
SMOKE: dict[str, tuple[Any, str]] = {
    "hidden": (256, "choice: smoke"),
    "enc_dim": (256, "choice: smoke"),
    "gan_epochs": (20, "choice: smoke; full beats plain on the synthetic data by then"),
    "steps_per_epoch": (10, "choice: smoke; equal cost per epoch whatever the dataset's size"),
    "lr_gan": (1e-3, "choice: smoke (docs/decisions.md)"),
    "lr_metric": (1e-3, "choice: smoke"),
    # The lineage's 25 classifier epochs: with fewer, the final classifier stays biased towards
    # the generated unseen classes (honest S near 0 on FLO and SUN). Evaluating every 5th epoch
    # keeps the cost of 5 classifier epochs after every generator epoch.
    "eval_every": (5, "choice: smoke; 25 classifier epochs (lineage) every 5th epoch"),
    "checkpoint_every": (5, "choice: smoke"),
}

# The regress profile: the smoke profile in float64. In float32 the last-bit differences between
# CPU kernels (torch's ATEN_CPU_CAPABILITY, MKL's code path, thread counts) grow through GAN
# training into points of H; in float64 they stay below 1e-6 points (docs/regression.md).
REGRESS: dict[str, tuple[Any, str]] = {
    "dtype": ("float64", "choice: regress; machine noise below 1e-6 points (docs/regression.md)"),
    "val_protocol": (False, "choice: regress; the check watches what is trained, and half the "
                            "cost keeps its baseline's run ids"),
}
# FLO's paper episodes are 1-way (RML negatives drawn from outside the batch); smoke trains it
# 8-way, so the regress profile takes the paper's path there.
REGRESS_PER_DATASET: dict[str, dict[str, tuple[Any, str]]] = {
    "FLO": {"n_way": (1, "paper §4: FLO's 1-way episodes, the paper profile's own path")},
}

# Per dataset, the smoke profile keeps the ratios of the real problem that the reduced synthetic
# scale would distort (docs/synthetic.md, "Demo balance"): generated unseen features against real
# seen training images (syn_num), and images per class against K. The paper's 8x64 episodes
# (APY, AWA2) cost 8x more per step, so smoke episodes stay at 24-64 images.
SMOKE_PER_DATASET: dict[str, dict[str, tuple[Any, str]]] = {
    "APY": {"k_shot": (8, "choice: smoke"), "syn_num": (180, "choice: smoke, real ratio")},
    "AWA2": {"k_shot": (8, "choice: smoke"), "syn_num": (180, "choice: smoke, real ratio")},
    "CUB": {"n_way": (16, "choice: smoke"), "k_shot": (2, "choice: smoke"),
            "syn_num": (10, "choice: smoke, real ratio")},
    "FLO": {"n_way": (8, "choice: smoke"), "k_shot": (3, "choice: smoke"),
            "syn_num": (120, "choice: smoke, real ratio")},
    "SUN": {"n_way": (32, "choice: smoke"), "syn_num": (50, "choice: smoke, real ratio")},
}


# Trainval sizes of Xian et al.'s "Proposed Split v2.0" (trainval_loc of the real metadata):
# what the paper-scale update counts below are computed with.
TRAINVAL = {"APY": 5932, "AWA2": 23527, "CUB": 7057, "FLO": 5631, "SUN": 10320}


def epoch_steps(cfg: Config, n_trainval: int) -> int:
    """Generator updates per epoch: ``steps_per_epoch`` when set, else |trainval| // (N*K), at
    least 1 (one pass over trainval per epoch; paper §4 episodes)."""
    return cfg.steps_per_epoch or max(1, n_trainval // (cfg.n_way * cfg.k_shot))


def updates(cfg: Config, n_trainval: int) -> int:
    """Generator updates of a whole training: ``gan_epochs`` x :func:`epoch_steps`. This, not the
    epoch count, is the training budget that compares across datasets (docs/budgets.md)."""
    return cfg.gan_epochs * epoch_steps(cfg, n_trainval)


def budgets(profile: str = "paper", row: str = "full") -> dict[str, dict[str, int]]:
    """Per dataset at real trainval size: epochs, updates per epoch and generator updates."""
    out = {}
    for ds in DATASETS:
        cfg = make_config(ds, row, profile)
        out[ds] = {"gan_epochs": cfg.gan_epochs, "epoch_steps": epoch_steps(cfg, TRAINVAL[ds]),
                   "updates": updates(cfg, TRAINVAL[ds])}
    return out


def seed_for(dataset: str, index: int) -> int:
    """The training seed of (dataset, seed index). Rows share it, so rows of one seed are paired."""
    if index < 0:
        raise ConfigError(f"seed index {index}: expected >= 0")
    # 7919 is an arbitrary prime (choice); index 0 is the lineage seed itself.
    return BASE_SEEDS.get(_check_dataset(dataset), GENERIC_SEED) + 7919 * index


def defaults(dataset: str, profile: str = "paper") -> dict[str, tuple[Any, str]]:
    """Every default of (dataset, profile) as ``{key: (value, source)}``."""
    _check_dataset(dataset)
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    table = {**COMMON, **PER_DATASET.get(dataset, GENERIC)}
    if profile in ("smoke", "regress"):
        table.update({**SMOKE, **SMOKE_PER_DATASET.get(dataset, {})})
    if profile == "regress":
        table.update({**REGRESS, **REGRESS_PER_DATASET.get(dataset, {})})
    return table


def make_config(
    dataset: str, row: str, profile: str = "paper", overrides: dict[str, Any] | None = None
) -> Config:
    if row not in ROWS:
        raise ConfigError(f"unknown row {row!r}: expected one of {', '.join(ROWS)}")
    values = {k: v for k, (v, _) in defaults(dataset, profile).items()}
    for key, value in (overrides or {}).items():
        if key not in values:
            raise ConfigError(
                f"unknown config key {key!r}: expected one of {', '.join(sorted(values))}"
            )
        values[key] = _coerce(key, value, type(values[key]))
    cfg = Config(dataset=dataset, row=row, profile=profile, **values)
    _validate(cfg)
    return cfg


def parse_override(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``(key, value)``; the value is coerced by :func:`make_config`."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. gan_epochs=10")
    return key.strip(), value.strip()


def _check_dataset(dataset: str) -> str:
    """One of the paper's datasets, or any other name that is a safe file-name part (generic
    defaults, :data:`GENERIC`; bench accepts such a name only with --data-label)."""
    if dataset not in DATASETS and not (isinstance(dataset, str)
                                        and DATASET_NAME.fullmatch(dataset)):
        raise ConfigError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}, "
                          "or a folder name of letters, digits and '_' (with --data-label)")
    return dataset


def _coerce(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            parsed = kind(text)
            if kind is float and not math.isfinite(parsed):
                raise ValueError  # inf/nan: JSON records would store it as null
            return parsed
        except ValueError:
            pass
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(
        f"config key {key!r}: expected {kind.__name__}, found {value!r}; "
        f"e.g. --set {key}={_example(kind)}"
    )


def _example(kind: type) -> str:
    return {bool: "true", int: "10", float: "0.001", str: "all"}[kind]


def _validate(cfg: Config) -> None:
    positive = ("n_way", "k_shot", "hidden", "enc_dim", "gan_epochs", "critic_steps", "syn_num",
                "cls_epochs", "eval_every")
    for key in positive:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r}: expected >= 1, found {getattr(cfg, key)}")
    non_negative = ("steps_per_epoch", "noise_dim", "cls_batch", "checkpoint_every", "gp_weight")
    for key in non_negative:
        if getattr(cfg, key) < 0:
            raise ConfigError(f"config key {key!r}: expected >= 0, found {getattr(cfg, key)}")
    for key in ("lr_gan", "lr_metric", "cls_lr", "tau"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"config key {key!r}: expected > 0, found {getattr(cfg, key)}")
    for key in ("beta1", "beta2", "cls_beta1", "cls_beta2"):
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r}: expected in [0, 1), found {getattr(cfg, key)}")
    if not cfg.init_std > 0:
        raise ConfigError(f"config key 'init_std': expected > 0, found {cfg.init_std}")
    if not 0 <= cfg.leak < 1:
        raise ConfigError(f"config key 'leak': expected in [0, 1), found {cfg.leak}")
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"config key 'dtype': expected one of {', '.join(DTYPES)}, found "
                          f"{cfg.dtype!r}; e.g. --set dtype=float64")
    if cfg.sml_over not in ("all", "seen"):
        raise ConfigError(
            f"config key 'sml_over': expected 'all' or 'seen', found {cfg.sml_over!r}"
        )
