"""The real data, pinned: fetch the official archives, verify every file, lock new hashes, Table 1.

``datasets.lock`` (JSON; found by :func:`vsboost.settings.lock`) lists each archive (URL, sha256
and size where known) and each file the suite reads or may read, relative to the data root, with
its archive, size, sha256 and provenance. A ``null`` hash means "trust on first download":
``lock`` records it from the files present. A pinned hash is never overwritten; a file that
disagrees with it is an error.

A lock may come from elsewhere, so it is checked before any use (:func:`read_lock`): every file
key is ``<DATASET>/<plain name>`` inside the data root, every URL https, every size and hash of
the right type. Archives are unpacked into a staging folder with a size bound per file and per
archive, and only files that match their pin (or have none yet: trust on first use, said so) are
moved into the data root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
from tqdm import tqdm

from bench import paper
from vsboost import settings
from vsboost.config import DATASETS
from vsboost.errors import UserError
from vsboost.files import atomic_write, real_folder

# Locations (data root, lock, archives) default to vsboost.settings, resolved at call time.
CHUNK = 1 << 20
# choice: the largest xlsa17 file (AWA2/res101.mat) is 311 MB; a file without a pinned size may
# unpack to at most this, and one archive to at most MAX_UNPACKED (the zip-bomb bound).
MAX_MEMBER = 1 << 30
MAX_UNPACKED = 4 << 30
SHA256 = re.compile(r"[0-9a-f]{64}")
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # one plain name: no '..', no '/'


class DatasetError(UserError):
    """Missing, corrupt or unpinnable data; the message is one line meant for a person."""


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the data root, e.g. "APY/res101.mat"
    error: bool  # False: a note (e.g. an optional file absent, a hash not pinned yet)
    message: str

    def __str__(self) -> str:
        return f"{'error' if self.error else 'note'}: {self.message}"


# ===== the lock file =====

def read_lock(path: str | Path | None = None) -> dict:
    """The lock, checked against its schema before any use: :class:`DatasetError` naming the
    field otherwise (a lock is input, it may come from elsewhere)."""
    path = settings.lock(path)
    fix = "fix: restore datasets.lock from git"
    try:
        if not path.is_file() or path.stat().st_size > MAX_LOCK_BYTES:
            raise OSError(f"not a regular file of at most {MAX_LOCK_BYTES:,} bytes")
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # JSON and UTF-8 errors are ValueErrors
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:160]
        raise DatasetError(f"{path}: expected the JSON data lock, found {reason}; {fix}") from err
    wrong = lock_problem(lock)
    if wrong is not None:
        field, expected, found = wrong
        shown = json.dumps(found)[:60] if not isinstance(found, str) else repr(found[:60])
        raise DatasetError(f"{path}: {field}: expected {expected}, found {shown}; {fix}")
    return lock


MAX_LOCK_BYTES = 1 << 20  # choice: the lock is ~25 KB


def lock_problem(lock) -> tuple[str, str, object] | None:
    """(field, expected, found) for the first thing wrong with a lock, or None."""
    if not isinstance(lock, dict):
        return "(top level)", "a JSON object", type(lock).__name__
    if lock.get("schema") != 1:
        return "schema", "1", lock.get("schema")
    for section in ("archives", "files"):
        if not isinstance(lock.get(section), dict):
            return section, "an object", type(lock.get(section)).__name__
    for name, a in lock["archives"].items():
        where = f"archives.{name}"
        if not FILE_NAME.fullmatch(name):
            return "archives", "plain archive file names", name
        if not isinstance(a, dict):
            return where, "an object", type(a).__name__
        if not isinstance(a.get("url"), str) or not a["url"].startswith("https://"):
            return f"{where}.url", "an https:// URL", a.get("url")
        wrong = _pin_problem(a, where)
        if wrong:
            return wrong
    for rel, e in lock["files"].items():
        where = f"files.{rel}"
        parts = rel.split("/") if isinstance(rel, str) else []
        if len(parts) != 2 or parts[0] not in DATASETS or not FILE_NAME.fullmatch(parts[1]):
            return "files", ("keys <DATASET>/<file name> inside the data root (no '..', no "
                             "absolute path)"), rel
        if not isinstance(e, dict):
            return where, "an object", type(e).__name__
        if not isinstance(e.get("archive"), str) or e["archive"] not in lock["archives"]:
            return f"{where}.archive", f"one of {', '.join(lock['archives'])}", e.get("archive")
        if not isinstance(e.get("required", False), bool):
            return f"{where}.required", "true or false", e.get("required")
        wrong = _pin_problem(e, where)
        if wrong:
            return wrong
    return None


def _pin_problem(entry: dict, where: str):
    size, digest = entry.get("size"), entry.get("sha256")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        return f"{where}.size", "null or a byte count", size
    if digest is not None and (not isinstance(digest, str) or not SHA256.fullmatch(digest)):
        return f"{where}.sha256", "null or 64 lowercase hex digits", digest
    if not isinstance(entry.get("provenance", ""), str):
        return f"{where}.provenance", "a string", entry.get("provenance")
    return None


def pinned(lock: dict) -> dict[str, str]:
    """{``<DS>/<file>``: sha256} of every file the lock pins: checked before a file is parsed."""
    return {rel: e["sha256"] for rel, e in lock["files"].items() if e.get("sha256")}


def write_lock(lock: dict, path: str | Path | None = None) -> None:
    path = settings.writable_lock(path)
    atomic_write(path, json.dumps(lock, indent=2, ensure_ascii=False) + "\n")


def entries(lock: dict, datasets: Iterable[str]) -> dict[str, dict]:
    """The lock's file entries of the given datasets, in lock order."""
    wanted = set(_check(datasets))
    return {rel: e for rel, e in lock["files"].items() if rel.split("/")[0] in wanted}


