/* swiglu.cuh — device code: SwiGLU on the fused gate|up GEMM output.
 *
 * in [n, 2I] with each row [gate(I) | up(I)] -> out [n, I] = silu(gate) * up,
 * in fp32 (silu(g) = g / (1 + exp(-g)), accurate expf).  Grid-stride over the
 * n*I outputs, pairs of bf16 per thread when I is even (always, for Llama). */
#ifndef ARMO_SWIGLU_CUH
#define ARMO_SWIGLU_CUH

#include "kernels/kernel_util.cuh"

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__global__ void swiglu_pair_kernel(uint32_t *out, const uint32_t *gate_up, int n, int inter_pairs) {
    const size_t total = (size_t)n * inter_pairs;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t row = i / inter_pairs, c = i % inter_pairs;
        const uint32_t g = gate_up[row * 2 * inter_pairs + c];
        const uint32_t u = gate_up[row * 2 * inter_pairs + inter_pairs + c];
        const float lo = silu_mul(bf16_bits_to_f32((uint16_t)(g & 0xffffu)),
                                  bf16_bits_to_f32((uint16_t)(u & 0xffffu)));
        const float hi = silu_mul(bf16_bits_to_f32((uint16_t)(g >> 16)),
                                  bf16_bits_to_f32((uint16_t)(u >> 16)));
        out[i] = pack_bf16x2(lo, hi);
    }
}

__global__ void swiglu_scalar_kernel(uint16_t *out, const uint16_t *gate_up, int n, int inter) {
    const size_t total = (size_t)n * inter;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t row = i / inter, c = i % inter;
        out[i] = f32_to_bf16_bits(silu_mul(bf16_bits_to_f32(gate_up[row * 2 * inter + c]),
                                           bf16_bits_to_f32(gate_up[row * 2 * inter + inter + c])));
    }
}

#endif
