/* mma.cuh — the tensor-core instruction the attention kernel uses, wrapped as
 * a device function: D = A·B + C with mma.sync m16n8k16, bf16 inputs, fp32
 * accumulators (fragment layouts in attention.cuh's header).  Alone in its
 * header so that the CPU emulator (tests/emu/cuda/shim/kernels/mma.cuh) can
 * put an implementation of the PTX fragment layouts in place of the inline
 * assembly without touching the kernel's source. */
#ifndef ARMO_MMA_CUH
#define ARMO_MMA_CUH

#include <stdint.h>

__device__ __forceinline__ void mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0,
                                               uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

#endif
