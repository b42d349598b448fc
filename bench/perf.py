"""``bench perf``: what one training costs on this device, measured against the device's own peak.

For each dataset's real shapes (SPEC §1 sizes, paper widths; random tensors, no data files) it
times one generator iteration of the ``full`` row, the per-epoch evaluation (synthetic features,
the final GZSL and CZSL classifier fits, the tests) and counts their floating-point work with
torch's FlopCounterMode. Achieved GFLOP/s are printed as a fraction of a large square fp32 matmul
timed in the same process, beside a matmul at the step's own shapes. From these it projects one
paper training per dataset and the whole ``reproduce`` grid, times M stacked seeds against M
single runs, and records peak memory. The report (``reports/perf.md``) is regenerated whole and
carries no timestamp; the raw numbers go to ``perf-<device>.json`` beside it, so a later GPU run
fills the GPU column without redoing the CPU one.

Every time is the fastest of a few repetitions (other processes only ever add time) and every
ratio comes from one process, so the numbers compare on a shared, noisy machine. Each dataset is
measured in a fresh worker process, so that its peak memory is its own.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

DATASETS = ("APY", "AWA2", "CUB", "FLO", "SUN")  # == vsboost.config.DATASETS
ROWS = 4  # plain, sml, rml, full: the reproduce grid (README, nox -s reproduce)
SQUARE_N = 4096  # choice: a square fp32 matmul this large runs near the device's peak
STACK_DATASET = "CUB"  # issue 4: multi-seed throughput is compared at CUB shapes
DEMO = {"dataset": "AWA2", "scale": 0.1, "members": 2}  # noxfile demo: smoke, scale 0.1, 2 seeds
GIB = 2**30
# Issue 4's targets. "fraction" targets are lower bounds unless "max" says otherwise.
# Issue 4's targets: name -> (what is wanted, bound per device type; None = no target there).
TARGETS = {
    "1. step at CUB shapes, of peak": (">= 40% on CPU", {"cpu": 0.40, "cuda": None}),
    "2. evaluation / generator epoch": ("<= 25%, every dataset", {"cpu": 0.25, "cuda": 0.25}),
    "3. seeds stacked vs separate runs": (">= 1.5x CPU, >= 4x GPU", {"cpu": 1.5, "cuda": 4.0}),
    "4. reproduce grid on one GPU": ("<= 60 min", {"cpu": None, "cuda": 3600.0}),
    "5. demo peak memory": ("<= 4 GiB", {"cpu": 4 * GIB, "cuda": 4 * GIB}),
}


# ===== measurement (runs inside a worker process) =====

def shaped_benchmark(dataset: str, device="cpu", scale: float = 1.0, seed: int = 0):
    """A Benchmark with ``dataset``'s real shapes (SPEC §1: attribute dim, seen/unseen classes,
    split sizes times ``scale``) filled with random values: what the step costs depends on shapes
    alone. Classes get equal shares of every split."""
    import torch
    from torch.nn import functional as F

    from vsboost.data import FEATURE_DIM, SENT_FILE, Benchmark
    from vsboost.synthetic import LAYOUT, SENT_DIM

    lay = LAYOUT[dataset]
    att_dim = SENT_DIM if dataset in SENT_FILE else lay.att_dim  # CUB: sentence embedding
    gen = torch.Generator().manual_seed(seed)
    n_classes = lay.n_seen + lay.n_unseen
    order = torch.randperm(n_classes, generator=gen)
    seen, unseen = order[: lay.n_seen].sort().values, order[lay.n_seen :].sort().values

    def split(n: int, classes):
        n = max(len(classes), round(n * scale))
        y = classes[torch.arange(n) % len(classes)][torch.randperm(n, generator=gen)]
        return torch.rand(n, FEATURE_DIM, generator=gen), y

    train, test_seen, test_unseen = (split(lay.trainval, seen), split(lay.test_seen, seen),
                                     split(lay.test_unseen, unseen))
    att = F.normalize(torch.rand(n_classes, att_dim, generator=gen), dim=1)
    bench = Benchmark(dataset, True, "0" * 16, {}, *train, *test_seen, *test_unseen, att, seen,
                      unseen)
    return bench.to(device)


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn, dev):
    """(seconds, result) of ``fn()``, waiting for the device on both ends."""
    _sync(dev)
    t0 = time.perf_counter()
    out = fn()
    _sync(dev)
    return time.perf_counter() - t0, out


def _counted(fn):
    """(flops, result) of ``fn()`` under FlopCounterMode (matmuls and convolutions only)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = fn()
    return counter.get_total_flops(), out


