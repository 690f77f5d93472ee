/* cpu_attn.c — the CPU backend's attention in tiles of query rows (see
 * cpu_attn.h).
 *
 * One task: sequence s, query head h, query rows [r0, r0 + T) of the
 * sequence (T = CPU_ATTN_TILE; rows past the sequence's end are zero
 * padding).  With Qt the tile's queries and Kd, the tile's own keys, both
 * copied into zero-padded T x hd blocks:
 *   S[:, 0..r0)      = scale · Qt · K[0..r0)ᵀ     sgemm (T, r0, hd)
 *   S[:, r0..r0+T)   = scale · Qt · Kdᵀ           sgemm (T, T, hd)
 *   row i: m = max S[i][0..i], P = exp(S - m), l = Σ P   (fp32, j in order)
 *   Ot               = P[:, 0..r0) · V[0..r0)      sgemm (T, hd, r0)
 *   Ot[i]           += Σ_{r0 <= j <= i} P[i][j] V[j]   by hand: the causal square
 *   out[i]           = Ot[i] / l
 * Every sgemm's shape depends on the tile's index alone, never on the
 * sequence's length or the batch, so a row's result depends only on its own
 * rows 0..i (the BLAS computing each row of a call alike, which
 * tests/engine/test_cpu_gemm.c checks): the same bits in a longer or shorter
 * sequence, packed or alone, shared prefix or not.  Entries of S above the
 * diagonal are computed and never read, so a NaN in a later key or value
 * never reaches an earlier row.  Threads take task numbers from an atomic
 * counter (tasks numbered sequence by sequence, head by head, tile by tile);
 * each has its own scratch blocks. */
#include "host/engine/cpu_attn.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTN_MAX_THREADS 256

typedef struct {
    float *out;
    const float *q, *k, *v;
    const int32_t *cu_seqlens;
    int nseq, nh, nkv, hd;
    const int64_t *first_task;   /* [nseq + 1]: tasks before sequence s */
    atomic_long next;
} attn_ctx;

typedef struct {
    attn_ctx *ctx;
    float *s;                    /* [CPU_ATTN_TILE, longest sequence + CPU_ATTN_TILE] */
    float *qt, *kd, *ot;         /* [CPU_ATTN_TILE, hd] each */
} attn_arg;

/* rows [r0, r0 + rows) of a strided [., ld] matrix's hd columns into a
 * zero-padded [CPU_ATTN_TILE, hd] block */
static void copy_tile(float *dst, const float *src, size_t ld, int rows, int hd) {
    for (int r = 0; r < rows; r++) memcpy(dst + (size_t)r * hd, src + r * ld, sizeof(float) * hd);
    memset(dst + (size_t)rows * hd, 0, sizeof(float) * hd * (size_t)(CPU_ATTN_TILE - rows));
}

static void run_task(const attn_ctx *c, int64_t task, const attn_arg *a) {
    int lo = 0, hi = c->nseq - 1; /* the sequence: last s with first_task[s] <= task */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (c->first_task[mid] <= task) lo = mid;
        else hi = mid - 1;
    }
    const int s = lo, T = CPU_ATTN_TILE;
    const int64_t s0 = c->cu_seqlens[s];
    const int L = c->cu_seqlens[s + 1] - c->cu_seqlens[s];
    const int ntiles = (L + T - 1) / T;
    const int64_t local = task - c->first_task[s];
    const int h = (int)(local / ntiles), tile = (int)(local % ntiles);
    const int r0 = tile * T, rows = r0 + T < L ? T : L - r0, hd = c->hd;
    const int ld_s = r0 + T; /* S's row stride */
    const size_t qdim = (size_t)c->nh * hd, kvdim = (size_t)c->nkv * hd;
    const int g = h / (c->nh / c->nkv);
    const float scale = 1.0f / sqrtf((float)hd);
    const float *K = c->k + s0 * kvdim + (size_t)g * hd;
    const float *V = c->v + s0 * kvdim + (size_t)g * hd;
    float *S = a->s, *Qt = a->qt, *Kd = a->kd, *Ot = a->ot;

    copy_tile(Qt, c->q + (s0 + r0) * qdim + (size_t)h * hd, qdim, rows, hd);
    copy_tile(Kd, K + (size_t)r0 * kvdim, kvdim, rows, hd);
    if (r0 > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r0, hd, scale, Qt, hd, K,
                    (int)kvdim, 0.0f, S, ld_s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Qt, hd, Kd, hd, 0.0f,
                S + r0, ld_s);
    float inv_l[CPU_ATTN_TILE];
    for (int r = 0; r < rows; r++) {
        float *p = S + (size_t)r * ld_s;
        const int last = r0 + r;
        float m = -INFINITY;
        for (int j = 0; j <= last; j++)
            if (p[j] > m) m = p[j];
        float l = 0.0f;
        for (int j = 0; j <= last; j++) {
            p[j] = expf(p[j] - m);
            l += p[j];
        }
        inv_l[r] = 1.0f / l;
    }
    if (r0 > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, r0, 1.0f, S, ld_s, V,
                    (int)kvdim, 0.0f, Ot, hd);
    else
        memset(Ot, 0, sizeof(float) * (size_t)rows * hd);
    float *out = c->out + (s0 + r0) * qdim + (size_t)h * hd;
    for (int r = 0; r < rows; r++) {
        float *o = Ot + (size_t)r * hd;
        const float *p = S + (size_t)r * ld_s;
        for (int j = r0; j <= r0 + r; j++) {
            const float pj = p[j], *vj = V + (size_t)j * kvdim;
            for (int d = 0; d < hd; d++) o[d] += pj * vj[d];
        }
        float *dst = out + r * qdim;
        for (int d = 0; d < hd; d++) dst[d] = o[d] * inv_l[r];
    }
}

