// test_scheduler.cpp — the emulator's own execution model (emu.h) against what
// the CUDA C Programming Guide says device code sees, on small kernels written
// here, so that a kernel added later that uses more of the device API than
// today's kernels (shfl_up/down/idx with widths, votes, atomics, 2-D blocks)
// meets a checked model:
//   - thread / block indices and dims of a 3-D launch; invalid configurations
//     give cudaErrorInvalidConfiguration at cudaGetLastError, which clears it;
//   - __syncthreads orders shared-memory writes and reads; threads that have
//     returned count as arrived;
//   - the Guide's shuffle idioms: a shfl_down tree sum leaves the total in
//     lane 0, a shfl_up scan gives inclusive prefix sums (segments of width
//     restart), shfl_sync broadcasts, shfl_xor butterflies, ballot / any / all;
//   - atomics from every thread of every block add up;
//   - cp.async (shim/kernels/cp_async.cuh, async_copy.cpp): a copy lands at
//     the wait_group that covers it (all but the N newest groups), not
//     before; src-size 0 fills zeros; in the warp-serial schedule it lands
//     at its issue; a double-buffered loop reads the right tiles;
//   - ldmatrix .x4.trans (shim/kernels/ldmatrix.cuh) hands out the B
//     fragments of mma.m16n8k16 (PTX ISA: k 2t, 2t+1 and n g of lane 4g+t)
//     of a row-major [k][n] tile;
//   - the failures the scheduler must stop with (checked in a child process,
//     by exit status and message): a barrier in divergent code, a deadlock, a
//     shuffle whose mask names a lane that has returned, a shared-memory
//     race that ARMO_EMU_RACECHECK=1 must name, a kernel on a
//     non-blocking stream not ordered after a pageable cudaMemcpy, cp.async
//     copies never waited for, and a double-buffered cp.async loop without
//     its barrier before the refill (the race check's warp-serial schedule)
//     or reading tiles before their wait.
// Exit 0 when every check holds; one line per check.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_runtime.h" // the shim (tests/emu/cuda/shim, first on the path)
#include "kernels/cp_async.cuh" // the shims of these two as well
#include "kernels/ldmatrix.cuh"

static int g_failed, g_checks;

