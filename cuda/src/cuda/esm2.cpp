// ESM-2 on the GPU (models.md): token-dropout embeddings, pre-LN layers (fused QKV GEMM, rotary
// attention, output GEMM adding into the FP32 residual stream, erf-GELU FFN), final LayerNorm,
// mean over residues 1..min(max_pool, p). FP16 weights and GEMM inputs, FP32 residual stream.
// FP8 (--precision fp8): the four GEMMs of a layer take E4M3 weights (a scale per output channel)
// and E4M3 activations (a scale per token, written by the LayerNorm, GELU and a quantizing pass
// after attention); the residual GEMMs add into the FP32 stream without their biases, which are
// instead summed at load and added where the stream is read (the next LayerNorm). Outlier channels
// (LayerNorm gains far above the rest, common/fp8.h) get a hi/lo extension of K in the GEMMs that
// read LayerNorm output (QKV, FC1), so that E4M3 rounding on the channels that dominate those
// products is second order; and the GEMMs that write the stream (out, FC2) get a second, small FP8
// GEMM over the rounding left in those channels' weight rows (errors written there are what the
// large gains amplify, and fixed weight errors do not average out over a sequence as activation
// rounding does).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/fp8.h"

#include "cuda/kernels.h"
#include "cuda/model.h"

namespace vn::cuda {

namespace {

struct EsmLayer {
  float *ln_attn_w, *ln_attn_b;  // (H)
  __half* w_qkv;                 // (3H, H): query, key, value rows
  __half* b_qkv;                 // (3H)
  float* inv_freq;               // (head_dim / 2)
  __half* w_out;                 // (H, H)
  float* b_out;                  // (H), fp32: its GEMM writes the fp32 residual stream
  float *ln_ffn_w, *ln_ffn_b;    // (H)
  __half* w_fc1;                 // (I, H)
  __half* b_fc1;                 // (I)
  __half* w_fc2;                 // (H, I)
  float* b_fc2;                  // (H)
  // FP8: E4M3 weights with their per-output-channel scales; the residual biases not yet in x.
  uint8_t *q_qkv = nullptr, *q_out = nullptr, *q_fc1 = nullptr, *q_fc2 = nullptr;
  float *s_qkv = nullptr, *s_out = nullptr, *s_fc1 = nullptr, *s_fc2 = nullptr;
  float *pending_attn = nullptr, *pending_ffn = nullptr;  // (H)
  // Outlier channels: the rounding left in their out / FC2 weight rows (kLoRows rows, E4M3).
  uint8_t *lo_out = nullptr, *lo_fc2 = nullptr;
  float *s_lo_out = nullptr, *s_lo_fc2 = nullptr;
};

constexpr int kLoRows = kFp8MaxOutliers;  // rows of the outlier rows' second GEMM (zero beyond n)

class Esm2 : public CudaModel {
 public:
  using CudaModel::CudaModel;

  float* word = nullptr;  // (vocab, H) fp32
  std::vector<EsmLayer> layers;
  // Distinct inv_freq tensors (checkpoints repeat one per layer): one rotary table each per batch.
  std::vector<float*> rope_freqs;
  std::vector<int> rope_index;  // per layer
  float *ln_final_w = nullptr, *ln_final_b = nullptr;
  float* pending_final = nullptr;  // FP8: every residual bias, added by the final LayerNorm
  const GemmPlan *qkv = nullptr, *out = nullptr, *fc1 = nullptr, *fc2 = nullptr;
  const GemmPlan *out_lo = nullptr, *fc2_lo = nullptr;  // FP8 with outlier channels
  bool fp8 = false;
  // FP8 models: which of the four GEMMs run in E4M3 (the others in FP16; VIRNUC_FP8_GEMMS).
  bool q8 = true, o8 = true, f18 = true, f28 = true;
  Fp8Ext outl;  // outlier channels: the LayerNorm outputs' extension (QKV, FC1 read it)

