/* attention.cuh — device code of causal GQA attention over packed
 * variable-length sequences (launchers: attention.cu; also compiled by the
 * CPU emulator in tests/emu/cuda, with the launchers).
 *
 * Two variants computing the same function (softmax(q·kᵀ/sqrt(hd)) in fp32
 * over keys 0..i of token i's own sequence, query head h reading KV head
 * h / (nh/nkv)):
 *
 * flash (default; head_dim 16, 32, 64 or 128): one block of 4 warps per
 *   (64 consecutive tokens of the packed batch, query head).  Tiles run over
 *   the packed token axis, not per sequence, so a ragged batch launches no
 *   idle blocks and short sequences share a block: a block's rows may belong
 *   to several sequences, and row r attends keys [start(r), r] where start(r)
 *   is its sequence's first token (a block-diagonal causal mask).  The block
 *   walks 64-key tiles from the first row's sequence start up to its last
 *   row.  Q tile -> registers as mma A fragments; K goes to shared memory
 *   row-major and V transposed ([dim][key]) so that every B fragment is one
 *   32-bit shared load (the V tile's layout, skewed so that neither its
 *   stores nor its loads conflict in shared-memory banks, is described at
 *   vt_s below); S = Q·Kᵀ and O += P·V with mma.sync m16n8k16 bf16
 *   (fp32 accumulate); online softmax in fp32 (base-2 exponentials, scale
 *   folded in).  A row may see whole tiles of masked keys (before its
 *   sequence starts): its running max stays -inf and the guard in
 *   online_softmax_tile (attention_common.cuh) keeps its sums at 0 until
 *   its first valid key.  K/V rows past the batch are
 *   zero-filled so that masked keys contribute 0 * 0, never 0 * garbage;
 *   a V row holding Inf or NaN (a neighbouring sequence gone non-finite, or
 *   a later token of the row's own sequence) is zeroed in the tile too and
 *   flagged, and only the rows that attend it are made NaN at the store
 *   (P = 0 for a masked key, but 0 * NaN would be NaN in P·V).
 *   q, k and v are read with their own row strides (in place in the fused
 *   QKV output).  With prefix_of, a row of a continuation also attends its
 *   prefix sequence's keys (all of them), read where they are: the block
 *   walks the tiles of its rows' prefixes, then its own keys.
 *   Single-buffered loads: simple before fast.
 *
 * simple (ARMO_ATTN=simple): one block of 4 warps per (token, query head);
 *   pass 1 finds the max score, pass 2 sums exp and the weighted V rows, all
 *   fp32, scores recomputed rather than stored, so any length works; any
 *   head_dim up to 256 (the dispatcher's fallback for head dims the flash
 *   kernel does not take).  Slow and obviously correct: the bisecting
 *   reference on a GPU machine.
 *
 * mma.sync fragment layouts used below (PTX ISA, m16n8k16, .bf16; g = lane/4,
 * t = lane%4; each 32-bit register holds two consecutive-column elements,
 * the lower column in the low half):
 *   A (16x16, row-major): reg0 (row g,   cols 2t..2t+1), reg1 (row g+8, cols 2t..2t+1),
 *                         reg2 (row g,   cols 2t+8..+9), reg3 (row g+8, cols 2t+8..+9)
 *   B (16x8, [k][n]):     reg0 (k 2t..2t+1, n g),       reg1 (k 2t+8..2t+9, n g)
 *   C (16x8, fp32):       c0,c1 (row g, cols 2t, 2t+1), c2,c3 (row g+8, cols 2t, 2t+1) */
#ifndef ARMO_ATTENTION_CUH
#define ARMO_ATTENTION_CUH

#include "kernels/attention_common.cuh"
#include "kernels/kernel_util.cuh"
#include "kernels/mma.cuh"

#define FA_BM 64      /* query rows per block (16 per warp) */
#define FA_BN 64      /* keys per tile */
#define FA_THREADS 128
#define FA_PAD 8      /* bf16 elements of row padding: keeps 16-byte rows, spreads banks */

