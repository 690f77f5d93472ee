// kernel_util.cuh (shim) — host stand-in for kernels/kernel_util.cuh, found
// before the real one by the attention emulator's include path
// (tests/emu/attention/run.sh): a CUDA block becomes 128 std::threads and
// __syncthreads / __shfl_xor_sync become barriers, so that the kernels' own
// source (kernels/attention.cuh, included unmodified) runs on a CPU.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
using std::min;
struct dim3e { unsigned x, y, z; };
extern thread_local dim3e threadIdx, blockIdx;
extern dim3e gridDim, blockDim;
struct uint4 { uint32_t x, y, z, w; };
static inline uint4 make_uint4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return {a, b, c, d}; }
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __restrict__
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
extern std::barrier<> *g_block_bar;
extern std::barrier<> *g_warp_bar[4];
static inline void __syncthreads() { g_block_bar->arrive_and_wait(); }
extern float g_shfl[4][32];
static inline float __shfl_xor_sync(unsigned, float v, int off) {
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    g_shfl[w][l] = v;
    g_warp_bar[w]->arrive_and_wait();
    float r = g_shfl[w][l ^ off];
    g_warp_bar[w]->arrive_and_wait();
    return r;
}
static inline float __uint_as_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline float bf16_bits_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
static inline uint16_t f32_to_bf16_bits(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline uint32_t pack_bf16x2(float lo, float hi) {
    return (uint32_t)f32_to_bf16_bits(lo) | ((uint32_t)f32_to_bf16_bits(hi) << 16);
}
static inline float warp_sum(float v) { for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }
static inline float warp_max(float v) { for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o)); return v; }
static inline unsigned armo_ceil_div(long long a, long long b) { return (unsigned)((a + b - 1) / b); }
