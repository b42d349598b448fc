"""The grid datasets x rows x seed indices: plan it, say what is done, run what is not.

Planning validates everything (every cell's config, the data, the results folder) before anything is
written, so a bad option never leaves a half-made results folder. Pending seeds of one
(dataset, row) are grouped into jobs of up to ``seeds_per_job`` members, which the trainer trains in
one batched pass. Launchers: ``local`` (in this process, or ``jobs`` worker processes) and
``submitit`` (one cluster job per job, :mod:`bench.cluster`; its ``local`` cluster runs them as
local processes).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from bench import runner, schema, store
from vsboost import memory, settings

PENDING = ("not launched", "incomplete", store.OTHER_CODE, *store.UNFINISHED)
FEATURES = ("auto", "all", "none")


@dataclass(frozen=True)
class RunState:
    """One run of the grid and where it stands."""

    dataset: str
    row: str
    seed_index: int
    run_id: str
    status: str  # a store status, or "running" (incomplete and locked by another process)


@dataclass
class Plan:
    folder: Path
    cells: list[RunState]
    jobs: list[runner.Job]
    # synthetic datasets: (data root, fingerprint) of the files whose closed-form reference the
    # reports show beside the trained rows
    references: dict[str, tuple[str, str]] = field(default_factory=dict)


def make_plan(datasets: Sequence[str], rows: Sequence[str], seed_indices: Sequence[int], *,
              results: Path, name: str | None = None, profile: str = "paper",
              overrides: Sequence[tuple[str, str]] = (), data_root: Path | None = None,
              synthetic: bool = False, seeds_per_job: int | None = 5, device: str | None = None,
              features: str = "auto", data_label: str | None = None,
              feature_file: str = "res101.mat", backbone: str | None = None) -> Plan:
    """Validate the whole grid and read each run's state; writes nothing to ``results``.

    Real data is verified against the data lock first: a file whose sha256 differs from its pin
    stops the plan, unless ``data_label`` names the data as the user's own (``custom``: recorded
    with its label, never compared with the paper). The runs go to ``results/<name>``; without a
    name, ``<profile>-<kind>`` (``-<label>`` for custom data) after the data actually read, so
    kinds never share a folder. ``feature_file``: the features' file in each dataset folder;
    ``backbone``: the name of the network that made them, recorded as given."""
    from bench import datasets as data_lock
    from vsboost import config, matfile, methods
    from vsboost.data import load
    from vsboost.synthetic import marker  # not `synthetic`: that name is the flag here

    for option, values in (("--datasets", datasets), ("--rows", rows), ("--seeds", seed_indices)):
        if not values:
            raise store.BenchError(f"{option}: expected at least one, found none")
    if min(seed_indices) < 0 or max(seed_indices) > schema.MAX_SEED_INDEX:
        bad = min(seed_indices) if min(seed_indices) < 0 else max(seed_indices)
        raise store.BenchError(f"seed index {bad}: expected 0..{schema.MAX_SEED_INDEX} (what a "
                               "record may hold); fix: --seeds or --seed-index within that range")
    if seeds_per_job is not None and seeds_per_job < 1:
        raise store.BenchError(f"--seeds-per-job {seeds_per_job}: expected >= 1")
    if features not in FEATURES:
        raise store.BenchError(f"--features {features!r}: expected one of {', '.join(FEATURES)}")
    others = [ds for ds in datasets if ds not in config.DATASETS]
    if others and data_label is None:
        raise store.BenchError(
            f"dataset {others[0]!r}: expected one of {', '.join(config.DATASETS)}; fix: pick one "
            "of those, or pass --data-label NAME to run another xlsa17-format folder under its "
            "own name (generic defaults, vsboost/config.py GENERIC; never compared with the "
            "paper)")
    if feature_file != "res101.mat" and data_label is None and not synthetic:
        raise store.BenchError(
            f"--feature-file {feature_file}: expected the paper's res101.mat without "
            "--data-label; fix: pass --data-label NAME to run other features as custom data "
            "(never compared with the paper)")
    # ===== every config first: a typo in --set fails before any data is read =====
    overrides = tuple(overrides)
    configs = {(ds, row): config.make_config(ds, row, profile, dict(overrides))
               for ds in datasets for row in rows}
    if name is not None:
        store.sweep_folder(results, name)
    # ===== data: loaded once per dataset, for its fingerprint (part of every run id) =====
    if synthetic:
        root = runner.synthetic_root(data_root, datasets)
    else:
        root = settings.data_root(data_root)
    kind = runner.device_kind(device)  # once, here: every job trains on the kind its ids name
    fingerprints, provenance, per_job = {}, {}, {}
    # Real data's pins are checked before a file is parsed; custom data (a label) may differ.
    lock_pins = {} if synthetic or data_label else data_lock.pinned(data_lock.read_lock())
    for ds in tqdm(datasets, desc="reading data", unit="dataset", leave=False,
                   disable=None):
        pins = {rel.split("/")[1]: pin for rel, pin in lock_pins.items()
                if rel.startswith(f"{ds}/")}
        if any(matfile.sha256(root / ds / n) != pin for n, pin in pins.items()) and \
                marker(root / ds / "att_splits.mat") is not None:
            pins = {}  # generated here, marked synthetic: recorded as such, no pin applies
        data = load(root, ds, normalize_sent=configs[ds, rows[0]].normalize_sent, pins=pins,
                    feature_file=feature_file)
        for row in rows:  # a shape the data cannot fill fails here, not as failed records
            cfg = configs[ds, row]
            methods.get(cfg.method).check(data, cfg)
        fingerprints[ds] = data.fingerprint
        per_job[ds] = seeds_per_job or default_seeds_per_job(
            kind, [configs[ds, row] for row in rows], memory.Shapes.of(data))
        provenance[ds] = {**data_provenance(root, ds, data.files, data.synthetic, data_label,
                                            asked_synthetic=synthetic),
                          "feature_dim": data.feature_dim, "att_dim": data.att_dim,
                          "feature_file": feature_file, "backbone": backbone}
        del data
    if name is None:
        kinds = sorted({p["kind"] for p in provenance.values()})
        name = f"{profile}-{'-'.join(kinds)}" + (f"-{data_label}" if data_label else "")
    folder = store.sweep_folder(results, name)
    store.check_writable(folder)
    # ===== each run's state, and jobs for the pending ones =====
    cells = []
    for (ds, row), cfg in configs.items():
        for i in seed_indices:
            rid = store.run_id(ds, row, i, cfg.hash(), fingerprints[ds], kind)
            cells.append(RunState(ds, row, i, rid, _status(folder, rid, row)))
    jobs = []
    for ds, row in configs:
        pending = [c.seed_index for c in cells
                   if (c.dataset, c.row) == (ds, row) and c.status in PENDING]
        keep = {"auto": (0,) if row == "full" else (), "all": tuple(pending), "none": ()}[features]
        step = per_job[ds]
        for start in range(0, len(pending), step):
            jobs.append(runner.Job(
                dataset=ds, row=row, profile=profile, overrides=overrides,
                seed_indices=tuple(pending[start:start + step]), data_root=str(root),
                folder=str(folder), fingerprint=fingerprints[ds], data=provenance[ds],
                device=device, kind=kind, features=keep))
    references = {ds: (str(root), fingerprints[ds]) for ds in datasets
                  if provenance[ds]["kind"] == "synthetic" and feature_file == "res101.mat"}
    return Plan(folder, cells, jobs, references)


def default_seeds_per_job(kind: str, cfgs, shapes, device_bytes: int | None = None) -> int:
    """Seeds per job when ``--seeds-per-job`` is not given: 5 on a CPU (the job's memory is the
    node's, sized by bench.cluster); on a GPU as many as vsboost.memory's estimate fits in the
    card's memory for the widest row (``device_bytes``: that of GPU 0 when None, a 12 GB card
    when planned where no GPU is visible, e.g. a cluster's login node)."""
    if kind == "cpu":
        return memory.MOST_SEEDS
    if device_bytes is None:
        import torch

        device_bytes = (torch.cuda.get_device_properties(0).total_memory
                        if torch.cuda.is_available() else memory.SMALL_CARD_BYTES)
    return min(memory.seeds_that_fit(cfg, shapes, device_bytes) for cfg in cfgs)


def data_provenance(root: Path, dataset: str, files: dict[str, str], synthetic: bool,
                    label: str | None, *, asked_synthetic: bool = False) -> dict:
    """The ``data`` block of a run's record: its kind (``real``, ``synthetic``, ``custom`` or
    ``rehearsal``), the label of custom data, and each file read with its sha256 and status
    against the lock. Real files that do not match their pin stop here, unless a label makes
    them custom data. Files verified against a lock marked ``"rehearsal": true`` (bench
    rehearse's stand-ins, which carry the synthetic generator's marker) are of kind
    ``rehearsal``: the real path, never the paper's data."""
    from bench import datasets

    lock = None if asked_synthetic else datasets.read_lock()  # --synthetic needs no lock
    if lock is not None and lock.get("rehearsal") is True and label is None:
        statuses = datasets.file_statuses(lock, dataset, files)
        wrong = [rel for rel, f in statuses.items() if f["status"] != "verified"]
        if wrong:
            raise datasets.DatasetError(
                f"{Path(root) / wrong[0]}: not the stand-in file the rehearsal lock pins "
                f"({statuses[wrong[0]]['status']}); fix: rerun `bench rehearse`")
        return {"kind": "rehearsal", "label": None, "files": statuses}
    if synthetic:  # generated here, so no pin: the hashes still say which files a run read
        return {"kind": "synthetic", "label": label,
                "files": {f"{dataset}/{name}": {"sha256": digest, "pinned": None,
                                                "status": "synthetic"}
                          for name, digest in sorted(files.items())}}
    statuses = datasets.file_statuses(lock or datasets.read_lock(), dataset, files)
    if label is not None:
        return {"kind": "custom", "label": label, "files": statuses}
    for rel, f in statuses.items():
        if f["status"] == "mismatch":
            raise datasets.DatasetError(
                f"{Path(root) / rel}: sha256 {f['sha256']} but datasets.lock pins {f['pinned']}, "
                f"so this is not the paper's file; fix: `bench data fetch -d {dataset}` to restore "
                "it, or pass --data-label NAME to run your own features as custom data (never "
                "compared with the paper)")
    return {"kind": "real", "label": None, "files": statuses}


def refresh(plan: Plan) -> list[RunState]:
    """The plan's cells with their current status."""
    return [replace(c, status=_status(plan.folder, c.run_id, c.row)) for c in plan.cells]


def _status(folder: Path, rid: str, row: str) -> str:
    from vsboost.config import method_of
    from vsboost.fingerprint import of_method

    code = of_method(method_of(row))
    status = store.status_of(folder / rid, code)
    # "not launched" too: a process that has just claimed the run may not have made its folder.
    if status in ("incomplete", "not launched"):
        if store.is_running(folder, rid):
            return "running"
        # Read again: the run may have finished between the two looks (its record is written
        # before its lock is released, so this second read is up to date).
        return store.status_of(folder / rid, code)
    return status


def summary(cells: Sequence[RunState]) -> str:
    """``12 runs: 4 done (1 diverged) / 1 failed / 2 incomplete / 5 not launched -> 8 to run``."""
    n = Counter(c.status for c in cells)
    finished = n["done"] + n["diverged"]
    to_run = sum(n[s] for s in PENDING)
    text = (f"{len(cells)} runs: {finished} done"
            + (f" ({n['diverged']} diverged)" if n["diverged"] else "")
            + f" / {n['failed']} failed / {n['incomplete']} incomplete"
            + "".join(f" / {n[s]} {s}" for s in ("cancelled", "timeout") if n[s])
            + (f" / {n[store.OTHER_CODE]} done by other code (to supersede)"
               if n[store.OTHER_CODE] else "")
            + f" / {n['not launched']} not launched -> {to_run} to run")
    if n["running"]:
        text += f" ({n['running']} running in another process)"
    return text


def superseded(plan: Plan, after: Sequence[RunState]) -> int:
    """How many runs the plan found finished by other code are no longer so (moved aside)."""
    now = {c.run_id: c.status for c in after}
    return sum(c.status == store.OTHER_CODE and now.get(c.run_id) != store.OTHER_CODE
               for c in plan.cells)


def execute(plan: Plan, *, launcher: str = "local", jobs: int | None = 1,
            cluster: str | None = None, submitit_options: dict | None = None,
            max_requeues: int = 3) -> list[RunState]:
    """Run every job of the plan; returns the cells' statuses afterwards. A job that crashes its
    worker is reported and the others go on (its runs stay incomplete and are retried next time).
    ``jobs`` None: one worker per GPU with --device cuda, else 1."""
    if plan.jobs and launcher == "submitit":
        from bench import cluster as clusters

        existed = plan.folder.exists()
        try:
            clusters.run(plan, cluster, submitit_options or {}, max_requeues=max_requeues)
        except store.BenchError:
            if not existed:  # a refused submission leaves nothing behind
                shutil.rmtree(plan.folder, ignore_errors=True)
            raise
        write_references(plan)
    elif plan.jobs:
        devices = worker_devices(plan.jobs[0].device, jobs)
        plan.folder.mkdir(parents=True, exist_ok=True)
        write_references(plan)
        if len(devices) > 1:
            _run_pool(plan, devices)
        else:
            _run_here(plan)
    if plan.folder.is_dir():
        store.write_runs_csv(plan.folder)
    return refresh(plan)


def write_references(plan: Plan) -> None:
    """The closed-form reference of each synthetic dataset's files, once per data version."""
    from vsboost import synthetic

    for ds, (root, fingerprint) in plan.references.items():
        if not store.has_reference(plan.folder, ds, fingerprint):
            store.write_reference(plan.folder, ds, fingerprint, synthetic.reference(root, ds))


def _describe(job: runner.Job) -> str:
    return f"{job.dataset} {job.row} s{','.join(map(str, job.seed_indices))}"


def _report(job: runner.Job, outcome: dict[int, str]) -> None:
    states = ", ".join(f"s{i} {outcome[i]}" for i in sorted(outcome))
    tqdm.write(f"{_describe(job)}: {states}")


def _run_here(plan: Plan) -> None:
    for job in tqdm(plan.jobs, desc="jobs", unit="job"):
        # A line per start: logs that are not terminals get no epoch bar.
        tqdm.write(f"{_describe(job)}: training")
        _report(job, runner.run_job(job))


def worker_devices(device: str | None, jobs: int | None) -> list[str | None]:
    """The device of each local worker: with --device cuda (or auto on a machine with CUDA), the
    visible GPUs round-robin, one per worker, as many workers as GPUs unless ``jobs`` says;
    otherwise ``jobs`` workers (default 1) on ``device``."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise store.BenchError("--device cuda: expected a CUDA device, found none; "
                               "use --device auto or --device cpu")
    gpus = torch.cuda.device_count() if device in (None, "cuda") and torch.cuda.is_available() \
        else 0
    if gpus == 0:
        return [device] * (jobs or 1)
    return [f"cuda:{k % gpus}" for k in range(jobs or (gpus if device == "cuda" else 1))]


def _run_pool(plan: Plan, devices: list[str | None]) -> None:
    workers = len(devices)
    # Workers share the cores; without this each would start one torch thread per core.
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = [replace(j, progress=False, threads=threads) for j in plan.jobs]
    # spawn, not fork: forking a process that has initialised torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    # Each worker takes one device from the queue when it starts and trains on it alone.
    queue = context.SimpleQueue()
    for device in devices:
        queue.put(device)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_take_device,
                                                initargs=(queue,)) as pool:
        futures = {pool.submit(runner.run_job, job): job for job in jobs}
        done = concurrent.futures.as_completed(futures)
        for future in tqdm(done, total=len(futures), desc="jobs", unit="job"):
            _collect(futures[future], future.result)


def _take_device(queue) -> None:
    device = queue.get()
    if device is not None:
        runner.set_worker_device(device)


def _collect(job: runner.Job, result) -> None:
    try:
        outcome = result()
    except Exception as exc:  # noqa: BLE001 - one broken job must not stop the others
        tqdm.write(f"{_describe(job)}: job crashed, runs stay incomplete: {runner.one_line(exc)}")
        return
    _report(job, outcome)
