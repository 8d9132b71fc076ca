// The CPU kernels for AVX-512 (compiled with -mavx512f -mavx2 -mfma; see CMakeLists.txt).
#define VN_ISA_NS avx512
#define VN_ISA_AVX512 1
#include "cpu/kernels_impl.h"

namespace vn::cpu {

const Kernels* kernels_avx512() {
  static const Kernels k{"avx512", "AVX-512", avx512::kNR, &avx512::linear, &avx512::attention, &avx512::gelu, &avx512::erf_n,
                         &avx512::to_f32};
  return &k;
}

}  // namespace vn::cpu
