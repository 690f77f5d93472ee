// runtime.cpp — the CUDA runtime calls armo makes, on the CPU, for the
// emulator (tests/emu/cuda): device memory is host memory, every copy and
// kernel runs at once (so streams and events only need to exist), and the
// checks a real device makes are made here too, with a message naming the
// call:
//   - cudaMalloc gives 256-byte aligned blocks of exactly the size asked
//     (under AddressSanitizer a byte past the end is caught), filled with
//     0xFF (a bf16 / fp32 NaN, so that a read of something never written shows
//     up as NaN); every block is tracked;
//   - a copy must lie inside one tracked block on its device side, and its
//     kind must match where the pointers live (a host pointer given as the
//     device side of cudaMemcpyHostToDevice is an error, as on a GPU);
//   - cudaFree / cudaFreeHost / cudaStreamDestroy / cudaEventDestroy of
//     something that is not one is an error; leaks are reported at exit;
//   - events record the host clock, so that phase timing reads CPU time, and
//     one created with cudaEventDisableTiming refuses cudaEventElapsedTime;
//   - cudaGetLastError returns (and clears) a launch's configuration error;
//   - ordering: a cudaMemcpy from pageable host memory to the device runs on
//     the legacy stream and may return before its DMA lands; a kernel or copy
//     enqueued on a non-blocking stream before anything synchronises with the
//     legacy stream (cudaDeviceSynchronize, cudaStreamSynchronize(0), a
//     synchronous device-to-host copy) is reported, since nothing orders it
//     after that copy on a GPU;
//   - faults, for the tests of error paths: ARMO_EMU_FAULT=NAME:K makes the
//     K-th launch (1-based) of a kernel whose name contains NAME fail while
//     "running" (it does not run): as on a GPU the error surfaces only at the
//     next synchronisation (stream, event or device sync, synchronous copy),
//     and from then on every call returns it (a sticky error poisons the
//     context).  ARMO_EMU_FAIL_ALLOC=K makes the K-th cudaMalloc fail with
//     cudaErrorMemoryAllocation (not sticky, as on a GPU).
//     cudaMemGetInfo reports 64 GiB free of 80, or ARMO_EMU_MEM_FREE_BYTES
//     (one value, or one per device: B0,B1,...).
//   - devices: ARMO_EMU_DEVICES=N (default 1) for data and tensor parallel;
//     all share the one emulated memory (NCCL: nccl_fake.cpp).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

#include "tests/emu/cuda/emu.h"

