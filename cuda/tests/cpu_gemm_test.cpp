// Native checks of the CPU GEMM on every kernel path this CPU supports (AVX-512, AVX2+FMA,
// portable): against a double-precision loop on awkward shapes (edge rows, edge panels, several
// K blocks, epilogues), bit-identical rows whatever M and thread count, and the paths against
// each other (the FMA paths bit for bit, the portable one within the CPU tolerance); the weight
// packing against its definition on 1-4 threads, and from fp16/bf16 weights against the FP32
// conversion of the model load (vn::convert_to_f32) bit for bit: every fp16 and bf16 value.
// Build and run: cmake --build build/native --target cpu_gemm_test && build/native/cpu_gemm_test
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backend.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"

using namespace vn::cpu;

static int failures = 0;

static void check(bool ok, const char* isa, const char* what, int m, int n, int k) {
  if (!ok) {
    std::printf("FAIL [%s] %s (m=%d n=%d k=%d)\n", isa, what, m, n, k);
    ++failures;
  }
}

static double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// The vector erf against double erf over [-6, 6] (every 2^-14).
static void check_erf(const Kernels& kern) {
  std::vector<float> x, y;
  for (int i = -6 * 16384; i <= 6 * 16384; ++i) x.push_back(float(i) / 16384.0f);
  y.resize(x.size());
  kern.erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0, worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::fabs(double(y[i]) - std::erf(double(x[i])));
    if (e > worst) worst = e, worst_x = x[i];
  }
  std::printf("[%s] erf: max abs error %.3g at %g\n", kern.name, worst, worst_x);
  check(worst < 5e-7, kern.name, "vector erf within 5e-7", 0, 0, 0);
}

struct Case {
  int M, N, K, mode;
  std::vector<float> out;
};

static std::vector<Case> run_path(const Kernels& kern) {
  check_erf(kern);
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  ThreadPool pool2(2), pool1(1);
  const int shapes[][3] = {{1, 1, 1},      {7, 33, 5},     {9, 32, 256},  {97, 65, 257},
                           {100, 31, 600}, {200, 96, 513}, {13, 200, 1000}};
  std::vector<Case> results;
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    std::vector<float> A(M * K), W(N * K), bias(N), R(M * N), C(M * N), C1(M * N);
    for (float& x : A) x = u(gen);
    for (float& x : W) x = u(gen) / std::sqrt(float(K));
    for (float& x : bias) x = u(gen);
    for (float& x : R) x = u(gen);
    PackedLinear P;
    pack_linear(&P, W.data(), bias.data(), N, K, &kern);
    for (int mode = 0; mode < 3; ++mode) {
      Epilogue epi;
      if (mode == 1) epi.act = Act::kGelu;
      if (mode == 2) epi = Epilogue{Act::kNone, R.data(), N};
      kern.linear(pool2, A.data(), M, K, P, C.data(), N, epi);
      double worst = 0;
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double ref = bias[j];
          for (int k = 0; k < K; ++k) ref += double(A[i * K + k]) * W[j * K + k];
          if (mode == 1) ref = gelu_ref(ref);
          if (mode == 2) ref += R[i * N + j];
          worst = std::fmax(worst, std::fabs(ref - C[i * N + j]));
        }
      check(worst < 2e-5, kern.name, "matches double reference", M, N, K);
      // One thread, and each row computed alone: bit-identical.
      kern.linear(pool1, A.data(), M, K, P, C1.data(), N, epi);
      check(std::memcmp(C.data(), C1.data(), C.size() * 4) == 0, kern.name, "same bits with 1 thread", M, N, K);
      for (int i = 0; i < M; i += 1 + M / 5) {
        std::vector<float> row(N);
        Epilogue e1 = epi;
        if (mode == 2) e1.residual = R.data() + i * N;
        kern.linear(pool2, A.data() + i * K, 1, K, P, row.data(), N, e1);
        check(std::memcmp(row.data(), C.data() + i * N, N * 4) == 0, kern.name, "same bits for a row alone", M, N, K);
      }
      results.push_back(Case{M, N, K, mode, C});
    }
  }
  return results;
}

