// cuBLASLt GEMMs with pinned algorithms (see gemm.h). Row-major y (m, n) = x (m, k) w^T is the
// column-major product y^T (n, m) = op_T(W) (n, k) . X^T (k, m): A = w (k x n, ld k, transposed),
// B = x (k x m, ld ldx), C = D = y (n x m, ld ldy); the bias runs along n.
#include "cuda/gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/errors.h"
#include "cuda/common.h"
#include "cuda/kernels.h"

namespace vn::cuda {

static_assert(sizeof(cublasLtMatmulAlgo_t) == sizeof(uint64_t[8]), "cublasLtMatmulAlgo_t layout changed");

namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;

vn_status lt_fail(cublasStatus_t s, const std::string& what) {
  const std::string msg = what + ": cuBLASLt " + cublasLtGetStatusName(s) + " (" + cublasLtGetStatusString(s) + ")";
  if (s == CUBLAS_STATUS_ALLOC_FAILED) return fail(VN_ERR_OOM, msg);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_ARCH_MISMATCH) return fail(VN_ERR_UNSUPPORTED, msg);
  return fail(VN_ERR_BACKEND, msg);
}

#define VN_LT_TRY(expr, what)                                  \
  do {                                                         \
    cublasStatus_t vn_s_ = (expr);                             \
    if (vn_s_ != CUBLAS_STATUS_SUCCESS) return lt_fail(vn_s_, what); \
  } while (0)

cublasLtHandle_t lt(const GemmContext& ctx) { return static_cast<cublasLtHandle_t>(ctx.handle); }

// The descriptors of one call; destroyed with the object.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  Descs() = default;
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
  ~Descs() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// separate: an FP8 GEMM without cuBLASLt's scaling, bias or accumulation, writing m x n FP32.
// epi_bias: the bias in cuBLASLt's epilogue (else the caller adds it).
cublasStatus_t make_descs(const GemmShape& s, bool separate, bool epi_bias, int64_t m, int64_t ldx, int64_t ldy,
                          const void* bias, const float* w_scale, const float* x_scale, Descs* d) {
  const bool fp8 = s.in == GemmIn::kE4M3;
  const cudaDataType tin = fp8 ? CUDA_R_8F_E4M3 : s.in == GemmIn::kF16 ? CUDA_R_16F : CUDA_R_32F;
  const cudaDataType tout = separate || s.out != GemmOut::kF16 ? CUDA_R_32F : CUDA_R_16F;
  cublasStatus_t st = cublasLtMatmulDescCreate(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n);
  if (st == CUBLAS_STATUS_SUCCESS && fp8 && !separate) {
    // Outer-vector scaling: D(i, j) = scale_A(i) scale_B(j) sum_l A(i, l) B(l, j): A's rows are the
    // weight's output channels, B's columns the tokens.
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof w_scale);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof x_scale);
  }
  if (st == CUBLAS_STATUS_SUCCESS && s.bias && !separate && epi_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    if (st == CUBLAS_STATUS_SUCCESS && fp8) {
      // The engine's bias has the output's type (fp16 for fp16 outputs, else fp32).
      const int32_t bias_type = tout;
      st = cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type);
    }
  }
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&d->a, tin, s.k, s.n, s.k);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&d->b, tin, s.k, m, ldx);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&d->c, tout, s.n, m, separate ? s.n : ldy);
  return st;
}

// Plans are described on stderr as they are made (VIRNUC_CUDA_PROFILE=1 or VIRNUC_GEMM_PLANS=1).
bool plans_verbose() {
  for (const char* name : {"VIRNUC_CUDA_PROFILE", "VIRNUC_GEMM_PLANS"})
    if (const char* v = std::getenv(name); v && std::strcmp(v, "1") == 0) return true;
  return false;
}

const char* out_name(GemmOut o) {
  return o == GemmOut::kF16 ? "f16" : o == GemmOut::kF32 ? "f32" : "f32+=";
}

}  // namespace

