#!/usr/bin/env bash
# GPU check in one go, for a session that has a GPU: first the CUDA-only tests (a run resumed from
# a checkpoint loaded onto the GPU, tf32 applied for the run only and restored), then
# benchmarks/gpu_check.py: card, no-sync check, one epoch per dataset at paper shapes, and
# `bench perf --device cuda` into reports/perf.md. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -m pytest -q tests/test_train.py -k "cuda or resume or precision" 2>&1 \
    | tee reports/gpu_check.txt
python benchmarks/gpu_check.py 2>&1 | tee -a reports/gpu_check.txt