def _check(datasets: Iterable[str]) -> list[str]:
    datasets = list(datasets)
    for ds in datasets:
        if ds not in DATASETS:
            raise DatasetError(f"dataset {ds!r}: expected one of {', '.join(DATASETS)}; "
                               "fix: pick one of those names")
    return datasets


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# ===== verify =====

def verify(root: str | Path | None = None, datasets: Iterable[str] = DATASETS,
           lock: dict | None = None, progress: bool = False) -> list[Finding]:
    """Every locked file of ``datasets`` under ``root``: missing, wrong size, wrong sha256."""
    root, lock = settings.data_root(root), lock if lock is not None else read_lock()
    found = []
    items = entries(lock, datasets).items()
    for rel, e in tqdm(items, desc="verify", unit="file", disable=not progress):
        path = root / rel
        archive = e.get("archive")
        get = (f"fix: `bench data fetch -d {rel.split('/')[0]}` (downloads {archive} from "
               f"{lock['archives'][archive]['url']}) or copy the file there")
        want = _describe(e)
        if not path.is_file():
            found.append(Finding(rel, bool(e.get("required")),
                                 f"{path}: missing, expected {want}; {get}" if e.get("required")
                                 else f"{path}: optional file absent ({want})"))
            continue
        size = path.stat().st_size
        if e.get("size") is not None and size != e["size"]:
            found.append(Finding(rel, True, f"{path}: expected {e['size']:,} bytes, found "
                                 f"{size:,} (truncated or another version); delete it, then {get}"))
            continue
        if e.get("sha256") is None:
            found.append(Finding(rel, False, f"{path}: present ({size:,} bytes), hash not pinned "
                                 "yet; run `bench data lock` to record it (trust on first use)"))
            continue
        digest = sha256(path)
        if digest != e["sha256"]:
            found.append(Finding(rel, True, f"{path}: sha256 {digest[:12]}… but datasets.lock "
                                 f"pins {e['sha256'][:12]}… (corrupt or another version); "
                                 f"delete it, then {get}"))
    return found


