// scheduler.cpp — runs a kernel launch on the CPU (the model: emu.h).
//
// Each thread of a block is a fiber with its own mmap'd stack (a PROT_NONE
// guard page below it, so that an overflow faults instead of corrupting its
// neighbour).  On x86-64 a fiber switch is six pushes, a stack swap and six
// pops (emu_fiber_switch below); elsewhere ucontext.  One OS thread runs all
// fibers of a block; the fibers and the scheduler state are thread_local, so
// several host threads may run launches at the same time.  Under
// AddressSanitizer every switch is announced with the sanitizer's fiber calls,
// so that stack poisoning follows the fiber.
//
// The block loop: every ready thread runs (in schedule order) until it waits
// or returns; then warp collectives whose lanes have all arrived complete, and
// the block barrier opens when every live thread waits at it.  A round where
// nothing can move is a deadlock, reported with where each thread waits.
#include "tests/emu/cuda/emu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mutex>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

thread_local uint3 emu_thread_idx;
thread_local uint3 emu_block_idx;
thread_local dim3 emu_block_dim;
thread_local dim3 emu_grid_dim;

#if defined(__x86_64__)
// void emu_fiber_switch(void **save_sp, void *load_sp): saves the callee-saved
// registers on the current stack, stores its pointer in *save_sp, loads
// load_sp and restores the registers saved there.
extern "C" void emu_fiber_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl emu_fiber_switch\n"
    ".type emu_fiber_switch,@function\n"
    "emu_fiber_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_fiber_switch,.-emu_fiber_switch\n");
#endif

namespace emu {
namespace {

const size_t kStackBytes = 256 * 1024;
const size_t kGuardBytes = 4096;
const int kMaxThreads = 1024;

enum thread_state { READY, AT_BARRIER, AT_WARP, DONE };

struct fiber {
    char *map = nullptr; // guard page + stack
#if defined(__x86_64__)
    void *sp = nullptr;
#else
    ucontext_t ctx;
#endif
    void *asan_fake_stack = nullptr;
    thread_state state = DONE;
    const char *barrier_file = nullptr; // where it waits, when AT_BARRIER
    int barrier_line = 0;
    uint3 tid = {0, 0, 0};
    warp_slot slot;
};

struct sched {
    fiber fibers[kMaxThreads];
    int nstacks = 0; // fibers[0..nstacks) own a stack
#if defined(__x86_64__)
    void *sched_sp = nullptr;
#else
    ucontext_t sched_ctx;
#endif
    void *sched_fake_stack = nullptr;
    const void *sched_stack_bottom = nullptr;
    size_t sched_stack_size = 0;
    int current = -1; // fiber running, -1: the scheduler
    int nthreads = 0;
    const char *kernel = "?";
    const char *file = "?";
    int line = 0;
    kernel_body_fn body = nullptr;
    void *ctx = nullptr;
    cudaError_t launch_error = cudaSuccess;
    bool reverse_threads = false;
    bool warp_serial = false;
    ~sched() {
        for (int i = 0; i < nstacks; i++) munmap(fibers[i].map, kStackBytes + kGuardBytes);
    }
};

thread_local sched *g_sched;
const block_observer *g_observer = nullptr; // set_block_observer (emu.h)

sched &S() {
    if (!g_sched) {
        g_sched = new sched();
        // freed with the OS thread: a thread_local owner with a destructor
        static thread_local struct owner {
            ~owner() {
                delete g_sched;
                g_sched = nullptr;
            }
        } own;
        (void)own;
    }
    return *g_sched;
}

char *stack_top(const fiber &f) { return f.map + kGuardBytes + kStackBytes; }

// the fiber's side of a switch back to the scheduler
void switch_to_scheduler(sched &s, fiber &f, bool exiting) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asan_fake_stack, s.sched_stack_bottom,
                                   s.sched_stack_size);
#else
    (void)exiting;
#endif
#if defined(__x86_64__)
    emu_fiber_switch(&f.sp, s.sched_sp);
#else
    swapcontext(&f.ctx, &s.sched_ctx);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f.asan_fake_stack, nullptr, nullptr);