template <int HD>
__device__ __forceinline__ void
flash_attn_body(uint16_t *__restrict__ out, const uint16_t *__restrict__ q,
                const uint16_t *__restrict__ k, const uint16_t *__restrict__ v, int q_stride_in,
                int kv_stride_in, const int32_t *__restrict__ cu_seqlens,
                const int32_t *__restrict__ prefix_of, int nseq, int n, int nh, int nkv,
                float scale_log2) {
    static_assert(HD % 16 == 0 && HD <= 128, "head_dim must be a multiple of 16, at most 128");
    constexpr int CH = HD / 8;             /* 16-byte chunks per row */
    constexpr int NT_S = FA_BN / 8;        /* n-tiles of S per warp */
    constexpr int NT_O = HD / 8;           /* n-tiles of O per warp */
    constexpr int KS_QK = HD / 16;         /* k-steps of Q·Kᵀ */
    constexpr int KS_PV = FA_BN / 16;      /* k-steps of P·V */

    __shared__ __align__(16) uint16_t qk_s[FA_BN][HD + FA_PAD]; /* Q tile, then each K tile */
    /* V tile transposed, skewed: head dim d's 64 keys start at element
     * vt_row(d) = d * VT_ROW + (d / 8) * VT_SKEW of vt_s.  Banks are the
     * 32-bit words mod 32; one row is VT_ROW / 2 = 36 words (4 mod 32).
     *   Loads (B fragments): lane (g, t4) reads word kk*8 + t4 (+4) of row
     *   nt*8 + g: bank 4g + t4 + a constant, 32 distinct banks.
     *   Stores: the loader's lane holds key r and dims c*8 .. c*8+7; one
     *   store instruction writes dim c*8 + i for the CH chunks c and the
     *   32 / CH keys of a warp.  Rows 8 apart are 8 * 36 = 288 = 0 mod 32
     *   words apart, so without the skew every chunk c lands in the same
     *   banks (16-way at head_dim 128); the skew of VT_SKEW / 2 = 16 / CH
     *   words per 8 rows gives chunk c the banks (c * 16 / CH + r / 2) mod 32
     *   (+ a constant): distinct for the 16 / CH key words times CH chunks.
     * The skew depends on d / 8 only, so the loads' offsets stay compile-time
     * constants plus the lane's own (no address arithmetic in the P·V loop). */
    constexpr int VT_ROW = FA_BN + FA_PAD; /* 72 bf16 per head dim */
    constexpr int VT_SKEW = 256 / HD;      /* bf16 added per 8 head dims: 2, 4, 8, 16 */
    __shared__ __align__(16) uint16_t vt_s[HD * VT_ROW + (HD / 8) * VT_SKEW];
    /* vbad_s[j]: key j of the tile has a non-finite V element (its V row is
     * zeroed in vt_s; the rows that attend key j are made NaN at the end) */
    __shared__ __align__(16) uint8_t vbad_s[FA_BN];
    static_assert(FA_BM == FA_BN, "qk_s holds a Q tile and a K tile in turn");
    static_assert((FA_BN + FA_PAD) % 64 == 8 && FA_BN == 64,
                  "the V tile's bank analysis assumes 64 keys in rows of 36 words");

    const int q0 = blockIdx.x * FA_BM; /* first packed token of this block */
    const int h = blockIdx.y;
    const int kvh = h / (nh / nkv);
    const size_t q_stride = (size_t)q_stride_in, kv_stride = (size_t)kv_stride_in;
    const size_t out_stride = (size_t)nh * HD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    const int q_last = min(q0 + FA_BM, n) - 1; /* last valid row of the block */

    /* ---- Q tile -> shared -> A fragments ---- */
    for (int idx = tid; idx < FA_BM * CH; idx += FA_THREADS) {
        const int r = idx / CH, c = idx % CH;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (q0 + r < n)
            val = *reinterpret_cast<const uint4 *>(q + (size_t)(q0 + r) * q_stride +
                                                   (size_t)h * HD + c * 8);
        *reinterpret_cast<uint4 *>(&qk_s[r][c * 8]) = val;
    }
    __syncthreads();
    uint32_t qf[KS_QK][4];
    const int wr = warp * 16 + g; /* this thread's first row inside the tile */
#pragma unroll
    for (int kk = 0; kk < KS_QK; kk++) {
        qf[kk][0] = *reinterpret_cast<const uint32_t *>(&qk_s[wr][kk * 16 + 2 * t4]);
        qf[kk][1] = *reinterpret_cast<const uint32_t *>(&qk_s[wr + 8][kk * 16 + 2 * t4]);
        qf[kk][2] = *reinterpret_cast<const uint32_t *>(&qk_s[wr][kk * 16 + 2 * t4 + 8]);
        qf[kk][3] = *reinterpret_cast<const uint32_t *>(&qk_s[wr + 8][kk * 16 + 2 * t4 + 8]);
    }
    __syncthreads(); /* qk_s is overwritten by the first K tile */

    float o[NT_O][4];
#pragma unroll
    for (int nt = 0; nt < NT_O; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    float m_run[2] = {-INFINITY, -INFINITY}; /* running max (log2 units), rows g and g+8 */
    float l_run[2] = {0.0f, 0.0f};           /* this thread's partial row sums */
    const int row_a = q0 + wr, row_b = row_a + 8; /* packed token index of this thread's rows */
    /* key ranges of each row (rows past the batch: the last one's) */
    const attn_keys keys_a = row_keys(cu_seqlens, prefix_of, nseq, min(row_a, n - 1));
    const attn_keys keys_b = row_keys(cu_seqlens, prefix_of, nseq, min(row_b, n - 1));
    bool poison_a = false, poison_b = false; /* a visible key's V row is non-finite */
    const int k_first = seq_start(cu_seqlens, nseq, q0);
    /* prefix keys of the block's rows: the union [p_lo, p_hi) of their
     * sequences' prefix ranges (sequences seq(q0) .. seq(q_last); the same
     * loads in every thread).  A prefix lies before its continuations, so the
     * tiles run over [p_lo, p_hi) and then jump to the own keys. */
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

    for (int k0 = p_lo; k0 <= q_last;) {
        /* ---- K tile (row-major) and V tile (transposed) -> shared ---- */
        /* the trip count is the same in every thread (FA_BN * CH is a multiple
         * of FA_THREADS) and a key's CH chunks are CH consecutive lanes of one
         * warp: the ballot below gathers a key's chunks */
        for (int idx = tid; idx < FA_BN * CH; idx += FA_THREADS) {
            const int r = idx / CH, c = idx % CH;
            uint4 kval = make_uint4(0, 0, 0, 0), vval = make_uint4(0, 0, 0, 0);
            bool bad = false;
            if (k0 + r < n) {
                const size_t off = (size_t)(k0 + r) * kv_stride + (size_t)kvh * HD + c * 8;
                kval = *reinterpret_cast<const uint4 *>(k + off);
                vval = *reinterpret_cast<const uint4 *>(v + off);
                /* a masked key's P is 0, but 0 * NaN is NaN in P·V: non-finite
                 * V never enters the tile; the rows that attend it are marked */
                bad = chunk_nonfinite(vval);
                if (bad) vval = make_uint4(0, 0, 0, 0);
            }
            const unsigned bal = __ballot_sync(0xffffffffu, bad);
            if (c == 0) vbad_s[r] = ((bal >> lane) & ((1u << CH) - 1u)) != 0u;
            *reinterpret_cast<uint4 *>(&qk_s[r][c * 8]) = kval;
            const uint32_t vw[4] = {vval.x, vval.y, vval.z, vval.w};
            uint16_t *const vcol = vt_s + c * (8 * VT_ROW + VT_SKEW) + r; /* dim c*8, key r */
#pragma unroll
            for (int e = 0; e < 4; e++) {
                vcol[(2 * e) * VT_ROW] = (uint16_t)(vw[e] & 0xffffu);
                vcol[(2 * e + 1) * VT_ROW] = (uint16_t)(vw[e] >> 16);
            }
        }
        __syncthreads();

        /* ---- rows attending a key whose V row was non-finite (rare: one
         * broadcast read of the tile's flags, then the slow check) ---- */
        {
            const uint4 f = *reinterpret_cast<const uint4 *>(vbad_s);
            const uint4 f2 = *reinterpret_cast<const uint4 *>(vbad_s + 16);
            const uint4 f3 = *reinterpret_cast<const uint4 *>(vbad_s + 32);
            const uint4 f4 = *reinterpret_cast<const uint4 *>(vbad_s + 48);
            if ((f.x | f.y | f.z | f.w | f2.x | f2.y | f2.z | f2.w | f3.x | f3.y | f3.z | f3.w |
                 f4.x | f4.y | f4.z | f4.w) != 0u) {
                for (int j = 0; j < FA_BN; j++) {
                    if (!vbad_s[j]) continue;
                    poison_a |= key_visible(keys_a, row_a, k0 + j);
                    poison_b |= key_visible(keys_b, row_b, k0 + j);
                }
            }
        }

        /* ---- S = Q · Kᵀ (16 x 64 per warp) ---- */
        float s[NT_S][4];
#pragma unroll
        for (int j = 0; j < NT_S; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS_QK; kk++) {
                const uint32_t b0 =
                    *reinterpret_cast<const uint32_t *>(&qk_s[j * 8 + g][kk * 16 + 2 * t4]);
                const uint32_t b1 =
                    *reinterpret_cast<const uint32_t *>(&qk_s[j * 8 + g][kk * 16 + 2 * t4 + 8]);
                mma_bf16_16816(s[j], qf[kk], b0, b1);
            }
        }

        /* ---- scale, block-diagonal causal mask: key in [start(row), row],
         * or in the row's prefix ---- */
#pragma unroll
        for (int j = 0; j < NT_S; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = k0 + j * 8 + 2 * t4 + (e & 1);
                const bool vis = e < 2 ? key_visible(keys_a, row_a, key)
                                       : key_visible(keys_b, row_b, key);
                const float x = s[j][e] * scale_log2;
                s[j][e] = vis ? x : -INFINITY;
            }
        }

        online_softmax_tile<NT_S, NT_O>(s, o, m_run, l_run);

        /* ---- O += P · V; P's A fragments come straight from S's C fragments ---- */
#pragma unroll
        for (int kk = 0; kk < KS_PV; kk++) {
            uint32_t pa[4];
            pa[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int nt = 0; nt < NT_O; nt++) {
                /* row nt*8 + g of the skewed layout: g * VT_ROW is the lane's,
                 * the rest compile-time */
                const uint16_t *vrow = vt_s + g * VT_ROW + nt * (8 * VT_ROW + VT_SKEW);
                const uint32_t b0 = *reinterpret_cast<const uint32_t *>(vrow + kk * 16 + 2 * t4);
                const uint32_t b1 =
                    *reinterpret_cast<const uint32_t *>(vrow + kk * 16 + 2 * t4 + 8);
                mma_bf16_16816(o[nt], pa, b0, b1);
            }
        }
        __syncthreads(); /* the next tile overwrites qk_s, vt_s and vbad_s */
        k0 += FA_BN;
        if (k0 >= p_hi && k0 < k_first) k0 = k_first; /* past the prefixes: the own keys */
    }

    /* ---- normalise and store the rows inside the batch (each has key = row) ---- */
    store_rows<NT_O>(out + (size_t)h * HD, out_stride, n, row_a, row_b, poison_a, poison_b, t4,
                     o, l_run);
}

