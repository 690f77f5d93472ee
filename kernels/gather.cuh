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

/* Two gathers with one row list in one launch (blockIdx.y: 0 the first
 * source, 1 the second): the last layer's attention rows and residual rows. */
__global__ void gather_rows2_bf16_kernel(uint16_t *out_a, const uint16_t *a, int width_a,
                                         uint16_t *out_b, const uint16_t *b, int width_b,
                                         const int32_t *rows) {
    const int r = blockIdx.x;
    const bool first = blockIdx.y == 0;
    const int width = first ? width_a : width_b;
    const uint16_t *src = (first ? a : b) + (size_t)rows[r] * width;
    uint16_t *dst = (first ? out_a : out_b) + (size_t)r * width;
    for (int c = threadIdx.x; c < width; c += blockDim.x) dst[c] = src[c];
}

#endif
