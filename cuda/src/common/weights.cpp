// Load-time checks of a model's tensors (names and shapes from virnuc.h), their FP32 conversion for
// the backends that want it, and the threaded copy used to stage weights from mapped files.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/mman.h>

#include "backend.h"
#include "common/errors.h"

namespace vn {

namespace {

struct Expected {
  std::string name;
  std::vector<int64_t> shape;
  bool linear = false;  // a Linear layer's weight (WeightSet::Entry::linear)
};

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: value = man * 2^-24, exact in fp32
      const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
      std::memcpy(&bits, &v, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

std::vector<Expected> expected_tensors(const vn_model_config& c) {
  const int64_t H = c.hidden, I = c.intermediate, V = c.vocab;
  std::vector<Expected> e;
  auto add = [&](std::string name, std::vector<int64_t> shape) { e.push_back({std::move(name), std::move(shape)}); };
  auto lin = [&](std::string name, std::vector<int64_t> shape) { e.push_back({std::move(name), std::move(shape), true}); };
  if (c.arch == VN_ARCH_ESM2) {
    const int64_t hd = H / c.n_heads;
    add("embeddings.word_embeddings.weight", {V, H});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      add(p + "attention.LayerNorm.weight", {H});
      add(p + "attention.LayerNorm.bias", {H});
      for (const char* qkv : {"query", "key", "value"}) {
        lin(p + "attention.self." + qkv + ".weight", {H, H});
        add(p + "attention.self." + qkv + ".bias", {H});
      }
      add(p + "attention.self.rotary_embeddings.inv_freq", {hd / 2});
      lin(p + "attention.output.dense.weight", {H, H});
      add(p + "attention.output.dense.bias", {H});
      add(p + "LayerNorm.weight", {H});
      add(p + "LayerNorm.bias", {H});
      lin(p + "intermediate.dense.weight", {I, H});
      add(p + "intermediate.dense.bias", {I});
      lin(p + "output.dense.weight", {H, I});
      add(p + "output.dense.bias", {H});
    }
    add("encoder.emb_layer_norm_after.weight", {H});
    add("encoder.emb_layer_norm_after.bias", {H});
  } else if (c.arch == VN_ARCH_DNABERT) {
    add("embeddings.word_embeddings.weight", {V, H});
    add("embeddings.token_type_embeddings.weight", {2, H});
    add("embeddings.LayerNorm.weight", {H});
    add("embeddings.LayerNorm.bias", {H});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      lin(p + "attention.self.Wqkv.weight", {3 * H, H});
      add(p + "attention.self.Wqkv.bias", {3 * H});
      lin(p + "attention.output.dense.weight", {H, H});
      add(p + "attention.output.dense.bias", {H});
      add(p + "attention.output.LayerNorm.weight", {H});
      add(p + "attention.output.LayerNorm.bias", {H});
      lin(p + "mlp.gated_layers.weight", {2 * I, H});
      lin(p + "mlp.wo.weight", {H, I});
      add(p + "mlp.wo.bias", {H});
      add(p + "mlp.layernorm.weight", {H});
      add(p + "mlp.layernorm.bias", {H});
    }
  } else if (c.arch == VN_ARCH_MLP) {
    const int64_t F = H, U = I, C = c.n_classes;
    lin("hidden_layer.weight", {U, F});
    add("hidden_layer.bias", {U});
    for (const char* b : {"weight", "bias", "running_mean", "running_var"}) add(std::string("bn1.") + b, {U});
    lin("output_layer.weight", {C, U});
    add("output_layer.bias", {C});
  }
  return e;
}

vn_status check_config(const vn_model_config& c) {
  const char* arch = c.arch == VN_ARCH_ESM2 ? "ESM-2" : c.arch == VN_ARCH_DNABERT ? "DNABERT-S" : "MLP";
  if (c.arch != VN_ARCH_ESM2 && c.arch != VN_ARCH_DNABERT && c.arch != VN_ARCH_MLP)
    return fail(VN_ERR_INVALID, "model config: unknown arch " + std::to_string(c.arch));
  if (c.hidden <= 0 || c.intermediate <= 0)
    return fail(VN_ERR_INVALID, std::string(arch) + " config: hidden and intermediate must be positive");
  if (!std::isfinite(c.ln_eps) || c.ln_eps < 0)
    return fail(VN_ERR_INVALID, std::string(arch) + " config: eps must be a finite non-negative number");
  if (c.arch == VN_ARCH_MLP) {
    if (c.n_classes <= 0) return fail(VN_ERR_INVALID, "MLP config: n_classes must be positive");
    return VN_OK;
  }
  if (c.n_layers <= 0 || c.n_heads <= 0 || c.vocab <= 0)
    return fail(VN_ERR_INVALID, std::string(arch) + " config: n_layers, n_heads and vocab must be positive");
  if (c.hidden % c.n_heads != 0)
    return fail(VN_ERR_INVALID, std::string(arch) + " config: hidden " + std::to_string(c.hidden) +
                                    " is not a multiple of n_heads " + std::to_string(c.n_heads));
  if (c.arch == VN_ARCH_ESM2 && (c.hidden / c.n_heads) % 2 != 0)
    return fail(VN_ERR_INVALID, "ESM-2 config: head dim must be even for rotary embeddings");
  if (c.max_pool_positions < 0) return fail(VN_ERR_INVALID, "ESM-2 config: max_pool_positions must be >= 0");
  return VN_OK;
}

}  // namespace

