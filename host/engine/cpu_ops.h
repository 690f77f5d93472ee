/* cpu_ops.h — the CPU reference operators, in plain C11 with fp32 math.
 *
 * These are the oracle for every CUDA kernel (tests/kernels/ compare each
 * kernel with the function of the same family here) and the building blocks of the
 * CPU backend (cpu_backend.c).  Layouts match the CUDA side: activations are
 * row-major [tokens, features]; packed variable-length batches are described
 * by cu_seqlens (nseq + 1 prefix offsets, cu_seqlens[0] == 0); positions
 * restart at 0 for each sequence.  Weights are typed armo_weight views (BF16 /
 * F16 / F32) converted to fp32 on the fly, so an 8B checkpoint is never
 * duplicated in fp32. */
#ifndef ARMO_CPU_OPS_H
#define ARMO_CPU_OPS_H

#include <stdint.h>

#include "weights/config.h"
#include "weights/head_params.h"
#include "weights/model.h"

/* out[i, :] = embed[ids[i], :] for i < n.  ids must be < embed->rows. */
void cpu_embed(float *out, const armo_weight *embed, const int32_t *ids, int n);

/* y[n, w->rows] = x[n, w->cols] · Wᵀ  (W is [out, in] row-major).
 * Splits output rows over nthreads POSIX threads when nthreads > 1. */
void cpu_matmul(float *y, const float *x, const armo_weight *w, int n, int nthreads);

/* out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w, per row of dim; fp32 stats.
 * out may equal x. */
void cpu_rmsnorm(float *out, const float *x, const float *w, int n, int dim, float eps);

/* Fused residual add + RMSNorm (what the CUDA kernel does in one pass):
 * residual += delta; out = rmsnorm(residual). */
void cpu_add_rmsnorm(float *residual, const float *delta, float *out, const float *w, int n,
                     int dim, float eps);

/* In-place rotate-half RoPE on x [n, nheads*head_dim]: token i at position
 * pos[i]; dim j pairs with j + head_dim/2; inv_freq from armo_rope_inv_freq
 * (weights/rope_table.h). */
void cpu_rope_apply(float *x, int n, int nheads, int head_dim, const int32_t *pos,
                    const float *inv_freq);

/* Causal GQA attention over packed sequences.
 * q [n, nh*hd], k and v [n, nkv*hd], out [n, nh*hd]; query head h uses KV head
 * h / (nh / nkv); softmax(q·kᵀ/sqrt(hd)) in fp32 over keys 0..i of its own
 * sequence. */
void cpu_attention(float *out, const float *q, const float *k, const float *v,
                   const int32_t *cu_seqlens, int nseq, int nh, int nkv, int hd);

/* The same for a subset of query rows only (global token indices rows[r],
 * r < nrows), writing out [nrows, nh*hd]: lets GPU tests check long sequences
 * (8192 tokens) on sampled rows without an O(n^2) CPU pass over all of them. */
void cpu_attention_rows(float *out, const float *q, const float *k, const float *v,
                        const int32_t *cu_seqlens, int nseq, int nh, int nkv, int hd,
                        const int32_t *rows, int nrows);

/* out[i] = silu(gate[i]) * up[i] for i < count; out may alias gate or up. */
void cpu_swiglu(float *out, const float *gate, const float *up, int64_t count);

/* The ArmoRM head (weights/head_params.h, host pointers, every weight in
 * fp32: head tensors are F32 in the checkpoint, others converted once).
 * For each of nseq sequences: rewards = W_r h_last; z = gating MLP(h_prompt)
 * (ReLU between layers); gate = softmax(z / T) * logit_scale;
 * coefficients = gate @ Mᵀ; score = Σ gate * (rewards @ M) = Σ rewards * coeffs.
 * h_last, h_prompt: [nseq, H] (post final norm).  Outputs [nseq, K] / [nseq]. */
void cpu_armo_head(const armo_head_params *hw, const float *h_last, const float *h_prompt,
                   int nseq, float *rewards, float *gating, float *coefficients, float *score);

/* Single-head RM: scores[nseq, labels] = h_last · Wᵀ (W [labels, H] fp32). */
void cpu_seqcls_head(const float *w, int labels, int hidden, const float *h_last, int nseq,
                     float *scores);

#endif
