/* cuda_runtime.h (shim) — what CUDA C device code needs, for g++ on the CPU.
 *
 * First on the emulator's include path, so that kernels/kernel_util.cuh and
 * every kernel file include it in place of the toolkit's cuda_runtime.h.  It
 * takes the toolkit's own host API and vector types (cuda_runtime_api.h,
 * vector_types.h, vector_functions.h: dim3, uint4, make_uint4, cudaError_t),
 * then replaces the device side:
 *   - __global__ / __device__ / __host__ / __forceinline__ / __launch_bounds__
 *     / __restrict__ / __align__ become plain C++; __shared__ becomes static
 *     (one block runs at a time on one OS thread, so a static is the block's
 *     shared memory; UBSan's bounds check guards its declared shape);
 *   - threadIdx, blockIdx, blockDim, gridDim, warpSize;
 *   - __syncthreads, __syncwarp, warp shuffles (idx, up, down, xor, with
 *     width) and votes (ballot, any, all) as collectives of the fiber
 *     scheduler (emu.h), which checks that every lane of the mask takes part;
 *   - atomics (one OS thread runs the whole block: plain read-modify-write);
 *   - the device math the kernels call (rsqrtf, exp2f, sincosf, min,
 *     max, bit casts). */
#ifndef ARMO_EMU_SHIM_CUDA_RUNTIME_H
#define ARMO_EMU_SHIM_CUDA_RUNTIME_H

#include <cuda_runtime_api.h>
#include <vector_functions.h>
#include <vector_types.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tests/emu/cuda/emu.h"

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __constant__
#undef __forceinline__
#undef __noinline__
#undef __launch_bounds__
#undef __align__
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __constant__ static
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#ifndef __restrict__
#define __restrict__ __restrict
#endif

#define threadIdx emu_thread_idx
#define blockIdx emu_block_idx
#define blockDim emu_block_dim
#define gridDim emu_grid_dim
#define warpSize 32

#define __syncthreads() emu::block_barrier(__FILE__, __LINE__)
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

namespace emu_shim {

static inline unsigned lane_of_current(void) { return emu::current_thread() & 31u; }

static inline uint32_t lane_value(const emu::warp_slot *const s[32], unsigned mask, int src,
                                  const char *what) {
    if (src < 0 || src > 31 || !(mask >> src & 1u) || !s[src])
        emu::fail("%s reads lane %d, outside its mask 0x%08x", what, src, mask);
    return s[src]->value;
}

/* Source lane of a shuffle per the CUDA C Programming Guide: lanes form
 * segments of width; idx wraps inside the caller's segment, up/down keep the
 * caller's own value past its segment's edge, xor past a later segment. */
static inline void shfl_idx_complete(emu::warp_slot *const s[32], unsigned mask) {
    for (int l = 0; l < 32; l++)
        if (s[l]) {
            const int w = s[l]->width, base = l & ~(w - 1);
            s[l]->result = lane_value(s, mask, base + (s[l]->arg & (w - 1)), "__shfl_sync");
        }
}
static inline void shfl_up_complete(emu::warp_slot *const s[32], unsigned mask) {
    for (int l = 0; l < 32; l++)
        if (s[l]) {
            const int w = s[l]->width, src = l - s[l]->arg;
            s[l]->result = src < (l & ~(w - 1)) ? s[l]->value : lane_value(s, mask, src, "__shfl_up_sync");
        }
}
static inline void shfl_down_complete(emu::warp_slot *const s[32], unsigned mask) {
    for (int l = 0; l < 32; l++)
        if (s[l]) {
            const int w = s[l]->width, src = l + s[l]->arg;
            s[l]->result = src >= (l & ~(w - 1)) + w ? s[l]->value
                                                     : lane_value(s, mask, src, "__shfl_down_sync");
        }
}
static inline void shfl_xor_complete(emu::warp_slot *const s[32], unsigned mask) {
    for (int l = 0; l < 32; l++)
        if (s[l]) {
            const int w = s[l]->width, src = l ^ s[l]->arg;
            s[l]->result = (src & ~(w - 1)) > (l & ~(w - 1))
                               ? s[l]->value
                               : lane_value(s, mask, src, "__shfl_xor_sync");
        }
}
static inline void ballot_complete(emu::warp_slot *const s[32], unsigned mask) {
    uint32_t bits = 0;
    for (int l = 0; l < 32; l++)
        if (s[l] && s[l]->value) bits |= 1u << l;
    for (int l = 0; l < 32; l++)
        if (s[l]) s[l]->result = bits;
    (void)mask;
}
static inline void sync_complete(emu::warp_slot *const s[32], unsigned mask) {
    (void)s;
    (void)mask;
}

static inline uint32_t collective(emu::warp_complete_fn fn, const char *what, unsigned mask,
                                  uint32_t value, int arg, int width) {
    if (width <= 0 || width > 32 || (width & (width - 1)) != 0)
        emu::fail("%s: width %d is not a power of two in 1..32", what, width);
    const unsigned lane = lane_of_current();
    if (!(mask >> lane & 1u)) emu::fail("%s: the calling lane %u is not in mask 0x%08x", what, lane, mask);
    emu::warp_slot &slot = emu::my_warp_slot();
    slot.complete = fn;
    slot.mask = mask;
    slot.what = what;
    slot.value = value;
    slot.arg = arg;
    slot.width = width;
    emu::warp_collective();
    return emu::my_warp_slot().result;
}

template <typename T> static inline uint32_t to_bits(T v) {
    static_assert(sizeof(T) == 4, "32-bit shuffle operand");
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}
template <typename T> static inline T from_bits(uint32_t u) {
    T v;
    memcpy(&v, &u, 4);
    return v;
}

} // namespace emu_shim