def square_rate(dev, n: int = SQUARE_N) -> float:
    """GFLOP/s of one n x n x n fp32 matmul (the fastest of two, after a warm-up)."""
    import torch

    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    a @ b
    best = min(_timed(lambda: a @ b, dev)[0] for _ in range(2))
    return 2 * n**3 / best / 1e9


def layer_rate(dev, batch: int, d_in: int, d_out: int, reps: int = 5) -> float:
    """GFLOP/s of one stacked linear layer's three matmuls (forward, input and weight gradient)
    at batch ``batch``: the best the step could do at its own shapes."""
    import torch

    x, g = torch.randn(1, batch, d_in, device=dev), torch.randn(1, batch, d_out, device=dev)
    w, bias = torch.randn(1, d_in, d_out, device=dev), torch.zeros(1, 1, d_out, device=dev)

    def layer():
        torch.baddbmm(bias, x, w)
        torch.bmm(g, w.transpose(1, 2))
        torch.bmm(x.transpose(1, 2), g)

    layer()
    best = min(_timed(layer, dev)[0] for _ in range(reps))
    return 3 * 2 * batch * d_in * d_out / best / 1e9


def _memory_start(dev) -> int:
    import resource

    import torch

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        return torch.cuda.memory_allocated(dev)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _memory_peak(dev) -> int:
    import resource

    import torch

    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_how(device_type: str) -> str:
    if device_type == "cuda":
        return "torch.cuda.max_memory_allocated (tensors only)"
    return "peak RSS (getrusage maxrss) of a fresh worker process, interpreter and torch included"


def measure_dataset(dataset: str, device: str, reps: int, cls_epochs: int) -> dict:
    """One dataset at paper shapes, M = 1: generator iteration, evaluation, peak memory."""
    import torch

    from vsboost import evaluate
    from vsboost.config import make_config
    from vsboost.train import VSBoost

    dev = torch.device(device)
    mem_start = _memory_start(dev)
    data = shaped_benchmark(dataset, dev)
    cfg = make_config(dataset, "full", "paper", {"checkpoint_every": 0})
    model = VSBoost(data, cfg, [0], dev)  # also sets the trainer's matmul precision (TF32 on GPU)
    episodes, _ = model.draw_epoch()
    peaks = [square_rate(dev)]
    step_mm = layer_rate(dev, model.batch, data.feature_dim, cfg.hidden)
    # The warm-up iteration is the counted one: FlopCounterMode slows what it watches.
    iter_flops, _ = _counted(lambda: model.iteration(episodes[:, 0]))
    iters = []
    for r in range(reps):
        iters.append(_timed(lambda r=r: model.iteration(episodes[:, (r + 1) % model.steps]),
                            dev)[0])
        peaks.append(square_rate(dev))

    # Evaluation = features (G and E over every split) + the two classifier fits. The fits run
    # `timed` of their cfg.cls_epochs epochs (fastest of `reps`); every epoch costs the same, so
    # they are scaled up.
    timed = min(cls_epochs, cfg.cls_epochs)
    prep_s, (prep_flops, feats) = _timed(lambda: _counted(model.eval_features), dev)

    f, kw = feats, {"lr": cfg.cls_lr, "batch": cfg.cls_batch or cfg.syn_num}

    def gzsl(epochs: int):
        return evaluate.gzsl_scores(
            f["train"], data.train_y, f["syn"], f["syn_y"], f["seen"], data.test_seen_y,
            f["unseen"], data.test_unseen_y, data.n_classes, model.gens, epochs=epochs, **kw)

    def czsl(epochs: int):
        return evaluate.czsl_scores(f["syn"], f["syn_y"], f["unseen"], data.test_unseen_y,
                                    data.unseen, model.gens, epochs=epochs, **kw)

    gzsl_s = min(_timed(lambda: gzsl(timed), dev)[0] for _ in range(reps))
    czsl_s = min(_timed(lambda: czsl(timed), dev)[0] for _ in range(reps))
    mem_peak = _memory_peak(dev)
    gzsl_flops, czsl_flops = _counted(lambda: gzsl(1))[0], _counted(lambda: czsl(1))[0]
    scale = cfg.cls_epochs / timed
    return {
        "dataset": dataset, "batch": model.batch, "steps": model.steps,
        "epochs": cfg.gan_epochs, "eval_every": cfg.eval_every, "syn_num": cfg.syn_num,
        "n_classes": data.n_classes,
        "cls_epochs": cfg.cls_epochs, "cls_epochs_timed": timed,
        "iter_s": min(iters), "iter_s_all": iters, "iter_flops": iter_flops,
        "peak_gflops": max(peaks), "step_mm_gflops": step_mm,
        "step_mm_shape": f"[{model.batch} x {data.feature_dim}] @ [{data.feature_dim} x "
                         f"{cfg.hidden}], forward + both gradients",
        "prep_s": prep_s, "gzsl_s": gzsl_s * scale, "czsl_s": czsl_s * scale,
        "eval_s": prep_s + (gzsl_s + czsl_s) * scale,
        "eval_flops": prep_flops + (gzsl_flops + czsl_flops) * cfg.cls_epochs,
        "gzsl_flops": gzsl_flops * cfg.cls_epochs,
        "mem_start": mem_start, "mem_peak": mem_peak,
    }