static void *attn_worker(void *arg) {
    attn_arg *a = arg;
    attn_ctx *c = a->ctx;
    const int64_t ntasks = c->first_task[c->nseq];
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= ntasks) break;
        run_task(c, t, a);
    }
    return NULL;
}

int cpu_attn(float *out, const float *q, const float *k, const float *v,
             const int32_t *cu_seqlens, int nseq, int nh, int nkv, int hd, int nthreads,
             armo_err *e) {
    if (nseq <= 0) return 0;
    int64_t *first = malloc(sizeof(int64_t) * ((size_t)nseq + 1));
    if (!first) return armo_err_set(e, "attention: out of memory for %d sequences", nseq);
    int maxlen = 0;
    first[0] = 0;
    for (int s = 0; s < nseq; s++) {
        const int L = cu_seqlens[s + 1] - cu_seqlens[s];
        if (L > maxlen) maxlen = L;
        first[s + 1] = first[s] + (int64_t)nh * ((L + CPU_ATTN_TILE - 1) / CPU_ATTN_TILE);
    }
    const int64_t ntasks = first[nseq];
    if (nthreads > ATTN_MAX_THREADS) nthreads = ATTN_MAX_THREADS;
    if (nthreads > ntasks) nthreads = (int)ntasks;
    if (nthreads < 1) nthreads = 1;
    /* per thread: S, then Qt, Kd, Ot */
    const size_t per_s = (size_t)CPU_ATTN_TILE * ((size_t)maxlen + CPU_ATTN_TILE),
                 per_t = (size_t)CPU_ATTN_TILE * (size_t)hd, per = per_s + 3 * per_t;
    float *scratch = malloc(sizeof(float) * per * (size_t)nthreads);
    if (!scratch) {
        free(first);
        return armo_err_set(e, "attention: out of memory for %d score blocks of %d x %d", nthreads,
                            CPU_ATTN_TILE, maxlen + CPU_ATTN_TILE);
    }
    attn_ctx c = {.out = out, .q = q, .k = k, .v = v, .cu_seqlens = cu_seqlens, .nseq = nseq,
                  .nh = nh, .nkv = nkv, .hd = hd, .first_task = first};
    atomic_init(&c.next, 0);
    attn_arg args[ATTN_MAX_THREADS];
    pthread_t tids[ATTN_MAX_THREADS];
    int started[ATTN_MAX_THREADS] = {0};
    for (int t = 0; t < nthreads; t++) {
        float *b = scratch + (size_t)t * per;
        args[t] = (attn_arg){&c, b, b + per_s, b + per_s + per_t, b + per_s + 2 * per_t};
    }
    for (int t = 1; t < nthreads; t++) {
        int rc = pthread_create(&tids[t], NULL, attn_worker, &args[t]);
        started[t] = rc == 0;
        if (rc != 0) /* the other threads take its tasks from the counter */
            fprintf(stderr, "%s:%d: pthread_create failed (%s); fewer attention threads\n",
                    __FILE__, __LINE__, strerror(rc));
    }
    attn_worker(&args[0]);
    for (int t = 1; t < nthreads; t++) {
        if (!started[t]) continue;
        int rc = pthread_join(tids[t], NULL);
        if (rc != 0)
            fprintf(stderr, "%s:%d: pthread_join failed (%s)\n", __FILE__, __LINE__, strerror(rc));
    }
    free(scratch);
    free(first);
    return 0;
}
