// Scalar reference attention: one block per (token, head), FP32 throughout (rotary on the fly,
// ALiBi, softmax over the token's sequence). Used for head dims the tensor-core kernel does not
// cover and, under VIRNUC_CUDA_NAIVE_ATTENTION=1, to isolate the tensor-core kernel when debugging.
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) attention_naive_kernel(const AttnParams p) {
  extern __shared__ float smem[];
  __shared__ float scratch[32];
  const int hd = p.head_dim, half = hd / 2;
  float* q = smem;              // (hd)
  float* scores = smem + hd;    // (max_len)
  const int64_t t = blockIdx.x;
  const int head = blockIdx.y;
  // The token's sequence: last s with cu[s] <= t.
  int lo = 0, hi = p.n_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (p.cu[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  const int start = p.cu[lo], len = p.cu[lo + 1] - start;
  const int pos = static_cast<int>(t - start);
  const int64_t ld = p.ld_qkv;
  const __half* q_row = p.qkv + t * ld + static_cast<int64_t>(head) * hd;
  const __half* k_base = p.qkv + static_cast<int64_t>(start) * ld + p.hidden + static_cast<int64_t>(head) * hd;
  const __half* v_base = k_base + p.hidden;

  for (int i = threadIdx.x; i < (p.inv_freq ? half : hd); i += blockDim.x) {
    if (p.inv_freq) {
      const float x1 = __half2float(q_row[i]) * p.q_scale, x2 = __half2float(q_row[i + half]) * p.q_scale;
      float s, c;
      sincosf(static_cast<float>(pos) * p.inv_freq[i], &s, &c);
      q[i] = x1 * c + (-x2) * s;
      q[i + half] = x2 * c + x1 * s;
    } else {
      q[i] = __half2float(q_row[i]) * p.q_scale;
    }
  }
  __syncthreads();
  const float slope = p.alibi ? p.alibi[head] : 0.0f;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < len; j += blockDim.x) {
    const __half* k = k_base + static_cast<int64_t>(j) * ld;
    float dot = 0.0f;
    if (p.inv_freq) {
      for (int i = 0; i < half; ++i) {
        const float k1 = __half2float(k[i]), k2 = __half2float(k[i + half]);
        float s, c;
        sincosf(static_cast<float>(j) * p.inv_freq[i], &s, &c);
        dot += q[i] * (k1 * c + (-k2) * s) + q[i + half] * (k2 * c + k1 * s);
      }
    } else {
      for (int i = 0; i < hd; ++i) dot += q[i] * __half2float(k[i]);
    }
    float v = dot * p.score_scale;
    if (p.alibi) v -= slope * static_cast<float>(abs(pos - j));
    scores[j] = v;
    mx = fmaxf(mx, v);
  }
  mx = block_max(mx, scratch);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < len; j += blockDim.x) {
    const float e = expf(scores[j] - mx);
    scores[j] = e;
    sum += e;
  }
  sum = block_sum(sum, scratch);  // its barriers also publish every score
  __half* out = p.out + t * p.ld_out + static_cast<int64_t>(head) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < len; ++j) acc += scores[j] * __half2float(v_base[static_cast<int64_t>(j) * ld + d]);
    out[d] = __float2half_rn(acc / sum);
  }
}

}  // namespace

cudaError_t attention_naive(const AttnParams& p, cudaStream_t stream) {
  if (p.n_seqs <= 0 || p.total_tokens <= 0) return cudaSuccess;
  const size_t smem = static_cast<size_t>(p.head_dim + p.max_len) * sizeof(float);
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(attention_naive_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  dim3 grid(static_cast<unsigned>(p.total_tokens), static_cast<unsigned>(p.n_heads));
  attention_naive_kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace vn::cuda
