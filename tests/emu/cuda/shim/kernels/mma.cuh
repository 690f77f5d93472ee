/* mma.cuh (shim) — the CPU emulator's stand-in for kernels/mma.cuh, found
 * before it on the include path: mma.sync.aligned.m16n8k16.row.col.f32.bf16
 * .bf16.f32 as a warp collective of the fiber scheduler (emu.h).  Every lane
 * publishes its A (4 regs), B (2 regs) and C (4 floats) fragments; once all
 * 32 have arrived the whole 16x16 A, 16x8 B and 16x8 C are rebuilt from the
 * fragment layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16 with
 * floating point type"; g = lane / 4, t = lane % 4, each 32-bit register two
 * bf16, the lower index in the low half):
 *   A a0..a7: row g for a0,a1,a4,a5 and g+8 for a2,a3,a6,a7;
 *             col 2t + (i & 1), + 8 for a4..a7
 *   B b0..b3: row (k) 2t + (i & 1), + 8 for b2,b3; col (n) g
 *   C/D c0..c3: row g for c0,c1 and g+8 for c2,c3; col 2t + (i & 1)
 * and D = A·B + C is computed with fp32 products and sums in k order, which
 * is within the tolerance of the tensor core's (unspecified) order. */
#ifndef ARMO_MMA_CUH
#define ARMO_MMA_CUH

#include <stdint.h>
#include <string.h>

#include "tests/emu/cuda/emu.h"

namespace emu_shim {

static inline float bf16_lo(uint32_t r) {
    const uint32_t u = r << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float bf16_hi(uint32_t r) {
    const uint32_t u = r & 0xffff0000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void mma_16816_complete(emu::warp_slot *const s[32], unsigned mask) {
    (void)mask; /* full warp, checked by the scheduler */
    float A[16][16], B[16][8], C[16][8];
    for (int lane = 0; lane < 32; lane++) {
        const int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 8; i++) {
            const int row = g + ((i >> 1) & 1) * 8, col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
            const uint32_t reg = s[lane]->a[i / 2];
            A[row][col] = (i & 1) ? bf16_hi(reg) : bf16_lo(reg);
        }
        for (int i = 0; i < 4; i++) {
            const int k = 2 * t + (i & 1) + (i >= 2 ? 8 : 0);
            const uint32_t reg = s[lane]->b[i / 2];
            B[k][g] = (i & 1) ? bf16_hi(reg) : bf16_lo(reg);
        }
        for (int i = 0; i < 4; i++) C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)] = s[lane]->c[i];
    }
    for (int lane = 0; lane < 32; lane++) {
        const int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 4; i++) {
            const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
            float acc = C[row][col];
            for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
            s[lane]->d[i] = acc;
        }
    }
}

} // namespace emu_shim

static inline void mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    emu::warp_slot &slot = emu::my_warp_slot();
    slot.complete = emu_shim::mma_16816_complete;
    slot.mask = 0xffffffffu; /* .aligned: the whole warp executes it */
    slot.what = "mma.sync.m16n8k16";
    memcpy(slot.a, a, sizeof slot.a);
    slot.b[0] = b0;
    slot.b[1] = b1;
    memcpy(slot.c, c, sizeof slot.c);
    emu::warp_collective();
    memcpy(c, emu::my_warp_slot().d, sizeof slot.d);
}

#endif
