/* gemm_ceiling.c — the measured bf16 GEMM ceiling for `armo bench` (see
 * gemm_ceiling.h).  It times the engine's own GEMM layer (kernels/gemm.cu,
 * cuBLASLt) rather than a vendor figure, so that MFU says how close the
 * whole engine gets to what its GEMMs can do on this card, in this run. */
#include "host/cuda/gemm_ceiling.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/armo_kernels.h"
#include "kernels/cuda_check.h"
#include "weights/dtype.h"

/* count random bf16 values in [-1, 1) into a device buffer (host LCG),
 * copied on stream (the one the GEMMs run on) chunk by chunk through one
 * host buffer. */
static cudaError_t fill_random(uint16_t *dst, size_t count, uint32_t seed, cudaStream_t stream) {
    size_t chunk = (size_t)1 << 22;
    uint16_t *h = malloc(chunk * 2);
    if (!h) return cudaErrorMemoryAllocation;
    uint32_t s = seed * 2654435761u + 12345u;
    cudaError_t st = cudaSuccess;
    for (size_t off = 0; off < count && st == cudaSuccess; off += chunk) {
        size_t n = count - off < chunk ? count - off : chunk;
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            h[i] = armo_f32_to_bf16((float)(s >> 8) / 8388608.0f - 1.0f);
        }
        st = cudaMemcpyAsync(dst + off, h, n * 2, cudaMemcpyHostToDevice, stream);
        if (st == cudaSuccess) st = cudaStreamSynchronize(stream); /* h is refilled next */
    }
    free(h);
    return st;
}

int armo_cuda_gemm_ceiling(int n, int in, int out, int reps, double *tflops, armo_err *e) {
    int rc = -1;
    uint16_t *x = NULL, *w = NULL, *y = NULL;
    armo_gemm *g = NULL;
    cudaStream_t st = NULL;
    cudaEvent_t ev0 = NULL, ev1 = NULL;
    *tflops = 0.0;
    if (n <= 0 || in <= 0 || out <= 0 || reps <= 0)
        return armo_err_set(e, "gemm ceiling: bad shape %d x %d x %d / reps %d", n, in, out, reps);
    ARMO_CUDA_TRY_GOTO(e, done, cudaMalloc((void **)&x, (size_t)n * in * 2));
    ARMO_CUDA_TRY_GOTO(e, done, cudaMalloc((void **)&w, (size_t)out * in * 2));
    ARMO_CUDA_TRY_GOTO(e, done, cudaMalloc((void **)&y, (size_t)n * out * 2));
    ARMO_CUDA_TRY_GOTO(e, done, cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    ARMO_CUDA_TRY_GOTO(e, done, fill_random(x, (size_t)n * in, 1, st));
    ARMO_CUDA_TRY_GOTO(e, done, fill_random(w, (size_t)out * in, 2, st));
    ARMO_CUDA_TRY_GOTO(e, done, cudaEventCreate(&ev0));
    ARMO_CUDA_TRY_GOTO(e, done, cudaEventCreate(&ev1));
    if (armo_gemm_create(&g, 0, e)) goto done;
    for (int i = 0; i < 3; i++)
        if (armo_gemm_bf16(g, y, x, w, n, in, out, st, e)) goto done;
    ARMO_CUDA_TRY_GOTO(e, done, cudaStreamSynchronize(st));
    ARMO_CUDA_TRY_GOTO(e, done, cudaEventRecord(ev0, st));
    for (int i = 0; i < reps; i++)
        if (armo_gemm_bf16(g, y, x, w, n, in, out, st, e)) goto done;
    ARMO_CUDA_TRY_GOTO(e, done, cudaEventRecord(ev1, st));
    ARMO_CUDA_TRY_GOTO(e, done, cudaEventSynchronize(ev1));
    float ms = 0.0f;
    ARMO_CUDA_TRY_GOTO(e, done, cudaEventElapsedTime(&ms, ev0, ev1));
    if (ms <= 0.0f) {
        armo_err_set(e, "gemm ceiling: timed %d launches in %g ms", reps, (double)ms);
        goto done;
    }
    *tflops = 2.0 * (double)n * in * out * reps / ((double)ms * 1e-3) / 1e12;
    rc = 0;
done:
    if (g) armo_gemm_destroy(g);
    if (ev0) cudaEventDestroy(ev0);
    if (ev1) cudaEventDestroy(ev1);
    if (st) cudaStreamDestroy(st);
    cudaFree(x);
    cudaFree(w);
    cudaFree(y);
    return rc;
}

int armo_cuda_mem_info_device(int dev, size_t *free_bytes, size_t *total_bytes, armo_err *e) {
    int prev = 0;
    cudaError_t st = cudaGetDevice(&prev);
    if (st == cudaSuccess) st = cudaSetDevice(dev);
    if (st != cudaSuccess)
        return armo_err_set(e, "%s:%d: selecting CUDA device %d failed: %s", __FILE__, __LINE__,
                            dev, cudaGetErrorString(st));
    int rc = armo_cuda_mem_info(free_bytes, total_bytes, e);
    if (rc) armo_err_prefix(e, "CUDA device %d", dev);
    st = cudaSetDevice(prev);
    if (st != cudaSuccess && !rc)
        return armo_err_set(e, "%s:%d: restoring CUDA device %d failed: %s", __FILE__, __LINE__,
                            prev, cudaGetErrorString(st));
    return rc;
}

int armo_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, armo_err *e) {
    cudaError_t st = cudaMemGetInfo(free_bytes, total_bytes);
    if (st != cudaSuccess)
        return armo_err_set(e, "%s:%d: cudaMemGetInfo failed: %s", __FILE__, __LINE__,
                            cudaGetErrorString(st));
    return 0;
}
