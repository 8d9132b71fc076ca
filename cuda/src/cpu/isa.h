// Run-time choice of the CPU kernels: one build carries an AVX-512, an AVX2+FMA and a portable
// version of the hot loops (GEMM, attention, GELU), each in its own translation unit compiled
// with its own target flags (isa_*.cpp); everything else is compiled for the baseline
// architecture. The table is chosen once per process, on first use:
//   VIRNUC_CPU_ISA=avx512|avx2|portable   forces a path (refused when this CPU lacks it)
//   unset (or "auto")                     the best path this CPU supports
#pragma once

#include <cstdint>

namespace vn::cpu {

class ThreadPool;
struct PackedLinear;
struct Epilogue;
struct AttentionArgs;

struct Kernels {
  const char* name;   // the VIRNUC_CPU_ISA value: "avx512", "avx2", "portable"
  const char* label;  // for describe strings: "AVX-512", "AVX2+FMA", "portable (SSE2)", ...
  int nr;             // columns per packed weight panel (PackedLinear::nr)
  // C (m, ldc) = epilogue(A (m, lda) * W^T + bias); W packed with this table's nr.
  void (*linear)(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedLinear& w, float* c,
                 int64_t ldc, const Epilogue& epi);
  // Softmax attention within each sequence (ops.h).
  void (*attention)(ThreadPool& pool, const AttentionArgs& args, const int32_t* cu, int32_t n_seqs);
  // x[0..n) = GELU(x) in place (erf form).
  void (*gelu)(float* x, int64_t n);
  // y[0..n) = erf(x) (the vector fit GELU uses; for tests).
  void (*erf)(const float* x, float* y, int64_t n);
  // dst[0..n) = the n values of a vn_dtype (f32, f16, bf16) at src, any alignment, as FP32: exact,
  // the same bits as vn::convert_to_f32 (F16C / AVX-512 conversions where the path has them).
  void (*to_f32)(int32_t dtype, const void* src, float* dst, int64_t n);
};

enum class Isa : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// "avx512", "avx2", "portable".
const char* isa_name(Isa isa);
// Whether this build has the path and this CPU (and OS) can run it.
bool isa_supported(Isa isa);
// The kernels of one path; nullptr when !isa_supported(isa).
const Kernels* kernels_for(Isa isa);
// The process-wide table (see above). Throws std::runtime_error, with a message for the user,
// when VIRNUC_CPU_ISA is unknown or names a path this CPU cannot run.
const Kernels& kernels();

// Defined by the kernel units.
const Kernels* kernels_portable();
#if defined(VN_CPU_X86_UNITS)
const Kernels* kernels_avx2();
const Kernels* kernels_avx512();
#endif

}  // namespace vn::cpu
