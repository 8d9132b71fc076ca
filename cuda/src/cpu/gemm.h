// FP32 GEMM for Linear layers: C = A * W^T + bias, A [M,K], W [N,K] (PyTorch layout).
// W is packed once at load into column panels; each output element is one FMA chain over
// k = 0..K-1 in order, whatever M is and however rows are split among threads, so a row's
// result does not depend on the other rows of the batch.
#pragma once

#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/simd.h"
#include "cpu/thread_pool.h"

namespace vn::cpu {

constexpr int kNR = 2 * kVW;  // columns per packed panel (two vectors)

struct PackedLinear {
  int64_t n = 0, k = 0, panels = 0;
  FloatBuffer w;     // (panels, k, kNR): panel p holds columns p*kNR .. p*kNR+kNR-1, zero-padded
  FloatBuffer bias;  // (panels * kNR), zeros where the layer has no bias
};

// W [n,k] row-major; bias [n] or nullptr.
void pack_linear(PackedLinear* out, const float* w, const float* bias, int64_t n, int64_t k);

enum class Act { kNone, kGelu };

// Applied per output element after the reduction: v = act(acc + bias); v += residual.
struct Epilogue {
  Act act = Act::kNone;
  const float* residual = nullptr;  // (M, ldr) or nullptr; must not alias C
  int64_t ldr = 0;
};

// C (M, ldc) = epilogue(A (M, lda) * W^T + bias).
void linear(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedLinear& w, float* c, int64_t ldc,
            const Epilogue& epi = {});

}  // namespace vn::cpu
