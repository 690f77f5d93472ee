/* test_gemm.c — the cuBLASLt GEMM layer against cpu_matmul:
 *   n 1000 x 4096 -> 6144 through the fused QKV weight (Wq 4096 rows, Wk and
 *     Wv 1024 rows each), compared with Wq, Wk, Wv applied separately;
 *   n 1000 x 4096 -> 14336 (one projection), twice (the cached algorithm);
 *   n 7 x 4096 -> 2*14336 through the fused gate|up weight, compared with
 *     Wgate and Wup separately, and then through armo_swiglu_bf16;
 *   n 7 x 14336 -> 4096 (down projection shape);
 *   n 5 with x and y 16 bytes into their buffers (alignment-aware heuristic);
 *   refusals: in not a multiple of 8, a pointer 8 bytes into its buffer;
 *   the algorithm cache (64 keys, then evicted in turn): n 5 x 64 -> out
 *     for 70 values of out (past the 64th entry each new key evicts the
 *     oldest), then evicted and still-cached shapes again (the emulator's
 *     fake counts the heuristic queries: one per new or evicted key, none
 *     for a cached one); one shape with
 *     256-byte aligned pointers, then the same shape 16 bytes in (an
 *     algorithm cached for 256-byte alignment would refuse those: the cache
 *     key holds the alignment), then aligned again.
 * The same shapes run against the CPU emulator (cuBLASLt faked from its
 * documented descriptor semantics), about half a minute there.
 * The CPU reference runs on sampled rows (first, last, random) to keep it
 * cheap; the whole output is checked for NaN (poisoned before the run). */
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"

#if GPU_TEST_EMULATED
/* the fake cuBLASLt's count of heuristic queries (tests/emu/cuda) */
long armo_emu_cublaslt_heuristic_calls(void);
#define HEURISTIC_CALLS() armo_emu_cublaslt_heuristic_calls()
#else
#define HEURISTIC_CALLS() -1L
#endif

typedef struct {
    uint16_t *host;
    float *f32;
    uint16_t *dev;
    int rows, cols;
} mat;

static mat make_mat(gpu_rng *rng, int rows, int cols, float scale, int upload) {
    mat m = {0};
    const size_t count = (size_t)rows * cols;
    m.rows = rows;
    m.cols = cols;
    m.host = gpu_host_alloc(count * 2);
    m.f32 = gpu_host_alloc(count * 4);
    gpu_fill_bf16(rng, m.host, m.f32, count, scale);
    if (upload) m.dev = gpu_upload(m.host, count * 2);
    return m;
}

static void free_mat(mat *m) {
    free(m->host);
    free(m->f32);
    if (m->dev) gpu_free(m->dev);
}

/* Reference for rows `rows` of x · Wᵀ, written as [nrows, w.rows]. */
static float *ref_rows(const mat *x, const mat *w, const int *rows, int nrows) {
    float *xs = gpu_host_alloc((size_t)nrows * x->cols * 4);
    for (int r = 0; r < nrows; r++)
        memcpy(xs + (size_t)r * x->cols, x->f32 + (size_t)rows[r] * x->cols, (size_t)x->cols * 4);
    armo_weight aw = {"w", ARMO_DT_BF16, w->host, w->rows, w->cols};
    float *y = gpu_host_alloc((size_t)nrows * w->rows * 4);
    cpu_matmul(y, xs, &aw, nrows, 8);
    free(xs);
    return y;
}

static int sample_rows(int n, int *rows, gpu_rng *rng) {
    if (n <= 16) {
        for (int i = 0; i < n; i++) rows[i] = i;
        return n;
    }
    int m = 0;
    rows[m++] = 0;
    rows[m++] = 1;
    rows[m++] = n - 1;
    while (m < 16) rows[m++] = (int)((gpu_rng_uniform(rng, 0.5f) + 0.5f) * (float)(n - 1));
    return m;
}

/* Compares columns [col0, col0 + ref_cols) of the sampled rows of y
 * ([n, y_cols] bf16 on the host as fp32) with ref [nrows, ref_cols]. */
