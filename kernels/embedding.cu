/* embedding.cu — launcher of the embedding gather: the 16-byte vector kernel
 * when hidden and the pointers allow, else the scalar one (device code:
 * embedding.cuh). */
#include "kernels/armo_kernels.h"
#include "kernels/embedding.cuh"

extern "C" cudaError_t armo_embed_bf16(uint16_t *out, const uint16_t *table, const int32_t *ids,
                                       int n, int hidden, int vocab, cudaStream_t stream) {
    if (n < 0 || hidden <= 0 || vocab <= 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    const int aligned = hidden % 8 == 0 && ((uintptr_t)out & 15) == 0 && ((uintptr_t)table & 15) == 0;
    if (aligned)
        embed_vec_kernel<<<n, 128, 0, stream>>>((uint4 *)out, (const uint4 *)table, ids, hidden / 8,
                                                vocab);
    else
        embed_scalar_kernel<<<n, 256, 0, stream>>>(out, table, ids, hidden, vocab);
    return cudaGetLastError();
}
