// Internal interface between the C ABI (api.cpp) and the backends (cpu/, cuda/).
// Not part of the public ABI: virnuc.h is.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "virnuc.h"

namespace vn {

// Sets the thread-local error returned by vn_last_error(); returns the status for chaining.
vn_status fail(vn_status status, const std::string& message);

// A model's weights after load-time checks, by name. Each entry views the caller's tensor
// (any alignment, e.g. a memory-mapped checkpoint; valid during Engine::load only) in its stored
// dtype; the FP32 copy exists only where a backend asks for it: the CPU backend gets every tensor
// but the Linear weights converted up front (host_f32; it packs the Linear weights straight from the
// stored dtype), the CUDA backend copies the stored bytes to the device and converts there, asking
// for FP32 on the host only for a few small vectors (f32()).
struct WeightPrefetch;  // weights.cpp: background FP32 conversion ahead of the consumer

struct WeightSet {
  struct Entry {
    std::vector<int64_t> shape;
    int32_t dtype = VN_F32;     // vn_dtype of src
    const void* src = nullptr;  // count values of dtype, any alignment
    int64_t count = 0;
    // Row-major FP32. Mutable: the set is discarded right after Engine::load, so a backend may
    // move or clear an entry's data once it has converted it (halves peak host memory at load).
    mutable std::vector<float> data;
    // The FP32 values: converted on first use, or by the prefetch threads (host_f32), in which
    // case this waits for them. Throws std::bad_alloc when the memory is not there.
    const std::vector<float>& f32() const;
    size_t src_bytes() const { return static_cast<size_t>(count) * (dtype == VN_F32 ? 4 : 2); }
    // A Linear layer's weight (the arch's GEMM operands): left out of the host_f32 conversion, as
    // the CPU backend packs it from src; f32() still converts it on first use.
    bool linear = false;
    // Conversion state (weights.cpp): 0 not started, 1 converting, 2 done, 3 out of memory.
    mutable int state = 0;
    WeightPrefetch* prefetch = nullptr;
  };
  std::map<std::string, Entry> tensors;
  // Declared after `tensors`: destroyed (its threads stopped and joined) before them.
  std::shared_ptr<WeightPrefetch> prefetch;

  // Looks up a tensor and checks its shape; on mismatch or absence sets the error and returns nullptr.
  const Entry* get(const std::string& name, std::initializer_list<int64_t> shape) const;
};

// Checks that every tensor the arch needs is present with the right shape and a supported dtype
// (names listed in virnuc.h) and builds the WeightSet over the caller's tensors. With host_f32 the
// tensors other than Linear weights (Entry::linear) are converted to FP32 lazily and, when they add
// up to enough, in parallel: threads on every core convert them in the order the arch lists them,
// a bounded amount ahead of the backend taking them (Entry::f32), each thread allocating and
// first-touching the tensors it fills.
vn_status build_weight_set(const vn_model_config& cfg, const vn_tensor* tensors, int32_t n, WeightSet* out,
                           bool host_f32 = true);

// count values of a vn_dtype at src (any alignment) to FP32, on the calling thread.
void convert_to_f32(int32_t dtype, const void* src, float* dst, int64_t count);

// memcpy on up to max_threads threads (slices of at least a few MiB each); for staging weights
// from a mapped file, whose first reads fault the pages in.
void parallel_memcpy(void* dst, const void* src, size_t bytes, unsigned max_threads = 16);

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
  // Whether load() wants every weight converted to FP32 on the host first (see WeightSet).
  virtual bool host_f32_weights() const { return true; }
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

// nullptr, with the error set, when VIRNUC_CPU_ISA names kernels this CPU cannot run.
Engine* create_cpu_engine(int32_t n_threads);
#ifdef VN_WITH_CUDA
Engine* create_cuda_engine(int32_t device);  // nullptr + error set when no device
int32_t cuda_device_count();
#endif

}  // namespace vn
