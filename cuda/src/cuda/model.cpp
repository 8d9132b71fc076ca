// What the CUDA models share: weight upload, teardown, and the per-op profiler.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/errors.h"
#include "cuda/kernels.h"
#include "cuda/model.h"

namespace vn::cuda {

// ---- CudaModel ----

CudaModel::~CudaModel() {
  // Jobs already accepted may still read these weights.
  if (engine_) engine_drain(engine_);
  for (void* p : allocations_) cudaFree(p);
}

vn_status CudaModel::embed(const Exec&, const EmbedBatch&, void*) {
  return fail(VN_ERR_INVALID, "this model is not an encoder");
}

vn_status CudaModel::classify(const Exec&, const float*, int64_t, float*, int32_t*, void*) {
  return fail(VN_ERR_INVALID, "this model is not a classifier");
}

// ---- WeightLoader ----

namespace {

constexpr size_t kSlotBytes = size_t{64} << 20;

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

size_t dtype_bytes(int32_t dtype) { return dtype == VN_F32 ? 4 : 2; }

}  // namespace

WeightLoader::~WeightLoader() {
  for (Slot& s : slots_) {
    if (s.done) cudaEventSynchronize(s.done);
  }
  cudaStreamSynchronize(stream_);
  for (Slot& s : slots_) {
    if (s.done) cudaEventDestroy(s.done);
    if (s.host) cudaFreeHost(s.host);
    if (s.dev) cudaFree(s.dev);
  }
}

void* WeightLoader::alloc(size_t bytes) {
  if (status != VN_OK) return nullptr;
  void* p = nullptr;
  if (cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 1)); e != cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    status = cuda_fail(e, "loading model weights (" + std::to_string((model_->weight_bytes_ + bytes) >> 20) +
                              " MiB so far, " + std::to_string(free_b >> 20) + " MiB free on the device)");
    return nullptr;
  }
  model_->allocations_.push_back(p);
  model_->weight_bytes_ += bytes;
  return p;
}

bool WeightLoader::init_slots() {
  if (slot_bytes_) return true;
  if (start_s_ < 0) start_s_ = seconds_now();
  for (Slot& s : slots_) {
    cudaError_t e = cudaHostAlloc(&s.host, kSlotBytes, cudaHostAllocDefault);
    if (e == cudaSuccess) e = cudaMalloc(&s.dev, kSlotBytes);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming);
    if (e != cudaSuccess) {
      status = cuda_fail(e, "allocating the weight staging buffers");
      return false;
    }
  }
  slot_bytes_ = kSlotBytes;
  return true;
}

const WeightSet::Entry* WeightLoader::entry(const std::string& name, std::initializer_list<int64_t> shape) {
  if (status != VN_OK) return nullptr;
  const WeightSet::Entry* e = ws_.get(name, shape);
  if (!e) status = VN_ERR_INVALID;
  return e;
}

