"""Does `nox -s regress` see what matters, and only that? Measure it.

Three kinds of scenario, each trained from scratch in a temporary copy of the repository and
judged by the checked-in `bench check --baseline results/regress-baseline --machines
results/regress-machines --two-sided` (bench/regression.py defines the subset and the machines):

- false alarms: the unchanged tree on each held-out simulated machine (other kernels, thread
  counts, stacking: never used to set a band); a red verdict there is a false alarm;
- graded faults: one line that scales the generated unseen features the GZSL classifier is
  trained on, at several strengths, moving H by a few points; each is trained with 4 seeds and
  judged on the 2 disjoint seed pairs (0-1, 2-3) against the baseline's same seeds, which gives
  its detection rate;
- gross faults (a broken loss, row or metric) and a refactor that only redraws the random
  streams, each on the rows it can reach.

    python benchmarks/sensitivity.py              # everything, two scenarios at a time
    python benchmarks/sensitivity.py --only unchanged-aten-default-two-threads-unstacked

The verdicts go to reports/regress/sensitivity.md, the records and each check's output to
results/sensitivity/<scenario>/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench import check, regression, store  # noqa: E402

BASELINE = REPO / regression.BASELINE
MACHINES = REPO / regression.MACHINES
OUT = REPO / "reports" / "regress" / "sensitivity.md"
RECORDS = REPO / "results" / "sensitivity"
# How `nox -s regress` trains (noxfile.py); the held-out machines change these.
REGRESS_MACHINE = {"env": {}, "args": ["--jobs", "2", "--seeds-per-job", "2"]}
APY_FULL = (("APY", ("full",)),)
APY_PLAIN = (("APY", ("plain",)),)


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "false alarm", "graded", "fault", "redraw"
    what: str
    edit: tuple[str, str, str] | None = None  # (file, the one line's old text, new text)
    subset: tuple = regression.SUBSET
    machine: dict = field(default_factory=lambda: REGRESS_MACHINE)
    reps: int = 1  # disjoint seed pairs judged: seeds 0..2*reps-1 are trained


SCALE_SYN = ("vsboost/evaluate.py", "x = torch.cat([f.train, f.syn], dim=1)",
             "x = torch.cat([f.train, {c} * f.syn], dim=1)")


def _graded(c: float, subset=APY_FULL, row: str = "full") -> Scenario:
    path, old, new = SCALE_SYN
    return Scenario(f"graded-syn-x{c:g}-{row}", "graded",
                    f"generated unseen features ×{c:g} in the GZSL classifier ({row} row)",
                    (path, old, new.format(c=c)), subset, reps=2)


SCENARIOS = [
    *(Scenario(f"unchanged-{name}", "false alarm", f"unchanged tree, {name}", machine=spec)
      for name, spec in regression.HELD_OUT.items()),
    # calibrated on seeds 0-1: x0.4 moves full H by about -2.5, x0.25 by -4, x0.1 by -6.5
    *(_graded(c) for c in (0.4, 0.25, 0.05)),
    _graded(0.8, APY_PLAIN, "plain"),
    Scenario("redraw-stream-seeds", "redraw",
             "refactor that redraws every random stream (seed text joined by ';')",
             ("vsboost/sampler.py", 'text = ":".join(', 'text = ";".join('), APY_FULL),
    Scenario("metric-not-reaching-g", "fault", "metric terms not reaching G (fake detached)",
             ("vsboost/train.py", "f_loss = self.metric_losses(E(fake), y)",
              "f_loss = self.metric_losses(E(fake.detach()), y)"), (("APY", ("sml",)),)),
    Scenario("sml-off-in-full", "fault", "SML disabled in the full row",
             ("vsboost/config.py", '"full": {"sml": True, "rml": True}',
              '"full": {"sml": False, "rml": True}'), APY_FULL),
    Scenario("rml-target-inverted", "fault", "RML positive target 1 − cos instead of cos",
             ("vsboost/train.py", "t_pos = (self.unit_att[y] * self.unit_att[y_pos]).sum(-1)",
              "t_pos = 1 - (self.unit_att[y] * self.unit_att[y_pos]).sum(-1)"),
             (("APY", ("rml",)),)),
    Scenario("gp-weight-zero", "fault", "gradient penalty weight 0 inside the critic loss",
             ("vsboost/losses.py", "+ gp_weight * penalty", "+ 0.0 * penalty"), APY_PLAIN),
    Scenario("per-sample-accuracy", "fault", "per-sample instead of per-class accuracy",
             ("vsboost/evaluate.py", "acc = (hits / counts).mean(dim=1)",
              "acc = hits.sum(dim=1) / counts.sum()"), APY_PLAIN),
    Scenario("sml-rml-swapped", "fault", "the sml and rml rows' flags swapped",
             ("vsboost/config.py", '"sml": {"sml": True, "rml": False},',
              '"sml": {"sml": False, "rml": True},'), (("APY", ("sml",)),)),
    Scenario("one-way-negatives-in-batch", "fault",
             "FLO's 1-way episodes take RML negatives from the batch (its own class)",
             ("vsboost/train.py", "self.outside_negatives = cfg.n_way == 1",
              "self.outside_negatives = False"), (("FLO", ("full",)),)),
]


def _copy(scenario: Scenario, into: Path) -> Path:
    """The tracked files of the repository (as in the working tree), one line changed."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        if rel.startswith(("results/", "reports/")) or not (REPO / rel).is_file():
            continue
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, into / rel)
    if scenario.edit:
        path, old, new = scenario.edit
        text = (into / path).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{path}: expected exactly one {old!r} to plant {scenario.name}, "
                             f"found {text.count(old)}; update SCENARIOS")
        (into / path).write_text(text.replace(old, new))
    return into


