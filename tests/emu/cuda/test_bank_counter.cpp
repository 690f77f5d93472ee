// test_bank_counter.cpp — the bank-conflict counter (bank_conflicts.cpp)
// against access patterns whose cost is known from the bank rules alone
// (32 banks of 4 bytes; same word = no conflict; 8-byte accesses per
// half-warp, 16-byte ones per quarter-warp).  Each pattern is its own tiny
// kernel, so that its figures (instructions, wavefronts, ideal) can be read
// back by name and compared with the expected ones:
//   stride-1 4-byte: 1 instruction, 1 wavefront; stride 2: 2; stride 32: 32;
//   all lanes one word (broadcast): 1; 2-byte stride 1: 1; a store by every
//   lane to one word: 1; 8-byte contiguous: 2 phases, 2 wavefronts (rate 1);
//   16-byte contiguous: 4 / 4, loaded or stored as a uint4 struct copy;
//   16-byte stride 2: 8 / 4 (2-way per phase);
//   only the even lanes, 4-byte stride 64 bytes: 16-way; the flash kernel's
//   old V-tile store (2-byte, [dim][72 keys] transposed, 2 keys x 16 dims per
//   warp): 16-way; a loop of 4 iterations: 4 instructions (occurrences of one
//   site are separate instructions); two warps: 2 instructions (warps are
//   never mixed); accesses across __syncthreads and a shuffle: separate;
//   global-memory and stack accesses: not counted.
// Compiled with -fsanitize=thread (instrumentation only, the hooks are
// bank_conflicts.cpp's) like the kernels of armo_cuda_emu_banks.  Exit 0
// when every check holds; one line per check.
#include <stdio.h>
#include <string.h>

#include "cuda_runtime.h" // the shim (tests/emu/cuda/shim, first on the path)
#include "tests/emu/cuda/bank_conflicts.h"

static int g_failed, g_checks;

static void expect(const char *kernel, unsigned long long instr, unsigned long long wave,
                   unsigned long long ideal) {
    armo_bank_stats s;
    memset(&s, 0, sizeof s);
    const int ran = armo_banks_get(kernel, &s);
    const bool ok = ran && s.instructions == instr && s.wavefronts == wave && s.ideal == ideal;
    g_checks++;
    if (!ok) g_failed++;
    printf("%s %-22s instructions %llu wavefronts %llu ideal %llu (expected %llu %llu %llu)\n",
           ok ? "ok  " : "FAIL", kernel, s.instructions, s.wavefronts, s.ideal, instr, wave, ideal);
}

// each kernel lets its shared array escape (the compiler must then assume
// it is written elsewhere and read elsewhere) and writes what it read to
// global memory, so that no access is optimised away
static inline void escape(const void *p) { asm volatile("" : : "r"(p) : "memory"); }

__global__ void stride_kernel(float *out, int stride) {
    __shared__ float s[32 * 32];
    escape(s);
    out[threadIdx.x] = s[threadIdx.x * stride];
}
__global__ void broadcast_kernel(float *out) {
    __shared__ float s[32];
    escape(s);
    out[threadIdx.x] = s[3];
}
__global__ void half_kernel(uint16_t *out) {
    __shared__ uint16_t s[64];
    escape(s);
    out[threadIdx.x] = s[threadIdx.x];
}
__global__ void same_word_store_kernel(const float *in) {
    __shared__ float s[32];
    s[0] = in[threadIdx.x];
    escape(s);
}
__global__ void wide8_kernel(uint2 *out) {
    __shared__ __align__(16) uint2 s[32];
    escape(s);
    out[threadIdx.x] = s[threadIdx.x];
}
__global__ void wide16_kernel(uint4 *out, int stride) {
    __shared__ __align__(16) uint4 s[64];
    escape(s);
    out[threadIdx.x] = s[threadIdx.x * stride];
}
__global__ void wide16_store_kernel(const uint4 *in) { // a 16-byte struct copy stays one access
    __shared__ __align__(16) uint4 s[32];
    s[threadIdx.x] = in[threadIdx.x];
    escape(s);
}
__global__ void even_lanes_kernel(float *out) {
    __shared__ float s[32 * 16];
    escape(s);
    if ((threadIdx.x & 1) == 0) out[threadIdx.x] = s[threadIdx.x * 16];
}
__global__ void old_vt_store_kernel(const uint16_t *in) {
    __shared__ __align__(16) uint16_t vt[128][64 + 8];
    const int r = threadIdx.x / 16, c = threadIdx.x % 16; // 2 keys x 16 chunks of 8 dims
    vt[c * 8][r] = in[threadIdx.x];
    escape(vt);
}
__global__ void loop_kernel(float *out) {
    __shared__ float s[128];
    escape(s);
    float acc = 0.0f;
    for (int i = 0; i < 4; i++) acc += s[threadIdx.x + 32 * i];
    out[threadIdx.x] = acc;
}
__global__ void two_warps_kernel(float *out) {
    __shared__ float s[64];
    escape(s);
    out[threadIdx.x] = s[threadIdx.x];
}
__global__ void phases_kernel(float *out) { // one site, run before and after a barrier and a shuffle
    __shared__ float s[64];
    escape(s);
    float acc = 0.0f;
    for (int i = 0; i < 3; i++) {
        acc += s[threadIdx.x * (i == 0 ? 1 : 2)]; // 1, then 2-way, then 2-way
        if (i == 0) __syncthreads();
        if (i == 1) acc += __shfl_xor_sync(0xffffffffu, acc, 1);
    }
    out[threadIdx.x] = acc;
}
__global__ void global_only_kernel(float *out, const float *in) {
    float local[4];
    for (int i = 0; i < 4; i++) local[i] = in[(threadIdx.x * 7 + (unsigned)i * 32) % 128];
    out[threadIdx.x] = local[threadIdx.x & 3];
}