bool WeightLoader::upload(const WeightSet::Entry& e, const std::string& name, Kind kind, int64_t count, void* dst,
                          int64_t cols, float* scales, const Fp8Ext* ext) {
  const Fp8Ext no_ext{};
  if (!ext) ext = &no_ext;
  const int64_t ld = cols + ext->cols;  // FP8 rows: the row stride of dst
  if (status != VN_OK || !init_slots()) return false;
  const size_t esz = dtype_bytes(e.dtype);
  // Chunks of whole rows for FP8 (a row's scale needs all of it), else of any length.
  const bool fp8 = kind == Kind::kFp8 || kind == Kind::kFp8Lo;
  const int64_t unit = fp8 ? cols : 1;
  const int64_t per_chunk = static_cast<int64_t>(slot_bytes_ / (esz * static_cast<size_t>(unit))) * unit;
  if (per_chunk <= 0) {
    status = fail(VN_ERR_UNSUPPORTED, "tensor " + name + ": rows too long to stage");
    return false;
  }
  const bool direct = (kind == Kind::kF16 && e.dtype == VN_F16) || (kind == Kind::kF32 && e.dtype == VN_F32);
  const size_t out_esz = kind == Kind::kF16 ? 2 : kind == Kind::kF32 ? 4 : 1;
  if (cols <= 0 && fp8) {
    status = fail(VN_ERR_INVALID, "tensor " + name + ": fp8 rows without a length");
    return false;
  }
  for (int64_t off = 0; off < count; off += per_chunk) {
    const int64_t n = std::min(per_chunk, count - off);
    Slot& s = slots_[next_slot_];
    next_slot_ = (next_slot_ + 1) % kSlots;
    // The slot's previous copy and conversion must be done before it is refilled.
    if (cudaError_t err = cudaEventSynchronize(s.done); err != cudaSuccess) {
      status = cuda_fail(err, "uploading model weights");
      return false;
    }
    const double t0 = seconds_now();
    parallel_memcpy(s.host, static_cast<const char*>(e.src) + static_cast<size_t>(off) * esz,
                    static_cast<size_t>(n) * esz);
    copy_s_ += seconds_now() - t0;
    bytes_read_ += static_cast<size_t>(n) * esz;
    char* out = static_cast<char*>(dst) +
                (fp8 ? static_cast<size_t>(off / cols * ld) : static_cast<size_t>(off) * out_esz);
    cudaError_t err;
    if (direct) {
      err = cudaMemcpyAsync(out, s.host, static_cast<size_t>(n) * esz, cudaMemcpyHostToDevice, stream_);
    } else {
      err = cudaMemcpyAsync(s.dev, s.host, static_cast<size_t>(n) * esz, cudaMemcpyHostToDevice, stream_);
      if (err == cudaSuccess) {
        if (fp8)
          err = quantize_weight_rows(s.dev, e.dtype, n / cols, cols, reinterpret_cast<uint8_t*>(out), ld,
                                     scales + off / cols, *ext, kind == Kind::kFp8Lo, stream_);
        else
          err = convert_weights(s.dev, e.dtype, out, kind == Kind::kF16, n, stream_);
      }
    }
    if (err == cudaSuccess) err = cudaEventRecord(s.done, stream_);
    if (err != cudaSuccess) {
      status = cuda_fail(err, "uploading " + name);
      return false;
    }
  }
  return true;
}

__half* WeightLoader::f16(const std::string& name, std::initializer_list<int64_t> shape) {
  return f16_stack({name}, shape);
}

__half* WeightLoader::f16_stack(const std::vector<std::string>& names, std::initializer_list<int64_t> shape) {
  if (status != VN_OK) return nullptr;
  int64_t each = 1;
  for (int64_t d : shape) each *= d;
  auto* dst = static_cast<__half*>(alloc(static_cast<size_t>(each) * names.size() * sizeof(__half)));
  for (size_t i = 0; i < names.size() && dst; ++i) {
    const WeightSet::Entry* e = entry(names[i], shape);
    if (!e || !upload(*e, names[i], Kind::kF16, each, dst + static_cast<int64_t>(i) * each)) return nullptr;
  }
  return status == VN_OK ? dst : nullptr;
}

uint8_t* WeightLoader::fp8_stack(const std::vector<std::string>& names, std::initializer_list<int64_t> shape,
                                 float** scales, const Fp8Ext* ext) {
  *scales = nullptr;
  if (status != VN_OK) return nullptr;
  if (shape.size() != 2) {
    status = fail(VN_ERR_INVALID, "fp8 weights must be 2-D");
    return nullptr;
  }
  const int64_t rows = *shape.begin(), cols = *(shape.begin() + 1), each = rows * cols;
  const int64_t stored = rows * (cols + (ext ? ext->cols : 0));  // bytes per tensor on the device
  auto* dst = static_cast<uint8_t*>(alloc(static_cast<size_t>(stored) * names.size()));
  auto* sc = static_cast<float*>(alloc(static_cast<size_t>(rows) * names.size() * sizeof(float)));
  for (size_t i = 0; i < names.size() && dst && sc; ++i) {
    const WeightSet::Entry* e = entry(names[i], shape);
    if (!e || !upload(*e, names[i], Kind::kFp8, each, dst + static_cast<int64_t>(i) * stored, cols,
                      sc + static_cast<int64_t>(i) * rows, ext))
      return nullptr;
  }
  if (status != VN_OK) return nullptr;
  *scales = sc;
  return dst;
}