static void check(bool ok, const char *what) {
    g_checks++;
    if (!ok) g_failed++;
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

// ---- kernels ----------------------------------------------------------------
__global__ void index_kernel(int *out) {
    const unsigned b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    out[b * blockDim.x * blockDim.y * blockDim.z + t] = (int)(b * 1000 + t);
}

// cp.async groups: per thread a copy into ta (group 1), one into tb (group 2),
// what the thread sees of them before and after each wait, then a zero fill
__global__ void cp_async_kernel(const uint4 *a, const uint4 *b, uint4 *seen) {
    __shared__ __align__(16) uint4 ta[32], tb[32];
    const int t = threadIdx.x;
    ta[t] = make_uint4(7, 7, 7, 7);
    tb[t] = make_uint4(7, 7, 7, 7);
    cp_async_16(&ta[t], &a[t], true);
    cp_async_commit();
    cp_async_16(&tb[t], &b[t], true);
    cp_async_commit();
    seen[t * 5 + 0] = ta[t]; // before any wait
    cp_async_wait<1>();
    seen[t * 5 + 1] = ta[t]; // group 1 has landed
    seen[t * 5 + 2] = tb[t]; // group 2 not yet
    cp_async_16(&ta[t], &a[t], false);
    cp_async_commit();
    cp_async_wait<0>();
    seen[t * 5 + 3] = tb[t];
    seen[t * 5 + 4] = ta[t]; // zeros
}

__global__ void cp_async_unwaited_kernel(const uint4 *a) {
    __shared__ __align__(16) uint4 ta[32];
    cp_async_16(&ta[threadIdx.x], &a[threadIdx.x], true);
    cp_async_commit();
}

// A double-buffered loop as the pipelined attention kernel has it: 2 warps,
// tiles of 256 ints (16 bytes per thread), tile i+1 issued before tile i is
// read; each thread sums words of the other warp's chunk.  mode 0: right;
// 1: no barrier before the refill; 2: no wait before the reads (one wait at
// the end, so that no copy is left pending).
__global__ void pipeline_kernel(const int *src, int ntiles, int mode, int *out) {
    __shared__ __align__(16) int buf[2][256];
    const int t = threadIdx.x;
    int sum = 0;
    cp_async_16(&buf[0][t * 4], src + t * 4, true);
    cp_async_commit();
    for (int i = 0; i < ntiles; i++) {
        const int st = i & 1;
        if (i + 1 < ntiles) cp_async_16(&buf[st ^ 1][t * 4], src + (i + 1) * 256 + t * 4, true);
        cp_async_commit();
        if (mode != 2) cp_async_wait<1>();
        __syncthreads();
        sum += buf[st][(63 - t) * 4] + buf[st][(63 - t) * 4 + 3];
        if (mode != 1) __syncthreads();
    }
    cp_async_wait<0>();
    out[t] = sum;
}

// ldmatrix .x4.trans of a 16 x 16 row-major [k][n] tile (rows padded to 24)
__global__ void ldmatrix_kernel(uint32_t *out) {
    __shared__ __align__(16) uint16_t m[16][24];
    const int l = threadIdx.x;
    for (int i = l; i < 16 * 16; i += 32) m[i / 16][i % 16] = (uint16_t)((i / 16) * 100 + i % 16);
    __syncthreads();
    uint32_t r[4];
    ldmatrix_x4_trans(r, &m[(l & 8) + (l & 7)][(l >> 4) * 8]);
    for (int i = 0; i < 4; i++) out[l * 4 + i] = r[i];
}

__global__ void reverse_kernel(int *data, int n) { // block-wide reverse through shared memory
    __shared__ int tile[256];
    const int t = threadIdx.x;
    if (t < n) tile[t] = data[t];
    __syncthreads();
    if (t < n) data[t] = tile[n - 1 - t];
}

__global__ void early_exit_kernel(int *data) { // half the threads return before the barrier
    __shared__ int tile[64];
    if (threadIdx.x >= 32) return;
    tile[threadIdx.x] = (int)threadIdx.x + 1;
    __syncthreads();
    data[threadIdx.x] = tile[31 - threadIdx.x];
}

__global__ void shuffle_kernel(int *sum_down, int *scan_up, int *scan8, int *bcast, int *xor_sum,
                               unsigned *ballot, int *any_all) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int v = lane + 1;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) sum_down[w] = v;
    int s = lane + 1;
    for (int off = 1; off < 32; off <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, s, off);
        if (lane >= off) s += y;
    }
    scan_up[threadIdx.x] = s;
    int s8 = 1;
    for (int off = 1; off < 8; off <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, s8, off, 8);
        if ((lane & 7) >= off) s8 += y;
    }
    scan8[threadIdx.x] = s8;
    bcast[threadIdx.x] = __shfl_sync(0xffffffffu, lane * 10, 5);
    float f = (float)lane;
    for (int off = 1; off < 32; off <<= 1) f += __shfl_xor_sync(0xffffffffu, f, off);
    xor_sum[threadIdx.x] = (int)f;
    const unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);
    if (lane == 0) ballot[w] = b;
    any_all[threadIdx.x] = __any_sync(0xffffffffu, lane == 7) * 2 + __all_sync(0xffffffffu, lane < 31);
}

// raw results with widths: up / down keep the caller's value past its
// segment's edge, idx wraps inside the segment, xor may read an earlier
// segment and keeps the caller's value past a later one
__global__ void width_kernel(int *up, int *down, int *idx, int *xr) {
    const int lane = threadIdx.x & 31;
    up[threadIdx.x] = __shfl_up_sync(0xffffffffu, lane * 10, 3, 8);
    down[threadIdx.x] = __shfl_down_sync(0xffffffffu, lane * 10, 3, 8);
    idx[threadIdx.x] = __shfl_sync(0xffffffffu, lane * 10, 9, 8);
    xr[threadIdx.x] = __shfl_xor_sync(0xffffffffu, lane * 10, 8, 8);
}