#endif
}

void fiber_main() {
    sched &s = S();
    fiber &f = s.fibers[s.current];
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.sched_stack_bottom, &s.sched_stack_size);
#endif
    s.body(s.ctx);
    f.state = DONE;
    switch_to_scheduler(s, f, true);
    fail("a finished thread was resumed");
}

#if defined(__x86_64__)
extern "C" void emu_fiber_entry() { fiber_main(); }
#else
void emu_fiber_entry_uc() { fiber_main(); }
#endif

void ensure_stacks(sched &s, int n) {
    for (; s.nstacks < n; s.nstacks++) {
        void *m = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "armo emu: mmap of a %zu-byte fiber stack failed\n", kStackBytes);
            abort();
        }
        if (mprotect(m, kGuardBytes, PROT_NONE) != 0) {
            fprintf(stderr, "armo emu: mprotect of a fiber stack guard failed\n");
            abort();
        }
        s.fibers[s.nstacks].map = (char *)m;
    }
}

// Prepares fiber i to start the kernel body at its first resume.
void start_fiber(sched &s, int i) {
    fiber &f = s.fibers[i];
    f.state = READY;
    f.asan_fake_stack = nullptr;
#if defined(__x86_64__)
    // 16-byte aligned top; six zeroed callee-saved registers, then the entry
    // as the return address, then a zero return address for the entry itself
    // (rsp = 8 mod 16 at entry, as after a call)
    void **sp = (void **)stack_top(f) - 8;
    for (int r = 0; r < 6; r++) sp[r] = nullptr;
    sp[6] = (void *)&emu_fiber_entry;
    sp[7] = nullptr;
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.map + kGuardBytes;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, emu_fiber_entry_uc, 0);
#endif
}

void resume(sched &s, int i) {
    fiber &f = s.fibers[i];
    s.current = i;
    emu_thread_idx = f.tid;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&s.sched_fake_stack, f.map + kGuardBytes, kStackBytes);
#endif
#if defined(__x86_64__)
    emu_fiber_switch(&s.sched_sp, f.sp);
#else
    swapcontext(&s.sched_ctx, &f.ctx);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(s.sched_fake_stack, nullptr, nullptr);
#endif
    s.current = -1;
}

void wait(thread_state why) {
    sched &s = S();
    if (s.current < 0) fail("a synchronisation point outside a kernel");
    fiber &f = s.fibers[s.current];
    f.state = why;
    switch_to_scheduler(s, f, false);
    emu_thread_idx = f.tid;
}

// Completes the collectives whose lanes have all arrived; returns how many
// threads became ready.
int settle_warp(sched &s, int w0) {
    int woke = 0;
    {
        const int nl = s.nthreads - w0 < 32 ? s.nthreads - w0 : 32;
        // the collective lanes are waiting at: take the first waiting lane's
        int first = -1;
        for (int l = 0; l < nl; l++)
            if (s.fibers[w0 + l].state == AT_WARP) {
                first = l;
                break;
            }
        if (first < 0) return 0;
        const warp_slot &ref = s.fibers[w0 + first].slot;
        const unsigned mask = ref.mask;
        bool all_here = true;
        for (int l = 0; l < 32; l++) {
            if (!(mask >> l & 1u)) continue;
            fiber *f = l < nl ? &s.fibers[w0 + l] : nullptr;
            if (!f || f->state == DONE) {
                s.current = w0 + first;
                emu_thread_idx = s.fibers[w0 + first].tid;
                fail("%s with mask 0x%08x names lane %d, which %s", ref.what, mask, l,
                     f ? "has returned" : "does not exist (block size)");
            }
            if (f->state != AT_WARP) {
                all_here = false;
                continue;
            }
            if (f->slot.complete != ref.complete || f->slot.mask != mask) {
                s.current = w0 + l;
                emu_thread_idx = f->tid;
                fail("lanes of warp %d wait at different collectives: lane %d at %s (mask "
                     "0x%08x), lane %d at %s (mask 0x%08x)", w0 / 32, first, ref.what, mask, l,
                     f->slot.what, f->slot.mask);
            }
        }
        if (!all_here) return 0;
        warp_slot *slots[32];
        for (int l = 0; l < 32; l++) slots[l] = (mask >> l & 1u) ? &s.fibers[w0 + l].slot : nullptr;
        ref.complete(slots, mask);
        for (int l = 0; l < 32; l++)
            if (mask >> l & 1u) {
                s.fibers[w0 + l].state = READY;
                woke++;
            }
        if (g_observer) { // the warp is synchronised when its other lanes have returned
            bool whole = true;
            for (int l = 0; l < nl; l++)
                whole = whole && ((mask >> l & 1u) || s.fibers[w0 + l].state == DONE);
            if (whole) g_observer->warp_synced(w0, nl);
        }
    }
    return woke;
}

