/* swiglu.cu — launcher of SwiGLU: the two-bf16-per-thread kernel when the
 * width and the pointers allow, else the scalar one (device code: swiglu.cuh). */
#include "kernels/armo_kernels.h"
#include "kernels/swiglu.cuh"

extern "C" cudaError_t armo_swiglu_bf16(uint16_t *out, const uint16_t *gate_up, int n, int inter,
                                        cudaStream_t stream) {
    if (n < 0 || inter <= 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    const int pairs = inter % 2 == 0 && ((uintptr_t)out & 3) == 0 && ((uintptr_t)gate_up & 3) == 0;
    const long long work = pairs ? (long long)n * (inter / 2) : (long long)n * inter;
    long long blocks = (work + 255) / 256;
    if (blocks > 65536) blocks = 65536;
    if (pairs)
        swiglu_pair_kernel<<<(unsigned)blocks, 256, 0, stream>>>((uint32_t *)out,
                                                                 (const uint32_t *)gate_up, n, inter / 2);
    else
        swiglu_scalar_kernel<<<(unsigned)blocks, 256, 0, stream>>>(out, gate_up, n, inter);
    return cudaGetLastError();
}
