// DNABERT-S forward (models.md): LN(word + token_type[0]), post-LN layers with ALiBi
// self-attention and a gated erf-GELU FFN, no final LN, mean over every token.
#include <algorithm>
#include <cmath>

#include "cpu/isa.h"
#include "cpu/models.h"
#include "cpu/ops.h"

namespace vn::cpu {

namespace {

struct BertLayer {
  PackedLinear qkv;                 // (3H, H): Q, K, V blocks, each head-major
  PackedLinear out;                 // (H, H)
  std::vector<float> ln_attn_w, ln_attn_b;
  PackedLinear gated;               // (2I, H), no bias: gate = first I outputs, linear = last I
  PackedLinear wo;                  // (H, I)
  std::vector<float> ln_mlp_w, ln_mlp_b;
};

class Dnabert : public CpuModel {
 public:
  using CpuModel::CpuModel;

  std::vector<float> word;        // (vocab, H)
  std::vector<float> token_type0; // (H): token type 0 is the only one used
  std::vector<float> ln_emb_w, ln_emb_b;
  std::vector<BertLayer> layers;
  std::vector<float> slopes;      // ALiBi, per head
  FloatBuffer x, y, qkv, ctx, u;

  vn_status embed(ThreadPool& pool, const int32_t* tokens, const int32_t* cu, int32_t n_seqs, float* out) override {
    const int64_t T = cu[n_seqs];
    const int64_t H = cfg.hidden, I = cfg.intermediate;
    const int hd = cfg.hidden / cfg.n_heads;
    x.reserve(T * H);
    y.reserve(T * H);
    ctx.reserve(T * H);
    qkv.reserve(T * 3 * H);
    u.reserve(T * 2 * I);

    pool.parallel_for((T + 63) / 64, [&](int64_t b) {
      const int64_t t1 = std::min(T, (b + 1) * 64);
      for (int64_t t = b * 64; t < t1; ++t) {
        const float* src = word.data() + static_cast<int64_t>(tokens[t]) * H;
        float* row = y.data() + t * H;
        for (int64_t j = 0; j < H; ++j) row[j] = src[j] + token_type0[j];
      }
    });
    layer_norm(pool, y.data(), x.data(), T, H, ln_emb_w.data(), ln_emb_b.data(), cfg.ln_eps);

    const float score_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (const BertLayer& L : layers) {
      linear(pool, x.data(), T, H, L.qkv, qkv.data(), 3 * H);
      AttentionArgs args;
      args.qkv = qkv.data();
      args.ld = 3 * H;
      args.hidden = H;
      args.n_heads = cfg.n_heads;
      args.head_dim = hd;
      args.score_scale = score_scale;
      args.alibi_slopes = slopes.data();
      args.out = ctx.data();
      attention(pool, args, cu, n_seqs);
      linear(pool, ctx.data(), T, H, L.out, y.data(), H, Epilogue{Act::kNone, x.data(), H});
      layer_norm(pool, y.data(), x.data(), T, H, L.ln_attn_w.data(), L.ln_attn_b.data(), cfg.ln_eps);

      linear(pool, x.data(), T, H, L.gated, u.data(), 2 * I);
      // u[:, :I] = GELU(gate) * linear, row by row, in place.
      const auto gelu = kernels().gelu;
      pool.parallel_for((T + 15) / 16, [&](int64_t b) {
        const int64_t t1 = std::min(T, (b + 1) * 16);
        for (int64_t t = b * 16; t < t1; ++t) {
          float* g = u.data() + t * 2 * I;
          gelu(g, I);
          for (int64_t j = 0; j < I; ++j) g[j] = g[j] * g[I + j];
        }
      });
      linear(pool, u.data(), T, 2 * I, L.wo, y.data(), H, Epilogue{Act::kNone, x.data(), H});
      layer_norm(pool, y.data(), x.data(), T, H, L.ln_mlp_w.data(), L.ln_mlp_b.data(), cfg.ln_eps);
    }
    mean_pool(pool, x.data(), H, cu, n_seqs, 0, 0, 0, out);
    return VN_OK;
  }
};

}  // namespace

vn_status load_dnabert(const vn_model_config& cfg, const WeightSet& ws, ThreadPool* pool, std::unique_ptr<CpuModel>* out) {
  auto m = std::make_unique<Dnabert>(cfg);
  const int64_t H = cfg.hidden, I = cfg.intermediate, V = cfg.vocab;
  WeightTaker w{ws, pool};
  m->word = w.take("embeddings.word_embeddings.weight", {V, H});
  std::vector<float> tt = w.take("embeddings.token_type_embeddings.weight", {2, H});
  if (w.status == VN_OK) m->token_type0.assign(tt.begin(), tt.begin() + H);
  m->ln_emb_w = w.take("embeddings.LayerNorm.weight", {H});
  m->ln_emb_b = w.take("embeddings.LayerNorm.bias", {H});
  m->layers.resize(static_cast<size_t>(cfg.n_layers));
  for (int l = 0; l < cfg.n_layers && w.status == VN_OK; ++l) {
    BertLayer& L = m->layers[l];
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    w.linear(&L.qkv, p + "attention.self.Wqkv.weight", p + "attention.self.Wqkv.bias", 3 * H, H);
    w.linear(&L.out, p + "attention.output.dense.weight", p + "attention.output.dense.bias", H, H);
    L.ln_attn_w = w.take(p + "attention.output.LayerNorm.weight", {H});
    L.ln_attn_b = w.take(p + "attention.output.LayerNorm.bias", {H});
    w.linear(&L.gated, p + "mlp.gated_layers.weight", "", 2 * I, H);
    w.linear(&L.wo, p + "mlp.wo.weight", p + "mlp.wo.bias", H, I);
    L.ln_mlp_w = w.take(p + "mlp.layernorm.weight", {H});
    L.ln_mlp_b = w.take(p + "mlp.layernorm.bias", {H});
  }
  if (w.status != VN_OK) return w.status;
  m->slopes = alibi_slopes(cfg.n_heads);
  *out = std::move(m);
  return VN_OK;
}

}  // namespace vn::cpu
