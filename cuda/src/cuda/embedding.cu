// ESM-2 token embeddings with the token-dropout rescale (models.md, forward step 2).
#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

// One block per sequence: count its <mask> tokens, then write its rows.
__global__ void esm_embed_kernel(float* __restrict__ x, const int32_t* __restrict__ tokens,
                                 const int32_t* __restrict__ cu, const float* __restrict__ word, int hidden,
                                 int mask_id, int token_dropout) {
  __shared__ float scratch[32];
  const int s = blockIdx.x;
  const int t0 = cu[s], t1 = cu[s + 1];
  float n_mask = 0.0f;
  for (int t = t0 + threadIdx.x; t < t1; t += blockDim.x) n_mask += tokens[t] == mask_id ? 1.0f : 0.0f;
  n_mask = block_sum(n_mask, scratch);
  // Same operations and order as the reference: ratio, 1 - ratio, (e * 0.88) / denom.
  const float ratio = n_mask / static_cast<float>(t1 - t0);
  const float denom = 1.0f - ratio;
  for (int t = t0; t < t1; ++t) {
    const int tok = tokens[t];
    const bool masked = token_dropout && tok == mask_id;
    const float* src = word + static_cast<int64_t>(tok) * hidden;
    float* dst = x + static_cast<int64_t>(t) * hidden;
    for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
      const float e = masked ? 0.0f : src[j];
      dst[j] = token_dropout ? __fdiv_rn(__fmul_rn(e, 0.88f), denom) : e;
    }
  }
}

}  // namespace

cudaError_t esm_embed(float* x, const int32_t* tokens, const int32_t* cu, int n_seqs, const float* word, int hidden,
                      int mask_id, int token_dropout, cudaStream_t stream) {
  if (n_seqs <= 0) return cudaSuccess;
  esm_embed_kernel<<<n_seqs, 256, 0, stream>>>(x, tokens, cu, word, hidden, mask_id, token_dropout);
  return cudaGetLastError();
}

}  // namespace vn::cuda