__global__ void atomic_kernel(int *counter, float *fsum) {
    atomicAdd(counter, 1);
    atomicAdd(fsum, 0.5f);
}

__global__ void deadlock_kernel(int *data) {
    if (threadIdx.x < 16) __syncthreads(); // the other 16 wait at the second one
    data[threadIdx.x] = 1;
    __syncthreads();
}

__global__ void stuck_kernel(int *data) { // half a warp at a shuffle, half at a barrier
    if (threadIdx.x < 16)
        data[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 16);
    else
        __syncthreads();
}

__global__ void exited_lane_kernel(int *data) {
    if (threadIdx.x == 3) return;
    data[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

__global__ void racy_kernel(int *data) { // reads a neighbour's shared slot without a barrier
    __shared__ int tile[64];
    tile[threadIdx.x] = (int)threadIdx.x * 3;
    data[threadIdx.x] = tile[(threadIdx.x + 1) % 64];
}

// ---- helpers ----------------------------------------------------------------
template <typename T> static T *dev(size_t n) {
    void *p = nullptr;
    if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) abort();
    return (T *)p;
}

// Runs fn in a child process with the given environment variable set; returns
// its stderr and sets *status to its wait status.
static void in_child(void (*fn)(void), const char *env, char *err, size_t cap, int *status) {
    int pipefd[2];
    if (pipe(pipefd) != 0) abort();
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        if (env) putenv((char *)env);
        fn();
        _exit(0);
    }
    close(pipefd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(pipefd[0], err + got, cap - 1 - got)) > 0) got += (size_t)r;
    err[got] = 0;
    close(pipefd[0]);
    waitpid(pid, status, 0);
}

static void run_deadlock(void) {
    int *d = dev<int>(32);
    emu::launch("deadlock_kernel", __FILE__, __LINE__, [&] { deadlock_kernel(d); }, dim3(1), dim3(32));
}
static void run_stuck(void) {
    int *d = dev<int>(32);
    emu::launch("stuck_kernel", __FILE__, __LINE__, [&] { stuck_kernel(d); }, dim3(1), dim3(32));
}
static void run_exited_lane(void) {
    int *d = dev<int>(32);
    emu::launch("exited_lane_kernel", __FILE__, __LINE__, [&] { exited_lane_kernel(d); }, dim3(1),
                dim3(32));
}
static void run_racy(void) {
    int *d = dev<int>(64);
    emu::launch("racy_kernel", __FILE__, __LINE__, [&] { racy_kernel(d); }, dim3(1), dim3(64));
}

static void run_cp_async_unwaited(void) {
    uint4 *a = dev<uint4>(32);
    emu::launch("cp_async_unwaited_kernel", __FILE__, __LINE__,
                [&] { cp_async_unwaited_kernel(a); }, dim3(1), dim3(32));
}

// the double-buffered loop over 5 tiles; true when every thread's sum is right
static bool run_pipeline(int mode) {
    const int ntiles = 5;
    int *src = dev<int>(ntiles * 256), *out = dev<int>(64);
    for (int i = 0; i < ntiles * 256; i++) src[i] = i * 7 + 1;
    emu::launch("pipeline_kernel", __FILE__, __LINE__,
                [&] { pipeline_kernel(src, ntiles, mode, out); }, dim3(1), dim3(64));
    bool ok = true;
    for (int t = 0; t < 64; t++) {
        int want = 0;
        for (int i = 0; i < ntiles; i++)
            want += src[i * 256 + (63 - t) * 4] + src[i * 256 + (63 - t) * 4 + 3];
        ok &= out[t] == want;
    }
    cudaFree(src);
    cudaFree(out);
    return ok;
}
static void run_pipeline_no_refill_barrier(void) { run_pipeline(1); }
static void run_pipeline_ok(void) {
    if (!run_pipeline(0)) _exit(3);
}

