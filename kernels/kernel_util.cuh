/* kernel_util.cuh — small device helpers shared by the kernels/ files:
 * raw-bits bf16 <-> fp32 conversion (round to nearest even, as weights/dtype.h
 * does on the host), warp / block sums, and the launch-status idiom.
 * Internal to kernels/: the public API is armo_kernels.h. */
#ifndef ARMO_KERNEL_UTIL_CUH
#define ARMO_KERNEL_UTIL_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) {
    return __uint_as_float((uint32_t)h << 16);
}

__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

/* Two floats packed as two bf16 in one 32-bit word: lo in the low half. */
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    return (uint32_t)f32_to_bf16_bits(lo) | ((uint32_t)f32_to_bf16_bits(hi) << 16);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* Sum over the whole block (blockDim.x a multiple of 32, <= 1024); every
 * thread gets the result.  Uses 33 floats of the caller's shared memory. */
__device__ __forceinline__ float block_sum(float v, float *shared33) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) shared33[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < nwarps ? shared33[lane] : 0.0f;
        t = warp_sum(t);
        if (lane == 0) shared33[32] = t;
    }
    __syncthreads();
    return shared33[32];
}

static inline unsigned armo_ceil_div(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

#endif
