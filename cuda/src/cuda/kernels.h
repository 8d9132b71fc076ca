// Launchers of the CUDA backend's own kernels (one op per .cu file). Each enqueues on `stream`
// and returns the launch status (cudaGetLastError); none synchronises.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace vn::cuda {

// ---- embedding.cu ----
// ESM-2: x[t] = word[token[t]] with the token-dropout rescale (<mask> rows zeroed, every row of a
// sequence times 0.88 / (1 - n_mask / n_tokens)) when token_dropout is set. x: (T, H) fp32.
cudaError_t esm_embed(float* x, const int32_t* tokens, const int32_t* cu, int n_seqs, const float* word, int hidden,
                      int mask_id, int token_dropout, cudaStream_t stream);

// ---- layernorm.cu ----
// y = LN(x + add) per row of `hidden` (FP32 statistics; add: (hidden) or null). Either output may be
// null; y32 may alias x. With `tokens` set, x is ignored and row t is gather[tokens[t]] + add
// (DNABERT's embeddings).
cudaError_t layernorm(const float* x, float* y32, __half* y16, const float* w, const float* b, int64_t rows,
                      int hidden, float eps, cudaStream_t stream, const int32_t* tokens = nullptr,
                      const float* gather = nullptr, const float* add = nullptr);
// Largest hidden size the LayerNorm kernels hold in registers.
constexpr int kMaxLayerNormHidden = 8192;

// ---- attention.cu ----
struct AttnParams {
  const __half* qkv;        // (T, ld_qkv): per row Q (hidden), K (hidden), V (hidden), head-major
  int64_t ld_qkv;
  __half* out;              // (T, ld_out): context, head-major
  int64_t ld_out;
  int hidden, n_heads, head_dim;
  const int32_t* cu;        // (n_seqs + 1) packed sequence offsets
  int n_seqs;
  const int2* tiles;        // (n_tiles): (sequence, first query row) of each 64-row query tile
  int n_tiles;
  int max_len;              // longest sequence of the batch
  int64_t total_tokens;
  float q_scale;            // applied to q before rotary (ESM-2: head_dim^-0.5)
  float score_scale;        // applied to q.k (DNABERT: head_dim^-0.5)
  const float* inv_freq;    // (head_dim / 2) rotary frequencies, or null (no rotary)
  const float2* rope;       // (max_len, head_dim / 2) (cos, sin) of position * inv_freq: rotary_table()
  const float* alibi;       // (n_heads) ALiBi slopes, or null
  bool force_naive;         // debugging: the scalar reference kernel
};
constexpr int kAttnTileM = 64;
// Batches whose longest sequence is at most this keep each sequence's K and V in shared memory
// (one block per sequence and head); longer ones take 64-row query tiles.
constexpr int kAttnResidentMaxLen = 256;
cudaError_t attention(const AttnParams& p, cudaStream_t stream);
// Scalar reference kernel: any head dim, used for head dims the tensor-core kernel lacks.
cudaError_t attention_naive(const AttnParams& p, cudaStream_t stream);
bool attention_mma_supported(int head_dim);

// ---- rotary.cu ----
// table[pos][i] = (cos, sin)(pos * inv_freq[i]) in FP32 for pos < max_len, i < half.
cudaError_t rotary_table(float2* table, const float* inv_freq, int half, int max_len, cudaStream_t stream);

// ---- schedule.cu ----
// tiles: one (sequence, first row) per kAttnTileM query rows of every sequence, in order.
cudaError_t build_query_tiles(int2* tiles, const int32_t* cu, int n_seqs, cudaStream_t stream);

// ---- gelu.cu ----
// x = GELU(x) with erf, in place, over n fp16 values.
cudaError_t gelu_inplace(__half* x, int64_t n, cudaStream_t stream);
// u (rows, 2*inter): u[:, :inter] = GELU(u[:, :inter]) * u[:, inter:], in place.
cudaError_t gated_gelu(__half* u, int64_t rows, int inter, cudaStream_t stream);

// ---- pooling.cu ----
// out[s] = mean of x rows cu[s]+skip_front .. cu[s+1]-skip_back (at most max_rows when > 0), FP32.
// bad_row: atomically lowered to the first sequence whose mean holds NaN or Inf.
cudaError_t mean_pool(const float* x, int hidden, const int32_t* cu, int n_seqs, int skip_front, int skip_back,
                      int max_rows, float* out, int32_t* bad_row, cudaStream_t stream);

