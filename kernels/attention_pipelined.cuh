/* attention_pipelined.cuh — device code of the pipelined attention variant
 * (ARMO_ATTN=pipelined, ARMO_ATTN_PIPELINED; launcher: attention.cu), in the
 * style of FlashAttention-2: the same function as the flash kernel of
 * attention.cuh (causal GQA over packed variable-length sequences, the
 * block-diagonal mask of a ragged pack, q / k / v read in place with their
 * own row strides, a continuation's rows attending their prefix sequence's
 * keys through prefix_of, a non-finite V row making exactly the rows that
 * attend it NaN), the same blocks (4 warps per 64 packed rows x query head),
 * the same mma.sync m16n8k16 bf16 arithmetic and online softmax, but the K/V
 * tiles move while the tensor cores work:
 *
 *   - K and V tiles are double-buffered in shared memory and loaded with
 *     16-byte cp.async (cp_async.cuh); the loads of tile i+1 are issued
 *     before the mma work of tile i, and cp.async.wait_group 1 waits for tile
 *     i alone, so one tile is always in flight.  Rows past the batch are
 *     zero-filled by the copy itself (src-size 0).
 *   - cp.async cannot transpose, so V stays row-major ([key][dim], as K) and
 *     its B fragments come from ldmatrix .x4.trans (ldmatrix.cuh): one
 *     instruction gives two n-tiles' fragments.  Rows of HD + 8 bf16 keep
 *     every 8-row phase of ldmatrix and the K fragment loads on distinct
 *     banks (bank_report: conflict-free at head_dim 64 and 128; at 32 and 16
 *     the cp.async stores of the short rows are 2-way, as flash's K stores).
 *   - Non-finite V: the flash kernel zeroes a bad chunk on its way into
 *     shared memory; here the chunk lands as it is, so after the wait each
 *     thread scans the chunks it copied itself (its own copies are visible
 *     to it after its wait, before any barrier), zeroes the bad ones in
 *     place and flags the key (a ballot over the key's lanes), and only then
 *     does the barrier publish the tile.  The rows that attend a flagged key
 *     are made NaN at the store, as in flash.
 *   - Shared memory: two stages of K + V at 64 keys (head_dim <= 64) or 32
 *     keys (head_dim 128: 2 x 2 x 32 x 136 x 2 B = 34 KiB, inside the 48 KiB
 *     a block may declare statically; 64 keys would take 68 KiB, i.e.
 *     dynamic shared memory, which the emulator does not model).  The Q tile is staged in stage 1's buffers
 *     (2 x 32 rows >= 64 query rows) while tile 0 loads into stage 0.
 *
 * Not done: wgmma / TMA on sm_90a (warpgroup MMA and the tensor-memory
 * accelerator; the emulator models neither) and a 128-row block; a GPU
 * measurement decides whether this variant replaces flash (the default is
 * flash until then). */
#ifndef ARMO_ATTENTION_PIPELINED_CUH
#define ARMO_ATTENTION_PIPELINED_CUH

#include "kernels/attention_common.cuh"
#include "kernels/cp_async.cuh"
#include "kernels/kernel_util.cuh"
#include "kernels/ldmatrix.cuh"
#include "kernels/mma.cuh"

#define PA_BM 64      /* query rows per block (16 per warp), as flash's FA_BM */
#define PA_THREADS 128
#define PA_PAD 8      /* bf16 of row padding: 16-byte rows, conflict-free ldmatrix */
/* keys per K/V tile: two stages of K and V must fit 48 KiB */
#define PA_BN(HD) ((HD) >= 128 ? 32 : 64)

/* Issues the cp.async copies of the K and V tile of keys k0 .. k0+BN-1 into
 * ks / vs (row-major, rows of ROW bf16), zero-filling keys >= n.  Thread tid
 * copies chunks tid, tid + PA_THREADS, ...: the scan after the wait walks the
 * same chunks. */
