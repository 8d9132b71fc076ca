#!/usr/bin/env bash
# The one-call entry point on the GPU machine: build, CUDA-vs-CPU check through the C ABI, then the
# ESM-2 3B / DNABERT-S throughput with the raw cuBLASLt ceiling; everything also lands in $OUT/log.txt.
#   command: bash scripts/device/cuda_check.sh      (options: see cuda-check.sh)
set -o pipefail
export OUT=${OUT:-/tmp/virnuc-out}
mkdir -p "$OUT"
bash "$(dirname "$0")/cuda-check.sh" 2>&1 | tee "$OUT/log.txt"