FILE_STATUSES = ("verified", "unpinned", "mismatch")


def file_statuses(lock: dict, dataset: str, files: dict[str, str]) -> dict[str, dict]:
    """What a run read, against the lock: ``{"CUB/att_splits.mat": {"sha256", "pinned",
    "status"}}`` with status ``verified`` (the pinned hash matches), ``unpinned`` (the lock has no
    hash for it yet: trust on first use) or ``mismatch``. ``files`` maps file name -> sha256, as
    :attr:`vsboost.data.Benchmark.files` holds it."""
    out = {}
    for name, digest in sorted(files.items()):
        rel = f"{dataset}/{name}"
        pinned = (lock["files"].get(rel) or {}).get("sha256")
        status = "unpinned" if pinned is None else "verified" if pinned == digest else "mismatch"
        out[rel] = {"sha256": digest, "pinned": pinned, "status": status}
    return out


def _describe(e: dict) -> str:
    size = f"{e['size']:,} bytes" if e.get("size") is not None else "size unknown"
    digest = f"sha256 {e['sha256'][:12]}…" if e.get("sha256") else "sha256 not pinned"
    return f"{size}, {digest}"


# ===== lock =====

def lock_present(root: str | Path | None = None, datasets: Iterable[str] = DATASETS,
                 lock_path: str | Path | None = None,
                 archives: str | Path | None = None) -> list[str]:
    """Record sha256 and size of present files (and archives) whose entry has no hash yet.

    Pinned entries are checked, never changed: a disagreement raises :class:`DatasetError`.
    Returns the paths newly recorded.
    """
    root, lock_path, archives = (settings.data_root(root), settings.writable_lock(lock_path),
                                 settings.archives(archives))
    lock = read_lock(lock_path)
    recorded = []
    for rel, e in entries(lock, datasets).items():
        if (root / rel).is_file() and _pin_entry(e, root / rel, f"{root / rel}", lock_path):
            recorded.append(rel)
    for name, a in lock["archives"].items():
        if not (archives / name).is_file():
            continue
        if a.get("sha256") is None:
            _members_match_pins(archives / name, name, lock)
        if _pin_entry(a, archives / name, f"{archives / name}", lock_path):
            recorded.append(name)
    if recorded:
        write_lock(lock, lock_path)
    return recorded


def _members_match_pins(zpath: Path, name: str, lock: dict) -> None:
    """Refuse to pin an archive whose members contradict their own pins in the lock."""
    try:
        archive = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetError(f"{zpath}: expected a zip archive, found something else ({err}); "
                           "fix: delete it and fetch again") from err
    with archive:
        names = archive.namelist()
        for rel, e in lock["files"].items():
            if e.get("archive") != name or e.get("sha256") is None:
                continue
            member = next((n for n in names if n == rel or n.endswith("/" + rel)), None)
            if member is None:
                continue
            digest, size = hashlib.sha256(), 0
            with archive.open(member) as src:
                while size <= (e.get("size") or MAX_MEMBER) and (block := src.read(CHUNK)):
                    digest.update(block)
                    size += len(block)
            if digest.hexdigest() != e["sha256"]:
                raise DatasetError(
                    f"{zpath}: its member {member} has sha256 {digest.hexdigest()[:12]}… but the "
                    f"lock pins {e['sha256'][:12]}… for {rel}; an archive whose files contradict "
                    "their pins is not pinned: delete it and fetch it again")