const WeightSet::Entry* WeightSet::get(const std::string& name, std::initializer_list<int64_t> shape) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    fail(VN_ERR_INVALID, "missing tensor " + name + " (expected shape " + shape_str(shape.begin(), shape.end()) + ")");
    return nullptr;
  }
  const std::vector<int64_t> want(shape);
  if (it->second.shape != want) {
    fail(VN_ERR_INVALID, "tensor " + name + " has shape " +
                             shape_str(it->second.shape.begin(), it->second.shape.end()) + ", expected " +
                             shape_str(want.begin(), want.end()));
    return nullptr;
  }
  return &it->second;
}

void convert_to_f32(int32_t dtype, const void* src, float* dst, int64_t count) {
  // memcpy per element: tensors from memory-mapped files need not be 2-byte aligned.
  const unsigned char* p = static_cast<const unsigned char*>(src);
  if (dtype == VN_F32) {
    if (count > 0) std::memcpy(dst, src, static_cast<size_t>(count) * 4);
  } else if (dtype == VN_F16) {
    for (int64_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      dst[i] = half_to_float(h);
    }
  } else {
    for (int64_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      dst[i] = bf16_to_float(h);
    }
  }
}

// Asks for transparent huge pages on the whole 2 MiB pages inside [p, p + bytes) (large buffers
// only; a no-op where the kernel does not support it).
void advise_huge(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (bytes < 2 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

// Threads that convert a WeightSet's tensors to FP32 in the order they will be taken, at most
// `limit` bytes ahead of the consumer (the backend's load, through Entry::f32).
struct WeightPrefetch {
  std::vector<WeightSet::Entry*> order;
  size_t next = 0;   // first entry no thread has claimed
  size_t ahead = 0;  // FP32 bytes converted or converting that the consumer has not asked for yet
  size_t limit = 0;
  bool stop = false;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> threads;

  static size_t bytes(const WeightSet::Entry& e) { return static_cast<size_t>(e.count) * 4; }

  // Under mu: claims e for the calling thread (state 0 -> 1), converts it unlocked, publishes it.
  void convert(WeightSet::Entry& e, std::unique_lock<std::mutex>& lock) {
    e.state = 1;
    lock.unlock();
    bool ok = true;
    try {
      // Allocated (with transparent huge pages requested: fewer first-touch faults) and first
      // touched by this thread.
      e.data.reserve(static_cast<size_t>(e.count));
      advise_huge(e.data.data(), static_cast<size_t>(e.count) * 4);
      e.data.resize(static_cast<size_t>(e.count));
      convert_to_f32(e.dtype, e.src, e.data.data(), e.count);
    } catch (const std::bad_alloc&) {
      std::vector<float>().swap(e.data);
      ok = false;
    }
    lock.lock();
    e.state = ok ? 2 : 3;
    cv.notify_all();
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || next >= order.size() || ahead < limit; });
      if (stop || next >= order.size()) return;
      WeightSet::Entry& e = *order[next++];
      if (e.state != 0) continue;  // the consumer got there first
      ahead += bytes(e);
      convert(e, lock);
    }
  }

  // The consumer asks for e: wait for its conversion (or do it here), and stop counting it as ahead.
  void wait_for(WeightSet::Entry& e) {
    std::unique_lock<std::mutex> lock(mu);
    if (e.state == 0) {
      convert(e, lock);
    } else {
      cv.wait(lock, [&] { return e.state >= 2; });
      ahead -= std::min(ahead, bytes(e));
    }
    cv.notify_all();
    if (e.state == 3) throw std::bad_alloc();
  }

  ~WeightPrefetch() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (std::thread& t : threads) t.join();
  }
};

const std::vector<float>& WeightSet::Entry::f32() const {
  if (count <= 0) return data;
  if (prefetch) {
    prefetch->wait_for(const_cast<Entry&>(*this));
  } else if (data.empty()) {
    data.resize(static_cast<size_t>(count));
    convert_to_f32(dtype, src, data.data(), count);
  }
  return data;
}

