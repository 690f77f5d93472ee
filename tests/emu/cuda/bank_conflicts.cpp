// bank_conflicts.cpp — counts shared-memory bank conflicts of the emulated
// kernels, per warp-level access, as a static figure per kernel (API:
// bank_conflicts.h; driver: bank_report.c; self-test: test_bank_counter.cpp;
// build: cmake/bank_conflicts.cmake).
//
// How accesses are seen.  The shim makes __shared__ a function-local static,
// read and written by plain C++ indexing, so nothing in the kernel source can
// report its accesses.  The emulator variant armo_cuda_emu_banks compiles the
// kernel translation units with g++ -fsanitize=thread but does NOT link the
// ThreadSanitizer runtime: the compiler's instrumentation calls
// __tsan_read<N>/__tsan_write<N>(addr) before every load and store, and this
// file defines those entry points itself.  A hook keeps an access when
//   - a kernel thread runs (emu::running_thread() >= 0: not host code, not
//     the scheduler completing a collective), and
//   - the address lies in the executable's .bss (GNU ld's __bss_start.._end):
//     __shared__ arrays are zero-initialised statics, so they live there,
//     while every other address a kernel touches is elsewhere: device
//     buffers are heap blocks (runtime.cpp), locals are on the fiber stacks
//     (mmap), threadIdx and friends are thread-local storage, kernel
//     arguments are on the launching thread's stack.
// It records (program counter = the hook's return address, address, size)
// in the running thread's list.
//
// How accesses become warp instructions.  The scheduler calls warp_synced
// (emu.h's block_observer) when every thread of a warp waits at one
// synchronisation point or has returned; the warp's accesses since the
// previous such point are then complete.  The lanes' lists are grouped by
// (PC, occurrence of that PC in the lane's list): the k-th execution of one
// load or store by each lane is one warp-level instruction, as SIMT issues
// it (lanes that skip it under divergence simply do not take part; unrolled
// copies of an access are different PCs).  The widths are the source's: the
// variant is compiled without vectorisation or store merging, so a uint4
// access is one 16-byte access and a uint16_t one 2 bytes; nvcc may still
// fuse adjacent accesses into wider ones (ld.shared.v2), which this model
// does not guess.
//
// How an instruction is costed, for 32 banks of 4 bytes:
//   - CUDA C Programming Guide, "Compute Capability 5.x" ... "Shared Memory"
//     (the same text for 6.x-9.x): successive 32-bit words map to successive
//     banks; a request for a warp is split into as many separate
//     conflict-free requests as needed; threads that access any address
//     within the same 32-bit word do not conflict (the word is broadcast to
//     readers; for writes one thread's write wins).  So an instruction's
//     degree is the largest number of DISTINCT 32-bit words that map to one
//     bank; 1 is conflict-free.  An access of 2 bytes falls in one word, one
//     of 8 or 16 bytes covers 2 or 4 consecutive words.
//   - Accesses wider than 4 bytes per lane: a warp moves at most 128 bytes
//     per shared-memory cycle, so 64-bit accesses are processed per half-warp
//     (lanes 0-15, 16-31) and 128-bit accesses per quarter-warp (lanes 0-7,
//     8-15, 16-23, 24-31), and banks conflict only between lanes of one
//     phase.  The Programming Guide describes the 64-bit case only for
//     compute capability 3.x; the phase rule for 5.x and later is NVIDIA's
//     (GTC 2019 talk S9593, "cuTENSOR: high-performance tensor operations in
//     CUDA", the shared-memory slides, and the CUTLASS maintainers'
//     answer in NVIDIA/cutlass issue #328), and Nsight Compute counts a
//     128-bit warp access as 4 wavefronts when conflict-free.  So the cost
//     is the sum over the phases that hold an active lane of each phase's
//     degree ("wavefronts"), against one per such phase ("ideal").
// Range accesses (memcpy of shared memory, __tsan_read_range) are not
// costed; they are counted as "unmodelled" so that they cannot go unseen.
//
// Single host thread: the counter keeps global state and is meant for one
// driver launching kernels one after the other (the emulator runs a launch's
// blocks one at a time on the launching thread).
//
// This file is also swept into the AddressSanitizer emulator library by
// emulator.cmake's glob of tests/emu/cuda/*.cpp; there ARMO_EMU_BANKS is not
// defined and it compiles to nothing (TSan's entry points must not exist in
// an ASan build).
#if defined(ARMO_EMU_BANKS)

#include "tests/emu/cuda/bank_conflicts.h"

