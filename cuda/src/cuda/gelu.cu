// Exact (erf) GELU over the FFN activations, FP16 in and out, FP32 arithmetic: in place after
// ESM-2's first FFN GEMM, and DNABERT's gated form GELU(gate) * linear.
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 16;  // two 16-byte vectors, both loads issued before any math

__device__ __forceinline__ uint4 gelu8(uint4 v) {
  __half2* h = reinterpret_cast<__half2*>(&v);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 f = __half22float2(h[e]);
    h[e] = __floats2half2_rn(gelu_erf(f.x), gelu_erf(f.y));
  }
  return v;
}

__global__ void __launch_bounds__(kThreads) gelu_kernel(__half* __restrict__ x, int64_t n) {
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * kPerThread;
  if (i + kPerThread <= n) {
    uint4* p = reinterpret_cast<uint4*>(x + i);
    const uint4 a = p[0], b = p[1];
    p[0] = gelu8(a);
    p[1] = gelu8(b);
  } else {
    for (int64_t j = i; j < n; ++j) x[j] = __float2half_rn(gelu_erf(__half2float(x[j])));
  }
}

// One thread per 16 columns of a row (inter % 16 == 0): both gate and both linear vectors in flight.
__global__ void __launch_bounds__(kThreads) gated_gelu_kernel(__half* __restrict__ u, int64_t rows, int inter) {
  const int chunks = inter / kPerThread;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * chunks) return;
  const int64_t r = idx / chunks;
  const int c = static_cast<int>(idx % chunks) * kPerThread;
  uint4* gate = reinterpret_cast<uint4*>(u + r * 2 * inter + c);
  const uint4* lin = reinterpret_cast<const uint4*>(u + r * 2 * inter + inter + c);
  uint4 g[2] = {gate[0], gate[1]};
  const uint4 l[2] = {lin[0], lin[1]};
#pragma unroll
  for (int v = 0; v < 2; ++v) {
    __half2* gh = reinterpret_cast<__half2*>(&g[v]);
    const __half2* lh = reinterpret_cast<const __half2*>(&l[v]);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 a = __half22float2(gh[e]), b = __half22float2(lh[e]);
      gh[e] = __floats2half2_rn(gelu_erf(a.x) * b.x, gelu_erf(a.y) * b.y);
    }
    gate[v] = g[v];
  }
}

// Any width: one element per thread.
__global__ void gated_gelu_scalar_kernel(__half* __restrict__ u, int64_t rows, int inter) {
  const int64_t total = rows * inter;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / inter;
    const int c = static_cast<int>(idx % inter);
    __half* row = u + r * 2 * inter;
    row[c] = __float2half_rn(gelu_erf(__half2float(row[c])) * __half2float(row[inter + c]));
  }
}

}  // namespace

cudaError_t gelu_inplace(__half* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  gelu_kernel<<<grid_for((n + kPerThread - 1) / kPerThread, kThreads, INT32_MAX), kThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t gated_gelu(__half* u, int64_t rows, int inter, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (inter % kPerThread == 0)
    gated_gelu_kernel<<<grid_for(rows * (inter / kPerThread), kThreads, INT32_MAX), kThreads, 0, stream>>>(u, rows,
                                                                                                         inter);
  else
    gated_gelu_scalar_kernel<<<grid_for(rows * inter, kThreads, 1 << 16), kThreads, 0, stream>>>(u, rows, inter);
  return cudaGetLastError();
}

}  // namespace vn::cuda
