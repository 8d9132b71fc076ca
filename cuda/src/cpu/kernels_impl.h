// The CPU backend's hot loops, written once and compiled once per instruction set: isa_*.cpp
// define VN_ISA_NS and the path macro (simd.h), include this file, and export its table.
// Everything here has internal linkage (an anonymous namespace inside VN_ISA_NS), so no inline
// function compiled with wider target flags can stand in for a baseline one at link time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <utility>

#include "cpu/activations.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/simd.h"
#include "cpu/thread_pool.h"
#include "virnuc.h"

namespace vn {
// common/weights.cpp (compiled for the baseline): the scalar conversion that to_f32 must match bit
// for bit; to_f32 leaves it the tails, the groups holding an Inf or NaN, and what it has no vector
// conversion for.
void convert_to_f32(int32_t dtype, const void* src, float* dst, int64_t count);
}  // namespace vn

namespace vn::cpu::VN_ISA_NS {
namespace {

constexpr int kNR = 2 * kVW;  // columns per packed panel (two vectors)
#if defined(VN_ISA_AVX512)
constexpr int kMR = 12;  // 24 accumulators + 2 B vectors + 1 broadcast of 32 registers
#elif defined(VN_ISA_AVX2)
constexpr int kMR = 6;  // 12 accumulators of 16 registers
#elif defined(__SSE2__)
constexpr int kMR = 6;  // 12 accumulators of 16 xmm registers
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

// micro<1> .. micro<kMR>, indexed by rows - 1 (plain arrays and ternaries here rather than
// std::array / std::min: no shared template instance is compiled with this unit's flags).
template <typename Seq>
struct MicroTable;
template <int... Rs>
struct MicroTable<std::integer_sequence<int, Rs...>> {
  static constexpr MicroFn fns[sizeof...(Rs)] = {&micro<Rs + 1>...};
};
using Micros = MicroTable<std::make_integer_sequence<int, kMR>>;

inline int64_t m1_of(int64_t m, int64_t m0) { return m < m0 + kMC ? m : m0 + kMC; }

// The scalar twin of vfma (the attention tail when head_dim is not a multiple of kVW).
inline float scalar_fma(float a, float b, float c) {
#if defined(VN_ISA_PORTABLE) && defined(__SSE2__)
  return a * b + c;
#else
  return std::fma(a, b, c);
#endif
}

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

// Each output element is one FMA chain over k = 0..K-1 in order, whatever M is and however rows
// are split among threads, so a row's result does not depend on the other rows of the batch.
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
    const int64_t m1 = m1_of(m, m0);
    const int64_t p0 = (t / m_blocks) * group;
    const int64_t p1 = p0 + group < w.panels ? p0 + group : w.panels;
    alignas(64) float tile[kMR * kNR];
    for (int64_t k0 = 0; k0 < K || k0 == 0; k0 += kKC) {
      const int64_t kc = kKC < K - k0 ? kKC : K - k0;
      const bool first = k0 == 0;
      const bool last = k0 + kKC >= K;
      for (int64_t p = p0; p < p1; ++p) {
        const float* bp = w.w.data() + p * K * kNR + k0 * kNR;
        const int64_t col0 = p * kNR;
        const int cols = static_cast<int>(kNR < w.n - col0 ? kNR : w.n - col0);
        for (int64_t i = m0; i < m1; i += kMR) {
          const int rows = static_cast<int>(kMR < m1 - i ? kMR : m1 - i);
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
          Micros::fns[rows - 1](ap, lda, bp, kc, tp, ldt, !first);
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

// Per-thread scratch of the attention kernel (its own type: see the note at the top).
struct Scratch {
  float* p = nullptr;
  size_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t want) {
    if (want > n) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, (want * sizeof(float) + 63) / 64 * 64));
      n = p ? want : 0;
      if (!p) throw std::bad_alloc();
    }
    return p;
  }
};

void attention(ThreadPool& pool, const AttentionArgs& a, const int32_t* cu, int32_t n_seqs) {
  const int d = a.head_dim;
  pool.parallel_for(static_cast<int64_t>(n_seqs) * a.n_heads, [&](int64_t task) {
    const int32_t s = static_cast<int32_t>(task / a.n_heads);
    const int h = static_cast<int>(task % a.n_heads);
    const int64_t t0 = cu[s];
    const int64_t L = cu[s + 1] - t0;
    if (L <= 0) return;
    const int64_t Lp = (L + kVW - 1) / kVW * kVW;
    thread_local Scratch kt_buf, s_buf;
    float* kt = kt_buf.get(static_cast<size_t>(d * Lp));  // (d, Lp): keys transposed so scores vectorise over keys
    float* sc = s_buf.get(static_cast<size_t>(Lp));
    const float* q = a.qkv + t0 * a.ld + static_cast<int64_t>(h) * d;
    const float* k = q + a.hidden;
    const float* v = q + 2 * a.hidden;
    for (int c = 0; c < d; ++c) {
      float* dst = kt + c * Lp;
      for (int64_t j = 0; j < L; ++j) dst[j] = k[j * a.ld + c];
      for (int64_t j = L; j < Lp; ++j) dst[j] = 0.0f;
    }
    const float slope = a.alibi_slopes ? a.alibi_slopes[h] : 0.0f;
    const vf scale = vset(a.score_scale);
    for (int64_t i = 0; i < L; ++i) {
      const float* qi = q + i * a.ld;
      for (int64_t j = 0; j < Lp; j += kVW) {
        vf acc = vzero();
        for (int c = 0; c < d; ++c) acc = vfma(vset(qi[c]), vload(kt + c * Lp + j), acc);
        vstore(sc + j, vmul(acc, scale));
      }
      if (a.alibi_slopes)
        for (int64_t j = 0; j < L; ++j) sc[j] = sc[j] + slope * -static_cast<float>(j > i ? j - i : i - j);
      float mx = sc[0];
      for (int64_t j = 1; j < L; ++j) mx = sc[j] > mx ? sc[j] : mx;
      float sum = 0.0f;
      for (int64_t j = 0; j < L; ++j) {
        sc[j] = std::exp(sc[j] - mx);
        sum += sc[j];
      }
      for (int64_t j = 0; j < L; ++j) sc[j] = sc[j] / sum;
      float* o = a.out + (t0 + i) * a.hidden + static_cast<int64_t>(h) * d;
      int c = 0;
      for (; c + kVW <= d; c += kVW) {
        vf acc = vzero();
        for (int64_t j = 0; j < L; ++j) acc = vfma(vset(sc[j]), vload(v + j * a.ld + c), acc);
        vstore(o + c, acc);
      }
      for (; c < d; ++c) {
        float acc = 0.0f;
        for (int64_t j = 0; j < L; ++j) acc = scalar_fma(sc[j], v[j * a.ld + c], acc);
        o[c] = acc;
      }
    }
  });
}

// Stored weights to FP32 (Kernels::to_f32). The *_body functions convert a prefix of the n values
// with vector instructions and return its length. fp16 -> fp32 and bf16 -> fp32 are exact, so only
// NaNs could differ: vcvtph2ps quiets a signalling NaN, the scalar conversion keeps its bits, so a
// group of halves holding any Inf/NaN (exponent all ones) goes to the scalar conversion.
#if defined(VN_ISA_AVX512)
int64_t f16_body(const unsigned char* p, float* dst, int64_t n) {
  const __m256i expo = _mm256_set1_epi16(0x7c00);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * i));
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_and_si256(h, expo), expo)) != 0)
      vn::convert_to_f32(VN_F16, p + 2 * i, dst + i, 16);
    else
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
  }
  return i;
}
int64_t bf16_body(const unsigned char* p, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * i));
    _mm512_storeu_si512(dst + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return i;
}
#elif defined(VN_ISA_AVX2)
// F16C is not part of this path's requirements (AVX2 + FMA): isa_avx2.cpp uses this conversion
// only where the CPU reports F16C, else to_f32_no_f16c.
__attribute__((target("f16c"))) int64_t f16_body(const unsigned char* p, float* dst, int64_t n) {
  const __m128i expo = _mm_set1_epi16(0x7c00);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
    if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, expo), expo)) != 0)
      vn::convert_to_f32(VN_F16, p + 2 * i, dst + i, 8);
    else
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  return i;
}
int64_t bf16_body(const unsigned char* p, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  return i;
}
#else
int64_t f16_body(const unsigned char*, float*, int64_t) { return 0; }
int64_t bf16_body(const unsigned char* p, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__SSE2__)
  // Each bf16 as the high half of a 32-bit lane.
  const __m128i zero = _mm_setzero_si128();
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_unpacklo_epi16(zero, h));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 4), _mm_unpackhi_epi16(zero, h));
  }
