/* gemm_ceiling.h — what `armo bench` needs from the CUDA side beyond the
 * backend interface: a measured bf16 GEMM ceiling (armo_gemm_bf16 timed at a
 * large shape, the denominator of model FLOP utilisation), device memory
 * figures, and the CUDA backend's optional per-phase timing.
 *
 * Why a table of function pointers behind a weak symbol: cmd_bench.c lives
 * in armo_core, which never depends on CUDA (backend.h).  The table
 * armo_cuda_bench_hooks is defined in host/cuda/cuda_backend.c, which every
 * executable linked with armo_cuda pulls in (main.c registers the backend);
 * cmd_bench.c references it weakly, so in a CPU-only build the reference is
 * simply NULL and the bench reports CPU figures only.  This header includes
 * no CUDA header, so C code in armo_core can include it. */
#ifndef ARMO_GEMM_CEILING_H
#define ARMO_GEMM_CEILING_H

#include <stddef.h>
#include <stdint.h>

#include "host/engine/backend.h"
#include "base/errors.h"

/* Time spent in each phase of the CUDA backend's score calls, summed over
 * the calls since timing was switched on (cudaEvents on the backend's
 * stream; milliseconds of GPU time between consecutive phase marks). */
typedef struct {
    double upload_ms;            /* host -> device copies of ids, positions, cu_seqlens, rows */
    double embed_ms;             /* embedding gather + first RMSNorm */
    double layers_ms;            /* every decoder layer (incl. the final norm) */
    double head_ms;              /* row gather to fp32 + gated / seqcls head */
    double download_ms;          /* device -> host copy of the head outputs */
    int64_t calls;               /* score calls timed */
} armo_cuda_phase_times;

typedef struct {
    /* Number of CUDA devices visible (0: none / no driver). */
    int (*device_count)(void);
    /* Times armo_gemm_bf16 for Y[n, out] = X[n, in] · Wᵀ on random bf16
     * data (3 warm-up launches, then reps launches between two cudaEvents)
     * on the current device and returns the achieved TFLOP/s (2·n·in·out per
     * launch) in *tflops.  Allocates and frees its own buffers. */
    int (*gemm_ceiling)(int n, int in, int out, int reps, double *tflops, armo_err *e);
    /* cudaMemGetInfo on the current device. */
    int (*mem_info)(size_t *free_bytes, size_t *total_bytes, armo_err *e);
    /* Switches per-phase timing of a CUDA backend on (resetting the sums)
     * or off.  Timing adds a few cudaEventRecord calls per batch. */
    int (*set_timing)(armo_backend *b, int on, armo_err *e);
    /* The sums since the last set_timing(b, 1). */
    void (*get_timing)(const armo_backend *b, armo_cuda_phase_times *out);
} armo_cuda_bench_hooks_t;

/* Defined in host/cuda/cuda_backend.c (only in builds with CUDA). */
extern const armo_cuda_bench_hooks_t armo_cuda_bench_hooks;

/* The GEMM ceiling measurement itself (host/cuda/gemm_ceiling.c). */
int armo_cuda_gemm_ceiling(int n, int in, int out, int reps, double *tflops, armo_err *e);
int armo_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, armo_err *e);

#endif
