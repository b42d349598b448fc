"""click commands of the reporting and data half of ``bench``: ``data``, ``report``, ``tsne``,
``check``. ``bench.cli`` registers them; none of them trains.

People's errors become :class:`bench.store.BenchError` (one line, exit 2, ``--debug`` for the
traceback), as everywhere in ``bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tabulate import tabulate

from bench import check as checks
from bench import datasets as pinned
from bench import store, tables
from bench.cli import SectionedCommand, debug_option, option
from vsboost.config import DATASETS

SYNTHETIC_ROOT = pinned.REPO / "data" / "synthetic"  # contract: the embedded benchmark's root
REPORTS = Path("reports")

datasets_argument = click.argument("datasets", nargs=-1, type=click.Choice(DATASETS))
results_option = option("--results", type=click.Path(path_type=Path), default=Path("results"),
                        section="Results", help="Results root; a sweep lives in <results>/<name>/.")
root_option = option("--root", type=click.Path(path_type=Path), default=pinned.DATA_ROOT,
                     show_default="data/xlsa17", section="Data",
                     help="Real-data root holding <DATASET>/res101.mat etc.")
lock_option = option("--lock", "lock_path", type=click.Path(path_type=Path), default=pinned.LOCK,
                     show_default="datasets.lock", section="Data",
                     help="The data lock file (pinned sizes and sha256).")
archives_option = option("--archives", type=click.Path(path_type=Path), default=pinned.ARCHIVES,
                         show_default="data/archives", section="Data",
                         help="Where downloaded archives are kept.")


def _people(fn, *args, **kwargs):
    """Call ``fn``, turning this half's errors for people into BenchError (one line, exit 2)."""
    try:
        return fn(*args, **kwargs)
    except (pinned.DatasetError, tables.ReportError, checks.CheckRefused) as err:
        raise store.BenchError(str(err)) from err


def _sweeps(results: Path) -> list[str]:
    """Names of the sweep folders under ``results`` that hold at least one record."""
    if not results.is_dir():
        return []
    return sorted(p.name for p in results.iterdir() if p.is_dir()
                  and not p.name.startswith((".", "_")) and any(p.glob(f"*/{store.RECORD}")))


def _folders(results: Path, name: str | None, *, single: bool) -> list[Path]:
    if name is not None:
        return [store.sweep_folder(results, name)]
    names = _sweeps(results)
    if not names or (single and len(names) > 1):
        raise store.BenchError(
            f"--name: expected {'one sweep' if single else 'sweeps'} under {results}, found "
            f"{', '.join(names) or 'none'}; fix: pass --name NAME (or run `bench sweep` first)")
    return [results / n for n in names]


# ===== data =====

@click.group("data")
def data() -> None:
    """Real data (fetch, verify, lock, Table 1 stats) and the embedded synthetic benchmark."""


@data.command(cls=SectionedCommand)
@datasets_argument
@root_option
@lock_option
@archives_option
@debug_option
def fetch(datasets, root, lock_path, archives) -> None:
    """Download the official archives, unpack the needed files, verify all against the lock."""
    found = _people(pinned.fetch, datasets or DATASETS, root, lock_path, archives, progress=True)
    for f in found:
        click.echo(str(f))
    click.echo(f"ok: {', '.join(datasets or DATASETS)} present and verified under {root}")


@data.command(cls=SectionedCommand)
@datasets_argument
@root_option
@lock_option
@debug_option
def verify(datasets, root, lock_path) -> None:
    """Check every locked file: say exactly what is missing or wrong, and how to get it."""
    lock = _people(pinned.read_lock, lock_path)
    found = _people(pinned.verify, root, datasets or DATASETS, lock, progress=True)
    for f in found:
        click.echo(str(f), err=f.error)
    errors = sum(f.error for f in found)
    if errors:
        click.echo(f"{errors} problem(s) under {root}", err=True)
        sys.exit(2)
    click.echo(f"ok: every required file of {', '.join(datasets or DATASETS)} present and "
               "matching the lock where pinned")


@data.command("lock", cls=SectionedCommand)
@datasets_argument
@root_option
@lock_option
@archives_option
@debug_option
def lock_command(datasets, root, lock_path, archives) -> None:
    """Record sha256 and size of present files whose lock entry has no hash yet."""
    recorded = _people(pinned.lock_present, root, datasets or DATASETS, lock_path, archives)
    for rel in recorded:
        click.echo(f"recorded {rel}")
    click.echo(f"{len(recorded)} entr{'y' if len(recorded) == 1 else 'ies'} recorded in "
               f"{lock_path}; pinned entries unchanged")


