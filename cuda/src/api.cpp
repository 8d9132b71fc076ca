// The C ABI (virnuc.h) over the internal backend interface (backend.h): handle checks,
// the thread-local last error, and exceptions kept from crossing into the caller.
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>

#include "backend.h"
#include "common/errors.h"
#include "virnuc.h"

namespace {

constexpr uint32_t kEngineMagic = 0x56454e47;  // "VENG"
constexpr uint32_t kModelMagic = 0x564d444c;   // "VMDL"

}  // namespace

struct vn_engine {
  uint32_t magic = kEngineMagic;
  vn::Engine* impl = nullptr;
  std::atomic<bool> cancelled{false};
  std::mutex models_mu;
  std::set<vn_model*> models;
};

struct vn_model {
  uint32_t magic = kModelMagic;
  vn::Model* impl = nullptr;
  vn_engine* owner = nullptr;
};

namespace {

bool valid(const vn_engine* e) { return e && e->magic == kEngineMagic && e->impl; }
bool valid(const vn_model* m) { return m && m->magic == kModelMagic && m->impl && valid(m->owner); }

vn_status bad_engine() { return vn::fail(VN_ERR_INVALID, "invalid or destroyed engine handle"); }
vn_status bad_model() { return vn::fail(VN_ERR_INVALID, "invalid or destroyed model handle"); }
vn_status cancelled() { return vn::fail(VN_ERR_CANCELLED, "cancelled (vn_engine_cancel)"); }

// Runs body, turning C++ exceptions into statuses so that none unwinds into the caller.
template <typename F>
vn_status guarded(const char* what, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return vn::fail(VN_ERR_OOM, std::string(what) + ": out of host memory");
  } catch (const std::exception& e) {
    return vn::fail(VN_ERR_BACKEND, std::string(what) + ": " + e.what());
  } catch (...) {
    return vn::fail(VN_ERR_BACKEND, std::string(what) + ": unknown failure");
  }
}

}  // namespace

