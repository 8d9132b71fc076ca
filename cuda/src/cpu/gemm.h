// FP32 GEMM for Linear layers: C = A * W^T + bias, A [M,K], W [N,K] (PyTorch layout).
// W is packed once at load into column panels; each output element is one multiply-add chain over
// k = 0..K-1 in order, whatever M is and however rows are split among threads, so a row's
// result does not depend on the other rows of the batch. The kernels themselves are chosen at
// run time (isa.h); the panel width is that choice's.
#pragma once

#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/thread_pool.h"
#include "virnuc.h"

namespace vn::cpu {

struct Kernels;

struct PackedLinear {
  int64_t n = 0, k = 0, panels = 0;
  int nr = 0;        // columns per panel (the packing kernel table's Kernels::nr)
  FloatBuffer w;     // (panels, k, nr): panel p holds columns p*nr .. p*nr+nr-1, zero-padded
  FloatBuffer bias;  // (panels * nr), zeros where the layer has no bias
};

// One block of a Linear layer's output rows: W [n,k] row-major in its stored dtype (vn_dtype: f32,
// f16 or bf16; any alignment, e.g. a memory-mapped checkpoint), bias [n] (FP32) or nullptr.
struct LinearRows {
  const void* w = nullptr;
  const float* bias = nullptr;
  int64_t n = 0;
  int32_t dtype = VN_F32;
};

// Packs the blocks stacked in order (e.g. query, key and value as one (3H, H) layer) for `kern`
// (default: the process's kernels()), converting fp16/bf16 weights to FP32 on the way (`kern`'s
// to_f32: exact, the values vn::convert_to_f32 gives; no FP32 copy of the weights is made). With a
// pool, its threads pack in parallel, each allocating (first-touching) the stretches of the packed
// buffer it writes: tasks of `chunk` floats (0: 2 MiB, one transparent huge page of FloatBuffer's;
// rounded to whole panel rows) over the panels. Each packed value is a copy of one converted value,
// so the result is the same bits whatever the pool and the chunk.
void pack_linear(PackedLinear* out, const LinearRows* blocks, int n_blocks, int64_t k, ThreadPool* pool,
                 const Kernels* kern = nullptr, int64_t chunk = 0);

// W [n,k] row-major; bias [n] or nullptr. Packed for `kern` (default: the process's kernels()).
void pack_linear(PackedLinear* out, const float* w, const float* bias, int64_t n, int64_t k,
                 const Kernels* kern = nullptr, ThreadPool* pool = nullptr);

enum class Act { kNone, kGelu };

// Applied per output element after the reduction: v = act(acc + bias); v += residual.
struct Epilogue {
  Act act = Act::kNone;
  const float* residual = nullptr;  // (M, ldr) or nullptr; must not alias C
  int64_t ldr = 0;
};

// C (M, ldc) = epilogue(A (M, lda) * W^T + bias), with the process's kernels() (W packed for them).
void linear(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedLinear& w, float* c, int64_t ldc,
            const Epilogue& epi = {});

}  // namespace vn::cpu
