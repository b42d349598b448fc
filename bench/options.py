"""Options and help layout shared by every ``bench`` command: sections in ``--help``, ``--debug``,
and one definition of each option that several commands take (datasets, rows, seeds, data root,
results, training and launch settings).

Imports only click and the light modules (``vsboost.settings``, ``vsboost.config``), so that
``bench --help`` stays fast.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from vsboost import settings
from vsboost.config import BASE_METHOD, DATASET_NAME, DATASETS, HPARAMS, ROWS, all_rows

DEBUG = "bench.debug"  # ctx.meta key: show tracebacks instead of one line


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


def _set_debug(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta[DEBUG] = True


# ---------------------------------------------------------------- options shared by commands
option = functools.partial(click.option, cls=SectionOption)
debug_option = option("--debug", is_flag=True, expose_value=False, is_eager=True,
                      callback=_set_debug, section="Debugging",
                      help="Show the full traceback of an error instead of one line.")


def names(allowed, *, single: bool = False, default=None, other=None):
    """Callback of a name-list option: ``-d CUB -d AWA2`` and ``--datasets CUB,AWA2`` alike,
    each name checked against ``allowed`` (or what ``allowed()`` returns when the option is
    used: methods registered after import count) or matching the pattern ``other``, duplicates
    dropped, order kept."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        allowed_now = allowed() if callable(allowed) else allowed
        values = (value,) if isinstance(value, str) else (value or ())
        names = list(dict.fromkeys(n.strip() for v in values for n in v.split(",") if n.strip()))
        unknown = [n for n in names if n not in allowed_now
                   and not (other is not None and other.fullmatch(n))]
        if unknown or (single and len(names) > 1):
            raise click.BadParameter(
                f"expected {'one' if single else 'some'} of {', '.join(allowed_now)}, found "
                f"{', '.join(unknown or names)}", ctx, param)
        if single:
            return names[0] if names else default
        return tuple(names) if names else default

    return callback


def datasets_option(*, default=tuple(DATASETS), show_default: str = "all five",
                    section: str = "Grid", help: str = "Datasets", others: bool = False):
    """``others``: also any other xlsa17 folder's name (training commands, with --data-label)."""
    more = ", or another xlsa17 folder with --data-label" if others else ""
    return option("-d", "--datasets", multiple=True, metavar="NAME[,NAME...]",
                  callback=names(DATASETS, default=default,
                                 other=DATASET_NAME if others else None),
                  section=section, show_default=show_default,
                  help=f"{help}: {', '.join(DATASETS)}{more}; repeat -d or separate by commas.")


rows_option = option("-r", "--rows", multiple=True, metavar="ROW[,ROW...]",
                     callback=names(all_rows), section="Grid",
                     show_default="every row of --method (VS-Boost: all four)",
                     help=f"Rows of --method: VS-Boost's Table 4 rows {', '.join(ROWS)}, "
                          "f-CLSWGAN's fclswgan; repeat -r or separate by commas.")
method_option = option("--method", default=BASE_METHOD, section="Grid",
                       callback=names(lambda: tuple(HPARAMS), single=True, default=BASE_METHOD),
                       help=f"The method trained: {', '.join(HPARAMS)} (docs/methods.md).")
seeds_option = option("--seeds", type=click.IntRange(min=1), default=5, section="Grid",
                      help="The number of seeds: seed indices 0..N-1 of every (dataset, row).")
results_option = option(
    "--results", type=click.Path(path_type=Path), default=None,
    callback=lambda _ctx, _param, value: settings.results(value), section="Results",
    show_default=f"{settings.DEFAULTS['results']}, or ${settings.ENV['results']}",
    help="Results root; a sweep lives in <results>/<name>/.")


def out_option(what: str = "Folder for the markdown reports and figures."):
    return option("--out", type=click.Path(path_type=Path), default=None, section="Results",
                  show_default=f"{settings.DEFAULTS['reports']}/<name>, or "
                               f"${settings.ENV['reports']}/<name>", help=what)


def data_root_option(kind: str = "data", help: str = "Real-data root holding <DATASET>/"
                     "res101.mat and att_splits.mat."):
    return option("--data-root", type=click.Path(path_type=Path), default=None, section="Data",
                  show_default=f"{settings.DEFAULTS[kind]}, or ${settings.ENV[kind]}", help=help)