// Packing on 1..4 threads, in tasks of 2 MiB or of a few panel rows (so that tasks start and end
// inside panels), and from several stacked blocks: the same bits as the layout's definition
// (panel p, row kk, lane c = W[p*nr + c][kk], zero past the last row; bias zero-padded).
static void check_packing(const Kernels& kern) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2), ThreadPool(3), ThreadPool(4)};
  const int shapes[][2] = {{1, 1}, {33, 5}, {96, 513}, {200, 1000}, {1100, 700}};
  const int nr = kern.nr;
  for (const auto& s : shapes) {
    const int N = s[0], K = s[1];
    std::vector<float> W(size_t(N) * K), bias(N);
    for (float& x : W) x = u(gen);
    for (float& x : bias) x = u(gen);
    const int64_t panels = (N + nr - 1) / nr;
    std::vector<float> want(size_t(panels) * K * nr, 0.0f), want_bias(size_t(panels) * nr, 0.0f);
    for (int j = 0; j < N; ++j) {
      want_bias[j] = bias[j];
      for (int k = 0; k < K; ++k) want[size_t(j / nr) * K * nr + size_t(k) * nr + j % nr] = W[size_t(j) * K + k];
    }
    auto same = [&](const PackedLinear& P, const char* what) {
      const bool ok = P.n == N && P.k == K && P.nr == nr && P.panels == panels && P.w.size() == want.size() &&
                      P.bias.size() == want_bias.size() &&
                      std::memcmp(P.w.data(), want.data(), want.size() * 4) == 0 &&
                      std::memcmp(P.bias.data(), want_bias.data(), want_bias.size() * 4) == 0;
      check(ok, kern.name, what, 0, N, K);
    };
    PackedLinear serial;
    pack_linear(&serial, W.data(), bias.data(), N, K, &kern);
    same(serial, "packed on the calling thread");
    // Three stacked blocks (as ESM-2's query, key and value), unequal sizes.
    const int n0 = N / 3, n1 = N / 2 - N / 3;
    const LinearRows blocks[3] = {{W.data(), bias.data(), n0},
                                  {W.data() + size_t(n0) * K, bias.data() + n0, n1},
                                  {W.data() + size_t(n0 + n1) * K, bias.data() + n0 + n1, N - n0 - n1}};
    for (ThreadPool& pool : pools)
      for (int64_t chunk : {int64_t(0), int64_t(3) * nr, int64_t(37) * nr + 5}) {
        PackedLinear P;
        pack_linear(&P, blocks, 3, K, &pool, &kern, chunk);
        same(P, "packed on a pool, in tasks, from three blocks");
      }
    PackedLinear P;
    pack_linear(&P, W.data(), bias.data(), N, K, &kern, &pools[3]);
    same(P, "packed on a pool of 4");
  }
  // Without a bias: zeros.
  std::vector<float> W(size_t(40) * 3, 1.0f);
  PackedLinear P;
  pack_linear(&P, W.data(), nullptr, 40, 3, &kern, &pools[1]);
  bool zeros = true;
  for (size_t i = 0; i < P.bias.size(); ++i) zeros = zeros && P.bias.data()[i] == 0.0f;
  check(zeros, kern.name, "no bias packs zeros", 0, 40, 3);
  std::printf("[%s] packing: same bits on 1-4 threads, any task size, stacked blocks\n", kern.name);
}

