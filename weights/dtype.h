/* dtype.h — tensor element types as safetensors names them, and the scalar
 * conversions between bf16 / f16 / f32 that the CPU backend and the tests use.
 *
 * Header-only and branch-light so that the conversions inline into the CPU
 * backend's inner loops.  bf16 <- f32 rounds to nearest even (as torch does);
 * NaN stays NaN. */
#ifndef ARMO_DTYPE_H
#define ARMO_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    ARMO_DT_INVALID = 0,
    ARMO_DT_BOOL,
    ARMO_DT_U8,
    ARMO_DT_I8,
    ARMO_DT_F8_E4M3,
    ARMO_DT_F8_E5M2,
    ARMO_DT_I16,
    ARMO_DT_U16,
    ARMO_DT_F16,
    ARMO_DT_BF16,
    ARMO_DT_I32,
    ARMO_DT_U32,
    ARMO_DT_F32,
    ARMO_DT_F64,
    ARMO_DT_I64,
    ARMO_DT_U64,
    ARMO_DT_COUNT
} armo_dtype;

/* Safetensors spelling ("BF16", "F8_E4M3", ...) <-> enum.  Unknown names give
 * ARMO_DT_INVALID. */
armo_dtype armo_dtype_from_name(const char *name);
const char *armo_dtype_name(armo_dtype dt);
/* Bytes per element; 0 for ARMO_DT_INVALID. */
size_t armo_dtype_size(armo_dtype dt);
/* 1 for the types the engine computes with (BF16, F16, F32). */
int armo_dtype_is_float_compute(armo_dtype dt);

static inline float armo_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t armo_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float armo_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            man &= 0x3ffu;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Element i of a BF16 / F16 / F32 array as float (other types: 0).  Reads
 * through memcpy: safetensors may place a tensor at any byte offset, so the
 * pointer need not be aligned (the copy compiles to a plain load). */
static inline float armo_load_f32(const void *data, armo_dtype dt, size_t i) {
    const unsigned char *p = (const unsigned char *)data;
    uint16_t h;
    float f;
    switch (dt) {
    case ARMO_DT_BF16: memcpy(&h, p + 2 * i, 2); return armo_bf16_to_f32(h);
    case ARMO_DT_F16: memcpy(&h, p + 2 * i, 2); return armo_f16_to_f32(h);
    case ARMO_DT_F32: memcpy(&f, p + 4 * i, 4); return f;
    default: return 0.0f;
    }
}

/* Converts n elements of a BF16 / F16 / F32 array (any alignment) to float. */
void armo_convert_to_f32(float *dst, const void *src, armo_dtype dt, size_t n);

#endif
