/* attention.cu — launchers of the attention kernels (device code and the
 * description of the flash and simple variants: attention.cuh; of the
 * pipelined one: attention_pipelined.cuh).  armo_attention_bf16 picks the
 * flash kernel unless ARMO_ATTN=simple / pipelined or the head_dim needs the
 * simple one. */
#include <stdlib.h>
#include <string.h>

#include "kernels/armo_kernels.h"
#include "kernels/attention.cuh"
#include "kernels/attention_pipelined.cuh"

static int check_common(int nseq, int n, int max_seqlen, int nh, int nkv, int hd) {
    return nseq >= 0 && n >= 0 && max_seqlen >= 0 && nh > 0 && nkv > 0 && nh % nkv == 0 &&
           hd > 0;
}

static int check_args(const armo_attn_args *a) {
    return a && check_common(a->nseq, a->n, a->max_seqlen, a->nh, a->nkv, a->hd) &&
           a->nh <= 65535 && a->q_stride >= a->nh * a->hd && a->kv_stride >= a->nkv * a->hd;
}

static cudaError_t simple_launch(const armo_attn_args *args, cudaStream_t stream) {
    if (!check_args(args) || args->hd > SA_MAX_HD) return cudaErrorInvalidValue;
    const armo_attn_args a = *args; /* by value: a recorded launch keeps it */
    if (a.n == 0 || a.nseq == 0) return cudaSuccess;
    dim3 grid((unsigned)a.n, (unsigned)a.nh);
    simple_attn_kernel<<<grid, SA_WARPS * 32, 0, stream>>>(
        a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of, a.nseq,
        a.nh, a.nkv, a.hd, 1.0f / sqrtf((float)a.hd));
    return cudaGetLastError();
}

/* the flash and pipelined kernels' rules: their head dims, 16-byte vector
 * loads (cp.async: 16-byte aligned sources), 4-byte stores */
static int tiled_args_ok(const armo_attn_args *a) {
    return check_args(a) && armo_attention_flash_supports(a->hd) &&
           (((uintptr_t)a->out | (uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v) & 15) == 0 &&
           a->q_stride % 8 == 0 && a->kv_stride % 8 == 0;
}

static cudaError_t flash_launch(const armo_attn_args *args, cudaStream_t stream) {
    if (!tiled_args_ok(args)) return cudaErrorInvalidValue;
    const armo_attn_args a = *args; /* by value: a recorded launch keeps it */
    if (a.n == 0 || a.nseq == 0) return cudaSuccess;
    dim3 grid(armo_ceil_div(a.n, FA_BM), (unsigned)a.nh);
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)a.hd);
    /* written out per head_dim: the emulator names a launch by its text */
    switch (a.hd) {
    case 128:
        flash_attn_kernel<128><<<grid, FA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    case 64:
        flash_attn_kernel<64><<<grid, FA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    case 32:
        flash_attn_kernel<32><<<grid, FA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    default: /* 16 */
        flash_attn_kernel<16><<<grid, FA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    }
    return cudaGetLastError();
}

static cudaError_t pipelined_launch(const armo_attn_args *args, cudaStream_t stream) {
    if (!tiled_args_ok(args)) return cudaErrorInvalidValue;
    const armo_attn_args a = *args; /* by value: a recorded launch keeps it */
    if (a.n == 0 || a.nseq == 0) return cudaSuccess;
    dim3 grid(armo_ceil_div(a.n, PA_BM), (unsigned)a.nh);
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)a.hd);
    /* written out per head_dim: the emulator names a launch by its text */
    switch (a.hd) {
    case 128:
        pipelined_attn_kernel<128><<<grid, PA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    case 64:
        pipelined_attn_kernel<64><<<grid, PA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    case 32:
        pipelined_attn_kernel<32><<<grid, PA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    default: /* 16 */
        pipelined_attn_kernel<16><<<grid, PA_THREADS, 0, stream>>>(
            a.out, a.q, a.k, a.v, a.q_stride, a.kv_stride, a.cu_seqlens, a.prefix_of,
            a.nseq, a.n, a.nh, a.nkv, scale_log2);
        break;
    }
    return cudaGetLastError();
}

