// The CUDA backend's models (ESM-2, DNABERT-S, the MLP head) and what they share: the per-batch
// execution context, the optional per-op profiler, and the load-time weight uploader.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "cuda/common.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"

namespace vn::cuda {

class CudaEngine;
// Blocks until every job the engine has accepted is finished (models call it before freeing).
void engine_drain(CudaEngine* engine);

// Per-op device time (VIRNUC_CUDA_PROFILE=1, read before each job): events between consecutive
// marks on the stream, summed per op name after each batch (which then waits for the device).
// Off, every call is a no-op.
class Profiler {
 public:
  explicit Profiler(bool enabled) : enabled_(enabled) {}
  ~Profiler();
  bool enabled() const { return enabled_; }
  // Switching off prints the report so far to stderr and starts over.
  void set_enabled(bool on);
  // Ends the running op (if any) and starts `op`.
  void mark(cudaStream_t stream, const char* op);
  // Ends the batch: waits for it and adds its op times; tokens count towards the report's rate.
  void end_batch(cudaStream_t stream, int64_t tokens);
  std::string report() const;

 private:
  bool enabled_;
  std::vector<std::pair<const char*, cudaEvent_t>> marks_;
  std::vector<cudaEvent_t> pool_;
  std::map<std::string, double> ms_;
  double total_ms_ = 0;
  int64_t tokens_ = 0, batches_ = 0;
};

struct Exec {
  cudaStream_t stream = nullptr;
  const GemmContext* gemm = nullptr;
  Profiler* prof = nullptr;
  bool naive_attention = false;
  void mark(const char* op) const {
    if (prof && prof->enabled()) prof->mark(stream, op);
  }
};

// One packed batch on the device.
struct EmbedBatch {
  const int32_t* tokens = nullptr;  // (T)
  const int32_t* cu = nullptr;      // (n_seqs + 1)
  const int2* tiles = nullptr;      // (n_tiles) attention query tiles
  int n_tiles = 0;
  int n_seqs = 0;
  int64_t T = 0;
  int max_len = 0;
  float* out = nullptr;             // (n_seqs, hidden) pooled embeddings
  int32_t* bad_row = nullptr;       // first sequence with a non-finite embedding
};

// Attention over one packed batch: Q/K/V rows of qkv (T, 3 * hidden) -> ctx (T, hidden), head-major.
// The caller sets the model's fields: q_scale, score_scale, inv_freq / rope (rotary), alibi.
AttnParams batch_attention(const vn_model_config& cfg, const EmbedBatch& b, const Exec& ex, const __half* qkv,
                           __half* ctx);

class CudaModel : public vn::Model {
 public:
  CudaModel(const vn_model_config& cfg, CudaEngine* engine) : vn::Model(cfg), engine_(engine) {}
  ~CudaModel() override;
  // Scratch bytes one batch needs (T tokens, n sequences or rows).
  virtual size_t workspace_bytes(int64_t T, int64_t n) const = 0;
  virtual vn_status embed(const Exec& ex, const EmbedBatch& b, void* workspace);
  virtual vn_status classify(const Exec& ex, const float* features, int64_t n, float* out, int32_t* bad_row,
                             void* workspace);
  // Rows pooled from a sequence of n tokens (ESM-2 drops <cls>/<eos>); a batch needs >= 1.
  virtual int64_t pooled_rows(int64_t n_tokens) const { return n_tokens; }
  size_t weight_bytes() const { return weight_bytes_; }

