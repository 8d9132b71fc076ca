// Device-side helpers shared by the kernels: warp reductions and launch-size arithmetic.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace vn::cuda {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum for blockDim.x a multiple of 32 (<= 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float* scratch /* [32] */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < n_warps ? scratch[lane] : 0.0f;
  return warp_sum(t);
}

__device__ __forceinline__ float block_max(float v, float* scratch /* [32] */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < n_warps ? scratch[lane] : -INFINITY;
  return warp_max(t);
}

// erf(x) as x * P(x^2) / Q(x^2) on [-4, 4] (|erf| rounds to 1 beyond): the CPU backend's rational
// fit (within 1e-8 of erf in exact arithmetic, ~4e-7 in fp32). Branch-free: libdevice's erff
// branches on |x|, and a warp whose activations straddle the branches pays for both.
__device__ __forceinline__ float erf_rational(float x) {
  x = fminf(fmaxf(x, -4.0f), 4.0f);
  const float t = x * x;
  float p = -1.3666466e-08f;
  p = fmaf(p, t, 4.7804792e-06f);
  p = fmaf(p, t, 3.8268996e-04f);
  p = fmaf(p, t, 3.8395210e-03f);
  p = fmaf(p, t, 5.4332539e-02f);
  p = fmaf(p, t, 1.8471031e-01f);
  p = fmaf(p, t, 1.1283792e+00f);
  float q = 6.4008702e-05f;
  q = fmaf(q, t, 1.3095743e-03f);
  q = fmaf(q, t, 1.5453491e-02f);
  q = fmaf(q, t, 1.1382625e-01f);
  q = fmaf(q, t, 4.9702880e-01f);
  q = fmaf(q, t, 1.0f);
  return fminf(fmaxf(__fdividef(x * p, q), -1.0f), 1.0f);  // q >= 1: the fast division is exact to 2 ulp
}

// Exact GELU (erf, not the tanh approximation), FP32.
__device__ __forceinline__ float gelu_erf(float x) {
  return 0.5f * x * (1.0f + erf_rational(x * 0.70710678118654752440f));
}

inline unsigned grid_for(int64_t n, int per_block, int64_t cap = 1 << 20) {
  int64_t g = (n + per_block - 1) / per_block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g < cap ? g : cap);
}

// An E4M3 byte's (unscaled) value.
__device__ __forceinline__ float e4m3_to_float(uint8_t b) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(b, __NV_E4M3)));
}

// LayerNorm of one row held by one warp in registers: V float4 per lane (lane l holds columns
// i * 128 + 4 l .. + 3), zeros past `hidden` (hidden % 4 == 0).
template <int V>
__device__ __forceinline__ void load_row(const float* __restrict__ src, const float* __restrict__ add, int hidden,
                                         int lane, float4 (&v)[V]) {
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < hidden) {
      v[i] = *reinterpret_cast<const float4*>(src + c);
      if (add) {
        const float4 a = *reinterpret_cast<const float4*>(add + c);
        v[i].x += a.x, v[i].y += a.y, v[i].z += a.z, v[i].w += a.w;
      }
    } else {
      v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }
}

// v = (v - mean) * rstd * w + b in place, two-pass FP32 statistics over the row's `hidden` values.
template <int V>
__device__ __forceinline__ void normalize_row(float4 (&v)[V], const float* __restrict__ w,
                                              const float* __restrict__ b, int hidden, int lane, float eps) {
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
  const float mean = warp_sum(sum) / static_cast<float>(hidden);
  float sq = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < hidden) {
      const float dx = v[i].x - mean, dy = v[i].y - mean, dz = v[i].z - mean, dw = v[i].w - mean;
      sq += (dx * dx + dy * dy) + (dz * dz + dw * dw);
    }
  }
  const float rstd = 1.0f / sqrtf(warp_sum(sq) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < hidden) {
      const float4 g = *reinterpret_cast<const float4*>(w + c);
      const float4 bb = *reinterpret_cast<const float4*>(b + c);
      v[i].x = (v[i].x - mean) * rstd * g.x + bb.x;
      v[i].y = (v[i].y - mean) * rstd * g.y + bb.y;
      v[i].z = (v[i].z - mean) * rstd * g.z + bb.z;
      v[i].w = (v[i].w - mean) * rstd * g.w + bb.w;
    }
  }
}

}  // namespace vn::cuda
