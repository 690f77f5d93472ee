/* attention_common.cuh — what the tiled attention kernels share (flash:
 * attention.cuh; pipelined: attention_pipelined.cuh; and the simple kernel):
 * which keys a query row of a packed batch attends — its own sequence's
 * keys up to itself (a block-diagonal causal mask over the packed token
 * axis) and, with prefix_of, every key of its prefix sequence —, the test
 * of a 16-byte chunk of bf16 for Inf / NaN, and the two tiled kernels'
 * online-softmax step and normalised store.  A header of its own so that
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

/* One key tile's online-softmax step for a warp's two query rows (g: e = 0,
 * 1; g + 8: e = 2, 3; the row max and sum reduced over the 4 lanes that
 * share a row): s, the tile's scores in log2 units as NT_S n-tiles of mma C
 * fragments (-inf where a key is masked), becomes P; the running max and
 * this thread's partial sums move on, and o (NT_O C fragments) is rescaled.
 * A row that has seen only masked keys keeps max -inf: base 0 then makes
 * alpha = p = 0 (no -inf - -inf NaN).  Both tiled kernels run this step. */
template <int NT_S, int NT_O>
__device__ __forceinline__ void online_softmax_tile(float (&s)[NT_S][4], float (&o)[NT_O][4],
                                                    float (&m_run)[2], float (&l_run)[2]) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < NT_S; j++) mx = fmaxf(mx, fmaxf(s[j][2 * rr], s[j][2 * rr + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_run[rr], mx);
        const float base = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = exp2f(m_run[rr] - base);
        m_run[rr] = m_new;
        float psum = 0.0f;
#pragma unroll
        for (int j = 0; j < NT_S; j++) {
            const float p0 = exp2f(s[j][2 * rr] - base);
            const float p1 = exp2f(s[j][2 * rr + 1] - base);
            s[j][2 * rr] = p0;
            s[j][2 * rr + 1] = p1;
            psum += p0 + p1;
        }
        l_run[rr] = l_run[rr] * alpha + psum;
#pragma unroll
        for (int nt = 0; nt < NT_O; nt++) {
            o[nt][2 * rr] *= alpha;
            o[nt][2 * rr + 1] *= alpha;
        }
    }
}

/* The end of a tiled kernel: the warp's two rows (row_a, row_b; those past
 * the batch's n skipped; each has at least its own key, so the sum is > 0)
 * normalised by their row sums and stored as bf16 at dst_head, the block's
 * query head's first column in row 0 of out (rows out_stride apart); a row
 * flagged poison (it attends a non-finite V row) is stored as NaN. */
template <int NT_O>
__device__ __forceinline__ void store_rows(uint16_t *dst_head, size_t out_stride, int n,
                                           int row_a, int row_b, bool poison_a, bool poison_b,
                                           int t4, const float (&o)[NT_O][4],
                                           const float (&l_run)[2]) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        float l = l_run[rr];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const float inv = 1.0f / l;
        const int row = rr == 0 ? row_a : row_b;
        const bool poison = rr == 0 ? poison_a : poison_b;
        if (row < n) {
            uint16_t *dst = dst_head + (size_t)row * out_stride;
#pragma unroll
            for (int nt = 0; nt < NT_O; nt++)
                *reinterpret_cast<uint32_t *>(dst + nt * 8 + 2 * t4) =
                    poison ? 0x7fc07fc0u
                           : pack_bf16x2(o[nt][2 * rr] * inv, o[nt][2 * rr + 1] * inv);
        }
    }
}

#endif
