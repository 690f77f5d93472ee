// mma.cuh (shim) — host stand-in for kernels/mma.cuh: mma.sync m16n8k16 bf16
// computed from the PTX ISA fragment layout, written out independently of the
// kernel (each lane publishes its fragments, the warp meets at a barrier, every
// lane rebuilds A and B and computes its own C/D elements).
#pragma once
#include "kernels/kernel_util.cuh"

struct mma_slot { uint32_t a[4], b[2]; float c[4]; };
extern mma_slot g_mma[4][32];
static inline float lo_of(uint32_t r) { return bf16_bits_to_f32((uint16_t)(r & 0xffff)); }
static inline float hi_of(uint32_t r) { return bf16_bits_to_f32((uint16_t)(r >> 16)); }
static inline void mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
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
