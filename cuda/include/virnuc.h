/*
 * virnuc.h: the whole C ABI of libvirnuc.
 *
 * libvirnuc holds the model math of virnuc: the ESM-2 and DNABERT-S encoders over packed
 * variable-length batches (token ids + cu_seqlens), pooled to one embedding per sequence,
 * and the VirNucPro MLP classifier head. Backends: "cpu" (FP32, always built) and "cuda"
 * (FP16/FP8, built when nvcc and cuBLAS are found).
 *
 * Conventions
 *  - Every function returns a vn_status; on failure vn_last_error() holds one line that says
 *    what went wrong (thread-local, valid until the next call on that thread).
 *  - Handles are opaque. A model belongs to the engine that loaded it; destroy models first.
 *  - Work is asynchronous: vn_submit_* returns a ticket at once; vn_wait / vn_poll complete it.
 *    All pointers passed to a submit call must stay valid (and unmodified) until its ticket
 *    is complete. Tickets complete in submission order per engine.
 *    The CPU backend may run the work inside submit (the ticket is then already complete).
 *  - Host buffers from vn_host_alloc are pinned (page-locked) on the CUDA backend and plain
 *    aligned memory on the CPU backend; token batches and embeddings should live in them so
 *    that no copy is made between the caller and the device.
 *  - Numeric layout: row-major, little-endian; embeddings and scores are float32.
 */
#ifndef VIRNUC_H
#define VIRNUC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define VN_API __declspec(dllexport)
#else
#define VN_API __attribute__((visibility("default")))
#endif

#define VN_ABI_VERSION 2

typedef enum vn_status {
  VN_OK = 0,
  VN_ERR_INVALID = 1,     /* bad argument, shape or name */
  VN_ERR_OOM = 2,         /* out of memory (device or host): shrink the batch and retry */
  VN_ERR_BACKEND = 3,     /* CUDA / cuBLAS / thread failure */
  VN_ERR_UNSUPPORTED = 4, /* backend not built, precision or shape not supported */
  VN_ERR_NONFINITE = 5,   /* NaN or Inf in an output; vn_ticket_bad_row says which sequence */
  VN_ERR_PENDING = 6,     /* vn_poll: not finished yet */
  VN_ERR_CANCELLED = 7    /* vn_engine_cancel was called: the work was not done */
} vn_status;

typedef enum vn_backend { VN_BACKEND_CPU = 0, VN_BACKEND_CUDA = 1 } vn_backend;

typedef enum vn_dtype { VN_F32 = 0, VN_F16 = 1, VN_BF16 = 2 } vn_dtype;

typedef enum vn_precision { VN_PREC_FP32 = 0, VN_PREC_FP16 = 1, VN_PREC_FP8 = 2 } vn_precision;

typedef enum vn_arch {
  VN_ARCH_ESM2 = 1,    /* pre-LN, rotary, token-dropout rescale, final LN; pool residues 1..min(1024,p) */
  VN_ARCH_DNABERT = 2, /* post-LN, ALiBi, gated GELU FFN; pool over every token */
  VN_ARCH_MLP = 3      /* Linear -> BatchNorm1d(eval) -> ReLU -> Linear -> softmax */
} vn_arch;

typedef struct vn_engine vn_engine;
typedef struct vn_model vn_model;

/* One named host tensor, contiguous row-major. Names are the canonical ones listed below. */
typedef struct vn_tensor {
  const char* name;
  int32_t dtype; /* vn_dtype: converted at load to the backend's precision */
  int32_t ndim;
  int64_t shape[4];
  const void* data;
} vn_tensor;

/*
 * Model description. Encoders: n_layers, hidden, n_heads, intermediate, vocab, ln_eps.
 * ESM-2: mask_token_id (token-dropout), token_dropout (1 = apply the 0.88 rescale).
 * MLP:   hidden = input features, intermediate = hidden units, n_classes = outputs, ln_eps = BN eps.
 */
