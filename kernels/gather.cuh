/* gather.cuh — device code of the row gather: out[r, :] = x[rows[r], :],
 * bf16 to bf16 (prefix-sharing layouts, the last layer's head rows) or bf16
 * to fp32 (the head's inputs).  One block per output row; a plain copy. */
#ifndef ARMO_GATHER_CUH
#define ARMO_GATHER_CUH

#include "kernels/kernel_util.cuh"

__global__ void gather_rows_bf16_kernel(uint16_t *out, const uint16_t *x, const int32_t *rows,
                                        int hidden) {
    const int r = blockIdx.x;
    const uint16_t *src = x + (size_t)rows[r] * hidden;
    uint16_t *dst = out + (size_t)r * hidden;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = src[c];
}

__global__ void gather_rows_f32_kernel(float *out, const uint16_t *x, const int32_t *rows,
                                       int hidden) {
    const int r = blockIdx.x;
    const uint16_t *src = x + (size_t)rows[r] * hidden;
    float *dst = out + (size_t)r * hidden;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = bf16_bits_to_f32(src[c]);
}

#endif
