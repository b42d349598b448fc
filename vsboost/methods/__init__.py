"""The methods the generic loop trains, by name (DomainBed's ``ALGORITHMS``).

A method is one :class:`~vsboost.methods.base.Method` subclass in one module, registered here
with :func:`register`, which also enters its hyperparameter block (``cls.hparams``) into the
registry of vsboost/config.py. Its rows then run through ``bench`` like VS-Boost's:
docs/methods.md, "Adding a method".
"""

from __future__ import annotations

from vsboost.config import HPARAMS, ConfigError, register_hparams
from vsboost.methods.base import Method
from vsboost.methods.fclswgan import FCLSWGAN
from vsboost.methods.vsboost import VSBoost

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a method; its name and row names must be new (built-in blocks are already in the
    config registry). Usable as a class decorator."""
    if cls.name in METHODS:
        raise ConfigError(f"method {cls.name!r}: expected a new name, found it registered")
    if HPARAMS.get(cls.name) is not cls.hparams:
        register_hparams(cls.name, cls.hparams)
    METHODS[cls.name] = cls
    return cls


def get(name: str) -> type[Method]:
    if name not in METHODS:
        raise ConfigError(f"method {name!r} has hyperparameters but no implementation: expected "
                          f"one of {', '.join(METHODS)}; fix: register it with "
                          "vsboost.methods.register")
    return METHODS[name]


for _builtin in (VSBoost, FCLSWGAN):
    register(_builtin)
