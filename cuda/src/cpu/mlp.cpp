// VirNucPro MLPClassifier: Linear -> BatchNorm1d (eval, running stats) -> ReLU -> Linear -> softmax.
#include <algorithm>
#include <cmath>

#include "cpu/models.h"

namespace vn::cpu {

namespace {

class Mlp : public CpuModel {
 public:
  using CpuModel::CpuModel;

  PackedLinear hidden_layer;        // (U, F)
  std::vector<float> bn_scale;      // weight / sqrt(running_var + eps)
  std::vector<float> bn_shift;      // bias - running_mean * scale
  PackedLinear output_layer;        // (C, U)
  FloatBuffer h, logits;

  vn_status classify(ThreadPool& pool, const float* features, int32_t n, float* out) override {
    const int64_t F = cfg.hidden, U = cfg.intermediate, C = cfg.n_classes;
    h.reserve(static_cast<size_t>(n) * U);
    logits.reserve(static_cast<size_t>(n) * C);
    linear(pool, features, n, F, hidden_layer, h.data(), U);
    for (int64_t r = 0; r < n; ++r) {
      float* row = h.data() + r * U;
      for (int64_t j = 0; j < U; ++j) {
        const float z = row[j] * bn_scale[j] + bn_shift[j];
        row[j] = z > 0.0f || z != z ? z : 0.0f;  // ReLU that keeps NaN, as torch's does
      }
    }
    linear(pool, h.data(), n, U, output_layer, logits.data(), C);
    for (int64_t r = 0; r < n; ++r) {
      const float* z = logits.data() + r * C;
      float* o = out + r * C;
      float mx = z[0];
      for (int64_t j = 1; j < C; ++j) mx = std::max(mx, z[j]);
      float sum = 0.0f;
      for (int64_t j = 0; j < C; ++j) {
        o[j] = std::exp(z[j] - mx);
        sum += o[j];
      }
      for (int64_t j = 0; j < C; ++j) o[j] = o[j] / sum;
    }
    return VN_OK;
  }
};

}  // namespace

vn_status load_mlp(const vn_model_config& cfg, const WeightSet& ws, ThreadPool* pool, std::unique_ptr<CpuModel>* out) {
  auto m = std::make_unique<Mlp>(cfg);
  const int64_t F = cfg.hidden, U = cfg.intermediate, C = cfg.n_classes;
  WeightTaker w{ws, pool};
  w.linear(&m->hidden_layer, "hidden_layer.weight", "hidden_layer.bias", U, F);
  std::vector<float> g = w.take("bn1.weight", {U});
  std::vector<float> b = w.take("bn1.bias", {U});
  std::vector<float> mean = w.take("bn1.running_mean", {U});
  std::vector<float> var = w.take("bn1.running_var", {U});
  w.linear(&m->output_layer, "output_layer.weight", "output_layer.bias", C, U);
  if (w.status != VN_OK) return w.status;
  m->bn_scale.resize(static_cast<size_t>(U));
  m->bn_shift.resize(static_cast<size_t>(U));
  for (int64_t j = 0; j < U; ++j) {
    m->bn_scale[j] = g[j] / std::sqrt(var[j] + cfg.ln_eps);
    m->bn_shift[j] = b[j] - mean[j] * m->bn_scale[j];
  }
  *out = std::move(m);
  return VN_OK;
}

}  // namespace vn::cpu