def measure_stacking(dataset: str, device: str, members: int, reps: int) -> dict:
    """Generator iterations of M stacked members against M = 1, interleaved with the peak."""
    import torch

    from vsboost.config import make_config
    from vsboost.train import VSBoost

    dev = torch.device(device)
    data = shaped_benchmark(dataset, dev)
    cfg = make_config(dataset, "full", "paper", {"checkpoint_every": 0})
    single = VSBoost(data, cfg, [0], dev)
    stacked = VSBoost(data, cfg, list(range(members)), dev)
    eps1, epsm = single.draw_epoch()[0], stacked.draw_epoch()[0]
    flops1, _ = _counted(lambda: single.iteration(eps1[:, 0]))
    flopsm, _ = _counted(lambda: stacked.iteration(epsm[:, 0]))
    t1, tm, peaks = [], [], [square_rate(dev)]
    for r in range(reps):
        i = (r + 1) % single.steps
        t1.append(_timed(lambda i=i: single.iteration(eps1[:, i]), dev)[0])
        tm.append(_timed(lambda i=i: stacked.iteration(epsm[:, i]), dev)[0])
        peaks.append(square_rate(dev))
    return {"dataset": dataset, "members": members, "single_s": min(t1), "stacked_s": min(tm),
            "single_s_all": t1, "stacked_s_all": tm, "single_flops": flops1,
            "stacked_flops": flopsm, "peak_gflops": max(peaks)}


def measure_demo(device: str, dataset: str, scale: float, members: int) -> dict:
    """Peak memory of one demo training (smoke profile, ``members`` stacked seeds, 1 epoch: every
    later epoch repeats the same allocations) at the synthetic benchmark's demo shapes."""
    import torch

    from vsboost.config import make_config
    from vsboost.train import train

    dev = torch.device(device)
    mem_start = _memory_start(dev)
    data = shaped_benchmark(dataset, dev, scale=scale)
    cfg = make_config(dataset, "full", "smoke", {"gan_epochs": 1, "checkpoint_every": 0})
    wall, _ = _timed(lambda: train(data, cfg, list(range(members)), device=dev), dev)
    return {"dataset": dataset, "scale": scale, "members": members, "epoch_s": wall,
            "mem_start": mem_start, "mem_peak": _memory_peak(dev)}


