// Exact (erf) GELU over the FFN activations, FP16 in and out, FP32 arithmetic: in place after
// ESM-2's first FFN GEMM, and DNABERT's gated form GELU(gate) * linear.
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void gelu_kernel(__half* __restrict__ x, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * 8;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 8; i < n; i += stride) {
    if (i + 8 <= n) {
      uint4 v = *reinterpret_cast<uint4*>(x + i);
      __half2* h = reinterpret_cast<__half2*>(&v);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h[e]);
        h[e] = __floats2half2_rn(gelu_erf(f.x), gelu_erf(f.y));
      }
      *reinterpret_cast<uint4*>(x + i) = v;
    } else {
      for (int64_t j = i; j < n; ++j) x[j] = __float2half_rn(gelu_erf(__half2float(x[j])));
    }
  }
}

// One thread per 8 columns of a row (inter % 8 == 0).
__global__ void gated_gelu_kernel(__half* __restrict__ u, int64_t rows, int inter) {
  const int chunks = inter / 8;
  const int64_t total = rows * chunks;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / chunks;
    const int c = static_cast<int>(idx % chunks) * 8;
    __half* gate = u + r * 2 * inter + c;
    uint4 gv = *reinterpret_cast<const uint4*>(gate);
    const uint4 lv = *reinterpret_cast<const uint4*>(gate + inter);
    __half2* g = reinterpret_cast<__half2*>(&gv);
    const __half2* l = reinterpret_cast<const __half2*>(&lv);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 a = __half22float2(g[e]), b = __half22float2(l[e]);
      g[e] = __floats2half2_rn(gelu_erf(a.x) * b.x, gelu_erf(a.y) * b.y);
    }
    *reinterpret_cast<uint4*>(gate) = gv;
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
  gelu_kernel<<<grid_for((n + 7) / 8, kThreads, 1 << 16), kThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t gated_gelu(__half* u, int64_t rows, int inter, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (inter % 8 == 0)
    gated_gelu_kernel<<<grid_for(rows * (inter / 8), kThreads, 1 << 16), kThreads, 0, stream>>>(u, rows, inter);
  else
    gated_gelu_scalar_kernel<<<grid_for(rows * inter, kThreads, 1 << 16), kThreads, 0, stream>>>(u, rows, inter);
  return cudaGetLastError();
}

}  // namespace vn::cuda
