"""click commands of the reporting and data half of ``bench``: ``data``, ``report``, ``tsne``,
``check``, ``claims``. ``bench.cli`` registers them; none of them trains.

Errors meant for people are :class:`vsboost.errors.UserError`; ``bench.cli`` prints them as one
line and exits 2, as everywhere in ``bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tabulate import tabulate

import bench.datasets
from bench import check as checks  # `check` is the command here
from bench import claims as paper_claims  # `claims` is the command here
from bench import reports, store
from bench.cells import PROTOCOLS, ReportError
from bench.options import (
    SectionedCommand,
    data_root_option,
    datasets_option,
    debug_option,
    option,
    out_option,
    results_option,
)
from vsboost import settings

lock_option = option("--lock", "lock_path", type=click.Path(path_type=Path), default=None,
                     section="Data",
                     show_default=f"{settings.DEFAULTS['lock']} (${settings.ENV['lock']}), else "
                                  "the copy installed with the package",
                     help="The data lock file (pinned sizes and sha256).")
archives_option = option("--archives", type=click.Path(path_type=Path), default=None,
                         section="Data",
                         show_default=f"{settings.DEFAULTS['archives']}, or "
                                      f"${settings.ENV['archives']}",
                         help="Where downloaded archives are kept.")
data_datasets_option = datasets_option(section="Data", help="Datasets")


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
@data_datasets_option
@data_root_option()
@lock_option
@archives_option
@debug_option
def fetch(datasets, data_root, lock_path, archives) -> None:
    """Download the official archives, unpack the needed files, verify all against the lock."""
    root = settings.data_root(data_root)
    found = bench.datasets.fetch(datasets, root, lock_path, archives, progress=True)
    for f in found:
        click.echo(str(f))
    click.echo(f"ok: {', '.join(datasets)} present and verified under {root}")


@data.command(cls=SectionedCommand)
@data_datasets_option
@data_root_option()
@lock_option
@debug_option
def verify(datasets, data_root, lock_path) -> None:
    """Check every locked file: say exactly what is missing or wrong, and how to get it.

    Exit codes: 0 every required file present and matching the lock, 1 some file missing or
    wrong (listed on stderr), 2 the lock itself unreadable or a bad option.
    """
    root, lock_path = settings.data_root(data_root), settings.lock(lock_path)
    found = bench.datasets.verify(root, datasets, bench.datasets.read_lock(lock_path),
                                  progress=True)
    for f in found:
        click.echo(str(f), err=f.error)
    errors = sum(f.error for f in found)
    if errors:
        click.echo(f"{errors} problem(s) under {root} against {lock_path}", err=True)
        sys.exit(1)
    click.echo(f"ok: every required file of {', '.join(datasets)} present and "
               f"matching {lock_path} where pinned")


@data.command("lock", cls=SectionedCommand)
@data_datasets_option
@data_root_option()
@lock_option
@archives_option
@debug_option
def lock_command(datasets, data_root, lock_path, archives) -> None:
    """Record sha256 and size of present files whose lock entry has no hash yet."""
    lock_path = settings.writable_lock(lock_path)
    recorded = bench.datasets.lock_present(data_root, datasets, lock_path, archives)
    for rel in recorded:
        click.echo(f"recorded {rel}")
    click.echo(f"{len(recorded)} entr{'y' if len(recorded) == 1 else 'ies'} recorded in "
               f"{lock_path}; pinned entries unchanged")


@data.command(cls=SectionedCommand)
@data_datasets_option
@data_root_option("synthetic", help="Where to write the synthetic <DATASET>/ folders.")
@option("--scale", type=click.FloatRange(min=0, min_open=True), default=0.1, section="Data",
        help="Size relative to the real datasets (images per class, classes kept).")
@option("--seed", type=int, default=0, section="Data", help="Random seed of the generator.")
@option("--real-meta", type=click.Path(path_type=Path), default=None, section="Data",
        show_default="none: the built-in shapes",
        help="An xlsa17 root (<DATASET>/att_splits.mat) to borrow class embeddings and splits "
             "from.")
@debug_option
def synth(datasets, data_root, scale, seed, real_meta) -> None:
    """Write the embedded synthetic benchmark (same file format, marked synthetic)."""
    from bench import datasets as data_lock
    from vsboost import synthetic  # imported when used: the other commands do not need it

    pins = data_lock.pinned(data_lock.read_lock()) if real_meta is not None else None
    written = synthetic.write(settings.synthetic_root(data_root), datasets, scale=scale,
                              seed=seed, real_meta=real_meta, real_pins=pins)
    for path in written:
        click.echo(f"wrote {path}")


@data.command(cls=SectionedCommand)
@data_datasets_option
@data_root_option()
@debug_option
def stats(datasets, data_root) -> None:
    """Table 1 measured from the files beside the paper's Table 1; differences flagged."""
    frame = bench.datasets.stats(data_root, datasets)
    click.echo(tabulate(frame, headers="keys", tablefmt="pipe", showindex=False,
                        disable_numparse=True))
    differs = frame[frame["note"] == "DIFFERS"]
    if len(differs):
        click.echo(f"{len(differs)} value(s) differ from the paper beyond its known misprints")


