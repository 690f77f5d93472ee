/* cp_async.cuh — asynchronous global -> shared copies (sm_80+ cp.async), as
 * three device functions: cp_async_16 issues one 16-byte copy (zero-filled
 * instead when the source row does not exist), cp_async_commit closes the
 * thread's current group of copies, cp_async_wait<N> waits until all but the
 * N most recent committed groups of this thread have landed.  A copy is
 * visible to its own thread after the wait, to the rest of the block only
 * after a __syncthreads that follows the wait.
 *
 * Alone in its header, like mma.cuh, so that the CPU emulator puts a model in
 * its place (tests/emu/cuda/shim/kernels/cp_async.cuh) that performs each
 * copy only at the wait that covers it: a read of the destination before the
 * wait sees the old bytes there, as a GPU may, and the tests catch it.
 *
 * PTX ISA "Data Movement and Conversion Instructions: cp.async": .cg caches
 * in L2 only (the tile is read once per block) and takes cp-size 16 only;
 * src-size 0 reads nothing and writes 16 zero bytes.  Every asm carries a
 * "memory" clobber so that the compiler moves no shared-memory access across
 * an issue, commit or wait. */
#ifndef ARMO_CP_ASYNC_CUH
#define ARMO_CP_ASYNC_CUH

#include <stdint.h>

/* dst: 16-byte aligned shared memory; src: 16-byte aligned global memory,
 * read only when valid (pass any mapped address otherwise). */
__device__ __forceinline__ void cp_async_16(void *dst, const void *src, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    const int src_size = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src),
                 "r"(src_size)
                 : "memory");
}

__device__ __forceinline__ void cp_async_commit(void) {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

template <int N> __device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#endif
