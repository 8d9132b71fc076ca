#include "cpu/gemm.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "cpu/activations.h"

namespace vn::cpu {

namespace {

#if defined(__AVX512F__)
constexpr int kMR = 12;  // 24 accumulators + 2 B vectors + 1 broadcast of 32 registers
#elif defined(__AVX2__)
constexpr int kMR = 6;  // 12 accumulators of 16 registers
#else
constexpr int kMR = 4;
#endif
constexpr int64_t kKC = 256;  // a B micro-panel (kKC x kNR) stays in L1
constexpr int64_t kMC = 96;   // an A block (kMC x kKC) stays in L2

// C tile (R x kNR, row stride ldc) = (load ? C : 0) + A (R x kc) * B (kc x kNR), one FMA chain per element.
template <int R>
void micro(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, bool load) {
  vf c0[R], c1[R];
  for (int r = 0; r < R; ++r) {
    c0[r] = load ? vload(c + r * ldc) : vzero();
    c1[r] = load ? vload(c + r * ldc + kVW) : vzero();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const vf b0 = vload(b + k * kNR);
    const vf b1 = vload(b + k * kNR + kVW);
    for (int r = 0; r < R; ++r) {
      const vf x = vset(a[r * lda + k]);
      c0[r] = vfma(x, b0, c0[r]);
      c1[r] = vfma(x, b1, c1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    vstore(c + r * ldc, c0[r]);
    vstore(c + r * ldc + kVW, c1[r]);
  }
}

using MicroFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

template <int... Rs>
constexpr auto make_table(std::integer_sequence<int, Rs...>) {
  return std::array<MicroFn, sizeof...(Rs)>{&micro<Rs + 1>...};
}
const auto kMicro = make_table(std::make_integer_sequence<int, kMR>{});

// v = act(acc + bias) + residual over a full-width tile of `rows` rows.
void epilogue_tile(float* c, int64_t ldc, int rows, const float* bias, const Epilogue& epi, const float* res,
                   int64_t ldr, int cols) {
  for (int r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int h = 0; h < kNR; h += kVW) {
      vf v = vadd(vload(row + h), vload(bias + h));
      if (epi.act == Act::kGelu) v = vgelu(v);
      vstore(row + h, v);
    }
    if (res) {
      const float* rr = res + r * ldr;
      for (int j = 0; j < cols; ++j) row[j] += rr[j];
    }
  }
}

}  // namespace

void pack_linear(PackedLinear* out, const float* w, const float* bias, int64_t n, int64_t k) {
  out->n = n;
  out->k = k;
  out->panels = (n + kNR - 1) / kNR;
  out->w.resize(static_cast<size_t>(out->panels * k * kNR));
  out->bias.resize(static_cast<size_t>(out->panels * kNR));
  float* pw = out->w.data();
  std::memset(pw, 0, out->w.size() * sizeof(float));
  for (int64_t j = 0; j < n; ++j) {
    float* panel = pw + (j / kNR) * k * kNR + (j % kNR);
    const float* src = w + j * k;
    for (int64_t kk = 0; kk < k; ++kk) panel[kk * kNR] = src[kk];
  }
  float* pb = out->bias.data();
  for (int64_t j = 0; j < out->panels * kNR; ++j) pb[j] = (bias && j < n) ? bias[j] : 0.0f;
}

void linear(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedLinear& w, float* c, int64_t ldc,
            const Epilogue& epi) {
  if (m <= 0 || w.n <= 0) return;
  const int64_t K = w.k;
  const int64_t m_blocks = (m + kMC - 1) / kMC;
  // Panels per task: as many as keeps B in L2, fewer when that would leave threads idle.
  int64_t group = 8;
  while (group > 1 && m_blocks * ((w.panels + group - 1) / group) < 4 * pool.size()) group /= 2;
  const int64_t n_groups = (w.panels + group - 1) / group;

  pool.parallel_for(m_blocks * n_groups, [&](int64_t t) {
    const int64_t m0 = (t % m_blocks) * kMC;
    const int64_t m1 = std::min(m, m0 + kMC);
    const int64_t p0 = (t / m_blocks) * group;
    const int64_t p1 = std::min(w.panels, p0 + group);
    alignas(64) float tile[kMR * kNR];
    for (int64_t k0 = 0; k0 < K || k0 == 0; k0 += kKC) {
      const int64_t kc = std::min(kKC, K - k0);
      const bool first = k0 == 0;
      const bool last = k0 + kKC >= K;
      for (int64_t p = p0; p < p1; ++p) {
        const float* bp = w.w.data() + p * K * kNR + k0 * kNR;
        const int64_t col0 = p * kNR;
        const int cols = static_cast<int>(std::min<int64_t>(kNR, w.n - col0));
        for (int64_t i = m0; i < m1; i += kMR) {
          const int rows = static_cast<int>(std::min<int64_t>(kMR, m1 - i));
          const float* ap = a + i * lda + k0;
          float* cp = c + i * ldc + col0;
          // Edge panels run in a full-width scratch tile so every element takes the same path.
          float* tp = cp;
          int64_t ldt = ldc;
          if (cols < kNR) {
            tp = tile;
            ldt = kNR;
            for (int r = 0; r < rows; ++r)
              for (int j = 0; j < kNR; ++j) tile[r * kNR + j] = (!first && j < cols) ? cp[r * ldc + j] : 0.0f;
          }
          kMicro[rows - 1](ap, lda, bp, kc, tp, ldt, !first);
          if (last)
            epilogue_tile(tp, ldt, rows, w.bias.data() + col0, epi,
                          epi.residual ? epi.residual + i * epi.ldr + col0 : nullptr, epi.ldr, cols);
          if (tp != cp)
            for (int r = 0; r < rows; ++r)
              for (int j = 0; j < cols; ++j) cp[r * ldc + j] = tile[r * kNR + j];
        }
      }
      if (K == 0) break;
    }
  });
}

}  // namespace vn::cpu
