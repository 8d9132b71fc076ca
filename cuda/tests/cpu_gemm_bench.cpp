// GEMM throughput of the CPU backend at ESM-2 / DNABERT-S layer shapes, on every kernel path this
// CPU supports (or only the one named: avx512, avx2, portable).
// Build and run: cmake --build build/native --target cpu_gemm_bench && build/native/cpu_gemm_bench [M] [threads] [isa]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <sys/resource.h>

#include <cstring>

#include "cpu/gemm.h"
#include "cpu/isa.h"

using namespace vn::cpu;

static double cpu_seconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char** argv) {
  const int M = argc > 1 ? std::atoi(argv[1]) : 1024;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  ThreadPool pool(threads);
  struct Shape {
    const char* name;
    int n, k;
  };
  const Shape shapes[] = {{"esm2-3B qkv", 7680, 2560}, {"esm2-3B out", 2560, 2560}, {"esm2-3B fc1", 10240, 2560},
                          {"esm2-3B fc2", 2560, 10240}, {"dnabert qkv", 2304, 768},  {"dnabert wo", 768, 3072}};
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const char* only = argc > 3 ? argv[3] : nullptr;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kPortable}) {
  if (only && std::strcmp(only, isa_name(isa)) != 0) continue;
  const Kernels* kern = kernels_for(isa);
  if (!kern) {
    std::printf("%s: not supported on this CPU\n", isa_name(isa));
    continue;
  }
  std::printf("%s (%s): M=%d threads=%d\n", kern->name, kern->label, M, pool.size());
  for (const Shape& s : shapes) {
    std::vector<float> A(size_t(M) * s.k), W(size_t(s.n) * s.k), C(size_t(M) * s.n);
    for (float& x : A) x = u(gen);
    for (float& x : W) x = u(gen) * 0.01f;
    PackedLinear P;
    pack_linear(&P, W.data(), nullptr, s.n, s.k, kern);
    kern->linear(pool, A.data(), M, s.k, P, C.data(), s.n, Epilogue{});  // warm-up
    // Wall time, and process CPU time: the per-core rate stays meaningful on a shared machine.
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const double c0 = cpu_seconds();
      auto t0 = std::chrono::steady_clock::now();
      kern->linear(pool, A.data(), M, s.k, P, C.data(), s.n, Epilogue{});
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      best_cpu = std::min(best_cpu, cpu_seconds() - c0);
    }
    const double gflop = 2.0 * M * s.n * s.k / 1e9;
    std::printf("%-14s %5d x %5d x %5d  %7.1f GFLOP/s  (%6.1f GFLOP/s per busy core)\n", s.name, M, s.n, s.k,
                gflop / best, gflop / best_cpu);
  }
  }
  return 0;
}