def environment(device: str, threads: int) -> dict:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = _cpu_model()
    return {"device": dev.type, "name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "python": platform.python_version(),
            "tf32": dev.type == "cuda",  # the trainer allows TF32 matmuls on CUDA
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


WORKERS = {"dataset": measure_dataset, "stacking": measure_stacking, "demo": measure_demo,
           "environment": environment}


def _worker(job: dict, threads: int, out: Path) -> None:
    """Entry point of a worker process: run one measurement, write its JSON to ``out``."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    kind = job.pop("kind")
    result = WORKERS[kind](**job)
    out.write_text(json.dumps(result))


def run_worker(job: dict, threads: int) -> dict:
    """Run one measurement in a fresh Python process (its own peak memory, no warm caches)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        code = "import sys, json; from pathlib import Path; from bench.perf import _worker; " \
               "_worker(json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))"
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(job), str(threads),
                               str(out)], env=env, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"bench perf: the {job['kind']} worker failed: {tail[0]}")
        return json.loads(out.read_text())


# ===== arithmetic and report (pure; tested) =====

def project(ds: dict) -> dict:
    """Derived figures of one dataset's measurements: rates, fractions and projected times."""
    epoch_s = ds["steps"] * ds["iter_s"]
    evals_per_epoch = 1 / ds["eval_every"]
    return {
        "iter_gflops": ds["iter_flops"] / ds["iter_s"] / 1e9,
        "iter_of_peak": ds["iter_flops"] / ds["iter_s"] / 1e9 / ds["peak_gflops"],
        "step_mm_of_peak": ds["step_mm_gflops"] / ds["peak_gflops"],
        "epoch_s": epoch_s,
        "eval_of_epoch": ds["eval_s"] / epoch_s,
        # What the evaluation would cost at the step's own efficiency: the floor of eval_of_epoch.
        "eval_flops_of_epoch": ds["eval_flops"] / (ds["steps"] * ds["iter_flops"]),
        "training_s": ds["epochs"] * (epoch_s + evals_per_epoch * ds["eval_s"]),
    }


def stack_ratio(stack: dict) -> float:
    """Throughput of M stacked members over M separate runs: M * t(1) / t(M)."""
    return stack["members"] * stack["single_s"] / stack["stacked_s"]


def grid_seconds(trainings: dict[str, float], seeds: int, speedup: float,
                 rows: int = ROWS) -> float:
    """The reproduce grid: every dataset x ``rows`` x ``seeds``, each training costed as the
    ``full`` row (an upper bound: the other rows train fewer networks), run ``seeds`` at a time
    stacked when that is faster (``speedup`` > 1), else one by one."""
    return sum(trainings.values()) * rows * seeds / max(speedup, 1.0)


def fmt_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def targets(run: dict) -> dict[str, tuple[str, bool | None]]:
    """{target: (measured, met)} for one device's run; met is None where there is no bound."""
    kind = run["env"]["device"]
    bound = {name: b[kind] for name, (_, b) in TARGETS.items()}
    by_ds = {d["dataset"]: d for d in run["datasets"]}
    out = {}

    def check(name: str, measured: str, value: float, upper: bool) -> None:
        b = bound[name]
        out[name] = (measured, None if b is None else (value <= b if upper else value >= b))

    if STACK_DATASET in by_ds:
        p = project(by_ds[STACK_DATASET])
        check("1. step at CUB shapes, of peak", f"{_pct(p['iter_of_peak'])} (matmul at the "
              f"step's shapes: {_pct(p['step_mm_of_peak'])})", p["iter_of_peak"], upper=False)
    if by_ds:
        worst = max(by_ds.values(), key=lambda d: project(d)["eval_of_epoch"])
        frac = project(worst)["eval_of_epoch"]
        check("2. evaluation / generator epoch", f"worst: {worst['dataset']} {_pct(frac)}", frac,
              upper=True)
    if run.get("stacking"):
        ratio = stack_ratio(run["stacking"])
        check("3. seeds stacked vs separate runs",
              f"{ratio:.2f}x ({run['stacking']['members']} seeds)", ratio, upper=False)
    if run.get("grid_s") is not None:
        where = "" if kind == "cuda" else " on this CPU"
        check("4. reproduce grid on one GPU", fmt_time(run["grid_s"]) + where, run["grid_s"],
              upper=True)
    if run.get("demo"):
        peak = run["demo"]["mem_peak"]
        check("5. demo peak memory", _gib(peak), peak, upper=True)
    return out


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[value]


