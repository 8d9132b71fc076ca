// ESM-2 forward (models.md): token-dropout rescale, pre-LN layers with rotary self-attention
// and an erf-GELU FFN, final emb_layer_norm_after, mean over residues 1..min(max_pool, p).
#include <algorithm>
#include <cmath>

#include "cpu/models.h"
#include "cpu/ops.h"

namespace vn::cpu {

namespace {

struct EsmLayer {
  std::vector<float> ln_attn_w, ln_attn_b;  // (H)
  PackedLinear qkv;                         // (3H, H): query, key, value rows
  std::vector<float> inv_freq;              // (head_dim / 2)
  PackedLinear out;                         // (H, H)
  std::vector<float> ln_ffn_w, ln_ffn_b;    // (H)
  PackedLinear fc1;                         // (I, H)
  PackedLinear fc2;                         // (H, I)
};

class Esm2 : public CpuModel {
 public:
  using CpuModel::CpuModel;

  std::vector<float> word;  // (vocab, H)
  std::vector<EsmLayer> layers;
  std::vector<float> ln_final_w, ln_final_b;
  FloatBuffer x, y, h, qkv, ctx, ffn;  // activations, grown to the largest batch

  int64_t pooled_rows(int64_t n_tokens) const override {
    const int64_t p = n_tokens - 2;
    return cfg.max_pool_positions > 0 ? std::min<int64_t>(p, cfg.max_pool_positions) : p;
  }

  vn_status embed(ThreadPool& pool, const int32_t* tokens, const int32_t* cu, int32_t n_seqs, float* out) override {
    const int64_t T = cu[n_seqs];
    const int64_t H = cfg.hidden, I = cfg.intermediate;
    const int hd = cfg.hidden / cfg.n_heads;
    x.reserve(T * H);
    y.reserve(T * H);
    h.reserve(T * H);
    ctx.reserve(T * H);
    qkv.reserve(T * 3 * H);
    ffn.reserve(T * I);

    // Embeddings with the token-dropout rescale: <mask> rows zeroed, rows scaled by
    // 0.88 / (1 - n_mask / n_tokens), as at training.
    pool.parallel_for(n_seqs, [&](int64_t s) {
      const int64_t t0 = cu[s], t1 = cu[s + 1];
      int64_t n_mask = 0;
      for (int64_t t = t0; t < t1; ++t) n_mask += tokens[t] == cfg.mask_token_id;
      const float ratio = static_cast<float>(n_mask) / static_cast<float>(t1 - t0);
      const float denom = 1.0f - ratio;
      for (int64_t t = t0; t < t1; ++t) {
        float* row = x.data() + t * H;
        const bool masked = cfg.token_dropout && tokens[t] == cfg.mask_token_id;
        const float* src = word.data() + static_cast<int64_t>(tokens[t]) * H;
        for (int64_t j = 0; j < H; ++j) {
          const float e = masked ? 0.0f : src[j];
          row[j] = cfg.token_dropout ? (e * 0.88f) / denom : e;
        }
      }
    });

    const float q_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (const EsmLayer& L : layers) {
      layer_norm(pool, x.data(), h.data(), T, H, L.ln_attn_w.data(), L.ln_attn_b.data(), cfg.ln_eps);
      linear(pool, h.data(), T, H, L.qkv, qkv.data(), 3 * H);
      rotary_qk(pool, qkv.data(), 3 * H, H, cu, n_seqs, cfg.n_heads, hd, L.inv_freq.data(), q_scale);
      AttentionArgs args;
      args.qkv = qkv.data();
      args.ld = 3 * H;
      args.hidden = H;
      args.n_heads = cfg.n_heads;
      args.head_dim = hd;
      args.out = ctx.data();
      attention(pool, args, cu, n_seqs);
      linear(pool, ctx.data(), T, H, L.out, y.data(), H, Epilogue{Act::kNone, x.data(), H});
      std::swap(x, y);
      layer_norm(pool, x.data(), h.data(), T, H, L.ln_ffn_w.data(), L.ln_ffn_b.data(), cfg.ln_eps);
      linear(pool, h.data(), T, H, L.fc1, ffn.data(), I, Epilogue{Act::kGelu, nullptr, 0});
      linear(pool, ffn.data(), T, I, L.fc2, y.data(), H, Epilogue{Act::kNone, x.data(), H});
      std::swap(x, y);
    }
    layer_norm(pool, x.data(), h.data(), T, H, ln_final_w.data(), ln_final_b.data(), cfg.ln_eps);
    mean_pool(pool, h.data(), H, cu, n_seqs, 1, 1, cfg.max_pool_positions, out);
    return VN_OK;
  }
};

}  // namespace

vn_status load_esm2(const vn_model_config& cfg, const WeightSet& ws, ThreadPool* pool, std::unique_ptr<CpuModel>* out) {
  auto m = std::make_unique<Esm2>(cfg);
  const int64_t H = cfg.hidden, I = cfg.intermediate, V = cfg.vocab, hd = cfg.hidden / cfg.n_heads;
  WeightTaker w{ws, pool};
  m->word = w.take("embeddings.word_embeddings.weight", {V, H});
  m->layers.resize(static_cast<size_t>(cfg.n_layers));
  for (int l = 0; l < cfg.n_layers && w.status == VN_OK; ++l) {
    EsmLayer& L = m->layers[l];
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    L.ln_attn_w = w.take(p + "attention.LayerNorm.weight", {H});
    L.ln_attn_b = w.take(p + "attention.LayerNorm.bias", {H});
    {
      // Query, key and value as one (3H, H) GEMM, packed straight from the three stored tensors.
      std::vector<float> bt[3];
      LinearRows blocks[3];
      const char* names[3] = {"query", "key", "value"};
      for (int i = 0; i < 3; ++i) {
        bt[i] = w.take(p + "attention.self." + names[i] + ".bias", {H});
        blocks[i] = w.rows(p + "attention.self." + names[i] + ".weight", H, H, bt[i].data());
      }
      if (w.status != VN_OK) break;
      pack_linear(&L.qkv, blocks, 3, H, pool);
    }
    L.inv_freq = w.take(p + "attention.self.rotary_embeddings.inv_freq", {hd / 2});
    w.linear(&L.out, p + "attention.output.dense.weight", p + "attention.output.dense.bias", H, H);
    L.ln_ffn_w = w.take(p + "LayerNorm.weight", {H});
    L.ln_ffn_b = w.take(p + "LayerNorm.bias", {H});
    w.linear(&L.fc1, p + "intermediate.dense.weight", p + "intermediate.dense.bias", I, H);
    w.linear(&L.fc2, p + "output.dense.weight", p + "output.dense.bias", H, I);
  }
  m->ln_final_w = w.take("encoder.emb_layer_norm_after.weight", {H});
  m->ln_final_b = w.take("encoder.emb_layer_norm_after.bias", {H});
  if (w.status != VN_OK) return w.status;
  *out = std::move(m);
  return VN_OK;
}

}  // namespace vn::cpu