#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "tests/emu/cuda/emu.h"

// GNU ld's default linker script provides both
extern "C" char __bss_start[], _end[];

namespace {

const int kMaxThreads = 1024;

struct access {
    uintptr_t pc, addr;
    uint32_t size;
    bool write;
};

struct site {
    unsigned long long instructions = 0, wavefronts = 0, ideal = 0;
    unsigned max_degree = 0;
    uint32_t size = 0;
    bool write = false;
};

struct kernel_stats {
    armo_bank_stats s{};
    std::map<uintptr_t, site> sites;
};

bool g_on = false;
uintptr_t g_lo = 0, g_hi = 0;
std::vector<access> g_pending[kMaxThreads];
std::map<std::string, kernel_stats> g_kernels;
std::vector<std::string> g_order;
kernel_stats *g_cur = nullptr;
std::map<uintptr_t, std::string> g_symbols; // pc -> "file:line (function)"

inline bool in_shared(uintptr_t a) { return a >= g_lo && a < g_hi; }

inline void note(const void *p, uint32_t size, bool write, void *pc) {
    const uintptr_t a = (uintptr_t)p;
    if (!g_on || !in_shared(a)) return;
    const int t = emu::running_thread();
    if (t < 0 || t >= kMaxThreads || !g_cur) return;
    g_pending[t].push_back({(uintptr_t)pc, a, size, write});
}

inline void note_range(const void *p, unsigned long size) {
    const uintptr_t a = (uintptr_t)p;
    if (!g_on || size == 0 || a >= g_hi || a + size <= g_lo) return;
    if (emu::running_thread() < 0 || !g_cur) return;
    g_cur->s.unmodelled++;
}

struct item {
    uintptr_t pc;
    uint32_t occ, lane;
    uintptr_t addr;
    uint32_t size;
    bool write;
};

// Degree of one phase: the most distinct 32-bit words that fall in one bank.
unsigned phase_degree(const item *b, const item *e) {
    uintptr_t words[8 * 32];
    int n = 0;
    for (const item *it = b; it != e; ++it)
        for (uintptr_t w = it->addr >> 2; w <= (it->addr + it->size - 1) >> 2 && n < 8 * 32; w++)
            words[n++] = w;
    std::sort(words, words + n);
    n = (int)(std::unique(words, words + n) - words);
    unsigned per_bank[32] = {0}, worst = 0;
    for (int i = 0; i < n; i++) worst = std::max(worst, ++per_bank[words[i] & 31]);
    return worst;
}

// One warp-level instruction: the accesses [b, e) of distinct lanes, sorted by lane.
void cost_instruction(const item *b, const item *e) {
    uint32_t size = 0;
    for (const item *it = b; it != e; ++it) size = std::max(size, it->size);
    const uint32_t phase_lanes = size <= 4 ? 32 : size <= 8 ? 16 : 8;
    unsigned long long wave = 0, ideal = 0;
    unsigned worst = 0;
    for (const item *p = b; p != e;) {
        const uint32_t phase = p->lane / phase_lanes;
        const item *q = p;
        while (q != e && q->lane / phase_lanes == phase) ++q;
        const unsigned d = phase_degree(p, q);
        wave += d;
        ideal++;
        worst = std::max(worst, d);
        p = q;
    }
    armo_bank_stats &k = g_cur->s;
    k.instructions++;
    k.wavefronts += wave;
    k.ideal += ideal;
    k.max_degree = std::max(k.max_degree, worst);
    site &st = g_cur->sites[b->pc];
    st.instructions++;
    st.wavefronts += wave;
    st.ideal += ideal;
    st.max_degree = std::max(st.max_degree, worst);
    st.size = size;
    st.write = b->write;
}

void on_warp_synced(int w0, int nlanes) {
    static std::vector<item> items;
    static std::unordered_map<uintptr_t, uint32_t> occ;
    items.clear();
    for (int l = 0; l < nlanes; l++) {
        std::vector<access> &v = g_pending[w0 + l];
        if (v.empty()) continue;
        occ.clear();
        for (const access &a : v)
            items.push_back({a.pc, occ[a.pc]++, (uint32_t)l, a.addr, a.size, a.write});
        v.clear();
    }
    if (items.empty() || !g_cur) return;
    std::sort(items.begin(), items.end(), [](const item &x, const item &y) {
        if (x.pc != y.pc) return x.pc < y.pc;
        if (x.occ != y.occ) return x.occ < y.occ;
        return x.lane < y.lane;
    });
    for (size_t i = 0; i < items.size();) {
        size_t j = i + 1;
        while (j < items.size() && items[j].pc == items[i].pc && items[j].occ == items[i].occ) j++;
        cost_instruction(&items[i], &items[j]);
        i = j;
    }
}

void on_block_begin(const char *kernel, int nthreads) {
    auto it = g_kernels.find(kernel);
    if (it == g_kernels.end()) {
        it = g_kernels.emplace(kernel, kernel_stats()).first;
        g_order.push_back(kernel);
    }
    g_cur = &it->second;
    g_cur->s.blocks++;
    for (int t = 0; t < nthreads && t < kMaxThreads; t++) g_pending[t].clear();
}

void on_block_end(void) {}

const emu::block_observer g_observer = {on_block_begin, on_warp_synced, on_block_end};

// ---- symbols: PC -> file:line (function), through addr2line ----

struct module_query {
    uintptr_t pc;
    uintptr_t bias;
    std::string path;
    bool found;
};

int find_module(struct dl_phdr_info *info, size_t, void *data) {
    module_query &q = *(module_query *)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) &ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
        if (q.pc >= lo && q.pc < lo + ph.p_memsz) {
            q.bias = info->dlpi_addr;
            q.path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "";
            q.found = true;
            return 1;
        }
    }
    return 0;
}

