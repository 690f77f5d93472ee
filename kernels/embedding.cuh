/* embedding.cuh — device code: token embedding gather for packed token ids.
 *
 * out[i, :] = table[ids[i], :].  Pure copy, memory-bound: one block per token,
 * 16-byte vector copies when hidden allows (it does for every Llama), else
 * element by element.  Invalid ids give zero rows instead of reading out of
 * bounds: the host validates ids, the kernel must not fault on bad input. */
#ifndef ARMO_EMBEDDING_CUH
#define ARMO_EMBEDDING_CUH

#include "kernels/kernel_util.cuh"

__global__ void embed_vec_kernel(uint4 *out, const uint4 *table, const int32_t *ids,
                                 int hidden_vec, int vocab) {
    const int i = blockIdx.x;
    const int id = ids[i];
    uint4 *dst = out + (size_t)i * hidden_vec;
    if (id < 0 || id >= vocab) {
        for (int c = threadIdx.x; c < hidden_vec; c += blockDim.x) dst[c] = make_uint4(0, 0, 0, 0);
        return;
    }
    const uint4 *src = table + (size_t)id * hidden_vec;
    for (int c = threadIdx.x; c < hidden_vec; c += blockDim.x) dst[c] = src[c];
}

__global__ void embed_scalar_kernel(uint16_t *out, const uint16_t *table, const int32_t *ids,
                                    int hidden, int vocab) {
    const int i = blockIdx.x;
    const int id = ids[i];
    uint16_t *dst = out + (size_t)i * hidden;
    const int valid = id >= 0 && id < vocab;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x)
        dst[c] = valid ? table[(size_t)id * hidden + c] : (uint16_t)0;
}

#endif
