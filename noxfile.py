"""nox sessions: `nox -s tests` (the README's test command), `lint`, `demo`, `regress`, `noise`,
`sensitivity`, `reproduce`, `rehearse`, `perf`, `fuzz`.

Every session but `lint` (which installs ruff alone) installs torch first, then the package, and
stops if the torch it ended with is not the build it chose. `tests`, `demo`, `regress`, `noise` and
`sensitivity` take the CPU build of the pinned version from PyTorch's CPU index (`torch==2.13.0
--index-url https://download.pytorch.org/whl/cpu`: Linux and Windows get `2.13.0+cpu`, macOS the
plain wheel, which has no CUDA): their numbers are the CPU's. `reproduce`, `rehearse` and `perf`
use the machine's accelerator: with an NVIDIA driver (`nvidia-smi` on PATH) they install the CUDA
build of the same version that the driver supports (`bench/accelerator.py`: `cu128` for a driver of
CUDA >= 12.8, `cu126` for >= 12.6), else the CPU build, and print the torch and the device before
any training. `nox --no-venv -s reproduce` runs in your own environment instead (installs nothing:
your torch, your CUDA). Offline, pip's own `--find-links` (PIP_FIND_LINKS, pip.conf) still supplies
a local wheel: the index then only costs pip's retries.
"""

import shutil
import sys
from pathlib import Path

import nox

# The dataset and row names come from vsboost/config.py, which imports no third-party library:
# readable here before the package is installed in any session.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import accelerator, regression  # noqa: E402
from vsboost.config import DATASETS as _DATASETS  # noqa: E402
from vsboost.config import ROWS as _ROWS  # noqa: E402

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint"]

TORCH = accelerator.TORCH
DATASETS = ",".join(_DATASETS)
ROWS = ",".join(_ROWS)
# The regression subset, its seeds and simulated machines: bench/regression.py.
BASELINE, MACHINES = regression.BASELINE, regression.MACHINES


CPU = accelerator.Build("cpu", "the CPU build: this session's numbers are the CPU's")


def torch_install(build: accelerator.Build) -> tuple[str, ...]:
    """pip arguments of the torch of ``build``. --index-url, not --extra-index-url: with PyPI
    also searched, Linux could get PyPI's CUDA build of the same version. A CUDA build is pinned
    with its local label (+cu128): a reused venv's CPU torch would satisfy the bare version."""
    pin = TORCH if build.kind == "cpu" else f"{TORCH}+{build.tag}"
    return (pin, "--index-url", build.index_url)


def install(session: nox.Session, accelerated: bool = False) -> None:
    """torch (the CPU build, or with ``accelerated`` the build the machine's GPU takes), the
    package, then a check that the torch it ended with is that build (a reused venv may hold
    another), printing the torch and the device. Under ``nox --no-venv`` nothing is installed:
    the user's own environment is used as it is."""
    if session.venv_backend == "none":
        session.run("python", "-m", "bench.accelerator")
        return
    build = accelerator.choose(accelerator.detect()) if accelerated else CPU
    session.log(f"torch: {build.why}")
    session.install(*torch_install(build))
    session.install("-e", ".[test]")
    session.run("python", "-m", "bench.accelerator", "--expect", build.kind)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (CPU, a few minutes)."""
    install(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The property tests with new random examples, 4x as many (hypothesis profile "random" of
    tests/conftest.py): `nox -s fuzz -- --hypothesis-seed=N` repeats seed N. The default suite
    draws the same examples every run; a crash found here becomes a fixed case there."""
    install(session)
    session.run("pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-profile=random",
                "tests/test_fuzz_readers.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the packages, the tests, the benchmarks and this file."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "vsboost", "bench", "tests", "benchmarks", "noxfile.py")


@nox.session
def demo(session: nox.Session) -> None:
    """The whole pipeline on the embedded synthetic benchmark (smoke profile), into reports/demo.

    All five datasets x VS-Boost's four rows x 2 seeds, and f-CLSWGAN beside them
    (docs/methods.md), trained as one batched pass per (dataset, row). Killing it and running it
    again finishes without redoing finished runs.
    """
    install(session)
    for method in ("--rows", ROWS), ("--method", "fclswgan"):
        session.run("bench", "sweep", "--synthetic", "--profile", "smoke", "--datasets", DATASETS,
                    *method, "--seeds", "2", "--seeds-per-job", "2", "--jobs", "2",
                    "--name", "demo", *session.posargs)
    session.run("bench", "report", "--name", "demo", "--out", "reports/demo")  # tables + figures