def render(runs: dict[str, dict]) -> str:
    """reports/perf.md from the runs present, ``{"cpu": run, "cuda": run}``; no timestamps."""
    lines = ["# Performance (`bench perf`)", "",
             "Generated by `bench perf`; do not edit. Shapes are the real ones (SPEC §1, paper "
             "widths: hidden 4096, encoder 2048), filled with random values. Every time is the "
             "fastest of a few repetitions; every ratio comes from one process. Peak = a "
             f"{SQUARE_N}^3 fp32 matmul timed in the same process as the step.", ""]
    lines += ["## Targets (issue 4)", "", "| target | wanted | CPU | met | GPU | met |",
              "|---|---|---|---|---|---|"]
    per_kind = {kind: targets(run) for kind, run in runs.items()}
    for name, (wanted, _) in TARGETS.items():
        cells = [name, wanted]
        for kind in ("cpu", "cuda"):
            measured, met = per_kind.get(kind, {}).get(name, (None, None))
            if measured is None:
                measured = "-" if kind in runs else "not measured"
            cells += [measured, _met(met)]
        lines.append("| " + " | ".join(cells) + " |")
    whys = [f"- {kind.upper()}, {why}" for kind, run in runs.items()
            for why in _shortfalls(run, per_kind[kind])]
    if whys:
        lines += ["", "What stands in the way of the missed targets:", "", *whys]
    lines.append("")
    for kind in ("cpu", "cuda"):
        lines += _device_section(kind, runs.get(kind))
    return "\n".join(lines).rstrip() + "\n"


def _shortfalls(run: dict, met: dict[str, tuple[str, bool | None]]) -> list[str]:
    """What stands in the way of each target this run misses, from its own numbers."""
    missed = {name[:1] for name, (_, ok) in met.items() if ok is False}
    out = []
    if "1" in missed:
        p = project(next(d for d in run["datasets"] if d["dataset"] == STACK_DATASET))
        out.append(f"step: a matmul at the step's own shapes reaches {_pct(p['step_mm_of_peak'])} "
                   "of peak on its own; the step adds the optimisers' memory-bound updates.")
    if "2" in missed:
        bound = TARGETS["2. evaluation / generator epoch"][1][run["env"]["device"]]
        for d in run["datasets"]:
            p = project(d)
            if p["eval_of_epoch"] > bound:
                fit = d["gzsl_flops"] / d["gzsl_s"] / 1e9 / d["peak_gflops"]
                out.append(
                    f"evaluation, {d['dataset']}: its FLOPs alone are "
                    f"{_pct(p['eval_flops_of_epoch'])} of a generator epoch's (lineage protocol: "
                    f"a {d['n_classes']}-way classifier in batches of syn_num = {d['syn_num']}, "
                    f"{d['cls_epochs']} epochs, tested after each), and the classifier runs at "
                    f"{_pct(fit)} of peak against the step's {_pct(p['iter_of_peak'])}.")
    if "3" in missed:
        st = run["stacking"]
        rate = {k: st[f"{k}_flops"] / st[f"{k}_s"] / 1e9 / st["peak_gflops"]
                for k in ("single", "stacked")}
        out.append("stacking: members share no weight, so M stacked members run M matmuls of the "
                   "same per-member shape and nothing is reused; one member alone already runs "
                   f"at {_pct(rate['single'])} of peak here (stacked: {_pct(rate['stacked'])}), "
                   "so stacking can only save per-operation overhead. It pays where one member "
                   "leaves the device idle: GPUs.")
    if "4" in missed:
        out.append("grid: the per-dataset training times are in the GPU section.")
    return out