def run(scenario: Scenario, synthetic_root: Path) -> dict:
    """Train the scenario's subset in its copy, then judge each seed pair with the repo's check."""
    kept = RECORDS / scenario.name
    shutil.rmtree(kept, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"sens-{scenario.name}-") as tmp:
        tree = _copy(scenario, Path(tmp) / "tree")
        results = Path(tmp) / "results"
        env = regression.environ({**os.environ, "VSBOOST_SYNTHETIC": str(synthetic_root),
                                  "VSBOOST_RESULTS": str(results), "PYTHONPATH": str(tree)},
                                 scenario.machine)
        t0 = time.perf_counter()
        for args in regression.sweeps(2 * scenario.reps, scenario.machine["args"],
                                      scenario.subset):
            done = subprocess.run([sys.executable, "-m", "bench", *args, "--name", "regress"],
                                  cwd=tree, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{scenario.name}: training failed: {done.stderr[-500:]}")
        minutes = (time.perf_counter() - t0) / 60
        records = store.load_records(results / "regress")
    baseline = store.load_records(BASELINE)
    machines = [store.load_records(d) for d in sorted(MACHINES.iterdir()) if d.is_dir()]
    reps = []
    for rep in range(scenario.reps):
        pair = {2 * rep, 2 * rep + 1}
        folder = kept / f"seeds-{2 * rep}-{2 * rep + 1}"
        for r in records:
            if r["key"]["seed_index"] in pair:
                (folder / r["run_id"]).mkdir(parents=True, exist_ok=True)
                store.write_record(folder / r["run_id"], r)
        passed, text = check.run(folder, baseline_dir=BASELINE, machines_dir=MACHINES,
                                 two_sided=True)
        (folder / "check.md").write_text(text + "\n")
        comps = check.compare_baseline([r for r in records if r["key"]["seed_index"] in pair],
                                       baseline, two_sided=True, machines=machines)
        reps.append({"red": not passed, "comps": comps})
    return {"scenario": scenario, "reps": reps, "minutes": minutes}


def _delta(comps, row: str, metric: str, protocol: str) -> float | None:
    found = [c.delta for c in comps
             if (c.ours.row, c.ours.metric, c.ours.protocol) == (row, metric, protocol)]
    return found[0] if found else None


def _worst(comps) -> str:
    moved = [c for c in comps if c.failing]
    if not moved:
        return "—"
    c = max(moved, key=lambda c: abs(c.delta) / c.tolerance)
    return (f"{c.ours.dataset} {c.ours.row} {c.ours.metric} ({c.ours.protocol}) "
            f"{c.delta:+.1f}, {c.verdict}")


def render(results: list[dict]) -> str:
    by_kind = {k: [r for r in results if r["scenario"].kind == k]
               for k in ("false alarm", "graded", "redraw", "fault")}
    alarms = [[r["scenario"].what, len(r["reps"][0]["comps"]),
               sum(c.failing for c in r["reps"][0]["comps"]),
               f"{max(abs(c.delta) for c in r['reps'][0]['comps']):.6f}",
               "red" if r["reps"][0]["red"] else "green", f"{r['minutes']:.1f}"]
              for r in by_kind["false alarm"]]
    graded = []
    for r in by_kind["graded"]:
        row = r["scenario"].subset[0][1][0]
        deltas = {p: [_delta(x["comps"], row, "H", p) for x in r["reps"]]
                  for p in ("paper", "last")}
        caught = sum(x["red"] for x in r["reps"])
        graded.append([r["scenario"].what,
                       *(" / ".join(f"{d:+.1f}" for d in deltas[p]) for p in ("paper", "last")),
                       f"{caught}/{len(r['reps'])}", _worst(r["reps"][0]["comps"]),
                       f"{r['minutes']:.1f}"])
    faults = [[r["scenario"].what, f"`{r['scenario'].edit[0]}`",
               ", ".join(f"{d} {'/'.join(rows)}" for d, rows in r["scenario"].subset),
               "red" if r["reps"][0]["red"] else "green",
               f"{sum(c.failing for c in r['reps'][0]['comps'])} of {len(r['reps'][0]['comps'])}",
               _worst(r["reps"][0]["comps"]), f"{r['minutes']:.1f}"]
              for r in by_kind["redraw"] + by_kind["fault"]]
    false_red = sum(r["reps"][0]["red"] for r in by_kind["false alarm"])
    cells = sum(len(r["reps"][0]["comps"]) for r in by_kind["false alarm"])
    n_graded = sum(len(r["reps"]) for r in by_kind["graded"])
    caught = sum(x["red"] for r in by_kind["graded"] for x in r["reps"])
    gross = sum(r["reps"][0]["red"] for r in by_kind["fault"])
    return "\n".join([
        "# Sensitivity of `nox -s regress` — SYNTHETIC data", "",
        "Every scenario is trained from scratch in a temporary copy of the repository (a planted "
        "fault is one line changed there; the product has no flag for it) on the regression "
        "subset or the rows it can reach, `regress` profile (smoke in float64), and judged by "
        "the checked-in `bench check --baseline results/regress-baseline --machines "
        "results/regress-machines --two-sided` against the baseline's same seeds "
        "(docs/regression.md). Made by `python benchmarks/sensitivity.py` (`nox -s "
        "sensitivity`); the records and each check's output are in "
        "`results/sensitivity/<scenario>/`. Minutes: training wall time on this 2-core machine.",
        "", "## False alarms: the unchanged tree on held-out simulated machines", "",
        tabulate(alarms, headers=["machine", "cells", "cells flagged", "largest |Δ| (points)",
                                  "verdict", "minutes"], tablefmt="pipe", disable_numparse=True),
        "", f"False alarms: {false_red} of {len(alarms)} runs ({cells} cells compared).", "",
        "## Graded faults: H moved by a few points", "",
        "Each is trained with seeds 0-3 and judged on the seed pairs 0-1 and 2-3 "
        "(Δ per pair, in points).", "",
        tabulate(graded, headers=["planted fault", "Δ H paper", "Δ H last", "caught",
                                  "first pair's largest move", "minutes"],
                 tablefmt="pipe", disable_numparse=True),
        "", f"Caught: {caught} of {n_graded} judged seed pairs.", "",
        "## Gross faults and a refactor that redraws randomness", "",
        tabulate(faults, headers=["scenario", "file", "trained", "verdict", "cells flagged",
                                  "largest move (Δ, verdict)", "minutes"],
                 tablefmt="pipe", disable_numparse=True),
        "", f"Gross faults caught: {gross} of {len(by_kind['fault'])}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for folder in (BASELINE, MACHINES):
        if not folder.is_dir():
            raise SystemExit(f"{folder}: expected the committed baseline; run `nox -s noise`")
    chosen = [s for s in SCENARIOS if args.only is None or s.name in args.only]
    synthetic_root = Path(os.environ.get("VSBOOST_SYNTHETIC", REPO / "data" / "synthetic"))
    subprocess.run([sys.executable, "-m", "bench", "data", "synth", "-d", "APY", "-d", "FLO",
                    "--data-root", str(synthetic_root)], cwd=REPO, check=True,
                   capture_output=True)  # the pinned files, checked as written
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda s: run(s, synthetic_root), chosen))
    for r in results:
        print(f"{r['scenario'].name}: " + ", ".join("red" if x["red"] else "green"
                                                    for x in r["reps"]), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(results))  # what was run: with --only, only those scenarios
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
