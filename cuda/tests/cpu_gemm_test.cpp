// Native checks of the CPU GEMM: against a double-precision loop on awkward shapes (edge rows,
// edge panels, several K blocks, epilogues), and bit-identical rows whatever M and thread count.
// Build and run: cmake --build build/native --target cpu_gemm_test && build/native/cpu_gemm_test
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/activations.h"
#include "cpu/gemm.h"

using namespace vn::cpu;

static int failures = 0;

static void check(bool ok, const char* what, int m, int n, int k) {
  if (!ok) {
    std::printf("FAIL %s (m=%d n=%d k=%d)\n", what, m, n, k);
    ++failures;
  }
}

static double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// The vector erf against double erf over [-6, 6] (every 2^-14).
static void check_erf() {
  double worst = 0, worst_x = 0;
  for (int i = -6 * 16384; i <= 6 * 16384; i += kVW) {
    alignas(64) float x[kVW], y[kVW];
    for (int l = 0; l < kVW; ++l) x[l] = float(i + l) / 16384.0f;
    vstore(y, verf(vload(x)));
    for (int l = 0; l < kVW; ++l) {
      const double e = std::fabs(double(y[l]) - std::erf(double(x[l])));
      if (e > worst) worst = e, worst_x = x[l];
    }
  }
  std::printf("erf: max abs error %.3g at %g\n", worst, worst_x);
  check(worst < 5e-7, "vector erf within 5e-7", 0, 0, 0);
}

int main() {
  check_erf();
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  ThreadPool pool2(2), pool1(1);
  const int shapes[][3] = {{1, 1, 1},   {7, 33, 5},    {9, 32, 256}, {97, 65, 257},
                           {100, 31, 600}, {200, 96, 513}, {13, 200, 1000}};
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    std::vector<float> A(M * K), W(N * K), bias(N), R(M * N), C(M * N), C1(M * N);
    for (float& x : A) x = u(gen);
    for (float& x : W) x = u(gen) / std::sqrt(float(K));
    for (float& x : bias) x = u(gen);
    for (float& x : R) x = u(gen);
    PackedLinear P;
    pack_linear(&P, W.data(), bias.data(), N, K);
    for (int mode = 0; mode < 3; ++mode) {
      Epilogue epi;
      if (mode == 1) epi.act = Act::kGelu;
      if (mode == 2) epi = Epilogue{Act::kNone, R.data(), N};
      linear(pool2, A.data(), M, K, P, C.data(), N, epi);
      double worst = 0;
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double ref = bias[j];
          for (int k = 0; k < K; ++k) ref += double(A[i * K + k]) * W[j * K + k];
          if (mode == 1) ref = gelu_ref(ref);
          if (mode == 2) ref += R[i * N + j];
          worst = std::fmax(worst, std::fabs(ref - C[i * N + j]));
        }
      check(worst < 2e-5, "matches double reference", M, N, K);
      // One thread, and each row computed alone: bit-identical.
      linear(pool1, A.data(), M, K, P, C1.data(), N, epi);
      check(std::memcmp(C.data(), C1.data(), C.size() * 4) == 0, "same bits with 1 thread", M, N, K);
      for (int i = 0; i < M; i += 1 + M / 5) {
        std::vector<float> row(N);
        Epilogue e1 = epi;
        if (mode == 2) e1.residual = R.data() + i * N;
        linear(pool2, A.data() + i * K, 1, K, P, row.data(), N, e1);
        check(std::memcmp(row.data(), C.data() + i * N, N * 4) == 0, "same bits for a row alone", M, N, K);
      }
    }
  }
  std::printf(failures ? "%d failures\n" : "gemm ok\n", failures);
  return failures ? 1 : 0;
}
