// The CPU kernels for the baseline architecture (x86-64: SSE2; elsewhere plain C++).
#define VN_ISA_NS portable
#define VN_ISA_PORTABLE 1
#include "cpu/kernels_impl.h"

namespace vn::cpu {

const Kernels* kernels_portable() {
#if defined(__SSE2__)
  static const Kernels k{"portable", "portable (SSE2)", portable::kNR, &portable::linear, &portable::attention,
                         &portable::gelu, &portable::erf_n, &portable::to_f32};
#else
  static const Kernels k{"portable", "portable", portable::kNR, &portable::linear, &portable::attention,
                         &portable::gelu, &portable::erf_n, &portable::to_f32};
#endif
  return &k;
}

}  // namespace vn::cpu
