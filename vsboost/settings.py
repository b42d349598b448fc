"""Where the suite reads and writes: every default folder and file, in one place.

Each location resolves in this order: the command's option (the ``value`` passed here), then its
environment variable, then the default, relative to the working directory:

=================  ====================  =================================================
location           environment variable  default
=================  ====================  =================================================
real data root     ``VSBOOST_DATA``      ``data/xlsa17``
synthetic root     ``VSBOOST_SYNTHETIC`` ``data/synthetic``
downloaded zips    ``VSBOOST_ARCHIVES``  ``data/archives``
data lock          ``VSBOOST_LOCK``      ``datasets.lock``, else the copy inside ``vsboost``
results root       ``VSBOOST_RESULTS``   ``results``
reports root       ``VSBOOST_REPORTS``   ``reports``
=================  ====================  =================================================

Nothing here depends on where the package is installed, except the last resort of the lock: an
installed package carries a read-only copy of the repository's ``datasets.lock`` so that
``bench data verify`` works from any folder. Reading the environment at call time (not at import)
lets one process, or one test, change it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vsboost.errors import UserError

ENV = {
    "data": "VSBOOST_DATA",
    "synthetic": "VSBOOST_SYNTHETIC",
    "archives": "VSBOOST_ARCHIVES",
    "lock": "VSBOOST_LOCK",
    "results": "VSBOOST_RESULTS",
    "reports": "VSBOOST_REPORTS",
}
DEFAULTS = {
    "data": Path("data/xlsa17"),
    "synthetic": Path("data/synthetic"),
    "archives": Path("data/archives"),
    "lock": Path("datasets.lock"),
    "results": Path("results"),
    "reports": Path("reports"),
}
PACKAGED_LOCK = Path(__file__).with_name("datasets.lock")  # package data, see pyproject.toml


def _resolve(kind: str, value: str | Path | None) -> Path:
    if value is not None and str(value) != "":
        return Path(value)
    env = os.environ.get(ENV[kind], "")
    return Path(env) if env else DEFAULTS[kind]


def data_root(value: str | Path | None = None) -> Path:
    """The real xlsa17 root holding ``<DATASET>/res101.mat`` and ``att_splits.mat``."""
    return _resolve("data", value)


def synthetic_root(value: str | Path | None = None) -> Path:
    """Where the embedded synthetic benchmark is written on first use."""
    return _resolve("synthetic", value)


def archives(value: str | Path | None = None) -> Path:
    """Where ``bench data fetch`` keeps the downloaded archives."""
    return _resolve("archives", value)


def results(value: str | Path | None = None) -> Path:
    """The results root: one folder per sweep, one per run inside."""
    return _resolve("results", value)


def reports(value: str | Path | None = None) -> Path:
    """The reports root: ``<reports>/<sweep>/`` holds a sweep's tables and figures."""
    return _resolve("reports", value)


def lock(value: str | Path | None = None) -> Path:
    """The data lock to read: option, ``$VSBOOST_LOCK``, ``./datasets.lock``, else the packaged
    copy (an installed suite run from a folder without one)."""
    path = _resolve("lock", value)
    if value is None and not os.environ.get(ENV["lock"]) and not path.is_file():
        return PACKAGED_LOCK
    return path


def writable_lock(value: str | Path | None = None) -> Path:
    """The data lock ``bench data lock`` may rewrite: like :func:`lock`, but never the packaged
    copy; where that is the one found, it is first copied to ``./datasets.lock``."""
    path = lock(value)
    if path != PACKAGED_LOCK:
        return path
    target = DEFAULTS["lock"]
    try:
        shutil.copyfile(PACKAGED_LOCK, target)
    except OSError as err:
        raise UserError(f"{target}: expected to copy the packaged data lock here, found "
                        f"{err.strerror}; fix: run from a writable folder or pass --lock") from err
    return target