#define FA_PARAMS                                                                          \
    uint16_t *__restrict__ out, const uint16_t *__restrict__ q,                            \
        const uint16_t *__restrict__ k, const uint16_t *__restrict__ v, int q_stride_in,   \
        int kv_stride_in, const int32_t *__restrict__ cu_seqlens,                          \
        const int32_t *__restrict__ prefix_of, int nseq, int n, int nh, int nkv, float scale_log2
#define FA_ARGS                                                                            \
    out, q, k, v, q_stride_in, kv_stride_in, cu_seqlens, prefix_of, nseq, n, nh, nkv, scale_log2

template <int HD>
__global__ void __launch_bounds__(FA_THREADS) flash_attn_kernel(FA_PARAMS) {
    flash_attn_body<HD>(FA_ARGS);
}

/* head_dim 128 asks for 3 blocks per SM (<= 168 registers): the prefix and
 * non-finite checks of issue 20 took it to 169, 2 blocks, otherwise.  The
 * other head dims keep the compiler's own choice (a minimum there costs
 * them a block). */
template <>
__global__ void __launch_bounds__(FA_THREADS, 3) flash_attn_kernel<128>(FA_PARAMS) {
    flash_attn_body<128>(FA_ARGS);
}
#undef FA_PARAMS
#undef FA_ARGS

