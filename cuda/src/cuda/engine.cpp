// CudaEngine: one device, one compute stream, one worker thread. submit_* checks the batch on
// the caller's thread, queues it and returns a ticket; the worker issues each job's copies and
// kernels asynchronously (no host synchronisation inside a batch) and records an event; wait and
// poll complete a ticket through its event. Activations live in one device workspace that grows
// to the largest batch seen and is reused; a batch that does not fit fails with VN_ERR_OOM and
// leaves the engine usable.
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backend.h"
#include "common/errors.h"
#include "cuda/common.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "cuda/model.h"

namespace vn::cuda {

namespace {

constexpr int kSlots = 1024;                  // pinned result slots = most jobs in flight at once
constexpr int64_t kKeptRecords = 4096;        // finished tickets remembered for wait/poll
constexpr int64_t kMaxSuggestedBudget = 65536;  // larger batches were no faster on an H200
constexpr size_t kGrowStep = size_t{64} << 20;

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "1") == 0;
}

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

class CudaEngine : public Engine {
 public:
  static CudaEngine* create(int32_t device) {
    int count = 0;
    if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
      cudaGetLastError();
      fail(VN_ERR_BACKEND, std::string("no usable CUDA device: ") + cudaGetErrorString(e));
      return nullptr;
    }
    if (device < 0 || device >= count) {
      fail(VN_ERR_BACKEND, "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                               " visible)");
      return nullptr;
    }
    std::unique_ptr<CudaEngine> e(new CudaEngine(device));
    if (e->init() != VN_OK) return nullptr;
    return e.release();
  }

  ~CudaEngine() override {
    cudaSetDevice(device_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_work_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (stream_) cudaStreamSynchronize(stream_);
    const std::string report = prof_.report();
    if (!report.empty()) std::fprintf(stderr, "%s", report.c_str());
    for (auto& [t, rec] : records_)
      if (rec.event) free_events_.push_back(rec.event);
    for (cudaEvent_t ev : free_events_) cudaEventDestroy(ev);
    if (ws_) cudaFree(ws_);
    gemm_context_destroy(&gemm_);
    if (slots_) cudaFreeHost(slots_);
    if (stream_) cudaStreamDestroy(stream_);
    if (load_stream_) cudaStreamDestroy(load_stream_);
  }

  std::string describe() override {
    return "cuda:" + std::to_string(device_) + " " + name_ + " (sm_" + std::to_string(cc_major_) +
           std::to_string(cc_minor_) + ", " + std::to_string(total_mem_ >> 30) + " GiB)";
  }

  vn_status memory(int64_t* free_bytes, int64_t* total_bytes) override {
    cudaSetDevice(device_);
    size_t f = 0, t = 0;
    VN_CUDA_TRY(cudaMemGetInfo(&f, &t), "reading device memory");
    *free_bytes = static_cast<int64_t>(f);
    *total_bytes = static_cast<int64_t>(t);
    return VN_OK;
  }

  void* host_alloc(int64_t bytes) override {
    cudaSetDevice(device_);
    void* p = nullptr;
    const size_t n = (static_cast<size_t>(bytes) + 63) / 64 * 64;
    if (cudaHostAlloc(&p, n == 0 ? 64 : n, cudaHostAllocPortable) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }

  void host_free(void* ptr) override {
    cudaSetDevice(device_);
    cudaFreeHost(ptr);
  }

  // Weights stay in their stored dtype on the host; the device converts them (WeightLoader).
  bool host_f32_weights() const override { return false; }

  vn_status load(const vn_model_config& cfg, const WeightSet& weights, int32_t precision, Model** out) override {
    cudaSetDevice(device_);
    const bool encoder = cfg.arch == VN_ARCH_ESM2 || cfg.arch == VN_ARCH_DNABERT;
    const bool fp8 = precision == VN_PREC_FP8;
    if (fp8 && cc_major_ * 10 + cc_minor_ < 89)
      return fail(VN_ERR_UNSUPPORTED, "fp8 needs FP8 tensor cores (sm_89 or newer); CUDA device " +
                                          std::to_string(device_) + " (" + name_ + ") is sm_" +
                                          std::to_string(cc_major_) + std::to_string(cc_minor_) + ": use fp16");
    if (fp8 && cfg.arch != VN_ARCH_ESM2)
      return fail(VN_ERR_UNSUPPORTED, std::string("fp8 is implemented for ESM-2 only: load ") +
                                          (cfg.arch == VN_ARCH_DNABERT ? "DNABERT-S in fp16" : "the classifier in fp32"));
    if (encoder && precision != VN_PREC_FP16 && !fp8)
      return fail(VN_ERR_UNSUPPORTED, "the CUDA backend runs the encoders in fp16 or fp8 (fp32 requested): use fp16, "
                                      "or the cpu backend for fp32");
    if (encoder && cfg.hidden % 8 != 0)
      return fail(VN_ERR_UNSUPPORTED, "hidden size " + std::to_string(cfg.hidden) +
                                          " is not a multiple of 8, which the CUDA backend needs");
    std::unique_ptr<CudaModel> m;
    vn_status s = cfg.arch == VN_ARCH_ESM2      ? load_esm2(cfg, weights, this, plans_, gemm_, load_stream_, fp8, &m)
                  : cfg.arch == VN_ARCH_DNABERT ? load_dnabert(cfg, weights, this, plans_, gemm_, load_stream_, &m)
                  : cfg.arch == VN_ARCH_MLP     ? load_mlp(cfg, weights, this, plans_, gemm_, load_stream_, &m)
                                                : fail(VN_ERR_INVALID, "unknown arch " + std::to_string(cfg.arch));
    if (s != VN_OK) return s;
    *out = m.release();
    return VN_OK;
  }

  vn_status submit_embed(Model* model, const int32_t* tokens, const int32_t* cu, int32_t n_seqs, float* out,
                         int64_t* ticket) override {
    auto* m = static_cast<CudaModel*>(model);
    Job job;
    job.model = m;
    job.tokens = tokens;
    job.cu = cu;
    job.n_seqs = n_seqs;
    job.out = out;
    VN_TRY(check_batch(*m, tokens, cu, n_seqs, &job));
    return enqueue(job, ticket);
  }

  void cancel() override { cancelled_.store(true); }

  vn_status submit_classify(Model* model, const float* features, int32_t n_rows, float* out,
                            int64_t* ticket) override {
    Job job;
    job.model = static_cast<CudaModel*>(model);
    job.classify = true;
    job.features = features;
    job.n_seqs = n_rows;
    job.out = out;
    return enqueue(job, ticket);
  }

  vn_status wait(int64_t ticket) override {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      auto it = records_.find(ticket);
      if (it == records_.end()) return unknown(ticket);
      Record& rec = it->second;
      if (rec.state == Record::kDone) return rec.status == VN_OK ? VN_OK : fail(rec.status, rec.message);
      if (rec.state == Record::kQueued) {
        cv_issued_.wait(lock);
        continue;
      }
      // Issued: wait for its event without holding the lock. A recycled event only waits longer.
      cudaEvent_t ev = rec.event;
      lock.unlock();
      cudaSetDevice(device_);
      const cudaError_t e = cudaEventSynchronize(ev);
      lock.lock();
      auto again = records_.find(ticket);
      if (again == records_.end()) return unknown(ticket);
      if (again->second.state == Record::kIssued) finalize(again->first, again->second, e);
    }
  }

  vn_status poll(int64_t ticket) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = records_.find(ticket);
    if (it == records_.end()) return unknown(ticket);
    Record& rec = it->second;
    if (rec.state == Record::kQueued) return VN_ERR_PENDING;
    if (rec.state == Record::kIssued) {
      cudaSetDevice(device_);
      const cudaError_t e = cudaEventQuery(rec.event);
      if (e == cudaErrorNotReady) return VN_ERR_PENDING;
      finalize(ticket, rec, e);
    }
    return rec.status == VN_OK ? VN_OK : fail(rec.status, rec.message);
  }

  int32_t bad_row(int64_t ticket) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(ticket);
    return it == records_.end() || it->second.state != Record::kDone ? -1 : it->second.bad_row;
  }

  int64_t suggest_token_budget(Model* model) override {
    auto* m = static_cast<CudaModel*>(model);
    if (m->cfg.arch == VN_ARCH_MLP) return 65536;
    cudaSetDevice(device_);
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) != cudaSuccess) {
      cudaGetLastError();
      return 4096;
    }
    size_t ws_now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ws_now = ws_bytes_;
    }
    // What one token costs: the model's activations plus the engine's per-batch buffers, with an
    // output row per 8 tokens (sequences are rarely shorter).
    const int64_t probe = 4096;
    const double per_token = static_cast<double>(m->workspace_bytes(probe, probe / 8) +
                                                 batch_bytes(probe, probe / 8, probe / 8 + probe / 64, m->cfg.hidden)) /
                             probe;
    const double reserve = 1024.0 * 1024 * 1024;  // cuBLASLt, other models' growth, fragmentation
    const double usable = (static_cast<double>(f) + static_cast<double>(ws_now) - reserve) * 0.9;
    int64_t budget = usable > 0 ? static_cast<int64_t>(usable / per_token) : 0;
    budget = std::min(budget, kMaxSuggestedBudget);
    return budget >= 2048 ? budget / 1024 * 1024 : std::max<int64_t>(budget, 256);
  }

  void drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_issued_.wait(lock, [&] { return queue_.empty() && !issuing_; });
    lock.unlock();
    cudaSetDevice(device_);
    const cudaError_t e = cudaStreamSynchronize(stream_);
    lock.lock();
    for (auto& [t, rec] : records_)
      if (rec.state == Record::kIssued) finalize(t, rec, e);
  }

 private:
  struct Job {
    int64_t ticket = 0;
    CudaModel* model = nullptr;
    bool classify = false;
    const int32_t* tokens = nullptr;
    const int32_t* cu = nullptr;
    const float* features = nullptr;
    int32_t n_seqs = 0;  // sequences, or classifier rows
    int64_t T = 0;
    int n_tiles = 0;
    int max_len = 0;
    float* out = nullptr;
  };

  struct Record {
    enum State { kQueued, kIssued, kDone } state = kQueued;
    vn_status status = VN_OK;
    std::string message;
    int32_t bad_row = -1;
    int32_t n_rows = 0;
    bool is_classify = false;
    cudaEvent_t event = nullptr;
  };

  explicit CudaEngine(int32_t device) : device_(device), prof_(env_flag("VIRNUC_CUDA_PROFILE")) {}

  vn_status init() {
    VN_CUDA_TRY(cudaSetDevice(device_), "selecting CUDA device " + std::to_string(device_));
    cudaDeviceProp prop{};
    VN_CUDA_TRY(cudaGetDeviceProperties(&prop, device_), "reading the device properties");
    name_ = prop.name;
    cc_major_ = prop.major;
    cc_minor_ = prop.minor;
    total_mem_ = prop.totalGlobalMem;
    if (prop.major < 8)
      return fail(VN_ERR_UNSUPPORTED, "CUDA device " + std::to_string(device_) + " (" + name_ + ", sm_" +
                                          std::to_string(prop.major) + std::to_string(prop.minor) +
                                          ") is older than sm_80, which the CUDA backend needs");
    VN_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
    VN_CUDA_TRY(cudaStreamCreateWithFlags(&load_stream_, cudaStreamNonBlocking), "creating a CUDA stream");
    VN_TRY(gemm_context_create(&gemm_));
    VN_CUDA_TRY(cudaHostAlloc(reinterpret_cast<void**>(&slots_), kSlots * sizeof(int32_t), cudaHostAllocPortable),
                "allocating pinned host memory");
    naive_attention_ = env_flag("VIRNUC_CUDA_NAIVE_ATTENTION");
    worker_ = std::thread([this] { work(); });
    return VN_OK;
  }

  static size_t batch_bytes(int64_t T, int64_t n, int64_t n_tiles, int64_t out_dim) {
    return carve_bytes<int32_t>(T) + carve_bytes<int32_t>(n + 1) + carve_bytes<int2>(n_tiles) +
           carve_bytes<float>(n * out_dim) + carve_bytes<int32_t>(1);
  }

  // Same checks as the CPU backend, plus the attention tile count and the longest sequence.
  static vn_status check_batch(const CudaModel& m, const int32_t* tokens, const int32_t* cu, int32_t n_seqs,
                               Job* job) {
    if (n_seqs == 0) return VN_OK;
    if (cu[0] != 0) return fail(VN_ERR_INVALID, "cu_seqlens[0] must be 0, got " + std::to_string(cu[0]));
    int64_t tiles = 0;
    int max_len = 0;
    for (int32_t s = 0; s < n_seqs; ++s) {
      const int64_t n = static_cast<int64_t>(cu[s + 1]) - cu[s];
      if (n <= 0)
        return fail(VN_ERR_INVALID,
                    "sequence " + std::to_string(s) + " of the batch is empty (cu_seqlens not increasing)");
      if (m.pooled_rows(n) <= 0)
        return fail(VN_ERR_INVALID, "sequence " + std::to_string(s) + " of the batch has " + std::to_string(n) +
                                        " tokens and nothing to pool (a protein needs <cls>, residues and <eos>)");
      tiles += (n + kAttnTileM - 1) / kAttnTileM;
      max_len = std::max<int>(max_len, static_cast<int>(n));
    }
    const int64_t T = cu[n_seqs];
    for (int64_t t = 0; t < T; ++t)
      if (tokens[t] < 0 || tokens[t] >= m.cfg.vocab) {
        int32_t s = 0;
        while (cu[s + 1] <= t) ++s;
        return fail(VN_ERR_INVALID, "token id " + std::to_string(tokens[t]) + " at position " +
                                        std::to_string(t - cu[s]) + " of sequence " + std::to_string(s) +
                                        " is outside the vocabulary of " + std::to_string(m.cfg.vocab));
      }
    if (tiles > INT_MAX) return fail(VN_ERR_INVALID, "batch too large: " + std::to_string(T) + " tokens");
    job->T = T;
    job->n_tiles = static_cast<int>(tiles);
    job->max_len = max_len;
    return VN_OK;
  }

  vn_status enqueue(Job job, int64_t* ticket) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job.ticket = next_ticket_++;
      Record& rec = records_[job.ticket];
      rec.n_rows = job.n_seqs;
      rec.is_classify = job.classify;
      queue_.push_back(job);
      *ticket = job.ticket;
    }
    cv_work_.notify_one();
    return VN_OK;
  }

  vn_status unknown(int64_t ticket) {
    return fail(VN_ERR_INVALID, "unknown ticket " + std::to_string(ticket) +
                                    (ticket > 0 && ticket < next_ticket_ ? " (too old: its record was dropped)" : ""));
  }

  // Under mu_: the job's work has finished (or failed with `e`); read its result slot.
  void finalize(int64_t ticket, Record& rec, cudaError_t e) {
    if (rec.state != Record::kIssued) return;
    if (e != cudaSuccess && rec.status == VN_OK) {
      cudaGetLastError();
      rec.status = VN_ERR_BACKEND;
      rec.message = std::string("CUDA failure while computing the batch: ") + cudaGetErrorString(e);
    }
    if (rec.status == VN_OK) {
      const int32_t bad = slots_[ticket % kSlots];
      if (bad >= 0 && bad < rec.n_rows) {
        rec.bad_row = bad;
        rec.status = VN_ERR_NONFINITE;
        rec.message = rec.is_classify
                          ? "NaN or Inf in the scores of row " + std::to_string(bad)
                          : "NaN or Inf in the embedding of sequence " + std::to_string(bad) + " of the batch";
      }
    }
    if (rec.event) free_events_.push_back(rec.event);
    rec.event = nullptr;
    rec.state = Record::kDone;
  }

  void work() {
    cudaSetDevice(device_);
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        job = queue_.front();
        queue_.pop_front();
        issuing_ = true;
        // The result slot is shared with the ticket kSlots earlier: finish that one first.
        auto old = records_.find(job.ticket - kSlots);
        if (old != records_.end() && old->second.state == Record::kIssued) {
          cudaEvent_t ev = old->second.event;
          lock.unlock();
          const cudaError_t e = cudaEventSynchronize(ev);
          lock.lock();
          old = records_.find(job.ticket - kSlots);
          if (old != records_.end()) finalize(old->first, old->second, e);
        }
        // Keep the record map bounded.
        records_.erase(records_.begin(), records_.lower_bound(job.ticket - kKeptRecords));
      }
      prof_.set_enabled(env_flag("VIRNUC_CUDA_PROFILE"));
      vn_status status = VN_OK;
      std::string message;
      try {
        // Checked before each job is issued: work queued before vn_engine_cancel is not done.
        if (cancelled_.load())
          status = fail(VN_ERR_CANCELLED, "cancelled (vn_engine_cancel)");
        else
          status = job.classify ? issue_classify(job) : issue_embed(job);
      } catch (const std::bad_alloc&) {
        status = fail(VN_ERR_OOM, "out of host memory");
      } catch (const std::exception& ex) {
        status = fail(VN_ERR_BACKEND, std::string("CUDA backend failure: ") + ex.what());
      }
      if (status != VN_OK) message = last_error();
      cudaEvent_t ev = take_event();
      if (ev) cudaEventRecord(ev, stream_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        Record& rec = records_[job.ticket];
        rec.status = status;
        rec.message = message;
        rec.event = ev;
        rec.state = Record::kIssued;
        if (!ev) {
          if (rec.status == VN_OK) {
            rec.status = VN_ERR_BACKEND;
            rec.message = "could not create a CUDA event";
          }
          rec.state = Record::kDone;
        }
        issuing_ = false;
      }
      cv_issued_.notify_all();
    }
  }

  cudaEvent_t take_event() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_events_.empty()) {
        cudaEvent_t e = free_events_.back();
        free_events_.pop_back();
        return e;
      }
    }
    cudaEvent_t e = nullptr;
    // Blocking sync: a waiting caller sleeps instead of spinning on a core the host pipeline needs.
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming | cudaEventBlockingSync) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return e;
  }

  // Worker thread only: makes the workspace at least `need` bytes.
  vn_status ensure_workspace(size_t need, const std::string& what) {
    if (need <= ws_bytes_) return VN_OK;
    // Grow by at least an eighth so that slowly rising batch sizes do not reallocate every time.
    size_t want = std::max(align_up(need, kGrowStep), ws_bytes_ + ws_bytes_ / 8);
    cudaStreamSynchronize(stream_);  // earlier jobs may still use the old one
    if (ws_) cudaFree(ws_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ws_ = nullptr;
      ws_bytes_ = 0;
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
      cudaGetLastError();
      want = need;
      e = cudaMalloc(&p, want);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t f = 0, t = 0;
      cudaMemGetInfo(&f, &t);
      return fail(VN_ERR_OOM, "out of device memory for " + what + " (needs " + mib(need) + ", " + mib(f) +
                                  " free): use a smaller token budget");
    }
    std::lock_guard<std::mutex> lock(mu_);
    ws_ = p;
    ws_bytes_ = want;
    return VN_OK;
  }

  Exec exec() {
    Exec ex;
    ex.stream = stream_;
    ex.gemm = &gemm_;
    ex.prof = &prof_;
    ex.naive_attention = naive_attention_;
    return ex;
  }

  vn_status issue_embed(const Job& job) {
    if (job.n_seqs == 0) return set_slot_ok(job.ticket);
    CudaModel* m = job.model;
    const int64_t T = job.T, n = job.n_seqs, H = m->output_dim();
    const size_t model_bytes = m->workspace_bytes(T, n);
    VN_TRY(ensure_workspace(batch_bytes(T, n, job.n_tiles, H) + model_bytes,
                            "a batch of " + std::to_string(T) + " tokens"));
    Carver c(ws_, ws_bytes_);
    EmbedBatch b;
    auto* tokens = c.take<int32_t>(T);
    auto* cu = c.take<int32_t>(n + 1);
    auto* tiles = c.take<int2>(job.n_tiles);
    b.out = c.take<float>(n * H);
    b.bad_row = c.take<int32_t>(1);
    void* model_ws = c.take<char>(model_bytes);
    b.tokens = tokens;
    b.cu = cu;
    b.tiles = tiles;
    b.n_tiles = job.n_tiles;
    b.n_seqs = job.n_seqs;
    b.T = T;
    b.max_len = job.max_len;
    const Exec ex = exec();
    ex.mark("copy_in");
    VN_CUDA_TRY(cudaMemcpyAsync(tokens, job.tokens, T * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                "copying tokens to the device");
    VN_CUDA_TRY(cudaMemcpyAsync(cu, job.cu, (n + 1) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                "copying cu_seqlens to the device");
    VN_CUDA_TRY(cudaMemsetAsync(b.bad_row, 0x7f, sizeof(int32_t), stream_), "clearing the NaN flag");
    VN_CUDA_TRY(build_query_tiles(tiles, cu, job.n_seqs, stream_), "attention schedule");
    VN_TRY(m->embed(ex, b, model_ws));
    ex.mark("copy_out");
    VN_CUDA_TRY(cudaMemcpyAsync(job.out, b.out, n * H * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                "copying embeddings to the host");
    VN_CUDA_TRY(cudaMemcpyAsync(&slots_[job.ticket % kSlots], b.bad_row, sizeof(int32_t), cudaMemcpyDeviceToHost,
                                stream_),
                "copying the NaN flag to the host");
    prof_.end_batch(stream_, T);
    return VN_OK;
  }

  vn_status issue_classify(const Job& job) {
    if (job.n_seqs == 0) return set_slot_ok(job.ticket);
    CudaModel* m = job.model;
    const int64_t n = job.n_seqs, F = m->cfg.hidden, C = m->cfg.n_classes;
    const size_t model_bytes = m->workspace_bytes(0, n);
    VN_TRY(ensure_workspace(carve_bytes<float>(n * F) + carve_bytes<float>(n * C) + carve_bytes<int32_t>(1) +
                                model_bytes,
                            "classifying " + std::to_string(n) + " rows"));
    Carver c(ws_, ws_bytes_);
    auto* features = c.take<float>(n * F);
    auto* out = c.take<float>(n * C);
    auto* bad = c.take<int32_t>(1);
    void* model_ws = c.take<char>(model_bytes);
    const Exec ex = exec();
    ex.mark("copy_in");
    VN_CUDA_TRY(cudaMemcpyAsync(features, job.features, n * F * sizeof(float), cudaMemcpyHostToDevice, stream_),
                "copying features to the device");
    VN_CUDA_TRY(cudaMemsetAsync(bad, 0x7f, sizeof(int32_t), stream_), "clearing the NaN flag");
    VN_TRY(m->classify(ex, features, n, out, bad, model_ws));
    ex.mark("copy_out");
    VN_CUDA_TRY(cudaMemcpyAsync(job.out, out, n * C * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                "copying scores to the host");
    VN_CUDA_TRY(cudaMemcpyAsync(&slots_[job.ticket % kSlots], bad, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
                "copying the NaN flag to the host");
    prof_.end_batch(stream_, n);
    return VN_OK;
  }

  // An empty batch: nothing runs; its slot must read "no bad row" once its event completes.
  vn_status set_slot_ok(int64_t ticket) {
    slots_[ticket % kSlots] = INT_MAX;
    return VN_OK;
  }

  int32_t device_;
  std::string name_;
  int cc_major_ = 0, cc_minor_ = 0;
  size_t total_mem_ = 0;
  cudaStream_t stream_ = nullptr, load_stream_ = nullptr;
  GemmContext gemm_;
  GemmPlans plans_;
  Profiler prof_;
  bool naive_attention_ = false;
  int32_t* slots_ = nullptr;  // pinned: each job's first bad row, copied back by the stream

  void* ws_ = nullptr;  // activations and per-batch buffers (worker thread)
  size_t ws_bytes_ = 0;

  std::mutex mu_;
  std::condition_variable cv_work_, cv_issued_;
  std::deque<Job> queue_;
  std::map<int64_t, Record> records_;
  std::vector<cudaEvent_t> free_events_;
  int64_t next_ticket_ = 1;
  bool issuing_ = false;
  bool stop_ = false;
  std::thread worker_;
  std::atomic<bool> cancelled_{false};
};

void engine_drain(CudaEngine* engine) { engine->drain(); }

}  // namespace vn::cuda

namespace vn {

Engine* create_cuda_engine(int32_t device) { return cuda::CudaEngine::create(device); }

int32_t cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace vn