// The conversion (Kernels::to_f32) against vn::convert_to_f32 over every 16-bit pattern (fp16 and
// bf16: subnormals, signed zeros, Inf, quiet and signalling NaNs), from every alignment and at every
// length around the vector width; then packing from fp16/bf16/fp32 rows (unaligned, mixed blocks, on
// 1-4 threads, tasks inside panels) against packing the FP32 conversion: the same bits.
static void check_dtypes(const Kernels& kern) {
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (int32_t dt : {int32_t(VN_F16), int32_t(VN_BF16)}) {
    const char* dn = dt == VN_F16 ? "fp16" : "bf16";
    std::vector<float> want(65536), got(65536);
    vn::convert_to_f32(dt, all.data(), want.data(), 65536);
    std::vector<unsigned char> buf(2 * 65536 + 64);
    bool ok = true;
    for (int off = 0; off < 4; ++off) {
      std::memcpy(buf.data() + off, all.data(), 2 * 65536);
      std::fill(got.begin(), got.end(), -1.0f);
      kern.to_f32(dt, buf.data() + off, got.data(), 65536);
      ok = ok && std::memcmp(got.data(), want.data(), 4 * 65536) == 0;
    }
    // Every length 0..40 from odd offsets (tails, groups holding NaNs next to ordinary values).
    for (int len = 0; len <= 40; ++len)
      for (int start : {0, 1, 31743, 31744 - 7, 64511 - 3, 65536 - 41}) {
        std::vector<float> g(len + 1, -2.0f);
        std::memcpy(buf.data() + 1, all.data() + start, 2 * len);
        kern.to_f32(dt, buf.data() + 1, g.data(), len);
        ok = ok && std::memcmp(g.data(), want.data() + start, 4 * len) == 0 && g[len] == -2.0f;
      }
    check(ok, kern.name, dt == VN_F16 ? "fp16 to FP32: the bits of convert_to_f32" : "bf16 to FP32: the bits of convert_to_f32", 0, 0, 65536);
    std::printf("[%s] %s -> fp32: all 65536 values as the scalar conversion\n", kern.name, dn);
  }

  std::mt19937 gen(11);
  std::uniform_int_distribution<int> bits(0, 65535);
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(3)};
  const int shapes[][2] = {{1, 1}, {33, 5}, {96, 513}, {301, 700}};
  for (const auto& s : shapes) {
    const int N = s[0], K = s[1];
    // Three blocks of rows: fp16, bf16, fp32 (random bit patterns: every kind of value), each at an
    // odd address.
    const int n0 = N / 3, n1 = N / 2 - N / 3, n2 = N - n0 - n1;
    std::vector<unsigned char> h(2 * size_t(n0) * K + 1), b(2 * size_t(n1) * K + 1), f(4 * size_t(n2) * K + 1);
    for (size_t i = 1; i < h.size(); i += 2) {
      const int v = bits(gen);
      h[i] = v & 0xff, h[i + 1] = v >> 8;
    }
    for (size_t i = 1; i < b.size(); i += 2) {
      const int v = bits(gen);
      b[i] = v & 0xff, b[i + 1] = v >> 8;
    }
    for (size_t i = 1; i < f.size(); ++i) f[i] = static_cast<unsigned char>(bits(gen));
    std::vector<float> bias(N), w32(size_t(N) * K);
    for (int j = 0; j < N; ++j) bias[j] = float(j) - 7.5f;
    vn::convert_to_f32(VN_F16, h.data() + 1, w32.data(), int64_t(n0) * K);
    vn::convert_to_f32(VN_BF16, b.data() + 1, w32.data() + size_t(n0) * K, int64_t(n1) * K);
    vn::convert_to_f32(VN_F32, f.data() + 1, w32.data() + size_t(n0 + n1) * K, int64_t(n2) * K);
    PackedLinear want;
    pack_linear(&want, w32.data(), bias.data(), N, K, &kern);
    const LinearRows blocks[3] = {{h.data() + 1, bias.data(), n0, VN_F16},
                                  {b.data() + 1, bias.data() + n0, n1, VN_BF16},
                                  {f.data() + 1, bias.data() + n0 + n1, n2, VN_F32}};
    for (ThreadPool& pool : pools)
      for (int64_t chunk : {int64_t(0), int64_t(37) * kern.nr + 5}) {
        PackedLinear P;
        pack_linear(&P, blocks, 3, K, &pool, &kern, chunk);
        const bool same = P.w.size() == want.w.size() && P.bias.size() == want.bias.size() &&
                          std::memcmp(P.w.data(), want.w.data(), want.w.size() * 4) == 0 &&
                          std::memcmp(P.bias.data(), want.bias.data(), want.bias.size() * 4) == 0;
        check(same, kern.name, "packed from fp16/bf16/fp32 rows = packed from their FP32 conversion", 0, N, K);
      }
  }
  std::printf("[%s] packing from fp16/bf16/fp32 rows: the bits of packing their FP32 conversion\n", kern.name);
}

int main() {
  std::printf("process kernels: %s (%s)\n", kernels().name, kernels().label);
  std::vector<std::vector<Case>> runs;
  std::vector<const Kernels*> paths;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kPortable}) {
    const Kernels* k = kernels_for(isa);
    if (!k) {
      std::printf("[%s] not supported on this CPU: skipped\n", isa_name(isa));
      continue;
    }
    paths.push_back(k);
    check_packing(*k);
    check_dtypes(*k);
    runs.push_back(run_path(*k));
  }
  // The paths against the first (the widest this CPU has).
  for (size_t p = 1; p < paths.size(); ++p) {
    const bool both_fma = std::strcmp(paths[0]->name, "portable") != 0 && std::strcmp(paths[p]->name, "portable") != 0;
    double worst = 0;
    bool same = true;
    for (size_t c = 0; c < runs[0].size(); ++c) {
      const Case& a = runs[0][c];
      const Case& b = runs[p][c];
      same = same && std::memcmp(a.out.data(), b.out.data(), a.out.size() * 4) == 0;
      for (size_t i = 0; i < a.out.size(); ++i) worst = std::fmax(worst, std::fabs(double(a.out[i]) - b.out[i]));
    }
    std::printf("[%s vs %s] max abs difference %.3g%s\n", paths[p]->name, paths[0]->name, worst,
                same ? " (bit-identical)" : "");
    if (both_fma) check(same, paths[p]->name, "bit-identical to the other FMA path", 0, 0, 0);
    check(worst < 2e-5, paths[p]->name, "within 2e-5 of the widest path", 0, 0, 0);
  }
  std::printf(failures ? "%d failures\n" : "gemm ok\n", failures);
  return failures ? 1 : 0;
}
