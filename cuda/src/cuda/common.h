// Host-side helpers shared by the CUDA backend: status conversion of CUDA errors and a bump
// allocator over one device allocation.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "backend.h"

namespace vn::cuda {

// Device allocations and carved buffers are aligned to this (cuBLASLt's preferred alignment).
constexpr size_t kAlign = 256;

inline size_t align_up(size_t n, size_t a = kAlign) { return (n + a - 1) / a * a; }

// Turns a CUDA error into a status with one line naming what failed; clears non-sticky errors.
inline vn_status cuda_fail(cudaError_t err, const std::string& what) {
  cudaGetLastError();
  if (err == cudaErrorMemoryAllocation)
    return fail(VN_ERR_OOM, what + ": out of device memory");
  return fail(VN_ERR_BACKEND, what + ": " + cudaGetErrorString(err));
}

#define VN_CUDA_TRY(expr, what)                              \
  do {                                                       \
    cudaError_t vn_err_ = (expr);                            \
    if (vn_err_ != cudaSuccess) return ::vn::cuda::cuda_fail(vn_err_, what); \
  } while (0)

#define VN_TRY(expr)                   \
  do {                                 \
    vn_status vn_st_ = (expr);         \
    if (vn_st_ != VN_OK) return vn_st_; \
  } while (0)

// Carves aligned buffers out of one region; the caller checks `bytes_needed` first.
class Carver {
 public:
  Carver(void* base, size_t bytes) : base_(static_cast<char*>(base)), size_(bytes) {}
  template <typename T>
  T* take(size_t count) {
    T* p = reinterpret_cast<T*>(base_ + used_);
    used_ += align_up(count * sizeof(T));
    return p;
  }
  size_t used() const { return used_; }
  bool overflowed() const { return used_ > size_; }

 private:
  char* base_;
  size_t size_;
  size_t used_ = 0;
};

// Bytes a Carver uses for `count` elements of T (kept in step with Carver::take).
template <typename T>
inline size_t carve_bytes(size_t count) {
  return align_up(count * sizeof(T));
}

}  // namespace vn::cuda
