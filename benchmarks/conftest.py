"""pytest-benchmark suites at the paper's shapes (random tensors): `pytest benchmarks/`.

Outside the default test run (testpaths = ["tests"]). Threads are pinned so that runs compare:
VSBOOST_BENCH_THREADS, default torch's own default (one per core). `--benchmark-disable` runs
each body once, as a quick check that the suites still work.
"""

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def threads() -> int:
    n = int(os.environ.get("VSBOOST_BENCH_THREADS", torch.get_num_threads()))
    torch.set_num_threads(n)
    return n
