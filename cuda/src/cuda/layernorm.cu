// LayerNorm over FP32 rows: one warp per row, the row held in registers, two-pass FP32
// statistics, one read of x and one write of each requested output (FP32 and/or FP16).
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kRowsPerBlock = 4;  // warps per block

// V float4 per lane: rows up to 128 * V values. hidden % 4 == 0.
template <int V>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    layernorm_kernel(const float* __restrict__ x, float* y32, __half* __restrict__ y16, const float* __restrict__ w,
                     const float* __restrict__ b, int64_t rows, int hidden, float eps,
                     const int32_t* __restrict__ tokens, const float* __restrict__ gather,
                     const float* __restrict__ add) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;
  const float* src = tokens ? gather + static_cast<int64_t>(tokens[row]) * hidden : x + row * hidden;
  float4 v[V];
  load_row<V>(src, add, hidden, lane, v);
  normalize_row<V>(v, w, b, hidden, lane, eps);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < hidden) {
      const float4 o = v[i];
      if (y32) *reinterpret_cast<float4*>(y32 + row * hidden + c) = o;
      if (y16) {
        __half2 lo = __floats2half2_rn(o.x, o.y), hi = __floats2half2_rn(o.z, o.w);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(y16 + row * hidden + c) = packed;
      }
    }
  }
}

template <int V>
cudaError_t launch(const float* x, float* y32, __half* y16, const float* w, const float* b, int64_t rows, int hidden,
                   float eps, cudaStream_t stream, const int32_t* tokens, const float* gather, const float* add) {
  const unsigned blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  layernorm_kernel<V><<<blocks, 32 * kRowsPerBlock, 0, stream>>>(x, y32, y16, w, b, rows, hidden, eps, tokens,
                                                                  gather, add);
  return cudaGetLastError();
}

}  // namespace

cudaError_t layernorm(const float* x, float* y32, __half* y16, const float* w, const float* b, int64_t rows,
                      int hidden, float eps, cudaStream_t stream, const int32_t* tokens, const float* gather,
                      const float* add) {
  if (rows <= 0) return cudaSuccess;
  if (hidden % 4 != 0 || hidden > kMaxLayerNormHidden) return cudaErrorInvalidValue;
  const int need = (hidden + 127) / 128;
#define VN_LN_CASE(V) \
  if (need <= V) return launch<V>(x, y32, y16, w, b, rows, hidden, eps, stream, tokens, gather, add);
  VN_LN_CASE(1)
  VN_LN_CASE(2)
  VN_LN_CASE(4)
  VN_LN_CASE(6)
  VN_LN_CASE(8)
  VN_LN_CASE(10)
  VN_LN_CASE(12)
  VN_LN_CASE(16)
  VN_LN_CASE(20)
  VN_LN_CASE(24)
  VN_LN_CASE(32)
  VN_LN_CASE(40)
  VN_LN_CASE(64)
#undef VN_LN_CASE
  return cudaErrorInvalidValue;
}

}  // namespace vn::cuda
