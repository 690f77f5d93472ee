// kernel_util_shim.cuh — host stand-in for kernels/kernel_util.cuh used by the
// flash-attention emulator (tests/gpu/emu/run.sh): a CUDA block becomes 128
// std::threads, __syncthreads / __shfl_xor_sync become barriers, and mma.sync
// m16n8k16 bf16 is computed from the PTX ISA fragment layout written out
// independently of the kernel (emu_mma), so the real kernel source runs on a CPU.
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

// mma.sync m16n8k16 bf16 emulated from the PTX ISA fragment layout
struct mma_slot { uint32_t a[4], b[2]; float c[4]; };
extern mma_slot g_mma[4][32];
static inline float lo_of(uint32_t r) { return bf16_bits_to_f32((uint16_t)(r & 0xffff)); }
static inline float hi_of(uint32_t r) { return bf16_bits_to_f32((uint16_t)(r >> 16)); }
static inline void emu_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    mma_slot &s = g_mma[w][l];
    memcpy(s.a, a, 16); s.b[0] = b0; s.b[1] = b1; memcpy(s.c, c, 16);
    g_warp_bar[w]->arrive_and_wait();
    float A[16][16], B[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        const mma_slot &q = g_mma[w][lane];
        // A: a_i, i = 0..7; reg j holds a_{2j} (low), a_{2j+1} (high)
        for (int i = 0; i < 8; i++) {
            int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
            int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            uint32_t r = q.a[i / 2];
            A[row][col] = (i & 1) ? hi_of(r) : lo_of(r);
        }
        for (int i = 0; i < 4; i++) {
            int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
            uint32_t r = q.b[i / 2];
            B[row][g] = (i & 1) ? hi_of(r) : lo_of(r);
        }
    }
    int g = l >> 2, t = l & 3;
    float d[4];
    for (int i = 0; i < 4; i++) {
        int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
        float acc = s.c[i];
        for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
        d[i] = acc;
    }
    g_warp_bar[w]->arrive_and_wait();
    memcpy(c, d, 16);
}
