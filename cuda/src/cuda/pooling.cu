// Segment mean pooling of the final hidden states (FP32) and the NaN/Inf check of the result.
#include <climits>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kThreads = 256;

// grid: (n_seqs, column blocks); each thread sums one column over the sequence's pooled rows.
__global__ void mean_pool_kernel(const float* __restrict__ x, int hidden, const int32_t* __restrict__ cu,
                                 int skip_front, int skip_back, int max_rows, float* __restrict__ out,
                                 int32_t* bad_row) {
  const int s = blockIdx.x;
  const int j = blockIdx.y * blockDim.x + threadIdx.x;
  const int r0 = cu[s] + skip_front;
  int r1 = cu[s + 1] - skip_back;
  if (max_rows > 0) r1 = min(r1, r0 + max_rows);
  bool bad = false;
  if (j < hidden) {
    float acc = 0.0f;
    for (int r = r0; r < r1; ++r) acc += x[static_cast<int64_t>(r) * hidden + j];
    const float mean = acc / static_cast<float>(max(1, r1 - r0));
    out[static_cast<int64_t>(s) * hidden + j] = mean;
    bad = !isfinite(mean);
  }
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) atomicMin(bad_row, s);
}

}  // namespace

cudaError_t mean_pool(const float* x, int hidden, const int32_t* cu, int n_seqs, int skip_front, int skip_back,
                      int max_rows, float* out, int32_t* bad_row, cudaStream_t stream) {
  if (n_seqs <= 0) return cudaSuccess;
  dim3 grid(static_cast<unsigned>(n_seqs), static_cast<unsigned>((hidden + kThreads - 1) / kThreads));
  mean_pool_kernel<<<grid, kThreads, 0, stream>>>(x, hidden, cu, skip_front, skip_back, max_rows, out, bad_row);
  return cudaGetLastError();
}

}  // namespace vn::cuda
