/* attention_common.cuh — what the tiled attention kernels share (flash:
 * attention.cuh; pipelined: attention_pipelined.cuh; and the simple kernel):
 * which keys a query row of a packed batch attends — its own sequence's
 * keys up to itself (a block-diagonal causal mask over the packed token
 * axis) and, with prefix_of, every key of its prefix sequence — and the test
 * of a 16-byte chunk of bf16 for Inf / NaN.  A header of its own so that
 * neither kernel's file includes the other's. */
#ifndef ARMO_ATTENTION_COMMON_CUH
#define ARMO_ATTENTION_COMMON_CUH

#include "kernels/kernel_util.cuh"

/* The sequence holding packed token t: the largest s < nseq with
 * cu_seqlens[s] <= t (skips empty sequences). */
__device__ __forceinline__ int seq_index(const int32_t *cu_seqlens, int nseq, int t) {
    int lo = 0, hi = nseq - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (cu_seqlens[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

/* First token of the sequence holding packed token t. */
__device__ __forceinline__ int seq_start(const int32_t *cu_seqlens, int nseq, int t) {
    return cu_seqlens[seq_index(cu_seqlens, nseq, t)];
}

/* The key ranges of a query row: its own sequence [first, row] (causal) and
 * its prefix's whole sequence [pre_lo, pre_hi) (empty without one). */
struct attn_keys {
    int first, pre_lo, pre_hi;
};

__device__ __forceinline__ attn_keys row_keys(const int32_t *cu_seqlens, const int32_t *prefix_of,
                                              int nseq, int t) {
    const int s = seq_index(cu_seqlens, nseq, t);
    attn_keys r;
    r.first = cu_seqlens[s];
    r.pre_lo = r.pre_hi = 0;
    if (prefix_of) {
        const int p = prefix_of[s];
        if (p >= 0) r.pre_lo = cu_seqlens[p], r.pre_hi = cu_seqlens[p + 1];
    }
    return r;
}

__device__ __forceinline__ bool key_visible(const attn_keys &r, int row, int key) {
    return (key >= r.first && key <= row) || (key >= r.pre_lo && key < r.pre_hi);
}

/* 1 when one of the 8 bf16 of a 16-byte chunk is Inf or NaN (exponent all ones). */
__device__ __forceinline__ bool chunk_nonfinite(uint4 v) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
    bool bad = false;
#pragma unroll
    for (int i = 0; i < 4; i++)
        bad |= (w[i] & 0x7f80u) == 0x7f80u || (w[i] & 0x7f800000u) == 0x7f800000u;
    return bad;
}

#endif
