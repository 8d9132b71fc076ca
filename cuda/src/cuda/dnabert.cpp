// DNABERT-S on the GPU (models.md): LN(word + token_type[0]), post-LN layers (fused Wqkv GEMM,
// ALiBi attention, output GEMM adding into the FP32 residual stream, LayerNorm; gated erf-GELU
// FFN), mean over every token. LayerNorms write both the FP32 stream and the FP16 GEMM input.
#include <cmath>

#include "cuda/kernels.h"
#include "cuda/model.h"

namespace vn::cuda {

namespace {

struct BertLayer {
  __half* w_qkv;                // (3H, H): Q, K, V blocks, each head-major
  __half* b_qkv;                // (3H)
  __half* w_out;                // (H, H)
  float* b_out;                 // (H)
  float *ln_attn_w, *ln_attn_b;
  __half* w_gated;              // (2I, H), no bias: gate = first I outputs, linear = last I
  __half* w_wo;                 // (H, I)
  float* b_wo;                  // (H)
  float *ln_mlp_w, *ln_mlp_b;
};

class Dnabert : public CudaModel {
 public:
  using CudaModel::CudaModel;

  float* word = nullptr;         // (vocab, H)
  float* token_type0 = nullptr;  // (H)
  float *ln_emb_w = nullptr, *ln_emb_b = nullptr;
  float* slopes = nullptr;       // (n_heads) ALiBi
  std::vector<BertLayer> layers;
  const GemmPlan *qkv = nullptr, *out = nullptr, *gated = nullptr, *wo = nullptr;

  size_t workspace_bytes(int64_t T, int64_t) const override {
    const int64_t H = cfg.hidden, I = cfg.intermediate;
    return carve_bytes<float>(T * H) + 2 * carve_bytes<__half>(T * H) + carve_bytes<__half>(T * 3 * H) +
           carve_bytes<__half>(T * 2 * I);
  }