#define EMU_SHFL(name, fn)                                                                      \
    template <typename T> static inline T name(unsigned mask, T var, int arg, int width = 32) { \
        return emu_shim::from_bits<T>(emu_shim::collective(emu_shim::fn, #name, mask,          \
                                                           emu_shim::to_bits(var), arg, width)); \
    }
EMU_SHFL(__shfl_sync, shfl_idx_complete)
EMU_SHFL(__shfl_up_sync, shfl_up_complete)
EMU_SHFL(__shfl_down_sync, shfl_down_complete)
EMU_SHFL(__shfl_xor_sync, shfl_xor_complete)
#undef EMU_SHFL

static inline unsigned __ballot_sync(unsigned mask, int pred) {
    return emu_shim::collective(emu_shim::ballot_complete, "__ballot_sync", mask, pred != 0, 0, 32);
}
static inline int __any_sync(unsigned mask, int pred) {
    return (__ballot_sync(mask, pred) & mask) != 0;
}
static inline int __all_sync(unsigned mask, int pred) {
    return (__ballot_sync(mask, pred) & mask) == mask;
}
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    emu_shim::collective(emu_shim::sync_complete, "__syncwarp", mask, 0, 0, 32);
}

/* ---- atomics: the whole block runs on one OS thread ---- */
template <typename T> static inline T atomicAdd(T *p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> static inline T atomicSub(T *p, T v) { T old = *p; *p = old - v; return old; }
template <typename T> static inline T atomicExch(T *p, T v) { T old = *p; *p = v; return old; }
template <typename T> static inline T atomicMax(T *p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <typename T> static inline T atomicMin(T *p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <typename T> static inline T atomicCAS(T *p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }
template <typename T> static inline T atomicOr(T *p, T v) { T old = *p; *p = old | v; return old; }
template <typename T> static inline T atomicAnd(T *p, T v) { T old = *p; *p = old & v; return old; }

/* ---- device math and bit casts ---- */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
static inline float __uint_as_float(unsigned u) { return emu_shim::from_bits<float>(u); }
static inline unsigned __float_as_uint(float f) { return emu_shim::to_bits(f); }
static inline float __int_as_float(int i) { return emu_shim::from_bits<float>((uint32_t)i); }
static inline int __float_as_int(float f) { return (int)emu_shim::to_bits(f); }
template <typename T> static inline T __ldg(const T *p) { return *p; }

/* CUDA's integer and float min/max overloads (the mixed signed / unsigned
 * ones compare as unsigned, as CUDA's do) */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline unsigned min(int a, unsigned b) { return min((unsigned)a, b); }
static inline unsigned min(unsigned a, int b) { return min(a, (unsigned)b); }
static inline unsigned max(int a, unsigned b) { return max((unsigned)a, b); }
static inline unsigned max(unsigned a, int b) { return max(a, (unsigned)b); }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }

#endif
