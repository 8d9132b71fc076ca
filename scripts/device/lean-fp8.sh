#!/usr/bin/env bash
# One call on the GPU machine for the lean model load and --precision fp8, in stages (STAGES,
# default "check bench load"); everything is also in $OUT/log.txt, result JSON in $OUT/results.
#   check    build libvirnuc + vn_cuda_check; CUDA vs CPU FP32 (fp16, fp8, outlier channels)
#   golden   golden tests + the cancel test on the CUDA backend (bun test)
#   fp8variants  fp8 checks only, with subsets of the GEMMs in E4M3 (accuracy with outlier channels)
#   bench    native ESM-2 3B fp16 vs fp8 (tokens/s, GEMM-only bounds, per-op profile, load time, host memory)
#   load     real `virnuc predict` model loads from mapped safetensors (fp16, fp8): run.json modelLoad,
#            peak anonymous and file-backed RSS (scripts/device/rss.py)
#   fullsize ESM-2 3B (FULLSIZE_PRECISION, default fp8) vs transformers FP32 on >= 2,000 frames,
#            FULLSIZE_VARIANTS "plain --outliers" (with and without outlier channels)
#   engine   bench engine --peers, ESM-2 fp16 and fp8 side by side
#   e2e      bench e2e (E2E_READS, E2E_SETS e.g. "0 0,1", E2E_PRECISION)
#   tune     GEMM algorithm trials change no bit: embeddings' sha256 with VIRNUC_GEMM_TUNE=0 and =1
#            (fp16, fp8 with outlier channels)
#   scores   FP8 vs FP16 virus scores and calls of `virnuc predict` (SCORE_READS, default 10000; plain
#            weights and outlier channels), scripts/device/fp8-scores.ts
#   lnstaged bench again with VIRNUC_FP8_LN_STAGED=0 (the FP8 LayerNorm extension's byte stores)
#   carry: [".device/bun.xz", ".device/nm.tar.xz", ".device/tokenizer.json"]
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/virnuc-out}
mkdir -p "$OUT/results"
exec > >(tee -a "$OUT/log.txt") 2>&1
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-check bench load}
has() { [[ " $STAGES " == *" $1 "* ]]; }
date -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv
T=$(mktemp -d)
xz -dc .device/bun.xz > "$T/bun" && chmod +x "$T/bun" && export PATH="$T:$PATH"
[ -d node_modules/apache-arrow ] || tar -xJf .device/nm.tar.xz
s=$(date +%s)
bash scripts/device/build.sh > "$OUT/build.txt" 2>&1 || { tail -60 "$OUT/build.txt"; exit 1; }
echo "build: $(( $(date +%s) - s ))s, $(tail -1 "$OUT/build.txt")"
grep -iE "warning" "$OUT/build.txt" | head -10
export VIRNUC_LIB="$PWD/build/native/libvirnuc.so"
TOK="--tokenizer $PWD/.device/tokenizer.json"
W=/tmp/virnuc-bench
mkdir -p $W
if has check; then
  s=$(date +%s)
  VIRNUC_GEMM_PLANS=1 timeout "${CHECK_TIMEOUT:-280}" ./build/native/vn_cuda_check check --fp8 > "$OUT/check.txt" 2>&1
  echo "check exit $? ($(( $(date +%s) - s ))s)"
  grep -E "FAIL|gemm plan.*e4m3|no outer|^\[" "$OUT/check.txt" | head -60
  sed -n '/==== summary/,$p' "$OUT/check.txt"
fi
if has golden; then
  s=$(date +%s)
  VIRNUC_TEST_BACKEND=cuda timeout "${GOLDEN_TIMEOUT:-150}" bun test test/golden.test.ts test/engine/cancel.test.ts > "$OUT/golden.txt" 2>&1
  echo "golden exit $? ($(( $(date +%s) - s ))s)"; grep -E "^\(fail\)|pass$|fail$|error" "$OUT/golden.txt" | head -20
fi
if has fp8variants; then
  s=$(date +%s)
  VIRNUC_GEMM_PLANS=1 timeout "${CHECK_TIMEOUT:-200}" ./build/native/vn_cuda_check fp8check --fp8-variants > "$OUT/fp8check.txt" 2>&1
  echo "fp8check exit $? ($(( $(date +%s) - s ))s)"
  grep -E "FAIL|MISS|PASS.*cosine|no outer|^\[" "$OUT/fp8check.txt" | head -80
fi
if has bench; then
  s=$(date +%s)
  VIRNUC_GEMM_PLANS=1 timeout "${BENCH_TIMEOUT:-280}" ./build/native/vn_cuda_check bench ${BENCH_FLAGS:---fp8 --profile} \
    --budgets "${BUDGETS:-16384,65536}" > "$OUT/bench.txt" 2>&1
  echo "bench exit $? ($(( $(date +%s) - s ))s)"
  grep -E "gemm plan|load |profile|weights:|^  [a-z_0-9]+ +[0-9.]+ ms|m +[0-9]+:" "$OUT/bench.txt" | head -70
  sed -n '/==== summary/,$p' "$OUT/bench.txt"
