#include "cpu/gemm.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu/isa.h"

namespace vn::cpu {

void pack_linear(PackedLinear* out, const float* w, const float* bias, int64_t n, int64_t k, const Kernels* kern) {
  const int64_t nr = (kern ? *kern : kernels()).nr;
  out->n = n;
  out->k = k;
  out->nr = static_cast<int>(nr);
  out->panels = (n + nr - 1) / nr;
  out->w.resize(static_cast<size_t>(out->panels * k * nr));
  out->bias.resize(static_cast<size_t>(out->panels * nr));
  float* pw = out->w.data();
  if (pw) std::memset(pw, 0, out->w.size() * sizeof(float));
  for (int64_t j = 0; j < n; ++j) {
    float* panel = pw + (j / nr) * k * nr + (j % nr);
    const float* src = w + j * k;
    for (int64_t kk = 0; kk < k; ++kk) panel[kk * nr] = src[kk];
  }
  float* pb = out->bias.data();
  for (int64_t j = 0; j < out->panels * nr; ++j) pb[j] = (bias && j < n) ? bias[j] : 0.0f;
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