/* the dense layout of the plain launchers */
static armo_attn_args dense_args(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                 const uint16_t *v, const int32_t *cu_seqlens, int nseq, int n,
                                 int max_seqlen, int nh, int nkv, int hd) {
    armo_attn_args a;
    a.out = out, a.q = q, a.k = k, a.v = v;
    a.q_stride = nh * hd, a.kv_stride = nkv * hd;
    a.cu_seqlens = cu_seqlens, a.prefix_of = NULL;
    a.nseq = nseq, a.n = n, a.max_seqlen = max_seqlen, a.nh = nh, a.nkv = nkv, a.hd = hd;
    return a;
}

extern "C" cudaError_t armo_attention_simple_bf16(uint16_t *out, const uint16_t *q,
                                                  const uint16_t *k, const uint16_t *v,
                                                  const int32_t *cu_seqlens, int nseq, int n,
                                                  int max_seqlen, int nh, int nkv, int hd,
                                                  cudaStream_t stream) {
    const armo_attn_args a = dense_args(out, q, k, v, cu_seqlens, nseq, n, max_seqlen, nh, nkv, hd);
    return simple_launch(&a, stream);
}

extern "C" cudaError_t armo_attention_flash_bf16(uint16_t *out, const uint16_t *q,
                                                 const uint16_t *k, const uint16_t *v,
                                                 const int32_t *cu_seqlens, int nseq, int n,
                                                 int max_seqlen, int nh, int nkv, int hd,
                                                 cudaStream_t stream) {
    const armo_attn_args a = dense_args(out, q, k, v, cu_seqlens, nseq, n, max_seqlen, nh, nkv, hd);
    return flash_launch(&a, stream);
}

extern "C" cudaError_t armo_attention_pipelined_bf16(uint16_t *out, const uint16_t *q,
                                                     const uint16_t *k, const uint16_t *v,
                                                     const int32_t *cu_seqlens, int nseq, int n,
                                                     int max_seqlen, int nh, int nkv, int hd,
                                                     cudaStream_t stream) {
    const armo_attn_args a = dense_args(out, q, k, v, cu_seqlens, nseq, n, max_seqlen, nh, nkv, hd);
    return pipelined_launch(&a, stream);
}

extern "C" int armo_attention_flash_supports(int hd) {
    return hd == 16 || hd == 32 || hd == 64 || hd == 128;
}

extern "C" int armo_attention_env_variant(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *env = getenv("ARMO_ATTN");
        cached = !env                              ? ARMO_ATTN_FLASH
                 : strcmp(env, "simple") == 0    ? ARMO_ATTN_SIMPLE
                 : strcmp(env, "pipelined") == 0 ? ARMO_ATTN_PIPELINED
                                                 : ARMO_ATTN_FLASH;
    }
    return cached;
}

extern "C" int armo_attention_use_simple(void) {
    return armo_attention_env_variant() == ARMO_ATTN_SIMPLE;
}

extern "C" cudaError_t armo_attention_ex_bf16(const armo_attn_args *a, int variant,
                                              cudaStream_t stream) {
    if (!a) return cudaErrorInvalidValue;
    switch (variant) {
    case ARMO_ATTN_FLASH:
        return flash_launch(a, stream);
    case ARMO_ATTN_SIMPLE:
        return simple_launch(a, stream);
    case ARMO_ATTN_PIPELINED:
        return pipelined_launch(a, stream);
    case ARMO_ATTN_AUTO:
        if (armo_attention_use_simple() || !armo_attention_flash_supports(a->hd))
            return simple_launch(a, stream);
        if (armo_attention_env_variant() == ARMO_ATTN_PIPELINED)
            return pipelined_launch(a, stream);
        return flash_launch(a, stream);
    default:
        return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t armo_attention_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                           const uint16_t *v, const int32_t *cu_seqlens, int nseq,
                                           int n, int max_seqlen, int nh, int nkv, int hd,
                                           cudaStream_t stream) {
    const armo_attn_args a = dense_args(out, q, k, v, cu_seqlens, nseq, n, max_seqlen, nh, nkv, hd);
    return armo_attention_ex_bf16(&a, ARMO_ATTN_AUTO, stream);
}
