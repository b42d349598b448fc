"""``bench perf``: what one training costs on this device, measured against the device's own peak.

For each dataset's real shapes (random tensors, no data files) it times one generator iteration
of the ``full`` row and the per-epoch evaluation (synthetic features, the final GZSL and CZSL
classifier fits, the tests) and counts their floating-point work with torch's FlopCounterMode.
Achieved GFLOP/s are printed as a fraction of a large square fp32 matmul timed in the same
process, beside a matmul at the step's own shapes. From these it projects one paper training per
dataset and the whole ``reproduce`` grid, times M stacked seeds against M single runs, and records
peak memory. Every time is the fastest of a few repetitions (other processes only ever add time)
and every ratio comes from one process, so the numbers compare on a shared, noisy machine.

Modules, one job each:

- ``measure``: the measurements themselves, run inside a worker process;
- ``worker``: one fresh spawned process per measurement (its own peak memory);
- ``projection``: pure arithmetic: rates, projected times, the targets and their verdicts;
- ``render``: ``reports/perf.md`` from the raw ``perf-<device>.json`` runs;
- ``command``: the click command, ``bench perf``.
"""

from bench.perf.command import perf

__all__ = ["perf"]