typedef struct vn_model_config {
  int32_t arch;          /* vn_arch */
  int32_t n_layers;
  int32_t hidden;
  int32_t n_heads;
  int32_t intermediate;
  int32_t vocab;
  float ln_eps;
  int32_t mask_token_id; /* ESM-2: <mask> = 32 */
  int32_t token_dropout; /* ESM-2: 1 */
  int32_t n_classes;     /* MLP: 2 */
  int32_t max_pool_positions; /* ESM-2: 1024 (residues pooled: 1..min(this, p)); 0 = no limit */
  int32_t reserved[7];
} vn_model_config;

/*
 * Canonical tensor names (prefixes such as "esm."/"bert." and variants are resolved by the caller).
 * ESM-2:
 *   embeddings.word_embeddings.weight                         [vocab, H]
 *   encoder.layer.N.attention.LayerNorm.{weight,bias}          [H]
 *   encoder.layer.N.attention.self.{query,key,value}.weight    [H, H]   .bias [H]
 *   encoder.layer.N.attention.self.rotary_embeddings.inv_freq  [head_dim/2]
 *   encoder.layer.N.attention.output.dense.{weight [H,H], bias [H]}
 *   encoder.layer.N.LayerNorm.{weight,bias}                    [H]
 *   encoder.layer.N.intermediate.dense.{weight [I,H], bias [I]}
 *   encoder.layer.N.output.dense.{weight [H,I], bias [H]}
 *   encoder.emb_layer_norm_after.{weight,bias}                 [H]
 * DNABERT-S:
 *   embeddings.word_embeddings.weight [vocab,H]  embeddings.token_type_embeddings.weight [2,H]
 *   embeddings.LayerNorm.{weight,bias}
 *   encoder.layer.N.attention.self.Wqkv.{weight [3H,H], bias [3H]}
 *   encoder.layer.N.attention.output.dense.{weight [H,H], bias [H]}
 *   encoder.layer.N.attention.output.LayerNorm.{weight,bias}
 *   encoder.layer.N.mlp.gated_layers.weight [2I,H]
 *   encoder.layer.N.mlp.wo.{weight [H,I], bias [H]}
 *   encoder.layer.N.mlp.layernorm.{weight,bias}
 * MLP (VirNucPro MLPClassifier):
 *   hidden_layer.{weight [U,F], bias [U]}  bn1.{weight,bias,running_mean,running_var} [U]
 *   output_layer.{weight [C,U], bias [C]}
 */

/* ---- errors and capabilities ---- */
VN_API const char* vn_last_error(void);
VN_API int32_t vn_abi_version(void);
/* 1 when the backend was compiled in; for CUDA also needs a usable device. */
VN_API int32_t vn_backend_available(int32_t backend);
/* Number of CUDA devices visible (0 when the CUDA backend is not built). */
VN_API int32_t vn_cuda_device_count(void);

/* ---- engine ---- */
/* device: CUDA device index (ignored for CPU). n_threads: CPU threads, 0 = all cores. */
VN_API vn_status vn_engine_create(int32_t backend, int32_t device, int32_t n_threads, vn_engine** out);
VN_API void vn_engine_destroy(vn_engine* engine);
/* Human-readable description, e.g. "cpu (16 threads)" or "cuda:0 NVIDIA H200 (sm_90, 139 GiB)". */
VN_API vn_status vn_engine_describe(vn_engine* engine, char* buf, int32_t buf_len);
/* Free and total device memory in bytes (CPU: physical memory). */
VN_API vn_status vn_engine_memory(vn_engine* engine, int64_t* free_bytes, int64_t* total_bytes);
/* Stops the engine's work for good (Ctrl-C): every later submit returns VN_ERR_CANCELLED, and work
 * already queued but not yet started (the CPU backend's next batch, the CUDA worker's next job)
 * completes with VN_ERR_CANCELLED without running; a batch already on the device finishes.
 * Thread-safe; the engine can still be destroyed as usual. */
VN_API vn_status vn_engine_cancel(vn_engine* engine);

/* Host buffers the engine can read/write without copies (pinned on CUDA). 64-byte aligned. */
VN_API void* vn_host_alloc(vn_engine* engine, int64_t bytes);
VN_API void vn_host_free(vn_engine* engine, void* ptr);