#define RUN(name, threads, ...) \
    emu::launch(#name, __FILE__, __LINE__, [&] { name(__VA_ARGS__); }, dim3(1), dim3(threads))

int main(void) {
    float *f = nullptr, *g = nullptr;
    uint16_t *h = nullptr;
    uint2 *u2 = nullptr;
    uint4 *u4 = nullptr;
    cudaMalloc((void **)&f, 64 * sizeof *f);
    cudaMalloc((void **)&g, 128 * sizeof *g);
    cudaMalloc((void **)&h, 32 * sizeof *h);
    cudaMalloc((void **)&u2, 32 * sizeof *u2);
    cudaMalloc((void **)&u4, 32 * sizeof *u4);
    cudaMemset(g, 0, 128 * sizeof *g);
    cudaMemset(h, 0, 32 * sizeof *h);

    armo_banks_start();
    emu::launch("stride1", __FILE__, __LINE__, [&] { stride_kernel(f, 1); }, dim3(1), dim3(32));
    emu::launch("stride2", __FILE__, __LINE__, [&] { stride_kernel(f, 2); }, dim3(1), dim3(32));
    emu::launch("stride32", __FILE__, __LINE__, [&] { stride_kernel(f, 32); }, dim3(1), dim3(32));
    RUN(broadcast_kernel, 32, f);
    RUN(half_kernel, 32, h);
    RUN(same_word_store_kernel, 32, g);
    RUN(wide8_kernel, 32, u2);
    emu::launch("wide16", __FILE__, __LINE__, [&] { wide16_kernel(u4, 1); }, dim3(1), dim3(32));
    emu::launch("wide16_stride2", __FILE__, __LINE__, [&] { wide16_kernel(u4, 2); }, dim3(1),
                dim3(32));
    RUN(wide16_store_kernel, 32, u4);
    RUN(even_lanes_kernel, 32, f);
    RUN(old_vt_store_kernel, 32, h);
    RUN(loop_kernel, 32, f);
    RUN(two_warps_kernel, 64, f);
    RUN(phases_kernel, 32, f);
    RUN(global_only_kernel, 32, f, g);
    armo_banks_stop();

    expect("stride1", 1, 1, 1);
    expect("stride2", 1, 2, 1);
    expect("stride32", 1, 32, 1);
    expect("broadcast_kernel", 1, 1, 1);
    expect("half_kernel", 1, 1, 1);
    expect("same_word_store_kernel", 1, 1, 1);
    expect("wide8_kernel", 1, 2, 2);
    expect("wide16", 1, 4, 4);
    expect("wide16_stride2", 1, 8, 4);
    expect("wide16_store_kernel", 1, 4, 4);
    expect("even_lanes_kernel", 1, 16, 1);
    expect("old_vt_store_kernel", 1, 16, 1);
    expect("loop_kernel", 4, 4, 4);
    expect("two_warps_kernel", 2, 2, 2);
    expect("phases_kernel", 3, 5, 3);
    expect("global_only_kernel", 0, 0, 0);

    char worst[512];
    const bool named = armo_banks_worst_site("old_vt_store_kernel", worst, sizeof worst) &&
                       strstr(worst, "test_bank_counter.cpp:") && strstr(worst, "16-way store");
    g_checks++;
    if (!named) g_failed++;
    printf("%s worst site of old_vt_store_kernel named: %s\n", named ? "ok  " : "FAIL",
           named ? worst : "(none)");

    cudaFree(f);
    cudaFree(g);
    cudaFree(h);
    cudaFree(u2);
    cudaFree(u4);
    printf("emu_bank_counter: %d checks, %d failed\n", g_checks, g_failed);
    return g_failed ? 1 : 0;
}
