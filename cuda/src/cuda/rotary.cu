// ESM-2 rotary angles for one batch: (cos, sin) of position * inv_freq in FP32, computed once per
// batch (and per distinct inv_freq tensor) instead of in every attention block.
#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

__global__ void rotary_table_kernel(float2* __restrict__ table, const float* __restrict__ inv_freq, int half,
                                    int max_len) {
  const int64_t n = static_cast<int64_t>(max_len) * half;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int pos = static_cast<int>(idx / half), i = static_cast<int>(idx % half);
    float s, c;
    sincosf(static_cast<float>(pos) * inv_freq[i], &s, &c);
    table[idx] = make_float2(c, s);
  }
}

}  // namespace

cudaError_t rotary_table(float2* table, const float* inv_freq, int half, int max_len, cudaStream_t stream) {
  if (max_len <= 0 || half <= 0) return cudaSuccess;
  const int64_t n = static_cast<int64_t>(max_len) * half;
  rotary_table_kernel<<<grid_for(n, 256, 4096), 256, 0, stream>>>(table, inv_freq, half, max_len);
  return cudaGetLastError();
}

}  // namespace vn::cuda
