/* cuda_bf16.h (shim) — the bf16 type and conversions device code uses, for the
 * CPU emulator: __nv_bfloat16 holds the raw bits; fp32 -> bf16 rounds to
 * nearest even and turns every NaN into the canonical 0x7fff, as the CUDA
 * math API documents for __float2bfloat16_rn. */
#ifndef ARMO_EMU_SHIM_CUDA_BF16_H
#define ARMO_EMU_SHIM_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
    unsigned short x;
};
typedef __nv_bfloat16 nv_bfloat16;

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.x = 0x7fff;
        return r;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    r.x = (unsigned short)(u >> 16);
    return r;
}
static inline float __bfloat162float(__nv_bfloat16 h) {
    const uint32_t u = (uint32_t)h.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
    __nv_bfloat16 r;
    r.x = u;
    return r;
}

#endif
