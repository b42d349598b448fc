"""Atomic file writes: the one way both packages write a file that others may read.

A reader sees the old file or the whole new one, never a part: the bytes go to a temporary file
in the same folder, are flushed to disk, and replace the target with ``os.replace``; the folder
is synced too, so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vsboost.errors import UserError


def real_folder(path: str | Path) -> Path:
    """``path`` as a folder (created if missing) that is not a symlink: the folders the suite
    writes into (run folders, ``_ckpt/``, ``_locks/``, ``_reference/``, ``_submitit/``) may come
    with a results folder from elsewhere, and a planted link would send the writes outside."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        found = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise UserError(f"{path}: expected a real folder to write into, found {found}; fix: "
                        "delete it (the suite recreates it)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (``torch.save``,
    ``np.savez``, ``scipy.io.savemat``); on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    if stat.S_ISDIR(_lstat_mode(path)):
        raise UserError(f"{path}: expected a file (or nothing) to write, found a folder; fix: "
                        "delete or rename that folder")
    # mkstemp: a unique name created with O_EXCL, so a planted file or symlink is never written
    # through; the replace swaps the entry itself, never what a symlink at ``path`` points to.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDWR | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
            os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by anyone
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None and err.errno is not None:  # a full disk names no file
            raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
