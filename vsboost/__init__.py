"""VS-Boost (IJCAI 2023) for generalized zero-shot learning: the method, without the harness.

The public API::

    from vsboost import load, make_config, seed_for
    from vsboost.train import train

    data = load("data/xlsa17", "CUB")
    cfg = make_config("CUB", "full", "paper", {"gan_epochs": 50})
    (result,) = train(data, cfg, [seed_for("CUB", 0)])  # a RunResult: metrics, history, status

The trainer is ``vsboost.train.train``: a package attribute named ``train`` would clash with the
``vsboost.train`` module (``from vsboost import train`` must keep meaning the module).

Names are imported on first use, so ``import vsboost`` (and ``bench --help``) loads no torch.
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_WHERE = {
    "Config": "vsboost.config",
    "ConfigError": "vsboost.config",
    "DATASETS": "vsboost.config",
    "PROFILES": "vsboost.config",
    "ROWS": "vsboost.config",
    "make_config": "vsboost.config",
    "parse_override": "vsboost.config",
    "seed_for": "vsboost.config",
    "Benchmark": "vsboost.data",
    "DataError": "vsboost.data",
    "load": "vsboost.data",
    "UserError": "vsboost.errors",
    "RunResult": "vsboost.train",
    "resolve_device": "vsboost.train",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'vsboost' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
