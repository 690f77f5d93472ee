/* ldmatrix.cuh (shim) — the CPU emulator's stand-in for kernels/ldmatrix.cuh:
 * ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 as a warp collective of the
 * fiber scheduler (emu.h).  Each lane reads the 16-byte row its address
 * names itself (one 16-byte load, so the bank-conflict counter costs the
 * instruction per 8-lane phase, one matrix per phase, as the hardware
 * reads it), publishes it, and once the 32 lanes have arrived every lane
 * gets, for each matrix i (rows from lanes 8i .. 8i+7), the elements
 * (row 2(l%4), col l/4) low and (row 2(l%4)+1, col l/4) high in register i:
 * the PTX ISA's fragment of the transposed 8x8 matrix (lane l of a
 * non-transposed load would hold row l/4, cols 2(l%4), 2(l%4)+1). */
#ifndef ARMO_LDMATRIX_CUH
#define ARMO_LDMATRIX_CUH

#include <stdint.h>
#include <string.h>

#include <vector_types.h>

#include "tests/emu/cuda/emu.h"

namespace emu_shim {

static inline uint16_t ldm_elem(emu::warp_slot *const s[32], int matrix, int row, int col) {
    const uint32_t w = s[matrix * 8 + row]->row[col / 2];
    return (uint16_t)((col & 1) ? w >> 16 : w & 0xffffu);
}

static inline void ldmatrix_x4_trans_complete(emu::warp_slot *const s[32], unsigned mask) {
    (void)mask; /* full warp, checked by the scheduler */
    for (int lane = 0; lane < 32; lane++) {
        const int col = lane >> 2, r0 = 2 * (lane & 3);
        for (int i = 0; i < 4; i++)
            s[lane]->r[i] = (uint32_t)ldm_elem(s, i, r0, col) |
                            (uint32_t)ldm_elem(s, i, r0 + 1, col) << 16;
    }
}

} // namespace emu_shim

static inline void ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    if (((uintptr_t)row & 15) != 0) emu::fail("ldmatrix: row address %p not 16-byte aligned", row);
    const uint4 v = *static_cast<const uint4 *>(row); /* the lane's row, as the hardware reads it */
    emu::warp_slot &slot = emu::my_warp_slot();
    slot.complete = emu_shim::ldmatrix_x4_trans_complete;
    slot.mask = 0xffffffffu; /* .sync.aligned: the whole warp executes it */
    slot.what = "ldmatrix.sync.m8n8.x4.trans";
    slot.row[0] = v.x, slot.row[1] = v.y, slot.row[2] = v.z, slot.row[3] = v.w;
    emu::warp_collective();
    memcpy(r, emu::my_warp_slot().r, sizeof slot.r);
}

#endif
