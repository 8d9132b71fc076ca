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

// Outlier channels: hidden channels whose LayerNorm gain (max |gain| over every LayerNorm that
// feeds a GEMM) is above kFp8OutlierRatio x the median channel's, the kFp8MaxOutliers largest. A
// GEMM reading LayerNorm output carries each twice more in an extension of K (fp8_ext_columns):
// activations [xh | xl | 0], weights [wl | wh | 0] (h = E4M3 of the scaled value, l = E4M3 of what
// h left), so that xh wh (in the main part) + xh wl + xl wh leaves only xl wl of the rounding error
// on the channels that dominate the product.
constexpr float kFp8OutlierRatio = 8.0f;
constexpr int kFp8MaxOutliers = 16;
// Extension columns after `hidden`: at least 2n, the row length rounded up to a multiple of 128
// (measured on the H200: a K of 2,576 made cuBLASLt's E4M3 GEMMs 35% slower than 2,560).
VN_HD int fp8_ext_columns(int n_outliers, int64_t hidden) {
  return n_outliers > 0 ? static_cast<int>((hidden + 2 * n_outliers + 127) / 128 * 128 - hidden) : 0;
}

// Host reference conversions (the device uses the hardware cvt.rn.satfinite.e4m3x2.f32).
uint8_t fp8_e4m3_from_float(float x);
float fp8_e4m3_to_float(uint8_t q);
// rows x cols row-major FP32 -> q (same layout) and one scale per row.
void fp8_quantize_rows(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales);
// As fp8_quantize_rows, rows of cols + fp8_ext_columns(n) bytes: the extension for the channels
// `index` ([lo | hi | 0] for weights, [hi | lo | 0] for activations).
void fp8_quantize_rows_ext(const float* x, int64_t rows, int64_t cols, const int32_t* index, int n, bool weights,
                           uint8_t* q, float* scales);
// gains: n_vectors x hidden LayerNorm gains. Writes the outlier channels (ascending) to out (room
// for kFp8MaxOutliers) and returns how many.
int fp8_outlier_channels(const float* const* gains, int64_t n_vectors, int64_t hidden, int32_t* out);

}  // namespace vn
