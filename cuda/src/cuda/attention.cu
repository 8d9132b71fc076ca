// Variable-length self-attention over packed sequences (flash style): Q K^T and P V on tensor
// cores (mma.sync m16n8k16, FP16 inputs, FP32 accumulation), online softmax in FP32 over 64-key
// chunks, keys only from the query's own sequence. ESM-2's rotary embedding (q scaled first,
// rotate_half, angles from the per-batch FP32 table, positions per sequence) is applied while Q
// and K are loaded into shared memory; DNABERT's ALiBi is added to the scores.
//
// Two kernels share the per-chunk math, so a row's result is the same bits in either:
//  - resident: one block per (sequence, head) keeps the whole sequence's K and V in shared
//    memory, each warp takes 16-row query slices: every K/V row is loaded and rotated once
//    (VirNucPro's proteins and DNA windows are 17-168 tokens);
//  - tiled: one block per (64-row query tile, head) streams K/V in 64-row chunks: any length.
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kBM = kAttnTileM;  // query rows per tiled block (16 per warp)
constexpr int kBN = 64;          // keys per chunk
constexpr int kWarps = 4;  // tiled kernel
constexpr int kThreads = 32 * kWarps;
// Resident kernel: its warps stage their first 16-row query slices together with K and V, so a
// sequence of up to 16 x warps tokens makes a single round trip to memory. 4 warps: on an H200,
// 8-warp blocks (2 per SM) ran ESM-2 3B's attention 19% slower than 4-warp blocks (4 per SM),
// which keep more sequences in flight at the same warp count (docs/cuda-notes.md).

template <int D>
__host__ __device__ constexpr int row_stride() {
  return D + 8;  // halves; the 16-byte pad keeps ldmatrix rows on distinct banks
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::); }

// c (16x8 fp32) += a (16x16 fp16, row) * b (16x8 fp16, col)
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// x*cos + rotate_half(x)*sin on one pair (x1 at dim i, x2 at dim i + half).
__device__ __forceinline__ void rotate_pair(float& x1, float& x2, float2 cs) {
  const float o1 = x1 * cs.x + (-x2) * cs.y;
  const float o2 = x2 * cs.x + x1 * cs.y;
  x1 = o1;
  x2 = o2;
}

// Copies rows [0, n_rows) of one head into a [rows][D + 8] shared tile (cp.async when the head
// fills the tile), zero rows from `valid` on and zero dims from hd on. kThr threads, index tid.
template <int D, int kThr>
__device__ __forceinline__ void load_plain(__half* s, const __half* g, int64_t ld, int n_rows, int valid, int hd,
                                           int tid) {
  constexpr int S = row_stride<D>();
  if (hd == D) {
    constexpr int kChunks = D / 8;
#pragma unroll 4
    for (int idx = tid; idx < n_rows * kChunks; idx += kThr) {
      const int r = idx / kChunks, c = (idx % kChunks) * 8;
      if (r < valid) cp_async_16(s + r * S + c, g + r * ld + c);
      else *reinterpret_cast<uint4*>(s + r * S + c) = make_uint4(0, 0, 0, 0);
    }
  } else {
    for (int idx = tid; idx < n_rows * D; idx += kThr) {
      const int r = idx / D, c = idx % D;
      s[r * S + c] = r < valid && c < hd ? g[r * ld + c] : __float2half_rn(0.0f);
    }
  }
}

// As load_plain, scaled and rotated: row r sits at position pos0 + r; rope rows are hd/2 wide.
template <int D, int kThr>
__device__ __forceinline__ void load_rotary(__half* s, const __half* g, int64_t ld, int n_rows, int valid, int pos0,
                                            int hd, const float2* __restrict__ rope, float scale, int tid) {
  constexpr int S = row_stride<D>();
  const int half = hd / 2;
  if (hd == D) {
    // A 16-byte chunk of the first half and its partner in the second half per item.
    constexpr int kHalf = D / 2, kChunks = kHalf / 8;
#pragma unroll 2
    for (int idx = tid; idx < n_rows * kChunks; idx += kThr) {
      const int r = idx / kChunks, c = (idx % kChunks) * 8;
      uint4 lo = make_uint4(0, 0, 0, 0), hi = make_uint4(0, 0, 0, 0);
      if (r < valid) {
        lo = *reinterpret_cast<const uint4*>(g + r * ld + c);
        hi = *reinterpret_cast<const uint4*>(g + r * ld + c + kHalf);
        const float4* t = reinterpret_cast<const float4*>(rope + static_cast<int64_t>(pos0 + r) * kHalf + c);
        float2 cs[8];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float4 v = t[e];
          cs[2 * e] = make_float2(v.x, v.y);
          cs[2 * e + 1] = make_float2(v.z, v.w);
        }
        __half* l = reinterpret_cast<__half*>(&lo);
        __half* h = reinterpret_cast<__half*>(&hi);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float x1 = __half2float(l[e]) * scale, x2 = __half2float(h[e]) * scale;
          rotate_pair(x1, x2, cs[e]);
          l[e] = __float2half_rn(x1);
          h[e] = __float2half_rn(x2);
        }
      }
      *reinterpret_cast<uint4*>(s + r * S + c) = lo;
      *reinterpret_cast<uint4*>(s + r * S + c + kHalf) = hi;
    }
  } else {
    for (int idx = tid; idx < n_rows * D; idx += kThr) {
      const int r = idx / D, c = idx % D;
      float v = 0.0f;
      if (r < valid && c < hd) {
        const int i = c < half ? c : c - half;
        float x1 = __half2float(g[r * ld + i]) * scale, x2 = __half2float(g[r * ld + i + half]) * scale;
        rotate_pair(x1, x2, rope[static_cast<int64_t>(pos0 + r) * half + i]);
        v = c < half ? x1 : x2;
      }
      s[r * S + c] = __float2half_rn(v);
    }
  }
}