static void compare(const char *what, const float *y, int y_cols, int col0, const float *ref,
                    int ref_cols, const int *rows, int nrows) {
    float *got = gpu_host_alloc((size_t)nrows * ref_cols * 4);
    for (int r = 0; r < nrows; r++)
        memcpy(got + (size_t)r * ref_cols, y + (size_t)rows[r] * y_cols + col0, (size_t)ref_cols * 4);
    size_t nan = 0;
    const double err = gpu_rel_err(got, ref, (size_t)nrows * ref_cols, &nan);
    CHECK(nan == 0 && err <= 1e-2, "%s: rel err %.3g, %zu NaN", what, err, nan);
    printf("%-34s rel err %.3g\n", what, err);
    free(got);
}

static size_t count_nan(const float *y, size_t count) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) bad += !(y[i] == y[i]);
    return bad;
}

int main(void) {
    gpu_test_require_device();
    armo_err err;
    armo_gemm *g = NULL;
    if (armo_gemm_create(&g, 0, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpu_rng rng;
    gpu_rng_seed(&rng, 71);
    const int H = 4096, nh = 32, nkv = 8, hd = 128, I = 14336;
    int rows[16];

    /* ---- fused QKV, n 1000 ---- */
    {
        const int n = 1000, out = (nh + 2 * nkv) * hd;
        mat x = make_mat(&rng, n, H, 1.0f, 1);
        mat wq = make_mat(&rng, nh * hd, H, 0.03f, 0), wk = make_mat(&rng, nkv * hd, H, 0.03f, 0),
            wv = make_mat(&rng, nkv * hd, H, 0.03f, 0);
        uint16_t *d_w = gpu_alloc((size_t)out * H * 2);
        /* host sources: the loader path (cudaMemcpyDefault from pageable memory) */
        CHECK(armo_build_qkv_weight(d_w, wq.host, wk.host, wv.host, nh, nkv, hd, H, 0, &err) == 0,
              "%s", err.msg);
        uint16_t *d_y = gpu_alloc_poisoned((size_t)n * out * 2);
        CHECK(armo_gemm_bf16(g, d_y, x.dev, d_w, n, H, out, 0, &err) == 0, "%s", err.msg);
        float *y = gpu_download_bf16_as_f32(d_y, (size_t)n * out);
        CHECK(count_nan(y, (size_t)n * out) == 0, "QKV GEMM left NaN / unwritten elements");
        const int m = sample_rows(n, rows, &rng);
        float *rq = ref_rows(&x, &wq, rows, m), *rk = ref_rows(&x, &wk, rows, m),
              *rv = ref_rows(&x, &wv, rows, m);
        compare("QKV n 1000: q part", y, out, 0, rq, nh * hd, rows, m);
        compare("QKV n 1000: k part", y, out, nh * hd, rk, nkv * hd, rows, m);
        compare("QKV n 1000: v part", y, out, (nh + nkv) * hd, rv, nkv * hd, rows, m);
        free(rq); free(rk); free(rv); free(y);
        gpu_free(d_w); gpu_free(d_y);
        free_mat(&x); free_mat(&wq); free_mat(&wk); free_mat(&wv);
    }

    /* ---- n 1000 x 4096 -> 14336, run twice (second from the algorithm cache) ---- */
    {
        const int n = 1000;
        mat x = make_mat(&rng, n, H, 1.0f, 1), w = make_mat(&rng, I, H, 0.03f, 1);
        const int m = sample_rows(n, rows, &rng);
        float *ref = ref_rows(&x, &w, rows, m);
        uint16_t *d_y = gpu_alloc((size_t)n * I * 2);
        for (int rep = 0; rep < 2; rep++) {
            GPU_CHECK(cudaMemset(d_y, 0xFF, (size_t)n * I * 2));
            CHECK(armo_gemm_bf16(g, d_y, x.dev, w.dev, n, H, I, 0, &err) == 0, "%s", err.msg);
            float *y = gpu_download_bf16_as_f32(d_y, (size_t)n * I);
            CHECK(count_nan(y, (size_t)n * I) == 0, "GEMM 1000x4096->14336 left NaN");
            compare(rep ? "n 1000, 4096 -> 14336 (cached)" : "n 1000, 4096 -> 14336", y, I, 0, ref,
                    I, rows, m);
            free(y);
        }
        free(ref);
        gpu_free(d_y);
        free_mat(&x); free_mat(&w);
    }

    /* ---- fused gate|up, n 7, then SwiGLU; and the down projection shape ---- */
    {
        const int n = 7;
        mat x = make_mat(&rng, n, H, 1.0f, 1);
        mat wg = make_mat(&rng, I, H, 0.03f, 1), wu = make_mat(&rng, I, H, 0.03f, 1);
        uint16_t *d_w = gpu_alloc((size_t)2 * I * H * 2);
        /* device sources this time */
        CHECK(armo_build_gate_up_weight(d_w, wg.dev, wu.dev, I, H, 0, &err) == 0, "%s", err.msg);
        uint16_t *d_y = gpu_alloc_poisoned((size_t)n * 2 * I * 2);
        CHECK(armo_gemm_bf16(g, d_y, x.dev, d_w, n, H, 2 * I, 0, &err) == 0, "%s", err.msg);
        float *y = gpu_download_bf16_as_f32(d_y, (size_t)n * 2 * I);
        CHECK(count_nan(y, (size_t)n * 2 * I) == 0, "gate|up GEMM left NaN");
        const int m = sample_rows(n, rows, &rng);
        float *rg = ref_rows(&x, &wg, rows, m), *ru = ref_rows(&x, &wu, rows, m);
        compare("gate|up n 7: gate part", y, 2 * I, 0, rg, I, rows, m);
        compare("gate|up n 7: up part", y, 2 * I, I, ru, I, rows, m);

        /* SwiGLU on the GEMM's own output vs cpu_swiglu on the same bf16 values */
        float *gate = gpu_host_alloc((size_t)n * I * 4), *up = gpu_host_alloc((size_t)n * I * 4);
        for (int r = 0; r < n; r++) {
            memcpy(gate + (size_t)r * I, y + (size_t)r * 2 * I, (size_t)I * 4);
            memcpy(up + (size_t)r * I, y + (size_t)r * 2 * I + I, (size_t)I * 4);
        }
        float *sref = gpu_host_alloc((size_t)n * I * 4);
        cpu_swiglu(sref, gate, up, (int64_t)n * I);
        uint16_t *d_act = gpu_alloc_poisoned((size_t)n * I * 2);
        GPU_CHECK(armo_swiglu_bf16(d_act, d_y, n, I, 0));
        float *act = gpu_download_bf16_as_f32(d_act, (size_t)n * I);
        compare("swiglu on gate|up n 7", act, I, 0, sref, I, rows, m);

        /* down projection shape: [7, 14336] -> [7, 4096] */
        mat wd = make_mat(&rng, H, I, 0.01f, 1);
        mat xa = {0};
        xa.rows = n;
        xa.cols = I;
        xa.f32 = act; /* the bf16 activations as fp32: exactly the GEMM's input */
        uint16_t *d_o = gpu_alloc_poisoned((size_t)n * H * 2);
        CHECK(armo_gemm_bf16(g, d_o, d_act, wd.dev, n, I, H, 0, &err) == 0, "%s", err.msg);
        float *o = gpu_download_bf16_as_f32(d_o, (size_t)n * H);
        float *rd = ref_rows(&xa, &wd, rows, m);
        compare("down n 7, 14336 -> 4096", o, H, 0, rd, H, rows, m);

        free(rg); free(ru); free(y); free(gate); free(up); free(sref); free(act); free(o); free(rd);
        gpu_free(d_w); gpu_free(d_y); gpu_free(d_act); gpu_free(d_o);
        free_mat(&x); free_mat(&wg); free_mat(&wu); free_mat(&wd);
    }

    /* ---- pointers 16 bytes (not 256) into their buffers: n 5, 4096 -> 1024 ---- */
    {
        const int n = 5, out = 1024;
        mat x = make_mat(&rng, n, H, 1.0f, 0), w = make_mat(&rng, out, H, 0.03f, 1);
        uint16_t *d_xbuf = gpu_alloc(((size_t)n * H + 8) * 2);
        GPU_CHECK(cudaMemcpy(d_xbuf + 8, x.host, (size_t)n * H * 2, cudaMemcpyHostToDevice));
        uint16_t *d_ybuf = gpu_alloc_poisoned(((size_t)n * out + 8) * 2);
        CHECK(armo_gemm_bf16(g, d_ybuf + 8, d_xbuf + 8, w.dev, n, H, out, 0, &err) == 0, "%s",
              err.msg);
        float *y = gpu_download_bf16_as_f32(d_ybuf, (size_t)n * out + 8);
        const int m = sample_rows(n, rows, &rng);
        float *ref = ref_rows(&x, &w, rows, m);
        CHECK(count_nan(y + 8, (size_t)n * out) == 0, "offset GEMM left NaN");
        compare("n 5, 4096 -> 1024, 16-byte offsets", y + 8, out, 0, ref, out, rows, m);
        free(y); free(ref);
        gpu_free(d_xbuf); gpu_free(d_ybuf);
        free_mat(&x); free_mat(&w);
    }

    /* ---- the algorithm cache: more than 64 keys, eviction in turn ----
     * Keys are (token bucket, out, in, alignment), so distinct token counts
     * would share buckets: the shapes differ in out instead.  n 5 x 64 ->
     * out for out = 8, 16, ..., 560: W [560, 64], and shape out uses its first
     * out rows, so every result is the first out columns of one reference. */
    {
        const int n = 5, in = 64, nshapes = 70, wmax = 8 * nshapes;
        mat x = make_mat(&rng, n, in, 1.0f, 1), w = make_mat(&rng, wmax, in, 0.1f, 1);
        int all[5] = {0, 1, 2, 3, 4};
        float *ref = ref_rows(&x, &w, all, n); /* [5, 560] */
        float *ref_cols = gpu_host_alloc((size_t)n * wmax * 4);
        uint16_t *d_y = gpu_alloc((size_t)n * wmax * 2);
        /* out 8..560 (the 5 shapes above + 70 here: the 64 entries fill and
         * the oldest 11 are evicted, out 8 among them), then out 8 and 24
         * again (evicted: chosen anew, evicting in turn), 560 and 512 (still
         * cached), 8 once more (cached again) */
        const int again[5] = {8, 24, wmax, 512, 8};
        const long again_queries[5] = {1, 1, 0, 0, 0}; /* emulator: heuristic queries made */
        int bad_runs = 0;
        for (int step = 0; step < nshapes + 5; step++) {
            const int out = step < nshapes ? 8 * (step + 1) : again[step - nshapes];
            const long calls0 = HEURISTIC_CALLS();
            GPU_CHECK(cudaMemset(d_y, 0xFF, (size_t)n * wmax * 2));
            err.msg[0] = 0;
            const int rc = armo_gemm_bf16(g, d_y, x.dev, w.dev, n, in, out, 0, &err);
            CHECK(rc == 0, "cache run %d (n 5, 64 -> %d): %s", step, out, err.msg);
            if (GPU_TEST_EMULATED) {
                const long queries = HEURISTIC_CALLS() - calls0,
                           want = step < nshapes ? 1 : again_queries[step - nshapes];
                CHECK(queries == want, "cache run %d (n 5, 64 -> %d): %ld heuristic queries, "
                      "expected %ld (%s)", step, out, queries, want,
                      want ? "a new or evicted key" : "a cached key");
            }
            float *y = gpu_download_bf16_as_f32(d_y, (size_t)n * wmax);
            for (int r = 0; r < n; r++)
                memcpy(ref_cols + (size_t)r * out, ref + (size_t)r * wmax, (size_t)out * 4);
            size_t nan = 0;
            const double e = gpu_rel_err(y, ref_cols, (size_t)n * out, &nan);
            /* past the n x out result the buffer stays poisoned */
            const size_t rest = (size_t)n * (wmax - out);
            const size_t past = rest - count_nan(y + (size_t)n * out, rest);
            const int ok = rc == 0 && nan == 0 && e <= 1e-2 && past == 0;
            CHECK(ok, "cache run %d (n 5, 64 -> %d): rel err %.3g, %zu NaN, %zu elements past "
                  "the result written", step, out, e, nan, past);
            if (step >= nshapes || !ok)
                printf("cache run %2d: n 5, 64 -> %3d rel err %.3g\n", step, out, e);
            bad_runs += !ok;
            free(y);
        }
        printf("algorithm cache: %d shapes, %d runs, %d wrong\n", nshapes, nshapes + 5, bad_runs);
        free(ref); free(ref_cols);
        gpu_free(d_y);
        free_mat(&x); free_mat(&w);
    }

    /* ---- one shape, 256-byte aligned pointers first, then 16 bytes in ---- */
    {
        const int n = 24, in = 128, out = 96;
        mat x = make_mat(&rng, n, in, 1.0f, 0), w = make_mat(&rng, out, in, 0.1f, 1);
        const int m = sample_rows(n, rows, &rng);
        float *ref = ref_rows(&x, &w, rows, m);
        uint16_t *d_xbuf = gpu_alloc(((size_t)n * in + 8) * 2);
        uint16_t *d_ybuf = gpu_alloc(((size_t)n * out + 8) * 2);
        const int offs[3] = {0, 8, 0}; /* elements: 0 and 16 bytes */
        for (int i = 0; i < 3; i++) {
            const int o = offs[i];
            GPU_CHECK(cudaMemset(d_ybuf, 0xFF, ((size_t)n * out + 8) * 2));
            GPU_CHECK(cudaMemcpy(d_xbuf + o, x.host, (size_t)n * in * 2, cudaMemcpyHostToDevice));
            err.msg[0] = 0;
            const long calls0 = HEURISTIC_CALLS();
            const int rc = armo_gemm_bf16(g, d_ybuf + o, d_xbuf + o, w.dev, n, in, out, 0, &err);
            CHECK(rc == 0, "n 24, 128 -> 96 at offset %d bytes (run %d): %s", 2 * o, i, err.msg);
            /* emulator: the 16-byte run is a key of its own, the last a cached one */
            CHECK(!GPU_TEST_EMULATED || HEURISTIC_CALLS() - calls0 == (i < 2 ? 1 : 0),
                  "n 24, 128 -> 96 run %d: %ld heuristic queries, expected %d", i,
                  HEURISTIC_CALLS() - calls0, i < 2 ? 1 : 0);
            float *y = gpu_download_bf16_as_f32(d_ybuf, (size_t)n * out + 8);
            CHECK(count_nan(y + o, (size_t)n * out) == 0, "offset %d GEMM left NaN", 2 * o);
            char what[64];
            snprintf(what, sizeof what, "n 24, 128 -> 96, %s", o ? "16 bytes in" : "256-aligned");
            compare(what, y + o, out, 0, ref, out, rows, m);
            free(y);
        }
        free(ref);
        gpu_free(d_xbuf); gpu_free(d_ybuf);
        free_mat(&x); free_mat(&w);
    }

    /* argument checks */
    CHECK(armo_gemm_bf16(g, NULL, NULL, NULL, 7, 4095, 8, 0, &err) == -1, "in 4095 must be refused");
    CHECK(test_contains(err.msg, "multiples of 8"), "message: %s", err.msg);
    {
        uint16_t *d_buf = gpu_alloc((size_t)8 * 64 * 2 + 16);
        CHECK(armo_gemm_bf16(g, d_buf, d_buf + 4, d_buf, 1, 64, 8, 0, &err) == -1,
              "an x pointer 8 bytes into its buffer must be refused");
        CHECK(test_contains(err.msg, "16-byte aligned"), "message: %s", err.msg);
        gpu_free(d_buf);
    }

    armo_gemm_destroy(g);
    return test_finish("gpu_test_gemm");
}
