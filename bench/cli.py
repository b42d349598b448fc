"""``bench``: the command line of the reproduction suite.

Errors meant for people (a bad option, missing data, an unwritable folder) print one line
``error: ...`` on stderr and exit 2 without a traceback (``--debug`` shows it). Commands that train
exit 1 when some run failed, after recording it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path

import click

from bench import store

DATASETS = ("APY", "AWA2", "CUB", "FLO", "SUN")  # == vsboost.config.DATASETS (no torch at --help)
ROWS = ("plain", "sml", "rml", "full")  # == vsboost.config.ROWS
TABLE_ROWS = {"table2": ("full",), "table3": ("full",), "table4": ROWS}

# Commands of the other half of the harness, imported when used so that `bench run` does not pay
# for pandas and matplotlib.
LAZY = {
    "data": "bench.commands:data",
    "report": "bench.commands:report",
    "tsne": "bench.commands:tsne",
    "check": "bench.commands:check",
    "perf": "bench.perf:perf",
}
SECTIONS = {
    "Training": ("run", "sweep"),
    "Paper tables (train what is missing, then write the report)": ("table2", "table3", "table4"),
    "Reports and checks (from results/ alone)": ("report", "tsne", "check"),
    "Data": ("data",),
    "Performance": ("perf",),
}
DEBUG = "bench.debug"


class SectionOption(click.Option):
    """An option listed under a named section of its command's ``--help``."""

    def __init__(self, *args, section: str = "Other options", **kwargs):
        kwargs.setdefault("show_default", True)
        super().__init__(*args, **kwargs)
        self.section = section


class SectionedCommand(click.Command):
    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "section", "Other options"), []).append(record)
        for name, records in sections.items():
            with formatter.section(name):
                formatter.write_dl(records)


