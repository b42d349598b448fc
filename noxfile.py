"""nox sessions: `nox -s tests` (the README's test command), `lint`, `demo`, `reproduce`, `perf`.

Every session installs torch first, pinned to the build these CPU machines and CI use, then the
package. GPU users: install the torch build that matches your CUDA driver yourself and run `bench`
directly (e.g. `bench table4 --seeds 5`); these sessions would replace it with the CPU wheel.
"""

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint"]

TORCH = "torch==2.13.0"  # choice: the version the suite is tested with (CPU wheel here)
DATASETS = "APY,AWA2,CUB,FLO,SUN"
ROWS = "plain,sml,rml,full"


def install(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[test]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (CPU, a few minutes)."""
    install(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, the tests and this file."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "vsboost", "bench", "tests", "noxfile.py")


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