template <int HD, int BN, int ROW>
__device__ __forceinline__ void pa_issue_kv(uint16_t *ks, uint16_t *vs, const uint16_t *k,
                                            const uint16_t *v, size_t kv_stride, int kvh,
                                            int k0, int n, int tid) {
    constexpr int CH = HD / 8;
    for (int idx = tid; idx < BN * CH; idx += PA_THREADS) {
        const int r = idx / CH, c = idx % CH;
        const bool ok = k0 + r < n;
        const size_t off = ok ? (size_t)(k0 + r) * kv_stride + (size_t)kvh * HD + c * 8 : 0;
        cp_async_16(ks + r * ROW + c * 8, k + off, ok);
        cp_async_16(vs + r * ROW + c * 8, v + off, ok);
    }
}

/* After this thread's wait: zeroes the non-finite chunks among the V chunks
 * it copied itself and sets vbad[r] for each key r that had one (a key's CH
 * chunks are CH consecutive lanes of one warp: the trip count is the same in
 * every thread, so the ballot is warp-uniform). */
template <int HD, int BN, int ROW>
__device__ __forceinline__ void pa_scan_v(uint16_t *vs, uint8_t *vbad, int tid, int lane) {
    constexpr int CH = HD / 8;
    static_assert((BN * CH) % PA_THREADS == 0 && 32 % CH == 0, "uniform ballot");
    for (int idx = tid; idx < BN * CH; idx += PA_THREADS) {
        const int r = idx / CH, c = idx % CH;
        uint4 *chunk = reinterpret_cast<uint4 *>(vs + r * ROW + c * 8);
        const bool bad = chunk_nonfinite(*chunk);
        if (bad) *chunk = make_uint4(0, 0, 0, 0);
        const unsigned bal = __ballot_sync(0xffffffffu, bad);
        if (c == 0) vbad[r] = ((bal >> lane) & (CH == 32 ? 0xffffffffu : (1u << CH) - 1u)) != 0u;
    }
}