/* ---- models ---- */
/* precision: vn_precision (the CPU backend accepts FP32 only). Weights are converted/copied at load;
 * the caller's tensors may be freed after this returns.
 * FP8 (CUDA, sm_89 or newer, ESM-2 only): the four linear layers of each ESM-2 layer run as E4M3
 * GEMMs with FP32 accumulation (weights quantized once here, one scale per output channel;
 * activations quantized per token on the fly); LayerNorm, attention, the residual stream and pooling
 * stay FP16/FP32. DNABERT-S and the classifier head take fp16 / fp32 as before. */
VN_API vn_status vn_model_load(vn_engine* engine, const vn_model_config* config, const vn_tensor* tensors,
                               int32_t n_tensors, int32_t precision, vn_model** out);
VN_API void vn_model_destroy(vn_model* model);
/* Output width of the model: hidden size (encoders) or n_classes (MLP). */
VN_API int32_t vn_model_output_dim(vn_model* model);

/*
 * Encode one packed batch: sequences laid end to end in tokens[0 .. cu_seqlens[n_seqs]),
 * sequence i = tokens[cu_seqlens[i] .. cu_seqlens[i+1]), positions restart at 0 per sequence.
 * out: n_seqs x output_dim float32, the pooled embeddings (pooling per the arch).
 * Returns a ticket; complete it with vn_wait. A sequence's embedding does not depend on the
 * other sequences in the batch.
 */
VN_API vn_status vn_submit_embed(vn_model* model, const int32_t* tokens, const int32_t* cu_seqlens, int32_t n_seqs,
                                 float* out, int64_t* ticket);
/* Classifier head: features n_rows x F (float32) -> probabilities n_rows x n_classes (softmax). */
VN_API vn_status vn_submit_classify(vn_model* model, const float* features, int32_t n_rows, float* out,
                                    int64_t* ticket);
/* Block until the ticket completes; returns its status (VN_ERR_NONFINITE, VN_ERR_OOM, ...). */
VN_API vn_status vn_wait(vn_engine* engine, int64_t ticket);
/* VN_ERR_PENDING while running, else as vn_wait. */
VN_API vn_status vn_poll(vn_engine* engine, int64_t ticket);
/* After VN_ERR_NONFINITE: index of the first sequence/row whose output holds NaN or Inf. */
VN_API int32_t vn_ticket_bad_row(vn_engine* engine, int64_t ticket);
/* Largest tokens-per-batch that fits the free memory for this model (CUDA); CPU returns a default. */
VN_API int64_t vn_model_suggest_token_budget(vn_model* model);

/* ---- FP8 (E4M3) quantization, host reference of what --precision fp8 does on the GPU ----
 * Per row: amax = max |x|; q = e4m3(x * (448 / amax)), round to nearest even, saturating to +-448,
 * NaN stays NaN; scales[row] = amax / 448 (1 for an all-zero row); x ~ q * scale. For tests and tools. */
VN_API vn_status vn_fp8_quantize_rows(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales);
/* E4M3 bytes to float32 (unscaled). */
VN_API vn_status vn_fp8_dequantize(const uint8_t* q, int64_t n, float* out);
/* FP8 outlier channels (common/fp8.h): gains is n_vectors x hidden LayerNorm gains; out gets up to 16
 * channels (ascending), *n_out how many. */
VN_API vn_status vn_fp8_outlier_channels(const float* gains, int64_t n_vectors, int64_t hidden, int32_t* out,
                                         int32_t* n_out);
/* As vn_fp8_quantize_rows with each row followed by the outlier extension (fp8_ext_columns(n, cols) bytes):
 * weights != 0: [lo | hi | 0] per channel, else [hi | lo | 0]; q is rows x (cols + extension). */
VN_API vn_status vn_fp8_quantize_rows_ext(const float* x, int64_t rows, int64_t cols, const int32_t* channels,
                                          int32_t n, int32_t weights, uint8_t* q, float* scales);

#ifdef __cplusplus
}
#endif
#endif /* VIRNUC_H */