@nox.session
def regress(session: nox.Session) -> None:
    """Train the regression subset from scratch, then two stages against
    results/regress-baseline. Changed?: the float64 golden master, reported in
    reports/regress/check.md (fails only with `nox -s regress -- --exact`). Worse?: H paired by
    seed (`bench compare`, reports/regress/compare.md); exit 1 when a cell is worse at the
    stated level."""
    install(session)
    fresh = Path(session.create_tmp()) / "results"
    shutil.rmtree(fresh, ignore_errors=True)  # from scratch: earlier runs would count as done
    for args in regression.sweeps(regression.SEEDS, regression.BASELINE_ARGS):
        session.run("bench", *args, "--results", str(fresh), "--name", "regress")
    session.run("bench", "report", "--results", str(fresh), "--name", "regress",
                "--out", "reports/regress")
    # Both verdicts are kept beside the tables, for the pull request's artifact. The paths and
    # options are the script's arguments ("$1", "$@"), never spliced into its text.
    tee = 'out=$1; shift; bench "$@" | tee "$out"'
    session.run("bash", "-o", "pipefail", "-c", tee, "regress-check", "reports/regress/check.md",
                "check", "--results", str(fresh), "--name", "regress", "--baseline",
                str(BASELINE), "--machines", str(MACHINES), *session.posargs, external=True)
    session.run("bash", "-o", "pipefail", "-c", tee, "regress-compare",
                "reports/regress/compare.md",
                *regression.worse_args(BASELINE, str(fresh / "regress")), external=True)


@nox.session
def noise(session: nox.Session) -> None:
    """Regenerate the regression baseline after an intended change: the subset with 6 seeds into
    results/regress-baseline (what the worse stage pairs with), the reruns of its seeds 0-1 under
    the simulated machines into results/regress-machines/ (each cell's machine band), the report
    into reports/regress-baseline/. Commit all three with the change."""
    install(session)
    for folder in (BASELINE, MACHINES):  # same run ids: old records would count as done
        shutil.rmtree(folder, ignore_errors=True)
    for args in regression.sweeps(regression.BASELINE_SEEDS, regression.BASELINE_ARGS):
        session.run("bench", *args, "--name", "regress-baseline")
    for machine, spec in regression.SIMULATED.items():
        for args in regression.sweeps(regression.MACHINE_SEEDS, spec["args"]):
            session.run("bench", *args, "--results", MACHINES, "--name", machine,
                        env=spec["env"])
    session.run("bench", "report", "--name", "regress-baseline",
                "--out", "reports/regress-baseline")


@nox.session
def sensitivity(session: nox.Session) -> None:
    """Plant each one-line fault in a temporary copy and run the regression check on it:
    reports/regress/sensitivity.md."""
    install(session)
    session.run("python", "benchmarks/sensitivity.py", *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """The paper's Tables 2-4 and Figure 4 on the real data: 5 seeds, paper profile, then
    `bench check`. Trains on the machine's GPU where it has one (the CUDA torch its driver
    takes; `nox --no-venv` for your own environment): on a CPU it takes weeks, and the sweep says
    how long before it starts. Stops at once if data is missing."""
    install(session, accelerated=True)
    # fetch skips files already present and verified; where a download cannot be had it stops at
    # once, naming the exact files missing and how to place them by hand. verify then shows the
    # state of every locked file before hours of training start.
    session.run("bench", "data", "fetch")
    session.run("bench", "data", "verify")
    session.run("bench", "sweep", "--profile", "paper", "--datasets", DATASETS, "--rows", ROWS,
                "--seeds", "5", "--name", "paper", *session.posargs)
    session.run("bench", "report", "--name", "paper", "--out", "reports/paper")  # tables + figures
    session.run("bench", "check", "--name", "paper")


@nox.session
def rehearse(session: nox.Session) -> None:
    """The real path rehearsed on stand-in files (`bench rehearse`): archives with the real
    layout served over local HTTPS, fetch, verify, a short paper-profile sweep of every dataset
    and row, report, check, claims, all labelled REHEARSAL, into rehearsal/. `-- --scale 0.05`
    is the CI-sized variant."""
    install(session, accelerated=True)
    session.run("bench", "rehearse", *session.posargs)


@nox.session
def perf(session: nox.Session) -> None:
    """Throughput and memory measurements (`bench perf`) on the machine's accelerator."""
    install(session, accelerated=True)
    session.run("bench", "perf", *session.posargs)
