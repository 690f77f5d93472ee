/* cp_async.cuh (shim) — the CPU emulator's stand-in for kernels/cp_async.cuh,
 * found before it on the include path: cp.async.cg.shared.global with its
 * commit and wait groups, as modelled by tests/emu/cuda/async_copy.cpp — a
 * copy is recorded at issue and performed only at the cp_async_wait<N> that
 * covers it (all but the N newest committed groups of the thread), so that a
 * read of the destination before the wait sees what was there before; in the
 * warp-serial schedule at its issue instead (async_copy.cpp says why).  The
 * copies are performed here, in the kernel's translation unit, as one
 * 16-byte store each (zeros past src-size): the bank-conflict counter costs
 * them as the 16-byte shared stores they are; the source is read at the wait
 * (the kernels copy inputs that no launch modifies while it runs). */
#ifndef ARMO_CP_ASYNC_CUH
#define ARMO_CP_ASYNC_CUH

#include <stdint.h>
#include <string.h>

#include <vector_types.h>

#include "tests/emu/cuda/emu.h"

namespace emu_shim {
static inline void cp_async_land(const emu::async_copy &c) {
    uint4 val = make_uint4(0, 0, 0, 0);
    if (c.src_size != 0) memcpy(&val, c.src, c.src_size); /* global: not costed */
    *static_cast<uint4 *>(c.dst) = val;
}
} // namespace emu_shim

static inline void cp_async_16(void *dst, const void *src, bool valid) {
    emu::async_copy c;
    c.dst = dst;
    c.src = src;
    c.src_size = valid ? 16u : 0u;
    if (emu::async_copy_issue(c)) emu_shim::cp_async_land(c); /* warp-serial: at once */
}

static inline void cp_async_commit(void) { emu::async_copy_commit(); }

template <int N> static inline void cp_async_wait(void) {
    static_assert(N >= 0, "wait_group takes a count of groups");
    emu::async_copy c;
    while (emu::async_copy_due(N, &c)) emu_shim::cp_async_land(c);
}

#endif
