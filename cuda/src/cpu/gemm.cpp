#include "cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/isa.h"

namespace vn::cpu {

namespace {

// An output row of W in its stored dtype.
struct SrcRow {
  const unsigned char* p;
  int32_t dtype;
};

// Writes floats [e0, e1) of the packed panels (both multiples of nr, so whole panel rows): panel p
// holds at (kk, c) the value at column kk of output row p*nr + c, or 0 past the last row. Each
// stretch of a source row is converted to FP32 in L1 first (to_f32), then spread over the panel.
void pack_range(float* pw, const SrcRow* rows, int64_t n, int64_t k, int64_t nr, int64_t e0, int64_t e1,
                const Kernels& kern) {
  const int64_t panel = k * nr;
  constexpr int64_t kBlock = 256;  // panel rows per pass: what is being written stays in L1
  alignas(64) float row[kBlock];
  for (int64_t p = e0 / panel; p * panel < e1; ++p) {
    const int64_t kk0 = std::max<int64_t>(e0 - p * panel, 0) / nr;
    const int64_t kk1 = std::min<int64_t>(e1 - p * panel, panel) / nr;
    float* dst = pw + p * panel;
    for (int64_t b0 = kk0; b0 < kk1; b0 += kBlock) {
      const int64_t b1 = std::min(kk1, b0 + kBlock);
      for (int64_t c = 0; c < nr; ++c) {
        const int64_t j = p * nr + c;
        float* d = dst + c;
        if (j < n) {
          const SrcRow& r = rows[j];
          kern.to_f32(r.dtype, r.p + b0 * (r.dtype == VN_F32 ? 4 : 2), row, b1 - b0);
          for (int64_t kk = b0; kk < b1; ++kk) d[kk * nr] = row[kk - b0];
        } else {
          for (int64_t kk = b0; kk < b1; ++kk) d[kk * nr] = 0.0f;
        }
      }
    }
  }
}

}  // namespace

void pack_linear(PackedLinear* out, const LinearRows* blocks, int n_blocks, int64_t k, ThreadPool* pool,
                 const Kernels* kern, int64_t chunk) {
  const Kernels& kt = kern ? *kern : kernels();
  const int64_t nr = kt.nr;
  int64_t n = 0;
  for (int i = 0; i < n_blocks; ++i) {
    const int32_t dt = blocks[i].dtype;
    if (dt != VN_F32 && dt != VN_F16 && dt != VN_BF16)
      throw std::invalid_argument("pack_linear: weights of dtype " + std::to_string(dt) + " (f32, f16 or bf16 expected)");
    n += blocks[i].n;
  }
  out->n = n;
  out->k = k;
  out->nr = static_cast<int>(nr);
  out->panels = (n + nr - 1) / nr;
  const int64_t total = out->panels * k * nr;
  out->w.resize(static_cast<size_t>(total));  // allocated here, first touched by the threads that pack it
  out->bias.resize(static_cast<size_t>(out->panels * nr));
  std::vector<SrcRow> rows(static_cast<size_t>(n));
  float* pb = out->bias.data();
  int64_t j = 0;
  for (int i = 0; i < n_blocks; ++i) {
    const LinearRows& b = blocks[i];
    const int64_t row_bytes = k * (b.dtype == VN_F32 ? 4 : 2);
    for (int64_t r = 0; r < b.n; ++r, ++j) {
      rows[static_cast<size_t>(j)] = SrcRow{static_cast<const unsigned char*>(b.w) + r * row_bytes, b.dtype};
      pb[j] = b.bias ? b.bias[r] : 0.0f;
    }
  }
  for (; j < out->panels * nr; ++j) pb[j] = 0.0f;
  if (total == 0) return;
  if (chunk <= 0) chunk = static_cast<int64_t>(FloatBuffer::kHugePage / sizeof(float));
  chunk = std::max(nr, chunk / nr * nr);
  const int64_t tasks = (total + chunk - 1) / chunk;
  float* pw = out->w.data();
  auto task = [&](int64_t t) {
    pack_range(pw, rows.data(), n, k, nr, t * chunk, std::min(total, (t + 1) * chunk), kt);
  };
  if (pool && tasks > 1) {
    pool->parallel_for(tasks, [&](int64_t t) { task(t); });
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
}

void pack_linear(PackedLinear* out, const float* w, const float* bias, int64_t n, int64_t k, const Kernels* kern,
                 ThreadPool* pool) {
  const LinearRows block{w, bias, n};
  pack_linear(out, &block, 1, k, pool, kern);
}

void linear(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedLinear& w, float* c, int64_t ldc,
            const Epilogue& epi) {
  const Kernels& kern = kernels();
  if (w.nr != kern.nr)
    throw std::logic_error("weights packed for " + std::to_string(w.nr) + "-column panels, kernels use " +
                           std::to_string(kern.nr));
  kern.linear(pool, a, m, lda, w, c, ldc, epi);
}

}  // namespace vn::cpu
