/* rope.cuh — device code: rotary position embedding, HF "rotate_half" convention, in place
 * on packed q and k.
 *
 * Element j < hd/2 of a head pairs with j + hd/2:
 *   x1' = x1 cos(p f_j) - x2 sin(p f_j),  x2' = x2 cos(p f_j) + x1 sin(p f_j)
 * with f_j = inv_freq[j] from the host (armo_rope_inv_freq), so the default
 * and the llama3-scaled variants are the same kernel.  One block per token;
 * each thread owns whole pairs, so the in-place update has no hazards.
 * sincosf is the accurate one (full range reduction: angles reach 1e5 rad).
 * Token t's heads start at q + t * q_stride and k + t * k_stride (elements):
 * the engine rotates q and k in place inside the fused [n, q | k | v] QKV
 * GEMM output, so no copy of q and k out of it is needed. */
#ifndef ARMO_ROPE_CUH
#define ARMO_ROPE_CUH

#include "kernels/kernel_util.cuh"

__global__ void rope_kernel(uint16_t *q, uint16_t *k, int nh, int nkv, int hd, int q_stride,
                            int k_stride, const int32_t *pos, const float *inv_freq) {
    const int t = blockIdx.x;
    const int half = hd / 2;
    const float p = (float)pos[t];
    const int pairs = (nh + nkv) * half;
    for (int idx = threadIdx.x; idx < pairs; idx += blockDim.x) {
        const int head = idx / half, j = idx % half;
        uint16_t *x = head < nh ? q + (size_t)t * q_stride + (size_t)head * hd
                                : k + (size_t)t * k_stride + (size_t)(head - nh) * hd;
        float s, c;
        sincosf(p * inv_freq[j], &s, &c);
        const float x1 = bf16_bits_to_f32(x[j]), x2 = bf16_bits_to_f32(x[j + half]);
        x[j] = f32_to_bf16_bits(x1 * c - x2 * s);
        x[j + half] = f32_to_bf16_bits(x2 * c + x1 * s);
    }
}

#endif
