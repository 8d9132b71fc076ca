// The VirNucPro MLP head on the GPU, FP32: a cuBLASLt GEMM for Linear(F, U) + bias, then one
// kernel for BatchNorm (eval, folded to scale/shift as the CPU backend does), ReLU, Linear(U, C)
// and softmax.
#include <cmath>

#include "cuda/kernels.h"
#include "cuda/model.h"

namespace vn::cuda {

namespace {

class Mlp : public CudaModel {
 public:
  using CudaModel::CudaModel;

  float* w1 = nullptr;     // (U, F)
  float* b1 = nullptr;     // (U)
  float* scale = nullptr;  // (U) weight / sqrt(running_var + eps)
  float* shift = nullptr;  // (U) bias - running_mean * scale
  float* w2 = nullptr;     // (C, U)
  float* b2 = nullptr;     // (C)
  const GemmPlan* hidden_layer = nullptr;

  size_t workspace_bytes(int64_t, int64_t n) const override {
    return carve_bytes<float>(static_cast<size_t>(n) * cfg.intermediate);
  }

  vn_status classify(const Exec& ex, const float* features, int64_t n, float* out, int32_t* bad_row,
                     void* workspace) override {
    const int64_t F = cfg.hidden, U = cfg.intermediate;
    Carver carve(workspace, workspace_bytes(0, n));
    float* h = carve.take<float>(static_cast<size_t>(n) * U);
    ex.mark("mlp_gemm");
    VN_TRY(hidden_layer->run(*ex.gemm, features, F, w1, b1, h, U, n, ex.stream));
    ex.mark("mlp_head");
    VN_CUDA_TRY(mlp_head(h, n, cfg.intermediate, scale, shift, w2, b2, cfg.n_classes, out, bad_row, ex.stream),
                "classifier head");
    return VN_OK;
  }
};

}  // namespace

vn_status load_mlp(const vn_model_config& cfg, const WeightSet& ws, CudaEngine* engine, GemmPlans& plans,
                   const GemmContext& gemm, cudaStream_t stream, std::unique_ptr<CudaModel>* out) {
  const int64_t F = cfg.hidden, U = cfg.intermediate, C = cfg.n_classes;
  if (C > 32) return fail(VN_ERR_UNSUPPORTED, "the CUDA classifier head supports at most 32 classes");
  auto m = std::make_unique<Mlp>(cfg, engine);
  m->hidden_layer = plans.get(gemm, {U, F, GemmIn::kF32, GemmOut::kF32, true});
  if (!m->hidden_layer) return VN_ERR_UNSUPPORTED;
  const WeightSet::Entry* g = ws.get("bn1.weight", {U});
  const WeightSet::Entry* b = ws.get("bn1.bias", {U});
  const WeightSet::Entry* mean = ws.get("bn1.running_mean", {U});
  const WeightSet::Entry* var = ws.get("bn1.running_var", {U});
  if (!g || !b || !mean || !var) return VN_ERR_INVALID;
  const std::vector<float>&gv = g->f32(), &bv = b->f32(), &mv = mean->f32(), &vv = var->f32();
  std::vector<float> sc(static_cast<size_t>(U)), sh(static_cast<size_t>(U));
  for (int64_t j = 0; j < U; ++j) {
    sc[j] = gv[j] / std::sqrt(vv[j] + cfg.ln_eps);
    sh[j] = bv[j] - mv[j] * sc[j];
  }
  WeightLoader w(ws, m.get(), stream);
  m->w1 = w.f32("hidden_layer.weight", {U, F});
  m->b1 = w.f32("hidden_layer.bias", {U});
  m->scale = w.f32_host(sc);
  m->shift = w.f32_host(sh);
  m->w2 = w.f32("output_layer.weight", {C, U});
  m->b2 = w.f32("output_layer.bias", {C});
  VN_TRY(w.finish());
  *out = std::move(m);
  return VN_OK;
}

}  // namespace vn::cuda
