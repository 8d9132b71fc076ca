#include "cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/isa.h"

namespace vn::cpu {

namespace {
constexpr int64_t kRowsPerTask = 16;
}

void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t h, const float* w, const float* b,
                float eps) {
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](int64_t t) {
    const int64_t r1 = std::min(rows, (t + 1) * kRowsPerTask);
    for (int64_t r = t * kRowsPerTask; r < r1; ++r) {
      const float* xr = x + r * h;
      float* yr = y + r * h;
      // Statistics in double: two passes, no cancellation.
      double sum = 0.0;
      for (int64_t j = 0; j < h; ++j) sum += xr[j];
      const double mean = sum / static_cast<double>(h);
      double sq = 0.0;
      for (int64_t j = 0; j < h; ++j) {
        const double d = xr[j] - mean;
        sq += d * d;
      }
      const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(h) + static_cast<double>(eps));
      const float fmean = static_cast<float>(mean);
      const float frstd = static_cast<float>(rstd);
      for (int64_t j = 0; j < h; ++j) yr[j] = ((xr[j] - fmean) * frstd) * w[j] + b[j];
    }
  });
}

void rotary_qk(ThreadPool& pool, float* qkv, int64_t ld, int64_t hidden, const int32_t* cu, int32_t n_seqs,
               int n_heads, int head_dim, const float* inv_freq, float q_scale) {
  const int half = head_dim / 2;
  int64_t max_len = 0;
  for (int32_t s = 0; s < n_seqs; ++s) max_len = std::max<int64_t>(max_len, cu[s + 1] - cu[s]);
  std::vector<float> cos_t(static_cast<size_t>(max_len * half)), sin_t(cos_t.size());
  for (int64_t p = 0; p < max_len; ++p)
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];
      cos_t[p * half + i] = std::cos(angle);
      sin_t[p * half + i] = std::sin(angle);
    }
  pool.parallel_for(n_seqs, [&](int64_t s) {
    for (int64_t t = cu[s]; t < cu[s + 1]; ++t) {
      const int64_t pos = t - cu[s];
      const float* c = cos_t.data() + pos * half;
      const float* sn = sin_t.data() + pos * half;
      float* row = qkv + t * ld;
      for (int which = 0; which < 2; ++which) {
        float* base = row + which * hidden;
        const float scale = which == 0 ? q_scale : 1.0f;
        for (int hd = 0; hd < n_heads; ++hd) {
          float* x = base + static_cast<int64_t>(hd) * head_dim;
          for (int i = 0; i < half; ++i) {
            const float x1 = which == 0 ? x[i] * scale : x[i];
            const float x2 = which == 0 ? x[i + half] * scale : x[i + half];
            // x*cos + rotate_half(x)*sin, rotate_half(x) = (-x2, x1)
            x[i] = x1 * c[i] + (-x2) * sn[i];
            x[i + half] = x2 * c[i] + x1 * sn[i];
          }
        }
      }
    }
  });
}

void attention(ThreadPool& pool, const AttentionArgs& a, const int32_t* cu, int32_t n_seqs) {
  kernels().attention(pool, a, cu, n_seqs);
}

void mean_pool(ThreadPool& pool, const float* x, int64_t h, const int32_t* cu, int32_t n_seqs, int skip_front,
               int skip_back, int64_t max_rows, float* out) {
  pool.parallel_for(n_seqs, [&](int64_t s) {
    const int64_t r0 = cu[s] + skip_front;
    int64_t r1 = cu[s + 1] - skip_back;
    if (max_rows > 0) r1 = std::min(r1, r0 + max_rows);
    const int64_t n = std::max<int64_t>(0, r1 - r0);
    float* o = out + s * h;
    thread_local std::vector<double> acc;
    acc.assign(static_cast<size_t>(h), 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * h;
      for (int64_t j = 0; j < h; ++j) acc[j] += xr[j];
    }
    for (int64_t j = 0; j < h; ++j) o[j] = static_cast<float>(acc[j] / static_cast<double>(n));
  });
}

}  // namespace vn::cpu
