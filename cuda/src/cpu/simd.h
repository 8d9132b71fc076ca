// The few SIMD operations the CPU backend needs, for AVX-512, AVX2+FMA, or plain C++.
// Every multiply-add is a fused FMA on every path, so a value's rounding never depends on
// which path (or which tile of a GEMM) computed it.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace vn::cpu {

#if defined(__AVX512F__)
constexpr int kVW = 16;
constexpr const char* kSimdName = "AVX-512";
using vf = __m512;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kVW = 8;
constexpr const char* kSimdName = "AVX2";
using vf = __m256;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset(float x) { return _mm256_set1_ps(x); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
#else
constexpr int kVW = 4;
constexpr const char* kSimdName = "generic";
struct vf {
  float v[4];
};
inline vf vzero() { return vf{{0.f, 0.f, 0.f, 0.f}}; }
inline vf vset(float x) { return vf{{x, x, x, x}}; }
inline vf vload(const float* p) { return vf{{p[0], p[1], p[2], p[3]}}; }
inline void vstore(float* p, vf a) {
  for (int i = 0; i < 4; ++i) p[i] = a.v[i];
}
#define VN_LANEWISE(name, expr)            \
  inline vf name(vf a, vf b) {             \
    vf r;                                  \
    for (int i = 0; i < 4; ++i) r.v[i] = expr; \
    return r;                              \
  }
VN_LANEWISE(vadd, a.v[i] + b.v[i])
VN_LANEWISE(vsub, a.v[i] - b.v[i])
VN_LANEWISE(vmul, a.v[i] * b.v[i])
VN_LANEWISE(vdiv, a.v[i] / b.v[i])
VN_LANEWISE(vmax, a.v[i] > b.v[i] ? a.v[i] : b.v[i])
VN_LANEWISE(vmin, a.v[i] < b.v[i] ? a.v[i] : b.v[i])
#undef VN_LANEWISE
inline vf vfma(vf a, vf b, vf c) {
  vf r;
  for (int i = 0; i < 4; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return r;
}
#endif

}  // namespace vn::cpu
