/* attention.cu — launchers of the attention kernels (device code and the
 * description of both variants: attention.cuh).  armo_attention_bf16 picks
 * the flash kernel unless ARMO_ATTN=simple or the head_dim needs the simple
 * one. */
#include <stdlib.h>
#include <string.h>

#include "kernels/armo_kernels.h"
#include "kernels/attention.cuh"

static int check_common(int nseq, int n, int max_seqlen, int nh, int nkv, int hd) {
    return nseq >= 0 && n >= 0 && max_seqlen >= 0 && nh > 0 && nkv > 0 && nh % nkv == 0 &&
           hd > 0;
}

extern "C" cudaError_t armo_attention_simple_bf16(uint16_t *out, const uint16_t *q,
                                                  const uint16_t *k, const uint16_t *v,
                                                  const int32_t *cu_seqlens, int nseq, int n,
                                                  int max_seqlen, int nh, int nkv, int hd,
                                                  cudaStream_t stream) {
    if (!check_common(nseq, n, max_seqlen, nh, nkv, hd) || hd > SA_MAX_HD ||
        nh > 65535)
        return cudaErrorInvalidValue;
    if (n == 0 || nseq == 0) return cudaSuccess;
    dim3 grid((unsigned)n, (unsigned)nh);
    simple_attn_kernel<<<grid, SA_WARPS * 32, 0, stream>>>(out, q, k, v, cu_seqlens, nseq, nh, nkv,
                                                           hd, 1.0f / sqrtf((float)hd));
    return cudaGetLastError();
}

extern "C" cudaError_t armo_attention_flash_bf16(uint16_t *out, const uint16_t *q,
                                                 const uint16_t *k, const uint16_t *v,
                                                 const int32_t *cu_seqlens, int nseq, int n,
                                                 int max_seqlen, int nh, int nkv, int hd,
                                                 cudaStream_t stream) {
    if (!check_common(nseq, n, max_seqlen, nh, nkv, hd) || !armo_attention_flash_supports(hd) ||
        nh > 65535)
        return cudaErrorInvalidValue;
    if ((((uintptr_t)out | (uintptr_t)q | (uintptr_t)k | (uintptr_t)v) & 15) != 0)
        return cudaErrorInvalidValue; /* 16-byte vector loads / 4-byte stores */
    if (n == 0 || nseq == 0) return cudaSuccess;
    dim3 grid(armo_ceil_div(n, FA_BM), (unsigned)nh);
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)hd);
    switch (hd) {
    case 128:
        flash_attn_kernel<128><<<grid, FA_THREADS, 0, stream>>>(out, q, k, v, cu_seqlens, nseq, n,
                                                               nh, nkv, scale_log2);
        break;
    case 64:
        flash_attn_kernel<64><<<grid, FA_THREADS, 0, stream>>>(out, q, k, v, cu_seqlens, nseq, n,
                                                              nh, nkv, scale_log2);
        break;
    case 32:
        flash_attn_kernel<32><<<grid, FA_THREADS, 0, stream>>>(out, q, k, v, cu_seqlens, nseq, n,
                                                              nh, nkv, scale_log2);
        break;
    default: /* 16 */
        flash_attn_kernel<16><<<grid, FA_THREADS, 0, stream>>>(out, q, k, v, cu_seqlens, nseq, n,
                                                              nh, nkv, scale_log2);
        break;
    }
    return cudaGetLastError();
}

extern "C" int armo_attention_flash_supports(int hd) {
    return hd == 16 || hd == 32 || hd == 64 || hd == 128;
}

extern "C" int armo_attention_use_simple(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *env = getenv("ARMO_ATTN");
        cached = env && strcmp(env, "simple") == 0;
    }
    return cached;
}

extern "C" cudaError_t armo_attention_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                           const uint16_t *v, const int32_t *cu_seqlens, int nseq,
                                           int n, int max_seqlen, int nh, int nkv, int hd,
                                           cudaStream_t stream) {
    if (armo_attention_use_simple() || !armo_attention_flash_supports(hd))
        return armo_attention_simple_bf16(out, q, k, v, cu_seqlens, nseq, n, max_seqlen, nh, nkv,
                                          hd, stream);
    return armo_attention_flash_bf16(out, q, k, v, cu_seqlens, nseq, n, max_seqlen, nh, nkv, hd,
                                     stream);
}
