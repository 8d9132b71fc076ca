// --precision fp8: the kernels around the E4M3 GEMMs. LayerNorm and GELU write their outputs as
// E4M3 with one scale per token (common/fp8.h), computed in FP32 from the unrounded values; the
// reference GEMM and the scaling pass serve cuBLASLt builds without outer-vector scaling.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <cstdlib>

#include "common/fp8.h"
#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

__device__ __forceinline__ uint32_t pack4_e4m3(float a, float b, float c, float d) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// An outlier channel's extension bytes: hi (the main part's byte for v) and lo (what hi left).
__device__ __forceinline__ void put_ext(uint8_t* ext_row, int n, int slot, float v) {
  if (slot < 0) return;
  const uint8_t hi = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  ext_row[slot] = hi;
  ext_row[n + slot] = __nv_cvt_float_to_fp8(v - e4m3_to_float(hi), __NV_SATFINITE, __NV_E4M3);
}

constexpr int kLnRows = 4;        // warps (rows) per block
constexpr int kMaxExtCols = 256;  // >= fp8_ext_columns(kFp8MaxOutliers, any hidden)

// One warp per row, the row in registers (as layernorm.cu), then amax and E4M3. kStaged: the
// row's outlier extension is assembled in shared memory and stored as whole words (else byte
// stores straight to the output, VIRNUC_FP8_LN_STAGED=0).
template <int V, bool kStaged>
__global__ void __launch_bounds__(32 * kLnRows)
    layernorm_fp8_kernel(const float* __restrict__ x, const float* __restrict__ add, const float* __restrict__ w,
                         const float* __restrict__ b, int64_t rows, int hidden, float eps, uint8_t* __restrict__ q,
                         float* __restrict__ scales, Fp8Ext ext) {
  __shared__ uint32_t ext_words[kStaged ? kLnRows : 1][kStaged ? kMaxExtCols / 4 : 1];
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kLnRows + (threadIdx.x >> 5);
  if (row >= rows) return;
  uint32_t* my_ext = ext_words[kStaged ? threadIdx.x >> 5 : 0];
  if (kStaged && ext.n > 0) {
    for (int j = lane; j < ext.cols / 4; j += 32) my_ext[j] = 0;
    __syncwarp();
  }
  float4 v[V];
  load_row<V>(x + row * hidden, add, hidden, lane, v);
  normalize_row<V>(v, w, b, hidden, lane, eps);
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i)
    amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v[i].x), fabsf(v[i].y)), fmaxf(fabsf(v[i].z), fabsf(v[i].w))));
  amax = warp_max(amax);
  const float inv = fp8_inv_scale(amax);
  uint8_t* qrow = q + row * (hidden + ext.cols);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < hidden) {
      const float4 s = make_float4(v[i].x * inv, v[i].y * inv, v[i].z * inv, v[i].w * inv);
      *reinterpret_cast<uint32_t*>(qrow + c) = pack4_e4m3(s.x, s.y, s.z, s.w);
      if (ext.n > 0) {
        const char4 sl = *reinterpret_cast<const char4*>(ext.slot + c);
        uint8_t* e = kStaged ? reinterpret_cast<uint8_t*>(my_ext) : qrow + hidden;
        put_ext(e, ext.n, sl.x, s.x);
        put_ext(e, ext.n, sl.y, s.y);
        put_ext(e, ext.n, sl.z, s.z);
        put_ext(e, ext.n, sl.w, s.w);
      }
    }
  }
  if (kStaged) {
    if (ext.n > 0) {
      __syncwarp();
      // hidden % 4 == 0 and ext.cols % 4 == 0: the extension starts and ends on word boundaries.
      uint32_t* dst = reinterpret_cast<uint32_t*>(qrow + hidden);
      for (int j = lane; j < ext.cols / 4; j += 32) dst[j] = my_ext[j];
    }
  } else {
    for (int j = 2 * ext.n + lane; j < ext.cols; j += 32) qrow[hidden + j] = 0;
  }
  if (lane == 0) scales[row] = fp8_scale(amax);
}

bool ln_staged() {
  static const bool on = [] {
    const char* v = std::getenv("VIRNUC_FP8_LN_STAGED");
    return !(v && v[0] == '0');
  }();
  return on;
}

template <int V>
cudaError_t launch_ln(const float* x, const float* add, const float* w, const float* b, int64_t rows, int hidden,
                      float eps, uint8_t* q, float* scales, const Fp8Ext& ext, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((rows + kLnRows - 1) / kLnRows);
  if (ln_staged() && ext.n > 0)
    layernorm_fp8_kernel<V, true><<<blocks, 32 * kLnRows, 0, stream>>>(x, add, w, b, rows, hidden, eps, q, scales, ext);
  else
    layernorm_fp8_kernel<V, false><<<blocks, 32 * kLnRows, 0, stream>>>(x, add, w, b, rows, hidden, eps, q, scales, ext);
  return cudaGetLastError();
}