@data.command(cls=SectionedCommand)
@datasets_argument
@option("--root", type=click.Path(path_type=Path), default=SYNTHETIC_ROOT,
        show_default="data/synthetic", section="Data",
        help="Where to write the synthetic <DATASET>/ folders.")
@option("--scale", type=click.FloatRange(min=0, min_open=True), default=0.1, section="Data",
        help="Size relative to the real datasets (images per class, classes kept).")
@option("--seed", type=int, default=0, section="Data", help="Random seed of the generator.")
@option("--real-meta", type=click.Path(path_type=Path), default=None, envvar="VSBOOST_REAL_META",
        show_envvar=True, section="Data",
        help="Real xlsa17 metadata to borrow class embeddings and splits from.")
@debug_option
def synth(datasets, root, scale, seed, real_meta) -> None:
    """Write the embedded synthetic benchmark (same file format, marked synthetic)."""
    from vsboost import synthetic  # imported when used: the other commands do not need it

    try:
        written = synthetic.write(root, datasets or DATASETS, scale=scale, seed=seed,
                                  real_meta=real_meta)
    except ValueError as err:  # its errors are one line for people, like ours
        raise store.BenchError(str(err)) from err
    for path in written:
        click.echo(f"wrote {path}")


@data.command(cls=SectionedCommand)
@datasets_argument
@root_option
@debug_option
def stats(datasets, root) -> None:
    """Table 1 measured from the files beside the paper's Table 1; differences flagged."""
    frame = _people(pinned.stats, root, datasets or DATASETS)
    click.echo(tabulate(frame, headers="keys", tablefmt="pipe", showindex=False,
                        disable_numparse=True))
    differs = frame[frame["note"] == "DIFFERS"]
    if len(differs):
        click.echo(f"{len(differs)} value(s) differ from the paper beyond its known misprints")


# ===== reports =====

@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results",
        show_default="every sweep under --results", help="Sweep folder under the results root.")
@option("--out", type=click.Path(path_type=Path), default=None, section="Results",
        show_default="reports/<name>", help="Folder for the markdown reports and figures.")
@option("--seeds", type=click.IntRange(min=1), default=None, section="Results",
        show_default="highest seed index present + 1", help="Seeds expected per cell.")
@results_option
@debug_option
def report(name, out, seeds, results) -> None:
    """Regenerate Tables 2-4, training curves and t-SNE from results/ alone (no training)."""
    folders = _folders(results, name, single=out is not None)
    for folder in folders:
        target = out or REPORTS / folder.name
        paths = _people(tables.write_reports, folder, target, seeds)
        try:
            paths += tables.write_tsne(folder, target)
        except tables.ReportError as err:  # a report without t-SNE material is still a report
            click.echo(f"note: no t-SNE figure: {err}", err=True)
        for path in paths:
            click.echo(f"wrote {path}")


@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results", show_default="the only sweep",
        help="Sweep folder under the results root.")
@option("--out", type=click.Path(path_type=Path), default=None, section="Results",
        show_default="reports/<name>", help="Folder for tsne_<DATASET>.png.")
@option("--datasets", default=None, section="Results", show_default="every dataset present",
        help="Comma-separated datasets.")
@results_option
@debug_option
def tsne(name, out, datasets, results) -> None:
    """Figure 4: t-SNE of features before and after refinement by E (full row, lowest seed)."""
    folder = _folders(results, name, single=True)[0]
    wanted = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    for path in _people(tables.write_tsne, folder, out or REPORTS / folder.name, wanted):
        click.echo(f"wrote {path}")


@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results", show_default="the only sweep",
        help="Sweep folder under the results root.")
@option("--tolerance", type=click.FloatRange(min=0), default=1.0, section="Check",
        help="Points a cell may fall below its reference before it fails.")
@option("--baseline", type=click.Path(path_type=Path, file_okay=False), default=None,
        section="Check", show_default="compare with the paper",
        help="A sweep folder of earlier records of the same kind to compare with instead.")
@results_option
@debug_option
def check(name, tolerance, baseline, results) -> None:
    """Compare means with the paper's Tables 2-4 (or a baseline); exit 1 when cells fall short.

    Exit codes: 0 pass, 1 cells below reference minus tolerance, 2 refused (synthetic runs
    against the paper, mixed kinds, nothing to compare).
    """
    folder = _folders(results, name, single=True)[0]
    code, text = checks.run(folder, tolerance=tolerance, baseline_dir=baseline)
    click.echo(text, err=code == 2)
    sys.exit(code)