int settle_warps(sched &s) {
    int woke = 0;
    for (int w0 = 0; w0 < s.nthreads; w0 += 32) woke += settle_warp(s, w0);
    return woke;
}

// Warp-serial: each warp (in turn, last first when reversed) runs through its
// own collectives until every lane waits at __syncthreads or has returned,
// before the next warp starts: the schedule that lets one warp run furthest
// ahead of the others, as a GPU may.  Returns the threads that returned.
int run_warps_serially(sched &s, bool reverse) {
    int done = 0;
    const int nwarps = (s.nthreads + 31) / 32;
    for (int k = 0; k < nwarps; k++) {
        const int w0 = 32 * (reverse ? nwarps - 1 - k : k);
        const int nl = s.nthreads - w0 < 32 ? s.nthreads - w0 : 32;
        for (;;) {
            bool ran = false;
            for (int l = 0; l < nl; l++) {
                if (s.fibers[w0 + l].state != READY) continue;
                resume(s, w0 + l);
                ran = true;
                if (s.fibers[w0 + l].state == DONE) done++;
            }
            if (!ran && settle_warp(s, w0) == 0) break;
        }
    }
    return done;
}

[[noreturn]] void deadlock(sched &s) {
    fprintf(stderr, "armo emu: %s (%s:%d) block (%u,%u,%u): deadlock; thread states:\n",
            s.kernel, s.file, s.line, emu_block_idx.x, emu_block_idx.y, emu_block_idx.z);
    for (int i = 0; i < s.nthreads; i++) {
        const fiber &f = s.fibers[i];
        if (f.state == AT_BARRIER)
            fprintf(stderr, "  thread %d: __syncthreads\n", i);
        else if (f.state == AT_WARP)
            fprintf(stderr, "  thread %d: %s (mask 0x%08x)\n", i, f.slot.what, f.slot.mask);
    }
    abort();
}

// Every live thread waits at a __syncthreads: the same one, or the block is
// in divergent code.
void check_same_barrier(sched &s) {
    int first = -1;
    for (int i = 0; i < s.nthreads; i++) {
        const fiber &f = s.fibers[i];
        if (f.state != AT_BARRIER) continue;
        if (first < 0) {
            first = i;
            continue;
        }
        const fiber &r = s.fibers[first];
        if (f.barrier_line != r.barrier_line || strcmp(f.barrier_file, r.barrier_file) != 0) {
            s.current = i;
            emu_thread_idx = f.tid;
            fail("divergent __syncthreads: thread %d waits at %s:%d, thread %d at %s:%d", first,
                 r.barrier_file, r.barrier_line, i, f.barrier_file, f.barrier_line);
        }
    }
}

void observe_all_warps(sched &s) {
    for (int w0 = 0; w0 < s.nthreads; w0 += 32)
        g_observer->warp_synced(w0, s.nthreads - w0 < 32 ? s.nthreads - w0 : 32);
}