// a pageable host -> device cudaMemcpy (legacy stream) and then, with or
// without a device sync in between, a kernel on a non-blocking stream
static void legacy_copy_then_launch(bool sync) {
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    int host[64];
    for (int i = 0; i < 64; i++) host[i] = i;
    int *d = dev<int>(64);
    cudaMemcpy(d, host, sizeof host, cudaMemcpyHostToDevice);
    if (sync) cudaDeviceSynchronize();
    emu::launch("reverse_kernel", __FILE__, __LINE__, [&] { reverse_kernel(d, 64); }, dim3(1),
                dim3(64), 0, st);
    cudaFree(d);
    cudaStreamDestroy(st);
}
static void run_unordered_copy(void) { legacy_copy_then_launch(false); }
static void run_ordered_copy(void) { legacy_copy_then_launch(true); }

static void expect_failure(void (*fn)(void), const char *env, const char *needle, const char *what) {
    char err[4096];
    int status = 0;
    in_child(fn, env, err, sizeof err, &status);
    const bool died = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check(died && strstr(err, needle) != nullptr, what);
    if (!died || !strstr(err, needle)) fprintf(stderr, "  child stderr: %s\n", err);
}

int main(void) {
    // indices of a 3-D launch
    {
        const dim3 grid(3, 2, 2), block(4, 2, 3);
        const int n = 12 * 24;
        int *d = dev<int>(n);
        emu::launch("index_kernel", __FILE__, __LINE__, [&] { index_kernel(d); }, grid, block);
        bool ok = cudaGetLastError() == cudaSuccess;
        for (int i = 0; i < n; i++) ok &= d[i] == (i / 24) * 1000 + i % 24;
        check(ok, "3-D grid and block: every (block, thread) index written once, in place");
        cudaFree(d);
    }
    // invalid configurations: sticky until read, then cleared
    {
        int *d = dev<int>(1);
        emu::launch("index_kernel", __FILE__, __LINE__, [&] { index_kernel(d); }, dim3(0), dim3(1));
        const cudaError_t e1 = cudaGetLastError(), e2 = cudaGetLastError();
        emu::launch("index_kernel", __FILE__, __LINE__, [&] { index_kernel(d); }, dim3(1), dim3(1025));
        const cudaError_t e3 = cudaGetLastError();
        emu::launch("index_kernel", __FILE__, __LINE__, [&] { index_kernel(d); }, dim3(1, 65536),
                    dim3(1));
        const cudaError_t e4 = cudaGetLastError();
        check(e1 == cudaErrorInvalidConfiguration && e2 == cudaSuccess &&
                  e3 == cudaErrorInvalidConfiguration && e4 == cudaErrorInvalidConfiguration,
              "grid 0, block 1025 and grid.y 65536 refused; the error clears once read");
        cudaFree(d);
    }
    // barriers
    {
        int *d = dev<int>(200);
        for (int i = 0; i < 200; i++) d[i] = i;
        emu::launch("reverse_kernel", __FILE__, __LINE__, [&] { reverse_kernel(d, 200); }, dim3(1),
                    dim3(256));
        bool ok = true;
        for (int i = 0; i < 200; i++) ok &= d[i] == 199 - i;
        check(ok, "__syncthreads orders a block-wide reverse through shared memory");
        int *e = dev<int>(32);
        emu::launch("early_exit_kernel", __FILE__, __LINE__, [&] { early_exit_kernel(e); }, dim3(1),
                    dim3(64));
        ok = true;
        for (int i = 0; i < 32; i++) ok &= e[i] == 32 - i;
        check(ok, "threads that returned count as arrived at __syncthreads");
        cudaFree(d);
        cudaFree(e);
    }
    // shuffles and votes, two warps
    {
        int *sum = dev<int>(2), *scan = dev<int>(64), *scan8 = dev<int>(64), *bc = dev<int>(64),
            *xs = dev<int>(64), *aa = dev<int>(64);
        unsigned *bal = dev<unsigned>(2);
        emu::launch("shuffle_kernel", __FILE__, __LINE__,
                    [&] { shuffle_kernel(sum, scan, scan8, bc, xs, bal, aa); }, dim3(1), dim3(64));
        check(sum[0] == 528 && sum[1] == 528, "shfl_down tree sum of 1..32 is 528 in lane 0");
        bool ok = true, ok8 = true, okb = true, okx = true, oka = true;
        for (int t = 0; t < 64; t++) {
            const int lane = t & 31;
            ok &= scan[t] == (lane + 1) * (lane + 2) / 2;
            ok8 &= scan8[t] == (lane & 7) + 1;
            okb &= bc[t] == 50;
            okx &= xs[t] == 496;
            oka &= aa[t] == 2; // any(lane == 7) and not all(lane < 31)
        }
        check(ok, "shfl_up inclusive scan gives prefix sums");
        check(ok8, "shfl_up with width 8 restarts at each 8-lane segment");
        check(okb, "shfl_sync broadcasts lane 5's value");
        check(okx, "shfl_xor butterfly: every lane holds the sum 0..31 = 496");
        unsigned want = 0;
        for (int l = 0; l < 32; l += 3) want |= 1u << l;
        check(bal[0] == want && bal[1] == want && oka, "ballot of lane % 3 == 0; any and all");
        cudaFree(sum); cudaFree(scan); cudaFree(scan8); cudaFree(bc); cudaFree(xs); cudaFree(aa);
        cudaFree(bal);
    }
    // raw shuffles with a width of 8
    {
        int *up = dev<int>(32), *down = dev<int>(32), *idx = dev<int>(32), *xr = dev<int>(32);
        emu::launch("width_kernel", __FILE__, __LINE__, [&] { width_kernel(up, down, idx, xr); },
                    dim3(1), dim3(32));
        bool ok = true;
        for (int l = 0; l < 32; l++) {
            ok &= up[l] == ((l & 7) >= 3 ? l - 3 : l) * 10;
            ok &= down[l] == ((l & 7) + 3 < 8 ? l + 3 : l) * 10;
            ok &= idx[l] == ((l & ~7) + 1) * 10;
            ok &= xr[l] == ((l & 8) ? l - 8 : l) * 10; /* an earlier segment: read; later: own */
        }
        check(ok, "width 8: shfl_up/down keep their own value past the segment edge, shfl_sync "
                  "wraps inside it, shfl_xor reads an earlier segment and keeps its own past a "
                  "later one");
        cudaFree(up); cudaFree(down); cudaFree(idx); cudaFree(xr);
    }
    // atomics
    {
        int *c = dev<int>(1);
        float *f = dev<float>(1);
        *c = 0;
        *f = 0.0f;
        emu::launch("atomic_kernel", __FILE__, __LINE__, [&] { atomic_kernel(c, f); }, dim3(5),
                    dim3(96));
        check(*c == 480 && *f == 240.0f, "atomicAdd from 5 blocks x 96 threads adds up");
        cudaFree(c);
        cudaFree(f);
    }
    // cp.async: when copies land
    {
        uint4 *a = dev<uint4>(32), *b = dev<uint4>(32), *seen = dev<uint4>(32 * 5);
        for (int t = 0; t < 32; t++) {
            a[t] = make_uint4(t, t + 1, t + 2, t + 3);
            b[t] = make_uint4(100 + t, 0, 0, 100 - t);
        }
        auto same = [](uint4 x, uint4 y) {
            return x.x == y.x && x.y == y.y && x.z == y.z && x.w == y.w;
        };
        const uint4 old = make_uint4(7, 7, 7, 7), zero = make_uint4(0, 0, 0, 0);
        emu::launch("cp_async_kernel", __FILE__, __LINE__, [&] { cp_async_kernel(a, b, seen); },
                    dim3(1), dim3(32));
        bool before = true, w1 = true, w0 = true;
        for (int t = 0; t < 32; t++) {
            before &= same(seen[t * 5 + 0], old);
            w1 &= same(seen[t * 5 + 1], a[t]) && same(seen[t * 5 + 2], old);
            w0 &= same(seen[t * 5 + 3], b[t]) && same(seen[t * 5 + 4], zero);
        }
        check(before, "cp.async: the destination holds its old bytes until a wait covers the copy");
        check(w1, "cp.async.wait_group 1 lands every group but the newest");
        check(w0, "cp.async.wait_group 0 lands the rest; src-size 0 writes 16 zero bytes");
        setenv("ARMO_EMU_SCHEDULE", "warp-serial", 1);
        emu::launch("cp_async_kernel", __FILE__, __LINE__, [&] { cp_async_kernel(a, b, seen); },
                    dim3(1), dim3(32));
        unsetenv("ARMO_EMU_SCHEDULE");
        bool eager = true;
        for (int t = 0; t < 32; t++)
            eager &= same(seen[t * 5 + 0], a[t]) && same(seen[t * 5 + 2], b[t]);
        check(eager, "cp.async in the warp-serial schedule: a copy lands at its issue");
        cudaFree(a); cudaFree(b); cudaFree(seen);
        check(run_pipeline(0), "a double-buffered cp.async loop reads every tile right");
        check(!run_pipeline(2), "the same loop reading each tile before its wait reads stale tiles");
        char err[4096];
        int status = 0;
        in_child(run_pipeline_ok, "ARMO_EMU_RACECHECK=1", err, sizeof err, &status);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the double-buffered loop passes the race check");
    }
    // ldmatrix .x4.trans: lane 4g + t, register i holds k = 2t, 2t+1 (+8 for
    // odd i) at n = g (+8 for i >= 2), k in the low half
    {
        uint32_t *out = dev<uint32_t>(32 * 4);
        emu::launch("ldmatrix_kernel", __FILE__, __LINE__, [&] { ldmatrix_kernel(out); }, dim3(1),
                    dim3(32));
        bool ok = true;
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < 4; i++) {
                const int k = (i & 1) * 8 + 2 * (l & 3), nn = (i >> 1) * 8 + (l >> 2);
                ok &= out[l * 4 + i] == ((uint32_t)(k * 100 + nn) | (uint32_t)((k + 1) * 100 + nn) << 16);
            }
        check(ok, "ldmatrix.x4.trans gives the mma.m16n8k16 B fragments of a row-major tile");
        cudaFree(out);
    }
    // what the scheduler must stop
    expect_failure(run_deadlock, nullptr, "divergent __syncthreads",
                   "a barrier in divergent code is refused");
    expect_failure(run_stuck, nullptr, "deadlock",
                   "half a warp at a shuffle and half at a barrier is a deadlock");
    expect_failure(run_exited_lane, nullptr, "has returned",
                   "a shuffle naming a returned lane is refused");
    expect_failure(run_racy, "ARMO_EMU_RACECHECK=1", "race:",
                   "a read of a neighbour's shared slot without a barrier is a race");
    expect_failure(run_unordered_copy, nullptr, "legacy stream",
                   "a kernel on a non-blocking stream after an unsynchronised pageable cudaMemcpy "
                   "is reported");
    expect_failure(run_cp_async_unwaited, nullptr, "never waited for",
                   "cp.async copies still pending at the end of the block are reported");
    expect_failure(run_pipeline_no_refill_barrier, "ARMO_EMU_RACECHECK=1", "race:",
                   "a cp.async refill of a buffer other warps may still read is a race");
    {
        char err[4096];
        int status = 0;
        in_child(run_ordered_copy, nullptr, err, sizeof err, &status);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the same with cudaDeviceSynchronize in between runs");
    }
    printf("emu_scheduler: %d checks, %d failed\n", g_checks, g_failed);
    return g_failed ? 1 : 0;
}
