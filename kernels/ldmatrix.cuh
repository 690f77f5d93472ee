/* ldmatrix.cuh — ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 as a device
 * function: four 8x8 matrices of 16-bit elements loaded from shared memory
 * and handed out transposed in mma.sync fragment order.  Lane l gives the
 * address of row l % 8 of matrix l / 8 (16 contiguous bytes, 16-byte
 * aligned); register i of lane l receives matrix i's elements (row 2(l%4),
 * col l/4) in the low half and (row 2(l%4)+1, col l/4) in the high half —
 * i.e. row-major [key][dim] tiles come out as the B fragments of an m16n8k16
 * mma whose k runs over keys (PTX ISA "Warp-level matrix load instruction:
 * ldmatrix").  The attention kernel keeps V row-major, as cp.async lands it,
 * and transposes it here instead of storing it transposed.
 *
 * Alone in its header so that the CPU emulator can replace it
 * (tests/emu/cuda/shim/kernels/ldmatrix.cuh: a warp collective). */
#ifndef ARMO_LDMATRIX_CUH
#define ARMO_LDMATRIX_CUH

#include <stdint.h>

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s)
                 : "memory");
}

#endif