vn_status gemm_context_create(GemmContext* ctx) {
  cublasLtHandle_t h = nullptr;
  VN_LT_TRY(cublasLtCreate(&h), "creating the cuBLASLt handle");
  ctx->handle = h;
  if (cudaError_t e = cudaMalloc(&ctx->workspace, kWorkspaceBytes); e != cudaSuccess) {
    cublasLtDestroy(h);
    ctx->handle = nullptr;
    return cuda_fail(e, "allocating the cuBLASLt workspace");
  }
  ctx->workspace_bytes = kWorkspaceBytes;
  if (const char* v = std::getenv("VIRNUC_GEMM_PIN_M")) {
    const long long m = std::atoll(v);
    if (m >= 64) ctx->pin_m = m;
  }
  if (const char* v = std::getenv("VIRNUC_CUDA_NAIVE_GEMM")) ctx->naive = std::strcmp(v, "1") == 0;
  if (const char* v = std::getenv("VIRNUC_FP8_SEPARATE")) ctx->fp8_separate = std::strcmp(v, "1") == 0;
  return VN_OK;
}

void gemm_context_destroy(GemmContext* ctx) {
  if (ctx->workspace) cudaFree(ctx->workspace);
  if (ctx->handle) cublasLtDestroy(static_cast<cublasLtHandle_t>(ctx->handle));
  ctx->workspace = nullptr;
  ctx->handle = nullptr;
}

vn_status GemmPlan::init(const GemmContext& ctx, const GemmShape& shape) {
  shape_ = shape;
  // cuBLASLt's tensor-core kernels need 16-byte rows; odd shapes (a custom classifier head, say)
  // take the plain kernel, which is just as deterministic.
  const bool fp8 = shape.in == GemmIn::kE4M3;
  naive_ = fp8 ? shape.n % 16 != 0 || shape.k % 16 != 0 : shape.n % 8 != 0 || shape.k % 8 != 0;
  if (ctx.naive || naive_) return VN_OK;
  if (fp8 && !ctx.fp8_separate) {
    // cuBLASLt's own per-channel x per-token scaling where this cuBLASLt has it for the device;
    // else an unscaled FP8 GEMM and an own pass for the scales.
    if (choose(ctx, false, true) == VN_OK) return VN_OK;
    if (plans_verbose())
      std::fprintf(stderr, "gemm plan: n=%lld k=%lld: no outer-vector-scaled FP8 algorithm with a bias epilogue (%s)\n",
                   static_cast<long long>(shape.n), static_cast<long long>(shape.k), last_error());
    if (shape.bias && choose(ctx, false, false) == VN_OK) return VN_OK;
    if (plans_verbose())
      std::fprintf(stderr, "gemm plan: n=%lld k=%lld: no outer-vector-scaled FP8 algorithm (%s); scaling in an own pass\n",
                   static_cast<long long>(shape.n), static_cast<long long>(shape.k), last_error());
  }
  return choose(ctx, fp8, true);
}

