// Variable-length self-attention over packed sequences (flash style): per (64-row query tile,
// head) one block of 4 warps; Q K^T and P V on tensor cores (mma.sync m16n8k16, FP16 inputs,
// FP32 accumulation), online softmax in FP32, keys only from the query's own sequence.
// ESM-2's rotary embedding (q scaled first, rotate_half, fp32 angles, positions per sequence) is
// applied while Q and K tiles are loaded; DNABERT's ALiBi is added to the scores.
#include <cuda_fp16.h>

#include "cuda/device.cuh"
#include "cuda/kernels.h"

namespace vn::cuda {

namespace {

constexpr int kBM = kAttnTileM;  // query rows per block (16 per warp)
constexpr int kBN = 64;          // keys per tile
constexpr int kThreads = 128;

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

// Rotary on one pair (x1 at dim i, x2 at dim i + half) at position pos: x*cos + rotate_half(x)*sin.
__device__ __forceinline__ void rotate_pair(float& x1, float& x2, int pos, float inv_freq) {
  float s, c;
  sincosf(static_cast<float>(pos) * inv_freq, &s, &c);
  const float o1 = x1 * c + (-x2) * s;
  const float o2 = x2 * c + x1 * s;
  x1 = o1;
  x2 = o2;
}

// Loads `valid` rows (positions pos0..) of one head from global (row stride ld) into a
// [kRows][D + 8] shared tile, zero-filling absent rows and dims >= hd; optional scale and rotary.
template <int D, int kRows>
__device__ __forceinline__ void load_tile(__half* s, const __half* g, int64_t ld, int valid, int pos0, int hd,
                                          const float* inv_freq, float scale) {
  constexpr int S = row_stride<D>();
  if (hd == D && (!inv_freq || (hd / 2) % 8 == 0)) {
    if (!inv_freq) {
      // 16-byte chunks, scaled.
      constexpr int kChunks = D / 8;
      for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kThreads) {
        const int r = idx / kChunks, c = (idx % kChunks) * 8;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r < valid) {
          val = *reinterpret_cast<const uint4*>(g + r * ld + c);
          if (scale != 1.0f) {
            __half2* h = reinterpret_cast<__half2*>(&val);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              float2 f = __half22float2(h[e]);
              h[e] = __floats2half2_rn(f.x * scale, f.y * scale);
            }
          }
        }
        *reinterpret_cast<uint4*>(s + r * S + c) = val;
      }
    } else {
      // A 16-byte chunk of the first half and its partner in the second half per item.
      constexpr int kHalf = D / 2, kChunks = kHalf / 8;
      for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kThreads) {
        const int r = idx / kChunks, c = (idx % kChunks) * 8;
        uint4 lo = make_uint4(0, 0, 0, 0), hi = make_uint4(0, 0, 0, 0);
        if (r < valid) {
          lo = *reinterpret_cast<const uint4*>(g + r * ld + c);
          hi = *reinterpret_cast<const uint4*>(g + r * ld + c + kHalf);
          __half* l = reinterpret_cast<__half*>(&lo);
          __half* h = reinterpret_cast<__half*>(&hi);
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            float x1 = __half2float(l[e]) * scale, x2 = __half2float(h[e]) * scale;
            rotate_pair(x1, x2, pos0 + r, inv_freq[c + e]);
            l[e] = __float2half_rn(x1);
            h[e] = __float2half_rn(x2);
          }
        }
        *reinterpret_cast<uint4*>(s + r * S + c) = lo;
        *reinterpret_cast<uint4*>(s + r * S + c + kHalf) = hi;
      }
    }
  } else {
    // Any head dim <= D: one element at a time.
    const int half = hd / 2;
    for (int idx = threadIdx.x; idx < kRows * D; idx += kThreads) {
      const int r = idx / D, c = idx % D;
      float v = 0.0f;
      if (r < valid && c < hd) {
        if (inv_freq) {
          const int i = c < half ? c : c - half;
          float x1 = __half2float(g[r * ld + i]) * scale, x2 = __half2float(g[r * ld + i + half]) * scale;
          rotate_pair(x1, x2, pos0 + r, inv_freq[i]);
          v = c < half ? x1 : x2;
        } else {
          v = __half2float(g[r * ld + c]) * scale;
        }
      }
      s[r * S + c] = __float2half_rn(v);
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(const AttnParams p) {
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

  load_tile<D, kBM>(sQ, q_base + static_cast<int64_t>(q0) * ld, ld, min(kBM, len - q0), q0, p.head_dim, p.inv_freq,
                    p.q_scale);
  __syncthreads();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, tig = lane & 3;
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * S + kk * 16 + (lane >> 4) * 8);

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const float kLog2e = 1.4426950408889634f;
  const float slope = p.alibi ? p.alibi[head] : 0.0f;
  const int row_pos = q0 + warp * 16 + g;  // position of this thread's first row (the second is +8)

  for (int kv0 = 0; kv0 < len; kv0 += kBN) {
    __syncthreads();  // the previous tile's K and V are no longer read
    const int kv_valid = min(kBN, len - kv0);
    load_tile<D, kBN>(sK, k_base + static_cast<int64_t>(kv0) * ld, ld, kv_valid, kv0, p.head_dim, p.inv_freq, 1.0f);
    load_tile<D, kBN>(sV, v_base + static_cast<int64_t>(kv0) * ld, ld, kv_valid, kv0, p.head_dim, nullptr, 1.0f);
    __syncthreads();

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
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < kBN / 8; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = kv0 + nb * 8 + tig * 2 + (e & 1);
        const int pos = row_pos + (e >= 2 ? 8 : 0);
        float v = sc[nb][e] * p.score_scale;
        if (p.alibi) v -= slope * static_cast<float>(abs(pos - key));
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
      const float m_new = fmaxf(m[r], mx[r]);
      corr[r] = exp2f(m[r] - m_new);
      m[r] = m_new;
      l[r] *= corr[r];
    }
#pragma unroll
    for (int nb = 0; nb < kBN / 8; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pv = exp2f(sc[nb][e] - m[e >> 1]);
        sc[nb][e] = pv;
        l[e >> 1] += pv;
      }
    }
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] *= corr[0];
      o[j][1] *= corr[0];
      o[j][2] *= corr[1];
      o[j][3] *= corr[1];
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
        mma_16816(o[2 * db], a, b[0], b[1]);
        mma_16816(o[2 * db + 1], a, b[2], b[3]);
      }
    }
  }

  float inv_l[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv_l[r] = 1.0f / l[r];
  }
  const int hd = p.head_dim;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = q0 + warp * 16 + g + r * 8;
    if (row >= len) continue;
    __half* dst = p.out + static_cast<int64_t>(start + row) * p.ld_out + static_cast<int64_t>(head) * hd;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int c = j * 8 + tig * 2;
      if (c + 1 < hd)
        *reinterpret_cast<__half2*>(dst + c) = __floats2half2_rn(o[j][2 * r] * inv_l[r], o[j][2 * r + 1] * inv_l[r]);
      else if (c < hd)
        dst[c] = __float2half_rn(o[j][2 * r] * inv_l[r]);
    }
  }
}

template <int D>
cudaError_t launch_mma(const AttnParams& p, cudaStream_t stream) {
  constexpr size_t smem = static_cast<size_t>(kBM + 2 * kBN) * row_stride<D>() * sizeof(__half);
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(attention_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  dim3 grid(static_cast<unsigned>(p.n_tiles), static_cast<unsigned>(p.n_heads));
  attention_mma_kernel<D><<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

bool attention_mma_supported(int head_dim) { return head_dim >= 2 && head_dim <= 128 && head_dim % 2 == 0; }

cudaError_t attention(const AttnParams& p, cudaStream_t stream) {
  if (p.n_seqs <= 0 || p.n_tiles <= 0) return cudaSuccess;
  // The tensor-core path's alignment needs even head offsets; anything else takes the reference.
  if (p.force_naive || !attention_mma_supported(p.head_dim) || p.ld_qkv % 8 != 0 || p.ld_out % 2 != 0)
    return attention_naive(p, stream);
  if (p.head_dim <= 16) return launch_mma<16>(p, stream);
  if (p.head_dim <= 32) return launch_mma<32>(p, stream);
  if (p.head_dim <= 64) return launch_mma<64>(p, stream);
  return launch_mma<128>(p, stream);
}

}  // namespace vn::cuda
