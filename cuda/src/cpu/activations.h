// Elementwise functions with one vector implementation used everywhere, so that a value is
// computed identically wherever it sits in a buffer.
#pragma once

#include <cmath>

#include "cpu/simd.h"

namespace vn::cpu {

// Exact (erf) GELU: x/2 * (1 + erf(x / sqrt(2))).
inline vf vgelu(vf x) {
  alignas(64) float t[kVW];
  vstore(t, x);
  for (int i = 0; i < kVW; ++i) t[i] = 0.5f * t[i] * (1.0f + std::erf(t[i] * 0.70710678118654752440f));
  return vload(t);
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

}  // namespace vn::cpu
