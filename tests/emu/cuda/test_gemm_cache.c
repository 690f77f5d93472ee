/* test_gemm_cache.c — the cuBLASLt GEMM layer's algorithm cache
 * (kernels/gemm.cu) on the emulator, where the fake cuBLASLt counts the
 * heuristic queries (armo_emu_cublaslt_heuristic_calls):
 *   - 64 batches of 100..163 tokens through one weight make one query per
 *     token bucket (100..112 -> 112, ..128, ..160, ..192: 4), not one per
 *     batch; a second pass makes none; other weight shapes and pointer
 *     alignments get their own;
 *   - every result equals a double-precision reference (bf16 rounding bound);
 *   - with a stricter cuBLASLt that runs an algorithm only at the n it was
 *     chosen for (ARMO_EMU_CUBLASLT_EXACT_N=1, in a child process), the layer
 *     falls back to a choice for the exact n, caches it, and stays correct;
 *   - ARMO_GEMM_LOG=1 prints each choice once, with its token range. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"

long armo_emu_cublaslt_heuristic_calls(void);

#define IN 64
#define OUT 32
#define MAXN 200

static uint16_t g_x[MAXN * IN], g_w[OUT * IN];

/* max |y - ref| / max |ref| over the n x OUT result */
static double gemm_err(const uint16_t *d_y, int n) {
    uint16_t *y = gpu_host_alloc((size_t)n * OUT * 2);
    gpu_download(y, d_y, (size_t)n * OUT * 2);
    double worst = 0.0, scale = 1e-30;
    for (int r = 0; r < n; r++)
        for (int o = 0; o < OUT; o++) {
            double ref = 0.0;
            for (int i = 0; i < IN; i++)
                ref += (double)armo_bf16_to_f32(g_x[r * IN + i]) * armo_bf16_to_f32(g_w[o * IN + i]);
            const double d = fabs(armo_bf16_to_f32(y[r * OUT + o]) - ref);
            if (d > worst || d != d) worst = d != d ? INFINITY : d;
            if (fabs(ref) > scale) scale = fabs(ref);
        }
    free(y);
    return worst / scale;
}

/* n = lo..hi through one context; returns the worst error */
static double sweep(armo_gemm *g, uint16_t *d_y, const uint16_t *d_x, const uint16_t *d_w, int lo,
                    int hi) {
    armo_err e;
    double worst = 0.0;
    for (int n = lo; n <= hi; n++) {
        GPU_CHECK(cudaMemset(d_y, 0xFF, (size_t)MAXN * OUT * 2));
        if (armo_gemm_bf16(g, d_y, d_x, d_w, n, IN, OUT, 0, &e)) {
            CHECK(0, "n %d: %s", n, e.msg);
            return INFINITY;
        }
        const double err = gemm_err(d_y, n);
        if (err > worst) worst = err;
    }
    return worst;
}

static void strict_child(void) {
    putenv("ARMO_EMU_CUBLASLT_EXACT_N=1");
    putenv("ARMO_GEMM_LOG=1");
    armo_gemm *g;
    armo_err e;
    if (armo_gemm_create(&g, 0, &e)) _exit(2);
    uint16_t *d_x = gpu_upload(g_x, sizeof g_x), *d_w = gpu_upload(g_w, sizeof g_w);
    uint16_t *d_y = gpu_alloc((size_t)MAXN * OUT * 2);
    const long before = armo_emu_cublaslt_heuristic_calls();
    const double err = sweep(g, d_y, d_x, d_w, 100, 109);
    const double err2 = sweep(g, d_y, d_x, d_w, 100, 109);
    const long calls = armo_emu_cublaslt_heuristic_calls() - before;
    printf("strict cuBLASLt: 2 x 10 batches, %ld heuristic queries, worst rel err %.3g %.3g\n",
           calls, err, err2);
    /* 1 for the bucket, then 1 exact choice per n, then none on the second pass */
    const int ok = calls == 11 && err <= 1e-2 && err2 <= 1e-2;
    armo_gemm_destroy(g);
    gpu_free(d_x); gpu_free(d_y); gpu_free(d_w);
    _exit(ok ? 0 : 1);
}

int main(void) {
    gpu_test_require_device();
    gpu_rng rng;
    gpu_rng_seed(&rng, 91);
    gpu_fill_bf16(&rng, g_x, NULL, MAXN * IN, 1.0f);
    gpu_fill_bf16(&rng, g_w, NULL, OUT * IN, 0.1f);
    armo_gemm *g;
    armo_err e;
    CHECK(armo_gemm_create(&g, 0, &e) == 0, "%s", e.msg);
    uint16_t *d_x = gpu_upload(g_x, sizeof g_x), *d_w = gpu_upload(g_w, sizeof g_w);
    uint16_t *d_y = gpu_alloc((size_t)MAXN * OUT * 2 + 16);

    long c0 = armo_emu_cublaslt_heuristic_calls();
    double err = sweep(g, d_y, d_x, d_w, 100, 163);
    long calls = armo_emu_cublaslt_heuristic_calls() - c0;
    printf("64 batches of 100..163 tokens: %ld heuristic queries, worst rel err %.3g\n", calls, err);
    CHECK(calls == 4, "64 batches of 100..163 tokens made %ld heuristic queries, expected 4 "
          "(one per token bucket)", calls);
    CHECK(err <= 1e-2, "worst rel err %.3g", err);

    c0 = armo_emu_cublaslt_heuristic_calls();
    err = sweep(g, d_y, d_x, d_w, 100, 163);
    calls = armo_emu_cublaslt_heuristic_calls() - c0;
    CHECK(calls == 0 && err <= 1e-2, "second pass: %ld queries, rel err %.3g", calls, err);

    c0 = armo_emu_cublaslt_heuristic_calls();
    err = sweep(g, d_y, d_x, d_w, 1, 16);
    calls = armo_emu_cublaslt_heuristic_calls() - c0;
    printf("batches of 1..16 tokens: %ld heuristic queries\n", calls);
    CHECK(calls == 16 && err <= 1e-2, "1..16 tokens are chosen exactly: %ld queries, rel err %.3g",
          calls, err);

    /* a pointer 16 bytes into its buffer is another key (alignment) */
    c0 = armo_emu_cublaslt_heuristic_calls();
    CHECK(armo_gemm_bf16(g, d_y + 8, d_x, d_w, 120, IN, OUT, 0, &e) == 0, "%s", e.msg);
    calls = armo_emu_cublaslt_heuristic_calls() - c0;
    CHECK(calls == 1 && gemm_err(d_y + 8, 120) <= 1e-2,
          "a 16-byte aligned output: %ld queries (expected 1)", calls);

    /* the strict cuBLASLt, with the choice log */
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) strict_child();
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the fallback to an exact choice (strict cuBLASLt) failed: status %d", status);

    armo_gemm_destroy(g);
    gpu_free(d_x); gpu_free(d_y); gpu_free(d_w);
    return test_finish("emu_gemm_cache");
}