def _pin_entry(entry: dict, path: Path, shown: str, lock_path) -> bool:
    size, digest = path.stat().st_size, sha256(path)
    if entry.get("sha256") is None and entry.get("size") not in (None, size):
        raise DatasetError(
            f"{shown}: {size:,} bytes but {lock_path} pins {entry['size']:,} bytes; a pin is "
            "never contradicted: delete the file and fetch it again, or edit the lock by hand if "
            "the pin itself is wrong")
    if entry.get("sha256") is not None:
        if digest != entry["sha256"] or (entry.get("size") not in (None, size)):
            raise DatasetError(
                f"{shown}: sha256 {digest[:12]}… ({size:,} bytes) but {lock_path} pins "
                f"{entry['sha256'][:12]}… ({entry.get('size')} bytes); a pinned hash is never "
                "overwritten: delete the file and fetch it again, or edit the lock by hand if "
                "the pin itself is wrong"
            )
        if entry.get("size") is None:
            entry["size"] = size
            return True
        return False
    entry["sha256"], entry["size"] = digest, size
    entry["provenance"] = (entry.get("provenance", "") + " | sha256 and size recorded by "
                           "`bench data lock` from a local copy (trust on first use)").lstrip(" |")
    return True


# ===== fetch =====

def fetch(datasets: Iterable[str] = DATASETS, root: str | Path | None = None,
          lock_path: str | Path | None = None, archives: str | Path | None = None,
          downloader: Callable | None = None, progress: bool = False) -> list[Finding]:
    """Download the archives the datasets need, extract their locked files, verify them all.

    Files already present and verified are left alone. Raises :class:`DatasetError` listing
    what is still wrong after extraction. ``downloader`` is pooch's hook (tests pass a local copy).
    """
    datasets, root, lock = _check(datasets), settings.data_root(root), read_lock(lock_path)
    archives = settings.archives(archives)
    wanted = entries(lock, datasets)
    before = verify(root, datasets, lock)
    # Download only for what is required and missing or wrong; optional files come along when
    # their archive is downloaded anyway.
    needed = {wanted[f.path]["archive"] for f in before if f.error}
    by_archive: dict[str, list[str]] = {}
    for f in before:
        if wanted[f.path]["archive"] in needed and (f.error or not (root / f.path).is_file()):
            by_archive.setdefault(wanted[f.path]["archive"], []).append(f.path)
    absent: dict[str, str] = {}  # required files an archive lacks: say so instead of "missing"
    for name, rels in sorted(by_archive.items()):
        meta = lock["archives"][name]
        try:
            zpath = pooch.retrieve(
                meta["url"], known_hash=f"sha256:{meta['sha256']}" if meta.get("sha256") else None,
                fname=name, path=archives, downloader=downloader, progressbar=progress)
        except ValueError as err:  # pooch's answer to a hash mismatch
            raise DatasetError(f"{Path(archives) / name}: {' '.join(str(err).split())}; fix: "
                               "delete the archive and fetch again") from err
        except Exception as err:  # network or HTTP failure: say how to do it by hand
            shown = ", ".join(sorted(rels)[:6]) + (f" and {len(rels) - 6} more"
                                                    if len(rels) > 6 else "")
            raise DatasetError(
                f"{meta['url']}: expected to download {name}, found {type(err).__name__}: "
                f"{' '.join(str(err).split())[:160]}; missing under {root}: {shown}; fix: "
                f"download it by hand into {Path(archives) / name} and rerun `bench data "
                "fetch`, or place those files by hand") from err
        absent.update(_unpack(Path(zpath), name, {rel: wanted[rel] for rel in sorted(rels)},
                              root))
    found = verify(root, datasets, lock, progress)
    errors = list(absent.values()) + [str(f) for f in found if f.error and f.path not in absent]
    if errors:
        raise DatasetError(f"after fetch, {len(errors)} problem(s): " + " | ".join(errors))
    return found


