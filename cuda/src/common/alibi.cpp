#include <cmath>

#include "backend.h"

namespace vn {

// MosaicBERT / DNABERT-2 slopes: the geometric sequence for the largest power of two <= n, then
// the odd-indexed slopes of the sequence for twice that many heads until n are filled.
static std::vector<double> power_of_two_slopes(int n) {
  std::vector<double> s(n);
  const double start = std::pow(2.0, -8.0 / n);
  for (int i = 0; i < n; ++i) s[i] = start * std::pow(start, i);
  return s;
}

std::vector<float> alibi_slopes(int n_heads) {
  std::vector<float> out;
  if (n_heads <= 0) return out;
  int p = 1;
  while (p * 2 <= n_heads) p *= 2;
  for (double v : power_of_two_slopes(p)) out.push_back(static_cast<float>(v));
  if (p < n_heads) {
    const std::vector<double> extra = power_of_two_slopes(2 * p);
    for (int i = 0; i < 2 * p && static_cast<int>(out.size()) < n_heads; i += 2)
      out.push_back(static_cast<float>(extra[i]));
  }
  return out;
}

}  // namespace vn