namespace {

struct block {
    size_t bytes;
    bool pinned;
};

struct event {
    unsigned flags;
    bool recorded;
    double ms;
};

std::mutex g_lock;
std::map<char *, block> g_blocks; // start -> size and kind
std::map<void *, unsigned> g_streams; // stream -> creation flags
cudaError_t g_pending_fault = cudaSuccess; // raised by a launch, not yet seen
cudaError_t g_sticky = cudaSuccess;        // seen at a synchronisation: every call returns it
const char *g_legacy_copy = nullptr;       // an unsynchronised pageable H2D cudaMemcpy, if any
long g_mallocs = 0;
std::map<void *, event> g_events;
int g_device = 0;

// CUDA graphs, minimally: a graph (and an instantiated one) is the list of
// operations recorded while its stream captured (emu.h)
struct graph {
    std::vector<std::function<void()>> ops;
};
std::map<void *, graph *> g_capturing; // stream -> the graph it is capturing
std::map<void *, graph *> g_graphs, g_execs;
long g_graph_launches = 0;
long g_last_instantiated_ops = -1; // operations of the graph instantiated last

bool capturing_locked(cudaStream_t s) { return s && g_capturing.count((void *)s); }

[[noreturn]] void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("armo emu runtime: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

// the tracked block holding p, or g_blocks.end()
std::map<char *, block>::iterator find_block(const void *p) {
    char *c = (char *)p;
    auto it = g_blocks.upper_bound(c);
    if (it == g_blocks.begin()) return g_blocks.end();
    --it;
    if (c >= it->first && c < it->first + (it->second.bytes ? it->second.bytes : 1)) return it;
    return g_blocks.end();
}

// A synchronisation point: a pending fault becomes the sticky error.
cudaError_t synchronise() {
    if (g_pending_fault != cudaSuccess && g_sticky == cudaSuccess) g_sticky = g_pending_fault;
    return g_sticky;
}

bool non_blocking(cudaStream_t s) {
    auto it = g_streams.find((void *)s);
    return it != g_streams.end() && (it->second & cudaStreamNonBlocking);
}

// work enqueued on stream s must not race a legacy-stream pageable copy
void check_ordered(cudaStream_t s, const char *what) {
    if (g_legacy_copy && non_blocking(s))
        die("%s on a non-blocking stream while %s may still be in flight on the legacy stream "
            "(nothing orders the two; enqueue the copy on the stream with cudaMemcpyAsync)",
            what, g_legacy_copy);
}

// 1 when [p, p+n) is device memory (inside one cudaMalloc block), 0 when it
// is host memory; a range that starts in a block and runs past it aborts
int device_side(const void *p, size_t n, const char *call, const char *what) {
    auto it = find_block(p);
    if (it == g_blocks.end()) return 0;
    const size_t off = (size_t)((const char *)p - it->first);
    if (off + n > it->second.bytes)
        die("%s: %s of %zu bytes at offset %zu runs past the end of a %zu-byte %s buffer", call,
            what, n, off, it->second.bytes, it->second.pinned ? "pinned host" : "device");
    return it->second.pinned ? 0 : 1;
}

cudaError_t checked_copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                         const char *call, cudaStream_t stream, bool sync) {
    std::lock_guard<std::mutex> hold(g_lock);
    if (capturing_locked(stream))
        die("%s on a stream that is capturing a CUDA graph: copies in graphs are not modelled",
            call);
    if (sync && synchronise() != cudaSuccess) return g_sticky;
    if (g_sticky != cudaSuccess) return g_sticky;
    if (n == 0) return cudaSuccess;
    if (!dst || !src) return cudaErrorInvalidValue;
    if (!sync) check_ordered(stream, call);
    const int dd = device_side(dst, n, call, "destination");
    const int sd = device_side(src, n, call, "source");
    const bool ok = kind == cudaMemcpyDefault || (kind == cudaMemcpyHostToDevice && dd && !sd) ||
                    (kind == cudaMemcpyDeviceToHost && !dd && sd) ||
                    (kind == cudaMemcpyDeviceToDevice && dd && sd) ||
                    (kind == cudaMemcpyHostToHost && !dd && !sd);
    if (!ok)
        die("%s: kind %d does not match the pointers (destination on the %s, source on the %s)",
            call, (int)kind, dd ? "device" : "host", sd ? "device" : "host");
    memmove(dst, src, n);
    if (sync && dd && !sd && find_block(src) == g_blocks.end())
        g_legacy_copy = "a cudaMemcpy from pageable host memory to the device";
    else if (sync && !dd)
        g_legacy_copy = nullptr; // a synchronous copy to the host waits for the legacy stream
    return cudaSuccess;
}

double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct leak_report {
    ~leak_report() {
        size_t n = 0, bytes = 0;
        for (auto &b : g_blocks) n++, bytes += b.second.bytes;
        if (n) fprintf(stderr, "armo emu runtime: %zu device / pinned allocations (%zu bytes) never freed\n", n, bytes);
        if (!g_streams.empty()) fprintf(stderr, "armo emu runtime: %zu streams never destroyed\n", g_streams.size());
        if (!g_events.empty()) fprintf(stderr, "armo emu runtime: %zu events never destroyed\n", g_events.size());
    }
} g_leak_report;

cudaError_t alloc(void **p, size_t n, bool pinned) {
    if (!p) return cudaErrorInvalidValue;
    *p = nullptr;
    {
        std::lock_guard<std::mutex> hold(g_lock);
        if (g_sticky != cudaSuccess) return g_sticky;
        if (!pinned) {
            static long fail_at = getenv("ARMO_EMU_FAIL_ALLOC") ? atol(getenv("ARMO_EMU_FAIL_ALLOC")) : 0;
            if (++g_mallocs == fail_at) return cudaErrorMemoryAllocation;
        }
    }
    void *m = nullptr;
    if (posix_memalign(&m, 256, n ? n : 1) != 0) return cudaErrorMemoryAllocation;
    memset(m, pinned ? 0xEE : 0xFF, n);
    std::lock_guard<std::mutex> hold(g_lock);
    g_blocks[(char *)m] = {n, pinned};
    *p = m;
    return cudaSuccess;
}

cudaError_t release(void *p, bool pinned, const char *call) {
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_blocks.find((char *)p);
    if (it == g_blocks.end()) die("%s of a pointer that no allocation returned", call);
    if (it->second.pinned != pinned)
        die("%s of a %s pointer", call, it->second.pinned ? "pinned host" : "device");
    g_blocks.erase(it);
    free(p);
    return cudaSuccess;
}

} // namespace

namespace emu {
bool before_launch(const char *kernel, cudaStream_t stream) {
    std::lock_guard<std::mutex> hold(g_lock);
    if (g_sticky != cudaSuccess) return false;
    check_ordered(stream, kernel);
    static const char *fault = getenv("ARMO_EMU_FAULT");
    static long seen = 0;
    if (fault && *fault) {
        const char *colon = strrchr(fault, ':');
        const size_t len = colon ? (size_t)(colon - fault) : strlen(fault);
        const long k = colon ? atol(colon + 1) : 1;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), fault);
        if (strstr(kernel, name) && ++seen == k) {
            g_pending_fault = cudaErrorIllegalAddress;
            return false;
        }
    }
    return g_pending_fault == cudaSuccess; // after a fault nothing more runs
}