def _device_section(kind: str, run: dict | None) -> list[str]:
    title = {"cpu": "CPU", "cuda": "GPU"}[kind]
    if run is None:
        return [f"## {title}", "", "Not measured: no GPU was available to the run that wrote "
                "this report. On a GPU machine run `benchmarks/gpu_check.sh`.", ""]
    env = run["env"]
    out = [f"## {title}: {env['name']}", "",
           f"Measured on: {env['name']}, {env['threads']} threads ({env['cores']} logical "
           f"cores), torch {env['torch']}, Python {env['python']}"
           + (", TF32 matmuls allowed (as the trainer sets)" if env.get("tf32") else "") + ". "
           + f"Command: `{run['command']}`."
           + (f" Other processes shared the machine: 1-minute load average {env['load']:.1f} "
              "when the run started." if env.get("load") else ""), ""]
    out += ["| dataset | N·K | iteration | GFLOP/iter | GFLOP/s | % of peak | step-shape matmul "
            "% of peak | eval | eval / epoch (FLOPs) | epoch | one training | peak memory |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    trainings = {}
    for ds in run["datasets"]:
        p = project(ds)
        trainings[ds["dataset"]] = p["training_s"]
        out.append(f"| {ds['dataset']} | {ds['batch']} | {ds['iter_s']:.2f} s | "
                   f"{ds['iter_flops'] / 1e9:.0f} | {p['iter_gflops']:.0f} | "
                   f"{_pct(p['iter_of_peak'])} | {_pct(p['step_mm_of_peak'])} | "
                   f"{fmt_time(ds['eval_s'])} | {_pct(p['eval_of_epoch'])} "
                   f"({_pct(p['eval_flops_of_epoch'])}) | "
                   f"{fmt_time(p['epoch_s'])} | {fmt_time(p['training_s'])} | "
                   f"{_gib(ds['mem_peak'])} |")
    if run["datasets"]:
        peaks = sorted({f"{ds['peak_gflops']:.0f}" for ds in run["datasets"]}, key=float)
        ds0 = run["datasets"][0]
        out += ["", f"- Peak ({SQUARE_N}^3 matmul): {' to '.join(peaks[::max(1, len(peaks) - 1)])}"
                " GFLOP/s across the workers. Step-shape matmul: " + ds0["step_mm_shape"].replace(
                    f"[{ds0['batch']} x", "[N·K x") + ".",
                "- Iteration: 5 critic steps with gradient penalty and the E/R/F updates, then "
                "one generator step, `full` row, one member. Epoch = |trainval| / (N·K) "
                "iterations; one training = paper epochs x (epoch + evaluation).",
                "- eval / epoch: wall time of one evaluation over one generator epoch; in "
                "brackets the same ratio in FLOPs, i.e. what it would be were the evaluation as "
                "efficient as the step.",
                f"- Evaluation: synthetic features + GZSL and CZSL classifier fits (paper "
                f"syn_num, {ds0['cls_epochs']} epochs, batch = syn_num) with the test after "
                f"every classifier epoch; the fits were timed over "
                f"{ds0['cls_epochs_timed']} epoch(s) and scaled up linearly (an upper estimate: "
                "one-off set-up is scaled too). Classifier fit alone (GZSL): "
                + ", ".join(f"{d['dataset']} {fmt_time(d['gzsl_s'])} "
                            f"({d['gzsl_flops'] / d['gzsl_s'] / 1e9:.0f} GFLOP/s)"
                            for d in run["datasets"]) + ".",
                f"- Peak memory: {memory_how(kind)}, one generator iteration and one "
                "evaluation at paper shapes.",
                "- FLOPs: torch.utils.flop_counter.FlopCounterMode (matmuls only; elementwise "
                "work is not counted)."]
    stack = run.get("stacking")
    if stack:
        rate = {k: stack[f"{k}_flops"] / stack[f"{k}_s"] / 1e9 for k in ("single", "stacked")}
        out += ["", f"Multi-seed at {stack['dataset']} shapes: {stack['members']} stacked "
                f"members take {stack['stacked_s']:.2f} s per iteration "
                f"({_pct(rate['stacked'] / stack['peak_gflops'])} of peak) against "
                f"{stack['single_s']:.2f} s for one "
                f"({_pct(rate['single'] / stack['peak_gflops'])}), so {stack_ratio(stack):.2f}x "
                f"the throughput of {stack['members']} separate runs."]
    if run.get("grid_s") is not None:
        out += ["", f"Projected `reproduce` grid ({len(trainings)} datasets x {ROWS} rows x "
                f"{run['seeds']} seeds): {fmt_time(run['grid_s'])} (every row costed as `full`, "
                "an upper bound; the stacked speedup measured at CUB applied to every dataset, "
                "or none where stacking is slower)."]
    demo = run.get("demo")
    if demo:
        out += ["", f"Demo memory: {_gib(demo['mem_peak'])} peak for one smoke-profile "
                f"training of {demo['dataset']} at scale {demo['scale']} with {demo['members']} "
                f"stacked seeds ({_gib(demo['mem_start'])} of it is the interpreter and torch "
                f"at start); {memory_how(kind)}."]
    return out + [""]


# ===== the command =====

@click.command("perf")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Device to measure; auto = CUDA when available.")
@click.option("--datasets", default=None, show_default="all five (CUB with --quick)",
              help="Comma-separated datasets to measure at their paper shapes.")
@click.option("--seeds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Members of the stacked multi-seed comparison and seeds of the grid.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="torch threads per worker; 0 = torch's default (one per core).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/perf.md"),
              show_default=True, help="Report to (re)write; perf-<device>.json goes beside it.")
@click.option("--quick", is_flag=True,
              help="About a minute: CUB only, two repetitions, one classifier epoch.")
def perf(device: str, datasets: str | None, seeds: int, threads: int, out: Path,
         quick: bool) -> None:
    """Throughput against the device's own peak, projected training times, memory."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("expected a CUDA device, found none visible to torch; use "
                                 "--device cpu", param_hint="--device")
    names = [d.strip() for d in (datasets or ("CUB" if quick else ",".join(DATASETS))).split(",")]
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        raise click.BadParameter(f"expected some of {', '.join(DATASETS)}, found "
                                 f"{', '.join(unknown)}", param_hint="--datasets")
    # Two repetitions even when quick: the fastest of one is no defence against a noisy neighbour.
    reps, cls_epochs = (2, 1) if quick else (3, 2)
    started = time.perf_counter()
    env = run_worker({"kind": "environment", "device": device, "threads": threads}, threads)
    click.echo(f"bench perf on {env['name']} ({device}, {env['threads']} threads, torch "
               f"{env['torch']})")
    run = {"env": env, "datasets": [], "seeds": seeds,
           "command": "bench perf" + (" --quick" if quick else "")
           + (f" --device {device}" if device != "cpu" else "")
           + (f" --datasets {','.join(names)}" if datasets else "")
           + (f" --seeds {seeds}" if seeds != 5 else "")
           + (f" --threads {threads}" if threads else "")}
    for name in names:
        ds = run_worker({"kind": "dataset", "dataset": name, "device": device, "reps": reps,
                         "cls_epochs": cls_epochs}, threads)
        p = project(ds)
        click.echo(f"  {name:4s} iteration {ds['iter_s']:.2f} s = {_pct(p['iter_of_peak'])} of "
                   f"peak ({ds['peak_gflops']:.0f} GFLOP/s; step-shape matmul "
                   f"{_pct(p['step_mm_of_peak'])}), eval {_pct(p['eval_of_epoch'])} of an epoch, "
                   f"one training {fmt_time(p['training_s'])}, peak {_gib(ds['mem_peak'])}")
        run["datasets"].append(ds)
    run["stacking"] = run_worker({"kind": "stacking", "dataset": STACK_DATASET, "device": device,
                                  "members": seeds, "reps": reps}, threads)
    click.echo(f"  stacked x{seeds} at {STACK_DATASET}: {stack_ratio(run['stacking']):.2f}x "
               f"the throughput of separate runs")
    if set(names) == set(DATASETS):
        trainings = {d["dataset"]: project(d)["training_s"] for d in run["datasets"]}
        run["grid_s"] = grid_seconds(trainings, seeds, stack_ratio(run["stacking"]))
        click.echo(f"  reproduce grid: {fmt_time(run['grid_s'])}")
    run["demo"] = run_worker({"kind": "demo", "device": device, **DEMO}, threads)
    click.echo(f"  demo peak memory {_gib(run['demo']['mem_peak'])}")

    out.parent.mkdir(parents=True, exist_ok=True)
    from bench.store import atomic_write

    raw = out.with_name(f"{out.stem}-{device}.json")
    atomic_write(raw, (json.dumps(run, indent=1) + "\n").encode())
    runs = {}
    for kind in ("cpu", "cuda"):
        path = out.with_name(f"{out.stem}-{kind}.json")
        if path.exists():
            runs[kind] = json.loads(path.read_text())
    atomic_write(out, render(runs).encode())
    click.echo(f"wrote {out} ({fmt_time(time.perf_counter() - started)})")