extern "C" {

VN_API const char* vn_last_error(void) { return vn::last_error(); }

VN_API int32_t vn_abi_version(void) { return VN_ABI_VERSION; }

VN_API int32_t vn_backend_available(int32_t backend) {
  if (backend == VN_BACKEND_CPU) return 1;
#ifdef VN_WITH_CUDA
  if (backend == VN_BACKEND_CUDA) {
    try {
      return vn::cuda_device_count() > 0 ? 1 : 0;
    } catch (...) {
      return 0;
    }
  }
#endif
  return 0;
}

VN_API int32_t vn_cuda_device_count(void) {
#ifdef VN_WITH_CUDA
  try {
    return vn::cuda_device_count();
  } catch (...) {
    return 0;
  }
#else
  return 0;
#endif
}

VN_API vn_status vn_engine_create(int32_t backend, int32_t device, int32_t n_threads, vn_engine** out) {
  if (!out) return vn::fail(VN_ERR_INVALID, "vn_engine_create: out is null");
  *out = nullptr;
  return guarded("vn_engine_create", [&]() -> vn_status {
    vn::Engine* impl = nullptr;
    if (backend == VN_BACKEND_CPU) {
      if (n_threads < 0) return vn::fail(VN_ERR_INVALID, "thread count must be >= 0 (0 = all cores)");
      impl = vn::create_cpu_engine(n_threads);
      if (!impl) return VN_ERR_UNSUPPORTED;  // the backend set the message (VIRNUC_CPU_ISA)
    } else if (backend == VN_BACKEND_CUDA) {
#ifdef VN_WITH_CUDA
      if (device < 0) return vn::fail(VN_ERR_INVALID, "CUDA device index must be >= 0");
      impl = vn::create_cuda_engine(device);
      if (!impl) return VN_ERR_BACKEND;  // the backend set the message
#else
      return vn::fail(VN_ERR_UNSUPPORTED, "libvirnuc was built without the CUDA backend (nvcc or cuBLAS not found at build time)");
#endif
    } else {
      return vn::fail(VN_ERR_INVALID, "unknown backend " + std::to_string(backend));
    }
    if (!impl) return vn::fail(VN_ERR_BACKEND, "engine creation failed");
    vn_engine* e = new vn_engine;
    e->impl = impl;
    *out = e;
    return VN_OK;
  });
}

VN_API void vn_engine_destroy(vn_engine* engine) {
  if (!valid(engine)) return;
  try {
    // Models should be destroyed first; any left are released here rather than leaked.
    for (vn_model* m : engine->models) {
      delete m->impl;
      m->impl = nullptr;
      m->magic = 0;
      delete m;
    }
    engine->models.clear();
    delete engine->impl;
  } catch (...) {
  }
  engine->impl = nullptr;
  engine->magic = 0;
  delete engine;
}

VN_API vn_status vn_engine_describe(vn_engine* engine, char* buf, int32_t buf_len) {
  if (!valid(engine)) return bad_engine();
  if (!buf || buf_len <= 0) return vn::fail(VN_ERR_INVALID, "vn_engine_describe: empty buffer");
  return guarded("vn_engine_describe", [&]() -> vn_status {
    const std::string d = engine->impl->describe();
    const size_t n = std::min(d.size(), static_cast<size_t>(buf_len - 1));
    std::memcpy(buf, d.data(), n);
    buf[n] = '\0';
    return VN_OK;
  });
}

VN_API vn_status vn_engine_memory(vn_engine* engine, int64_t* free_bytes, int64_t* total_bytes) {
  if (!valid(engine)) return bad_engine();
  if (!free_bytes || !total_bytes) return vn::fail(VN_ERR_INVALID, "vn_engine_memory: null output");
  return guarded("vn_engine_memory", [&]() { return engine->impl->memory(free_bytes, total_bytes); });
}

VN_API vn_status vn_engine_cancel(vn_engine* engine) {
  if (!valid(engine)) return bad_engine();
  engine->cancelled.store(true);
  return guarded("vn_engine_cancel", [&]() {
    engine->impl->cancel();
    return VN_OK;
  });
}

VN_API void* vn_host_alloc(vn_engine* engine, int64_t bytes) {
  if (!valid(engine)) {
    bad_engine();
    return nullptr;
  }
  if (bytes < 0) {
    vn::fail(VN_ERR_INVALID, "vn_host_alloc: negative size");
    return nullptr;
  }
  try {
    void* p = engine->impl->host_alloc(bytes);
    if (!p) vn::fail(VN_ERR_OOM, "out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  } catch (...) {
    vn::fail(VN_ERR_OOM, "out of host memory allocating " + std::to_string(bytes) + " bytes");
    return nullptr;
  }
}

VN_API void vn_host_free(vn_engine* engine, void* ptr) {
  if (!valid(engine) || !ptr) return;
  try {
    engine->impl->host_free(ptr);
  } catch (...) {
  }
}

VN_API vn_status vn_model_load(vn_engine* engine, const vn_model_config* config, const vn_tensor* tensors,
                               int32_t n_tensors, int32_t precision, vn_model** out) {
  if (!out) return vn::fail(VN_ERR_INVALID, "vn_model_load: out is null");
  *out = nullptr;
  if (!valid(engine)) return bad_engine();
  if (!config) return vn::fail(VN_ERR_INVALID, "vn_model_load: config is null");
  if (precision < VN_PREC_FP32 || precision > VN_PREC_FP8)
    return vn::fail(VN_ERR_INVALID, "unknown precision " + std::to_string(precision));
  return guarded("vn_model_load", [&]() -> vn_status {
    vn::WeightSet weights;
    if (vn_status s = vn::build_weight_set(*config, tensors, n_tensors, &weights, engine->impl->host_f32_weights()))
      return s;
    vn::Model* impl = nullptr;
    if (vn_status s = engine->impl->load(*config, weights, precision, &impl)) {
      delete impl;
      return s;
    }
    if (!impl) return vn::fail(VN_ERR_BACKEND, "model load returned no model");
    impl->engine = engine->impl;
    vn_model* m = new vn_model;
    m->impl = impl;
    m->owner = engine;
    {
      std::lock_guard<std::mutex> lock(engine->models_mu);
      engine->models.insert(m);
    }
    *out = m;
    return VN_OK;
  });
}

VN_API void vn_model_destroy(vn_model* model) {
  if (!valid(model)) return;
  vn_engine* e = model->owner;
  {
    std::lock_guard<std::mutex> lock(e->models_mu);
    e->models.erase(model);
  }
  try {
    delete model->impl;
  } catch (...) {
  }
  model->impl = nullptr;
  model->magic = 0;
  delete model;
}

VN_API int32_t vn_model_output_dim(vn_model* model) {
  if (!valid(model)) {
    bad_model();
    return 0;
  }
  return model->impl->output_dim();
}

VN_API vn_status vn_submit_embed(vn_model* model, const int32_t* tokens, const int32_t* cu_seqlens, int32_t n_seqs,
                                 float* out, int64_t* ticket) {
  if (!ticket) return vn::fail(VN_ERR_INVALID, "vn_submit_embed: ticket is null");
  *ticket = -1;
  if (!valid(model)) return bad_model();
  if (model->impl->cfg.arch == VN_ARCH_MLP)
    return vn::fail(VN_ERR_INVALID, "vn_submit_embed: the model is a classifier, not an encoder");
  if (n_seqs < 0) return vn::fail(VN_ERR_INVALID, "vn_submit_embed: negative sequence count");
  if (n_seqs > 0 && (!tokens || !cu_seqlens || !out))
    return vn::fail(VN_ERR_INVALID, "vn_submit_embed: null tokens, cu_seqlens or out");
  if (model->owner->cancelled.load()) return cancelled();
  return guarded("vn_submit_embed", [&]() {
    return model->owner->impl->submit_embed(model->impl, tokens, cu_seqlens, n_seqs, out, ticket);
  });
}

VN_API vn_status vn_submit_classify(vn_model* model, const float* features, int32_t n_rows, float* out,
                                    int64_t* ticket) {
  if (!ticket) return vn::fail(VN_ERR_INVALID, "vn_submit_classify: ticket is null");
  *ticket = -1;
  if (!valid(model)) return bad_model();
  if (model->impl->cfg.arch != VN_ARCH_MLP)
    return vn::fail(VN_ERR_INVALID, "vn_submit_classify: the model is an encoder, not a classifier");
  if (n_rows < 0) return vn::fail(VN_ERR_INVALID, "vn_submit_classify: negative row count");
  if (n_rows > 0 && (!features || !out)) return vn::fail(VN_ERR_INVALID, "vn_submit_classify: null features or out");
  if (model->owner->cancelled.load()) return cancelled();
  return guarded("vn_submit_classify", [&]() {
    return model->owner->impl->submit_classify(model->impl, features, n_rows, out, ticket);
  });
}

VN_API vn_status vn_wait(vn_engine* engine, int64_t ticket) {
  if (!valid(engine)) return bad_engine();
  return guarded("vn_wait", [&]() { return engine->impl->wait(ticket); });
}

VN_API vn_status vn_poll(vn_engine* engine, int64_t ticket) {
  if (!valid(engine)) return bad_engine();
  return guarded("vn_poll", [&]() { return engine->impl->poll(ticket); });
}

VN_API int32_t vn_ticket_bad_row(vn_engine* engine, int64_t ticket) {
  if (!valid(engine)) {
    bad_engine();
    return -1;
  }
  try {
    return engine->impl->bad_row(ticket);
  } catch (...) {
    return -1;
  }
}

VN_API int64_t vn_model_suggest_token_budget(vn_model* model) {
  if (!valid(model)) {
    bad_model();
    return 0;
  }
  try {
    return model->owner->impl->suggest_token_budget(model->impl);
  } catch (...) {
    return 0;
  }
}

}  // extern "C"
