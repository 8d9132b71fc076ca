#!/usr/bin/env bash
# One call on the GPU machine: unpack Bun and the runtime npm packages carried in .device/,
# build libvirnuc (CUDA), run the golden tests on the CUDA backend, the full-size check against
# transformers / the PyTorch DNABERT-S (FP32), then the engine benchmark (with the peers) and the
# end-to-end benchmark. Results land in $OUT. Each step can be skipped: SKIP_GOLDEN=1, SKIP_FULLSIZE=1,
# SKIP_ENGINE=1, SKIP_E2E=1.
#   carry: [".device/bun.xz", ".device/nm.tar.xz", ".device/tokenizer.json"]
#   (the golden tests read test/fixtures/reference, which is in the repository)
#   command: bash scripts/device/run-bench.sh
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/virnuc-out}
mkdir -p "$OUT/results"
T=$(mktemp -d)
xz -dc .device/bun.xz > "$T/bun" && chmod +x "$T/bun" && export PATH="$T:$PATH"
[ -d node_modules/apache-arrow ] || tar -xJf .device/nm.tar.xz
bun --version
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$OUT/gpu.txt"
VIRNUC_CUDA_ARCH=${VIRNUC_CUDA_ARCH:-90} bun scripts/build-native.ts 2>&1 | tail -5 || exit 1
export VIRNUC_LIB="$PWD/build/libvirnuc.so"
# The real DNABERT-S tokenizer when carried (.device/tokenizer.json), for realistic token counts.
TOK=""; [ -f .device/tokenizer.json ] && TOK="--tokenizer $PWD/.device/tokenizer.json"
if [ "${SKIP_GOLDEN:-0}" != 1 ]; then
  VIRNUC_TEST_BACKEND=cuda timeout ${GOLDEN_TIMEOUT:-120} bun test test/golden.test.ts 2>&1 | tail -25 | tee "$OUT/golden.txt"
fi
if [ "${SKIP_FULLSIZE:-0}" != 1 ]; then
  timeout ${FULLSIZE_TIMEOUT:-240} bun scripts/device/fullsize.ts $TOK --per-length "${PER_LENGTH:-800}" --out "$OUT/fullsize" 2>&1 | tail -8 | tee "$OUT/fullsize.txt"
  cp "$OUT/fullsize/fullsize-summary.json" "$OUT/results/" 2>/dev/null; rm -f "$OUT"/fullsize/*.bin
fi
if [ "${SKIP_ENGINE:-0}" != 1 ]; then
  timeout ${ENGINE_TIMEOUT:-330} bun bench/index.ts engine --peers --reads "${READS:-3000}" --repeats "${REPEATS:-3}" \
    --budgets "${BUDGETS:-8192,16384,32768,65536}" $TOK --out "$OUT/results" 2>&1 | tee "$OUT/engine.txt"
fi
if [ "${SKIP_E2E:-0}" != 1 ]; then
  timeout ${E2E_TIMEOUT:-200} bun bench/index.ts e2e --reads "${E2E_READS:-200000}" --out "$OUT/results" $TOK ${E2E_ARGS:-} 2>&1 | tee "$OUT/e2e.txt"
fi
ls -la "$OUT/results"
