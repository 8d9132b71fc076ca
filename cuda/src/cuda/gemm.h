// Linear layers through cuBLASLt: y (m, n) = x (m, k) w^T (w: (n, k), row-major) with the bias
// and the residual add fused into the epilogue. One algorithm is pinned per GEMM shape, chosen
// once by the heuristic at a fixed large m with split-K 1, and reused for every m: a row's result
// then does not depend on how many rows share the call (batch invariance). Among the heuristic's
// valid answers the fastest on this device is kept only if its output is bit-identical to the
// first answer's (GemmPlan::tune), so results never depend on the timing.
// Only gemm.cpp includes cuBLASLt.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "backend.h"

namespace vn::cuda {

// Element types of a GEMM. kE4M3: FP8 weights (one scale per output channel) and activations
// (one scale per row/token), FP32 accumulation; the scales come with run() (Fp8Scales).
enum class GemmIn { kF16, kF32, kE4M3 };
enum class GemmOut {
  kF16,            // y = x w^T (+ bias), fp16
  kF32,            // y = x w^T (+ bias), fp32
  kF32Accumulate,  // y += x w^T (+ bias), fp32 residual stream updated in place
};

struct GemmShape {
  int64_t n = 0, k = 0;
  GemmIn in = GemmIn::kF16;
  GemmOut out = GemmOut::kF16;
  bool bias = false;
  bool operator<(const GemmShape& o) const {
    return std::tie(n, k, in, out, bias) < std::tie(o.n, o.k, o.in, o.out, o.bias);
  }
};

// FP8 operands' scales: x_scale (m) per row of x, w_scale (n) per output channel. scratch: m x n
// FP32 for plans that apply the scales in their own pass (GemmPlan::needs_scratch).
struct Fp8Scales {
  const float* x_scale = nullptr;
  const float* w_scale = nullptr;
  float* scratch = nullptr;
};

// The engine's cuBLASLt state: handle and workspace (used by one stream at a time).
struct GemmContext {
  void* handle = nullptr;  // cublasLtHandle_t
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  int64_t pin_m = 16384;   // m at which every shape's algorithm is chosen
  bool naive = false;      // debugging: the reference kernel instead of cuBLASLt
  // FP8: apply the scales (and bias) in an own pass after an unscaled FP8 GEMM instead of
  // cuBLASLt's outer-vector scaling (VIRNUC_FP8_SEPARATE=1; chosen anyway where that is missing).
  bool fp8_separate = false;
};

vn_status gemm_context_create(GemmContext* ctx);
void gemm_context_destroy(GemmContext* ctx);

class GemmPlan {
 public:
  // Chooses and pins the algorithm for this shape (heuristic at ctx.pin_m, split-K forced to 1,
  // checked at a small and a large m; the fastest of the candidates with the first one's bits).
  vn_status init(const GemmContext& ctx, const GemmShape& shape);
  // y = x w^T ... for m rows; ldx / ldy are row strides in elements.
  vn_status run(const GemmContext& ctx, const void* x, int64_t ldx, const void* w, const void* bias, void* y,
                int64_t ldy, int64_t m, cudaStream_t stream, const Fp8Scales* fp8 = nullptr) const;
  // FP8 plans without cuBLASLt's scaling write an m x n FP32 scratch first (Fp8Scales::scratch).
  bool needs_scratch() const { return separate_; }
  const GemmShape& shape() const { return shape_; }
  std::string describe() const;

 private:
  struct Candidate {
    uint64_t algo[8];  // cublasLtMatmulAlgo_t
    float waves;
  };
  vn_status choose(const GemmContext& ctx, bool separate, bool epi_bias);
  size_t tune(const GemmContext& ctx, const std::vector<Candidate>& valid);
  GemmShape shape_;
  uint64_t algo_[8] = {};  // cublasLtMatmulAlgo_t, kept opaque here
  int tile_id_ = 0, stages_id_ = 0, algo_id_ = 0;
  float waves_ = 0;
  int64_t chosen_m_ = 0;
  std::string tune_note_;
  bool naive_ = false;     // shape unaligned for cuBLASLt
  bool separate_ = false;  // FP8: unscaled GEMM into scratch, then fp8_dequant_epilogue
  bool epi_bias_ = true;   // the bias in cuBLASLt's epilogue, else add_bias after the GEMM
};

// Plans shared by every model of an engine, one per shape.
class GemmPlans {
 public:
  // Returns the plan for the shape, creating it on first use; null with the error set on failure.
  const GemmPlan* get(const GemmContext& ctx, const GemmShape& shape);

 private:
  std::mutex mu_;
  std::map<GemmShape, std::unique_ptr<GemmPlan>> plans_;
};

}  // namespace vn::cuda
