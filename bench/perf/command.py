"""The ``bench perf`` command: measure each dataset, the stacking and the demo in worker
processes, write the raw numbers to ``perf-<device>.json`` and regenerate the report from every
device's JSON beside it, so that a later GPU run fills the GPU column without redoing the CPU one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from bench.options import SectionedCommand, datasets_option, debug_option, option
from vsboost.config import DATASETS

# choice: the demo's own shapes (noxfile `demo`: smoke profile, synthetic scale 0.1, 2 seeds)
DEMO = {"dataset": "AWA2", "scale": 0.1, "members": 2}


@click.command("perf", cls=SectionedCommand)
@option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
        section="Measurement", help="Device to measure; auto = CUDA when available.")
@datasets_option(default=None, show_default="all five; CUB with --quick", section="Measurement",
                 help="Datasets to measure at their paper shapes")
@option("--seeds", type=click.IntRange(min=2), default=5, section="Measurement",
        help="Members of the stacked multi-seed comparison and seeds of the grid.")
@option("--threads", type=click.IntRange(min=0), default=0, section="Measurement",
        help="torch threads per worker; 0 = torch's default (one per core).")
@option("--quick", is_flag=True, section="Measurement",
        help="About a minute: CUB only, two repetitions, one classifier epoch.")
@option("--out", type=click.Path(path_type=Path), default=None,
        show_default="$VSBOOST_REPORTS/perf.md, else reports/perf.md", section="Output",
        help="Report to (re)write; perf-<device>.json goes beside it.")
@debug_option
def perf(device: str, datasets: tuple[str, ...] | None, seeds: int, threads: int, quick: bool,
         out: Path | None) -> None:
    """Throughput against the device's own peak, projected training times, memory."""
    import torch

    from bench.perf import projection, worker
    from bench.perf.render import fmt_time, gib, pct, render
    from vsboost import settings
    from vsboost.files import atomic_write

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("expected a CUDA device, found none visible to torch; use "
                                 "--device cpu", param_hint="--device")
    names = list(datasets or (("CUB",) if quick else DATASETS))
    # choice: two repetitions even when quick: the fastest of one is no defence against a noisy
    # neighbour; two classifier epochs are enough to scale up (every epoch costs the same).
    reps, cls_epochs = (2, 1) if quick else (3, 2)
    out = out or settings.reports() / "perf.md"
    started = time.perf_counter()
    env = worker.run({"kind": "environment", "device": device}, threads)
    click.echo(f"bench perf on {env['name']} ({device}, {env['threads']} threads, torch "
               f"{env['torch']})")
    run = {"env": env, "datasets": [], "seeds": seeds,
           "command": "bench perf" + (" --quick" if quick else "")
           + (f" --device {device}" if device != "cpu" else "")
           + (f" --datasets {','.join(names)}" if datasets else "")
           + (f" --seeds {seeds}" if seeds != 5 else "")
           + (f" --threads {threads}" if threads else "")}
    for name in names:
        ds = worker.run({"kind": "dataset", "dataset": name, "device": device, "reps": reps,
                         "cls_epochs": cls_epochs}, threads)
        p = projection.project(ds)
        click.echo(f"  {name:4s} iteration {ds['iter_s']:.2f} s = {pct(p['iter_of_peak'])} of "
                   f"peak ({ds['peak_gflops']:.0f} GFLOP/s; step-shape matmul "
                   f"{pct(p['step_mm_of_peak'])}), eval {pct(p['eval_of_epoch'])} of an epoch, "
                   f"one training {fmt_time(p['training_s'])} (checkpoints "
                   f"{fmt_time(p['checkpoint_s'] or 0)}), peak {gib(ds['mem_peak'])}")
        run["datasets"].append(ds)
    stack_at = projection.STEP_DATASET
    run["stacking"] = worker.run({"kind": "stacking", "dataset": stack_at, "device": device,
                                  "members": seeds, "reps": reps}, threads)
    ratio = projection.stack_ratio(run["stacking"])
    click.echo(f"  stacked x{seeds} at {stack_at}: {ratio:.2f}x the throughput of separate runs")
    if set(names) == set(DATASETS):
        trainings = {d["dataset"]: projection.project(d)["training_s"] for d in run["datasets"]}
        writes = {d["dataset"]: projection.checkpoints_s(d) or 0.0 for d in run["datasets"]}
        run["grid_s"] = projection.grid_seconds(trainings, seeds, ratio, checkpoints=writes)
        click.echo(f"  reproduce grid: {fmt_time(run['grid_s'])}")
    run["demo"] = worker.run({"kind": "demo", "device": device, **DEMO}, threads)
    click.echo(f"  demo peak memory {gib(run['demo']['mem_peak'])}")

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out.with_name(f"{out.stem}-{device}.json"),
                 (json.dumps(run, indent=1) + "\n").encode())
    runs = {}
    for kind in ("cpu", "cuda"):
        path = out.with_name(f"{out.stem}-{kind}.json")
        if path.exists():
            runs[kind] = json.loads(path.read_text())
    atomic_write(out, render(runs).encode())
    click.echo(f"wrote {out} ({fmt_time(time.perf_counter() - started)})")
