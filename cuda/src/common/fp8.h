// FP8 (E4M3) quantization rules shared by the CUDA backend's --precision fp8 (device) and the
// host reference (fp8.cpp, exported as vn_fp8_quantize_rows for tests).
//
// One scale per row (a weight's output channel, an activation's token): amax = max |x| over the
// row; stored q = e4m3(x * (448 / amax)) rounded to nearest even and saturated to +-448 (NaN stays
// NaN); the value is q * scale with scale = amax / 448. An all-zero row has scale 1.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define VN_HD __host__ __device__ __forceinline__
#else
#define VN_HD inline
#endif

namespace vn {

constexpr float kFp8Max = 448.0f;

// Multiplier applied before rounding, and the scale stored beside the row.
VN_HD float fp8_inv_scale(float amax) { return amax > 0.0f ? kFp8Max / amax : 1.0f; }
VN_HD float fp8_scale(float amax) { return amax > 0.0f ? amax / kFp8Max : 1.0f; }

// Host reference conversions (the device uses the hardware cvt.rn.satfinite.e4m3x2.f32).
uint8_t fp8_e4m3_from_float(float x);
float fp8_e4m3_to_float(uint8_t q);
// rows x cols row-major FP32 -> q (same layout) and one scale per row.
void fp8_quantize_rows(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales);

}  // namespace vn