void parallel_memcpy(void* dst, const void* src, size_t bytes, unsigned max_threads) {
  constexpr size_t kMinSlice = size_t{4} << 20;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned n = static_cast<unsigned>(
      std::max<size_t>(1, std::min<size_t>({bytes / kMinSlice, static_cast<size_t>(std::min(hw, max_threads))})));
  if (n <= 1) {
    if (bytes) std::memcpy(dst, src, bytes);
    return;
  }
  // Slices on 4 KiB boundaries so that no page is faulted by two threads.
  const size_t slice = (bytes / n + 4095) / 4096 * 4096;
  auto copy = [&](unsigned i) {
    const size_t off = std::min(bytes, static_cast<size_t>(i) * slice);
    const size_t len = std::min(bytes - off, slice);
    if (len) std::memcpy(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off, len);
  };
  std::vector<std::thread> pool;
  unsigned started = 1;
  try {
    for (; started < n; ++started) pool.emplace_back(copy, started);
  } catch (const std::system_error&) {
    // no more threads: the calling thread copies what is left
  }
  copy(0);
  for (unsigned i = started; i < n; ++i) copy(i);
  for (std::thread& t : pool) t.join();
}

vn_status build_weight_set(const vn_model_config& cfg, const vn_tensor* tensors, int32_t n, WeightSet* out,
                           bool host_f32) {
  if (vn_status s = check_config(cfg)) return s;
  if (n < 0 || (n > 0 && !tensors)) return fail(VN_ERR_INVALID, "model load: no tensors given");
  std::map<std::string, const vn_tensor*> by_name;
  for (int32_t i = 0; i < n; ++i) {
    const vn_tensor& t = tensors[i];
    if (!t.name) return fail(VN_ERR_INVALID, "model load: tensor " + std::to_string(i) + " has no name");
    if (!by_name.emplace(t.name, &t).second)
      return fail(VN_ERR_INVALID, std::string("model load: tensor ") + t.name + " given twice");
  }
  out->tensors.clear();
  // Only the tensors the arch uses are kept; extras (lm_head, pooler, ...) are ignored.
  // Checks run first, in order, so the first bad tensor is the one named.
  const std::vector<Expected> expected = expected_tensors(cfg);
  std::vector<WeightSet::Entry*> entries;
  for (const Expected& e : expected) {
    auto it = by_name.find(e.name);
    if (it == by_name.end())
      return fail(VN_ERR_INVALID,
                  "missing tensor " + e.name + " (expected shape " + shape_str(e.shape.begin(), e.shape.end()) + ")");
    const vn_tensor& t = *it->second;
    if (t.ndim < 1 || t.ndim > 4)
      return fail(VN_ERR_INVALID, "tensor " + e.name + " has " + std::to_string(t.ndim) + " dimensions, expected " +
                                      std::to_string(e.shape.size()));
    std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
    if (shape != e.shape)
      return fail(VN_ERR_INVALID, "tensor " + e.name + " has shape " + shape_str(shape.begin(), shape.end()) +
                                      ", expected " + shape_str(e.shape.begin(), e.shape.end()));
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    if (count > 0 && !t.data) return fail(VN_ERR_INVALID, "tensor " + e.name + " has no data");
    if (t.dtype != VN_F32 && t.dtype != VN_F16 && t.dtype != VN_BF16)
      return fail(VN_ERR_INVALID, "tensor " + e.name + " has unsupported dtype " + std::to_string(t.dtype) +
                                      " (f32, f16 or bf16 expected)");
    WeightSet::Entry& entry = out->tensors[e.name];
    entry.shape = e.shape;
    entry.dtype = t.dtype;
    entry.src = t.data;
    entry.count = count;
    entry.linear = e.linear;
    if (!e.linear) entries.push_back(&entry);
  }
  if (!host_f32) return VN_OK;

  // FP32 conversion for the CPU backend of the tensors it does not pack straight from their stored
  // dtype (embeddings, LayerNorm, biases), lazily; on every core when they add up to enough (fresh
  // FP32 pages faulted on one thread would dominate the load), at most ~1/8 of them ahead of the
  // backend taking them.
  int64_t total = 0;
  for (const WeightSet::Entry* e : entries) total += e->count;
  unsigned n_threads = std::max(1u, std::thread::hardware_concurrency());
  // VIRNUC_CONVERT_THREADS=N caps the conversion threads; 0 converts each tensor on first use.
  if (const char* v = std::getenv("VIRNUC_CONVERT_THREADS"); v && *v)
    n_threads = static_cast<unsigned>(std::max(0, std::atoi(v)));
  if (total < (int64_t{1} << 24) || n_threads == 0) return VN_OK;  // small: converted on first use
  auto pf = std::make_shared<WeightPrefetch>();
  pf->order = entries;  // the arch's order, which is the order the backends take them in
  pf->limit = std::max<size_t>(size_t{256} << 20, static_cast<size_t>(total) * 4 / 8);
  for (WeightSet::Entry* e : entries) e->prefetch = pf.get();
  try {
    for (unsigned i = 0; i < n_threads; ++i) pf->threads.emplace_back([p = pf.get()] { p->work(); });
  } catch (const std::system_error&) {
    // fewer threads: the consumer converts what they do not
  }
  out->prefetch = std::move(pf);
  return VN_OK;
}

}  // namespace vn