void for_each_device_block(void (*fn)(void *ptr, size_t bytes, void *ctx), void *ctx) {
    std::lock_guard<std::mutex> hold(g_lock);
    for (auto &b : g_blocks)
        if (!b.second.pinned) fn(b.first, b.second.bytes, ctx);
}
bool stream_capturing(cudaStream_t stream) {
    std::lock_guard<std::mutex> hold(g_lock);
    return capturing_locked(stream);
}

void capture_record(cudaStream_t stream, std::function<void()> op) {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_capturing.find((void *)stream);
    if (it == g_capturing.end()) die("capture_record on a stream that is not capturing");
    it->second->ops.push_back(std::move(op));
}

long graph_launches(void) {
    std::lock_guard<std::mutex> hold(g_lock);
    return g_graph_launches;
}
} // namespace emu

extern "C" {

cudaError_t cudaMalloc(void **p, size_t n) { return alloc(p, n, false); }
cudaError_t cudaFree(void *p) { return release(p, false, "cudaFree"); }
cudaError_t cudaMallocHost(void **p, size_t n) { return alloc(p, n, true); }
cudaError_t cudaFreeHost(void *p) { return release(p, true, "cudaFreeHost"); }

cudaError_t cudaMemset(void *p, int value, size_t n) {
    if (n == 0) return cudaSuccess;
    {
        std::lock_guard<std::mutex> hold(g_lock);
        if (!device_side(p, n, "cudaMemset", "destination"))
            die("cudaMemset of %zu bytes on a host pointer", n);
    }
    memset(p, value, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
    (void)s;
    return cudaMemset(p, value, n);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    return checked_copy(dst, src, n, kind, "cudaMemcpy", 0, true);
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    return checked_copy(dst, src, n, kind, "cudaMemcpyAsync", stream, false);
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream) {
    if (width > dpitch || width > spitch) return cudaErrorInvalidPitchValue;
    for (size_t r = 0; r < height; r++) {
        const cudaError_t st = checked_copy((char *)dst + r * dpitch, (const char *)src + r * spitch,
                                            width, kind, "cudaMemcpy2DAsync", stream, false);
        if (st != cudaSuccess) return st;
    }
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    (void)flags;
    void *token = malloc(1);
    if (!token) return cudaErrorMemoryAllocation;
    std::lock_guard<std::mutex> hold(g_lock);
    g_streams[token] = flags;
    *s = (cudaStream_t)token;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    std::lock_guard<std::mutex> hold(g_lock);
    if (!g_streams.erase((void *)s)) die("cudaStreamDestroy of something that is not a stream");
    free((void *)s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    std::lock_guard<std::mutex> hold(g_lock);
    if (capturing_locked(s)) return cudaErrorStreamCaptureUnsupported;
    if (s && s != cudaStreamLegacy && !g_streams.count((void *)s))
        die("cudaStreamSynchronize of something that is not a stream");
    if (!s || s == cudaStreamLegacy) g_legacy_copy = nullptr;
    return synchronise();
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t ev, unsigned int flags) {
    (void)s;
    (void)ev;
    (void)flags;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    std::lock_guard<std::mutex> hold(g_lock);
    g_legacy_copy = nullptr;
    return synchronise();
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned int flags) {
    void *token = malloc(1);
    if (!token) return cudaErrorMemoryAllocation;
    std::lock_guard<std::mutex> hold(g_lock);
    g_events[token] = {flags, false, 0.0};
    *ev = (cudaEvent_t)token;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *ev) { return cudaEventCreateWithFlags(ev, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
    std::lock_guard<std::mutex> hold(g_lock);
    if (!g_events.erase((void *)ev)) die("cudaEventDestroy of something that is not an event");
    free((void *)ev);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s) {
    (void)s;
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_events.find((void *)ev);
    if (it == g_events.end()) die("cudaEventRecord of something that is not an event");
    it->second.recorded = true;
    it->second.ms = now_ms();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
    std::lock_guard<std::mutex> hold(g_lock);
    if (!g_events.count((void *)ev)) die("cudaEventSynchronize of something that is not an event");
    return synchronise();
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    std::lock_guard<std::mutex> hold(g_lock);
    auto ia = g_events.find((void *)a), ib = g_events.find((void *)b);
    if (ia == g_events.end() || ib == g_events.end())
        die("cudaEventElapsedTime of something that is not an event");
    if ((ia->second.flags | ib->second.flags) & cudaEventDisableTiming)
        return cudaErrorInvalidResourceHandle;
    if (!ia->second.recorded || !ib->second.recorded) return cudaErrorInvalidResourceHandle;
    *ms = (float)(ib->second.ms - ia->second.ms);
    return cudaSuccess;
}

// 64 GiB free of 80, or ARMO_EMU_MEM_FREE_BYTES=N free (read at each call,
// for the tests of the memory-fit checks; total is then at least N)
// ARMO_EMU_MEM_FREE_BYTES=B or B0,B1,...: the free bytes of the current
// device (g_device-th value; the last one for the devices past the list)
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    const char *v = getenv("ARMO_EMU_MEM_FREE_BYTES");
    *free_bytes = (size_t)64 << 30;
    for (int d = 0; v && *v; d++) {
        char *end;
        *free_bytes = (size_t)strtoull(v, &end, 10);
        if (d == g_device || *end != ',') break;
        v = end + 1;
    }
    *total_bytes = *free_bytes > ((size_t)80 << 30) ? *free_bytes : (size_t)80 << 30;
    return cudaSuccess;
}
// ARMO_EMU_DEVICES=N (default 1) devices, for data and tensor parallel:
// they share the one emulated memory (a pointer is valid on every device)
static int emu_devices(void) {
    const char *v = getenv("ARMO_EMU_DEVICES");
    const int n = v && *v ? atoi(v) : 1;
    return n >= 1 && n <= 64 ? n : 1;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = emu_devices();
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= emu_devices()) return cudaErrorInvalidDevice;
    g_device = d;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
    *d = g_device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int d) {
    if (d < 0 || d >= emu_devices()) return cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "armo CPU emulator");
    prop->totalGlobalMem = (size_t)80 << 30;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 132;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->sharedMemPerBlock = 48 * 1024;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    const cudaError_t launch = emu::take_launch_error();
    std::lock_guard<std::mutex> hold(g_lock);
    return g_sticky != cudaSuccess ? g_sticky : launch;
}
cudaError_t cudaPeekAtLastError(void) {
    const cudaError_t launch = emu::peek_launch_error();
    std::lock_guard<std::mutex> hold(g_lock);
    return g_sticky != cudaSuccess ? g_sticky : launch;
}

const char *cudaGetErrorString(cudaError_t st) {
    switch (st) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return "emulated CUDA error";
    }
}
const char *cudaGetErrorName(cudaError_t st) {
    switch (st) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    default: return "cudaErrorUnknown";
    }
}

} // extern "C"

