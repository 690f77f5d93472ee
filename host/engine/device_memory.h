/* device_memory.h — the device memory of the CUDA backend, from a model's
 * config alone: its weights, the activation buffers of a batch, workspace;
 * and whether a budget fits in the memory a device has free.
 *
 * Pure arithmetic in armo_core (no CUDA header), so that every armo — one
 * built without nvcc too — can print it (`armo inspect --max-batch-tokens`)
 * and decide before any weight is uploaded whether a model fits (`armo
 * score --device cuda`).  The CUDA backend (host/cuda/cuda_backend.c) sizes
 * every buffer it allocates with these same functions, so that the figures
 * are what it allocates, to the byte (cudaMalloc's rounding aside: the
 * reserve in ARMO_DEV_WORKSPACE_BYTES covers it).
 *
 * The backend allocates its activations lazily, for the largest batch it
 * has been sent (growing between batches), never for a budget it has not
 * seen; a budget's figures below are the most that budget can make it
 * allocate: n tokens in min(max_seqs, n) sequences, and with prompt-prefix
 * sharing an expanded attention layout of up to 2n rows. */
#ifndef ARMO_DEVICE_MEMORY_H
#define ARMO_DEVICE_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "weights/config.h"

/* The batch budgets `armo score` and `armo inspect` share. */
#define ARMO_DEFAULT_BATCH_TOKENS_CUDA 16384
#define ARMO_DEFAULT_BATCH_TOKENS_CPU 2048
#define ARMO_DEFAULT_MAX_SEQS 1024
/* The smallest batch worth running: below it `armo score` refuses the GPU. */
#define ARMO_DEV_MIN_BATCH_TOKENS 128
/* cuBLASLt's workspace (the CUDA backend creates its GEMM context with it) */
#define ARMO_DEV_GEMM_WORKSPACE_BYTES ((size_t)32 << 20)
/* the GEMM workspace plus a reserve for what the runtime and cuBLASLt
 * allocate on their own and for cudaMalloc's rounding */
#define ARMO_DEV_WORKSPACE_BYTES ((size_t)128 << 20)

/* A packed batch as the backend's buffers see it. */
typedef struct {
    int64_t tokens;              /* T: tokens of the batch */
    int64_t seqs;                /* S: sequences (segments) of the batch */
    int64_t exp_rows;            /* E: rows of the expanded attention layout under
                                  * prefix sharing (the CPU backend's; the CUDA
                                  * backend only asks E > 0: sharing on); 0: off */
} armo_batch_shape;

/* Device bytes of the weights as the CUDA backend uploads them: backbone
 * bf16 (embedding, norms, fused QKV, o, fused gate|up, down, final norm),
 * the head in fp32 (ArmoRM: regression, gating MLP with biases, transform;
 * else score.weight), the RoPE inverse-frequency table. */
size_t armo_dev_weight_bytes(const armo_config *c);

/* Device bytes of the activation buffers for a batch of shape s: residual
 * stream, normed input, attention output, o, gate|up and SwiGLU on
 * max(T, 2S) rows; fused QKV (RoPE and attention work in place in it), ids
 * and positions on T;
 * cu_seqlens, head rows, head inputs (fp32), head outputs and scratch on S;
 * with E > 0 (prefix sharing) attention's prefix_of on S.  (Until issue 20
 * the CUDA backend also held split q, k, v copies and, with sharing, an
 * expanded attention layout of E rows; its attention now reads the fused
 * QKV output and the prefix's keys in place.) */
size_t armo_dev_activation_bytes(const armo_config *c, armo_batch_shape s);

/* The activation buffers, one by one (the CUDA backend allocates exactly
 * these, each with the size armo_dev_activation_buffer gives). */