def _unpack(zpath: Path, name: str, wanted: dict[str, dict], root: Path) -> dict[str, str]:
    """Unpack each wanted file (found by its ``<DS>/<name>`` suffix: archives nest them under a
    top folder such as ``xlsa17/data/``) into a staging folder, bounded in size, and move into
    ``root`` only those that match their pin (or have none yet). Returns ``{rel: error}`` for the
    others; the staging folder is removed whatever happens. Only the lock's own keys (checked by
    :func:`read_lock`) name files under ``root``, never the archive's member names."""
    try:
        archive = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetError(f"{zpath}: expected a zip archive, found something else ({err}); "
                           "fix: delete it and fetch again") from err
    root.mkdir(parents=True, exist_ok=True)
    problems, budget, ready = {}, MAX_UNPACKED, {}
    again = f"fix: delete {zpath} and fetch again, or place the file by hand at {root}"
    with archive, tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as staging:
        names = archive.namelist()
        for rel, e in wanted.items():
            member = next((n for n in names if n == rel or n.endswith("/" + rel)), None)
            if member is None:
                if e.get("required"):
                    problems[rel] = (f"error: {name} holds no */{rel} (the lock's archive for it "
                                     f"may be wrong); fix: place that file by hand at {root / rel}")
                continue
            bound = min(e["size"] if e.get("size") is not None else MAX_MEMBER, budget)
            staged = Path(staging) / rel.replace("/", "_")
            try:
                size = _copy_bounded(archive, member, staged, bound)
            except zipfile.BadZipFile as err:
                problems[rel] = f"error: {name}:{member}: does not unpack ({err}); {again}"
                continue
            if size > bound:
                problems[rel] = (f"error: {name}:{member}: unpacks to more than {bound:,} bytes "
                                 f"({'the pinned size' if bound == e.get('size') else 'the bound'}"
                                 f"), not unpacked; {again}")
                continue
            budget -= size
            digest = sha256(staged)
            if e.get("size") not in (None, size) or e.get("sha256") not in (None, digest):
                problems[rel] = (f"error: {name}:{member}: sha256 {digest[:12]}… ({size:,} bytes) "
                                 f"but the lock pins {_describe(e)}; not moved into {root}; "
                                 f"{again}")
                continue
            if e.get("sha256") is None and rel.endswith(".mat") and not _looks_like_mat(staged):
                problems[rel] = (f"error: {name}:{member}: expected a MATLAB .mat file (its hash "
                                 f"is not pinned), found other bytes; not moved into {root}; "
                                 f"{again}")
                continue
            ready[rel] = (staged, e.get("sha256") is not None)
        # Unpinned files are trusted on first use only from an archive that unpacked without a
        # problem: one whose pinned members contradicted their pins vouches for nothing.
        for rel, (staged, pinned) in ready.items():
            if pinned or not problems:
                real_folder((root / rel).parent)
                os.replace(staged, root / rel)  # same file system: atomic
    return problems


MAT_MAGIC = (b"MATLAB 5.0 MAT-file", b"MATLAB 7.3 MAT-file")  # the text header's first bytes


def _looks_like_mat(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAT_MAGIC[0])) in MAT_MAGIC


def _copy_bounded(archive: zipfile.ZipFile, member: str, target: Path, bound: int) -> int:
    """Copy ``member`` to ``target``, stopping one byte past ``bound`` (a zip's declared sizes
    can lie, so the bytes themselves are counted); returns the bytes written."""
    written = 0
    with archive.open(member) as src, open(target, "wb") as out:
        while written <= bound and (block := src.read(min(CHUNK, bound + 1 - written))):
            out.write(block)
            written += len(block)
    return written


# ===== Table 1 statistics =====

QUANTITIES = ("att_dim", "trainval", "test_seen", "test_unseen", "seen", "unseen")