vn_status GemmPlan::choose(const GemmContext& ctx, bool separate, bool epi_bias) {
  separate_ = separate;
  epi_bias_ = epi_bias;
  const GemmShape& shape = shape_;
  const std::string what = "choosing a cuBLASLt algorithm for n=" + std::to_string(shape.n) +
                           " k=" + std::to_string(shape.k) + (shape.in == GemmIn::kE4M3 ? " (fp8)" : "");
  // The bias and scale pointers are not read while choosing, only their alignment.
  const void* fake_bias = reinterpret_cast<const void*>(kAlign);
  const float* fake_scale = reinterpret_cast<const float*>(kAlign);
  int returned_total = 0;
  // Heuristic at the pinning m first; smaller m only if none of its answers serves every m.
  for (int64_t heur_m : {ctx.pin_m, int64_t{4096}, int64_t{256}}) {
    Descs d;
    VN_LT_TRY(make_descs(shape, separate, epi_bias, heur_m, shape.k, shape.n, fake_bias, fake_scale, fake_scale, &d),
              what);
    cublasLtMatmulPreference_t pref = nullptr;
    VN_LT_TRY(cublasLtMatmulPreferenceCreate(&pref), what);
    const uint64_t ws = ctx.workspace_bytes;
    cublasStatus_t st =
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    constexpr int kWanted = 16;
    cublasLtMatmulHeuristicResult_t results[kWanted] = {};
    int returned = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulAlgoGetHeuristic(lt(ctx), d.op, d.a, d.b, d.c, d.c, pref, kWanted, results, &returned);
    cublasLtMatmulPreferenceDestroy(pref);
    VN_LT_TRY(st, what);
    returned_total += returned;
    std::vector<Candidate> valid;
    for (int i = 0; i < returned; ++i) {
      if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
      cublasLtMatmulAlgo_t algo = results[i].algo;
      // Split-K (and its reduction) would make the summation order depend on m: force one split.
      uint32_t splits = 1;
      size_t written = 0;
      if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof splits,
                                               &written) != CUBLAS_STATUS_SUCCESS)
        continue;
      if (splits != 1) {
        const uint32_t one = 1, none = CUBLASLT_REDUCTION_SCHEME_NONE;
        if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &one, sizeof one) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &none, sizeof none) !=
                CUBLAS_STATUS_SUCCESS)
          continue;
      }
      // The pinned algorithm must serve every m the engine will see.
      bool ok = true;
      for (int64_t m : {int64_t{1}, int64_t{77}, ctx.pin_m, int64_t{1} << 20}) {
        Descs dm;
        cublasLtMatmulHeuristicResult_t check = {};
        if (make_descs(shape, separate, epi_bias, m, shape.k, shape.n, fake_bias, fake_scale, fake_scale, &dm) !=
                CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoCheck(lt(ctx), dm.op, dm.a, dm.b, dm.c, dm.c, &algo, &check) != CUBLAS_STATUS_SUCCESS ||
            check.workspaceSize > ctx.workspace_bytes) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      Candidate c;
      std::memcpy(c.algo, &algo, sizeof c.algo);
      c.waves = results[i].wavesCount;
      valid.push_back(c);
    }
    if (valid.empty()) continue;
    // The heuristic's first valid answer, or a faster one that gives the same bits (tune()).
    const size_t pick = tune(ctx, valid);
    cublasLtMatmulAlgo_t algo;
    std::memcpy(&algo, valid[pick].algo, sizeof algo);
    std::memcpy(algo_, valid[pick].algo, sizeof algo_);
    size_t written = 0;
    int32_t v = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &v, sizeof v, &written);
    algo_id_ = v;
    uint32_t u = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &u, sizeof u, &written);
    tile_id_ = static_cast<int>(u);
    u = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &u, sizeof u, &written);
    stages_id_ = static_cast<int>(u);
    waves_ = valid[pick].waves;
    chosen_m_ = heur_m;
    return VN_OK;
  }
  return fail(VN_ERR_UNSUPPORTED, what + ": no split-K-free algorithm valid for every batch size (" +
                                      std::to_string(returned_total) + " candidates)");
}

