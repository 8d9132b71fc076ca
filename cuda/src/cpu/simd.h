// The few SIMD operations of the CPU kernels, for one instruction set per translation unit.
// Included only by the kernel units (isa_*.cpp through kernels_impl.h), each compiled with its
// own target flags and defining VN_ISA_NS (the namespace that keeps the units apart) and one of
// VN_ISA_AVX512, VN_ISA_AVX2, VN_ISA_PORTABLE. Every other file is compiled for the baseline
// architecture and reaches these kernels through the table in isa.h.
//
// On the AVX-512 and AVX2 paths every multiply-add is a fused FMA, so the two paths round
// identically. The portable path on x86-64 (SSE2: no FMA in the baseline) multiplies and adds
// separately, so its results differ in the last bits; elsewhere (aarch64: FMA is baseline) it
// uses std::fma.
#pragma once

#ifndef VN_ISA_NS
#error "simd.h is internal to the CPU kernel units (isa_*.cpp)"
#endif

#include <cmath>
#include <cstdint>

#if defined(VN_ISA_AVX512)
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "the AVX-512 unit must be compiled with -mavx512f -mfma"
#endif
#include <immintrin.h>
#elif defined(VN_ISA_AVX2)
#if !defined(__AVX2__) || !defined(__FMA__)
#error "the AVX2 unit must be compiled with -mavx2 -mfma"
#endif
#include <immintrin.h>
#elif defined(VN_ISA_PORTABLE)
// Compiled for the baseline unless the builder adds target flags for every file (CXXFLAGS with
// -march=...): then the whole library targets that CPU, by the builder's choice.
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#else
#error "define one of VN_ISA_AVX512, VN_ISA_AVX2, VN_ISA_PORTABLE"
#endif

namespace vn::cpu::VN_ISA_NS {
namespace {

#if defined(VN_ISA_AVX512)
constexpr int kVW = 16;
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
#elif defined(VN_ISA_AVX2)
constexpr int kVW = 8;
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
#elif defined(__SSE2__)
constexpr int kVW = 4;
using vf = __m128;
inline vf vzero() { return _mm_setzero_ps(); }
inline vf vset(float x) { return _mm_set1_ps(x); }
inline vf vload(const float* p) { return _mm_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }  // no FMA in SSE2: two roundings
inline vf vadd(vf a, vf b) { return _mm_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm_min_ps(a, b); }
#else
constexpr int kVW = 4;
struct vf {
  float v[4];
};
inline vf vzero() { return vf{{0.f, 0.f, 0.f, 0.f}}; }
inline vf vset(float x) { return vf{{x, x, x, x}}; }
inline vf vload(const float* p) { return vf{{p[0], p[1], p[2], p[3]}}; }
inline void vstore(float* p, vf a) {
  for (int i = 0; i < 4; ++i) p[i] = a.v[i];
}
#define VN_LANEWISE(name, expr)                \
  inline vf name(vf a, vf b) {                 \
    vf r;                                      \
    for (int i = 0; i < 4; ++i) r.v[i] = expr; \
    return r;                                  \
  }
VN_LANEWISE(vadd, a.v[i] + b.v[i])
VN_LANEWISE(vsub, a.v[i] - b.v[i])
VN_LANEWISE(vmul, a.v[i] * b.v[i])
VN_LANEWISE(vdiv, a.v[i] / b.v[i])
VN_LANEWISE(vmax, a.v[i] > b.v[i] ? a.v[i] : b.v[i])  // as maxps: b when either is NaN
VN_LANEWISE(vmin, a.v[i] < b.v[i] ? a.v[i] : b.v[i])
#undef VN_LANEWISE
inline vf vfma(vf a, vf b, vf c) {
  vf r;
  for (int i = 0; i < 4; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return r;
}
#endif

}  // namespace
}  // namespace vn::cpu::VN_ISA_NS
