// The CPU kernels for AVX2 with FMA (compiled with -mavx2 -mfma; see CMakeLists.txt).
#define VN_ISA_NS avx2
#define VN_ISA_AVX2 1
#include "cpu/kernels_impl.h"

namespace vn::cpu {

const Kernels* kernels_avx2() {
  // The fp16 conversion uses F16C where the CPU reports it (Intel and AMD CPUs with AVX2 have it,
  // but it is not required for this path: a hypervisor may hide it).
  static const Kernels k{"avx2", "AVX2+FMA", avx2::kNR, &avx2::linear, &avx2::attention, &avx2::gelu,
                         &avx2::erf_n, __builtin_cpu_supports("f16c") ? &avx2::to_f32 : &avx2::to_f32_no_f16c};
  return &k;
}

}  // namespace vn::cpu