float* WeightLoader::f32(const std::string& name, std::initializer_list<int64_t> shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return f32_prefix(name, shape, count);
}

float* WeightLoader::f32_prefix(const std::string& name, std::initializer_list<int64_t> shape, int64_t count) {
  const WeightSet::Entry* e = entry(name, shape);
  if (!e) return nullptr;
  auto* dst = static_cast<float*>(alloc(static_cast<size_t>(count) * sizeof(float)));
  if (!dst || !upload(*e, name, Kind::kF32, count, dst)) return nullptr;
  return dst;
}

float* WeightLoader::f32_host(const std::vector<float>& values) {
  auto* dst = static_cast<float*>(alloc(values.size() * sizeof(float)));
  if (!dst) return nullptr;
  if (cudaError_t err = cudaMemcpyAsync(dst, values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice,
                                        stream_);
      err != cudaSuccess) {
    status = cuda_fail(err, "copying weights to the device");
    return nullptr;
  }
  cudaStreamSynchronize(stream_);
  return dst;
}

uint8_t* WeightLoader::fp8_lo_rows(const std::string& name, std::initializer_list<int64_t> shape,
                                   const int32_t* index, int n, int rows, float** scales) {
  *scales = nullptr;
  const WeightSet::Entry* e = entry(name, shape);
  if (!e) return nullptr;
  if (shape.size() != 2 || n > rows) {
    status = fail(VN_ERR_INVALID, "fp8 outlier rows of " + name + ": bad shape");
    return nullptr;
  }
  const int64_t cols = *(shape.begin() + 1);
  auto* dst = static_cast<uint8_t*>(alloc(static_cast<size_t>(rows * cols)));
  auto* sc = static_cast<float*>(alloc(static_cast<size_t>(rows) * sizeof(float)));
  if (!dst || !sc) return nullptr;
  if (cudaError_t err = cudaMemsetAsync(dst, 0, static_cast<size_t>(rows * cols), stream_); err != cudaSuccess) {
    status = cuda_fail(err, "uploading " + name);
    return nullptr;
  }
  if (cudaError_t err = cudaMemsetAsync(sc, 0, static_cast<size_t>(rows) * sizeof(float), stream_); err != cudaSuccess) {
    status = cuda_fail(err, "uploading " + name);
    return nullptr;
  }
  const size_t esz = dtype_bytes(e->dtype);
  for (int j = 0; j < n; ++j) {
    WeightSet::Entry row;
    row.shape = {1, cols};
    row.dtype = e->dtype;
    row.src = static_cast<const char*>(e->src) + static_cast<size_t>(index[j]) * static_cast<size_t>(cols) * esz;
    row.count = cols;
    if (!upload(row, name, Kind::kFp8Lo, cols, dst + static_cast<int64_t>(j) * cols, cols, sc + j)) return nullptr;
  }
  *scales = sc;
  return dst;
}

void* WeightLoader::bytes_host(const void* data, size_t bytes) {
  void* dst = alloc(bytes);
  if (!dst) return nullptr;
  if (cudaError_t err = cudaMemcpyAsync(dst, data, bytes, cudaMemcpyHostToDevice, stream_); err != cudaSuccess) {
    status = cuda_fail(err, "copying weights to the device");
    return nullptr;
  }
  cudaStreamSynchronize(stream_);
  return dst;
}