class BenchGroup(click.Group):
    """Commands listed by section; people's errors turned into one line and exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY:
            module, attr = LAZY[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        placed = {n for members in SECTIONS.values() for n in members}
        sections = {**SECTIONS, "Other": tuple(n for n in names if n not in placed)}
        for title, members in sections.items():
            rows = []
            for name in members:
                command = self.get_command(ctx, name) if name in names else None
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit=120)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if ctx.meta.get(DEBUG) or not _for_people(exc):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


def _for_people(exc: Exception) -> bool:
    kinds = [store.BenchError]
    # Such an error can only have been raised if its module was imported.
    for module, name in (("vsboost.config", "ConfigError"), ("vsboost.data", "DataError"),
                         ("bench.tables", "ReportError")):
        if module in sys.modules:
            kinds.append(getattr(sys.modules[module], name))
    return isinstance(exc, tuple(kinds))


def _set_debug(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta[DEBUG] = True


option = functools.partial(click.option, cls=SectionOption)
debug_option = option("--debug", is_flag=True, expose_value=False, is_eager=True,
                      callback=_set_debug, section="Debugging",
                      help="Show the full traceback of an error instead of one line.")


def training_options(f):
    for decorator in reversed([
        option("--profile", type=click.Choice(["paper", "smoke"]), default="paper",
               section="Training",
               help="Hyperparameter profile: 'paper' (SPEC defaults) or 'smoke' (tiny, for tests "
                    "and the demo; never the paper's settings)."),
        option("--set", "sets", multiple=True, metavar="KEY=VALUE", section="Training",
               help="Override one config value for every run, e.g. --set gan_epochs=50 "
                    "(repeatable; the keys are the fields of vsboost/config.py's Config)."),
        option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
               section="Training", help="Where to train; auto = CUDA when available."),
        option("--features", type=click.Choice(["auto", "all", "none"]), default="auto",
               section="Training",
               help="Save the t-SNE feature sample (features.npz) for: auto = seed index 0 of the "
                    "full row, all runs, or none."),
        option("--data-root", type=click.Path(path_type=Path), default=None,
               section="Data", show_default="data/xlsa17, or data/synthetic with --synthetic",
               help="Folder holding <DATASET>/res101.mat and att_splits.mat."),
        option("--synthetic", is_flag=True, section="Data",
               help="Use the embedded synthetic benchmark, written on first use."),
        option("--results", type=click.Path(path_type=Path), default=Path("results"),
               section="Results", help="Results root; runs go to <results>/<name>/."),
        option("--name", default=None, section="Results",
               show_default="<profile>-synthetic or <profile>-real, after the data read",
               help="Sweep folder name under the results root."),
    ]):
        f = decorator(f)
    return f


def launch_options(f):
    for decorator in reversed([
        option("--launcher", type=click.Choice(["local", "submitit"]), default="local",
               section="Launch", help="local: this machine; submitit: one cluster job per job."),
        option("--jobs", type=click.IntRange(min=1), default=1, section="Launch",
               help="local launcher: jobs trained in parallel processes (1 = in this process)."),
        option("--seeds-per-job", type=click.IntRange(min=1), default=5, section="Launch",
               help="Seeds of one (dataset, row) trained together in one batched pass."),
        option("--cluster", type=click.Choice(["auto", "slurm", "local", "debug"]),
               default="auto", section="Launch",
               help="submitit cluster; auto = slurm when available, else local processes."),
        option("--partition", default=None, section="Launch", help="Slurm partition."),
        option("--timeout-min", type=click.IntRange(min=1), default=720, section="Launch",
               help="submitit: time limit of one job in minutes."),
        option("--gpus-per-job", type=click.IntRange(min=0), default=1, section="Launch",
               help="submitit: GPUs per job."),
        option("--cpus-per-job", type=click.IntRange(min=1), default=8, section="Launch",
               help="submitit: CPU cores per job."),
        option("--mem-gb", type=click.FloatRange(min=1), default=32.0, section="Launch",
               help="submitit: memory per job in GB."),
        option("--dry-run", is_flag=True, section="Launch",
               help="Print the runs' states and the jobs that would run; train nothing."),
    ]):
        f = decorator(f)
    return f


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
def cli() -> None:
    """Reproduce VS-Boost (IJCAI 2023): train, sweep, tabulate and check against the paper.

    Typical use: `bench sweep --synthetic --profile smoke --name demo` then
    `bench report --name demo`. Results live in results/<name>/, one folder per run.
    """


@cli.command(cls=SectionedCommand)
@option("--dataset", required=True, section="Run", help=f"One of {', '.join(DATASETS)}.")
@option("--row", required=True, section="Run", help=f"Table 4 row: {', '.join(ROWS)}.")
@option("--seed-index", type=int, default=0, section="Run",
        help="Seed index i; the seed is derived from (dataset, i), the same for every row.")
@training_options
@debug_option
def run(dataset, row, seed_index, **kw) -> None:
    """Train one run and write its record (skipped when already done)."""
    plan = _plan([dataset], [row], [seed_index], seeds_per_job=1, **kw)
    cells = _execute(plan, launcher="local", jobs=1)
    record = store.read_record(plan.folder / cells[0].run_id)
    click.echo(f"{cells[0].run_id}: {cells[0].status}{_headline(record)}")
    click.echo(f"record: {plan.folder / cells[0].run_id / store.RECORD}")
    sys.exit(0 if cells[0].status in store.FINISHED else 1)


def _headline(record: dict | None) -> str:
    if not record:
        return ""
    if record["status"] == "failed":
        return f" ({record['error']})"
    if record["status"] == "diverged":
        return f" at epoch {record['diverged_epoch']}"
    paper, last = record["metrics"]["paper"], record["metrics"]["last"]
    return (f"; paper protocol U {100 * paper['U']:.1f} S {100 * paper['S']:.1f} "
            f"H {100 * paper['H']:.1f}; last epoch H {100 * last['H']:.1f}")


@cli.command(cls=SectionedCommand)
@option("--datasets", default=",".join(DATASETS), section="Grid",
        help="Comma-separated datasets.")
@option("--rows", default=",".join(ROWS), section="Grid", help="Comma-separated Table 4 rows.")
@option("--seeds", type=click.IntRange(min=1), default=5, section="Grid",
        help="Seed indices 0..N-1 of every (dataset, row).")
@training_options
@launch_options
@debug_option
def sweep(datasets, rows, seeds, **kw) -> None:
    """Train the grid datasets x rows x seeds; finished runs are skipped, failed ones retried."""
    _, cells = _sweep(_split(datasets), _split(rows), seeds, **kw)
    if not kw["dry_run"]:
        sys.exit(_exit_code(cells))


def _table_command(name: str, rows: tuple[str, ...], what: str) -> click.Command:
    @option("--datasets", default=",".join(DATASETS), section="Grid",
            help="Comma-separated datasets.")
    @option("--seeds", type=click.IntRange(min=1), default=5, section="Grid",
            help="Seed indices 0..N-1 of every cell.")
    @option("--out", type=click.Path(path_type=Path), default=None, section="Results",
            show_default="reports/<name>", help="Folder for the markdown reports and figures.")
    @training_options
    @launch_options
    @debug_option
    def command(datasets, seeds, out, **kw) -> None:
        plan, cells = _sweep(_split(datasets), list(rows), seeds, **kw)
        if kw["dry_run"]:
            return
        from bench.tables import write_reports

        for path in write_reports(plan.folder, out or Path("reports") / plan.folder.name):
            click.echo(f"wrote {path}")
        sys.exit(_exit_code(cells))

    command.__doc__ = (f"{what}: train the missing runs ({', '.join(rows)} row"
                       f"{'s' if len(rows) > 1 else ''}), then write the report.")
    return cli.command(name, cls=SectionedCommand)(command)


table2 = _table_command("table2", TABLE_ROWS["table2"], "Table 2 (GZSL U, S, H per dataset)")
table3 = _table_command("table3", TABLE_ROWS["table3"], "Table 3 (CZSL top-1 per dataset)")
table4 = _table_command("table4", TABLE_ROWS["table4"], "Table 4 (ablation rows x datasets)")


# ---------------------------------------------------------------- shared steps
def _split(text: str) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _plan(datasets, rows, seed_indices, *, seeds_per_job: int, **kw):
    from bench import sweep as sweeps
    from vsboost.config import parse_override

    overrides = tuple(parse_override(text) for text in kw["sets"])
    plan = sweeps.make_plan(
        datasets, rows, seed_indices, results=kw["results"], name=kw["name"],
        profile=kw["profile"], overrides=overrides,
        data_root=kw["data_root"], synthetic=kw["synthetic"], seeds_per_job=seeds_per_job,
        device=None if kw["device"] == "auto" else kw["device"], features=kw["features"])
    click.echo(f"{plan.folder}: profile {kw['profile']}, {len(plan.jobs)} jobs to run")
    click.echo(sweeps.summary(plan.cells))
    return plan


def _sweep(datasets, rows, seeds: int, *, launcher, jobs, seeds_per_job, cluster, partition,
           timeout_min, gpus_per_job, cpus_per_job, mem_gb, dry_run, **kw):
    plan = _plan(datasets, rows, range(seeds), seeds_per_job=seeds_per_job, **kw)
    if dry_run:
        for job in plan.jobs:
            click.echo(f"would run {job.dataset} {job.row} seeds {list(job.seed_indices)}")
        return plan, plan.cells
    options = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_job,
               "cpus_per_task": cpus_per_job, "mem_gb": mem_gb, "slurm_partition": partition}
    cells = _execute(plan, launcher=launcher, jobs=jobs,
                     cluster=None if cluster == "auto" else cluster, submitit_options=options)
    return plan, cells


def _execute(plan, **launch):
    from bench import sweep as sweeps

    try:
        cells = sweeps.execute(plan, **launch)
    except PermissionError as exc:
        raise store.BenchError(
            f"results folder {plan.folder}: expected a writable folder, found {exc.strerror} "
            f"({exc.filename}); pass --results to a writable folder") from exc
    click.echo(f"now: {sweeps.summary(cells)}")
    for cell in cells:
        if cell.status == "failed":
            record = store.read_record(plan.folder / cell.run_id) or {}
            click.echo(f"failed: {cell.run_id}: {record.get('error')} "
                       f"(traceback in {plan.folder / cell.run_id / store.LOG})", err=True)
    return cells


def _exit_code(cells) -> int:
    """1 when a run failed or was left unfinished; runs another sweep is training do not count."""
    return 0 if all(c.status in (*store.FINISHED, "running") for c in cells) else 1


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
