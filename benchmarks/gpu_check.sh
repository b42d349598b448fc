#!/usr/bin/env bash
# The GPU check, once, on a fresh machine with an NVIDIA GPU, in under 10 minutes of one GPU:
#   1. a CUDA torch: kept if the environment has one, else the build the driver takes
#      (bench/accelerator.py) installed with the package;
#   2. the tests written for CUDA (`pytest -m cuda`: CPU vs CUDA within seed noise, a short run
#      learns, stacked seeds match solo ones, resume on CUDA, a CPU checkpoint refused);
#   3. benchmarks/gpu_check.py: card, no host sync inside the step, peak memory at 5 stacked
#      seeds against the memory estimate behind --seeds-per-job, the multi-GPU launcher when
#      there are several GPUs, and `bench perf --device cuda` at paper shapes.
# Everything goes to reports/gpu_check.txt (README's real-reproduction section reads it; the
# GPU column of reports/perf.md and reports/perf-cuda.json come from bench perf). Run from
# anywhere; stops at the first failing step, whose output is the last thing in the log.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p reports
log=reports/gpu_check.txt
: > "$log"
say() { echo "== $*" | tee -a "$log"; }

say "gpu_check $(date -u +%FT%TZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$log"

say "1. a CUDA torch"
if ! python -m bench.accelerator --expect cuda >/dev/null 2>&1; then
    read -r pin index < <(python -c 'from bench import accelerator as a
b = a.choose(a.detect())
print(f"{a.TORCH}+{b.tag}" if b.kind == "cuda" else "none", b.index_url)')
    if [ "$pin" = none ]; then
        say "no CUDA build fits this machine's driver (see nvidia-smi above)"; exit 1
    fi
    python -m pip install -q "$pin" --index-url "$index" 2>&1 | tee -a "$log"
    python -m pip install -q -e ".[test]" 2>&1 | tee -a "$log"
fi
python -m bench.accelerator --expect cuda 2>&1 | tee -a "$log"

say "2. tests written for CUDA"
python -m pytest -q -m cuda tests/test_cuda.py 2>&1 | tee -a "$log"

say "3. benchmarks/gpu_check.py"
timeout 480 python benchmarks/gpu_check.py 2>&1 | tee -a "$log"
say "done"