vn_status WeightLoader::finish() {
  if (status != VN_OK) return status;
  VN_CUDA_TRY(cudaStreamSynchronize(stream_), "uploading model weights");
  if (const char* v = std::getenv("VIRNUC_CUDA_PROFILE"); v && std::strcmp(v, "1") == 0 && start_s_ >= 0)
    std::fprintf(stderr, "weights: %.0f MiB read in %.2f s (host staging copies %.2f s), %.0f MiB on the device\n",
                 bytes_read_ / 1048576.0, seconds_now() - start_s_, copy_s_, model_->weight_bytes_ / 1048576.0);
  return VN_OK;
}

AttnParams batch_attention(const vn_model_config& cfg, const EmbedBatch& b, const Exec& ex, const __half* qkv,
                           __half* ctx) {
  AttnParams ap{};
  ap.qkv = qkv;
  ap.ld_qkv = 3 * static_cast<int64_t>(cfg.hidden);
  ap.out = ctx;
  ap.ld_out = cfg.hidden;
  ap.hidden = cfg.hidden;
  ap.n_heads = cfg.n_heads;
  ap.head_dim = cfg.hidden / cfg.n_heads;
  ap.cu = b.cu;
  ap.n_seqs = b.n_seqs;
  ap.tiles = b.tiles;
  ap.n_tiles = b.n_tiles;
  ap.max_len = b.max_len;
  ap.total_tokens = b.T;
  ap.q_scale = 1.0f;
  ap.score_scale = 1.0f;
  ap.force_naive = ex.naive_attention;
  return ap;
}

// ---- Profiler ----

Profiler::~Profiler() {
  for (auto& m : marks_) pool_.push_back(m.second);
  for (cudaEvent_t e : pool_) cudaEventDestroy(e);
}

void Profiler::mark(cudaStream_t stream, const char* op) {
  if (!enabled_) return;
  cudaEvent_t e = nullptr;
  if (!pool_.empty()) {
    e = pool_.back();
    pool_.pop_back();
  } else if (cudaEventCreate(&e) != cudaSuccess) {
    return;
  }
  cudaEventRecord(e, stream);
  marks_.emplace_back(op, e);
}

void Profiler::end_batch(cudaStream_t stream, int64_t tokens) {
  if (!enabled_ || marks_.empty()) return;
  mark(stream, nullptr);
  cudaEventSynchronize(marks_.back().second);
  for (size_t i = 0; i + 1 < marks_.size(); ++i) {
    float ms = 0;
    cudaEventElapsedTime(&ms, marks_[i].second, marks_[i + 1].second);
    ms_[marks_[i].first] += ms;
    total_ms_ += ms;
  }
  for (auto& m : marks_) pool_.push_back(m.second);
  marks_.clear();
  tokens_ += tokens;
  ++batches_;
}

void Profiler::set_enabled(bool on) {
  if (enabled_ && !on) {
    const std::string r = report();
    if (!r.empty()) std::fprintf(stderr, "%s", r.c_str());
    ms_.clear();
    total_ms_ = 0;
    tokens_ = batches_ = 0;
  }
  enabled_ = on;
}

std::string Profiler::report() const {
  if (!enabled_ || batches_ == 0) return "";
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, ms] : ms_) rows.emplace_back(ms, name);
  std::sort(rows.rbegin(), rows.rend());
  char line[256];
  std::snprintf(line, sizeof line, "profile: %lld batches, %lld tokens, %.1f ms on the device (%.0f tokens/s)\n",
                static_cast<long long>(batches_), static_cast<long long>(tokens_), total_ms_,
                total_ms_ > 0 ? tokens_ / (total_ms_ / 1000.0) : 0.0);
  std::string out = line;
  for (const auto& [ms, name] : rows) {
    std::snprintf(line, sizeof line, "  %-12s %10.2f ms %6.2f%%\n", name.c_str(), ms, 100.0 * ms / total_ms_);
    out += line;
  }
  return out;
}

}  // namespace vn::cuda
