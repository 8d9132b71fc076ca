// CpuEngine: runs each submission synchronously on a thread pool and keeps its outcome under
// an incrementing ticket for vn_wait / vn_poll / vn_ticket_bad_row.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "backend.h"
#include "common/errors.h"
#include "cpu/models.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace vn {

namespace {

using cpu::CpuModel;
using cpu::ThreadPool;

// Reads a "Name:   N kB" line of /proc/meminfo; -1 when absent.
int64_t meminfo_bytes(const char* key) {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  int64_t out = -1;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, n) == 0 && line[n] == ':') {
      out = std::strtoll(line + n + 1, nullptr, 10) * 1024;
      break;
    }
  }
  std::fclose(f);
  return out;
}

// Index of the first row (of `cols` floats) holding NaN or Inf, or -1.
int32_t first_nonfinite_row(const float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      if (!std::isfinite(x[r * cols + j])) return static_cast<int32_t>(r);
  return -1;
}

class CpuEngine : public Engine {
 public:
  explicit CpuEngine(int32_t n_threads) : kernels_(cpu::kernels()), pool_(n_threads) {}

  std::string describe() override {
    return "cpu (" + std::to_string(pool_.size()) + " threads, " + kernels_.label + ", fp32)";
  }

  vn_status memory(int64_t* free_bytes, int64_t* total_bytes) override {
    int64_t total = meminfo_bytes("MemTotal");
    int64_t avail = meminfo_bytes("MemAvailable");
    if (total < 0) total = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
    if (avail < 0) avail = static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGESIZE);
    *free_bytes = avail;
    *total_bytes = total;
    return VN_OK;
  }

  void* host_alloc(int64_t bytes) override {
    const size_t n = (static_cast<size_t>(bytes) + 63) / 64 * 64;
    return std::aligned_alloc(64, n == 0 ? 64 : n);
  }

  void host_free(void* ptr) override { std::free(ptr); }

  vn_status load(const vn_model_config& cfg, const WeightSet& weights, int32_t precision, Model** out) override {
    if (precision != VN_PREC_FP32)
      return fail(VN_ERR_UNSUPPORTED, std::string("the CPU backend computes in fp32 only (") +
                                          (precision == VN_PREC_FP16 ? "fp16" : "fp8") + " requested)");
    std::unique_ptr<CpuModel> m;
    // The weights are packed on the engine's threads, which embed/classify use under the same lock.
    std::lock_guard<std::mutex> lock(mu_);
    vn_status s = cfg.arch == VN_ARCH_ESM2      ? cpu::load_esm2(cfg, weights, &pool_, &m)
                  : cfg.arch == VN_ARCH_DNABERT ? cpu::load_dnabert(cfg, weights, &pool_, &m)
                  : cfg.arch == VN_ARCH_MLP     ? cpu::load_mlp(cfg, weights, &pool_, &m)
                                                : fail(VN_ERR_INVALID, "unknown arch " + std::to_string(cfg.arch));
    if (s != VN_OK) return s;
    *out = m.release();
    return VN_OK;
  }

  vn_status submit_embed(Model* model, const int32_t* tokens, const int32_t* cu, int32_t n_seqs, float* out,
                         int64_t* ticket) override {
    auto* m = static_cast<CpuModel*>(model);
    if (vn_status s = check_batch(*m, tokens, cu, n_seqs)) return s;
    std::lock_guard<std::mutex> lock(mu_);
    return run(ticket, [&](Record& rec) {
      if (n_seqs == 0) return VN_OK;
      vn_status s = m->embed(pool_, tokens, cu, n_seqs, out);
      if (s != VN_OK) return s;
      rec.bad_row = first_nonfinite_row(out, n_seqs, m->cfg.hidden);
      if (rec.bad_row >= 0)
        return fail(VN_ERR_NONFINITE, "NaN or Inf in the embedding of sequence " + std::to_string(rec.bad_row) +
                                          " of the batch");
      return VN_OK;
    });
  }

  vn_status submit_classify(Model* model, const float* features, int32_t n_rows, float* out,
                            int64_t* ticket) override {
    auto* m = static_cast<CpuModel*>(model);
    std::lock_guard<std::mutex> lock(mu_);
    return run(ticket, [&](Record& rec) {
      if (n_rows == 0) return VN_OK;
      vn_status s = m->classify(pool_, features, n_rows, out);
      if (s != VN_OK) return s;
      rec.bad_row = first_nonfinite_row(out, n_rows, m->cfg.n_classes);
      if (rec.bad_row >= 0)
        return fail(VN_ERR_NONFINITE, "NaN or Inf in the scores of row " + std::to_string(rec.bad_row));
      return VN_OK;
    });
  }

  vn_status wait(int64_t ticket) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(ticket);
    if (it == records_.end()) return unknown(ticket);
    if (it->second.status != VN_OK) return fail(it->second.status, it->second.message);
    return VN_OK;
  }

  vn_status poll(int64_t ticket) override { return wait(ticket); }

  int32_t bad_row(int64_t ticket) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(ticket);
    return it == records_.end() ? -1 : it->second.bad_row;
  }

  void cancel() override { cancelled_.store(true); }

  int64_t suggest_token_budget(Model* model) override {
    // Large enough that the GEMMs run near full speed, small enough to keep activations modest.
    return model->cfg.hidden >= 2048 ? 4096 : 8192;
  }

 private:
  struct Record {
    vn_status status = VN_OK;
    int32_t bad_row = -1;
    std::string message;
  };
  static constexpr int64_t kKeptRecords = 4096;

  template <typename F>
  vn_status run(int64_t* ticket, F&& body) {
    const int64_t id = next_ticket_++;
    Record& rec = records_[id];
    try {
      // Checked before each batch: work submitted after vn_engine_cancel is not done.
      rec.status = cancelled_.load() ? fail(VN_ERR_CANCELLED, "cancelled (vn_engine_cancel)") : body(rec);
    } catch (const std::bad_alloc&) {
      rec.status = fail(VN_ERR_OOM, "out of host memory for this batch: use a smaller token budget");
    } catch (const std::exception& e) {
      rec.status = fail(VN_ERR_BACKEND, std::string("CPU backend failure: ") + e.what());
    }
    if (rec.status != VN_OK) rec.message = last_error();
    records_.erase(records_.begin(), records_.lower_bound(id - kKeptRecords));
    *ticket = id;
    return VN_OK;
  }

  vn_status unknown(int64_t ticket) {
    return fail(VN_ERR_INVALID, "unknown ticket " + std::to_string(ticket) +
                                    (ticket > 0 && ticket < next_ticket_ ? " (too old: its record was dropped)" : ""));
  }

  static vn_status check_batch(const CpuModel& m, const int32_t* tokens, const int32_t* cu, int32_t n_seqs) {
    if (n_seqs == 0) return VN_OK;
    if (cu[0] != 0) return fail(VN_ERR_INVALID, "cu_seqlens[0] must be 0, got " + std::to_string(cu[0]));
    for (int32_t s = 0; s < n_seqs; ++s) {
      const int64_t n = static_cast<int64_t>(cu[s + 1]) - cu[s];
      if (n <= 0)
        return fail(VN_ERR_INVALID, "sequence " + std::to_string(s) + " of the batch is empty (cu_seqlens not increasing)");
      if (m.pooled_rows(n) <= 0)
        return fail(VN_ERR_INVALID, "sequence " + std::to_string(s) + " of the batch has " + std::to_string(n) +
                                        " tokens and nothing to pool (a protein needs <cls>, residues and <eos>)");
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
    return VN_OK;
  }

  const cpu::Kernels& kernels_;
  ThreadPool pool_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  int64_t next_ticket_ = 1;
  std::map<int64_t, Record> records_;
};

}  // namespace

Engine* create_cpu_engine(int32_t n_threads) {
  try {
    cpu::kernels();
  } catch (const std::runtime_error& e) {
    fail(VN_ERR_UNSUPPORTED, e.what());  // an unusable VIRNUC_CPU_ISA
    return nullptr;
  }
  return new CpuEngine(n_threads);
}

}  // namespace vn
