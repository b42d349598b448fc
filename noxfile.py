"""nox sessions: `nox -s tests` (the README's test command), `lint`, `demo`, `regress`, `noise`,
`sensitivity`, `reproduce`, `perf`.

Every session installs torch first, the CPU build of the pinned version from PyTorch's CPU index
(`torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`: Linux and Windows get
`2.13.0+cpu`, macOS the plain wheel, which has no CUDA), then the package, and stops if the
torch it ended with is a CUDA build. Offline, pip's own `--find-links` (PIP_FIND_LINKS, pip.conf)
still supplies a local `torch-2.13.0+cpu` wheel: the index then only costs pip's retries. GPU
users: install the torch build that matches your CUDA driver yourself and run `bench` directly
(e.g. `bench table4 --seeds 5`); these sessions would refuse it.
"""

import shutil
import sys
from pathlib import Path

import nox

# The dataset and row names come from vsboost/config.py, which imports no third-party library:
# readable here before the package is installed in any session.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import regression  # noqa: E402
from vsboost.config import DATASETS as _DATASETS  # noqa: E402
from vsboost.config import ROWS as _ROWS  # noqa: E402

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint"]

TORCH = "torch==2.13.0"  # choice: the version the suite is tested with (CPU wheel here)
DATASETS = ",".join(_DATASETS)
ROWS = ",".join(_ROWS)
# The regression subset, its seeds and simulated machines: bench/regression.py.
BASELINE, MACHINES = regression.BASELINE, regression.MACHINES


TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # choice: PyTorch's CPU-only wheel index
CPU_BUILD = ("import sys, torch; sys.exit(0 if torch.version.cuda is None else "
             "f'torch {torch.__version__} is a CUDA build; expected the CPU build: remove .nox/ "
             "and rerun')")


def install(session: nox.Session) -> None:
    # --index-url, not --extra-index-url: with PyPI also searched, Linux could get PyPI's CUDA
    # build of the same version. A reused venv may hold an earlier CUDA torch that satisfies the
    # pin, hence the check.
    session.install(TORCH, "--index-url", TORCH_INDEX)
    session.run("python", "-c", CPU_BUILD, silent=True)
    session.install("-e", ".[test]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (CPU, a few minutes)."""
    install(session)
    session.run("pytest", "-q", *session.posargs)


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
    """Train the regression subset from scratch and compare it with results/regress-baseline:
    exit 1 when a cell moved beyond machine noise (either way), saying whether seed noise
    explains it. Reports in reports/regress/."""
    install(session)
    fresh = Path(session.create_tmp()) / "results"
    shutil.rmtree(fresh, ignore_errors=True)  # from scratch: earlier runs would count as done
    for args in regression.sweeps(regression.SEEDS, ["--jobs", "2", "--seeds-per-job", "2"]):
        session.run("bench", *args, "--results", str(fresh), "--name", "regress")
    session.run("bench", "report", "--results", str(fresh), "--name", "regress",
                "--out", "reports/regress")
    # The verdict is also kept beside the tables, for the pull request's artifact.
    session.run("bash", "-o", "pipefail", "-c",
                f"bench check --results {fresh} --name regress --baseline {BASELINE} "
                f"--machines {MACHINES} --two-sided | tee reports/regress/check.md",
                external=True)


@nox.session
def noise(session: nox.Session) -> None:
    """Regenerate the regression baseline after an intended change: the subset with 6 seeds into
    results/regress-baseline (each cell's seed band), the reruns of its seeds 0-1 under the
    simulated machines into results/regress-machines/ (each cell's machine band), the report into
    reports/regress-baseline/. Commit all three with the change."""
    install(session)
    for folder in (BASELINE, MACHINES):  # same run ids: old records would count as done
        shutil.rmtree(folder, ignore_errors=True)
    for args in regression.sweeps(regression.BASELINE_SEEDS, regression.BASELINE_ARGS):
        session.run("bench", *args, "--name", "regress-baseline")
    for machine, spec in regression.SIMULATED.items():
        for args in regression.sweeps(regression.SEEDS, spec["args"]):
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
    `bench check`. Needs a GPU to finish in reasonable time; stops at once if data is missing."""
    install(session)
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
def perf(session: nox.Session) -> None:
    """Throughput and memory measurements (`bench perf`)."""
    install(session)
    session.run("bench", "perf", *session.posargs)