// "kernels/attention.cuh" from "/abs/path/kernels/attention.cuh"
std::string short_path(const std::string &p) {
    for (const char *room : {"/kernels/", "/tests/"}) {
        const size_t at = p.rfind(room);
        if (at != std::string::npos) return p.substr(at + 1);
    }
    return p;
}

// "flash_attn_kernel<128>" from "void flash_attn_kernel<128>(unsigned short*, ...)"
std::string short_function(std::string f) {
    const size_t paren = f.find('(');
    if (paren != std::string::npos) f.resize(paren);
    int depth = 0;
    for (size_t i = f.size(); i-- > 0;) {
        if (f[i] == '>') depth++;
        if (f[i] == '<') depth--;
        if (f[i] == ' ' && depth == 0) return f.substr(i + 1);
    }
    return f;
}

const std::string &symbolize(uintptr_t pc) {
    auto hit = g_symbols.find(pc);
    if (hit != g_symbols.end()) return hit->second;
    module_query q = {pc, 0, "", false};
    dl_iterate_phdr(find_module, &q);
    char buf[64];
    snprintf(buf, sizeof buf, "pc %#lx", (unsigned long)pc);
    std::string out = buf;
    if (q.found) {
        if (q.path.empty()) {
            char exe[PATH_MAX];
            const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            if (n > 0) q.path.assign(exe, (size_t)n);
        }
        // the return address follows the hook's call: pc - 1 lies inside it;
        // addr2line reads hexadecimal addresses relative to the load bias
        char hex[32];
        snprintf(hex, sizeof hex, "%#lx", (unsigned long)(pc - 1 - q.bias));
        const std::string cmd = "addr2line -C -f -i -e '" + q.path + "' " + hex + " 2>/dev/null";
        if (FILE *p = popen(cmd.c_str(), "r")) {
            std::vector<std::string> lines;
            char line[4096];
            while (fgets(line, sizeof line, p)) {
                line[strcspn(line, "\n")] = 0;
                lines.push_back(line);
            }
            pclose(p);
            // pairs (function, file:line), innermost inline frame first
            if (lines.size() >= 2 && lines[1].find("??") != 0) {
                std::string loc = lines[1];
                const size_t disc = loc.find(" (discriminator");
                if (disc != std::string::npos) loc.resize(disc);
                out = short_path(loc) + " (" + short_function(lines[lines.size() - 2]) + ")";
            }
        }
    }
    return g_symbols.emplace(pc, out).first->second;
}

const kernel_stats *find_kernel(const char *name) {
    auto it = g_kernels.find(name ? name : "");
    return it == g_kernels.end() ? nullptr : &it->second;
}

std::vector<std::pair<uintptr_t, const site *>> conflicted_sites(const kernel_stats &k) {
    std::vector<std::pair<uintptr_t, const site *>> v;
    for (const auto &s : k.sites)
        if (s.second.wavefronts > s.second.ideal) v.push_back({s.first, &s.second});
    std::stable_sort(v.begin(), v.end(), [](const auto &a, const auto &b) {
        return a.second->wavefronts - a.second->ideal > b.second->wavefronts - b.second->ideal;
    });
    return v;
}

} // namespace