// ---- convert.cu ----
cudaError_t f32_to_f16(const float* src, __half* dst, int64_t n, cudaStream_t stream);
// n values of src_dtype (vn_dtype) to fp16 (dst_f16) or fp32.
cudaError_t convert_weights(const void* src, int src_dtype, void* dst, bool dst_f16, int64_t n, cudaStream_t stream);
// An FP8 model's outlier channels (common/fp8.h) on the device; n == 0: none.
struct Fp8Ext {
  const int32_t* index = nullptr;  // (n) hidden channels, ascending
  const int8_t* slot = nullptr;    // (hidden) each channel's position in index, or -1
  int n = 0;
  int cols = 0;  // extension columns, fp8_ext_columns(n, hidden)
};
// rows x cols of src_dtype -> E4M3 bytes and one scale per row (common/fp8.h); row stride ld >=
// cols + ext.cols, the extension [lo | hi | 0] of ext's channels after each row. lo: the bytes of
// what the E4M3 rounding left instead (same scale; no extension).
cudaError_t quantize_weight_rows(const void* src, int src_dtype, int64_t rows, int64_t cols, uint8_t* dst, int64_t ld,
                                 float* scales, const Fp8Ext& ext, bool lo, cudaStream_t stream);
// Load-time GEMM algorithm trials: n deterministic pseudo-random values (kind 0: fp16 in [-1, 1);
// 1: finite E4M3 bytes of magnitude < 2; 2: fp32 in [-1, 1)), and the number of 32-bit words in
// which a and b differ, added to *count (device memory).
cudaError_t fill_test_values(void* p, int64_t n, int kind, uint32_t seed, cudaStream_t stream);
cudaError_t count_different_words(const void* a, const void* b, int64_t words, unsigned long long* count,
                                  cudaStream_t stream);
// x[r, index[j]] += src[r, j] for j < n, r < rows (the outlier rows' second FP8 GEMM).
cudaError_t add_to_columns(float* x, int64_t ldx, const float* src, int64_t lds, const int32_t* index, int n,
                           int64_t rows, cudaStream_t stream);

// ---- fp8.cu (--precision fp8; rules in common/fp8.h) ----
// y = LN(x + add) per row (add: (hidden) or null), quantized per row: q (rows, row stride
// hidden + ext.cols) E4M3, then the extension [hi | lo | 0] of ext's channels; scales (rows).
// hidden % 4 == 0, <= kMaxLayerNormHidden.
cudaError_t layernorm_fp8(const float* x, const float* add, const float* w, const float* b, int64_t rows, int hidden,
                          float eps, uint8_t* q, float* scales, const Fp8Ext& ext, cudaStream_t stream);
// q, scales = per-row E4M3 of f(in) for in (rows, cols) fp16, f = exact GELU (gelu) or identity.
// cols % 8 == 0, cols <= kMaxFp8RowQuant.
cudaError_t quantize_rows_fp8(const __half* in, int64_t rows, int cols, bool gelu, uint8_t* q, float* scales,
                              cudaStream_t stream);
constexpr int kMaxFp8RowQuant = 16384;
// y (m, n) = x_scale[row] w_scale[col] acc (+ bias) as fp16 (out_f16; bias fp16) or fp32 (bias
// fp32), y += for accumulate. acc: (m, n) FP32 of an unscaled FP8 GEMM.
cudaError_t fp8_dequant_epilogue(const float* acc, int64_t m, int64_t n, const float* x_scale, const float* w_scale,
                                 const void* bias, void* y, int64_t ldy, bool out_f16, bool accumulate,
                                 cudaStream_t stream);
// y (m, n; row stride ldy) += bias (n), fp16 (bias fp16) or fp32 (bias fp32).
cudaError_t add_bias(void* y, int64_t ldy, int64_t m, int64_t n, const void* bias, bool f16, cudaStream_t stream);
// Reference FP8 GEMM (debugging, odd shapes): as fp8_dequant_epilogue of sum_k x(m, k) w(n, k).
cudaError_t fp8_gemm_naive(const uint8_t* x, int64_t ldx, const uint8_t* w, const float* x_scale,
                           const float* w_scale, const void* bias, void* y, int64_t ldy, int64_t m, int64_t n,
                           int64_t k, bool out_f16, bool accumulate, cudaStream_t stream);

// ---- classifier.cu ----
// Per row: v = max(0, h * scale + shift) (BatchNorm eval + ReLU), logits = v w2^T + b2, softmax.
// h: (rows, units) fp32; w2: (classes, units); out: (rows, classes). classes <= 32.
cudaError_t mlp_head(const float* h, int64_t rows, int units, const float* scale, const float* shift, const float* w2,
                     const float* b2, int classes, float* out, int32_t* bad_row, cudaStream_t stream);

// ---- gemm_naive.cu ----
// Reference GEMM for debugging: y (m, n) [+]= x (m, k; row stride ldx) w^T (w: (n, k)) [+ bias].
// in_f16: x, w fp16 (else fp32); out_f16: y fp16 (else fp32); accumulate: y += (fp32 out only).
cudaError_t gemm_naive(const void* x, int64_t ldx, const void* w, const void* bias, void* y, int64_t ldy, int64_t m,
                       int64_t n, int64_t k, bool in_f16, bool out_f16, bool accumulate, cudaStream_t stream);

}  // namespace vn::cuda