// One block of kQThreads per row; each thread holds V chunks of 8 values in FP32.
template <int kQThreads, int V, bool kGelu>
__global__ void __launch_bounds__(kQThreads)
    quantize_rows_kernel(const __half* __restrict__ in, int cols, uint8_t* __restrict__ q, float* __restrict__ scales) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int chunks = cols / 8;
  const __half* src = in + row * cols;
  float f[V][8];
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int ch = i * kQThreads + threadIdx.x;
    if (ch < chunks) {
      uint4 raw = *reinterpret_cast<const uint4*>(src + ch * 8);
      const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float2 t = __half22float2(h[e]);
        if (kGelu) t = make_float2(gelu_erf(t.x), gelu_erf(t.y));
        f[i][2 * e] = t.x;
        f[i][2 * e + 1] = t.y;
        amax = fmaxf(amax, fmaxf(fabsf(t.x), fabsf(t.y)));
      }
    }
  }
  amax = block_max(amax, scratch);
  const float inv = fp8_inv_scale(amax);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int ch = i * kQThreads + threadIdx.x;
    if (ch < chunks) {
      uint2 out;
      out.x = pack4_e4m3(f[i][0] * inv, f[i][1] * inv, f[i][2] * inv, f[i][3] * inv);
      out.y = pack4_e4m3(f[i][4] * inv, f[i][5] * inv, f[i][6] * inv, f[i][7] * inv);
      *reinterpret_cast<uint2*>(q + row * cols + ch * 8) = out;
    }
  }
  if (threadIdx.x == 0) scales[row] = fp8_scale(amax);
}

template <int kQThreads, int V>
cudaError_t launch_q(const __half* in, int64_t rows, int cols, bool gelu, uint8_t* q, float* scales,
                     cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(rows);
  if (gelu) quantize_rows_kernel<kQThreads, V, true><<<blocks, kQThreads, 0, stream>>>(in, cols, q, scales);
  else quantize_rows_kernel<kQThreads, V, false><<<blocks, kQThreads, 0, stream>>>(in, cols, q, scales);
  return cudaGetLastError();
}

template <int kQThreads>
cudaError_t launch_q_any(const __half* in, int64_t rows, int cols, bool gelu, uint8_t* q, float* scales,
                         cudaStream_t stream) {
  const int v = (cols / 8 + kQThreads - 1) / kQThreads;
  switch (v) {
    case 0:
    case 1: return launch_q<kQThreads, 1>(in, rows, cols, gelu, q, scales, stream);
    case 2: return launch_q<kQThreads, 2>(in, rows, cols, gelu, q, scales, stream);
    case 3: return launch_q<kQThreads, 3>(in, rows, cols, gelu, q, scales, stream);
    case 4: return launch_q<kQThreads, 4>(in, rows, cols, gelu, q, scales, stream);
    case 5: return launch_q<kQThreads, 5>(in, rows, cols, gelu, q, scales, stream);
    case 6: return launch_q<kQThreads, 6>(in, rows, cols, gelu, q, scales, stream);
    case 7:
    case 8: return launch_q<kQThreads, 8>(in, rows, cols, gelu, q, scales, stream);
    case 9:
    case 10: return launch_q<kQThreads, 10>(in, rows, cols, gelu, q, scales, stream);
    default: return launch_q<kQThreads, 16>(in, rows, cols, gelu, q, scales, stream);
  }
}

// Threads per row: 256 unless VIRNUC_FP8_QUANT_THREADS says 128 or 512 (for measurements).
int quant_threads() {
  const char* v = std::getenv("VIRNUC_FP8_QUANT_THREADS");
  const int t = v ? std::atoi(v) : 256;
  return t == 128 || t == 512 ? t : 256;
}

// The epilogue of the own-scaling pass and the reference FP8 GEMM: y(r, c) = v (+ bias) as fp16
// (bias fp16) or fp32 (bias fp32), y += v for accumulate.
__device__ __forceinline__ void store_scaled(float v, int64_t r, int64_t c, const void* bias, void* y, int64_t ldy,
                                             bool out_f16, bool accumulate) {
  if (out_f16) {
    if (bias) v += __half2float(static_cast<const __half*>(bias)[c]);
    static_cast<__half*>(y)[r * ldy + c] = __float2half_rn(v);
  } else {
    if (bias) v += static_cast<const float*>(bias)[c];
    float* o = static_cast<float*>(y) + r * ldy + c;
    *o = accumulate ? *o + v : v;
  }
}

__global__ void dequant_kernel(const float* __restrict__ acc, int64_t m, int64_t n, const float* __restrict__ xs,
                               const float* __restrict__ ws, const void* __restrict__ bias, void* y, int64_t ldy,
                               bool out_f16, bool accumulate) {
  const int64_t total = m * n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, c = i % n;
    store_scaled(acc[i] * xs[r] * ws[c], r, c, bias, y, ldy, out_f16, accumulate);
  }
}