// ---- CUDA graphs (stream capture), minimally: see emu.h ----
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
    (void)mode;
    std::lock_guard<std::mutex> hold(g_lock);
    if (g_sticky != cudaSuccess) return g_sticky;
    if (!s || s == cudaStreamLegacy) return cudaErrorStreamCaptureUnsupported;
    if (!g_streams.count((void *)s)) die("cudaStreamBeginCapture of something that is not a stream");
    if (g_capturing.count((void *)s)) return cudaErrorIllegalState;
    g_capturing[(void *)s] = new graph;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *out) {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_capturing.find((void *)s);
    if (it == g_capturing.end()) return cudaErrorIllegalState;
    graph *gr = it->second;
    g_capturing.erase(it);
    g_graphs[gr] = gr;
    *out = (cudaGraph_t)gr;
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status) {
    std::lock_guard<std::mutex> hold(g_lock);
    *status = capturing_locked(s) ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_graphs.find((void *)g);
    if (it == g_graphs.end()) die("cudaGraphInstantiate of something that is not a graph");
    graph *e = new graph(*it->second);
    g_execs[e] = e;
    g_last_instantiated_ops = (long)e->ops.size();
    *exec = (cudaGraphExec_t)e;
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    std::vector<std::function<void()>> ops;
    {
        std::lock_guard<std::mutex> hold(g_lock);
        if (g_sticky != cudaSuccess) return g_sticky;
        auto it = g_execs.find((void *)exec);
        if (it == g_execs.end()) die("cudaGraphLaunch of something that is not an instantiated graph");
        if (capturing_locked(s)) die("cudaGraphLaunch into a capturing stream is not modelled");
        ops = it->second->ops;
        g_graph_launches++;
    }
    for (auto &op : ops) op(); // each launch checks ordering, faults and its configuration
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_execs.find((void *)exec);
    if (it == g_execs.end()) die("cudaGraphExecDestroy of something that is not an instantiated graph");
    delete it->second;
    g_execs.erase(it);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_graphs.find((void *)g);
    if (it == g_graphs.end()) die("cudaGraphDestroy of something that is not a graph");
    delete it->second;
    g_graphs.erase(it);
    return cudaSuccess;
}

// For tests: the operations (kernel launches and GEMMs) of the graph
// instantiated last, -1 before any: a static count of a whole forward pass.
extern "C" long armo_emu_last_graph_ops(void) {
    std::lock_guard<std::mutex> hold(g_lock);
    return g_last_instantiated_ops;
}
