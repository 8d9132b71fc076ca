// The VirNucPro MLP head after its first Linear (a cuBLASLt GEMM): BatchNorm (eval) + ReLU,
// the output Linear, softmax, and the NaN/Inf check, one warp per row, FP32.
#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kWarps = 4;

__global__ void __launch_bounds__(32 * kWarps)
    mlp_head_kernel(const float* __restrict__ h, int64_t rows, int units, const float* __restrict__ scale,
                    const float* __restrict__ shift, const float* __restrict__ w2, const float* __restrict__ b2,
                    int classes, float* __restrict__ out, int32_t* bad_row) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const float* hr = h + row * units;
  float logit = 0.0f;  // lane c holds class c
  for (int c = 0; c < classes; ++c) {
    float acc = 0.0f;
    for (int u = lane; u < units; u += 32) {
      const float z = hr[u] * scale[u] + shift[u];
      const float v = z > 0.0f || z != z ? z : 0.0f;  // ReLU that keeps NaN, as torch's does
      acc += v * w2[static_cast<int64_t>(c) * units + u];
    }
    acc = warp_sum(acc) + b2[c];
    if (lane == c) logit = acc;
  }
  const bool active = lane < classes;
  const float mx = warp_max(active ? logit : -INFINITY);
  const float e = active ? expf(logit - mx) : 0.0f;
  const float sum = warp_sum(e);
  const float prob = e / sum;
  if (active) out[row * classes + lane] = prob;
  const bool bad = active && !isfinite(prob);
  if (__any_sync(0xffffffffu, bad) && lane == 0) atomicMin(bad_row, static_cast<int32_t>(row));
}

}  // namespace

cudaError_t mlp_head(const float* h, int64_t rows, int units, const float* scale, const float* shift, const float* w2,
                     const float* b2, int classes, float* out, int32_t* bad_row, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (classes < 1 || classes > 32) return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
  mlp_head_kernel<<<blocks, 32 * kWarps, 0, stream>>>(h, rows, units, scale, shift, w2, b2, classes, out, bad_row);
  return cudaGetLastError();
}

}  // namespace vn::cuda