fi
if has lnstaged; then
  VIRNUC_FP8_LN_STAGED=0 VIRNUC_GEMM_PLANS=1 timeout "${BENCH_TIMEOUT:-280}" ./build/native/vn_cuda_check bench ${BENCH_FLAGS:---fp8 --profile} \
    --budgets "${BUDGETS:-16384,65536}" > "$OUT/bench-unstaged.txt" 2>&1
  echo "bench (VIRNUC_FP8_LN_STAGED=0) exit $?"
  grep -E "profile|layernorm|^  [a-z_0-9]+ +[0-9.]+ ms" "$OUT/bench-unstaged.txt" | head -40
  sed -n '/==== summary/,$p' "$OUT/bench-unstaged.txt"
fi
if has load || has fullsize || has engine || has e2e || has tune || has scores; then
  s=$(date +%s)
  bun -e "import {ensureRandomModels} from './bench/engine.ts'; await ensureRandomModels('$W', '$PWD/.device/tokenizer.json')"
  echo "random models: $(( $(date +%s) - s ))s"
fi
if has load; then
  bun -e "import {writeRandomModel} from './src/models/random.ts'; writeRandomModel('classifier', 1, '$W/cls')"
  printf '>r1\nATGGCTAAAGGTGAAGAACTGTTTACCGGTGTTGTTCCGATCCTGGTTGAACTGGATGGTGATGTTAACGGTCATAAATTTAGCGTTAGCGGT\n' > $W/in.fa
  for prec in fp16 fp16 fp8; do
    python3 scripts/device/rss.py -- bun src/cli.ts predict $W/in.fa -o $W/o-$prec --force --chunk-size 300 \
      --esm $W/esm2_t36_3B_UR50D --dnabert $W/dnabert-s --classifier $W/cls/model.pth --precision $prec --no-progress
    python3 -c "import json;r=json.load(open('$W/o-$prec/run.json'));print('load', '$prec', 'wall', round(r['wallSeconds'],2), 'modelLoad', round(r['modelLoadSeconds'],2), {k: round(v,2) for k,v in r['modelLoad'].items()})"
  done
  VIRNUC_CUDA_PROFILE=1 bun -e "
    import {loadEsm} from './src/models/esm.ts'; import {Engine} from './src/engine/engine.ts';
    const m = loadEsm('$W/esm2_t36_3B_UR50D'); const e = Engine.create('cuda', {});
    for (const p of ['fp16', 'fp8', 'fp16']) { const t = performance.now(); const h = e.loadEncoder(m.config, m.tensors, p as 'fp16');
      console.log('engine load', p, ((performance.now() - t) / 1000).toFixed(2), 's'); h.close(); }
    e.close();" 2>&1 | grep -E "load|weights:"
fi
if has tune; then
  for v in "fp16" "fp8 --outliers"; do
    for t in 0 1; do
      s=$(date +%s)
      VIRNUC_GEMM_TUNE=$t VIRNUC_GEMM_PLANS=$t timeout 200 bun scripts/device/tune-bits.ts $TOK --precision $v > "$OUT/tune-$t.txt" 2>&1
      echo "tune=$t $v exit $? ($(( $(date +%s) - s ))s)"; grep -E "tuned|sha256|rror" "$OUT/tune-$t.txt" | head -20
    done
    if diff <(grep sha256 "$OUT/tune-0.txt") <(grep sha256 "$OUT/tune-1.txt") > /dev/null && grep -q sha256 "$OUT/tune-0.txt"; then
      echo "tune $v: SAME BITS"; else echo "tune $v: FAIL (bits differ or missing)"; fi
  done
fi
if has scores; then
  for v in "" --outliers; do
    s=$(date +%s)
    timeout "${SCORES_TIMEOUT:-200}" bun scripts/device/fp8-scores.ts --reads "${SCORE_READS:-10000}" $TOK $v \
      --out "$OUT/results/fp8-scores${v}.json" > "$OUT/scores${v}.txt" 2>&1
    echo "scores${v} exit $? ($(( $(date +%s) - s ))s)"; grep -E "fp8 vs fp16|rror" "$OUT/scores${v}.txt" | tail -3
  done
fi
if has fullsize; then
  for variant in ${FULLSIZE_VARIANTS:-plain --outliers}; do
    [ "$variant" = plain ] && variant=""
    s=$(date +%s)
    name=fullsize-${FULLSIZE_PRECISION:-fp8}${variant:+-outliers}
    timeout "${FULLSIZE_TIMEOUT:-240}" bun scripts/device/fullsize.ts $TOK --per-length "${PER_LENGTH:-700}" --precision "${FULLSIZE_PRECISION:-fp8}" $variant \
      --out "$OUT/$name" 2>&1 | tail -4
    echo "$name: $(( $(date +%s) - s ))s"
    cp "$OUT/$name/fullsize-summary.json" "$OUT/results/$name.json" 2>/dev/null
    rm -rf "$OUT/$name"
  done
fi
if has engine; then
  timeout "${ENGINE_TIMEOUT:-330}" bun bench/index.ts engine --peers --precision fp16,fp8 --reads "${READS:-3000}" \
    --repeats "${REPEATS:-3}" --budgets "${ENGINE_BUDGETS:-16384,65536}" $TOK --out "$OUT/results" 2>&1 | grep -v "^bench: running"
fi
if has e2e; then
  sets=(); for g in ${E2E_SETS:-0}; do sets+=(--gpu-sets "$g"); done
  timeout "${E2E_TIMEOUT:-400}" bun bench/index.ts e2e --reads "${E2E_READS:-200000}" --precision "${E2E_PRECISION:-fp8}" \
    "${sets[@]}" $TOK --out "$OUT/results" 2>&1 | tail -12
fi
ls -la "$OUT/results"
date -u
