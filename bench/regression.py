"""The regression subset and the simulated machines, defined once (docs/regression.md).

``nox -s regress`` trains :data:`SUBSET` with seeds 0..SEEDS-1 and compares it with the committed
baseline in two stages: *changed?* (``bench check --baseline``: the float64 golden master, reported,
failing only with ``--exact``) and *worse?* (``bench compare`` on H, paired by seed,
:func:`worse_args`); ``nox -s noise`` makes that baseline (:data:`BASELINE_SEEDS` seeds) and its
machine-noise reruns (:data:`SIMULATED`); ``benchmarks/sensitivity.py`` measures false alarms on
other simulated machines (:data:`HELD_OUT`) and the detection of planted faults. Imports nothing but
the standard library, so ``noxfile.py`` reads it before any session has installed the package.
"""

from __future__ import annotations

# APY with every row (a fault in one branch or row flag shows in its row; 593 training images,
# 64-d class embeddings); FLO's full row, for the paper's 1-way episodes (the regress profile
# trains FLO 1-way). Per member FLO's full row costs less than APY's (baseline records:
# provenance.wall_s of a 3-seed job, 103 s against 177 s).
SUBSET: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("APY", ("plain", "sml", "rml", "full")),
    ("FLO", ("full",)),
)
PROFILE = "regress"  # the smoke profile in float64: the same numbers on every CPU
# Seeds 0..SEEDS-1, paired with the baseline's same seeds, trained as the baseline was
# (BASELINE_ARGS): 6, the best point within the 10-minute budget of reports/regress/curve.md
# (projected from the baseline: 3 seeds detect a 33-point redraw-type drop of APY full's H,
# 6 seeds 9 points; the baseline's 6 seeds took 10.1 minutes of training, its records' job
# wall times). docs/regression.md says what is measured and what is not.
SEEDS = 6
BASELINE_SEEDS = 6  # the baseline's seeds: what regress pairs with
MACHINE_SEEDS = 2  # the baseline seeds each simulated machine reruns (the machine band)
# The "worse?" stage: H only (the headline of Tables 2 and 4), both protocols, every row of the
# subset, one-sided at a family-wise level split over those cells (Bonferroni), so that a change
# that only redraws the random streams is called worse in at most FAMILY_ALPHA of runs where
# the paired t test's assumptions hold.
FAMILY_ALPHA = 0.05  # choice: the conventional level
WORSE_METRIC = "H"
# choice: differences below the one-decimal display are never called worse (float64 machine
# noise is below 1e-6 points: docs/regression.md)
NEGLIGIBLE = 0.1
BASELINE = "results/regress-baseline"
MACHINES = "results/regress-machines"  # one sweep folder per simulated machine

# A simulated machine: environment variables (None: unset) and sweep options that change the
# floating-point kernels, the thread count or the stacking of seeds, not what is computed.
# Their reruns of the baseline's seeds set each cell's machine band.
SIMULATED: dict[str, dict] = {
    "aten-default": {"env": {"ATEN_CPU_CAPABILITY": "default"},
                     "args": ["--jobs", "2", "--seeds-per-job", "2"]},
    "avx2-unstacked": {"env": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
                       "args": ["--jobs", "2", "--seeds-per-job", "1"]},
}
# Never used to set a band: the false-alarm rate is measured on these.
HELD_OUT: dict[str, dict] = {
    "two-threads-openblas-own-kernel": {
        "env": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None},
        "args": ["--jobs", "1", "--seeds-per-job", "2"]},
    "aten-default-two-threads-unstacked": {
        "env": {"ATEN_CPU_CAPABILITY": "default"}, "args": ["--jobs", "1", "--seeds-per-job", "1"]},
    "mkl-sse42-aten-avx2": {
        "env": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
        "args": ["--jobs", "2", "--seeds-per-job", "2"]},
}
BASELINE_ARGS = ["--jobs", "2", "--seeds-per-job", "3"]  # how the baseline itself is trained


def worse_cells(subset=SUBSET) -> int:
    """H cells the worse stage judges: every (dataset, row) of the subset, both protocols."""
    return 2 * sum(len(rows) for _, rows in subset)


def worse_args(baseline: str, fresh: str, subset=SUBSET) -> list[str]:
    """The ``bench compare`` arguments of the worse stage: a two-sided interval at
    1 − 2·α/cells is a one-sided test at α/cells on the side that matters."""
    confidence = 1 - 2 * FAMILY_ALPHA / worse_cells(subset)
    return ["compare", baseline, fresh, "--metrics", WORSE_METRIC, "--confidence",
            f"{confidence:g}", "--negligible", f"{NEGLIGIBLE:g}", "--fail-on-worse"]


def sweeps(seeds: int, extra: list[str] = (), subset=SUBSET) -> list[list[str]]:
    """The ``bench`` argument lists that train ``subset`` with seed indices 0..seeds-1."""
    return [["sweep", "--synthetic", "--profile", PROFILE, "--datasets", dataset,
             "--rows", ",".join(rows), "--seeds", str(seeds), *extra]
            for dataset, rows in subset]


def environ(base: dict[str, str], machine: dict) -> dict[str, str]:
    """``base`` with a simulated machine's variables set or unset."""
    env = dict(base)
    for key, value in machine["env"].items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
