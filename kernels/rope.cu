/* rope.cu — launcher of the in-place rotate-half RoPE on q and k (device
 * code: rope.cuh). */
#include "kernels/armo_kernels.h"
#include "kernels/rope.cuh"

extern "C" cudaError_t armo_rope_strided_bf16(uint16_t *q, int q_stride, uint16_t *k,
                                              int k_stride, int n, int nh, int nkv, int head_dim,
                                              const int32_t *pos, const float *inv_freq,
                                              cudaStream_t stream) {
    if (n < 0 || nh < 0 || nkv < 0 || head_dim <= 0 || head_dim % 2 != 0) return cudaErrorInvalidValue;
    if ((nkv > 0 && k == NULL) || (nh > 0 && q == NULL)) return cudaErrorInvalidValue;
    if ((nh > 0 && q_stride < nh * head_dim) || (nkv > 0 && k_stride < nkv * head_dim))
        return cudaErrorInvalidValue;
    if (n == 0 || nh + nkv == 0) return cudaSuccess;
    rope_kernel<<<n, 128, 0, stream>>>(q, k, nh, nkv, head_dim, q_stride, k_stride, pos, inv_freq);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_rope_bf16(uint16_t *q, uint16_t *k, int n, int nh, int nkv,
                                      int head_dim, const int32_t *pos, const float *inv_freq,
                                      cudaStream_t stream) {
    return armo_rope_strided_bf16(q, nh * head_dim, k, nkv * head_dim, n, nh, nkv, head_dim, pos,
                                  inv_freq, stream);
}