template <int HD>
__device__ __forceinline__ void
pipelined_attn_body(uint16_t *__restrict__ out, const uint16_t *__restrict__ q,
                    const uint16_t *__restrict__ k, const uint16_t *__restrict__ v,
                    int q_stride_in, int kv_stride_in, const int32_t *__restrict__ cu_seqlens,
                    const int32_t *__restrict__ prefix_of, int nseq, int n, int nh, int nkv,
                    float scale_log2) {
    static_assert(HD % 16 == 0 && HD <= 128, "head_dim must be a multiple of 16, at most 128");
    constexpr int BN = PA_BN(HD);
    constexpr int ROW = HD + PA_PAD;       /* bf16 per K / V / Q row in shared memory */
    constexpr int CH = HD / 8;             /* 16-byte chunks per row */
    constexpr int NT_S = BN / 8;           /* n-tiles of S per warp */
    constexpr int NT_O = HD / 8;           /* n-tiles of O per warp */
    constexpr int KS_QK = HD / 16;         /* k-steps of Q·Kᵀ */
    constexpr int KS_PV = BN / 16;         /* k-steps of P·V */
    static_assert(2 * BN >= PA_BM, "the Q tile is staged in stage 1's K and V buffers");
    static_assert(NT_O % 2 == 0, "ldmatrix .x4 gives two n-tiles at a time");

    /* [stage][K, V][BN keys][ROW]: stage s's K at (2s) * BN * ROW, its V BN * ROW later */
    __shared__ __align__(16) uint16_t kv_s[2 * 2 * BN * ROW];
    __shared__ __align__(16) uint8_t vbad_s[2][BN]; /* per stage: key j's V row was non-finite */

    const int q0 = blockIdx.x * PA_BM;
    const int h = blockIdx.y;
    const int kvh = h / (nh / nkv);
    const size_t q_stride = (size_t)q_stride_in, kv_stride = (size_t)kv_stride_in;
    const size_t out_stride = (size_t)nh * HD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    const int q_last = min(q0 + PA_BM, n) - 1;

    /* ---- prologue: Q tile -> stage 1's buffers (group 0) ---- */
    uint16_t *const q_s = kv_s + 2 * BN * ROW;
    for (int idx = tid; idx < PA_BM * CH; idx += PA_THREADS) {
        const int r = idx / CH, c = idx % CH;
        const bool ok = q0 + r < n;
        const size_t off = ok ? (size_t)(q0 + r) * q_stride + (size_t)h * HD + c * 8 : 0;
        cp_async_16(q_s + r * ROW + c * 8, q + off, ok);
    }
    cp_async_commit();

    /* key ranges, as the flash kernel has them */
    const int wr = warp * 16 + g;
    const int row_a = q0 + wr, row_b = row_a + 8;
    const attn_keys keys_a = row_keys(cu_seqlens, prefix_of, nseq, min(row_a, n - 1));
    const attn_keys keys_b = row_keys(cu_seqlens, prefix_of, nseq, min(row_b, n - 1));
    bool poison_a = false, poison_b = false;
    const int k_first = seq_start(cu_seqlens, nseq, q0);
    int p_lo = k_first, p_hi = 0;
    if (prefix_of) {
        const int s_hi = seq_index(cu_seqlens, nseq, q_last);
        for (int s = seq_index(cu_seqlens, nseq, q0); s <= s_hi; s++) {
            const int p = prefix_of[s];
            if (p < 0 || cu_seqlens[s + 1] == cu_seqlens[s]) continue;
            p_lo = min(p_lo, cu_seqlens[p]);
            p_hi = max(p_hi, cu_seqlens[p + 1]);
        }
    }

    /* tile 0 -> stage 0 (group 1), in flight while Q becomes fragments */
    int k0 = p_lo, st = 0;
    pa_issue_kv<HD, BN, ROW>(kv_s, kv_s + BN * ROW, k, v, kv_stride, kvh, k0, n, tid);
    cp_async_commit();
    cp_async_wait<1>(); /* Q (all but the newest group) */
    __syncthreads();
    uint32_t qf[KS_QK][4];
#pragma unroll
    for (int kk = 0; kk < KS_QK; kk++) {
        qf[kk][0] = *reinterpret_cast<const uint32_t *>(q_s + wr * ROW + kk * 16 + 2 * t4);
        qf[kk][1] = *reinterpret_cast<const uint32_t *>(q_s + (wr + 8) * ROW + kk * 16 + 2 * t4);
        qf[kk][2] = *reinterpret_cast<const uint32_t *>(q_s + wr * ROW + kk * 16 + 2 * t4 + 8);
        qf[kk][3] =
            *reinterpret_cast<const uint32_t *>(q_s + (wr + 8) * ROW + kk * 16 + 2 * t4 + 8);
    }
    __syncthreads(); /* stage 1 is free for tile 1 */

    float o[NT_O][4];
#pragma unroll
    for (int nt = 0; nt < NT_O; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    float m_run[2] = {-INFINITY, -INFINITY};
    float l_run[2] = {0.0f, 0.0f};
    /* this lane's ldmatrix row inside a V tile: matrix lane / 8 is (keys +8 for
     * odd matrices, dims +8 for matrices 2, 3), row lane % 8 */
    const int v_lane_off = ((lane & 8) + (lane & 7)) * ROW + (lane >> 4) * 8;

    for (;;) {
        /* the next tile's keys: past the prefixes, jump to the own keys */
        int kn = k0 + BN;
        if (kn >= p_hi && kn < k_first) kn = k_first;
        uint16_t *const ks = kv_s + (2 * st) * BN * ROW, *const vs = ks + BN * ROW;
        if (kn <= q_last) /* block-uniform: the loads of tile i+1 before tile i's work */
            pa_issue_kv<HD, BN, ROW>(kv_s + (2 * (st ^ 1)) * BN * ROW,
                                     kv_s + (2 * (st ^ 1) + 1) * BN * ROW, k, v, kv_stride, kvh,
                                     kn, n, tid);
        cp_async_commit(); /* possibly empty: the wait below counts groups */
        cp_async_wait<1>(); /* tile i has landed (this thread's copies) */
        pa_scan_v<HD, BN, ROW>(vs, vbad_s[st], tid, lane);
        __syncthreads(); /* everyone's copies and fixes are visible */

        /* ---- rows attending a key whose V row was non-finite ---- */
        {
            uint32_t any = 0;
#pragma unroll
            for (int i = 0; i < BN / 16; i++) {
                const uint4 f = *reinterpret_cast<const uint4 *>(&vbad_s[st][i * 16]);
                any |= f.x | f.y | f.z | f.w;
            }
            if (any != 0u) {
                for (int j = 0; j < BN; j++) {
                    if (!vbad_s[st][j]) continue;
                    poison_a |= key_visible(keys_a, row_a, k0 + j);
                    poison_b |= key_visible(keys_b, row_b, k0 + j);
                }
            }
        }

        /* ---- S = Q · Kᵀ (16 x BN per warp) ---- */
        float s[NT_S][4];
#pragma unroll
        for (int j = 0; j < NT_S; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS_QK; kk++) {
                const uint16_t *krow = ks + (j * 8 + g) * ROW + kk * 16 + 2 * t4;
                const uint32_t b0 = *reinterpret_cast<const uint32_t *>(krow);
                const uint32_t b1 = *reinterpret_cast<const uint32_t *>(krow + 8);
                mma_bf16_16816(s[j], qf[kk], b0, b1);
            }
        }

        /* ---- scale and mask ---- */
#pragma unroll
        for (int j = 0; j < NT_S; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = k0 + j * 8 + 2 * t4 + (e & 1);
                const bool vis = e < 2 ? key_visible(keys_a, row_a, key)
                                       : key_visible(keys_b, row_b, key);
                s[j][e] = vis ? s[j][e] * scale_log2 : -INFINITY;
            }
        }

        online_softmax_tile<NT_S, NT_O>(s, o, m_run, l_run);

        /* ---- O += P · V: V's B fragments by ldmatrix.trans, two n-tiles a time ---- */
#pragma unroll
        for (int kk = 0; kk < KS_PV; kk++) {
            uint32_t pa[4];
            pa[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int nt = 0; nt < NT_O; nt += 2) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, vs + v_lane_off + kk * 16 * ROW + nt * 8);
                mma_bf16_16816(o[nt], pa, b[0], b[1]);
                mma_bf16_16816(o[nt + 1], pa, b[2], b[3]);
            }
        }
        __syncthreads(); /* stage st is refilled by the next iteration's issue */
        if (kn > q_last) break;
        k0 = kn;
        st ^= 1;
    }

    /* ---- normalise and store (as flash) ---- */
    store_rows<NT_O>(out + (size_t)h * HD, out_stride, n, row_a, row_b, poison_a, poison_b, t4,
                     o, l_run);
}

template <int HD>
__global__ void __launch_bounds__(PA_THREADS)
pipelined_attn_kernel(uint16_t *__restrict__ out, const uint16_t *__restrict__ q,
                      const uint16_t *__restrict__ k, const uint16_t *__restrict__ v,
                      int q_stride_in, int kv_stride_in, const int32_t *__restrict__ cu_seqlens,
                      const int32_t *__restrict__ prefix_of, int nseq, int n, int nh, int nkv,
                      float scale_log2) {
    pipelined_attn_body<HD>(out, q, k, v, q_stride_in, kv_stride_in, cu_seqlens, prefix_of, nseq,
                            n, nh, nkv, scale_log2);
}

#endif
