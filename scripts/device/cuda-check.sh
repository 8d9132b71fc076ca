#!/usr/bin/env bash
# One call on the GPU machine: build, correctness check, throughput benchmark of the CUDA backend.
#   command: bash scripts/device/cuda-check.sh        (CHECK_ARGS / BENCH_ARGS add options;
#            SKIP_CHECK=1 or SKIP_BENCH=1 leave a part out)
# Logs land in $OUT (gpu.txt, build.txt, check.txt, bench.txt).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-/tmp/virnuc-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
date -u | tee "$OUT/gpu.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee -a "$OUT/gpu.txt"
start=$(date +%s)
bash scripts/device/build.sh > "$OUT/build.txt" 2>&1 || { tail -40 "$OUT/build.txt"; exit 1; }
echo "build: $(( $(date +%s) - start ))s, $(tail -1 "$OUT/build.txt")"
if [ "${SKIP_CHECK:-0}" != 1 ]; then
  timeout "${CHECK_TIMEOUT:-300}" ./build/native/vn_cuda_check check ${CHECK_ARGS:-} > "$OUT/check.txt" 2>&1
  echo "check exit $?"
  grep -E "FAIL|^\[" "$OUT/check.txt" | head -40
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  timeout "${BENCH_TIMEOUT:-300}" ./build/native/vn_cuda_check bench ${BENCH_ARGS:---profile} > "$OUT/bench.txt" 2>&1
  echo "bench exit $?"
  grep -E "gemm plan|profile|candidates|^  n |^  [a-z_]+ +[0-9.]+ ms" "$OUT/bench.txt" | head -60
fi
[ -f "$OUT/check.txt" ] && sed -n '/==== summary/,$p' "$OUT/check.txt"
[ -f "$OUT/bench.txt" ] && sed -n '/==== summary/,$p' "$OUT/bench.txt"
