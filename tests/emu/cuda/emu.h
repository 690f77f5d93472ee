/* emu.h — the CPU execution model behind the CUDA emulator (tests/emu/cuda).
 *
 * A kernel launch runs its blocks one after the other; the threads of a block
 * are cooperative fibers (user-space stacks, one OS thread), each running the
 * kernel's own code until it meets a synchronisation point:
 *   - __syncthreads(): waits until every thread of the block that has not
 *     returned is waiting too (exited threads count as arrived, as on sm_70+);
 *     threads waiting at different __syncthreads (in divergent code: undefined
 *     behaviour by the Programming Guide, whatever a GPU happens to do) stop
 *     the run;
 *   - a warp collective (shuffle, vote, __syncwarp, mma.sync): the lane
 *     publishes its operands in its warp_slot and waits until every lane the
 *     collective's mask names has arrived at the same collective; then the
 *     collective's complete() computes every lane's result at once.
 * A collective whose mask names a lane that has returned, lanes of one warp
 * waiting at different collectives, or a block where nobody can move
 * (__syncthreads in divergent code) stop the run with the kernel, block and
 * threads named: on a GPU those are undefined behaviour or a hang.
 *
 * Schedules: between two synchronisation points the threads run in thread
 * order (forward) or in reverse, and blocks in grid order or in reverse; or
 * warp-serial: one warp runs through its own collectives until it waits at
 * __syncthreads before the next warp starts (one warp as far ahead of the
 * others as a GPU may let it run).  With ARMO_EMU_RACECHECK=1 every launch
 * runs three times from the same device memory — forward; reversed;
 * warp-serial, last warp first, blocks reversed — and the results must be
 * identical to the bit: a missing barrier, a shared-memory race or a read of
 * another block's stale shared memory shows up as a difference, named by
 * buffer and offset.  ARMO_EMU_SCHEDULE=reverse or warp-serial runs that
 * schedule alone, without the check;
 * ARMO_EMU_VERBOSE=1 prints each refused launch configuration.
 *
 * The shim headers (shim/cuda_runtime.h, shim/kernels/mma.cuh, cp_async.cuh,
 * ldmatrix.cuh) are the only
 * users of this interface besides the launches that translate_launches.py
 * writes in place of <<<...>>>. */
#ifndef ARMO_EMU_H
#define ARMO_EMU_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>
#include <vector_types.h>

#include <functional>
#include <type_traits>

