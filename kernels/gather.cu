/* gather.cu — launchers of the row gather (device code: gather.cuh). */
#include "kernels/armo_kernels.h"
#include "kernels/gather.cuh"

extern "C" cudaError_t armo_gather_rows_bf16(uint16_t *out, const uint16_t *x, const int32_t *rows,
                                             int m, int hidden, cudaStream_t stream) {
    if (m < 0 || hidden <= 0) return cudaErrorInvalidValue;
    if (m == 0) return cudaSuccess;
    gather_rows_bf16_kernel<<<m, 256, 0, stream>>>(out, x, rows, hidden);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_gather_rows_f32(float *out, const uint16_t *x, const int32_t *rows,
                                            int m, int hidden, cudaStream_t stream) {
    if (m < 0 || hidden <= 0) return cudaErrorInvalidValue;
    if (m == 0) return cudaSuccess;
    gather_rows_f32_kernel<<<m, 256, 0, stream>>>(out, x, rows, hidden);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_gather_rows2_bf16(uint16_t *out_a, const uint16_t *a, int width_a,
                                              uint16_t *out_b, const uint16_t *b, int width_b,
                                              const int32_t *rows, int m, cudaStream_t stream) {
    if (m < 0 || width_a <= 0 || width_b <= 0) return cudaErrorInvalidValue;
    if (m == 0) return cudaSuccess;
    gather_rows2_bf16_kernel<<<dim3((unsigned)m, 2), 256, 0, stream>>>(out_a, a, width_a, out_b, b,
                                                                        width_b, rows);
    return cudaGetLastError();
}