def measure(root: str | Path, dataset: str, pins: dict[str, str] | None = None
            ) -> dict[str, tuple[int | None, str]]:
    """Table 1's quantities from the files present: ``{quantity: (value, where from)}``.

    The value is None where the files needed are absent, and "where from" then says which.
    Class counts come from ``res101.mat`` labels when present, else from the proposed-split
    class lists (``trainvalclasses.txt`` / ``testclasses.txt``). ``pins``: {``<DS>/<file>``:
    sha256} (:func:`pinned`), checked before each file is parsed.
    """
    pins = pins or {}
    folder = Path(root) / _check([dataset])[0]
    splits_file = f"{dataset}/att_splits.mat"
    out: dict[str, tuple[int | None, str]] = dict.fromkeys(
        QUANTITIES, (None, f"not measured: {splits_file} absent"))
    splits = _mat(folder / "att_splits.mat", ["trainval_loc", "test_seen_loc", "test_unseen_loc",
                                              "att"], pins.get(splits_file))
    if splits is None:
        return out
    emb_file = f"{dataset}/sent_splits.mat" if dataset == "CUB" else splits_file
    emb = _mat(Path(root) / emb_file, ["att"], pins.get(emb_file))
    out["att_dim"] = ((int(emb["att"].shape[0]), emb_file) if emb is not None  # att is A x C
                      else (None, f"not measured: {emb_file} absent"))
    locs = {k: np.asarray(splits[f"{k}_loc"]).astype(np.int64).ravel()
            for k in ("trainval", "test_seen", "test_unseen")}
    out.update({k: (int(v.size), splits_file) for k, v in locs.items()})
    res = _mat(folder / "res101.mat", ["labels"], pins.get(f"{dataset}/res101.mat"))
    if res is not None:
        labels = np.asarray(res["labels"]).astype(np.int64).ravel()
        where = f"{dataset}/res101.mat labels"
        out["seen"] = (int(np.unique(labels[locs["trainval"] - 1]).size), where)
        out["unseen"] = (int(np.unique(labels[locs["test_unseen"] - 1]).size), where)
        return out
    for key, name in (("seen", "trainvalclasses.txt"), ("unseen", "testclasses.txt")):
        if (folder / name).is_file():
            lines = (folder / name).read_text().splitlines()
            out[key] = (sum(1 for line in lines if line.strip()), f"{dataset}/{name}")
        else:
            out[key] = (None, f"not measured: needs {dataset}/res101.mat labels")
    return out


def _mat(path: Path, keys: list[str], pin: str | None) -> dict | None:
    """The ``keys`` of a MAT file, None when absent: its pin checked first, then parsed in the
    bounded child of vsboost/matfile.py; each key must be a numeric array."""
    from vsboost import matfile

    if not path.exists():
        return None
    fix = "fix: `bench data verify`"
    try:
        (mat,) = matfile.read([path], tuple(keys), fix=fix, pins={path: pin} if pin else None)
    except matfile.MatError as err:
        raise DatasetError(str(err)) from None
    for key in keys:
        if key not in mat.arrays or mat.arrays[key].dtype.kind not in "biuf":
            found = mat.arrays[key].dtype if key in mat.arrays else "no such key"
            raise DatasetError(f"{path}: key '{key}': expected a numeric array, found {found}; "
                               f"{fix}")
    return mat.arrays


def stats(root: str | Path | None = None, datasets: Iterable[str] = DATASETS) -> pd.DataFrame:
    """Table 1 as printed beside Table 1 as measured, one line per quantity, differences flagged.

    ``note`` is empty when they agree, names the known misprint when it explains the difference,
    says ``DIFFERS`` otherwise, or says why nothing was measured.
    """
    lines = []
    root = settings.data_root(root)
    pins = pinned(read_lock())
    for ds in _check(datasets):
        got = measure(root, ds, pins)
        for q in QUANTITIES:
            printed, (value, source) = paper.TABLE1[ds][q], got[q]
            misprint = paper.TABLE1_MISPRINTS.get((ds, q))
            if value is None:
                note = source
            elif value == printed:
                note = ""
            elif misprint and misprint[0] == value:
                note = f"known misprint: {misprint[1]}"
            else:
                note = "DIFFERS"
            lines.append({"dataset": ds, "quantity": q, "paper": printed,
                          "measured": "—" if value is None else value,
                          "from": source if value is not None else "—", "note": note})
    return pd.DataFrame(lines)
