// Load-time conversion of weights on the device: the stored dtype (f32/f16/bf16, copied as is
// from the checkpoint) to the device's FP16/FP32 copies, or to FP8 E4M3 rows with one scale each.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "common/fp8.h"
#include "cuda/device.cuh"
#include "cuda/kernels.h"
#include "virnuc.h"

namespace vn::cuda {

namespace {

__device__ __forceinline__ float load_as_float(const void* src, int dtype, int64_t i) {
  if (dtype == VN_F16) return __half2float(static_cast<const __half*>(src)[i]);
  if (dtype == VN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(src)[i]);
  return static_cast<const float*>(src)[i];
}

__global__ void convert_kernel(const void* __restrict__ src, int dtype, void* __restrict__ dst, bool dst_f16,
                               int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = load_as_float(src, dtype, i);
    if (dst_f16) static_cast<__half*>(dst)[i] = __float2half_rn(v);
    else static_cast<float*>(dst)[i] = v;
  }
}

constexpr int kQuantThreads = 256;

__device__ __forceinline__ uint8_t to_e4m3(float v) { return __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3); }

// One block per row: amax, then q = e4m3(x * 448 / amax) and the row's scale (fp8.h); then the
// outlier extension [lo | hi | 0] (host reference: fp8_quantize_rows_ext).
__global__ void __launch_bounds__(kQuantThreads)
    quantize_rows_kernel(const void* __restrict__ src, int dtype, int64_t cols, uint8_t* __restrict__ dst, int64_t ld,
                         float* __restrict__ scales, Fp8Ext ext, bool lo) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t base = row * cols;
  uint8_t* out = dst + row * ld;
  float amax = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) amax = fmaxf(amax, fabsf(load_as_float(src, dtype, base + c)));
  amax = block_max(amax, scratch);
  const float inv = fp8_inv_scale(amax);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = load_as_float(src, dtype, base + c) * inv;
    const uint8_t hi = to_e4m3(v);
    out[c] = lo ? to_e4m3(v - e4m3_to_float(hi)) : hi;
  }
  for (int j = threadIdx.x; j < ext.cols; j += blockDim.x) {
    uint8_t b = 0;
    if (j < 2 * ext.n) {
      const float v = load_as_float(src, dtype, base + ext.index[j < ext.n ? j : j - ext.n]) * inv;
      const uint8_t hi = to_e4m3(v);
      b = j < ext.n ? to_e4m3(v - e4m3_to_float(hi)) : hi;
    }
    out[cols + j] = b;
  }
  if (threadIdx.x == 0) scales[row] = fp8_scale(amax);
}

__device__ __forceinline__ uint32_t mix32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return static_cast<uint32_t>(x ^ (x >> 33));
}

__global__ void fill_test_kernel(void* __restrict__ p, int64_t n, int kind, uint32_t seed) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint32_t h = mix32((static_cast<uint64_t>(seed) << 40) ^ static_cast<uint64_t>(i));
    if (kind == 0) static_cast<__half*>(p)[i] = __float2half_rn(static_cast<float>(h & 0xffff) / 32768.0f - 1.0f);
    else if (kind == 1) static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(h & 0xbf);  // exponent <= 7: finite
    else static_cast<float*>(p)[i] = static_cast<float>(h & 0xffff) / 32768.0f - 1.0f;
  }
}

__global__ void count_different_words_kernel(const uint32_t* __restrict__ a, const uint32_t* __restrict__ b,
                                             int64_t n, unsigned long long* __restrict__ count) {
  unsigned long long c = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    c += a[i] != b[i];
  if (c) atomicAdd(count, c);
}

}  // namespace

cudaError_t f32_to_f16(const float* src, __half* dst, int64_t n, cudaStream_t stream) {
  return convert_weights(src, VN_F32, dst, true, n, stream);
}

cudaError_t convert_weights(const void* src, int src_dtype, void* dst, bool dst_f16, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  convert_kernel<<<grid_for(n, 256, 1 << 16), 256, 0, stream>>>(src, src_dtype, dst, dst_f16, n);
  return cudaGetLastError();
}

cudaError_t quantize_weight_rows(const void* src, int src_dtype, int64_t rows, int64_t cols, uint8_t* dst, int64_t ld,
                                 float* scales, const Fp8Ext& ext, bool lo, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (rows > INT32_MAX || ld < cols + ext.cols || (lo && ext.cols > 0)) return cudaErrorInvalidValue;
  quantize_rows_kernel<<<static_cast<unsigned>(rows), kQuantThreads, 0, stream>>>(src, src_dtype, cols, dst, ld, scales,
                                                                                 ext, lo);
  return cudaGetLastError();
}

}  // namespace vn::cuda

namespace vn::cuda {

cudaError_t fill_test_values(void* p, int64_t n, int kind, uint32_t seed, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  fill_test_kernel<<<grid_for(n, 256, 1 << 14), 256, 0, stream>>>(p, n, kind, seed);
  return cudaGetLastError();
}

cudaError_t count_different_words(const void* a, const void* b, int64_t words, unsigned long long* count,
                                  cudaStream_t stream) {
  if (words <= 0) return cudaSuccess;
  count_different_words_kernel<<<grid_for(words, 256, 1 << 14), 256, 0, stream>>>(
      static_cast<const uint32_t*>(a), static_cast<const uint32_t*>(b), words, count);
  return cudaGetLastError();
}

}  // namespace vn::cuda
