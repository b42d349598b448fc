"""``bench``: the command line of the reproduction suite.

Exit codes, the same for every command:

- ``0``: done; every check passed;
- ``1``: a run failed or was left unfinished (after it was recorded, or because another process
  holds it), or a check found a problem
  (``bench check``: a cell below its reference; ``bench data verify``: a file missing or not
  matching the lock);
- ``2``: a person's input was wrong (a bad option, missing or malformed data for a training, an
  unwritable folder, a refused comparison): one line ``error: ...`` on stderr and no traceback;
  ``--debug`` shows it.

Every error meant for people is a :class:`vsboost.errors.UserError` (or a click usage error, or
an OS error a person fixes: disk full, read-only folder, name too long);
:meth:`BenchGroup.invoke` is the one place that turns them into that line. Default locations
(data, lock, results, reports) come from :mod:`vsboost.settings`.

``bench --help`` imports no heavy library: the commands of the reporting half live in
:mod:`bench.commands` and :mod:`bench.perf` and are imported only when run.
"""

from __future__ import annotations

import errno
import importlib
import sys
import traceback

import click

from bench import store
from bench.options import (
    DEBUG,
    SectionedCommand,
    datasets_option,
    debug_option,
    launch_options,
    method_option,
    names,
    option,
    out_option,
    rows_option,
    seeds_option,
    training_options,
)
from vsboost import settings
from vsboost.config import DATASET_NAME, DATASETS, ROWS, all_rows, method_of, rows_of
from vsboost.errors import UserError

TABLE_ROWS = {"table2": ("full",), "table3": ("full",), "table4": tuple(ROWS)}

# Commands imported when used, so that `bench --help` and `bench run` pay for no pandas,
# matplotlib or pooch: where each lives, and its one-line help (tests check it matches).
LAZY = {
    "data": ("bench.commands:data", "Real data (fetch, verify, lock, Table 1 stats) and the "
             "embedded synthetic benchmark."),
    "report": ("bench.commands:report", "Regenerate Tables 2-4, claims.md, training curves and "
               "t-SNE from results/ alone (no training)."),
    "tsne": ("bench.commands:tsne", "Figure 4: t-SNE of features before and after refinement by "
             "E (full row, lowest seed)."),
    "check": ("bench.commands:check", "Compare means with the paper's Tables 2-4 (or a "
              "baseline); exit 1 when cells fall short."),
    "compare": ("bench.commands:compare", "Judge B against A cell by cell: better, worse, no "
                "detectable difference, cannot judge."),
    "claims": ("bench.commands:claims", "Print the paper's claims judged against its tables "
               "and these runs; exit 1 when one is contradicted."),
    "perf": ("bench.perf:perf", "Throughput against the device's own peak, projected training "
             "times, memory."),
    "rehearse": ("bench.rehearsal:rehearse", "Rehearse the real path on stand-in data over "
                 "local HTTPS, labelled REHEARSAL."),
}
SECTIONS = {
    "Training": ("run", "sweep"),
    "Paper tables (train what is missing, then write the report)": ("table2", "table3", "table4"),
    "Reports and checks (from results/ alone)": ("report", "tsne", "check", "compare",
                                                 "claims"),
    "Data": ("data", "rehearse"),
    "Performance": ("perf",),
}