# ===== reports =====

@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results",
        show_default="every sweep under --results", help="Sweep folder under the results root.")
@out_option()
@option("--expected-seeds", "seeds", type=click.IntRange(min=1), default=None, section="Results",
        show_default="highest seed index present + 1",
        help="Seeds each cell should have (indices 0..N-1); a cell with fewer shows how many.")
@results_option
@debug_option
def report(name, out, seeds, results) -> None:
    """Regenerate Tables 2-4, claims.md, training curves and t-SNE from results/ alone (no
    training)."""
    folders = _folders(results, name, single=out is not None)
    for folder in folders:
        target = out or settings.reports() / folder.name
        paths = reports.write_reports(folder, target, seeds)
        try:
            paths += reports.write_tsne(folder, target)
        except ReportError as err:  # a report without t-SNE material is still a report
            click.echo(f"note: no t-SNE figure: {err}", err=True)
        for path in paths:
            click.echo(f"wrote {path}")


@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results", show_default="the only sweep",
        help="Sweep folder under the results root.")
@out_option("Folder for tsne_<DATASET>.png.")
@datasets_option(default=None, show_default="every dataset present", section="Results")
@results_option
@debug_option
def tsne(name, out, datasets, results) -> None:
    """Figure 4: t-SNE of features before and after refinement by E (full row, lowest seed)."""
    folder = _folders(results, name, single=True)[0]
    wanted = list(datasets) if datasets else None
    for path in reports.write_tsne(folder, out or settings.reports() / folder.name, wanted):
        click.echo(f"wrote {path}")


@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results", show_default="the only sweep",
        help="Sweep folder under the results root.")
@option("--tolerance", type=click.FloatRange(min=0), default=1.0, section="Check",
        help="Points a cell may fall below the paper before it fails; against a --baseline "
             "without --machines, the points a cell may move before it reads CHANGED.")
@option("--baseline", type=click.Path(path_type=Path, file_okay=False), default=None,
        section="Check", show_default="compare with the paper",
        help="A sweep folder of earlier records of the same kind to compare with instead.")
@option("--machines", type=click.Path(path_type=Path, file_okay=False, exists=True),
        default=None, section="Check", show_default="none: --tolerance is the band",
        help="With --baseline: a folder of sweeps, one per simulated machine, rerunning the "
             "baseline's seeds; their paired differences set each cell's machine band.")
@option("--exact", is_flag=True, section="Check",
        help="With --baseline: exit 1 when a cell changed (the golden master); without it "
             "changes are reported and the check passes.")
@option("--allow-deviations", is_flag=True, section="Check",
        help="Compare runs whose settings differ from the paper profile anyway, printing each "
             "change beside its verdict.")
@option("--seeds", type=click.IntRange(min=1), default=None, section="Check",
        show_default=f"{checks.PAPER_SEEDS}, or the highest seed index present + 1",
        help="Against the paper: the seeds every compared (dataset, row) must have done.")
@option("--allow-partial", is_flag=True, section="Check",
        help="Against the paper: compare the seeds that are done even when runs failed, "
             "diverged or are missing (the verdict line says PARTIAL).")
@results_option
@debug_option
def check(name, tolerance, baseline, machines, exact, allow_deviations, seeds,
          allow_partial, results) -> None:
    """Compare means with the paper's Tables 2-4 (or a baseline); exit 1 when cells fall short.

    Against the paper: U, S, H (Tables 2 and 4) and CZSL top-1 (Table 3) under the `paper`
    protocol; a cell fails when its mean falls more than --tolerance points below the paper (a
    rise never fails), and the check fails unless every (dataset, row) with records has all
    --seeds seeds done (failed, diverged and missing runs are named; datasets and rows without
    records are listed as not compared). Against a --baseline it answers "changed?", not
    "worse?": U, S, H, CZSL and training losses under both protocols, paired with the baseline's
    same seeds, read `unchanged` within the tolerance (with --machines the machine band: reruns
    of the baseline on simulated machines, at least 0.1 points; else --tolerance) and
    `CHANGED (lower|higher)` beyond it, either way. Whether a change is worse: `bench compare`
    (docs/regression.md).

    Exit codes: 0 pass (against a baseline: also when cells changed, unless --exact), 1 cells
    below the paper minus the tolerance, expected runs not done, or (--exact) changed cells, 2
    refused (synthetic runs against the paper, mixed kinds, nothing to compare).
    """
    folder = _folders(results, name, single=True)[0]
    passed, text = checks.run(folder, tolerance=tolerance, baseline_dir=baseline,
                              allow_deviations=allow_deviations,
                              machines_dir=machines, seeds=seeds,
                              allow_partial=allow_partial, exact=exact)
    click.echo(text)
    sys.exit(0 if passed else 1)


