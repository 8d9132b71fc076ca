// Drives libvirnuc's CPU backend through the public C ABI only: creates a CPU engine (the kernel
// path is chosen there), prints its description, then runs a small seeded MLP classifier (the
// packed GEMM; its Linear weights stored as fp16 and bf16, so the packing converts them with the
// path's instructions) and prints the probabilities. On failure prints vn_last_error() and exits 1.
// Built and run under valgrind (which hides AVX-512 from CPUID) by scripts/check-isa-valgrind.sh.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "virnuc.h"

static int fail(const char* what) {
  std::printf("error: %s: %s\n", what, vn_last_error());
  return 1;
}

int main() {
  vn_engine* e = nullptr;
  if (vn_engine_create(VN_BACKEND_CPU, 0, 1, &e) != VN_OK) return fail("engine");
  char desc[256];
  if (vn_engine_describe(e, desc, sizeof desc) != VN_OK) return fail("describe");
  std::printf("describe: %s\n", desc);
  const int F = 70, U = 45, C = 3, N = 13;  // not multiples of any vector width
  uint32_t s = 12345;
  auto next = [&s]() {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
  };
  std::vector<float> w1(U * F), b1(U), g(U), beta(U), mean(U), var(U), w2(C * U), b2(C), x(N * F), out(N * C);
  for (auto* v : {&w1, &b1, &g, &beta, &mean, &w2, &b2, &x})
    for (float& f : *v) f = next();
  for (float& f : var) f = 0.5f + next() * 0.5f + 0.5f;
  // hidden_layer.weight as fp16 (normal halves of magnitude 2^-6 .. 1), output_layer.weight as bf16
  // (the top 16 bits of the floats).
  std::vector<uint16_t> w1h(w1.size()), w2b(w2.size());
  for (size_t i = 0; i < w1.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w1[i], 4);
    w1h[i] = static_cast<uint16_t>(((bits >> 16) & 0x8000u) | ((9u + (bits >> 8) % 6u) << 10) | ((bits >> 3) & 0x3ffu));
  }
  for (size_t i = 0; i < w2.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w2[i], 4);
    w2b[i] = static_cast<uint16_t>(bits >> 16);
  }
  vn_tensor t[] = {
      {"hidden_layer.weight", VN_F16, 2, {U, F}, w1h.data()}, {"hidden_layer.bias", VN_F32, 1, {U}, b1.data()},
      {"bn1.weight", VN_F32, 1, {U}, g.data()},              {"bn1.bias", VN_F32, 1, {U}, beta.data()},
      {"bn1.running_mean", VN_F32, 1, {U}, mean.data()},     {"bn1.running_var", VN_F32, 1, {U}, var.data()},
      {"output_layer.weight", VN_BF16, 2, {C, U}, w2b.data()}, {"output_layer.bias", VN_F32, 1, {C}, b2.data()},
  };
  vn_model_config cfg{};
  cfg.arch = VN_ARCH_MLP;
  cfg.hidden = F;
  cfg.intermediate = U;
  cfg.n_classes = C;
  cfg.ln_eps = 1e-5f;
  vn_model* m = nullptr;
  if (vn_model_load(e, &cfg, t, 8, VN_PREC_FP32, &m) != VN_OK) return fail("load");
  int64_t ticket = 0;
  if (vn_submit_classify(m, x.data(), N, out.data(), &ticket) != VN_OK) return fail("submit");
  if (vn_wait(e, ticket) != VN_OK) return fail("classify");
  std::printf("probs:");
  for (float p : out) std::printf(" %.9g", p);
  std::printf("\n");
  vn_model_destroy(m);
  vn_engine_destroy(e);
  return 0;
}