def training_options(f):
    for decorator in reversed([
        option("--profile", type=click.Choice(["paper", "smoke", "regress"]), default="paper",
               section="Training",
               help="Hyperparameter profile (vsboost/config.py): 'paper', the paper's "
                    "settings; 'smoke', tiny, for tests and the demo; 'regress', smoke in "
                    "float64."),
        option("--set", "sets", multiple=True, metavar="KEY=VALUE", section="Training",
               help="Override one config value for every run, e.g. --set gan_epochs=50 "
                    "(repeatable; the keys of the method's block in vsboost/config.py)."),
        option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
               section="Training", help="Where to train; auto = CUDA when available."),
        option("--features", type=click.Choice(["auto", "all", "none"]), default="auto",
               section="Training",
               help="Save the t-SNE feature sample (features.npz) for: auto = seed index 0 of the "
                    "full row, all runs, or none."),
        option("--data-root", type=click.Path(path_type=Path), default=None,
               section="Data",
               show_default=f"{settings.DEFAULTS['data']} (${settings.ENV['data']}), or "
                            f"{settings.DEFAULTS['synthetic']} (${settings.ENV['synthetic']}) "
                            "with --synthetic",
               help="Folder holding <DATASET>/res101.mat and att_splits.mat."),
        option("--synthetic", is_flag=True, section="Data",
               help="Use the embedded synthetic benchmark, written on first use."),
        option("--data-label", default=None, section="Data",
               help="Run your own xlsa17-format files as CUSTOM data under this label: they may "
                    "differ from datasets.lock, and are never compared with the paper. Without "
                    "it, real files that do not match the lock are refused."),
        option("--feature-file", default="res101.mat", section="Data",
               help="The features' file in each dataset folder (xlsa17 layout: `features` D x N, "
                    "`labels`); another backbone's features need --data-label."),
        option("--backbone", default=None, section="Data", show_default="not recorded",
               help="Name of the network that made the features, recorded in every record and "
                    "shown in the reports (e.g. ResNet-101, CLIP ViT-B/32)."),
        results_option,
        option("--name", default=None, section="Results",
               show_default="<profile>-<data kind>: synthetic, real or custom-<label>",
               help="Sweep folder name under the results root."),
    ]):
        f = decorator(f)
    return f


def launch_options(f):
    for decorator in reversed([
        option("--launcher", type=click.Choice(["local", "submitit"]), default="local",
               section="Launch",
               help="local: this machine; submitit: one cluster job per job "
                    "(pip install 'vsboost[cluster]')."),
        option("--jobs", type=click.IntRange(min=1), default=None, section="Launch",
               show_default="one per GPU with --device cuda, else 1",
               help="local launcher: jobs trained in parallel processes (1 = in this process); "
                    "with GPUs, each worker on its own GPU, round-robin."),
        option("--seeds-per-job", type=click.IntRange(min=1), default=None, section="Launch",
               show_default="5 on a CPU; on a GPU as many (at most 5) as an estimate from the "
                            "shapes fits in 75% of its memory (vsboost/memory.py)",
               help="Seeds of one (dataset, row) trained together in one batched pass."),
        option("--cluster", type=click.Choice(["auto", "slurm", "local", "debug"]),
               default="auto", section="Launch",
               help="submitit cluster; auto = slurm when available, else local processes."),
        option("--partition", default=None, section="Launch", help="Slurm partition."),
        option("--timeout-min", type=click.IntRange(min=1), default=720, section="Launch",
               help="submitit: time limit of one job in minutes."),
        option("--gpus-per-job", type=click.IntRange(min=0), default=None, section="Launch",
               show_default="from --device: 0 for cpu, 1 for cuda (auto: 1 if CUDA here)",
               help="submitit: GPUs per job."),
        option("--cpus-per-job", type=click.IntRange(min=1), default=None, section="Launch",
               show_default="1 per seed of a job", help="submitit: CPU cores per job."),
        option("--mem-gb", type=click.FloatRange(min=1), default=None, section="Launch",
               show_default="2 + 2 per seed of a job", help="submitit: memory per job in GB."),
        option("--max-requeues", type=click.IntRange(min=0), default=3, section="Launch",
               help="submitit: times a job that reaches its time limit is requeued (resuming "
                    "from its checkpoint) before its runs are recorded timeout."),
        option("--dry-run", is_flag=True, section="Launch",
               help="Print the runs' states and the jobs that would run; train nothing."),
    ]):
        f = decorator(f)
    return f