namespace emu {

struct warp_slot;
/* Computes the results of one warp collective from the slots of the lanes in
 * its mask (slots[lane], NULL for lanes outside the mask). */
typedef void (*warp_complete_fn)(warp_slot *const slots[32], unsigned mask);

struct warp_slot {
    warp_complete_fn complete; /* identifies the collective */
    unsigned mask;             /* the lanes that must take part */
    const char *what;          /* its name, for messages */
    uint32_t value;            /* shuffle / vote operand */
    int arg, width;            /* shuffle lane argument and width */
    uint32_t result;
    uint32_t a[4], b[2];       /* mma.sync A, B fragments */
    float c[4], d[4];          /* mma.sync C in, D out */
    uint32_t row[4], r[4];     /* ldmatrix: the lane's 16-byte row in, its registers out */
};

/* Index, in the block, of the thread now running, and its lane. */
unsigned current_thread(void);

/* The calling lane's slot for the next collective; fill it, then call
 * warp_collective(), which returns once complete() has run. */
warp_slot &my_warp_slot(void);
void warp_collective(void);

/* __syncthreads() at file:line: every live thread of the block must wait at
 * the same one (a barrier in divergent code is reported, not counted) */
void block_barrier(const char *file, int line);

/* cp.async (shim/kernels/cp_async.cuh), per thread of the running block:
 * issue records a copy in the thread's open group, commit closes that group,
 * and async_copy_due hands back, one at a time and oldest first, the copies
 * of the thread's committed groups older than its `keep` newest, which the
 * shim's wait then performs: a copy lands only at the wait that covers it
 * (the latest moment the PTX ISA allows).  In the warp-serial schedule
 * instead, issue returns true and the shim performs the copy at once (the
 * earliest moment): a kernel that refills a buffer other warps still read
 * then differs from the forward schedule, and the race check reports it.
 * The scheduler calls async_copy_block_end once a block's threads have all
 * returned: a copy still pending then (never waited for) stops the run. */
struct async_copy {
    void *dst;
    const void *src;
    unsigned src_size; /* bytes read from src; the rest of the 16 are zeros */
};
bool async_copy_issue(const async_copy &c); /* true: perform it now */
void async_copy_commit(void);
bool async_copy_due(int keep, async_copy *out);
void async_copy_block_end(void);
/* true while the warp-serial schedule runs (scheduler.cpp) */
bool schedule_warp_serial(void);

/* Stops the run: prints "armo emu: <kernel> block (x,y,z) thread t: msg". */
[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One launch: validates the configuration as the CUDA runtime does
 * (cudaErrorInvalidConfiguration for a zero or oversized grid or block; the
 * error is what the next cudaGetLastError() returns), then runs body for every
 * thread of every block.  Dynamic shared memory is not modelled. */
typedef void (*kernel_body_fn)(void *ctx);
void run_launch(const char *kernel, const char *file, int line, dim3 grid, dim3 block,
                size_t dynamic_smem, cudaStream_t stream, kernel_body_fn body, void *ctx);

/* CUDA graphs, minimally (runtime.cpp): while a stream captures
 * (cudaStreamBeginCapture .. cudaStreamEndCapture), a launch or a
 * cublasLtMatmul on it is recorded instead of run; cudaGraphLaunch of the
 * instantiated graph runs the recorded operations in order.  A launch's
 * arguments are the values they had at capture: translate_launches.py's
 * body lambdas capture by value. */
bool stream_capturing(cudaStream_t stream);
void capture_record(cudaStream_t stream, std::function<void()> op);
/* cudaGraphLaunch calls so far (for tests) */
long graph_launches(void);

template <typename F>
static inline void launch(const char *kernel, const char *file, int line, F &&body, dim3 grid,
                          dim3 block, size_t dynamic_smem = 0, cudaStream_t stream = 0) {
    typedef typename std::decay<F>::type Body;
    if (stream_capturing(stream)) {
        Body copy = body;
        capture_record(stream, [=]() {
            Body b = copy;
            run_launch(kernel, file, line, grid, block, dynamic_smem, stream,
                       [](void *ctx) { (*static_cast<Body *>(ctx))(); }, (void *)&b);
        });
        return;
    }
    run_launch(kernel, file, line, grid, block, dynamic_smem, stream,
               [](void *ctx) { (*static_cast<F *>(ctx))(); }, (void *)&body);
}

/* Set by a launch whose configuration was refused; read and cleared by
 * cudaGetLastError (runtime.cpp). */
cudaError_t take_launch_error(void);
cudaError_t peek_launch_error(void);

/* runtime.cpp's view of a launch about to run on stream: checks its ordering
 * and applies ARMO_EMU_FAULT; false when the kernel must not run (a fault). */
bool before_launch(const char *kernel, cudaStream_t stream);

/* An observer of the block loop, for the shared-memory bank-conflict counter
 * (tests/emu/cuda/bank_conflicts.cpp); none is installed by default, and then
 * the scheduler does exactly what it does without one.  block_begin before a
 * block's threads start; warp_synced when every thread of the warp starting
 * at thread w0 (nlanes threads) waits at one synchronisation point (a
 * collective, __syncthreads) or has returned, so that the warp's memory
 * accesses since its previous such point are complete; block_end after the
 * last thread returned.  Installed before the launches it should see, from
 * the host thread that launches them. */
struct block_observer {
    void (*block_begin)(const char *kernel, int nthreads);
    void (*warp_synced)(int w0, int nlanes);
    void (*block_end)(void);
};
void set_block_observer(const block_observer *obs); /* NULL: none */
/* Index in the block of the thread now running, -1 when none does (the host
 * or the scheduler itself runs). */
int running_thread(void);

/* The device allocations of runtime.cpp, for the race check's snapshots:
 * calls fn(ptr, bytes) for each live cudaMalloc block. */
void for_each_device_block(void (*fn)(void *ptr, size_t bytes, void *ctx), void *ctx);

} // namespace emu

/* What the kernel code sees as threadIdx, blockIdx, blockDim, gridDim. */
extern thread_local uint3 emu_thread_idx;
extern thread_local uint3 emu_block_idx;
extern thread_local dim3 emu_block_dim;
extern thread_local dim3 emu_grid_dim;

#endif
