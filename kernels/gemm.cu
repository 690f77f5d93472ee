/* gemm.cu — the cuBLASLt GEMM layer: Y[n, out] = X[n, in] · Wᵀ, bf16 in and
 * out, fp32 accumulation, and the fused weight layouts (QKV, gate|up).
 *
 * Row-major Y = X Wᵀ is, seen column-major, Yᵀ[out, n] = W[out, in] · Xᵀ:
 * W row-major [out, in] is column-major [in, out] with ld = in, taken with
 * op T; X row-major [n, in] is column-major [in, n], op N; Y column-major
 * [out, n] with ld = out.  That "TN" form is cuBLASLt's best-served layout.
 * The heuristic's first algorithm is cached per (token bucket, out, in,
 * pointer alignment): the engine calls a few weight shapes over and over with
 * a token count that differs in nearly every batch, and the heuristic query is
 * not free, so the choice is made once per bucket (token_bucket: n up to 16,
 * then quarter-octave steps, at most 25% above n) at the bucket's top; if
 * cuBLASLt refuses that algorithm for the exact shape, one is chosen for the
 * exact n and cached apart.  ARMO_GEMM_LOG=1 prints each choice once.  The
 * heuristic is told the pointers' real alignment (256 bytes for whole
 * cudaMalloc buffers, else 16), since an algorithm chosen for 256-byte
 * alignment may refuse a pointer into the middle of a buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "kernels/armo_kernels.h"
#include "kernels/cuda_check.h"

#define GEMM_CACHE_SIZE 64

typedef struct {
    int n, in, out;
    uint32_t align;
    cublasLtMatmulAlgo_t algo;
} gemm_cache_entry;

struct armo_gemm {
    int log; /* ARMO_GEMM_LOG=1: each algorithm choice on stderr */
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    gemm_cache_entry cache[GEMM_CACHE_SIZE];
    int ncached, next_evict;
};

extern "C" int armo_gemm_create(armo_gemm **out, size_t workspace_bytes, armo_err *e) {
    *out = NULL;
    armo_gemm *g = (armo_gemm *)calloc(1, sizeof *g);
    if (!g)
        return armo_err_set(e, "%s:%d: out of host memory for the GEMM context", __FILE__,
                            __LINE__);
    g->workspace_bytes = workspace_bytes ? workspace_bytes : ARMO_GEMM_DEFAULT_WORKSPACE;
    {
        const char *log = getenv("ARMO_GEMM_LOG");
        g->log = log && *log && strcmp(log, "0") != 0;
    }
    cublasStatus_t st = cublasLtCreate(&g->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(g);
        return armo_err_set(e, "%s:%d: cublasLtCreate failed: cuBLAS status %d", __FILE__,
                            __LINE__, (int)st);
    }
    cudaError_t cst = cudaMalloc(&g->workspace, g->workspace_bytes);
    if (cst != cudaSuccess) {
        const size_t bytes = g->workspace_bytes;
        cublasLtDestroy(g->lt);
        free(g);
        return armo_err_set(e, "%s:%d: cudaMalloc of %zu bytes of GEMM workspace failed: %s",
                            __FILE__, __LINE__, bytes, cudaGetErrorString(cst));
    }
    *out = g;
    return 0;
}

extern "C" void armo_gemm_destroy(armo_gemm *g) {
    if (!g) return;
    cudaFree(g->workspace);
    cublasLtDestroy(g->lt);
    free(g);
}

/* The token count an algorithm is chosen for: n itself up to 16, else n
 * rounded up to a quarter of its octave (p <= n < 2p: a multiple of p/4), so
 * that the batches of a run, whose token counts all differ, share a handful
 * of heuristic queries (1000 and 1023 both use the one made at 1024) while
 * every choice is made for a shape at most 25% larger than the one it runs. */
static int token_bucket(int n) {
    if (n <= 16) return n;
    int p = 16;
    while (p <= n / 2) p *= 2;
    const int step = p / 4;
    return (int)(((long long)n + step - 1) / step * step);
}

static const cublasLtMatmulAlgo_t *cached_algo(armo_gemm *g, int n, int in, int out,
                                               uint32_t align) {
    for (int i = 0; i < g->ncached; i++)
        if (g->cache[i].n == n && g->cache[i].in == in && g->cache[i].out == out &&
            g->cache[i].align == align)
            return &g->cache[i].algo;
    return NULL;
}

/* Asks the heuristic for the GEMM at n tokens (layouts made here) and caches
 * its first algorithm under (key, in, out, align): key is the bucket n, or -n
 * for an exact choice; ARMO_GEMM_LOG=1 prints each choice once. */