@click.command(cls=SectionedCommand)
@click.argument("a")
@click.argument("b")
@option("--confidence", type=click.FloatRange(0.5, 0.9999), default=0.95, section="Compare",
        help="Level of every interval and verdict (two-sided, per cell).")
@option("--fail-on-worse", is_flag=True, section="Compare",
        help="Exit 1 when some accuracy cell is judged worse (B below A).")
@option("--metrics", default=",".join(("U", "S", "H", "acc", "loss_d", "loss_metric",
                                       "relation_same")), section="Compare",
        help="Comma-separated metrics to judge (acc: CZSL top-1; the rest: training losses).")
@option("--negligible", type=click.FloatRange(min=0), default=0.0, section="Compare",
        help="Points below which an accuracy difference is never called better or worse.")
@debug_option
def compare(a, b, confidence, fail_on_worse, metrics, negligible) -> None:
    """Judge B against A cell by cell: better, worse, no detectable difference, cannot judge.

    A and B are results folders (results/<sweep>), or one variant of a folder as PATH@PREFIX (the
    runs whose config hash or code fingerprint starts with PREFIX). Per (dataset, row, metric,
    protocol): the means, Δ = B − A, its interval, the test (paired on the seed indices both
    sides hold when there are at least 3, else Welch) and the verdict: better / worse when the
    interval excludes 0; no detectable difference when it holds 0, with the MDD, the smallest
    true difference this test finds with 90% probability; cannot judge with fewer than 3 runs
    per side or when the sides are not comparable (another data version or kind, device kind
    or protocol), saying why. Training losses are shown apart, in their own units, as higher /
    lower. Across datasets: the probability that a run of B beats a run of A on H, with a
    stratified bootstrap interval. Each cell is judged on its own (no multiplicity correction).

    Exit codes: 0 judged (whatever the verdicts, unless --fail-on-worse), 1 with --fail-on-worse
    when an accuracy cell is worse, 2 bad input (no records, several variants on one side,
    nothing in common).
    """
    from bench import compare as comparing  # `compare` is the command here

    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    known = (*comparing.ACCURACIES, *comparing.cells.LOSSES)
    unknown = [m for m in wanted if m not in known]
    if unknown or not wanted:
        raise comparing.CompareRefused(f"--metrics {metrics!r}: expected some of "
                                       f"{', '.join(known)}, found {', '.join(unknown) or 'none'}")
    side_a, side_b = comparing.side(a), comparing.side(b)
    judged = comparing.compare(side_a, side_b, confidence, wanted, negligible)
    click.echo(comparing.render(side_a, side_b, judged, confidence))
    sys.exit(1 if fail_on_worse and comparing.worse(judged) else 0)


@click.command(cls=SectionedCommand)
@option("--name", default=None, section="Results", show_default="the only sweep",
        help="Sweep folder under the results root.")
@option("--protocol", type=click.Choice(["both", *PROTOCOLS]), default="both", section="Claims",
        help="Which selection protocol's verdicts decide the exit code.")
@option("--expected-seeds", "seeds", type=click.IntRange(min=1), default=None, section="Results",
        show_default="highest seed index present + 1",
        help="Seeds each cell should have (indices 0..N-1).")
@results_option
@debug_option
def claims(name, protocol, seeds, results) -> None:
    """Print the paper's claims judged against its tables and these runs; exit 1 when one is
    contradicted.

    What it prints is the claims.md that `bench report` writes. Exit codes: 0 no claim
    contradicted at 95%, 1 some claim contradicted, 2 bad input (no records, mixed kinds of
    data).
    """
    folder = _folders(results, name, single=True)[0]
    records = store.load_records(folder)
    if not records:
        raise ReportError(f"{folder}: expected run folders with record.json, found none; "
                          "fix: run `bench sweep` first, or check --name")
    rows = paper_claims.evaluate(records, seeds)
    click.echo(paper_claims.render(records, folder.name, seeds, rows))
    gating = tuple(PROTOCOLS) if protocol == "both" else (protocol,)
    sys.exit(1 if paper_claims.contradicted(rows, gating) else 0)
