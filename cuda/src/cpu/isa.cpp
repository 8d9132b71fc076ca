// Chooses the CPU kernels once per process (isa.h). Compiled for the baseline architecture.
#include "cpu/isa.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace vn::cpu {

namespace {

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::kPortable:
      return true;
#if defined(VN_CPU_X86_UNITS)
    // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default:
      return false;
  }
}

bool built_with(Isa isa) {
#if defined(VN_CPU_X86_UNITS)
  return true;
#else
  return isa == Isa::kPortable;
#endif
}

const Kernels* table(Isa isa) {
  switch (isa) {
#if defined(VN_CPU_X86_UNITS)
    case Isa::kAvx512:
      return kernels_avx512();
    case Isa::kAvx2:
      return kernels_avx2();
#endif
    case Isa::kPortable:
      return kernels_portable();
    default:
      return nullptr;
  }
}

std::string supported_list() {
  std::string s;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kPortable})
    if (isa_supported(isa)) s += std::string(s.empty() ? "" : ", ") + isa_name(isa);
  return s;
}

const Kernels* choose() {
  const char* env = std::getenv("VIRNUC_CPU_ISA");
  const std::string want = env ? env : "";
  if (want.empty() || want == "auto") {
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kPortable})
      if (isa_supported(isa)) return table(isa);
    return table(Isa::kPortable);
  }
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kPortable}) {
    if (want != isa_name(isa)) continue;
    if (!built_with(isa))
      throw std::runtime_error("VIRNUC_CPU_ISA=" + want + ": this libvirnuc has no " + want +
                               " kernels (not an x86-64 build); this machine can use: " + supported_list());
    if (!cpu_has(isa))
      throw std::runtime_error("VIRNUC_CPU_ISA=" + want + ": this CPU does not support " + want +
                               "; it can use: " + supported_list() + " (or unset VIRNUC_CPU_ISA to choose automatically)");
    return table(isa);
  }
  throw std::runtime_error("VIRNUC_CPU_ISA=" + want + ": unknown instruction set; use avx512, avx2, portable or auto");
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "portable";
  }
}

bool isa_supported(Isa isa) { return built_with(isa) && cpu_has(isa); }

const Kernels* kernels_for(Isa isa) { return isa_supported(isa) ? table(isa) : nullptr; }

const Kernels& kernels() {
  // A failed choice throws out of the initialiser, so the next call tries (and reports) again.
  static const Kernels* chosen = choose();
  return *chosen;
}

}  // namespace vn::cpu
