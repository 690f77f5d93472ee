/* test_cpu_gemm.c — the CPU backend's BLAS GEMM (host/engine/cpu_gemm.h):
 * right against a double-precision reference, and bit-identical whatever
 * the row count, the rows' place in the batch and the thread count.
 *
 * Packing sequences into one batch must not change a bit of any sequence's
 * result (the CPU backend is the oracle), so a row's output may depend only
 * on that row.  BLAS libraries do not promise that: OpenBLAS, for one, takes
 * a different kernel for small products (its "small matrix" path, chosen by
 * M*N*K) and splits the work differently per thread count.  cpu_gemm keeps
 * every sgemm call at a fixed shape; this test checks the result of that on
 * the BLAS and CPU it runs on: for every row count 1..N (sampled for the
 * large shape) at two offsets into the batch, with 1, 2 and 3 threads, each
 * output row must equal, bit for bit, the same row computed in the full
 * batch with one thread.  Shapes: small ones that fall into OpenBLAS's small
 * path (64x64, 17x33), weight row counts that leave a partial block
 * (CPU_GEMM_COLS), several ops sharing x, and a Llama-like 1024x1024. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_gemm.h"
#include "tests/util/test_util.h"

static uint64_t g_rng = 0x243F6A8885A308D3ull;

static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) / 8388608.0 - 1.0);
}

static float *rand_vec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    if (!v) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(2);
    }
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

/* ops share x [n, in]; weights [outs[i], in]; ys[i] [n, outs[i]] */
static int gemm(const float *x, int n, int in, float **ws, float **ys, const int *outs, int nops,
                int threads) {
    cpu_gemm_op ops[4];
    for (int i = 0; i < nops; i++) ops[i] = (cpu_gemm_op){ws[i], ys[i], outs[i]};
    armo_err e;
    int rc = cpu_gemm(x, n, in, ops, nops, threads, &e);
    CHECK(rc == 0, "cpu_gemm(n %d, in %d): %s", n, in, e.msg);
    return rc;
}

/* One shape: nops weights of outs[i] rows on N rows of inner size in;
 * row counts 1..N stepping by step. */
static void check_shape(int N, int in, const int *outs, int nops, int step) {
    float *x = rand_vec((size_t)N * in, 1.0f);
    float *ws[4], *full[4], *part[4];
    for (int i = 0; i < nops; i++) {
        ws[i] = rand_vec((size_t)outs[i] * in, 1.0f / sqrtf((float)in));
        full[i] = malloc(sizeof(float) * (size_t)N * outs[i]);
        part[i] = malloc(sizeof(float) * (size_t)N * outs[i]);
        if (!full[i] || !part[i]) exit(2);
    }
    if (gemm(x, N, in, ws, full, outs, nops, 1)) goto out;

    /* right: each output against a double sum, within the worst-case bound of
     * an fp32 sum of in products (in * 2^-24 of the magnitude sum, whatever
     * order the BLAS adds them in) */
    int wrong = 0;
    for (int i = 0; i < nops; i++)
        for (int t = 0; t < N; t++)
            for (int r = 0; r < outs[i]; r++) {
                double s = 0, mag = 0;
                for (int j = 0; j < in; j++) {
                    double p = (double)x[(size_t)t * in + j] * ws[i][(size_t)r * in + j];
                    s += p;
                    mag += fabs(p);
                }
                double got = full[i][(size_t)t * outs[i] + r];
                if (!(fabs(got - s) <= in * 0x1p-24 * mag + 1e-30)) wrong++;
            }
    CHECK(wrong == 0, "in %d, %d ops (first out %d), %d rows: %d outputs off the double "
                      "reference", in, nops, outs[0], N, wrong);

    /* bit-identical: any row count, offset and thread count */
    int differ = 0, calls = 0;
    for (int rows = 1; rows <= N; rows = rows == N ? N + 1 : (rows + step > N ? N : rows + step))
        for (int k = 0; k < 2; k++) {
            /* offsets 0 and a second one that moves the rows to other
             * places inside the fixed-size chunks */
            int off = k == 0 ? 0 : (int)(((long)rows * 37 + 11) % (N - rows + 1));
            if (k == 1 && off == 0) continue;
            for (int threads = 1; threads <= 3; threads++) {
                for (int i = 0; i < nops; i++)
                    memset(part[i], 0xff, sizeof(float) * (size_t)rows * outs[i]); /* NaN */
                if (gemm(x + (size_t)off * in, rows, in, ws, part, outs, nops, threads)) goto out;
                calls++;
                for (int i = 0; i < nops; i++)
                    if (memcmp(part[i], full[i] + (size_t)off * outs[i],
                               sizeof(float) * (size_t)rows * outs[i])) {
                        if (differ++ < 5)
                            fprintf(stderr, "  in %d out %d (op %d): rows %d at offset %d, %d "
                                            "threads differ from the full batch\n",
                                    in, outs[i], i, rows, off, threads);
                    }
            }
        }
    CHECK(differ == 0, "in %d, %d ops (first out %d): %d of %d calls not bit-identical to the "
                       "full batch", in, nops, outs[0], differ, calls);
    printf("in %4d, outs", in);
    for (int i = 0; i < nops; i++) printf(" %d", outs[i]);
    printf(": %d rows, %d calls (rows 1..%d by %d, 2 offsets, 1-3 threads) bit-identical%s\n", N,
           calls, N, step, differ ? " NOT" : "");
out:
    for (int i = 0; i < nops; i++) {
        free(ws[i]);
        free(full[i]);
        free(part[i]);
    }
    free(x);
}

int main(void) {
    cpu_gemm_blas_init();
    printf("BLAS: %s\n", cpu_gemm_blas_name());
    const int N = 2 * CPU_GEMM_ROWS + 37; /* two full chunks and a partial one */
    /* OpenBLAS's small-matrix path: M*N*K small */
    check_shape(N, 64, (const int[]){64}, 1, 1);
    check_shape(N, 33, (const int[]){17}, 1, 1);
    check_shape(N, 48, (const int[]){32, 96, 8}, 3, 1);
    /* a partial weight block (CPU_GEMM_COLS) and an odd inner size */
    check_shape(N, 101, (const int[]){CPU_GEMM_COLS + 45}, 1, 3);
    /* the attention block's q, k, v of a small Llama (8/2 heads of 32) */
    check_shape(N, 256, (const int[]){256, 64, 64}, 3, 5);
    /* Llama-like width, rows sampled, one full chunk and a partial one */
    check_shape(CPU_GEMM_ROWS + 37, 1024, (const int[]){1024}, 1, 23);
    return test_finish("test_cpu_gemm");
}
