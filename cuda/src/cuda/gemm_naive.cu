// A plain tiled GEMM with FP32 accumulation, for isolating cuBLASLt when debugging
// (VIRNUC_CUDA_NAIVE_GEMM=1): y = x w^T (+ bias) (+ y).
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kTile = 16;

template <typename TIn>
__device__ __forceinline__ float to_f(TIn v);
template <>
__device__ __forceinline__ float to_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }

template <typename TIn, typename TOut>
__global__ void gemm_naive_kernel(const TIn* __restrict__ x, int64_t ldx, const TIn* __restrict__ w,
                                  const TOut* __restrict__ bias, TOut* y, int64_t ldy, int64_t m, int64_t n, int64_t k,
                                  bool accumulate) {
  __shared__ float xs[kTile][kTile + 1], ws[kTile][kTile + 1];
  const int64_t row = static_cast<int64_t>(blockIdx.y) * kTile + threadIdx.y;  // of x / y
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kTile + threadIdx.x;  // of y (row of w)
  const int64_t wrow = static_cast<int64_t>(blockIdx.x) * kTile + threadIdx.y;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < k; k0 += kTile) {
    const int64_t kc = k0 + threadIdx.x;
    xs[threadIdx.y][threadIdx.x] = row < m && kc < k ? to_f<TIn>(x[row * ldx + kc]) : 0.0f;
    ws[threadIdx.y][threadIdx.x] = wrow < n && kc < k ? to_f<TIn>(w[wrow * k + kc]) : 0.0f;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kTile; ++i) acc += xs[threadIdx.y][i] * ws[threadIdx.x][i];
    __syncthreads();
  }
  if (row < m && col < n) {
    float v = acc;
    if (bias) v += to_f<TOut>(bias[col]);
    if constexpr (sizeof(TOut) == 4) {
      if (accumulate) v += y[row * ldy + col];
      y[row * ldy + col] = v;
    } else {
      y[row * ldy + col] = __float2half_rn(v);
    }
  }
}

template <typename TIn, typename TOut>
cudaError_t launch(const void* x, int64_t ldx, const void* w, const void* bias, void* y, int64_t ldy, int64_t m,
                   int64_t n, int64_t k, bool accumulate, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>((n + kTile - 1) / kTile), static_cast<unsigned>((m + kTile - 1) / kTile));
  gemm_naive_kernel<TIn, TOut><<<grid, dim3(kTile, kTile), 0, stream>>>(
      static_cast<const TIn*>(x), ldx, static_cast<const TIn*>(w), static_cast<const TOut*>(bias),
      static_cast<TOut*>(y), ldy, m, n, k, accumulate);
  return cudaGetLastError();
}

}  // namespace

cudaError_t gemm_naive(const void* x, int64_t ldx, const void* w, const void* bias, void* y, int64_t ldy, int64_t m,
                       int64_t n, int64_t k, bool in_f16, bool out_f16, bool accumulate, cudaStream_t stream) {
  if (m <= 0) return cudaSuccess;
  if (in_f16 && out_f16) return launch<__half, __half>(x, ldx, w, bias, y, ldy, m, n, k, accumulate, stream);
  if (in_f16) return launch<__half, float>(x, ldx, w, bias, y, ldy, m, n, k, accumulate, stream);
  if (!out_f16) return launch<float, float>(x, ldx, w, bias, y, ldy, m, n, k, accumulate, stream);
  return cudaErrorInvalidValue;
}

}  // namespace vn::cuda
