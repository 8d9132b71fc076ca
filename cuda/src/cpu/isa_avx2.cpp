// The CPU kernels for AVX2 with FMA (compiled with -mavx2 -mfma; see CMakeLists.txt).
#define VN_ISA_NS avx2
#define VN_ISA_AVX2 1
#include "cpu/kernels_impl.h"

namespace vn::cpu {

const Kernels* kernels_avx2() {
  static const Kernels k{"avx2", "AVX2+FMA", avx2::kNR, &avx2::linear, &avx2::attention, &avx2::gelu, &avx2::erf_n};
  return &k;
}

}  // namespace vn::cpu