template <int D, int kThr>
__device__ __forceinline__ void load_qk(__half* s, const __half* g, int64_t ld, int n_rows, int valid, int pos0,
                                        const AttnParams& p, float scale, int tid) {
  if (p.rope) {
    load_rotary<D, kThr>(s, g, ld, n_rows, valid, pos0, p.head_dim, p.rope, scale, tid);
  } else {
    constexpr int S = row_stride<D>();
    // Plain rows with a scale (DNABERT's q_scale is 1: a straight copy).
    if (scale == 1.0f) {
      load_plain<D, kThr>(s, g, ld, n_rows, valid, p.head_dim, tid);
    } else {
      for (int idx = tid; idx < n_rows * D; idx += kThr) {
        const int r = idx / D, c = idx % D;
        s[r * S + c] = __float2half_rn(r < valid && c < p.head_dim ? __half2float(g[r * ld + c]) * scale : 0.0f);
      }
    }
  }
}

// The running state of one warp's 16 query rows (this thread: rows g and g + 8).
template <int D>
struct RowState {
  float o[D / 8][4];
  float m[2], l[2];
  __device__ __forceinline__ void init() {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.0f;
  }
};

// One 64-key chunk (keys kv0.., rows of sK/sV from the chunk's start) into the state.
// row_pos: position of this thread's first row (the second is + 8).
template <int D>
__device__ __forceinline__ void attend_chunk(RowState<D>& st, const uint32_t (&qf)[D / 16][4], const __half* sK,
                                             const __half* sV, int kv0, int len, int row_pos, float score_scale,
                                             float slope, bool alibi, int lane) {
  constexpr int S = row_stride<D>();
  const int tig = lane & 3;
  float sc[kBN / 8][4];
#pragma unroll
  for (int nb = 0; nb < kBN / 8; ++nb) sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int nb = 0; nb < kBN / 8; nb += 2) {
      uint32_t b[4];
      ldmatrix_x4(b, sK + (nb * 8 + (lane & 7) + (lane >> 4) * 8) * S + kk * 16 + ((lane >> 3) & 1) * 8);
      mma_16816(sc[nb], qf[kk], b[0], b[1]);
      mma_16816(sc[nb + 1], qf[kk], b[2], b[3]);
    }
  }
  // Scale, ALiBi, mask keys past the sequence; log2 domain for exp2.
  const float kLog2e = 1.4426950408889634f;
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nb = 0; nb < kBN / 8; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = kv0 + nb * 8 + tig * 2 + (e & 1);
      const int pos = row_pos + (e >= 2 ? 8 : 0);
      float v = sc[nb][e] * score_scale;
      if (alibi) v -= slope * static_cast<float>(abs(pos - key));
      v = key < len ? v * kLog2e : -INFINITY;
      sc[nb][e] = v;
      mx[e >> 1] = fmaxf(mx[e >> 1], v);
    }
  }
  float corr[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float m_new = fmaxf(st.m[r], mx[r]);
    corr[r] = exp2f(st.m[r] - m_new);
    st.m[r] = m_new;
    st.l[r] *= corr[r];
  }
#pragma unroll
  for (int nb = 0; nb < kBN / 8; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float pv = exp2f(sc[nb][e] - st.m[e >> 1]);
      sc[nb][e] = pv;
      st.l[e >> 1] += pv;
    }
  }
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    st.o[j][0] *= corr[0];
    st.o[j][1] *= corr[0];
    st.o[j][2] *= corr[1];
    st.o[j][3] *= corr[1];
  }
  // O += P V: the score accumulators of two adjacent key blocks form one A fragment.
