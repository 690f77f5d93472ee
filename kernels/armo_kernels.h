/* armo_kernels.h — the C-callable launchers of every CUDA kernel of armo.
 *
 * One header for the whole kernels/ directory so that the host engine (C11)
 * and the tests see one API.  Conventions, for every launcher:
 *   - bf16 tensors are passed as uint16_t pointers holding raw bf16 bits (the
 *     layout of weights/dtype.h), fp32 tensors as float; all pointers are
 *     DEVICE pointers unless the comment says otherwise;
 *   - activations are row-major [tokens, features]; packed variable-length
 *     batches are described by cu_seqlens (nseq + 1 int32 prefix offsets,
 *     cu_seqlens[0] == 0, cu_seqlens[nseq] == n tokens);
 *   - bf16 in, bf16 out, fp32 accumulation and statistics;
 *   - every launcher takes the cudaStream_t it enqueues on and returns
 *     cudaSuccess / a cudaError_t (cudaErrorInvalidValue for bad arguments,
 *     otherwise the launch status from cudaGetLastError), except the cuBLASLt
 *     GEMM layer, which returns 0 / -1 and fills an armo_err;
 *   - nothing synchronises the stream: errors raised while a kernel runs show
 *     up at the caller's next synchronisation.
 * Vectorised kernels (attention, GEMM) need 16-byte aligned base pointers and
 * row strides (hidden sizes multiple of 8), which cudaMalloc and every Llama
 * shape give; the launchers check and refuse otherwise. */
#ifndef ARMO_KERNELS_H
#define ARMO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "base/errors.h"
#include "weights/head_params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 1. embedding gather (kernels/embedding.cu) ---------------------------
 * out[i, :] = table[ids[i], :] for i < n; table [vocab, hidden] bf16,
 * ids int32 [n], out [n, hidden] bf16.  An id outside [0, vocab) writes a row
 * of zeros (the host validates ids; the kernel never reads out of bounds). */
cudaError_t armo_embed_bf16(uint16_t *out, const uint16_t *table, const int32_t *ids, int n,
                            int hidden, int vocab, cudaStream_t stream);

/* ---- 2. RMSNorm (kernels/rmsnorm.cu) --------------------------------------
 * out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w per row of dim; x, out
 * [n, dim] bf16, w [dim] bf16; statistics in fp32.  out may equal x. */
cudaError_t armo_rmsnorm_bf16(uint16_t *out, const uint16_t *x, const uint16_t *w, int n,
                              int dim, float eps, cudaStream_t stream);

/* Fused residual add + RMSNorm in one pass over each row:
 * residual = bf16(residual + delta)  (written back, [n, dim] bf16);
 * out = rmsnorm(residual) * w        (statistics over the rounded bf16 sum,
 * as the bf16 reference model sees it).  delta may equal out. */
cudaError_t armo_add_rmsnorm_bf16(uint16_t *residual, const uint16_t *delta, uint16_t *out,
                                  const uint16_t *w, int n, int dim, float eps,
                                  cudaStream_t stream);

/* The same with the normalised rows written as fp32 (bf16-rounded values,
 * as armo_gather_rows_f32 of the bf16 output would give): out [n, dim]
 * float.  The engine's final norm writes the head's input rows with it. */
cudaError_t armo_add_rmsnorm_f32_bf16(uint16_t *residual, const uint16_t *delta, float *out,
                                      const uint16_t *w, int n, int dim, float eps,
                                      cudaStream_t stream);

/* ---- 3. RoPE (kernels/rope.cu) ---------------------------------------------
 * In-place rotate-half RoPE (HF convention: dim j pairs with j + head_dim/2)
 * on q [n, nh*head_dim] and k [n, nkv*head_dim] (k may be NULL with nkv 0);
 * token i at position pos[i] (int32 [n]); inv_freq fp32 [head_dim/2] on the
 * device, computed on the host by armo_rope_inv_freq (default or llama3-scaled:
 * the scaling lives entirely in the table).  Angles and sin/cos in fp32. */
cudaError_t armo_rope_bf16(uint16_t *q, uint16_t *k, int n, int nh, int nkv, int head_dim,
                           const int32_t *pos, const float *inv_freq, cudaStream_t stream);
/* The same with row strides (elements between tokens, >= nh*head_dim and
 * nkv*head_dim): the engine rotates q and k in place inside the fused QKV
 * output (q = qkv, k = qkv + nh*hd, both strides (nh + 2 nkv) * hd). */
cudaError_t armo_rope_strided_bf16(uint16_t *q, int q_stride, uint16_t *k, int k_stride, int n,
                                   int nh, int nkv, int head_dim, const int32_t *pos,
                                   const float *inv_freq, cudaStream_t stream);