static const cublasLtMatmulAlgo_t *choose_algo(armo_gemm *g, cublasLtMatmulDesc_t op,
                                               cublasLtMatrixLayout_t lw, int n, int key, int in,
                                               int out, uint32_t align, armo_err *e) {
    const cublasLtMatmulAlgo_t *algo = NULL;
    cublasLtMatrixLayout_t lx = NULL, ly = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    ARMO_CUBLAS_TRY_GOTO(
        e, done, cublasLtMatrixLayoutCreate(&lx, CUDA_R_16BF, (uint64_t)in, (uint64_t)n, (int64_t)in));
    ARMO_CUBLAS_TRY_GOTO(
        e, done,
        cublasLtMatrixLayoutCreate(&ly, CUDA_R_16BF, (uint64_t)out, (uint64_t)n, (int64_t)out));
    ARMO_CUBLAS_TRY_GOTO(e, done, cublasLtMatmulPreferenceCreate(&pref));
    ARMO_CUBLAS_TRY_GOTO(
        e, done,
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &g->workspace_bytes, sizeof g->workspace_bytes));
    {
        const cublasLtMatmulPreferenceAttributes_t align_of[4] = {
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 4; i++)
            ARMO_CUBLAS_TRY_GOTO(
                e, done,
                cublasLtMatmulPreferenceSetAttribute(pref, align_of[i], &align, sizeof align));
    }
    ARMO_CUBLAS_TRY_GOTO(
        e, done, cublasLtMatmulAlgoGetHeuristic(g->lt, op, lw, lx, ly, ly, pref, 1, &result, &found));
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS) {
        armo_err_set(e, "%s:%d: cuBLASLt found no algorithm for the bf16 GEMM n %d, in %d, out %d",
                     __FILE__, __LINE__, n, in, out);
        goto done;
    }
    {
        const int slot =
            g->ncached < GEMM_CACHE_SIZE ? g->ncached++ : g->next_evict++ % GEMM_CACHE_SIZE;
        g->cache[slot].n = key;
        g->cache[slot].in = in;
        g->cache[slot].out = out;
        g->cache[slot].align = align;
        g->cache[slot].algo = result.algo;
        algo = &g->cache[slot].algo;
    }
    if (g->log) {
        int lo = n; /* the smallest token count of the bucket */
        while (key > 0 && lo > 1 && token_bucket(lo - 1) == n) lo--;
        fprintf(stderr, "armo gemm: %d -> %d, %u-byte aligned, batches of %d..%d tokens: chosen "
                        "at %d (workspace %zu bytes, %.2f waves)\n", in, out, align, lo, n, n,
                result.workspaceSize, (double)result.wavesCount);
    }
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (ly) cublasLtMatrixLayoutDestroy(ly);
    if (lx) cublasLtMatrixLayoutDestroy(lx);
    return algo;
}