namespace {

// Device buffers of one algorithm trial, freed with the object.
struct TrialBuffers {
  void* p[8] = {};
  int used = 0;
  bool alloc(void** out, size_t bytes) {
    if (cudaMalloc(out, bytes) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    p[used++] = *out;
    return true;
  }
  ~TrialBuffers() {
    for (int i = 0; i < used; ++i) cudaFree(p[i]);
  }
};

}  // namespace

// Times the valid candidates on pseudo-random operands at m = pin_m + 77 and returns the index of
// the fastest among those whose output is bit-identical to candidate 0's (the heuristic's). The
// results therefore never depend on the timing; only the speed does. Large shapes only; on any
// failure (memory, say) candidate 0. VIRNUC_GEMM_TUNE=0: always candidate 0.
size_t GemmPlan::tune(const GemmContext& ctx, const std::vector<Candidate>& valid) {
  tune_note_.clear();
  static const bool enabled = [] {
    const char* v = std::getenv("VIRNUC_GEMM_TUNE");
    return !(v && v[0] == '0');
  }();
  const GemmShape& s = shape_;
  if (!enabled || valid.size() < 2 || separate_ || s.in == GemmIn::kF32 || s.n * s.k < (int64_t{4} << 20)) return 0;
  const bool fp8 = s.in == GemmIn::kE4M3;
  const int64_t m = ctx.pin_m + 77;
  const size_t in_bytes = fp8 ? 1 : 2;
  const size_t out_bytes = s.out == GemmOut::kF16 ? 2 : 4;
  const size_t y_bytes = static_cast<size_t>(m) * s.n * out_bytes;
  TrialBuffers buf;
  void *x = nullptr, *w = nullptr, *bias = nullptr, *y0 = nullptr, *y1 = nullptr, *ws = nullptr, *scales = nullptr,
       *diff = nullptr;
  if (!buf.alloc(&x, m * s.k * in_bytes) || !buf.alloc(&w, s.n * s.k * in_bytes) || !buf.alloc(&bias, s.n * 4) ||
      !buf.alloc(&y0, y_bytes) || !buf.alloc(&y1, y_bytes) || !buf.alloc(&ws, ctx.workspace_bytes) ||
      !buf.alloc(&scales, std::max(m, s.n) * 4) || !buf.alloc(&diff, sizeof(unsigned long long)))
    return 0;
  cudaStream_t stream = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  size_t best = 0;
  std::vector<float> ms(valid.size(), -1.0f);
  int identical = 0;
  const int in_kind = fp8 ? 1 : 0;
  bool ok = fill_test_values(x, m * s.k, in_kind, 1, stream) == cudaSuccess &&
            fill_test_values(w, s.n * s.k, in_kind, 2, stream) == cudaSuccess &&
            fill_test_values(bias, s.n, s.out == GemmOut::kF16 ? 0 : 2, 3, stream) == cudaSuccess &&
            fill_test_values(scales, std::max(m, s.n), 2, 4, stream) == cudaSuccess;
  Descs d;
  ok = ok && make_descs(s, false, epi_bias_, m, s.k, s.n, bias, fp8 ? static_cast<float*>(scales) : nullptr,
                        fp8 ? static_cast<float*>(scales) : nullptr, &d) == CUBLAS_STATUS_SUCCESS;
  const float alpha = 1.0f, beta = s.out == GemmOut::kF32Accumulate ? 1.0f : 0.0f;
  auto run_once = [&](size_t i, void* y) {
    cublasLtMatmulAlgo_t algo;
    std::memcpy(&algo, valid[i].algo, sizeof algo);
    return cublasLtMatmul(lt(ctx), d.op, &alpha, w, d.a, x, d.b, &beta, y, d.c, y, d.c, &algo, ws,
                          ctx.workspace_bytes, stream) == CUBLAS_STATUS_SUCCESS;
  };
  // Candidate 0's output once from zero (the accumulating shapes add to y).
  ok = ok && cudaMemsetAsync(y0, 0, y_bytes, stream) == cudaSuccess && run_once(0, y0);
  for (size_t i = 0; ok && i < valid.size(); ++i) {
    if (i > 0) {
      unsigned long long host_diff = 1;
      ok = cudaMemsetAsync(y1, 0, y_bytes, stream) == cudaSuccess && run_once(i, y1) &&
           cudaMemsetAsync(diff, 0, sizeof host_diff, stream) == cudaSuccess &&
           count_different_words(y0, y1, static_cast<int64_t>(y_bytes / 4), static_cast<unsigned long long*>(diff),
                                 stream) == cudaSuccess &&
           cudaMemcpyAsync(&host_diff, diff, sizeof host_diff, cudaMemcpyDeviceToHost, stream) == cudaSuccess &&
           cudaStreamSynchronize(stream) == cudaSuccess;
      if (!ok || host_diff != 0) continue;
    }
    ++identical;
    // One warm-up, then the median of three.
    float t[3] = {};
    ok = run_once(i, y1);
    for (int r = 0; ok && r < 3; ++r) {
      ok = cudaEventRecord(e0, stream) == cudaSuccess && run_once(i, y1) && cudaEventRecord(e1, stream) == cudaSuccess &&
           cudaEventSynchronize(e1) == cudaSuccess && cudaEventElapsedTime(&t[r], e0, e1) == cudaSuccess;
    }
    if (!ok) break;
    std::sort(t, t + 3);
    ms[i] = t[1];
    if (i > 0 && ms[i] < 0.99f * ms[best]) best = i;
  }
  cudaStreamSynchronize(stream);
  cudaGetLastError();
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(stream);
  if (!ok) return 0;
  char note[160];
  std::snprintf(note, sizeof note, "; tuned: %d of %zu candidates give the same bits, #%zu %.3f ms vs #0 %.3f ms at m=%lld",
                identical, valid.size(), best, ms[best], ms[0], static_cast<long long>(m));
  tune_note_ = note;
  return best;
}

vn_status GemmPlan::run(const GemmContext& ctx, const void* x, int64_t ldx, const void* w, const void* bias, void* y,
                        int64_t ldy, int64_t m, cudaStream_t stream, const Fp8Scales* fp8) const {
  if (m <= 0) return VN_OK;
  const bool accumulate = shape_.out == GemmOut::kF32Accumulate;
  const bool is_fp8 = shape_.in == GemmIn::kE4M3;
  if (is_fp8 && (!fp8 || !fp8->x_scale || !fp8->w_scale || (separate_ && !fp8->scratch)))
    return fail(VN_ERR_BACKEND, "FP8 GEMM called without its scales");
  if (ctx.naive || naive_) {
    if (is_fp8) {
      VN_CUDA_TRY(fp8_gemm_naive(static_cast<const uint8_t*>(x), ldx, static_cast<const uint8_t*>(w), fp8->x_scale,
                                 fp8->w_scale, shape_.bias ? bias : nullptr, y, ldy, m, shape_.n, shape_.k,
                                 shape_.out == GemmOut::kF16, accumulate, stream),
                  "reference FP8 GEMM");
      return VN_OK;
    }
    VN_CUDA_TRY(gemm_naive(x, ldx, w, shape_.bias ? bias : nullptr, y, ldy, m, shape_.n, shape_.k,
                           shape_.in == GemmIn::kF16, shape_.out == GemmOut::kF16, accumulate, stream),
                "reference GEMM");
    return VN_OK;
  }
  Descs d;
  VN_LT_TRY(make_descs(shape_, separate_, epi_bias_, m, ldx, ldy, bias, is_fp8 ? fp8->w_scale : nullptr,
                       is_fp8 ? fp8->x_scale : nullptr, &d),
            "GEMM descriptors");
  const float alpha = 1.0f, beta = accumulate && !separate_ ? 1.0f : 0.0f;
  void* out = separate_ ? static_cast<void*>(fp8->scratch) : y;
  cublasLtMatmulAlgo_t algo;
  std::memcpy(&algo, algo_, sizeof algo);
  VN_LT_TRY(cublasLtMatmul(lt(ctx), d.op, &alpha, w, d.a, x, d.b, &beta, out, d.c, out, d.c, &algo, ctx.workspace,
                           ctx.workspace_bytes, stream),
            "GEMM m=" + std::to_string(m) + " n=" + std::to_string(shape_.n) + " k=" + std::to_string(shape_.k));
  if (!separate_ && shape_.bias && !epi_bias_)
    VN_CUDA_TRY(add_bias(y, ldy, m, shape_.n, bias, shape_.out == GemmOut::kF16, stream), "GEMM bias");
  if (separate_)
    VN_CUDA_TRY(fp8_dequant_epilogue(fp8->scratch, m, shape_.n, fp8->x_scale, fp8->w_scale, shape_.bias ? bias : nullptr,
                                     y, ldy, shape_.out == GemmOut::kF16, accumulate, stream),
                "FP8 GEMM scaling");
  return VN_OK;
}

std::string GemmPlan::describe() const {
  if (naive_) return "n=" + std::to_string(shape_.n) + " k=" + std::to_string(shape_.k) + " reference kernel";
  return "n=" + std::to_string(shape_.n) + " k=" + std::to_string(shape_.k) + " " +
         (shape_.in == GemmIn::kF16 ? "f16" : shape_.in == GemmIn::kE4M3 ? (separate_ ? "e4m3 (own scaling)" : epi_bias_ ? "e4m3 (outer-vector scaling)" : "e4m3 (outer-vector scaling, own bias pass)") : "f32") +
         "->" + out_name(shape_.out) + (shape_.bias ? "+bias" : "") +
         " algo " + std::to_string(algo_id_) + " tile " + std::to_string(tile_id_) + " stages " +
         std::to_string(stages_id_) + " chosen at m=" + std::to_string(chosen_m_) + " waves " + std::to_string(waves_) +
         tune_note_;
}

const GemmPlan* GemmPlans::get(const GemmContext& ctx, const GemmShape& shape) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(shape);
  if (it != plans_.end()) return it->second.get();
  auto plan = std::make_unique<GemmPlan>();
  if (plan->init(ctx, shape) != VN_OK) return nullptr;
  if (plans_verbose()) std::fprintf(stderr, "gemm plan: %s\n", plan->describe().c_str());
  const GemmPlan* p = plan.get();
  plans_.emplace(shape, std::move(plan));
  return p;
}

}  // namespace vn::cuda
