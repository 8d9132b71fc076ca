// 64-byte aligned float storage for weights and activations.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace vn::cpu {

class FloatBuffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  FloatBuffer() = default;
  explicit FloatBuffer(size_t n) { resize(n); }
  ~FloatBuffer() { std::free(p_); }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  FloatBuffer(FloatBuffer&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  FloatBuffer& operator=(FloatBuffer&& o) noexcept {
    if (this != &o) {
      std::free(p_);
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }

  // Discards the contents; throws std::bad_alloc when the memory is not there.
  void resize(size_t n) {
    if (n == n_) return;
    std::free(p_);
    p_ = nullptr;
    n_ = 0;
    if (n == 0) return;
    const size_t bytes = ((n * sizeof(float)) + 63) / 64 * 64;
    // Large buffers (packed weights, activations) on 2 MiB boundaries with transparent huge
    // pages requested: first-touch page faults were most of a model's load time.
    const bool huge = bytes >= kHugePage;
    p_ = static_cast<float*>(huge ? std::aligned_alloc(kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage)
                                  : std::aligned_alloc(64, bytes));
    if (!p_) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (huge) madvise(p_, (bytes + kHugePage - 1) / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
    n_ = n;
  }
  // Grows (never shrinks) scratch space.
  void reserve(size_t n) {
    if (n > n_) resize(n);
  }

  float* data() { return p_; }
  const float* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace vn::cpu