  bool needs_scratch() const {
    return qkv->needs_scratch() || out->needs_scratch() || fc1->needs_scratch() || fc2->needs_scratch() ||
           (out_lo && out_lo->needs_scratch()) || (fc2_lo && fc2_lo->needs_scratch());
  }

  int64_t pooled_rows(int64_t n_tokens) const override {
    const int64_t p = n_tokens - 2;
    return cfg.max_pool_positions > 0 ? std::min<int64_t>(p, cfg.max_pool_positions) : p;
  }

  int64_t rope_half() const { return cfg.hidden / cfg.n_heads / 2; }

  size_t workspace_bytes(int64_t T, int64_t) const override {
    const int64_t H = cfg.hidden, I = cfg.intermediate;
    if (fp8)
      return carve_bytes<float>(T * H) + carve_bytes<uint8_t>(T * (H + outl.cols)) + carve_bytes<uint8_t>(T * H) +
             3 * carve_bytes<float>(T) +
             carve_bytes<__half>(T * H) +
             carve_bytes<__half>(T * 3 * H) + carve_bytes<__half>(T * H) + carve_bytes<__half>(T * I) +
             carve_bytes<uint8_t>(T * I) + carve_bytes<float2>(rope_freqs.size() * T * rope_half()) +
             (outl.n > 0 ? carve_bytes<float>(T * kLoRows) : 0) +
             (needs_scratch() ? carve_bytes<float>(T * std::max(3 * H, I)) : 0);
    // The rotary tables are sized for the longest possible sequence (the whole batch).
    return carve_bytes<float>(T * H) + 2 * carve_bytes<__half>(T * H) + carve_bytes<__half>(T * 3 * H) +
           carve_bytes<__half>(T * I) + carve_bytes<float2>(rope_freqs.size() * T * rope_half());
  }

  // Both precisions: the embeddings into the residual stream x, the batch's rotary tables (one
  // per distinct inv_freq, b.max_len rows each) and the attention parameters every layer shares.
  vn_status begin_batch(const Exec& ex, const EmbedBatch& b, float* x, float2* rope, __half* qkv_buf, __half* ctx,
                        AttnParams* ap) const {
    const int64_t half = rope_half(), table = static_cast<int64_t>(b.max_len) * half;
    cudaStream_t s = ex.stream;
    ex.mark("embed");
    VN_CUDA_TRY(esm_embed(x, b.tokens, b.cu, b.n_seqs, word, cfg.hidden, cfg.mask_token_id, cfg.token_dropout, s),
                "ESM-2 embeddings");
    for (size_t k = 0; k < rope_freqs.size(); ++k)
      VN_CUDA_TRY(rotary_table(rope + k * table, rope_freqs[k], static_cast<int>(half), b.max_len, s),
                  "rotary table");
    *ap = batch_attention(cfg, b, ex, qkv_buf, ctx);
    ap->q_scale = 1.0f / std::sqrt(static_cast<float>(cfg.hidden / cfg.n_heads));
    return VN_OK;
  }

  // The final LayerNorm (adding `pending`, FP8's residual biases, where set) and the mean over
  // residues 1..min(max_pool, p) into b.out.
  vn_status end_batch(const Exec& ex, const EmbedBatch& b, float* x, const float* pending) const {
    cudaStream_t s = ex.stream;
    ex.mark("final");
    VN_CUDA_TRY(layernorm(x, x, nullptr, ln_final_w, ln_final_b, b.T, cfg.hidden, cfg.ln_eps, s, nullptr, nullptr,
                          pending),
                "final LayerNorm");
    VN_CUDA_TRY(mean_pool(x, cfg.hidden, b.cu, b.n_seqs, 1, 1, cfg.max_pool_positions, b.out, b.bad_row, s),
                "pooling");
    return VN_OK;
  }

