"""The regression subset and the simulated machines, defined once (docs/regression.md).

``nox -s regress`` trains :data:`SUBSET` with seeds 0..SEEDS-1 and compares it with the committed
baseline; ``nox -s noise`` makes that baseline (:data:`BASELINE_SEEDS` seeds) and its machine-noise
reruns (:data:`SIMULATED`); ``benchmarks/sensitivity.py`` measures false alarms on other simulated
machines (:data:`HELD_OUT`) and the detection of planted faults. Imports nothing but the standard
library, so ``noxfile.py`` reads it before any session has installed the package.
"""

from __future__ import annotations

# APY, the cheapest dataset per run, with every row (a fault in one branch or row flag shows in
# its row); FLO's full row, for the paper's 1-way episodes (the regress profile trains FLO 1-way).
SUBSET: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("APY", ("plain", "sml", "rml", "full")),
    ("FLO", ("full",)),
)
PROFILE = "regress"  # the smoke profile in float64: the same numbers on every CPU
SEEDS = 2  # regress compares seeds 0-1 with the baseline's same seeds (paired)
BASELINE_SEEDS = 6  # the seed band: each cell's seed spread over these
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