__global__ void add_bias_kernel(void* y, int64_t ldy, int64_t m, int64_t n, const void* __restrict__ bias, bool f16) {
  const int64_t total = m * n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, c = i % n;
    if (f16) {
      __half* o = static_cast<__half*>(y) + r * ldy + c;
      *o = __float2half_rn(__half2float(*o) + __half2float(static_cast<const __half*>(bias)[c]));
    } else {
      static_cast<float*>(y)[r * ldy + c] += static_cast<const float*>(bias)[c];
    }
  }
}

__global__ void add_to_columns_kernel(float* __restrict__ x, int64_t ldx, const float* __restrict__ src, int64_t lds,
                                      const int32_t* __restrict__ index, int n, int64_t rows) {
  const int64_t total = rows * n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n;
    const int j = static_cast<int>(i % n);
    x[r * ldx + index[j]] += src[r * lds + j];
  }
}

__global__ void fp8_gemm_naive_kernel(const uint8_t* __restrict__ x, int64_t ldx, const uint8_t* __restrict__ w,
                                      const float* __restrict__ xs, const float* __restrict__ ws,
                                      const void* __restrict__ bias, void* y, int64_t ldy, int64_t m, int64_t n,
                                      int64_t k, bool out_f16, bool accumulate) {
  const int64_t total = m * n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, c = i % n;
    float s = 0.0f;
    for (int64_t l = 0; l < k; ++l) s += e4m3_to_float(x[r * ldx + l]) * e4m3_to_float(w[c * k + l]);
    store_scaled(s * xs[r] * ws[c], r, c, bias, y, ldy, out_f16, accumulate);
  }
}

}  // namespace

cudaError_t layernorm_fp8(const float* x, const float* add, const float* w, const float* b, int64_t rows, int hidden,
                          float eps, uint8_t* q, float* scales, const Fp8Ext& ext, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (hidden % 4 != 0 || hidden > kMaxLayerNormHidden || 2 * ext.n > ext.cols || ext.cols > kMaxExtCols ||
      ext.cols % 4 != 0)
    return cudaErrorInvalidValue;
  const int need = (hidden + 127) / 128;
#define VN_LN8_CASE(V) \
  if (need <= V) return launch_ln<V>(x, add, w, b, rows, hidden, eps, q, scales, ext, stream);
  VN_LN8_CASE(1)
  VN_LN8_CASE(2)
  VN_LN8_CASE(4)
  VN_LN8_CASE(6)
  VN_LN8_CASE(8)
  VN_LN8_CASE(10)
  VN_LN8_CASE(12)
  VN_LN8_CASE(16)
  VN_LN8_CASE(20)
  VN_LN8_CASE(24)
  VN_LN8_CASE(32)
  VN_LN8_CASE(40)
  VN_LN8_CASE(64)
#undef VN_LN8_CASE
  return cudaErrorInvalidValue;
}

cudaError_t quantize_rows_fp8(const __half* in, int64_t rows, int cols, bool gelu, uint8_t* q, float* scales,
                              cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (cols % 8 != 0 || cols > kMaxFp8RowQuant || rows > INT32_MAX) return cudaErrorInvalidValue;
  const int t = quant_threads();
  if (t == 128 && cols / 8 <= 128 * 16) return launch_q_any<128>(in, rows, cols, gelu, q, scales, stream);
  if (t == 512) return launch_q_any<512>(in, rows, cols, gelu, q, scales, stream);
  return launch_q_any<256>(in, rows, cols, gelu, q, scales, stream);
}

cudaError_t fp8_dequant_epilogue(const float* acc, int64_t m, int64_t n, const float* x_scale, const float* w_scale,
                                 const void* bias, void* y, int64_t ldy, bool out_f16, bool accumulate,
                                 cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  dequant_kernel<<<grid_for(m * n, 256, 1 << 16), 256, 0, stream>>>(acc, m, n, x_scale, w_scale, bias, y, ldy, out_f16,
                                                                    accumulate);
  return cudaGetLastError();
}

cudaError_t add_bias(void* y, int64_t ldy, int64_t m, int64_t n, const void* bias, bool f16, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  add_bias_kernel<<<grid_for(m * n, 256, 1 << 16), 256, 0, stream>>>(y, ldy, m, n, bias, f16);
  return cudaGetLastError();
}

cudaError_t add_to_columns(float* x, int64_t ldx, const float* src, int64_t lds, const int32_t* index, int n,
                           int64_t rows, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  add_to_columns_kernel<<<grid_for(rows * n, 256, 1 << 14), 256, 0, stream>>>(x, ldx, src, lds, index, n, rows);
  return cudaGetLastError();
}

cudaError_t fp8_gemm_naive(const uint8_t* x, int64_t ldx, const uint8_t* w, const float* x_scale,
                           const float* w_scale, const void* bias, void* y, int64_t ldy, int64_t m, int64_t n,
                           int64_t k, bool out_f16, bool accumulate, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  fp8_gemm_naive_kernel<<<grid_for(m * n, 256, 1 << 16), 256, 0, stream>>>(x, ldx, w, x_scale, w_scale, bias, y, ldy,
                                                                           m, n, k, out_f16, accumulate);
  return cudaGetLastError();
}

}  // namespace vn::cuda