  vn_status embed(const Exec& ex, const EmbedBatch& b, void* workspace) override {
    if (fp8) return embed_fp8(ex, b, workspace);
    const int64_t T = b.T, H = cfg.hidden, I = cfg.intermediate;
    Carver carve(workspace, workspace_bytes(T, b.n_seqs));
    float* x = carve.take<float>(T * H);         // residual stream
    __half* h = carve.take<__half>(T * H);       // LayerNorm output, GEMM input
    __half* qkv_buf = carve.take<__half>(T * 3 * H);
    __half* ctx = carve.take<__half>(T * H);     // attention context
    __half* ffn = carve.take<__half>(T * I);
    const int64_t half = rope_half(), table = static_cast<int64_t>(b.max_len) * half;
    float2* rope = carve.take<float2>(rope_freqs.size() * T * half);
    cudaStream_t s = ex.stream;

    AttnParams ap;
    VN_TRY(begin_batch(ex, b, x, rope, qkv_buf, ctx, &ap));
    const GemmContext& g = *ex.gemm;
    for (size_t l = 0; l < layers.size(); ++l) {
      const EsmLayer& L = layers[l];
      ex.mark("layernorm");
      VN_CUDA_TRY(layernorm(x, nullptr, h, L.ln_attn_w, L.ln_attn_b, T, cfg.hidden, cfg.ln_eps, s), "LayerNorm");
      ex.mark("gemm_qkv");
      VN_TRY(qkv->run(g, h, H, L.w_qkv, L.b_qkv, qkv_buf, 3 * H, T, s));
      ex.mark("attention");
      ap.inv_freq = L.inv_freq;
      ap.rope = rope + rope_index[l] * table;
      VN_CUDA_TRY(attention(ap, s), "attention");
      ex.mark("gemm_out");
      VN_TRY(out->run(g, ctx, H, L.w_out, L.b_out, x, H, T, s));
      ex.mark("layernorm");
      VN_CUDA_TRY(layernorm(x, nullptr, h, L.ln_ffn_w, L.ln_ffn_b, T, cfg.hidden, cfg.ln_eps, s), "LayerNorm");
      ex.mark("gemm_fc1");
      VN_TRY(fc1->run(g, h, H, L.w_fc1, L.b_fc1, ffn, I, T, s));
      ex.mark("gelu");
      VN_CUDA_TRY(gelu_inplace(ffn, T * I, s), "GELU");
      ex.mark("gemm_fc2");
      VN_TRY(fc2->run(g, ffn, I, L.w_fc2, L.b_fc2, x, H, T, s));
    }
    return end_batch(ex, b, x, nullptr);
  }

