/* gemm_ceiling.h — the device figures `armo bench` asks of the CUDA side
 * (through armo_cuda_accel, backend_open.h): a measured bf16 GEMM ceiling
 * (armo_gemm_bf16 timed at a large shape, the denominator of model FLOP
 * utilisation) and device memory.  Internal to host/cuda/. */
#ifndef ARMO_GEMM_CEILING_H
#define ARMO_GEMM_CEILING_H

#include <stddef.h>

#include "base/errors.h"

/* Times armo_gemm_bf16 for Y[n, out] = X[n, in] · Wᵀ on random bf16 data
 * (3 warm-up launches, then reps launches between two cudaEvents) on the
 * current device and returns the achieved TFLOP/s (2·n·in·out per launch)
 * in *tflops.  Allocates and frees its own buffers. */
int armo_cuda_gemm_ceiling(int n, int in, int out, int reps, double *tflops, armo_err *e);

/* cudaMemGetInfo on the current device. */
int armo_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, armo_err *e);

/* cudaMemGetInfo on device dev (the calling thread's current device is
 * restored after). */
int armo_cuda_mem_info_device(int dev, size_t *free_bytes, size_t *total_bytes, armo_err *e);

#endif
