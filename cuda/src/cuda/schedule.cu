// The attention launch's work list: one (sequence, first query row) entry per 64-row query tile,
// built on the device from cu_seqlens so that no host buffer has to be staged per batch.
#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kThreads = 1024;

// One block: each thread takes a contiguous run of sequences, counts their tiles, and a block
// scan of the counts gives where each run writes.
__global__ void __launch_bounds__(kThreads) query_tiles_kernel(int2* __restrict__ tiles, const int32_t* __restrict__ cu,
                                                               int n_seqs) {
  __shared__ int warp_totals[32];
  const int per = (n_seqs + kThreads - 1) / kThreads;
  const int s0 = min(n_seqs, static_cast<int>(threadIdx.x) * per), s1 = min(n_seqs, s0 + per);
  int count = 0;
  for (int s = s0; s < s1; ++s) count += (cu[s + 1] - cu[s] + kAttnTileM - 1) / kAttnTileM;
  // Inclusive scan within the warp, then across warp totals.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int incl = count;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int v = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += v;
  }
  if (lane == 31) warp_totals[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int w = warp_totals[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += v;
    }
    warp_totals[lane] = w;
  }
  __syncthreads();
  int out = incl - count + (warp > 0 ? warp_totals[warp - 1] : 0);
  for (int s = s0; s < s1; ++s) {
    const int len = cu[s + 1] - cu[s];
    for (int q0 = 0; q0 < len; q0 += kAttnTileM) tiles[out++] = make_int2(s, q0);
  }
}

}  // namespace

cudaError_t build_query_tiles(int2* tiles, const int32_t* cu, int n_seqs, cudaStream_t stream) {
  if (n_seqs <= 0) return cudaSuccess;
  query_tiles_kernel<<<1, kThreads, 0, stream>>>(tiles, cu, n_seqs);
  return cudaGetLastError();
}

}  // namespace vn::cuda
