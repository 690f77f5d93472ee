/* rmsnorm.cuh — device code: RMSNorm, plain and with the residual add fused in.
 *
 * One block per row; the row is read once for the sum of squares (fp32) and
 * once more for the scaled output (it is in L1/L2 by then).  The fused
 * variant writes the bf16-rounded residual sum first and takes its statistics
 * over those rounded values, so that the normalised output is exactly the
 * RMSNorm of the residual the next layer will read. */
#ifndef ARMO_RMSNORM_CUH
#define ARMO_RMSNORM_CUH

#include "kernels/kernel_util.cuh"

#define RMS_THREADS 256

__global__ void rmsnorm_kernel(uint16_t *out, const uint16_t *x, const uint16_t *w, int dim,
                               float eps) {
    __shared__ float red[33];
    const size_t row = (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const float v = bf16_bits_to_f32(x[row + c]);
        ss += v * v;
    }
    ss = block_sum(ss, red);
    const float inv = rsqrtf(ss / (float)dim + eps);
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const float v = bf16_bits_to_f32(x[row + c]);
        out[row + c] = f32_to_bf16_bits(v * inv * bf16_bits_to_f32(w[c]));
    }
}

/* Stores the normalised value: bf16 bits, or fp32 holding the same
 * bf16-rounded value (the head's fp32 input rows, so that folding the head's
 * gather into the last norm changes no bit). */
__device__ __forceinline__ void rms_store(uint16_t *p, float v) { *p = f32_to_bf16_bits(v); }
__device__ __forceinline__ void rms_store(float *p, float v) {
    *p = bf16_bits_to_f32(f32_to_bf16_bits(v));
}

template <typename Out>
__device__ __forceinline__ void add_rmsnorm_row(uint16_t *residual, const uint16_t *delta, Out *out,
                                                const uint16_t *w, int dim, float eps) {
    __shared__ float red[33];
    const size_t row = (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const uint16_t sum = f32_to_bf16_bits(bf16_bits_to_f32(residual[row + c]) +
                                              bf16_bits_to_f32(delta[row + c]));
        residual[row + c] = sum;
        const float v = bf16_bits_to_f32(sum);
        ss += v * v;
    }
    ss = block_sum(ss, red); /* its __syncthreads also orders the residual writes */
    const float inv = rsqrtf(ss / (float)dim + eps);
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        /* same thread, same element as written above */
        const float v = bf16_bits_to_f32(residual[row + c]);
        rms_store(&out[row + c], v * inv * bf16_bits_to_f32(w[c]));
    }
}

__global__ void add_rmsnorm_kernel(uint16_t *residual, const uint16_t *delta, uint16_t *out,
                                   const uint16_t *w, int dim, float eps) {
    add_rmsnorm_row(residual, delta, out, w, dim, eps);
}

/* The same, the normalised rows written as fp32 (the last layer's final
 * norm straight into the head's input rows: no separate gather pass). */
__global__ void add_rmsnorm_f32_kernel(uint16_t *residual, const uint16_t *delta, float *out,
                                       const uint16_t *w, int dim, float eps) {
    add_rmsnorm_row(residual, delta, out, w, dim, eps);
}

#endif
