"""Does `nox -s regress` catch a broken method? Plant one-line faults and find out.

For each fault, a temporary copy of the repository gets one line replaced (never a flag in the
product), the regression subset is trained there from scratch, and `bench check --baseline
results/regress-baseline --two-sided` judges it with the checked-in code. The unchanged tree is
rerun the same way, beside a fault run so that the machine is loaded differently from when the
baseline was made. The verdicts go to reports/regress/sensitivity.md.

    python benchmarks/sensitivity.py            # every fault, two at a time (2 cores)
    python benchmarks/sensitivity.py --only gp_weight_zero
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results" / "regress-baseline"
OUT = REPO / "reports" / "regress" / "sensitivity.md"
RECORDS = REPO / "results" / "sensitivity"  # one folder of records and check output per fault
# The regression subset, as `nox -s regress` trains it (noxfile.py REGRESS).
SWEEP = ["sweep", "--synthetic", "--profile", "smoke", "--datasets", "APY", "--seeds", "2",
         "--seeds-per-job", "2", "--name", "regress"]


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    path: str  # relative to the repository
    old: str  # must occur exactly once
    new: str


FAULTS = [
    Fault("metric_not_reaching_g", "metric terms not reaching G (fake features detached)",
          "vsboost/train.py", "f_loss = self.metric_losses(E(fake), y)",
          "f_loss = self.metric_losses(E(fake.detach()), y)"),
    Fault("sml_off_in_full", "SML disabled in the full row", "vsboost/config.py",
          '"full": {"sml": True, "rml": True}', '"full": {"sml": False, "rml": True}'),
    Fault("rml_target_inverted", "RML positive target 1 − cos instead of cos",
          "vsboost/train.py", "t_pos = (self.unit_att[y] * self.unit_att[y_pos]).sum(-1)",
          "t_pos = 1 - (self.unit_att[y] * self.unit_att[y_pos]).sum(-1)"),
    Fault("gp_weight_zero", "gradient penalty weight 0 inside the critic loss",
          "vsboost/losses.py", "+ gp_weight * penalty", "+ 0.0 * penalty"),
    Fault("per_sample_accuracy", "per-sample instead of per-class accuracy",
          "vsboost/evaluate.py", "acc = (hits / counts).mean(dim=1)",
          "acc = hits.sum(dim=1) / counts.sum()"),
    Fault("sml_rml_swapped", "the sml and rml rows' flags swapped", "vsboost/config.py",
          '"sml": {"sml": True, "rml": False},', '"sml": {"sml": False, "rml": True},'),
]
UNCHANGED = Fault("unchanged", "no fault: the unchanged tree, rerun under another load", "", "",
                  "")


def _copy(fault: Fault, into: Path) -> Path:
    """The tracked files of the repository (as they are in the working tree), one line changed."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        if rel.startswith(("results/", "reports/")) or not (REPO / rel).is_file():
            continue
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, into / rel)
    if fault.path:
        target = into / fault.path
        text = target.read_text()
        if text.count(fault.old) != 1:
            raise SystemExit(f"{fault.path}: expected exactly one {fault.old!r} to plant "
                             f"{fault.name}, found {text.count(fault.old)}; update FAULTS")
        target.write_text(text.replace(fault.old, fault.new))
    return into


