// Per-token and per-sequence operations of the encoders over packed batches
// (sequence s = rows cu[s] .. cu[s+1]-1; positions restart at 0 per sequence).
#pragma once

#include <cstdint>

#include "cpu/thread_pool.h"

namespace vn::cpu {

// y = LayerNorm(x) row by row, x and y (rows, h) may alias.
void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t h, const float* w, const float* b,
                float eps);

// ESM-2 rotary: q *= q_scale, then rotate_half rotary on the q and k heads of qkv (T, ld)
// (q at column 0, k at column hidden), angle = position * inv_freq[i] in fp32.
void rotary_qk(ThreadPool& pool, float* qkv, int64_t ld, int64_t hidden, const int32_t* cu, int32_t n_seqs,
               int n_heads, int head_dim, const float* inv_freq, float q_scale);

struct AttentionArgs {
  const float* qkv = nullptr;  // (T, ld): q at column 0, k at hidden, v at 2*hidden, heads contiguous
  int64_t ld = 0;
  int64_t hidden = 0;
  int n_heads = 0;
  int head_dim = 0;
  float score_scale = 1.0f;              // multiplies q.k (ESM-2 scales q beforehand: 1)
  const float* alibi_slopes = nullptr;   // per head; adds -slope*|i-j| when set
  float* out = nullptr;                  // (T, hidden) context, heads contiguous
};

// Softmax attention within each sequence, one task per (sequence, head).
void attention(ThreadPool& pool, const AttentionArgs& args, const int32_t* cu, int32_t n_seqs);

// out[s] = mean of rows cu[s]+skip_front .. cu[s+1]-skip_back-1, at most max_rows of them (0 = all).
void mean_pool(ThreadPool& pool, const float* x, int64_t h, const int32_t* cu, int32_t n_seqs, int skip_front,
               int skip_back, int64_t max_rows, float* out);

}  // namespace vn::cpu