void run_block(sched &s) {
    if (g_observer) g_observer->block_begin(s.kernel, s.nthreads);
    for (int i = 0; i < s.nthreads; i++) start_fiber(s, i);
    const bool reverse = s.reverse_threads;
    int live = s.nthreads;
    for (;;) {
        if (s.warp_serial)
            live -= run_warps_serially(s, reverse);
        else
            for (int k = 0; k < s.nthreads; k++) {
                const int i = reverse ? s.nthreads - 1 - k : k;
                if (s.fibers[i].state != READY) continue;
                resume(s, i);
                if (s.fibers[i].state == DONE) live--;
            }
        if (live == 0) {
            async_copy_block_end();
            if (g_observer) {
                observe_all_warps(s);
                g_observer->block_end();
            }
            break;
        }
        int woke = settle_warps(s);
        if (woke == 0) {
            int at_barrier = 0;
            for (int i = 0; i < s.nthreads; i++) at_barrier += s.fibers[i].state == AT_BARRIER;
            if (at_barrier == live) {
                check_same_barrier(s);
                if (g_observer) observe_all_warps(s);
                for (int i = 0; i < s.nthreads; i++)
                    if (s.fibers[i].state == AT_BARRIER) s.fibers[i].state = READY;
                woke = live;
            }
        }
        if (woke == 0) deadlock(s);
    }
}

} // namespace

void set_block_observer(const block_observer *obs) { g_observer = obs; }

int running_thread(void) { return S().current; }

bool schedule_warp_serial(void) { return S().warp_serial; }

unsigned current_thread(void) {
    sched &s = S();
    return s.current < 0 ? 0u : (unsigned)s.current;
}

warp_slot &my_warp_slot(void) {
    sched &s = S();
    if (s.current < 0) fail("a warp collective outside a kernel");
    return s.fibers[s.current].slot;
}

void warp_collective(void) { wait(AT_WARP); }

void block_barrier(const char *file, int line) {
    sched &s = S();
    if (s.current >= 0) {
        s.fibers[s.current].barrier_file = file;
        s.fibers[s.current].barrier_line = line;
    }
    wait(AT_BARRIER);
}

void fail(const char *fmt, ...) {
    sched &s = S();
    fprintf(stderr, "armo emu: %s (%s:%d) block (%u,%u,%u) thread %d: ", s.kernel, s.file, s.line,
            emu_block_idx.x, emu_block_idx.y, emu_block_idx.z, s.current);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

cudaError_t take_launch_error(void) {
    sched &s = S();
    const cudaError_t e = s.launch_error;
    s.launch_error = cudaSuccess;
    return e;
}

cudaError_t peek_launch_error(void) { return S().launch_error; }

void run_grid(sched &s, dim3 grid, bool reverse_blocks);
void run_grid_checked(sched &s, dim3 grid);

// __shared__ is static storage in the shim (one image per kernel), so the
// grids of launches from different host threads (the ranks of a tensor-
// parallel group, data-parallel workers) run one at a time
std::mutex g_launch_lock;

void run_launch(const char *kernel, const char *file, int line, dim3 grid, dim3 block,
                size_t dynamic_smem, cudaStream_t stream, kernel_body_fn body, void *ctx) {
    std::lock_guard<std::mutex> one_grid_at_a_time(g_launch_lock);
    sched &s = S();
    if (s.current >= 0) fail("a kernel launch from inside a kernel (dynamic parallelism)");
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
        grid.z > 65535 || threads == 0 || threads > (unsigned long long)kMaxThreads ||
        block.x > 1024 || block.y > 1024 || block.z > 64) {
        if (getenv("ARMO_EMU_VERBOSE"))
            fprintf(stderr, "armo emu: %s (%s:%d): invalid configuration grid (%u,%u,%u) block "
                            "(%u,%u,%u)\n", kernel, file, line, grid.x, grid.y, grid.z, block.x,
                    block.y, block.z);
        s.launch_error = cudaErrorInvalidConfiguration;
        return;
    }
    s.kernel = kernel;
    s.file = file;
    s.line = line;
    if (!before_launch(kernel, stream)) {
        s.kernel = "?";
        return;
    }
    if (dynamic_smem != 0) fail("dynamic shared memory (%zu bytes) is not modelled", dynamic_smem);
    s.body = body;
    s.ctx = ctx;
    s.nthreads = (int)threads;
    ensure_stacks(s, s.nthreads);
    for (int i = 0; i < s.nthreads; i++)
        s.fibers[i].tid = {(unsigned)i % block.x, (unsigned)i / block.x % block.y,
                           (unsigned)i / (block.x * block.y)};
    emu_block_dim = block;
    emu_grid_dim = grid;
    const char *sch = getenv("ARMO_EMU_SCHEDULE");
    const bool reverse = sch && strcmp(sch, "reverse") == 0;
    const char *rc = getenv("ARMO_EMU_RACECHECK");
    if (rc && strcmp(rc, "0") != 0)
        run_grid_checked(s, grid);
    else {
        s.reverse_threads = reverse;
        s.warp_serial = sch && strcmp(sch, "warp-serial") == 0;
        run_grid(s, grid, reverse);
        s.warp_serial = false;
    }
    s.kernel = "?";
}

