// Load-time conversion of FP32 weights to the device's FP16 copies.
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

__global__ void f32_to_f16_kernel(const float* __restrict__ src, __half* __restrict__ dst, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2half_rn(src[i]);
}

}  // namespace

cudaError_t f32_to_f16(const float* src, __half* dst, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  f32_to_f16_kernel<<<grid_for(n, 256, 1 << 16), 256, 0, stream>>>(src, dst, n);
  return cudaGetLastError();
}

}  // namespace vn::cuda