typedef enum {
    ARMO_ACT_X = 0,              /* residual stream, bf16 [R, H] */
    ARMO_ACT_XN,                 /* normed input of each block [R, H] */
    ARMO_ACT_QKV,                /* fused QKV GEMM output [T, q + 2 kv] */
    ARMO_ACT_ATTN,               /* attention output [R, q] */
    ARMO_ACT_O,                  /* o / down output, gathered rows [R, max(H, q)] */
    ARMO_ACT_GU,                 /* fused gate|up [R, 2 I] */
    ARMO_ACT_SWIGLU,             /* [R, I] */
    ARMO_ACT_IDS,                /* int32 [T] */
    ARMO_ACT_POS,                /* int32 [T] */
    ARMO_ACT_CU,                 /* int32 [S + 1] */
    ARMO_ACT_ROWS,               /* head rows, int32 [2 S] */
    ARMO_ACT_HEAD_IN,            /* head inputs, fp32 [2 S, H] */
    ARMO_ACT_HEAD_OUT,           /* rewards, gating, coefficients, score: fp32 [S (3 K + 1)] */
    ARMO_ACT_HEAD_SCRATCH,       /* ArmoRM gating MLP: fp32 [2 S widest]; 0 otherwise */
    ARMO_ACT_PREFIX_OF,          /* prefix sharing (E > 0 only): int32 [S] */
    ARMO_ACT_COUNT
} armo_act_buffer;

/* Bytes of one activation buffer for shape s (0: not allocated for it);
 * *name (may be NULL) gets its name for messages.  R = max(T, 2 S). */
size_t armo_dev_activation_buffer(const armo_config *c, armo_batch_shape s, armo_act_buffer b,
                                  const char **name);

/* The largest batch a budget of max_tokens tokens / max_seqs sequences can
 * form: {n, min(max_seqs, n), share ? 2n : 0}. */
armo_batch_shape armo_dev_budget_shape(int64_t max_tokens, int max_seqs, int share_prefix);

/* What a budget needs, in all. */
typedef struct {
    size_t weights, workspace, activations, total;
    /* activation bytes per token of a large batch, the part of them that
     * prefix sharing adds (none since the CUDA attention reads the prefix
     * in place), and per sequence */
    double per_token, per_token_shared, per_seq;
} armo_dev_need;

void armo_dev_need_for(const armo_config *c, int64_t max_tokens, int max_seqs, int share_prefix,
                       armo_dev_need *out);

/* The largest n (>= 0, at most limit) whose budget's activations fit in
 * avail bytes; 0 when not even one token does. */
int64_t armo_dev_max_tokens(const armo_config *c, size_t avail, int max_seqs, int share_prefix,
                            int64_t limit);

/* The decision `armo score --device cuda` makes before uploading anything. */
typedef enum {
    ARMO_FIT_OK = 0,             /* the budget fits */
    ARMO_FIT_LOWER,              /* weights and a minimal batch fit, the budget does not:
                                  * batches of up to fit_tokens do */
    ARMO_FIT_NONE,               /* not even the weights and a minimal batch fit */
} armo_fit_kind;

typedef struct {
    armo_fit_kind kind;
    armo_dev_need need;          /* for the budget asked */
    armo_dev_need minimal;       /* for a batch of min(budget, ARMO_DEV_MIN_BATCH_TOKENS) */
    int64_t max_tokens;          /* the budget asked */
    size_t free_bytes, total_bytes;
    int64_t fit_tokens;          /* the largest --max-batch-tokens that fits (0: none) */
} armo_fit;

/* Judges a budget (max_tokens, max_seqs, share_prefix) against a device
 * with free_bytes free of total_bytes. */
void armo_dev_fit(const armo_config *c, int64_t max_tokens, int max_seqs, int share_prefix,
                  size_t free_bytes, size_t total_bytes, armo_fit *out);

/* One message with the numbers for a fit that is not ARMO_FIT_OK: what is
 * needed, what is free, what --max-batch-tokens would fit.  Returns buf. */
const char *armo_dev_fit_message(const armo_fit *f, char *buf, size_t len);

/* bytes as "1.50 GiB" (B, KiB, MiB, GiB, TiB); returns buf */
const char *armo_dev_human(double bytes, char *buf, size_t len);

#endif