// ---- the ThreadSanitizer entry points the instrumented kernels call ----
#define ARMO_TSAN_ACCESS(n)                                                                    \
    extern "C" void __tsan_read##n(void *p) { note(p, n, false, __builtin_return_address(0)); } \
    extern "C" void __tsan_write##n(void *p) { note(p, n, true, __builtin_return_address(0)); } \
    extern "C" void __tsan_unaligned_read##n(void *p) {                                        \
        note(p, n, false, __builtin_return_address(0));                                        \
    }                                                                                          \
    extern "C" void __tsan_unaligned_write##n(void *p) {                                       \
        note(p, n, true, __builtin_return_address(0));                                         \
    }                                                                                          \
    extern "C" void __tsan_volatile_read##n(void *p) {                                         \
        note(p, n, false, __builtin_return_address(0));                                        \
    }                                                                                          \
    extern "C" void __tsan_volatile_write##n(void *p) {                                        \
        note(p, n, true, __builtin_return_address(0));                                         \
    }
ARMO_TSAN_ACCESS(1)
ARMO_TSAN_ACCESS(2)
ARMO_TSAN_ACCESS(4)
ARMO_TSAN_ACCESS(8)
ARMO_TSAN_ACCESS(16)
#undef ARMO_TSAN_ACCESS

extern "C" void __tsan_read_range(void *p, unsigned long size) { note_range(p, size); }
extern "C" void __tsan_write_range(void *p, unsigned long size) { note_range(p, size); }
// what other compilers' instrumentation calls in place of the builtins (g++
// 12 leaves them to the runtime's interceptors, which are not linked here)
extern "C" void *__tsan_memcpy(void *d, const void *s, unsigned long n) {
    note_range(d, n);
    note_range(s, n);
    return memcpy(d, s, n);
}
extern "C" void *__tsan_memmove(void *d, const void *s, unsigned long n) {
    note_range(d, n);
    note_range(s, n);
    return memmove(d, s, n);
}
extern "C" void *__tsan_memset(void *d, int c, unsigned long n) {
    note_range(d, n);
    return memset(d, c, n);
}
extern "C" void __tsan_func_entry(void *) {}
extern "C" void __tsan_func_exit(void) {}
extern "C" void __tsan_init(void) {}
extern "C" void __tsan_vptr_update(void **, void *) {}
extern "C" void __tsan_vptr_read(void **) {}

// ---- bank_conflicts.h ----
extern "C" void armo_banks_start(void) {
    g_kernels.clear();
    g_order.clear();
    g_cur = nullptr;
    for (auto &v : g_pending) v.clear();
    g_lo = (uintptr_t)__bss_start;
    g_hi = (uintptr_t)_end;
    g_on = true;
    emu::set_block_observer(&g_observer);
}

extern "C" void armo_banks_stop(void) {
    g_on = false;
    emu::set_block_observer(nullptr);
}

extern "C" int armo_banks_count(void) { return (int)g_order.size(); }

extern "C" const char *armo_banks_name(int i) {
    return i >= 0 && i < (int)g_order.size() ? g_order[(size_t)i].c_str() : nullptr;
}

extern "C" int armo_banks_get(const char *name, armo_bank_stats *out) {
    const kernel_stats *k = find_kernel(name);
    if (!k) return 0;
    *out = k->s;
    return 1;
}

extern "C" int armo_banks_worst_site(const char *name, char *buf, size_t size) {
    const kernel_stats *k = find_kernel(name);
    if (!k || size == 0) return 0;
    const auto v = conflicted_sites(*k);
    if (v.empty()) return 0;
    snprintf(buf, size, "%s, %u-way %s", symbolize(v[0].first).c_str(), v[0].second->max_degree,
             v[0].second->write ? "store" : "load");
    return 1;
}

extern "C" void armo_banks_print_sites(FILE *f, const char *name, int max) {
    const kernel_stats *k = find_kernel(name);
    if (!k) return;
    int shown = 0;
    for (const auto &s : conflicted_sites(*k)) {
        if (shown++ == max) break;
        fprintf(f, "    %-48s %s %2u B: %llu instructions, %llu wavefronts (ideal %llu), up to "
                   "%u-way\n",
                symbolize(s.first).c_str(), s.second->write ? "store" : "load ", s.second->size,
                s.second->instructions, s.second->wavefronts, s.second->ideal,
                s.second->max_degree);
    }
}

#endif // ARMO_EMU_BANKS
