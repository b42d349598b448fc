#!/usr/bin/env bash
# GPU check in one go (see benchmarks/gpu_check.py): card, no-sync check, one epoch per dataset at
# paper shapes, then `bench perf --device cuda` into reports/perf.md. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python benchmarks/gpu_check.py 2>&1 | tee reports/gpu_check.txt
