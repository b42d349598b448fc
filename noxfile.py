"""nox sessions: `nox -s tests` (the README's test command), `lint`, `demo`, `regress`, `noise`,
`sensitivity`, `reproduce`, `perf`, `fuzz`.

Every session but `lint` (which installs ruff alone) installs torch first, the CPU build of the
pinned version from PyTorch's CPU index (`torch==2.13.0 --index-url
https://download.pytorch.org/whl/cpu`: Linux and Windows get `2.13.0+cpu`, macOS the plain wheel,
which has no CUDA), stops if that torch is a CUDA build, then installs the package. Offline, pip's
own `--find-links` (PIP_FIND_LINKS, pip.conf) still supplies a local `torch-2.13.0+cpu` wheel: the
index then only costs pip's retries. GPU users: install the torch build that matches your CUDA
driver yourself and run `bench` directly (e.g. `bench table4 --seeds 5`); these sessions would
refuse it.
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

    All five datasets x four rows x 2 seeds, trained as one batched pass per (dataset, row).
    Killing it and running it again finishes without redoing finished runs.
    """
    install(session)
    session.run("bench", "sweep", "--synthetic", "--profile", "smoke", "--datasets", DATASETS,
                "--rows", ROWS, "--seeds", "2", "--seeds-per-job", "2", "--jobs", "2",
                "--name", "demo",
                *session.posargs)
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