class BenchGroup(click.Group):
    """Commands listed by section; the one place people's errors become a line and exit 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY:
            module, attr = LAZY[name][0].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        placed = {n for members in SECTIONS.values() for n in members}
        sections = {**SECTIONS, "Other": tuple(n for n in names if n not in placed)}
        for title, members in sections.items():
            rows = [(name, self._short_help(ctx, name)) for name in members if name in names]
            rows = [(name, text) for name, text in rows if text is not None]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str) -> str | None:
        if name in LAZY and name not in self.commands:
            return LAZY[name][1]
        command = self.get_command(ctx, name)
        return None if command is None or command.hidden else command.get_short_help_str(120)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (UserError, click.UsageError, OSError) as exc:
            if isinstance(exc, _HELP_ERRORS):
                raise
            if isinstance(exc, OSError) and exc.errno not in _FOLDER_ERRNOS:
                raise  # anything else is a bug and keeps its traceback
            if ctx.meta.get(DEBUG):  # the traceback, but still exit 2: 1 means a check failed
                traceback.print_exc()
                ctx.exit(2)
            if isinstance(exc, OSError):
                message = (f"{exc.filename}: {exc.strerror}; fix: free space, make the folder "
                           "writable or pass a shorter or other location")
            elif isinstance(exc, click.UsageError):
                where = exc.ctx.command_path if exc.ctx is not None else "bench"
                message = f"{exc.format_message()} (see `{where} --help`)"
            else:
                message = str(exc)
            click.echo(f"error: {' '.join(message.split())}", err=True)
            ctx.exit(2)


# The OS errors a person fixes (a full disk, a read-only folder, a name too long), not bugs.
_FOLDER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                            errno.ENAMETOOLONG})

# click >= 8.2 raises this usage error to show a group's help when it is called bare.
_HELP_ERRORS = tuple(getattr(click.exceptions, n) for n in ("NoArgsIsHelpError",)
                     if hasattr(click.exceptions, n))


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
def cli() -> None:
    """Reproduce VS-Boost (IJCAI 2023): train, sweep, tabulate and check against the paper.

    Typical use: `bench sweep --synthetic --profile smoke --name demo` then
    `bench report --name demo`. Results live in results/<name>/, one folder per run.

    Exit codes: 0 done, 1 a run failed or a check found a problem, 2 a wrong input (one line
    `error: ...`; --debug shows the traceback). Locations: data/xlsa17, data/synthetic,
    data/archives, datasets.lock, results, reports under the working directory, or
    $VSBOOST_DATA, $VSBOOST_SYNTHETIC, $VSBOOST_ARCHIVES, $VSBOOST_LOCK, $VSBOOST_RESULTS,
    $VSBOOST_REPORTS, or the commands' options.
    """


@cli.command(cls=SectionedCommand)
@option("-d", "--dataset", required=True, callback=names(DATASETS, single=True, other=DATASET_NAME),
        section="Run", help=f"One of {', '.join(DATASETS)}, or another xlsa17 folder with "
                            "--data-label.")
@option("-r", "--row", required=True, callback=names(all_rows, single=True), section="Run",
        help=f"A row of any method: VS-Boost's Table 4 rows {', '.join(ROWS)}, or fclswgan.")
@option("--seed-index", type=click.IntRange(min=0), default=0, section="Run",
        help="Seed index i; the seed is derived from (dataset, i), the same for every row.")
@training_options
@debug_option
def run(dataset, row, seed_index, **kw) -> None:
    """Train one run and write its record (skipped when already done)."""
    plan = _plan([dataset], [row], [seed_index], seeds_per_job=1, **kw)
    cells = _execute(plan, launcher="local", jobs=1)
    record = store.read_record(plan.folder / cells[0].run_id)
    click.echo(f"{cells[0].run_id}: {cells[0].status}{_headline(record)}")
    if record is not None:
        click.echo(f"record: {plan.folder / cells[0].run_id / store.RECORD}")
    sys.exit(_exit_code(cells))  # a run held by another process: named there, exit 1


def _headline(record: dict | None) -> str:
    if not record:
        return ""
    if record["status"] == "failed":
        return f" ({record['error']})"
    if record["status"] == "diverged":
        return f" at epoch {record['diverged_epoch']}"
    paper, last = record["metrics"]["paper"], record["metrics"]["last"]
    val = record["metrics"].get("val")
    return (f"; paper protocol U {100 * paper['U']:.1f} S {100 * paper['S']:.1f} "
            f"H {100 * paper['H']:.1f}; last epoch H {100 * last['H']:.1f}"
            + (f"; val protocol H {100 * val['H']:.1f}" if val else ""))


@cli.command(cls=SectionedCommand)
@datasets_option(others=True)
@method_option
@rows_option
@seeds_option
@training_options
@launch_options
@debug_option
def sweep(datasets, method, rows, seeds, **kw) -> None:
    """Train the grid datasets x rows x seeds of one method; finished runs are skipped, failed
    ones retried."""
    other = [r for r in rows or () if method_of(r) != method]
    if other:
        raise click.BadParameter(f"expected rows of {method} ({', '.join(rows_of(method))}), "
                                 f"found {', '.join(other)} of {method_of(other[0])}; fix: "
                                 f"--method {method_of(other[0])}", param_hint="'--rows'")
    _, cells = _sweep(list(datasets), list(rows or rows_of(method)), seeds, **kw)
    if not kw["dry_run"]:
        sys.exit(_exit_code(cells))


def _table_command(name: str, rows: tuple[str, ...], what: str) -> click.Command:
    @datasets_option(others=True)
    @seeds_option
    @out_option()
    @training_options
    @launch_options
    @debug_option
    def command(datasets, seeds, out, **kw) -> None:
        plan, cells = _sweep(list(datasets), list(rows), seeds, **kw)
        if kw["dry_run"]:
            return
        from bench.reports import write_reports

        for path in write_reports(plan.folder, out or settings.reports() / plan.folder.name):
            click.echo(f"wrote {path}")
        sys.exit(_exit_code(cells))

    command.__doc__ = (f"{what}: train the missing runs ({', '.join(rows)} row"
                       f"{'s' if len(rows) > 1 else ''}), then write the report.")
    return cli.command(name, cls=SectionedCommand)(command)


table2 = _table_command("table2", TABLE_ROWS["table2"], "Table 2 (GZSL U, S, H per dataset)")
table3 = _table_command("table3", TABLE_ROWS["table3"], "Table 3 (CZSL top-1 per dataset)")
table4 = _table_command("table4", TABLE_ROWS["table4"], "Table 4 (ablation rows x datasets)")


# ---------------------------------------------------------------- shared steps
def _plan(datasets, rows, seed_indices, *, seeds_per_job: int, **kw):
    from bench import sweep as sweeps  # `sweep` is the command here
    from vsboost.config import parse_override

    overrides = tuple(parse_override(text) for text in kw["sets"])
    plan = sweeps.make_plan(
        datasets, rows, seed_indices, results=kw["results"], name=kw["name"],
        profile=kw["profile"], overrides=overrides,
        data_root=kw["data_root"], synthetic=kw["synthetic"], seeds_per_job=seeds_per_job,
        device=None if kw["device"] == "auto" else kw["device"], features=kw["features"],
        data_label=kw["data_label"], feature_file=kw["feature_file"], backbone=kw["backbone"])
    click.echo(f"{plan.folder}: profile {kw['profile']}, {len(plan.jobs)} jobs to run")
    click.echo(sweeps.summary(plan.cells))
    if kw["profile"] == "paper" and plan.jobs:  # hours of work: say how many before they start
        from bench.perf import forecast

        for line in forecast.lines(plan.jobs, plan.jobs[0].kind, settings.reports()):
            click.echo(line)
    return plan


def _sweep(datasets, rows, seeds: int, *, launcher, jobs, seeds_per_job, cluster, partition,
           timeout_min, gpus_per_job, cpus_per_job, mem_gb, max_requeues, dry_run, **kw):
    if launcher == "submitit":
        _need_submitit()
    plan = _plan(datasets, rows, range(seeds), seeds_per_job=seeds_per_job, **kw)
    if dry_run:
        for job in plan.jobs:
            click.echo(f"would run {job.dataset} {job.row} seeds {list(job.seed_indices)}")
        return plan, plan.cells
    options = {}
    if launcher == "submitit":
        from bench.cluster import resources

        seeds_in_job = max((len(j.seed_indices) for j in plan.jobs), default=1)
        options = {"timeout_min": timeout_min, "slurm_partition": partition,
                   **resources(kw["device"], seeds_in_job, gpus=gpus_per_job, cpus=cpus_per_job,
                               mem_gb=mem_gb)}
    cells = _execute(plan, launcher=launcher, jobs=jobs, max_requeues=max_requeues,
                     cluster=None if cluster == "auto" else cluster, submitit_options=options)
    return plan, cells


def _need_submitit() -> None:
    try:
        import submitit  # noqa: F401 - only whether it can be imported
    except ImportError as err:
        raise UserError("--launcher submitit: expected the submitit package, found it not "
                        "installed; fix: pip install 'vsboost[cluster]'") from err


def _execute(plan, **launch):
    from bench import sweep as sweeps

    try:
        cells = sweeps.execute(plan, **launch)
    except PermissionError as exc:
        raise store.BenchError(
            f"results folder {plan.folder}: expected a writable folder, found {exc.strerror} "
            f"({exc.filename}); pass --results to a writable folder") from exc
    click.echo(f"now: {sweeps.summary(cells)}")
    superseded = sweeps.superseded(plan, cells)
    if superseded:
        click.echo(f"superseded {superseded} record(s) of other code: retrained with this code, "
                   f"the old runs kept in {plan.folder / store.SUPERSEDED_DIR}")
    for cell in cells:
        if cell.status == "failed":
            record = store.read_record(plan.folder / cell.run_id) or {}
            click.echo(f"failed: {cell.run_id}: {record.get('error')} "
                       f"(traceback in {plan.folder / cell.run_id / store.LOG})", err=True)
    return cells


def _exit_code(cells) -> int:
    """0 when every run asked for is finished; 1 when one failed or is not finished, including a
    run held by another process (it may still fail): the same for `run`, `sweep` and the tables."""
    held = [c.run_id for c in cells if c.status == "running"]
    if held:
        click.echo(f"not finished: {len(held)} run(s) held by another process ({held[0]}"
                   f"{' ...' if len(held) > 1 else ''}); rerun this command once it is done",
                   err=True)
    return 0 if all(c.status in store.FINISHED for c in cells) else 1


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
