// Internal interface between the C ABI (api.cpp) and the backends (cpu/, cuda/).
// Not part of the public ABI: virnuc.h is.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "virnuc.h"

namespace vn {

// Sets the thread-local error returned by vn_last_error(); returns the status for chaining.
vn_status fail(vn_status status, const std::string& message);

// A model's weights after load-time checks, converted to FP32 host arrays by name.
// Backends convert further (FP16/FP8, layouts) in their own load().
struct WeightSet {
  struct Entry {
    std::vector<int64_t> shape;
    // Row-major FP32. Mutable: the set is discarded right after Engine::load, so a backend may
    // move or clear an entry's data once it has converted it (halves peak host memory at load).
    mutable std::vector<float> data;
  };
  std::map<std::string, Entry> tensors;

  // Looks up a tensor and checks its shape; on mismatch or absence sets the error and returns nullptr.
  const Entry* get(const std::string& name, std::initializer_list<int64_t> shape) const;
};

// Converts the caller's tensors (f32/f16/bf16) to a WeightSet and checks that every tensor the
// arch needs is present with the right shape (names listed in virnuc.h).
vn_status build_weight_set(const vn_model_config& cfg, const vn_tensor* tensors, int32_t n, WeightSet* out);

// ALiBi slopes for n heads (power-of-two heads: 2^(-8 i / n); otherwise the closest power of
// two's slopes followed by every other slope of twice that many heads).
std::vector<float> alibi_slopes(int n_heads);

class Model {
 public:
  explicit Model(const vn_model_config& cfg) : cfg(cfg) {}
  virtual ~Model() = default;
  int32_t output_dim() const { return cfg.arch == VN_ARCH_MLP ? cfg.n_classes : cfg.hidden; }
  vn_model_config cfg;
  class Engine* engine = nullptr;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string describe() = 0;
  virtual vn_status memory(int64_t* free_bytes, int64_t* total_bytes) = 0;
  virtual void* host_alloc(int64_t bytes) = 0;
  virtual void host_free(void* ptr) = 0;
  virtual vn_status load(const vn_model_config& cfg, const WeightSet& weights, int32_t precision, Model** out) = 0;
  virtual vn_status submit_embed(Model* model, const int32_t* tokens, const int32_t* cu_seqlens, int32_t n_seqs,
                                 float* out, int64_t* ticket) = 0;
  virtual vn_status submit_classify(Model* model, const float* features, int32_t n_rows, float* out,
                                    int64_t* ticket) = 0;
  virtual vn_status wait(int64_t ticket) = 0;
  virtual vn_status poll(int64_t ticket) = 0;
  virtual int32_t bad_row(int64_t ticket) = 0;
  virtual int64_t suggest_token_budget(Model* model) = 0;
  // vn_engine_cancel: drop work not yet started (completing its tickets with VN_ERR_CANCELLED).
  // The C ABI already refuses new submissions; a backend without a queue (CPU) needs nothing
  // more. The CUDA engine does not override it yet: its queued batches (at most two parts) run.
  virtual void cancel() {}
};

Engine* create_cpu_engine(int32_t n_threads);
#ifdef VN_WITH_CUDA
Engine* create_cuda_engine(int32_t device);  // nullptr + error set when no device
int32_t cuda_device_count();
#endif

}  // namespace vn