/* ---- simple variant ---- */
#define SA_WARPS 4
#define SA_MAX_HD 256

__global__ void __launch_bounds__(SA_WARPS * 32)
simple_attn_kernel(uint16_t *out, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                   int q_stride_in, int kv_stride_in, const int32_t *cu_seqlens,
                   const int32_t *prefix_of, int nseq, int nh, int nkv, int hd, float scale) {
    __shared__ float warp_max_s[SA_WARPS];
    __shared__ float warp_l_s[SA_WARPS];
    __shared__ float warp_acc_s[SA_WARPS][SA_MAX_HD];
    const int tok = blockIdx.x, h = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    /* keys: the prefix's pre_lo..pre_hi-1 (if any), then first..tok; key
     * number j of the nkeys */
    const attn_keys rk = row_keys(cu_seqlens, prefix_of, nseq, tok);
    const int npre = rk.pre_hi - rk.pre_lo, nkeys = npre + tok - rk.first + 1;
#define SA_KEY(j) ((j) < npre ? rk.pre_lo + (j) : rk.first + (j) - npre)
    const int kvh = h / (nh / nkv);
    const int per_lane = (hd + 31) / 32; /* lane owns dims lane + 32c < hd */
    const size_t q_stride = (size_t)q_stride_in, kv_stride = (size_t)kv_stride_in;
    const size_t out_stride = (size_t)nh * hd;
    /* fixed-bound unrolled loops with a guard keep qv / acc in registers */
    float qv[SA_MAX_HD / 32];
#pragma unroll
    for (int c = 0; c < SA_MAX_HD / 32; c++)
        qv[c] = c < per_lane && lane + 32 * c < hd
                    ? bf16_bits_to_f32(q[(size_t)tok * q_stride + (size_t)h * hd + lane + 32 * c])
                    : 0.0f;

    /* pass 1: max score */
    float mx = -INFINITY;
    for (int jj = warp; jj < nkeys; jj += SA_WARPS) {
        const int j = SA_KEY(jj);
        const uint16_t *kr = k + (size_t)j * kv_stride + (size_t)kvh * hd;
        float d = 0.0f;
#pragma unroll
        for (int c = 0; c < SA_MAX_HD / 32; c++)
            if (c < per_lane && lane + 32 * c < hd) d += qv[c] * bf16_bits_to_f32(kr[lane + 32 * c]);
        mx = fmaxf(mx, warp_sum(d) * scale);
    }
    if (lane == 0) warp_max_s[warp] = mx;
    __syncthreads();
    float m = warp_max_s[0];
    for (int w = 1; w < SA_WARPS; w++) m = fmaxf(m, warp_max_s[w]);

    /* pass 2: exp-sum and weighted V */
    float l = 0.0f, acc[SA_MAX_HD / 32];
#pragma unroll
    for (int c = 0; c < SA_MAX_HD / 32; c++) acc[c] = 0.0f;
    for (int jj = warp; jj < nkeys; jj += SA_WARPS) {
        const int j = SA_KEY(jj);
        const uint16_t *kr = k + (size_t)j * kv_stride + (size_t)kvh * hd;
        const uint16_t *vr = v + (size_t)j * kv_stride + (size_t)kvh * hd;
        float d = 0.0f;
#pragma unroll
        for (int c = 0; c < SA_MAX_HD / 32; c++)
            if (c < per_lane && lane + 32 * c < hd) d += qv[c] * bf16_bits_to_f32(kr[lane + 32 * c]);
        const float p = expf(warp_sum(d) * scale - m);
        l += p;
#pragma unroll
        for (int c = 0; c < SA_MAX_HD / 32; c++)
            if (c < per_lane && lane + 32 * c < hd) acc[c] += p * bf16_bits_to_f32(vr[lane + 32 * c]);
    }
    if (lane == 0) warp_l_s[warp] = l;
#pragma unroll
    for (int c = 0; c < SA_MAX_HD / 32; c++)
        if (c < per_lane && lane + 32 * c < hd) warp_acc_s[warp][lane + 32 * c] = acc[c];
    __syncthreads();
    float lsum = 0.0f;
    for (int w = 0; w < SA_WARPS; w++) lsum += warp_l_s[w];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float a = 0.0f;
        for (int w = 0; w < SA_WARPS; w++) a += warp_acc_s[w][d];
        out[(size_t)tok * out_stride + (size_t)h * hd + d] = f32_to_bf16_bits(a / lsum);
    }
#undef SA_KEY
}

#endif
