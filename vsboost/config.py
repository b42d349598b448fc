"""Every hyperparameter in one place, each tagged with where it comes from.

Sources (defined in docs/README.md, "Source tags"): ``paper`` (the VS-Boost paper says so),
``lineage`` (the common practice of the public code VS-Boost descends from: f-CLSWGAN, LisGAN,
CE-GZSL, TF-VAEGAN, FREE), ``choice`` (ours). A ``lineage`` tag names the repository and the
file it was read from (docs/decisions.md gives the full tables).

Every method has one block here (:class:`Hyperparameters`, the registry :data:`HPARAMS`, in the
manner of DomainBed's ``hparams_registry``): VS-Boost's is made of the tables below (``ROWS``,
``COMMON``, ``PER_DATASET``, ``SMOKE``...), f-CLSWGAN's is ``FCLSWGAN``; docs/methods.md.

``make_config(dataset, row, profile, overrides)`` is the only way to build a :class:`Config` (the
row names its method); it refuses unknown keys, wrong types and out-of-range values with a
one-line :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from vsboost.errors import UserError

DATASETS = ("APY", "AWA2", "CUB", "FLO", "SUN")
BASE_METHOD = "vsboost"  # the suite's own method: its key schema is KEY_SCHEMA

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
    """One run's settings: its dataset, row and profile, and the values of its method's
    hyperparameters (the keys of the method's block in :data:`HPARAMS`), read as attributes
    (``cfg.gan_epochs``). ``method`` follows from the row: row names are unique across methods."""

    dataset: str
    row: str
    profile: str
    values: dict[str, Any]

    @property
    def method(self) -> str:
        return method_of(self.row)

    @property
    def settings(self) -> dict[str, Any]:
        """What the row switches on in its method (VS-Boost: its SML and RML branches)."""
        return HPARAMS[self.method].rows[self.row]

    def __getattr__(self, name: str) -> Any:
        # Only for a method's settings; dunders and `values` itself (absent while unpickling)
        # are ordinary missing attributes.
        if name.startswith("__") or name == "values":
            raise AttributeError(name)
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"{self.method} has no setting {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "row": self.row, "profile": self.profile,
                "method": self.method, **self.values}

    def hash(self, schema: int | None = None) -> str:
        """Short hash of the settings: the part of a run's key that says 'same settings'.

        Stable when fields are added (docs/harness.md): it covers every field of the key schema
        (:data:`KEY_SCHEMA`, the current one, unless ``schema`` names an older one: the hash an
        old record was made with stays computable), and a later field only when its value
        differs from the value it was introduced with, so a config that does not use a new field
        keeps the run id it had before the field existed. VS-Boost's key schema is the tuple of
        its fields; another method keys on all its fields but those that never change a result
        (:data:`UNKEYED`), ``method`` among them, so that no two methods share a run id.
        """
        values = self.to_dict()
        if self.method == BASE_METHOD:
            unknown = set(values) - set(KEY_SCHEMA_1) - set(ADDED_FIELDS)
            if unknown:
                raise ConfigError(f"config fields {sorted(unknown)} are missing from ADDED_FIELDS")
            base = KEY_SCHEMAS[schema or KEY_SCHEMA]
        else:
            base = [k for k in values if k not in ADDED_FIELDS and k not in UNKEYED]
        keyed = {k: values[k] for k in base}
        keyed.update({k: values[k] for k, intro in ADDED_FIELDS.items()
                      if k in values and values[k] != intro})
        blob = json.dumps(keyed, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def deviations(self) -> dict[str, dict[str, Any]]:
        """``{key: {"value": v, "default": d}}`` for every setting that differs from the default
        of its (dataset, profile): what a run changed on purpose, for its record."""
        table = defaults(self.dataset, self.profile, self.method)
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
# What never changes what a run trains to, for every method (see KEY_SCHEMA_2).
UNKEYED = frozenset(KEY_SCHEMA_1) - frozenset(KEY_SCHEMA_2)
# Every field added later, with the value it was introduced with: the value that reproduces what
# runs did before the field existed. It enters the hash only when a config's value differs.
ADDED_FIELDS: dict[str, Any] = {
    "tf32": True,  # the trainer allowed TF32 on CUDA unconditionally before it was a setting
    # hard-coded in train.py, evaluate.py and models.py before they were settings:
    "beta2": 0.999, "cls_beta1": 0.5, "cls_beta2": 0.999, "init_std": 0.02, "leak": 0.2,
    "dtype": "float32",  # the trainer ran in float32 before it was a setting
    "sml_weight": 1.0, "rml_weight": 1.0,  # eq. 8's unit weights, hard-coded in train.py before
    "method": "vsboost",  # VS-Boost was the only method before methods were plug-ins
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
    "sml_weight": (1.0, "paper eq. 8: L_WGAN + L_SM + L_RM, 'no hyper-parameters are needed to "
                        "balance the different losses'"),
    "rml_weight": (1.0, "paper eq. 8: unit weight, as sml_weight"),
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
    # A checkpoint of 5 stacked seeds at paper shapes is 1.8-2.8 GB: every 25 epochs bounds a
    # kill's loss to 25 epochs and writes 17 per 425-epoch training, not 85.
    "checkpoint_every": (25, "choice"),
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


@dataclass(frozen=True)
class Hyperparameters:
    """One method's block of the registry, in the manner of DomainBed's ``hparams_registry``
    (one block per algorithm): its rows (their names are unique across methods), and every
    hyperparameter as ``{key: (value, source)}``, shared by all datasets (``common``), per
    dataset, and what the ``smoke`` and ``regress`` profiles change. ``label``: its name in
    reports; ``headline``: the row that Tables 2 and 3 report; ``batch_keys``: the settings
    whose product is the number of training images of one critic step."""

    label: str
    headline: str
    rows: dict[str, dict[str, Any]]
    common: dict[str, tuple[Any, str]]
    per_dataset: dict[str, dict[str, tuple[Any, str]]]
    batch_keys: tuple[str, ...]
    smoke: dict[str, tuple[Any, str]] = field(default_factory=dict)
    smoke_per_dataset: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)
    regress: dict[str, tuple[Any, str]] = field(default_factory=lambda: dict(REGRESS))
    regress_per_dataset: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)
    # the per-dataset values of a dataset outside per_dataset (--data-label); none: refused
    generic: dict[str, tuple[Any, str]] = field(default_factory=dict)


VSBOOST = Hyperparameters(label="VS-Boost", headline="full", rows=ROWS, common=COMMON,
                          per_dataset=PER_DATASET, batch_keys=("n_way", "k_shot"), smoke=SMOKE,
                          smoke_per_dataset=SMOKE_PER_DATASET, regress=REGRESS,
                          regress_per_dataset=REGRESS_PER_DATASET, generic=GENERIC)

# ---- f-CLSWGAN (Xian et al., CVPR 2018), rerun beside VS-Boost (vsboost/methods/fclswgan.py) ----
# Its per-dataset values are those of the per-dataset scripts of a public PyTorch release,
# luca-rossi/grabzsl scripts/run_clswgan_<ds>_gzsl.py, whose values are those of the authors'
# release (docs/methods.md); neither has an APY script, nor an AWA2 one (AWA1's is taken). The
# final classifier and the harness settings are VS-Boost's, by reference: the same evaluation.
_CLSWGAN = "lineage: luca-rossi/grabzsl scripts/run_clswgan_"
SHARED = ("cls_epochs", "cls_lr", "cls_batch", "cls_beta1", "cls_beta2", "eval_every",
          "checkpoint_every", "tf32", "dtype", "init_std", "leak", "normalize_sent",
          "val_protocol")
_GENERIC_CUB = "choice: a dataset outside the paper's five takes CUB's value"
FCLSWGAN = Hyperparameters(
    label="f-CLSWGAN", headline="fclswgan",  # its name in bench/published.py
    rows={"fclswgan": {}},  # one row, named for the method (docs/methods.md)
    common={
        **{k: COMMON[k] for k in SHARED},
        "hidden": (4096, "paper (f-CLSWGAN §3): 4096 hidden units in G and D; lineage: "
                         "luca-rossi/grabzsl args.py --hidden_size 4096"),
        "noise_dim": (0, "lineage: luca-rossi/grabzsl scripts, --latent_size equals "
                         "--n_attributes in every script"),
        "batch_size": (64, "lineage: luca-rossi/grabzsl args.py --batch_size 64"),
        "steps_per_epoch": (0, "choice: |trainval| // batch_size, one pass per epoch as in the "
                               "lineage's loop (which rounds up)"),
        "critic_steps": (5, "lineage: luca-rossi/grabzsl args.py --n_critic_loops 5"),
        "gp_weight": (10.0, "paper (f-CLSWGAN eq. 2): lambda = 10"),
        "beta1": (0.5, "lineage: luca-rossi/grabzsl args.py --beta1 0.5"),
        "beta2": (0.999, "lineage: luca-rossi/grabzsl trainer_clswgan.py, betas=(beta1, 0.999)"),
        "pretrain_epochs": (50, "lineage: luca-rossi/grabzsl run_clswgan.py, the seen-class "
                                "classifier's n_epochs=50"),
        "pretrain_lr": (1e-3, "lineage: luca-rossi/grabzsl run_clswgan.py, lr=0.001"),
        "pretrain_batch": (100, "lineage: luca-rossi/grabzsl run_clswgan.py, batch_size=100"),
    },
    per_dataset={
        "APY": {"gan_epochs": (30, "choice: no published APY script; AWA's"),
                "lr_gan": (1e-5, "choice: no published APY script; AWA's"),
                "syn_num": (1800, "choice: no published APY script; AWA's"),
                "cls_weight": (0.01, "choice: no published APY script; AWA's")},
        "AWA2": {"gan_epochs": (30, _CLSWGAN + "awa_gzsl.py (AWA1)"),
                 "lr_gan": (1e-5, _CLSWGAN + "awa_gzsl.py (AWA1)"),
                 "syn_num": (1800, _CLSWGAN + "awa_gzsl.py (AWA1)"),
                 "cls_weight": (0.01, _CLSWGAN + "awa_gzsl.py (AWA1)")},
        "CUB": {"gan_epochs": (56, _CLSWGAN + "cub_gzsl.py"),
                "lr_gan": (1e-4, _CLSWGAN + "cub_gzsl.py"),
                "syn_num": (300, _CLSWGAN + "cub_gzsl.py"),
                "cls_weight": (0.01, _CLSWGAN + "cub_gzsl.py")},
        "FLO": {"gan_epochs": (80, _CLSWGAN + "flo_gzsl.py"),
                "lr_gan": (1e-4, _CLSWGAN + "flo_gzsl.py"),
                "syn_num": (1200, _CLSWGAN + "flo_gzsl.py"),
                "cls_weight": (0.1, _CLSWGAN + "flo_gzsl.py")},
        "SUN": {"gan_epochs": (40, _CLSWGAN + "sun_gzsl.py"),
                "lr_gan": (2e-4, _CLSWGAN + "sun_gzsl.py"),
                "syn_num": (400, _CLSWGAN + "sun_gzsl.py"),
                "cls_weight": (0.01, _CLSWGAN + "sun_gzsl.py")},
    },
    generic={"gan_epochs": (56, _GENERIC_CUB), "lr_gan": (1e-4, _GENERIC_CUB),
             "syn_num": (300, _GENERIC_CUB), "cls_weight": (0.01, _GENERIC_CUB)},
    batch_keys=("batch_size",),
    # The smoke profile of VS-Boost where it applies (same widths, epochs, steps, learning rate
    # and generated features per class), so the two methods meet at equal cost in the demo.
    smoke={k: SMOKE[k] for k in ("hidden", "gan_epochs", "steps_per_epoch", "lr_gan",
                                 "eval_every", "checkpoint_every")},
    smoke_per_dataset={ds: {"syn_num": v["syn_num"]} for ds, v in SMOKE_PER_DATASET.items()},
)

# The registry: method name -> its block. vsboost.methods.register adds a method's block here.
HPARAMS: dict[str, Hyperparameters] = {BASE_METHOD: VSBOOST, "fclswgan": FCLSWGAN}


def method_of(row: str) -> str:
    """The method a row belongs to."""
    for name, block in HPARAMS.items():
        if row in block.rows:
            return name
    raise ConfigError(f"unknown row {row!r}: expected one of {', '.join(all_rows())}")


def rows_of(method: str) -> tuple[str, ...]:
    if method not in HPARAMS:
        raise ConfigError(f"unknown method {method!r}: expected one of {', '.join(HPARAMS)}")
    return tuple(HPARAMS[method].rows)


def all_rows() -> tuple[str, ...]:
    """Every row of every registered method, VS-Boost's first."""
    return tuple(row for block in HPARAMS.values() for row in block.rows)


def register_hparams(name: str, block: Hyperparameters) -> None:
    """Add a method's block; refuses a name or a row that another method already has."""
    taken = set(all_rows()) & set(block.rows)
    if name in HPARAMS or taken:
        raise ConfigError(f"method {name!r}: expected a new name and new row names, found "
                          f"{name if name in HPARAMS else ', '.join(sorted(taken))} taken")
    HPARAMS[name] = block


# Trainval sizes of Xian et al.'s "Proposed Split v2.0" (trainval_loc of the real metadata):
# what the paper-scale update counts below are computed with.
TRAINVAL = {"APY": 5932, "AWA2": 23527, "CUB": 7057, "FLO": 5631, "SUN": 10320}


def epoch_steps(cfg: Config, n_trainval: int) -> int:
    """Generator updates per epoch: ``steps_per_epoch`` when set, else |trainval| divided by the
    images of one critic step (N*K episodes, paper §4; a method's batch), at least 1."""
    batch = math.prod(cfg.values[k] for k in HPARAMS[cfg.method].batch_keys)
    return cfg.steps_per_epoch or max(1, n_trainval // batch)


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


def defaults(dataset: str, profile: str = "paper",
             method: str = BASE_METHOD) -> dict[str, tuple[Any, str]]:
    """Every default of (dataset, profile) of a method as ``{key: (value, source)}``."""
    _check_dataset(dataset)
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    rows_of(method)  # an unknown method fails here, naming the known ones
    block = HPARAMS[method]
    if dataset not in block.per_dataset and not block.generic:
        raise ConfigError(f"{method} has no defaults for dataset {dataset!r}: expected one of "
                          f"{', '.join(block.per_dataset)}")
    table = {**block.common, **block.per_dataset.get(dataset, block.generic)}
    if profile in ("smoke", "regress"):
        table.update({**block.smoke, **block.smoke_per_dataset.get(dataset, {})})
    if profile == "regress":
        table.update({**block.regress, **block.regress_per_dataset.get(dataset, {})})
    return table


def make_config(
    dataset: str, row: str, profile: str = "paper", overrides: dict[str, Any] | None = None
) -> Config:
    """The config of a run of ``row`` (which names its method) on ``dataset``."""
    values = {k: v for k, (v, _) in defaults(dataset, profile, method_of(row)).items()}
    for key, value in (overrides or {}).items():
        if key not in values:
            raise ConfigError(
                f"unknown config key {key!r}: expected one of {', '.join(sorted(values))}"
            )
        values[key] = _coerce(key, value, type(values[key]))
    cfg = Config(dataset=dataset, row=row, profile=profile, values=values)
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
    """Ranges of the settings a method has (each check applies where the key exists)."""
    v = cfg.values

    def check(keys, ok, expected):
        for key in keys:
            if key in v and not ok(v[key]):
                raise ConfigError(f"config key {key!r}: expected {expected}, found {v[key]}")

    check(("n_way", "k_shot", "hidden", "enc_dim", "gan_epochs", "critic_steps", "syn_num",
           "cls_epochs", "eval_every", "batch_size", "pretrain_epochs", "pretrain_batch"),
          lambda x: x >= 1, ">= 1")
    check(("steps_per_epoch", "noise_dim", "cls_batch", "checkpoint_every", "gp_weight",
           "cls_weight", "sml_weight", "rml_weight"), lambda x: x >= 0, ">= 0")
    check(("lr_gan", "lr_metric", "cls_lr", "tau", "init_std", "pretrain_lr"), lambda x: x > 0,
          "> 0")
    check(("beta1", "beta2", "cls_beta1", "cls_beta2", "leak"), lambda x: 0 <= x < 1,
          "in [0, 1)")
    if v.get("dtype", DTYPES[0]) not in DTYPES:
        raise ConfigError(f"config key 'dtype': expected one of {', '.join(DTYPES)}, found "
                          f"{v['dtype']!r}; e.g. --set dtype=float64")
    if v.get("sml_over", "all") not in ("all", "seen"):
        raise ConfigError(
            f"config key 'sml_over': expected 'all' or 'seen', found {v['sml_over']!r}"
        )
