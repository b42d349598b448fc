"""The one way the suite parses a MAT file: in a child process, under limits, pins checked first.

MAT files come from elsewhere (downloads, other people's data roots) and their parsers run C code:
``scipy.io.loadmat`` segfaults on some damaged files (``_mio5.read_var_array``), and a small
compressed file can inflate to gigabytes. So :func:`read`

1. opens each file without blocking (a FIFO cannot hang it), requires a regular file of at most
   :data:`MAX_FILE_BYTES`, hashes its bytes and compares them with the pin, if any, before any
   parser sees them;
2. hands the open descriptors (the bytes it hashed) to a child Python running this module, whose
   address space and CPU time are limited (``resource.setrlimit``); the child refuses, before
   decompressing them, arrays over :data:`MAX_ARRAY_BYTES` and cells or structs (never numeric
   data) except the string cells named in ``cells``;
3. takes the arrays back as ``.npy`` files written without pickle, read with ``allow_pickle=False``.

A crash, a memory blow-up or a timeout of the child becomes one :class:`MatError` line naming the
file. The child imports numpy, scipy and h5py only (no torch): about 0.3 s per call.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsboost.errors import UserError

# choice: AWA2/res101.mat, the largest xlsa17 file, is 311 MB with a 2048 x 37322 float64 array
# of 611 MB; these bounds leave room for bigger feature sets and stop a crafted file first.
MAX_FILE_BYTES = 4 << 30
MAX_ARRAY_BYTES = 4 << 30
# choice: the child's address space: two copies of the largest array (scipy reads the bytes,
# then builds the array) plus 2 GiB for the interpreter and its libraries.
CHILD_MEMORY_BYTES = 2 * MAX_ARRAY_BYTES + (2 << 30)
# choice: the real AWA2 file parses in ~10 s; a parse that takes minutes is not of a real file.
CHILD_CPU_S = 300
CHILD_WALL_S = 600
# Bytes per element of each MATLAB class as numpy holds it (char: numpy's 4-byte unicode).
ITEMSIZE = {"double": 8, "single": 4, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
            "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "char": 4, "logical": 1}
NOT_ARRAYS = ("cell", "struct", "object", "sparse", "function_handle", "opaque")
OBJECT = np.empty(0, dtype=object)  # what a refused cell or struct reads as: "dtype object"


class MatError(UserError):
    """A MAT file that could not be read safely; one line naming the file."""


@dataclass
class Parsed:
    arrays: dict[str, np.ndarray]  # the requested variables present in the file
    sha256: str  # of the file's bytes, as parsed


def read(paths: list[Path], variables: tuple[str, ...], *, fix: str,
         pins: dict[Path, str] | None = None, cells: tuple[str, ...] = (),
         max_array: int | None = None, presence: tuple[str, ...] = ()) -> list[Parsed]:
    """The ``variables`` of each MAT file (v4-v7 via scipy, v7.3 via h5py; v7.3 arrays are
    transposed back to MATLAB's shape). ``pins``: {path: sha256} checked before parsing;
    ``cells``: variables that may be cells of strings (returned as string arrays); ``fix``: the
    advice ending every error line; ``max_array``: a tighter bound than :data:`MAX_ARRAY_BYTES`
    for each variable; ``presence``: variables whose presence alone matters (never loaded: they
    read as an empty object array)."""
    handles = [_open(Path(p), fix, (pins or {}).get(p)) for p in paths]
    limit = MAX_ARRAY_BYTES if max_array is None else min(max_array, MAX_ARRAY_BYTES)
    try:
        return _parse([Path(p) for p in paths], handles, (*variables, *presence), cells, fix,
                      limit, presence)
    finally:
        for fd, _ in handles:
            os.close(fd)


def sha256(path: Path) -> str | None:
    """The sha256 of a regular file's bytes; None when it is absent or not a regular file."""
    try:
        fd, digest = _open(Path(path), "", None)
    except MatError:
        return None
    os.close(fd)
    return digest


def _open(path: Path, fix: str, pin: str | None) -> tuple[int, str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once instead of hanging
    except OSError as err:
        raise MatError(f"{path}: expected a readable file, found {err.strerror}; {fix}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        os.close(fd)
        found = f"{info.st_size:,} bytes" if stat.S_ISREG(info.st_mode) else "not a regular file"
        raise MatError(f"{path}: expected a regular file of at most {MAX_FILE_BYTES:,} bytes, "
                       f"found {found}; {fix}")
    digest = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
    digest = digest.hexdigest()
    os.lseek(fd, 0, os.SEEK_SET)
    if pin is not None and digest != pin:
        os.close(fd)
        raise MatError(f"{path}: sha256 {digest} but {pin} was expected "
                       f"(datasets.lock or the sweep's plan), so it was not parsed; {fix}")
    return fd, digest


def _parse(paths, handles, variables, cells, fix, limit, presence) -> list[Parsed]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="vsboost-mat-") as out:
        request = {"out": out, "fds": [fd for fd, _ in handles], "variables": list(variables),
                   "cells": list(cells), "max_array": limit, "presence": list(presence),
                   "memory": CHILD_MEMORY_BYTES, "cpu": CHILD_CPU_S}
        try:
            child = subprocess.run([sys.executable, "-m", "vsboost.matfile", json.dumps(request)],
                                   pass_fds=request["fds"], capture_output=True, text=True,
                                   env=env, timeout=CHILD_WALL_S, check=False)
            lines, code = child.stdout.splitlines(), child.returncode
        except subprocess.TimeoutExpired as exc:
            lines, code = (exc.stdout or b"").decode(errors="replace").splitlines(), None
        results = [json.loads(line) for line in lines if line.startswith("{")]
        parsed = []
        for i, (path, (_, digest)) in enumerate(zip(paths, handles, strict=True)):
            if i >= len(results):  # the child died on this file
                how = (f"took longer than {CHILD_WALL_S} s" if code is None else
                       f"crashed the parser (signal {-code})" if code < 0 else
                       f"stopped the parser (exit {code})")
                raise MatError(f"{path}: expected a MATLAB .mat file, found one that {how} "
                               f"(damaged, or not a MAT file); {fix}")
            result = results[i]
            if result.get("error"):
                raise MatError(f"{path}: {result['error']}; {fix}")
            arrays = {name: np.load(Path(out) / f"{i}-{name}.npy", allow_pickle=False)
                      for name in result["arrays"]}
            arrays.update(dict.fromkeys(result["objects"], OBJECT))
            parsed.append(Parsed(arrays, digest))
        return parsed


# ---------------------------------------------------------------- the child
def _child(request: dict) -> None:
    """Parse each descriptor, print one JSON line per file: the arrays saved, the variables that
    were cells or structs, or the error. Anything that kills this process is the parent's
    answer for the file without a line."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (request["memory"], request["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (request["cpu"], request["cpu"]))
    for i, fd in enumerate(request["fds"]):
        with os.fdopen(fd, "rb") as f:
            try:
                arrays, objects = _variables(f, request)
                for name, arr in arrays.items():
                    np.save(Path(request["out"]) / f"{i}-{name}.npy", arr, allow_pickle=False)
                result = {"arrays": sorted(arrays), "objects": sorted(objects)}
            except _TooBig as big:
                result = {"error": str(big)}
            except MemoryError:
                result = {"error": f"expected a MAT file that parses in {request['memory']:,} "
                                   f"bytes of memory, found one that needs more"}
            except Exception as exc:  # noqa: BLE001 - any parser failure means the same thing
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
                result = {"error": "expected a MATLAB .mat file, found bytes that do not parse as "
                                   f"one (not a MAT file or truncated; {reason})"}
        print(json.dumps(result), flush=True)


class _TooBig(Exception):
    pass


def _bounded(name: str, nbytes: int, limit: int) -> None:
    if nbytes > limit:
        raise _TooBig(f"key '{name}': expected an array of at most {limit:,} bytes, found "
                      f"{nbytes:,} bytes")


def _variables(f, request: dict) -> tuple[dict, list]:
    import scipy.io

    wanted, cells, limit = request["variables"], request["cells"], request["max_array"]
    try:
        listed = scipy.io.whosmat(f, chars_as_strings=False)  # char arrays: their full shape
    except NotImplementedError:  # scipy's answer to v7.3, which is HDF5
        f.seek(0)
        return _hdf5(f, wanted, limit, request["presence"])
    f.seek(0)
    load, objects = [], []
    for name, shape, kind in listed:
        if name not in wanted:
            continue
        if name in request["presence"] or (kind in NOT_ARRAYS and name not in cells):
            objects.append(name)  # never decompressed: its size is not in its header
            continue
        _bounded(name, int(np.prod(shape, dtype=np.float64)) * ITEMSIZE.get(kind, 8), limit)
        load.append(name)
    arrays = {}
    if load:
        for name, value in scipy.io.loadmat(f, variable_names=load).items():
            if name.startswith("__"):
                continue
            arr = np.asarray(value) if not hasattr(value, "toarray") else OBJECT
            if arr.dtype == object and name in cells:
                arr = _strings(arr)
            if arr.dtype == object:
                objects.append(name)
            else:
                arrays[name] = arr
    return arrays, objects


def _strings(arr: np.ndarray) -> np.ndarray:
    """A cell of strings as a string array of its shape; anything else stays an object array."""
    items = [np.asarray(x).ravel() for x in arr.ravel()]
    if all(x.dtype.kind == "U" and x.size <= 1 for x in items):
        return np.array([str(x[0]) if x.size else "" for x in items]).reshape(arr.shape)
    return arr


def _hdf5(f, wanted: list, limit: int, presence: list) -> tuple[dict, list]:
    import h5py

    arrays, objects = {}, []
    with h5py.File(f, "r") as mat:
        for name in wanted:
            item = mat.get(name)
            if item is None:
                continue
            if name in presence or not isinstance(item, h5py.Dataset) or item.dtype.kind == "O" \
                    or item.dtype.fields:  # presence only, groups, cell references, structs
                objects.append(name)
                continue
            _bounded(name, item.size * item.dtype.itemsize, limit)
            arrays[name] = np.asarray(item).T  # HDF5 keeps MATLAB's column-major order
    return arrays, objects


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
