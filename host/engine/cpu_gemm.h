/* cpu_gemm.h — the CPU backend's matrix products through BLAS (OpenBLAS's
 * cblas_sgemm), in fixed call shapes so that no result depends on the
 * batch's row count or the thread count.
 *
 * y[n, out] = x[n, in] · Wᵀ with W fp32 [out, in] row-major (the checkpoint's
 * layout), for one or several weights that share x (q, k, v; gate, up).
 * The work is cut into tasks of exactly CPU_GEMM_ROWS rows of x by
 * CPU_GEMM_COLS rows of W (the last block of W narrower, the same for every
 * batch); a batch whose row count is not a multiple of CPU_GEMM_ROWS runs its
 * last rows zero-padded to the full CPU_GEMM_ROWS.  So every sgemm call has a
 * shape that depends on the weight alone, BLAS runs single-threaded inside
 * each task (it never splits the sum over `in` across threads), and the
 * engine's own threads take tasks from a shared counter: a row's output is the
 * same bits whether it is scored alone or packed with others, at any position
 * and with any --threads, provided the BLAS kernel computes every row of a
 * full tile alike (tests/engine/test_cpu_gemm.c checks exactly that on the
 * machine it runs on).  Internal to host/engine/. */
#ifndef ARMO_CPU_GEMM_H
#define ARMO_CPU_GEMM_H

#include <stddef.h>

#include "base/errors.h"

/* rows of x per sgemm call: a multiple of every x86 sgemm kernel's tile
 * (OpenBLAS's unroll is at most 16), and large enough that packing W into
 * the BLAS's panels costs little next to the multiply: single-threaded, 1024
 * x 3584 MLP shapes ran at 70 / 81 / 88 / 92 GFLOP/s for 64 / 128 / 256 /
 * 512 rows on a Zen 4 core (CPU time; profiling/RESULTS.md).  The last,
 * partial chunk of a batch is padded to this many rows: at the CPU's default
 * 2048-token budget the padding costs 3.7 / 7.9 / 12.7 % for 128 / 256 / 512
 * on the bench's conversations, so 256 is the best trade. */
#define CPU_GEMM_ROWS 256
/* rows of W per sgemm call: 512 measured no faster than 256 (same test),
 * and smaller blocks give the threads more tasks to share */
#define CPU_GEMM_COLS 256

/* One weight of a product: y[n, out] = x[n, in] · wᵀ, w [out, in] fp32. */
typedef struct {
    const float *w;
    float *y;
    int out;
} cpu_gemm_op;

/* Makes the BLAS single-threaded for the whole process (the CPU backend's
 * own threads split the work): call once before the first cpu_gemm. */
void cpu_gemm_blas_init(void);

/* Every op of ops[0..nops) on the same x [n, in], on nthreads threads (the
 * calling one included; <= 1: on the caller only).  Returns 0, or -1 with e
 * set when scratch memory or a thread could not be had (no output is then
 * trusted). */
int cpu_gemm(const float *x, int n, int in, const cpu_gemm_op *ops, int nops, int nthreads,
             armo_err *e);

/* The name the BLAS gives its kernel set and its version ("OpenBLAS 0.3.21
 * ... Cooperlake"), for reports. */
const char *cpu_gemm_blas_name(void);

#endif