#endif
  (void)p;
  (void)dst;
  (void)n;
  return i;
}
#endif

void to_f32(int32_t dtype, const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  int64_t i = 0;
  if (dtype == VN_F16) i = f16_body(p, dst, n);
  if (dtype == VN_BF16) i = bf16_body(p, dst, n);
  if (i < n) vn::convert_to_f32(dtype, p + i * (dtype == VN_F32 ? 4 : 2), dst + i, n - i);
}

#if defined(VN_ISA_AVX2)
void to_f32_no_f16c(int32_t dtype, const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  const int64_t i = dtype == VN_BF16 ? bf16_body(p, dst, n) : 0;
  if (i < n) vn::convert_to_f32(dtype, p + i * (dtype == VN_F32 ? 4 : 2), dst + i, n - i);
}
#endif

void gelu(float* x, int64_t n) { gelu_row(x, n); }

void erf_n(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kVW <= n; i += kVW) vstore(y + i, verf(vload(x + i)));
  if (i < n) {
    alignas(64) float t[kVW] = {};
    for (int64_t j = i; j < n; ++j) t[j - i] = x[j];
    vstore(t, verf(vload(t)));
    for (int64_t j = i; j < n; ++j) y[j] = t[j - i];
  }
}

}  // namespace
}  // namespace vn::cpu::VN_ISA_NS