/* ---- 4. attention (kernels/attention.cu) ------------------------------------
 * Causal GQA attention over packed variable-length sequences.
 * q [n, nh*hd], k and v [n, nkv*hd], out [n, nh*hd], all bf16; cu_seqlens
 * int32 [nseq+1] on the device with cu_seqlens[nseq] == n (empty sequences
 * allowed); max_seqlen = the longest sequence (host value; checked >= 0 and
 * kept for variants that size grids by it: the current kernels tile the
 * packed token axis and do not need it).  Query head h reads KV head h / (nh / nkv)
 * (nh % nkv == 0).  softmax(q·kᵀ / sqrt(hd)) in fp32 over the keys 0..i of
 * token i's own sequence.
 *
 * armo_attention_bf16 picks the variant: the flash kernel (tensor cores,
 * mma.sync m16n8k16, online softmax; hd 16, 32, 64 or 128) unless the
 * environment variable ARMO_ATTN (read once per process) selects another:
 * ARMO_ATTN=simple the simple one, ARMO_ATTN=pipelined the pipelined one
 * (the flash kernel's function and head dims, with cp.async double-buffered
 * K/V tiles: attention_pipelined.cuh); a hd the flash kernel does not take
 * goes to the simple one.  The variants are also callable directly. */
cudaError_t armo_attention_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                const uint16_t *v, const int32_t *cu_seqlens, int nseq, int n,
                                int max_seqlen, int nh, int nkv, int hd, cudaStream_t stream);
cudaError_t armo_attention_flash_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                      const uint16_t *v, const int32_t *cu_seqlens, int nseq,
                                      int n, int max_seqlen, int nh, int nkv, int hd,
                                      cudaStream_t stream);
/* Pipelined variant (FlashAttention-2 style): as flash, same head dims and
 * alignment rules. */
cudaError_t armo_attention_pipelined_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                          const uint16_t *v, const int32_t *cu_seqlens, int nseq,
                                          int n, int max_seqlen, int nh, int nkv, int hd,
                                          cudaStream_t stream);
/* Simple variant: one block per (token, query head), scores in fp32 with a
 * two-pass softmax over its keys (max, then exp-sum and weighted V).  Any hd
 * up to 256.  Slow; for checking and bisecting. */
cudaError_t armo_attention_simple_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                       const uint16_t *v, const int32_t *cu_seqlens, int nseq,
                                       int n, int max_seqlen, int nh, int nkv, int hd,
                                       cudaStream_t stream);

/* The general form, both variants: q, k, v read with their own row strides
 * (elements between consecutive tokens), so that attention reads them in
 * place from the fused [n, q | k | v] QKV output (q = qkv, k = qkv + nh*hd,
 * v = qkv + (nh+nkv)*hd, q_stride = kv_stride = (nh + 2 nkv) * hd; each a
 * multiple of 8 for the flash kernel's 16-byte loads); out stays dense
 * [n, nh*hd].  prefix_of (device int32 [nseq], or NULL) gives query rows a
 * second, separate key range: a row of sequence s with p = prefix_of[s] >= 0
 * attends every key of sequence p (cu_seqlens[p] .. cu_seqlens[p+1]-1, all
 * visible) and then its own keys causally, so that prompt-prefix sharing's
 * continuations read the shared prefix's keys and values where they are,
 * without duplicated rows (p < s, one level: prefix_share.h's rules).
 * Keys a row does not attend never reach its output, even when their V rows
 * hold NaN or Inf; a non-finite V row among the keys it does attend makes
 * the row non-finite, as in the CPU reference.
 * variant: ARMO_ATTN_AUTO (as armo_attention_bf16), _FLASH, _SIMPLE or
 * _PIPELINED. */
typedef struct {
    uint16_t *out;               /* [n, nh*hd] */
    const uint16_t *q, *k, *v;
    int q_stride, kv_stride;     /* elements per token row of q, and of k and v */
    const int32_t *cu_seqlens;   /* [nseq + 1] */
    const int32_t *prefix_of;    /* [nseq] or NULL */
    int nseq, n, max_seqlen, nh, nkv, hd;
} armo_attn_args;
enum { ARMO_ATTN_AUTO = 0, ARMO_ATTN_FLASH = 1, ARMO_ATTN_SIMPLE = 2, ARMO_ATTN_PIPELINED = 3 };
cudaError_t armo_attention_ex_bf16(const armo_attn_args *a, int variant, cudaStream_t stream);
/* The variant ARMO_ATTN names (read once per process): ARMO_ATTN_SIMPLE for
 * "simple", ARMO_ATTN_PIPELINED for "pipelined", ARMO_ATTN_FLASH otherwise
 * (unset, "flash" or anything else). */
int armo_attention_env_variant(void);
/* 1 when armo_attention_bf16 uses the simple variant (ARMO_ATTN=simple). */
int armo_attention_use_simple(void);
/* 1 when the flash (and pipelined) kernel takes this head_dim (16, 32, 64, 128). */
int armo_attention_flash_supports(int hd);

/* ---- 5. SwiGLU (kernels/swiglu.cu) -------------------------------------------
 * gate_up [n, 2*inter] bf16, each row [gate(inter) | up(inter)] (the fused
 * gate|up GEMM output); out [n, inter] bf16 = silu(gate) * up, fp32 math. */
cudaError_t armo_swiglu_bf16(uint16_t *out, const uint16_t *gate_up, int n, int inter,
                             cudaStream_t stream);