  vn_status embed_fp8(const Exec& ex, const EmbedBatch& b, void* workspace) {
    const int64_t T = b.T, H = cfg.hidden, I = cfg.intermediate;
    Carver carve(workspace, workspace_bytes(T, b.n_seqs));
    float* x = carve.take<float>(T * H);  // residual stream, without the pending biases
    const int64_t Hx = H + outl.cols;              // row stride of h8: the outlier extension follows
    uint8_t* h8 = carve.take<uint8_t>(T * Hx);  // LayerNorm output, E4M3
    float* h_scale = carve.take<float>(T);
    __half* h16 = carve.take<__half>(T * H);  // LayerNorm output for GEMMs kept in FP16
    __half* qkv_buf = carve.take<__half>(T * 3 * H);
    __half* ctx = carve.take<__half>(T * H);
    uint8_t* ctx8 = carve.take<uint8_t>(T * H);
    float* ctx_scale = carve.take<float>(T);
    __half* ffn = carve.take<__half>(T * I);
    uint8_t* ffn8 = carve.take<uint8_t>(T * I);
    float* ffn_scale = carve.take<float>(T);
    const int64_t half = rope_half(), table = static_cast<int64_t>(b.max_len) * half;
    float2* rope = carve.take<float2>(rope_freqs.size() * T * half);
    float* scratch = needs_scratch() ? carve.take<float>(T * std::max(3 * H, I)) : nullptr;
    float* lo_buf = outl.n > 0 ? carve.take<float>(T * kLoRows) : nullptr;
    cudaStream_t s = ex.stream;
    // The outlier rows' second GEMM: y[:, index[j]] += x lo_j^T (after the main GEMM, same stream).
    auto outlier_rows = [&](const GemmPlan* plan, const uint8_t* x8, int64_t k, const float* xs, const uint8_t* lo,
                            const float* ls, float* y) -> vn_status {
      if (!plan) return VN_OK;
      ex.mark("outlier_rows");
      const Fp8Scales sl{xs, ls, scratch};
      VN_TRY(plan->run(*ex.gemm, x8, k, lo, nullptr, lo_buf, kLoRows, T, s, &sl));
      VN_CUDA_TRY(add_to_columns(y, H, lo_buf, kLoRows, outl.index, outl.n, T, s), "FP8 outlier rows");
      return VN_OK;
    };

    AttnParams ap;
    VN_TRY(begin_batch(ex, b, x, rope, qkv_buf, ctx, &ap));
    const GemmContext& g = *ex.gemm;
    for (size_t l = 0; l < layers.size(); ++l) {
      const EsmLayer& L = layers[l];
      ex.mark("layernorm");
      if (q8)
        VN_CUDA_TRY(
            layernorm_fp8(x, L.pending_attn, L.ln_attn_w, L.ln_attn_b, T, cfg.hidden, cfg.ln_eps, h8, h_scale, outl, s),
            "LayerNorm");
      else
        VN_CUDA_TRY(layernorm(x, nullptr, h16, L.ln_attn_w, L.ln_attn_b, T, cfg.hidden, cfg.ln_eps, s, nullptr, nullptr,
                              L.pending_attn),
                    "LayerNorm");
      ex.mark("gemm_qkv");
      const Fp8Scales sq{h_scale, L.s_qkv, scratch};
      if (q8) VN_TRY(qkv->run(g, h8, Hx, L.q_qkv, L.b_qkv, qkv_buf, 3 * H, T, s, &sq));
      else VN_TRY(qkv->run(g, h16, H, L.w_qkv, L.b_qkv, qkv_buf, 3 * H, T, s));
      ex.mark("attention");
      ap.inv_freq = L.inv_freq;
      ap.rope = rope + rope_index[l] * table;
      VN_CUDA_TRY(attention(ap, s), "attention");
      const Fp8Scales so{ctx_scale, L.s_out, scratch};
      if (o8) {
        ex.mark("quantize");
        VN_CUDA_TRY(quantize_rows_fp8(ctx, T, cfg.hidden, false, ctx8, ctx_scale, s), "FP8 quantization");
        ex.mark("gemm_out");
        VN_TRY(out->run(g, ctx8, H, L.q_out, nullptr, x, H, T, s, &so));
        VN_TRY(outlier_rows(out_lo, ctx8, H, ctx_scale, L.lo_out, L.s_lo_out, x));
      } else {
        ex.mark("gemm_out");
        VN_TRY(out->run(g, ctx, H, L.w_out, nullptr, x, H, T, s));
      }
      ex.mark("layernorm");
      if (f18)
        VN_CUDA_TRY(
            layernorm_fp8(x, L.pending_ffn, L.ln_ffn_w, L.ln_ffn_b, T, cfg.hidden, cfg.ln_eps, h8, h_scale, outl, s),
            "LayerNorm");
      else
        VN_CUDA_TRY(layernorm(x, nullptr, h16, L.ln_ffn_w, L.ln_ffn_b, T, cfg.hidden, cfg.ln_eps, s, nullptr, nullptr,
                              L.pending_ffn),
                    "LayerNorm");
      ex.mark("gemm_fc1");
      const Fp8Scales s1{h_scale, L.s_fc1, scratch};
      if (f18) VN_TRY(fc1->run(g, h8, Hx, L.q_fc1, L.b_fc1, ffn, I, T, s, &s1));
      else VN_TRY(fc1->run(g, h16, H, L.w_fc1, L.b_fc1, ffn, I, T, s));
      ex.mark("gelu");
      if (f28) VN_CUDA_TRY(quantize_rows_fp8(ffn, T, cfg.intermediate, true, ffn8, ffn_scale, s), "GELU");
      else VN_CUDA_TRY(gelu_inplace(ffn, T * I, s), "GELU");
      ex.mark("gemm_fc2");
      const Fp8Scales s2{ffn_scale, L.s_fc2, scratch};
      if (f28) {
        VN_TRY(fc2->run(g, ffn8, I, L.q_fc2, nullptr, x, H, T, s, &s2));
        VN_TRY(outlier_rows(fc2_lo, ffn8, I, ffn_scale, L.lo_fc2, L.s_lo_fc2, x));
      }
      else VN_TRY(fc2->run(g, ffn, I, L.w_fc2, nullptr, x, H, T, s));
    }
    return end_batch(ex, b, x, pending_final);
  }
};

}  // namespace

vn_status load_esm2(const vn_model_config& cfg, const WeightSet& ws, CudaEngine* engine, GemmPlans& plans,
                    const GemmContext& gemm, cudaStream_t stream, bool fp8, std::unique_ptr<CudaModel>* out) {
  const int64_t H = cfg.hidden, I = cfg.intermediate, V = cfg.vocab, hd = cfg.hidden / cfg.n_heads;
  if (H > kMaxLayerNormHidden)
    return fail(VN_ERR_UNSUPPORTED, "ESM-2 hidden size " + std::to_string(H) + " is above the CUDA backend's " +
                                        std::to_string(kMaxLayerNormHidden));
  if (fp8 && (I % 8 != 0 || I > kMaxFp8RowQuant))
    return fail(VN_ERR_UNSUPPORTED, "ESM-2 intermediate size " + std::to_string(I) +
                                        " is not supported in fp8 (a multiple of 8 up to " +
                                        std::to_string(kMaxFp8RowQuant) + " is): use fp16");
  auto m = std::make_unique<Esm2>(cfg, engine);
  m->fp8 = fp8;
  if (fp8) {
    // Which GEMMs run in E4M3: all four unless VIRNUC_FP8_GEMMS lists a subset (e.g. "out,fc1,fc2").
    if (const char* v = std::getenv("VIRNUC_FP8_GEMMS")) {
      const std::string list = std::string(",") + v + ",";
      auto has = [&](const char* n) { return list.find(std::string(",") + n + ",") != std::string::npos; };
      m->q8 = has("qkv"), m->o8 = has("out"), m->f18 = has("fc1"), m->f28 = has("fc2");
    }
  } else {
    m->q8 = m->o8 = m->f18 = m->f28 = false;
  }
  // FP8: the outlier channels, from every LayerNorm that feeds a GEMM (VIRNUC_FP8_OUTLIERS=0: none).
  int32_t outliers[kFp8MaxOutliers];
  const char* no_outliers = std::getenv("VIRNUC_FP8_OUTLIERS");
  if ((m->q8 || m->f18) && !(no_outliers && std::strcmp(no_outliers, "0") == 0)) {
    std::vector<const float*> gains;
    for (int l = 0; l < cfg.n_layers; ++l)
      for (const char* n : {".attention.LayerNorm.weight", ".LayerNorm.weight"}) {
        const WeightSet::Entry* e = ws.get("encoder.layer." + std::to_string(l) + n, {H});
        if (!e) return VN_ERR_INVALID;
        gains.push_back(e->f32().data());
      }
    m->outl.n = fp8_outlier_channels(gains.data(), static_cast<int64_t>(gains.size()), H, outliers);
    m->outl.cols = fp8_ext_columns(m->outl.n, H);
    if (std::getenv("VIRNUC_GEMM_PLANS")) {
      std::fprintf(stderr, "fp8 outlier channels: %d", m->outl.n);
      for (int j = 0; j < m->outl.n; ++j) std::fprintf(stderr, "%s%d", j ? "," : " ", outliers[j]);
      std::fprintf(stderr, "\n");
    }
  }
  const int64_t E = m->outl.cols;
  auto in = [](bool e4m3) { return e4m3 ? GemmIn::kE4M3 : GemmIn::kF16; };
  // FP8 models: the residual GEMMs carry no bias (see pending_*).
  m->qkv = plans.get(gemm, {3 * H, H + (m->q8 ? E : 0), in(m->q8), GemmOut::kF16, true});
  if (m->qkv) m->out = plans.get(gemm, {H, H, in(m->o8), GemmOut::kF32Accumulate, !fp8});
  if (m->out) m->fc1 = plans.get(gemm, {I, H + (m->f18 ? E : 0), in(m->f18), GemmOut::kF16, true});
  if (m->fc1) m->fc2 = plans.get(gemm, {H, I, in(m->f28), GemmOut::kF32Accumulate, !fp8});
  if (!m->fc2) return VN_ERR_UNSUPPORTED;  // the plan set the message
  // The outlier rows' second GEMM after both stream-writing GEMMs (VIRNUC_FP8_OUTLIER_ROWS: "out,fc2",
  // "out", "fc2" or "none"). Measured on the H200 (ESM-2 650M config with outliers, min cosine vs
  // FP32): none 0.958, out 0.989, out,fc2 0.995; FC2's costs ~26 ms per 131 k tokens of the 3B.
  const char* rows_env = std::getenv("VIRNUC_FP8_OUTLIER_ROWS");
  const std::string rows = std::string(",") + (rows_env ? rows_env : "out,fc2") + ",";
  const bool lo_out = rows.find(",out,") != std::string::npos, lo_fc2 = rows.find(",fc2,") != std::string::npos;
  if (m->outl.n > 0 && m->o8 && lo_out &&
      !(m->out_lo = plans.get(gemm, {kLoRows, H, GemmIn::kE4M3, GemmOut::kF32, false})))
    return VN_ERR_UNSUPPORTED;
  if (m->outl.n > 0 && m->f28 && lo_fc2 &&
      !(m->fc2_lo = plans.get(gemm, {kLoRows, I, GemmIn::kE4M3, GemmOut::kF32, false})))
    return VN_ERR_UNSUPPORTED;

  // Layers whose inv_freq holds the same values share one device copy and one rotary table.
  std::vector<const WeightSet::Entry*> distinct;
  m->rope_index.resize(static_cast<size_t>(cfg.n_layers));
  for (int l = 0; l < cfg.n_layers; ++l) {
    const WeightSet::Entry* e =
        ws.get("encoder.layer." + std::to_string(l) + ".attention.self.rotary_embeddings.inv_freq", {hd / 2});
    if (!e) return VN_ERR_INVALID;
    size_t k = 0;
    while (k < distinct.size() && distinct[k]->f32() != e->f32()) ++k;
    if (k == distinct.size()) distinct.push_back(e);
    m->rope_index[l] = static_cast<int>(k);
  }
  WeightLoader w(ws, m.get(), stream);
  for (const WeightSet::Entry* e : distinct) m->rope_freqs.push_back(w.f32_host(e->f32()));
  if (m->outl.n > 0) {
    std::vector<int8_t> slot(static_cast<size_t>(H), -1);
    for (int j = 0; j < m->outl.n; ++j) slot[outliers[j]] = static_cast<int8_t>(j);
    m->outl.index = static_cast<const int32_t*>(w.bytes_host(outliers, sizeof(int32_t) * m->outl.n));
    m->outl.slot = static_cast<const int8_t*>(w.bytes_host(slot.data(), slot.size()));
  }
  m->word = w.f32("embeddings.word_embeddings.weight", {V, H});
  m->layers.resize(static_cast<size_t>(cfg.n_layers));
  // FP8: residual biases summed so far, and the device pointers that get each snapshot (uploaded
  // after the weights: a host-array upload waits for the stream).
  std::vector<float> pending(static_cast<size_t>(H), 0.0f);
  std::vector<std::pair<float**, std::vector<float>>> snapshots;
  for (int l = 0; l < cfg.n_layers && w.status == VN_OK; ++l) {
    EsmLayer& L = m->layers[l];
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    L.ln_attn_w = w.f32(p + "attention.LayerNorm.weight", {H});
    L.ln_attn_b = w.f32(p + "attention.LayerNorm.bias", {H});
    const std::string a = p + "attention.self.";
    L.b_qkv = w.f16_stack({a + "query.bias", a + "key.bias", a + "value.bias"}, {H});
    L.inv_freq = m->rope_freqs[m->rope_index[l]];
    L.ln_ffn_w = w.f32(p + "LayerNorm.weight", {H});
    L.ln_ffn_b = w.f32(p + "LayerNorm.bias", {H});
    L.b_fc1 = w.f16(p + "intermediate.dense.bias", {I});
    if (!fp8) {
      L.w_qkv = w.f16_stack({a + "query.weight", a + "key.weight", a + "value.weight"}, {H, H});
      L.w_out = w.f16(p + "attention.output.dense.weight", {H, H});
      L.b_out = w.f32(p + "attention.output.dense.bias", {H});
      L.w_fc1 = w.f16(p + "intermediate.dense.weight", {I, H});
      L.w_fc2 = w.f16(p + "output.dense.weight", {H, I});
      L.b_fc2 = w.f32(p + "output.dense.bias", {H});
      continue;
    }
    const std::string qkv_w[] = {a + "query.weight", a + "key.weight", a + "value.weight"};
    if (m->q8) L.q_qkv = w.fp8_stack({qkv_w[0], qkv_w[1], qkv_w[2]}, {H, H}, &L.s_qkv, &m->outl);
    else L.w_qkv = w.f16_stack({qkv_w[0], qkv_w[1], qkv_w[2]}, {H, H});
    if (m->o8) L.q_out = w.fp8_stack({p + "attention.output.dense.weight"}, {H, H}, &L.s_out);
    else L.w_out = w.f16(p + "attention.output.dense.weight", {H, H});
    if (m->out_lo)
      L.lo_out = w.fp8_lo_rows(p + "attention.output.dense.weight", {H, H}, outliers, m->outl.n, kLoRows, &L.s_lo_out);
    if (m->f18) L.q_fc1 = w.fp8_stack({p + "intermediate.dense.weight"}, {I, H}, &L.s_fc1, &m->outl);
    else L.w_fc1 = w.f16(p + "intermediate.dense.weight", {I, H});
    if (m->f28) L.q_fc2 = w.fp8_stack({p + "output.dense.weight"}, {H, I}, &L.s_fc2);
    else L.w_fc2 = w.f16(p + "output.dense.weight", {H, I});
    if (m->fc2_lo)
      L.lo_fc2 = w.fp8_lo_rows(p + "output.dense.weight", {H, I}, outliers, m->outl.n, kLoRows, &L.s_lo_fc2);
    // The residual biases so far, added by the LayerNorms that read the stream.
    const WeightSet::Entry* bo = ws.get(p + "attention.output.dense.bias", {H});
    const WeightSet::Entry* b2 = ws.get(p + "output.dense.bias", {H});
    if (!bo || !b2) return VN_ERR_INVALID;
    snapshots.emplace_back(&L.pending_attn, pending);
    for (int64_t j = 0; j < H; ++j) pending[j] += bo->f32()[j];
    snapshots.emplace_back(&L.pending_ffn, pending);
    for (int64_t j = 0; j < H; ++j) pending[j] += b2->f32()[j];
  }
  m->ln_final_w = w.f32("encoder.emb_layer_norm_after.weight", {H});
  m->ln_final_b = w.f32("encoder.emb_layer_norm_after.bias", {H});
  if (fp8) {
    snapshots.emplace_back(&m->pending_final, pending);
    for (auto& [dst, values] : snapshots) *dst = w.f32_host(values);
  }
  VN_TRY(w.finish());
  *out = std::move(m);
  return VN_OK;
}

}  // namespace vn::cuda
