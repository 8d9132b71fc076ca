// What the CUDA models share: weight upload, teardown, and the per-op profiler.
#include <algorithm>
#include <cstdio>
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

WeightLoader::~WeightLoader() {
  if (staging_) {
    cudaStreamSynchronize(stream_);
    cudaFree(staging_);
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

float* WeightLoader::stage(const WeightSet::Entry& e) {
  const size_t n = e.data.size();
  if (n > staging_count_) {
    if (staging_) {
      cudaStreamSynchronize(stream_);
      cudaFree(staging_);
      staging_ = nullptr;
    }
    if (cudaError_t err = cudaMalloc(&staging_, n * sizeof(float)); err != cudaSuccess) {
      staging_ = nullptr;
      staging_count_ = 0;
      status = cuda_fail(err, "allocating the weight staging buffer");
      return nullptr;
    }
    staging_count_ = n;
  }
  // The previous conversion must have read the staging buffer before it is overwritten; the copy
  // from pageable memory is ordered on the stream after it.
  if (cudaError_t err = cudaMemcpyAsync(staging_, e.data.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream_);
      err != cudaSuccess) {
    status = cuda_fail(err, "copying weights to the device");
    return nullptr;
  }
  return staging_;
}

static void release_host(const WeightSet::Entry& e, cudaStream_t stream) {
  // The pageable copy has been staged once cudaMemcpyAsync returned only when it is synchronous;
  // wait for the stream so the host data can be freed safely.
  cudaStreamSynchronize(stream);
  std::vector<float>().swap(e.data);
}

__half* WeightLoader::f16(const std::string& name, std::initializer_list<int64_t> shape) {
  return f16_stack({name}, shape);
}

__half* WeightLoader::f16_stack(const std::vector<std::string>& names, std::initializer_list<int64_t> shape) {
  if (status != VN_OK) return nullptr;
  int64_t each = 1;
  for (int64_t d : shape) each *= d;
  auto* dst = static_cast<__half*>(alloc(static_cast<size_t>(each) * names.size() * sizeof(__half)));
  for (size_t i = 0; i < names.size() && status == VN_OK; ++i) {
    const WeightSet::Entry* e = ws_.get(names[i], shape);
    if (!e) {
      status = VN_ERR_INVALID;
      return nullptr;
    }
    float* src = stage(*e);
    if (!src) return nullptr;
    if (cudaError_t err = f32_to_f16(src, dst + static_cast<int64_t>(i) * each, each, stream_); err != cudaSuccess) {
      status = cuda_fail(err, "converting " + names[i] + " to fp16");
      return nullptr;
    }
    release_host(*e, stream_);
  }
  return status == VN_OK ? dst : nullptr;
}

float* WeightLoader::f32(const std::string& name, std::initializer_list<int64_t> shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return f32_prefix(name, shape, count);
}

float* WeightLoader::f32_prefix(const std::string& name, std::initializer_list<int64_t> shape, int64_t count) {
  if (status != VN_OK) return nullptr;
  const WeightSet::Entry* e = ws_.get(name, shape);
  if (!e) {
    status = VN_ERR_INVALID;
    return nullptr;
  }
  auto* dst = static_cast<float*>(alloc(static_cast<size_t>(count) * sizeof(float)));
  if (!dst) return nullptr;
  if (cudaError_t err = cudaMemcpyAsync(dst, e->data.data(), static_cast<size_t>(count) * sizeof(float),
                                        cudaMemcpyHostToDevice, stream_);
      err != cudaSuccess) {
    status = cuda_fail(err, "copying " + name + " to the device");
    return nullptr;
  }
  release_host(*e, stream_);
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

vn_status WeightLoader::finish() {
  if (status != VN_OK) return status;
  VN_CUDA_TRY(cudaStreamSynchronize(stream_), "uploading model weights");
  return VN_OK;
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
