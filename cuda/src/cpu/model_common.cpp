#include <utility>

#include "cpu/models.h"

namespace vn::cpu {

vn_status CpuModel::embed(ThreadPool&, const int32_t*, const int32_t*, int32_t, float*) {
  return fail(VN_ERR_INVALID, "this model is not an encoder");
}

vn_status CpuModel::classify(ThreadPool&, const float*, int32_t, float*) {
  return fail(VN_ERR_INVALID, "this model is not a classifier");
}

std::vector<float> WeightTaker::take(const std::string& name, std::initializer_list<int64_t> shape) {
  if (status != VN_OK) return {};
  const WeightSet::Entry* e = ws.get(name, shape);
  if (!e) {
    status = VN_ERR_INVALID;
    return {};
  }
  e->f32();  // converted by the prefetch threads (waits for them) or here
  return std::move(e->data);
}

LinearRows WeightTaker::rows(const std::string& weight, int64_t n, int64_t k, const float* bias) {
  if (status != VN_OK) return {};
  const WeightSet::Entry* e = ws.get(weight, {n, k});
  if (!e) {
    status = VN_ERR_INVALID;
    return {};
  }
  return LinearRows{e->src, bias, n, e->dtype};
}

void WeightTaker::linear(PackedLinear* out, const std::string& weight, const std::string& bias, int64_t n, int64_t k) {
  std::vector<float> b;
  if (!bias.empty()) b = take(bias, {n});
  const LinearRows block = rows(weight, n, k, bias.empty() ? nullptr : b.data());
  if (status != VN_OK) return;
  pack_linear(out, &block, 1, k, pool);
}

}  // namespace vn::cpu