extern "C" int armo_gemm_bf16(armo_gemm *g, uint16_t *y, const uint16_t *x, const uint16_t *w,
                              int n, int in, int out, cudaStream_t stream, armo_err *e) {
    if (!g || n < 0 || in <= 0 || out <= 0)
        return armo_err_set(e, "%s:%d: bad GEMM arguments (n %d, in %d, out %d)", __FILE__,
                            __LINE__, n, in, out);
    if (in % 8 != 0 || out % 8 != 0 || (((uintptr_t)x | (uintptr_t)w | (uintptr_t)y) & 15) != 0)
        return armo_err_set(e, "%s:%d: GEMM needs 16-byte aligned pointers and in/out multiples "
                            "of 8 (n %d, in %d, out %d)", __FILE__, __LINE__, n, in, out);
    if (n == 0) return 0;
    const uint32_t align =
        (((uintptr_t)x | (uintptr_t)w | (uintptr_t)y) & 255) == 0 ? 256u : 16u;

    int rc = -1;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t lw = NULL, lx = NULL, ly = NULL;
    const cublasOperation_t trans_w = CUBLAS_OP_T, trans_x = CUBLAS_OP_N;
    const float alpha = 1.0f, beta = 0.0f;
    const int bucket = token_bucket(n);
    const cublasLtMatmulAlgo_t *algo = NULL;
    cublasStatus_t st;

    ARMO_CUBLAS_TRY_GOTO(e, fail, cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    ARMO_CUBLAS_TRY_GOTO(
        e, fail,
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_w, sizeof trans_w));
    ARMO_CUBLAS_TRY_GOTO(
        e, fail,
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_x, sizeof trans_x));
    /* A = W: column-major [in, out] (ld in); B = X: [in, n] (ld in);
     * C = D = Y: [out, n] (ld out) */
    ARMO_CUBLAS_TRY_GOTO(
        e, fail,
        cublasLtMatrixLayoutCreate(&lw, CUDA_R_16BF, (uint64_t)in, (uint64_t)out, (int64_t)in));
    ARMO_CUBLAS_TRY_GOTO(
        e, fail,
        cublasLtMatrixLayoutCreate(&lx, CUDA_R_16BF, (uint64_t)in, (uint64_t)n, (int64_t)in));
    ARMO_CUBLAS_TRY_GOTO(
        e, fail,
        cublasLtMatrixLayoutCreate(&ly, CUDA_R_16BF, (uint64_t)out, (uint64_t)n, (int64_t)out));

    /* an exact choice made after a bucket's algorithm was refused, else the bucket's */
    algo = cached_algo(g, -n, in, out, align);
    if (!algo) algo = cached_algo(g, bucket, in, out, align);
    if (!algo) algo = choose_algo(g, op, lw, bucket, bucket, in, out, align, e);
    if (!algo) goto fail;
    st = cublasLtMatmul(g->lt, op, &alpha, w, lw, x, lx, &beta, y, ly, y, ly, algo, g->workspace,
                        g->workspace_bytes, stream);
    if ((st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE) && bucket != n) {
        /* the bucket's algorithm does not take this exact shape: choose for it
         * (cached under -n, apart from the buckets) */
        algo = choose_algo(g, op, lw, n, -n, in, out, align, e);
        if (!algo) goto fail;
        st = cublasLtMatmul(g->lt, op, &alpha, w, lw, x, lx, &beta, y, ly, y, ly, algo,
                            g->workspace, g->workspace_bytes, stream);
    }
    if (st != CUBLAS_STATUS_SUCCESS) {
        armo_err_set(e, "%s:%d: cublasLtMatmul (n %d, in %d, out %d) failed: %s", __FILE__,
                     __LINE__, n, in, out, cublasLtGetStatusString(st));
        goto fail;
    }
    rc = 0;
fail:
    if (ly) cublasLtMatrixLayoutDestroy(ly);
    if (lx) cublasLtMatrixLayoutDestroy(lx);
    if (lw) cublasLtMatrixLayoutDestroy(lw);
    if (op) cublasLtMatmulDescDestroy(op);
    return rc;
}

/* Copies parts[i] ([rows[i], cols] row-major) one after the other into dst. */
static int copy_rows(uint16_t *dst, const uint16_t *const *parts, const int64_t *rows, int nparts,
                     int64_t cols, cudaStream_t stream, armo_err *e) {
    size_t off = 0;
    for (int i = 0; i < nparts; i++) {
        const size_t count = (size_t)rows[i] * (size_t)cols;
        ARMO_CUDA_TRY(e, cudaMemcpyAsync(dst + off, parts[i], count * sizeof(uint16_t),
                                         cudaMemcpyDefault, stream));
        off += count;
    }
    return 0;
}

extern "C" int armo_build_qkv_weight(uint16_t *dst, const uint16_t *wq, const uint16_t *wk,
                                     const uint16_t *wv, int nh, int nkv, int hd, int hidden,
                                     cudaStream_t stream, armo_err *e) {
    if (!dst || !wq || !wk || !wv || nh <= 0 || nkv <= 0 || hd <= 0 || hidden <= 0)
        return armo_err_set(e, "%s:%d: bad QKV weight arguments", __FILE__, __LINE__);
    const uint16_t *parts[3] = {wq, wk, wv};
    const int64_t rows[3] = {(int64_t)nh * hd, (int64_t)nkv * hd, (int64_t)nkv * hd};
    return copy_rows(dst, parts, rows, 3, hidden, stream, e);
}

extern "C" int armo_build_gate_up_weight(uint16_t *dst, const uint16_t *wgate, const uint16_t *wup,
                                         int inter, int hidden, cudaStream_t stream, armo_err *e) {
    if (!dst || !wgate || !wup || inter <= 0 || hidden <= 0)
        return armo_err_set(e, "%s:%d: bad gate|up weight arguments", __FILE__, __LINE__);
    const uint16_t *parts[2] = {wgate, wup};
    const int64_t rows[2] = {inter, inter};
    return copy_rows(dst, parts, rows, 2, hidden, stream, e);
}
