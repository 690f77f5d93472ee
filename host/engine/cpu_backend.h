/* cpu_backend.h — the whole forward on the CPU: embedding, N decoder layers,
 * final RMSNorm, and the model's head, in fp32 on bf16 / f16 / f32 weights.
 *
 * The oracle for every GPU test and the way to score small models without a
 * GPU.  It scores packed variable-length batches (no padding) so that it can
 * stand in for the CUDA backend behind the same calls: the engine opens it
 * as an armo_backend (armo_cpu_backend_open); tests also call it directly.
 * Internal to host/engine/: other rooms reach it through backend_open.h. */
#ifndef ARMO_CPU_BACKEND_H
#define ARMO_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "host/engine/backend.h"
#include "weights/head_params.h"
#include "weights/model.h"

typedef struct armo_cpu armo_cpu;

/* nthreads <= 0: one per online CPU.  Converts every layer matrix to fp32
 * (armo_cpu_weight_bytes) and sets OpenBLAS to one thread for the whole
 * process: the backend's own nthreads threads split every product
 * (cpu_gemm.h), so BLAS threads would only oversubscribe the cores. */
armo_cpu *armo_cpu_create(const armo_model *m, int nthreads, armo_err *e);
void armo_cpu_destroy(armo_cpu *c);

/* Scores nseq packed sequences: ids[cu_seqlens[s] .. cu_seqlens[s+1]).
 * gating_pos[s] is the in-sequence index of the gating token (ArmoRM; found
 * with armo_find_gating_pos) and is ignored for a single-head RM (may be
 * NULL).  Every id must be < vocab and every sequence non-empty and no longer
 * than max_position_embeddings; violations are errors naming the sequence. */
int armo_cpu_score(armo_cpu *c, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                   const int32_t *gating_pos, armo_result *out, armo_err *e);

/* The same with prompt-prefix sharing (prefix_share.h): prefix_of[s] = p
 * makes segment s the continuation of segment p; positions, gating_pos[s]
 * and out[s] refer to the whole sequence p + s; a segment that others
 * continue gets no head (out n_tokens == 0).  Results equal unshared
 * scoring (each row sees exactly the same keys), computing the prefix's
 * GEMMs once. */
int armo_cpu_score_shared(armo_cpu *c, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                          const int32_t *gating_pos, const int32_t *prefix_of, armo_result *out,
                          armo_err *e);

/* Tensor parallel (tp_split.h): tp >= 1 runs the sharded arithmetic the GPU
 * split runs — attention by heads, the MLP by intermediate columns, the
 * partial sums after o_proj and down_proj added in rank order — on tp
 * shards one after the other (each with all the backend's threads); 1 is
 * one shard through that path (bit-identical to unsharded), 0 the unsharded
 * path.  tp must divide the KV-head count, else an error saying so.
 * Results equal unsharded scoring within fp32 rounding (the o_proj and
 * down_proj sums are split) and are bit-identical run to run. */
int armo_cpu_set_tp(armo_cpu *c, int tp, armo_err *e);

/* The fp32 head weights the backend converted at create time (for tests). */
const armo_head_params *armo_cpu_head(const armo_cpu *c);

/* The CPU backend behind backend.h's interface (o->threads <= 0: all cores). */
armo_backend *armo_cpu_backend_open(const armo_model *m, const armo_backend_opts *o,
                                    armo_err *e);

/* The bytes of fp32 layer matrices armo_cpu_create allocates for m: every
 * matrix of every layer that is not an aligned F32 tensor already (a BF16
 * checkpoint: twice its backbone's size, the embedding left out). */
size_t armo_cpu_weight_bytes(const armo_model *m);

/* armo bench's CPU GEMM ceiling: the backend's GEMM (cpu_gemm.h, BLAS) with
 * a [1024, 1024] weight (bf16 values, fp32 math) on 2048 rows, best of 3, in
 * TFLOP/s; the shape goes to *n, *in, *out. */
int armo_cpu_gemm_ceiling(int threads, int *n, int *in, int *out, double *tflops, armo_err *e);

#endif