#pragma unroll
  for (int kk = 0; kk < kBN / 16; ++kk) {
    uint32_t a[4];
    a[0] = pack_half2(sc[2 * kk][0], sc[2 * kk][1]);
    a[1] = pack_half2(sc[2 * kk][2], sc[2 * kk][3]);
    a[2] = pack_half2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
    a[3] = pack_half2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
    for (int db = 0; db < D / 16; ++db) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, sV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S + db * 16 + (lane >> 4) * 8);
      mma_16816(st.o[2 * db], a, b[0], b[1]);
      mma_16816(st.o[2 * db + 1], a, b[2], b[3]);
    }
  }
}

// Normalises and writes this thread's rows (row0 = sequence row of the slice's first row).
template <int D>
__device__ __forceinline__ void store_rows(RowState<D>& st, const AttnParams& p, int start, int row0, int len,
                                           int head, int lane) {
  const int g = lane >> 2, tig = lane & 3, hd = p.head_dim;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv_l = 1.0f / l;
    const int row = row0 + g + r * 8;
    if (row >= len) continue;
    __half* dst = p.out + static_cast<int64_t>(start + row) * p.ld_out + static_cast<int64_t>(head) * hd;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int c = j * 8 + tig * 2;
      if (c + 1 < hd)
        *reinterpret_cast<__half2*>(dst + c) = __floats2half2_rn(st.o[j][2 * r] * inv_l, st.o[j][2 * r + 1] * inv_l);
      else if (c < hd)
        dst[c] = __float2half_rn(st.o[j][2 * r] * inv_l);
    }
  }
}

template <int D>
__device__ __forceinline__ void load_q_fragments(uint32_t (&qf)[D / 16][4], const __half* sQ16, int lane) {
  constexpr int S = row_stride<D>();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], sQ16 + (lane & 15) * S + kk * 16 + (lane >> 4) * 8);
}

// One block per (sequence, head); K and V of the sequence stay in shared memory.
// Shared: K, V (kv_rows each, kv_rows >= the sequence rounded up to 64), Q staging per warp.
template <int D, int kResWarps>
__global__ void __launch_bounds__(32 * kResWarps, (D <= 64 ? 16 : 8) / kResWarps)
    attention_resident_kernel(const AttnParams p, int kv_rows) {
  constexpr int kResThreads = 32 * kResWarps;
  constexpr int S = row_stride<D>();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* sK = reinterpret_cast<__half*>(smem_raw);
  __half* sV = sK + kv_rows * S;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __half* sQ = sV + kv_rows * S + warp * 16 * S;

  const int seq = blockIdx.x, head = blockIdx.y;
  const int start = p.cu[seq];
  const int len = p.cu[seq + 1] - start;
  const int64_t ld = p.ld_qkv;
  const __half* q_base = p.qkv + static_cast<int64_t>(start) * ld + static_cast<int64_t>(head) * p.head_dim;
  const __half* k_base = q_base + p.hidden;
  const __half* v_base = q_base + 2 * p.hidden;
  const int rows = (len + kBN - 1) / kBN * kBN;

  load_plain<D, kResThreads>(sV, v_base, ld, rows, len, p.head_dim, threadIdx.x);  // async, overlaps K and Q
  load_qk<D, kResThreads>(sK, k_base, ld, rows, len, 0, p, 1.0f, threadIdx.x);
  const int first = warp * 16;
  if (first < len)
    load_qk<D, 32>(sQ, q_base + static_cast<int64_t>(first) * ld, ld, 16, min(16, len - first), first, p, p.q_scale,
                   lane);
  cp_async_wait_all();
  __syncthreads();

  const float slope = p.alibi ? p.alibi[head] : 0.0f;
  for (int row0 = first; row0 < len; row0 += kResWarps * 16) {
    if (row0 != first) {
      load_qk<D, 32>(sQ, q_base + static_cast<int64_t>(row0) * ld, ld, 16, min(16, len - row0), row0, p, p.q_scale,
                     lane);
      cp_async_wait_all();
      __syncwarp();
    }
    uint32_t qf[D / 16][4];
    load_q_fragments<D>(qf, sQ, lane);
    RowState<D> st;
    st.init();
    for (int kv0 = 0; kv0 < len; kv0 += kBN)
      attend_chunk<D>(st, qf, sK + kv0 * S, sV + kv0 * S, kv0, len, row0 + (lane >> 2), p.score_scale, slope,
                      p.alibi != nullptr, lane);
    store_rows<D>(st, p, start, row0, len, head, lane);
    __syncwarp();  // the staging rows are rewritten by the next slice
  }
}

