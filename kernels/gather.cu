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
