// The CPU backend's models: ESM-2 and DNABERT-S encoders and the VirNucPro MLP head.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/buffer.h"
#include "cpu/gemm.h"
#include "cpu/thread_pool.h"

namespace vn::cpu {

class CpuModel : public vn::Model {
 public:
  using vn::Model::Model;
  // Encoders: pooled embeddings (n_seqs, hidden) of a validated packed batch.
  virtual vn_status embed(ThreadPool& pool, const int32_t* tokens, const int32_t* cu, int32_t n_seqs, float* out);
  // Classifier: probabilities (n_rows, n_classes).
  virtual vn_status classify(ThreadPool& pool, const float* features, int32_t n_rows, float* out);
  // Rows pooled from a sequence of n tokens (ESM-2 drops <cls>/<eos>); embed needs >= 1.
  virtual int64_t pooled_rows(int64_t n_tokens) const { return n_tokens; }
};

// The weights are packed on `pool`'s threads (the engine's; nullptr: on the calling thread).
vn_status load_esm2(const vn_model_config& cfg, const WeightSet& ws, ThreadPool* pool, std::unique_ptr<CpuModel>* out);
vn_status load_dnabert(const vn_model_config& cfg, const WeightSet& ws, ThreadPool* pool,
                       std::unique_ptr<CpuModel>* out);
vn_status load_mlp(const vn_model_config& cfg, const WeightSet& ws, ThreadPool* pool, std::unique_ptr<CpuModel>* out);

// Load helpers: take a checked tensor out of the set (its FP32 data is moved, not copied).
struct WeightTaker {
  const WeightSet& ws;
  ThreadPool* pool = nullptr;  // packs on these threads (nullptr: the calling thread)
  vn_status status = VN_OK;
  std::vector<float> take(const std::string& name, std::initializer_list<int64_t> shape);
  // A checked Linear weight [n,k] as a block of rows in its stored dtype (no FP32 copy), with
  // `bias` (FP32, kept alive by the caller) or nullptr; {} when missing or misshapen (status set).
  LinearRows rows(const std::string& weight, int64_t n, int64_t k, const float* bias);
  // Packs a Linear layer (weight [n,k] straight from its stored dtype, optional bias [n]).
  void linear(PackedLinear* out, const std::string& weight, const std::string& bias, int64_t n, int64_t k);
};

}  // namespace vn::cpu