/* ---- 6. row gather (kernels/gather.cu) and reward heads (kernels/head.cu) -----
 * out[r, :] = x[rows[r], :] for r < m; x [*, hidden] bf16, rows int32 [m]
 * (every index must be a valid row of x: the caller owns that). */
cudaError_t armo_gather_rows_bf16(uint16_t *out, const uint16_t *x, const int32_t *rows, int m,
                                  int hidden, cudaStream_t stream);
/* Two row gathers with one row list, in one launch:
 * out_a[r, :] = a[rows[r], :] (width_a) and out_b[r, :] = b[rows[r], :] (width_b). */
cudaError_t armo_gather_rows2_bf16(uint16_t *out_a, const uint16_t *a, int width_a,
                                   uint16_t *out_b, const uint16_t *b, int width_b,
                                   const int32_t *rows, int m, cudaStream_t stream);
/* The same, converting to fp32: out [m, hidden] float. */
cudaError_t armo_gather_rows_f32(float *out, const uint16_t *x, const int32_t *rows, int m,
                                 int hidden, cudaStream_t stream);

/* The ArmoRM gated head takes weights/head_params.h's armo_head_params with
 * DEVICE pointers to fp32 weights (the CPU head, cpu_armo_head, takes the
 * same struct with host pointers). */

/* Floats of scratch armo_gated_head_f32 needs for nseq sequences. */
size_t armo_head_scratch_floats(const armo_head_params *hw, int nseq);

/* For each of nseq sequences: rewards = W_r h_last; z = gating MLP(h_prompt)
 * (ReLU between layers, none after the last); gate = softmax(z / T) *
 * logit_scale; coefficients = gate @ Mᵀ; score = Σ rewards * coefficients.
 * h_last, h_prompt fp32 [nseq, H]; rewards, gating, coefficients [nseq, K];
 * score [nseq]; scratch armo_head_scratch_floats() floats.  K <= 1024,
 * nseq <= 65535 (per call). */
cudaError_t armo_gated_head_f32(const armo_head_params *hw, const float *h_last,
                                const float *h_prompt, int nseq, float *rewards, float *gating,
                                float *coefficients, float *score, float *scratch,
                                cudaStream_t stream);

/* Single-head RM: scores[nseq, labels] = h_last · Wᵀ, W [labels, hidden] fp32;
 * nseq <= 65535 (per call). */
cudaError_t armo_seqcls_head_f32(const float *w, int labels, int hidden, const float *h_last,
                                 int nseq, float *scores, cudaStream_t stream);

/* ---- 7. cuBLASLt GEMM layer (kernels/gemm.cu) -----------------------------------
 * Y[n, out] = X[n, in] · Wᵀ, W [out, in] row-major (the checkpoint layout),
 * bf16 x bf16 -> bf16, fp32 accumulation (CUBLAS_COMPUTE_32F).  The context
 * owns a cuBLASLt handle, a workspace and a cache of the heuristic's algorithm
 * choice per (token-count bucket, out, in, alignment); ARMO_GEMM_LOG=1 prints
 * each choice once on stderr.  Not thread-safe: one context per host thread
 * (and device).  Errors name the call and file:line. */
typedef struct armo_gemm armo_gemm;

#define ARMO_GEMM_DEFAULT_WORKSPACE ((size_t)32 << 20)

/* Creates a context on the current device with workspace_bytes of workspace
 * (0 = ARMO_GEMM_DEFAULT_WORKSPACE). */
int armo_gemm_create(armo_gemm **out, size_t workspace_bytes, armo_err *e);
void armo_gemm_destroy(armo_gemm *g);

/* Enqueues Y = X · Wᵀ on stream.  x, w, y 16-byte aligned, in and out
 * multiples of 8. */
int armo_gemm_bf16(armo_gemm *g, uint16_t *y, const uint16_t *x, const uint16_t *w, int n,
                   int in, int out, cudaStream_t stream, armo_err *e);

/* Fused weight layouts, built by copying rows (src may be host or device
 * memory: cudaMemcpyDefault; dst is device memory):
 * QKV: dst [(nh + 2*nkv)*hd, hidden] = rows of wq [nh*hd, hidden], then wk,
 * then wv ([nkv*hd, hidden] each), so one GEMM yields [n, (nh+2nkv)*hd] with
 * each row [q | k | v]. */
int armo_build_qkv_weight(uint16_t *dst, const uint16_t *wq, const uint16_t *wk,
                          const uint16_t *wv, int nh, int nkv, int hd, int hidden,
                          cudaStream_t stream, armo_err *e);
/* gate|up: dst [2*inter, hidden] = rows of wgate [inter, hidden] then wup, so
 * one GEMM yields [n, 2*inter] with each row [gate | up] (armo_swiglu_bf16's
 * input layout). */
int armo_build_gate_up_weight(uint16_t *dst, const uint16_t *wgate, const uint16_t *wup,
                              int inter, int hidden, cudaStream_t stream, armo_err *e);

#ifdef __cplusplus
}
#endif

#endif
