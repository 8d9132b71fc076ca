// Host reference of the FP8 (E4M3) quantization in fp8.h.
#include "common/fp8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend.h"
#include "virnuc.h"

namespace vn {

uint8_t fp8_e4m3_from_float(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  if (std::isnan(x)) return static_cast<uint8_t>(sign | 0x7f);
  const float a = std::fabs(x);
  if (a >= kFp8Max) return static_cast<uint8_t>(sign | 0x7e);  // saturate (Inf too)
  // Below 2^-6 the format is subnormal: multiples of 2^-9.
  if (a < 0.015625f) {
    const float m = std::nearbyint(a * 512.0f);  // exact scaling; ties to even (default rounding)
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(m));  // m == 8 is 2^-6, the first normal
  }
  int e = 0;
  const float f = std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  // a = (1 + man/8) * 2^(e-1): man = (2f - 1) * 8, exact before rounding.
  float man = std::nearbyint((2.0f * f - 1.0f) * 8.0f);
  int exp = e - 1 + 7;
  if (man >= 8.0f) {
    man = 0.0f;
    ++exp;
  }
  const uint8_t q = static_cast<uint8_t>((exp << 3) | static_cast<int>(man));
  return static_cast<uint8_t>(sign | (q > 0x7e ? 0x7e : q));
}

float fp8_e4m3_to_float(uint8_t q) {
  const float sign = (q & 0x80) ? -1.0f : 1.0f;
  const int exp = (q >> 3) & 0xf, man = q & 0x7;
  if (exp == 0xf && man == 0x7) return std::nanf("");
  if (exp == 0) return sign * std::ldexp(static_cast<float>(man), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
}

namespace {

// One row: q = e4m3(x * inv) and its scale; returns inv.
float quantize_row(const float* row, int64_t cols, uint8_t* q, float* scale) {
  float amax = 0.0f;
  for (int64_t c = 0; c < cols; ++c) amax = std::fmax(amax, std::fabs(row[c]));  // NaN ignored, as fmaxf
  const float inv = fp8_inv_scale(amax);
  for (int64_t c = 0; c < cols; ++c) q[c] = fp8_e4m3_from_float(row[c] * inv);
  *scale = fp8_scale(amax);
  return inv;
}

}  // namespace

void fp8_quantize_rows(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales) {
  for (int64_t r = 0; r < rows; ++r) quantize_row(x + r * cols, cols, q + r * cols, scales + r);
}

void fp8_quantize_rows_ext(const float* x, int64_t rows, int64_t cols, const int32_t* index, int n, bool weights,
                           uint8_t* q, float* scales) {
  const int ext = fp8_ext_columns(n, cols);
  const int64_t ld = cols + ext;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    const float inv = quantize_row(row, cols, q + r * ld, scales + r);
    uint8_t* e = q + r * ld + cols;
    std::memset(e, 0, static_cast<size_t>(ext));
    for (int j = 0; j < n; ++j) {
      const float v = row[index[j]] * inv;
      const uint8_t hi = fp8_e4m3_from_float(v);
      const uint8_t lo = fp8_e4m3_from_float(v - fp8_e4m3_to_float(hi));
      e[j] = weights ? lo : hi;
      e[n + j] = weights ? hi : lo;
    }
  }
}

int fp8_outlier_channels(const float* const* gains, int64_t n_vectors, int64_t hidden, int32_t* out) {
  if (n_vectors <= 0 || hidden <= 0) return 0;
  std::vector<float> g(static_cast<size_t>(hidden), 0.0f);
  for (int64_t v = 0; v < n_vectors; ++v)
    for (int64_t j = 0; j < hidden; ++j) g[j] = std::fmax(g[j], std::fabs(gains[v][j]));
  std::vector<float> sorted = g;
  std::nth_element(sorted.begin(), sorted.begin() + hidden / 2, sorted.end());
  const float limit = kFp8OutlierRatio * sorted[hidden / 2];
  std::vector<int32_t> idx;
  for (int64_t j = 0; j < hidden; ++j)
    if (g[j] > limit) idx.push_back(static_cast<int32_t>(j));
  // The largest first (ties: lower channel), then ascending channel order.
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return g[a] > g[b]; });
  if (idx.size() > static_cast<size_t>(kFp8MaxOutliers)) idx.resize(kFp8MaxOutliers);
  std::sort(idx.begin(), idx.end());
  std::copy(idx.begin(), idx.end(), out);
  return static_cast<int>(idx.size());
}

}  // namespace vn

extern "C" {

VN_API vn_status vn_fp8_quantize_rows(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales) {
  if (rows < 0 || cols < 0) return vn::fail(VN_ERR_INVALID, "vn_fp8_quantize_rows: negative size");
  if (rows > 0 && cols > 0 && (!x || !q || !scales))
    return vn::fail(VN_ERR_INVALID, "vn_fp8_quantize_rows: null pointer");
  if (rows > 0 && cols == 0) {
    if (!scales) return vn::fail(VN_ERR_INVALID, "vn_fp8_quantize_rows: null scales");
    for (int64_t r = 0; r < rows; ++r) scales[r] = 1.0f;
    return VN_OK;
  }
  vn::fp8_quantize_rows(x, rows, cols, q, scales);
  return VN_OK;
}

VN_API vn_status vn_fp8_dequantize(const uint8_t* q, int64_t n, float* out) {
  if (n < 0) return vn::fail(VN_ERR_INVALID, "vn_fp8_dequantize: negative size");
  if (n > 0 && (!q || !out)) return vn::fail(VN_ERR_INVALID, "vn_fp8_dequantize: null pointer");
  for (int64_t i = 0; i < n; ++i) out[i] = vn::fp8_e4m3_to_float(q[i]);
  return VN_OK;
}

VN_API vn_status vn_fp8_outlier_channels(const float* gains, int64_t n_vectors, int64_t hidden, int32_t* out,
                                         int32_t* n_out) {
  if (n_vectors < 0 || hidden < 0) return vn::fail(VN_ERR_INVALID, "vn_fp8_outlier_channels: negative size");
  if (!out || !n_out || (n_vectors > 0 && hidden > 0 && !gains))
    return vn::fail(VN_ERR_INVALID, "vn_fp8_outlier_channels: null pointer");
  std::vector<const float*> rows(static_cast<size_t>(n_vectors));
  for (int64_t v = 0; v < n_vectors; ++v) rows[v] = gains + v * hidden;
  *n_out = vn::fp8_outlier_channels(rows.data(), n_vectors, hidden, out);
  return VN_OK;
}

VN_API vn_status vn_fp8_quantize_rows_ext(const float* x, int64_t rows, int64_t cols, const int32_t* channels,
                                          int32_t n, int32_t weights, uint8_t* q, float* scales) {
  if (rows < 0 || cols <= 0 || n < 0 || n > vn::kFp8MaxOutliers)
    return vn::fail(VN_ERR_INVALID, "vn_fp8_quantize_rows_ext: bad size");
  if (rows > 0 && (!x || !q || !scales || (n > 0 && !channels)))
    return vn::fail(VN_ERR_INVALID, "vn_fp8_quantize_rows_ext: null pointer");
  for (int32_t j = 0; j < n; ++j)
    if (channels[j] < 0 || channels[j] >= cols) return vn::fail(VN_ERR_INVALID, "vn_fp8_quantize_rows_ext: bad channel");
  vn::fp8_quantize_rows_ext(x, rows, cols, channels, n, weights != 0, q, scales);
  return VN_OK;
}

}  // extern "C"