 protected:
  friend class WeightLoader;
  CudaEngine* engine_;
  std::vector<void*> allocations_;  // device weights, freed with the model
  size_t weight_bytes_ = 0;
};

// Uploads a WeightSet's tensors to device copies owned by a model: the stored bytes (fp16, bf16
// or fp32, read straight from the caller's possibly memory-mapped tensors on several threads) go
// through a few pinned staging buffers to the device, which converts them to FP16, FP32 or FP8
// E4M3 rows. No FP32 host copy is made; host memory stays at the staging buffers.
class WeightLoader {
 public:
  WeightLoader(const WeightSet& ws, CudaModel* model, cudaStream_t stream) : ws_(ws), model_(model), stream_(stream) {}
  ~WeightLoader();
  __half* f16(const std::string& name, std::initializer_list<int64_t> shape);
  float* f32(const std::string& name, std::initializer_list<int64_t> shape);
  // Tensors of the same shape stacked along their first dimension (ESM-2's query/key/value).
  __half* f16_stack(const std::vector<std::string>& names, std::initializer_list<int64_t> shape);
  // The first `count` values of a tensor (DNABERT's token type 0 row).
  float* f32_prefix(const std::string& name, std::initializer_list<int64_t> shape, int64_t count);
  // 2-D tensors stacked along their first dimension as E4M3 with one scale per row (common/fp8.h);
  // *scales gets the device array of scales (rows of all tensors). With ext, each row is followed by
  // the outlier extension (row stride cols + ext->cols).
  uint8_t* fp8_stack(const std::vector<std::string>& names, std::initializer_list<int64_t> shape, float** scales,
                     const Fp8Ext* ext = nullptr);
  // The outlier rows' second part: for each of the n rows index[j] of a 2-D tensor, E4M3 of what its
  // E4M3 rounding left (fp8_stack's scale for that row, in *scales); `rows` rows in all, the rest
  // zero. A second FP8 GEMM over these rows makes those output channels' weights near exact.
  uint8_t* fp8_lo_rows(const std::string& name, std::initializer_list<int64_t> shape, const int32_t* index, int n,
                       int rows, float** scales);
  // A host array computed at load (e.g. folded BatchNorm).
  float* f32_host(const std::vector<float>& values);
  // Any host bytes (e.g. channel indices), copied as they are.
  void* bytes_host(const void* data, size_t bytes);
  vn_status finish();  // waits for the uploads; the status of the whole load
  vn_status status = VN_OK;

 private:
  enum class Kind { kF16, kF32, kFp8, kFp8Lo };
  static constexpr int kSlots = 3;
  struct Slot {
    void* host = nullptr;  // pinned
    void* dev = nullptr;   // device copy in the stored dtype, for the conversion kernels
    cudaEvent_t done = nullptr;
  };
  void* alloc(size_t bytes);
  bool init_slots();
  // The first `count` values of e to dst as `kind` (kFp8: rows of `cols`, scales per row).
  bool upload(const WeightSet::Entry& e, const std::string& name, Kind kind, int64_t count, void* dst,
              int64_t cols = 0, float* scales = nullptr, const Fp8Ext* ext = nullptr);
  const WeightSet::Entry* entry(const std::string& name, std::initializer_list<int64_t> shape);
  const WeightSet& ws_;
  CudaModel* model_;
  cudaStream_t stream_;
  Slot slots_[kSlots];
  int next_slot_ = 0;
  size_t slot_bytes_ = 0;
  size_t bytes_read_ = 0;
  double copy_s_ = 0, start_s_ = -1;
};

vn_status load_esm2(const vn_model_config& cfg, const WeightSet& ws, CudaEngine* engine, GemmPlans& plans,
                    const GemmContext& gemm, cudaStream_t stream, bool fp8, std::unique_ptr<CudaModel>* out);
vn_status load_dnabert(const vn_model_config& cfg, const WeightSet& ws, CudaEngine* engine, GemmPlans& plans,
                       const GemmContext& gemm, cudaStream_t stream, std::unique_ptr<CudaModel>* out);
vn_status load_mlp(const vn_model_config& cfg, const WeightSet& ws, CudaEngine* engine, GemmPlans& plans,
                   const GemmContext& gemm, cudaStream_t stream, std::unique_ptr<CudaModel>* out);

}  // namespace vn::cuda