def _bench(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def run_fault(fault: Fault, synthetic_root: Path) -> dict:
    """Train the subset with the fault planted; judge it with the repository's own checker."""
    with tempfile.TemporaryDirectory(prefix=f"fault-{fault.name}-") as tmp:
        tree = _copy(fault, Path(tmp) / "tree")
        env = {**os.environ, "VSBOOST_SYNTHETIC": str(synthetic_root),
               "VSBOOST_RESULTS": str(Path(tmp) / "results"), "PYTHONPATH": str(tree),
               "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        trained = _bench(SWEEP, tree, env)
        minutes = (time.perf_counter() - t0) / 60
        if trained.returncode != 0:
            return {"fault": fault, "verdict": "red (training failed)", "cells": "—",
                    "worst": "—", "minutes": minutes, "detail": trained.stderr[-300:]}
        check_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        checked = _bench(["check", "--name", "regress", "--baseline", str(BASELINE),
                          "--two-sided"], REPO, check_env)
        # The records behind each verdict, kept beside the baseline (not a sweep of their own:
        # a planted fault's runs must never reach a table).
        kept = RECORDS / fault.name
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(Path(tmp) / "results" / "regress", kept,
                        ignore=shutil.ignore_patterns("_ckpt", "_locks", "*.npz"))
        (kept / "check.md").write_text(checked.stdout)
    rows = [line for line in checked.stdout.splitlines() if line.startswith("| baseline")]
    moved = [r for r in rows if "ABOVE" in r or "BELOW" in r]
    worst = max((abs(float(r.split("|")[8])) / max(float(r.split("|")[9]), 1e-9)
                 for r in rows), default=0.0)
    verdict = {0: "green", 1: "red"}.get(checked.returncode, f"refused ({checked.returncode})")
    cells = "; ".join(re.sub(r"\s+", " ", " ".join(r.split("|")[3:6])).strip() + " "
                      + r.split("|")[8].strip() for r in moved[:4])
    return {"fault": fault, "verdict": verdict, "cells": f"{len(moved)} of {len(rows)}"
            + (f": {cells}" + (" …" if len(moved) > 4 else "") if moved else ""),
            "worst": f"{worst:.1f}", "minutes": minutes,
            "detail": checked.stderr.strip()[-300:]}


def render(results: list[dict]) -> str:
    lines = [[r["fault"].what, f"`{r['fault'].path}`" if r["fault"].path else "—",
              r["verdict"], r["cells"], r["worst"], f"{r['minutes']:.1f}"] for r in results]
    table = tabulate(lines, headers=["planted fault", "file", "regress verdict",
                                     "cells beyond tolerance", "largest Δ / tolerance (absolute)",
                                     "minutes"], tablefmt="pipe", disable_numparse=True)
    caught = sum(r["verdict"] != "green" for r in results if r["fault"].path)
    planted = sum(1 for r in results if r["fault"].path)
    unchanged = [r["verdict"] for r in results if not r["fault"].path]
    return "\n".join([
        "# Sensitivity of `nox -s regress` — SYNTHETIC data", "",
        "Each planted fault replaces one line in a temporary copy of the repository (the "
        "product has no flag for it); the regression subset (APY, rows plain/sml/rml/full, "
        "seeds 0 and 1, smoke profile) is trained there from scratch and judged by `bench check "
        "--baseline results/regress-baseline --two-sided`: a cell fails when its mean moves "
        "beyond its tolerance, derived from the baseline's seed spread (rule printed by the "
        "check; docs/regression.md). Made by `python benchmarks/sensitivity.py`; the records "
        "and the check's output behind each line are in `results/sensitivity/<fault>/`.", "",
        table, "",
        f"Caught: {caught} of {planted} planted faults. Unchanged rerun: "
        f"{', '.join(unchanged) or 'not run'}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="fault names to run")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not BASELINE.is_dir():
        raise SystemExit(f"{BASELINE}: expected the committed baseline; run `nox -s noise`")
    faults = [f for f in [*FAULTS, UNCHANGED] if args.only is None or f.name in args.only]
    synthetic_root = Path(os.environ.get("VSBOOST_SYNTHETIC", REPO / "data" / "synthetic"))
    # The data the baseline was made on, written once here, read by every copy.
    subprocess.run([sys.executable, "-m", "bench", "data", "synth", "-d", "APY", "--data-root",
                    str(synthetic_root)], cwd=REPO, check=True, capture_output=True)
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda f: run_fault(f, synthetic_root), faults))
    for r in results:
        print(f"{r['fault'].name}: {r['verdict']} ({r['cells']}) {r['detail']}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(results))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