namespace {

struct snapshot {
    struct part {
        char *ptr;
        size_t bytes;
        char *copy;
    };
    part *parts = nullptr;
    size_t n = 0, cap = 0;
    ~snapshot() {
        for (size_t i = 0; i < n; i++) free(parts[i].copy);
        free(parts);
    }
};

void take_part(void *ptr, size_t bytes, void *ctx) {
    snapshot &sn = *(snapshot *)ctx;
    if (sn.n == sn.cap) {
        sn.cap = sn.cap ? 2 * sn.cap : 64;
        sn.parts = (snapshot::part *)realloc(sn.parts, sn.cap * sizeof *sn.parts);
        if (!sn.parts) abort();
    }
    char *copy = (char *)malloc(bytes ? bytes : 1);
    if (!copy) abort();
    memcpy(copy, ptr, bytes);
    sn.parts[sn.n++] = {(char *)ptr, bytes, copy};
}

} // namespace

// The race check: the launch from the same device memory in three schedules
// (threads and blocks forward; both reversed; warps one after the other,
// last first, blocks reversed); any byte of device memory that differs from
// the forward run is a race.
void run_grid_checked(sched &s, dim3 grid) {
    snapshot before, after;
    for_each_device_block(take_part, &before);
    s.reverse_threads = false;
    s.warp_serial = false;
    run_grid(s, grid, false);
    for_each_device_block(take_part, &after);
    static const char *const names[3] = {"forward", "reverse", "warp-serial"};
    for (int variant = 1; variant <= 2; variant++) {
        for (size_t i = 0; i < before.n; i++)
            memcpy(before.parts[i].ptr, before.parts[i].copy, before.parts[i].bytes);
        s.reverse_threads = true;
        s.warp_serial = variant == 2;
        run_grid(s, grid, true);
        s.warp_serial = false;
        s.reverse_threads = false;
        for (size_t i = 0; i < after.n; i++) {
            const snapshot::part &p = after.parts[i];
            if (memcmp(p.ptr, p.copy, p.bytes) == 0) continue;
            for (size_t b = 0; b < p.bytes; b++)
                if (p.ptr[b] != p.copy[b]) {
                    s.current = -1;
                    fail("race: the %s and %s schedules leave different bytes in the %zu-byte "
                         "device buffer %p at offset %zu (0x%02x vs 0x%02x)", names[0],
                         names[variant], p.bytes, (void *)p.ptr, b, (unsigned char)p.copy[b],
                         (unsigned char)p.ptr[b]);
                }
        }
    }
    // leave memory as the forward run did
    for (size_t i = 0; i < after.n; i++) memcpy(after.parts[i].ptr, after.parts[i].copy, after.parts[i].bytes);
}

void run_grid(sched &s, dim3 grid, bool reverse_blocks) {
    const unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    for (unsigned long long k = 0; k < nblocks; k++) {
        const unsigned long long b = reverse_blocks ? nblocks - 1 - k : k;
        emu_block_idx = {(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                         (unsigned)(b / ((unsigned long long)grid.x * grid.y))};
        run_block(s);
    }
}

} // namespace emu