// One block per (64-row query tile, head); K and V stream through shared memory in 64-row chunks.
template <int D>
__global__ void __launch_bounds__(kThreads) attention_tiled_kernel(const AttnParams p) {
  constexpr int S = row_stride<D>();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* sQ = reinterpret_cast<__half*>(smem_raw);
  __half* sK = sQ + kBM * S;
  __half* sV = sK + kBN * S;

  const int2 tile = p.tiles[blockIdx.x];
  const int seq = tile.x, q0 = tile.y, head = blockIdx.y;
  const int start = p.cu[seq];
  const int len = p.cu[seq + 1] - start;
  const int64_t ld = p.ld_qkv;
  const __half* q_base = p.qkv + static_cast<int64_t>(start) * ld + static_cast<int64_t>(head) * p.head_dim;
  const __half* k_base = q_base + p.hidden;
  const __half* v_base = q_base + 2 * p.hidden;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  load_qk<D, kThreads>(sQ, q_base + static_cast<int64_t>(q0) * ld, ld, kBM, min(kBM, len - q0), q0, p, p.q_scale,
                       threadIdx.x);
  cp_async_wait_all();
  __syncthreads();
  uint32_t qf[D / 16][4];
  load_q_fragments<D>(qf, sQ + warp * 16 * S, lane);
  RowState<D> st;
  st.init();
  const float slope = p.alibi ? p.alibi[head] : 0.0f;
  for (int kv0 = 0; kv0 < len; kv0 += kBN) {
    __syncthreads();  // the previous chunk's K and V are no longer read
    const int kv_valid = min(kBN, len - kv0);
    load_plain<D, kThreads>(sV, v_base + static_cast<int64_t>(kv0) * ld, ld, kBN, kv_valid, p.head_dim, threadIdx.x);
    load_qk<D, kThreads>(sK, k_base + static_cast<int64_t>(kv0) * ld, ld, kBN, kv_valid, kv0, p, 1.0f, threadIdx.x);
    cp_async_wait_all();
    __syncthreads();
    attend_chunk<D>(st, qf, sK, sV, kv0, len, q0 + warp * 16 + (lane >> 2), p.score_scale, slope, p.alibi != nullptr,
                    lane);
  }
  store_rows<D>(st, p, start, q0 + warp * 16, len, head, lane);
}

template <typename Kernel>
cudaError_t allow_smem(Kernel kernel, size_t smem) {
  if (smem <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
}

template <int D>
cudaError_t launch(const AttnParams& p, cudaStream_t stream) {
  constexpr size_t S = row_stride<D>();
  const int kv_rows = (p.max_len + kBN - 1) / kBN * kBN;
  if (p.max_len <= kAttnResidentMaxLen) {
    constexpr int kW = 4;
    dim3 grid(static_cast<unsigned>(p.n_seqs), static_cast<unsigned>(p.n_heads));
    const size_t smem = (2 * static_cast<size_t>(kv_rows) + kW * 16) * S * sizeof(__half);
    if (cudaError_t e = allow_smem(attention_resident_kernel<D, kW>, smem); e != cudaSuccess) return e;
    attention_resident_kernel<D, kW><<<grid, kW * 32, smem, stream>>>(p, kv_rows);
    return cudaGetLastError();
  }
  constexpr size_t tiled_smem = static_cast<size_t>(kBM + 2 * kBN) * S * sizeof(__half);
  if (cudaError_t e = allow_smem(attention_tiled_kernel<D>, tiled_smem); e != cudaSuccess) return e;
  dim3 grid(static_cast<unsigned>(p.n_tiles), static_cast<unsigned>(p.n_heads));
  attention_tiled_kernel<D><<<grid, kThreads, tiled_smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

bool attention_mma_supported(int head_dim) { return head_dim >= 2 && head_dim <= 128 && head_dim % 2 == 0; }

cudaError_t attention(const AttnParams& p, cudaStream_t stream) {
  if (p.n_seqs <= 0 || p.n_tiles <= 0) return cudaSuccess;
  // The tensor-core kernels need 16-byte rows of Q/K/V, even head offsets, and the rotary table.
  if (p.force_naive || !attention_mma_supported(p.head_dim) || p.ld_qkv % 8 != 0 || p.hidden % 8 != 0 ||
      p.ld_out % 2 != 0 || (p.inv_freq && !p.rope))
    return attention_naive(p, stream);
  if (p.head_dim <= 16) return launch<16>(p, stream);
  if (p.head_dim <= 32) return launch<32>(p, stream);
  if (p.head_dim <= 64) return launch<64>(p, stream);
  return launch<128>(p, stream);
}

}  // namespace vn::cuda
