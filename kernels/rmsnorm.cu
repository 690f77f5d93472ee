/* rmsnorm.cu — launchers of RMSNorm and of the fused residual add + RMSNorm
 * (device code: rmsnorm.cuh). */
#include "kernels/armo_kernels.h"
#include "kernels/rmsnorm.cuh"

extern "C" cudaError_t armo_rmsnorm_bf16(uint16_t *out, const uint16_t *x, const uint16_t *w,
                                         int n, int dim, float eps, cudaStream_t stream) {
    if (n < 0 || dim <= 0 || !(eps >= 0.0f)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    rmsnorm_kernel<<<n, RMS_THREADS, 0, stream>>>(out, x, w, dim, eps);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_add_rmsnorm_bf16(uint16_t *residual, const uint16_t *delta,
                                             uint16_t *out, const uint16_t *w, int n, int dim,
                                             float eps, cudaStream_t stream) {
    if (n < 0 || dim <= 0 || !(eps >= 0.0f)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    add_rmsnorm_kernel<<<n, RMS_THREADS, 0, stream>>>(residual, delta, out, w, dim, eps);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_add_rmsnorm_f32_bf16(uint16_t *residual, const uint16_t *delta,
                                                 float *out, const uint16_t *w, int n, int dim,
                                                 float eps, cudaStream_t stream) {
    if (n < 0 || dim <= 0 || !(eps >= 0.0f)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    add_rmsnorm_f32_kernel<<<n, RMS_THREADS, 0, stream>>>(residual, delta, out, w, dim, eps);
    return cudaGetLastError();
}
