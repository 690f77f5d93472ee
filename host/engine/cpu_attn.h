/* cpu_attn.h — the CPU backend's causal GQA attention over a packed batch,
 * in tiles of query rows with the products through BLAS.
 *
 * The same function as cpu_attention (cpu_ops.h, the reference the CUDA
 * kernels are checked against): out[i] = softmax(q_i·K[0..i]ᵀ / sqrt(hd))
 * V[0..i] per query head, keys of the row's own sequence, query head h on KV
 * head h / (nh / nkv), softmax in fp32.  Work is split into tasks of one
 * sequence, one query head and CPU_ATTN_TILE consecutive query rows, every
 * BLAS call at a shape fixed by the tile's index: row i's output depends on
 * rows 0..i of its sequence only (never on the sequence's length, the batch
 * around it or the thread that runs it), so packing, prefix sharing and the
 * thread count change no bit.  A row never reads a later key's value: the
 * tile's causal square is summed by hand, so a NaN in a later token's K or V
 * stays out of the earlier rows (as in the reference).  Internal to
 * host/engine/. */
#ifndef ARMO_CPU_ATTN_H
#define ARMO_CPU_ATTN_H

#include <stdint.h>

#include "base/errors.h"

/* query rows per task */
#define CPU_ATTN_TILE 64

/* q [n, nh*hd], k and v [n, nkv*hd], out [n, nh*hd] with n =
 * cu_seqlens[nseq]; nthreads threads (the caller's included).  Returns 0,
 * or -1 with e set when the scratch memory could not be had. */
int cpu_attn(float *out, const float *q, const float *k, const float *v,
             const int32_t *cu_seqlens, int nseq, int nh, int nkv, int hd, int nthreads,
             armo_err *e);

#endif
