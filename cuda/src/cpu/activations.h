// Elementwise functions with one vector implementation per kernel unit, so that a value is
// computed identically wherever it sits in a buffer. Internal to the kernel units (see simd.h).
#pragma once

#include <cmath>

#include "cpu/simd.h"

namespace vn::cpu::VN_ISA_NS {
namespace {

// erf(x) as x * P(x^2) / Q(x^2) on [-4, 4] (|erf| rounds to 1 beyond): a rational fit made for
// this library, within 1e-8 of erf in exact arithmetic and about 4e-7 in fp32, far cheaper than
// libm's scalar erff on every FFN activation.
inline vf verf(vf x) {
  x = vmin(vmax(x, vset(-4.0f)), vset(4.0f));
  const vf t = vmul(x, x);
  vf p = vset(-1.3666466e-08f);
  p = vfma(p, t, vset(4.7804792e-06f));
  p = vfma(p, t, vset(3.8268996e-04f));
  p = vfma(p, t, vset(3.8395210e-03f));
  p = vfma(p, t, vset(5.4332539e-02f));
  p = vfma(p, t, vset(1.8471031e-01f));
  p = vfma(p, t, vset(1.1283792e+00f));
  vf q = vset(6.4008702e-05f);
  q = vfma(q, t, vset(1.3095743e-03f));
  q = vfma(q, t, vset(1.5453491e-02f));
  q = vfma(q, t, vset(1.1382625e-01f));
  q = vfma(q, t, vset(4.9702880e-01f));
  q = vfma(q, t, vset(1.0f));
  return vmin(vmax(vdiv(vmul(x, p), q), vset(-1.0f)), vset(1.0f));
}

// GELU with erf (not the tanh approximation): x/2 * (1 + erf(x / sqrt(2))).
inline vf vgelu(vf x) {
  const vf e = verf(vmul(x, vset(0.70710678118654752440f)));
  return vmul(vmul(vset(0.5f), x), vadd(vset(1.0f), e));
}

// gelu over a row of n values (n a multiple of kVW handled by vectors, the tail padded).
inline void gelu_row(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + kVW <= n; i += kVW) vstore(x + i, vgelu(vload(x + i)));
  if (i < n) {
    alignas(64) float t[kVW] = {};
    for (int64_t j = i; j < n; ++j) t[j - i] = x[j];
    vstore(t, vgelu(vload(t)));
    for (int64_t j = i; j < n; ++j) x[j] = t[j - i];
  }
}

}  // namespace
}  // namespace vn::cpu::VN_ISA_NS