  vn_status embed(const Exec& ex, const EmbedBatch& b, void* workspace) override {
    const int64_t T = b.T, H = cfg.hidden, I = cfg.intermediate;
    const int hd = cfg.hidden / cfg.n_heads;
    Carver carve(workspace, workspace_bytes(T, b.n_seqs));
    float* x = carve.take<float>(T * H);       // residual stream (post-LN)
    __half* xh = carve.take<__half>(T * H);    // its fp16 copy, the next GEMM's input
    __half* qkv_buf = carve.take<__half>(T * 3 * H);
    __half* ctx = carve.take<__half>(T * H);
    __half* u = carve.take<__half>(T * 2 * I);
    cudaStream_t s = ex.stream;

    ex.mark("embed");
    VN_CUDA_TRY(layernorm(nullptr, x, xh, ln_emb_w, ln_emb_b, T, cfg.hidden, cfg.ln_eps, s, b.tokens, word,
                          token_type0),
                "DNABERT-S embeddings");
    AttnParams ap = batch_attention(cfg, b, ex, qkv_buf, ctx);
    ap.score_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ap.alibi = slopes;
    const GemmContext& g = *ex.gemm;
    for (const BertLayer& L : layers) {
      ex.mark("gemm_qkv");
      VN_TRY(qkv->run(g, xh, H, L.w_qkv, L.b_qkv, qkv_buf, 3 * H, T, s));
      ex.mark("attention");
      VN_CUDA_TRY(attention(ap, s), "attention");
      ex.mark("gemm_out");
      VN_TRY(out->run(g, ctx, H, L.w_out, L.b_out, x, H, T, s));
      ex.mark("layernorm");
      VN_CUDA_TRY(layernorm(x, x, xh, L.ln_attn_w, L.ln_attn_b, T, cfg.hidden, cfg.ln_eps, s), "LayerNorm");
      ex.mark("gemm_fc1");
      VN_TRY(gated->run(g, xh, H, L.w_gated, nullptr, u, 2 * I, T, s));
      ex.mark("gelu");
      VN_CUDA_TRY(gated_gelu(u, T, cfg.intermediate, s), "gated GELU");
      ex.mark("gemm_fc2");
      VN_TRY(wo->run(g, u, 2 * I, L.w_wo, L.b_wo, x, H, T, s));
      ex.mark("layernorm");
      VN_CUDA_TRY(layernorm(x, x, xh, L.ln_mlp_w, L.ln_mlp_b, T, cfg.hidden, cfg.ln_eps, s), "LayerNorm");
    }
    ex.mark("final");
    VN_CUDA_TRY(mean_pool(x, cfg.hidden, b.cu, b.n_seqs, 0, 0, 0, b.out, b.bad_row, s), "pooling");
    return VN_OK;
  }
};

}  // namespace

vn_status load_dnabert(const vn_model_config& cfg, const WeightSet& ws, CudaEngine* engine, GemmPlans& plans,
                       const GemmContext& gemm, cudaStream_t stream, std::unique_ptr<CudaModel>* out) {
  const int64_t H = cfg.hidden, I = cfg.intermediate, V = cfg.vocab;
  if (H > kMaxLayerNormHidden)
    return fail(VN_ERR_UNSUPPORTED, "DNABERT-S hidden size " + std::to_string(H) + " is above the CUDA backend's " +
                                        std::to_string(kMaxLayerNormHidden));
  auto m = std::make_unique<Dnabert>(cfg, engine);
  m->qkv = plans.get(gemm, {3 * H, H, GemmIn::kF16, GemmOut::kF16, true});
  if (m->qkv) m->out = plans.get(gemm, {H, H, GemmIn::kF16, GemmOut::kF32Accumulate, true});
  if (m->out) m->gated = plans.get(gemm, {2 * I, H, GemmIn::kF16, GemmOut::kF16, false});
  if (m->gated) m->wo = plans.get(gemm, {H, I, GemmIn::kF16, GemmOut::kF32Accumulate, true});
  if (!m->wo) return VN_ERR_UNSUPPORTED;

  WeightLoader w(ws, m.get(), stream);
  m->word = w.f32("embeddings.word_embeddings.weight", {V, H});
  m->token_type0 = w.f32_prefix("embeddings.token_type_embeddings.weight", {2, H}, H);
  m->ln_emb_w = w.f32("embeddings.LayerNorm.weight", {H});
  m->ln_emb_b = w.f32("embeddings.LayerNorm.bias", {H});
  m->layers.resize(static_cast<size_t>(cfg.n_layers));
  for (int l = 0; l < cfg.n_layers && w.status == VN_OK; ++l) {
    BertLayer& L = m->layers[l];
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    L.w_qkv = w.f16(p + "attention.self.Wqkv.weight", {3 * H, H});
    L.b_qkv = w.f16(p + "attention.self.Wqkv.bias", {3 * H});
    L.w_out = w.f16(p + "attention.output.dense.weight", {H, H});
    L.b_out = w.f32(p + "attention.output.dense.bias", {H});
    L.ln_attn_w = w.f32(p + "attention.output.LayerNorm.weight", {H});
    L.ln_attn_b = w.f32(p + "attention.output.LayerNorm.bias", {H});
    L.w_gated = w.f16(p + "mlp.gated_layers.weight", {2 * I, H});
    L.w_wo = w.f16(p + "mlp.wo.weight", {H, I});
    L.b_wo = w.f32(p + "mlp.wo.bias", {H});
    L.ln_mlp_w = w.f32(p + "mlp.layernorm.weight", {H});
    L.ln_mlp_b = w.f32(p + "mlp.layernorm.bias", {H});
  }
  m->slopes = w.f32_host(alibi_slopes(cfg.n_heads));
  VN_TRY(w.finish());
  *out = std::move(m);
  return VN_OK;
}

}  // namespace vn::cuda
