/* test_cpu_attn.c — the CPU backend's tiled attention (host/engine/cpu_attn.h):
 * right against a double-precision attention written here, and
 * bit-identical however the rows are batched.
 *
 * A row's output may depend only on rows 0..i of its own sequence, so that
 * packing, prompt-prefix sharing (which scores a prefix inside a longer
 * expanded sequence) and the thread count never change a bit.  Checked on
 * random q, k, v with GQA 4:1 and 1:1, lengths around the tile size
 * (CPU_ATTN_TILE) and beyond:
 *   - every output within 1e-5 (relative to the row's magnitude) of the
 *     double reference;
 *   - each sequence alone == all sequences packed == packed in reverse
 *     order, with 1, 2 and 3 threads, bit for bit;
 *   - a sequence cut to its first m rows gives the same bits for those rows
 *     as the whole sequence, for m around every tile edge;
 *   - a NaN in one later token's v leaves every earlier row's bits alone
 *     and makes that row and the later ones NaN. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_attn.h"
#include "host/engine/cpu_gemm.h"
#include "tests/util/test_util.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) / 8388608.0 - 1.0);
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

typedef struct {
    int nh, nkv, hd;
    int qdim, kvdim;
} dims;

/* one sequence's q, k, v (rows [L, dim]) */
typedef struct {
    int L;
    float *q, *k, *v;
} seq;

static seq make_seq(const dims *d, int L) {
    seq s = {L, xmalloc(sizeof(float) * (size_t)L * d->qdim),
             xmalloc(sizeof(float) * (size_t)L * d->kvdim),
             xmalloc(sizeof(float) * (size_t)L * d->kvdim)};
    /* q, k scaled so the softmax is far from uniform */
    for (size_t i = 0; i < (size_t)L * d->qdim; i++) s.q[i] = 2.5f * frand();
    for (size_t i = 0; i < (size_t)L * d->kvdim; i++) s.k[i] = 2.5f * frand();
    for (size_t i = 0; i < (size_t)L * d->kvdim; i++) s.v[i] = frand();
    return s;
}

static void free_seq(seq *s) {
    free(s->q);
    free(s->k);
    free(s->v);
}

/* runs cpu_attn on the sequences order[0..ns) packed (the first `rows[i]`
 * rows of each) and writes each sequence's outputs to outs[order[i]] */
static int run(const dims *d, seq *ss, const int *order, const int *rows, int ns, int threads,
               float **outs) {
    int32_t cu[16];
    cu[0] = 0;
    for (int i = 0; i < ns; i++) cu[i + 1] = cu[i] + rows[i];
    const int n = cu[ns];
    float *q = xmalloc(sizeof(float) * (size_t)n * d->qdim);
    float *k = xmalloc(sizeof(float) * (size_t)n * d->kvdim);
    float *v = xmalloc(sizeof(float) * (size_t)n * d->kvdim);
    float *o = xmalloc(sizeof(float) * (size_t)n * d->qdim);
    memset(o, 0xff, sizeof(float) * (size_t)n * d->qdim); /* NaN: every output must be written */
    for (int i = 0; i < ns; i++) {
        const seq *s = &ss[order[i]];
        memcpy(q + (size_t)cu[i] * d->qdim, s->q, sizeof(float) * rows[i] * d->qdim);
        memcpy(k + (size_t)cu[i] * d->kvdim, s->k, sizeof(float) * rows[i] * d->kvdim);
        memcpy(v + (size_t)cu[i] * d->kvdim, s->v, sizeof(float) * rows[i] * d->kvdim);
    }
    armo_err e;
    int rc = cpu_attn(o, q, k, v, cu, ns, d->nh, d->nkv, d->hd, threads, &e);
    CHECK(rc == 0, "cpu_attn: %s", e.msg);
    for (int i = 0; i < ns && rc == 0; i++)
        memcpy(outs[order[i]], o + (size_t)cu[i] * d->qdim, sizeof(float) * rows[i] * d->qdim);
    free(q);
    free(k);
    free(v);
    free(o);
    return rc;
}

/* the double reference for row i of one sequence; returns the worst error
 * relative to the largest |output| of each head */
static double ref_error(const dims *d, const seq *s, const float *out) {
    double worst = 0;
    const int group = d->nh / d->nkv;
    double *p = xmalloc(sizeof(double) * (size_t)s->L);
    for (int i = 0; i < s->L; i++)
        for (int h = 0; h < d->nh; h++) {
            const float *qi = s->q + (size_t)i * d->qdim + (size_t)h * d->hd;
            const int g = h / group;
            double m = -INFINITY, l = 0;
            for (int j = 0; j <= i; j++) {
                const float *kj = s->k + (size_t)j * d->kvdim + (size_t)g * d->hd;
                double dot = 0;
                for (int c = 0; c < d->hd; c++) dot += (double)qi[c] * kj[c];
                p[j] = dot / sqrt((double)d->hd);
                if (p[j] > m) m = p[j];
            }
            for (int j = 0; j <= i; j++) l += (p[j] = exp(p[j] - m));
            double mag = 0, err = 0;
            for (int c = 0; c < d->hd; c++) {
                double o = 0;
                for (int j = 0; j <= i; j++)
                    o += p[j] * s->v[(size_t)j * d->kvdim + (size_t)g * d->hd + c];
                o /= l;
                const double got = out[(size_t)i * d->qdim + (size_t)h * d->hd + c];
                if (fabs(o) > mag) mag = fabs(o);
                double e = fabs(got - o);
                if (!(e <= err)) err = e; /* NaN wins */
            }
            double rel = err / (mag > 1e-3 ? mag : 1e-3);
            if (!(rel <= worst)) worst = rel;
        }
    free(p);
    return worst;
}

static void check_dims(int nh, int nkv, int hd) {
    dims d = {nh, nkv, hd, nh * hd, nkv * hd};
    const int T = CPU_ATTN_TILE;
    enum { NS = 6 };
    const int lens[NS] = {1, 5, T, T + 1, 2 * T + 37, 3 * T - 1};
    seq ss[NS];
    float *alone[NS], *packed[NS], *other[NS];
    int order[NS], rev[NS], rows[NS], rrows[NS];
    for (int i = 0; i < NS; i++) {
        ss[i] = make_seq(&d, lens[i]);
        alone[i] = xmalloc(sizeof(float) * (size_t)lens[i] * d.qdim);
        packed[i] = xmalloc(sizeof(float) * (size_t)lens[i] * d.qdim);
        other[i] = xmalloc(sizeof(float) * (size_t)lens[i] * d.qdim);
        order[i] = i, rows[i] = lens[i];
        rev[i] = NS - 1 - i, rrows[i] = lens[NS - 1 - i];
    }
    /* alone, one thread; right against the double reference */
    for (int i = 0; i < NS; i++) {
        if (run(&d, ss, &i, &lens[i], 1, 1, alone)) return;
        double err = ref_error(&d, &ss[i], alone[i]);
        CHECK(err <= 1e-5, "nh %d nkv %d hd %d, length %d: worst relative error %.3g vs the "
                           "double reference", nh, nkv, hd, lens[i], err);
    }
    /* packed, both orders, 1-3 threads */
    int differ = 0;
    for (int threads = 1; threads <= 3; threads++) {
        if (run(&d, ss, order, rows, NS, threads, packed) ||
            run(&d, ss, rev, rrows, NS, threads, other))
            return;
        for (int i = 0; i < NS; i++) {
            const size_t bytes = sizeof(float) * (size_t)lens[i] * d.qdim;
            if (memcmp(packed[i], alone[i], bytes) || memcmp(other[i], alone[i], bytes)) {
                differ++;
                fprintf(stderr, "  length %d: packed with %d threads differs from alone\n",
                        lens[i], threads);
            }
        }
    }
    CHECK(differ == 0, "nh %d nkv %d hd %d: %d packed results differ from the sequence alone",
          nh, nkv, hd, differ);
    /* cut to its first m rows: the same bits for those rows */
    const int full = NS - 2; /* length 2T + 37 */
    int cut_differ = 0, cuts = 0;
    for (int m = 1; m < lens[full]; m++) {
        if (!(m < 4 || (m + 2) % T < 5)) continue; /* around every tile edge */
        int two[2] = {full, NS - 1};
        int trows[2] = {m, 7};
        float *o2[NS];
        for (int i = 0; i < NS; i++) o2[i] = other[i];
        if (run(&d, ss, two, trows, 2, 2, o2)) return;
        cuts++;
        if (memcmp(other[full], alone[full], sizeof(float) * (size_t)m * d.qdim)) {
            cut_differ++;
            fprintf(stderr, "  first %d rows of length %d differ from the whole sequence's\n", m,
                    lens[full]);
        }
    }
    CHECK(cut_differ == 0, "nh %d nkv %d hd %d: %d of %d cut sequences differ", nh, nkv, hd,
          cut_differ, cuts);
    /* a NaN in row j's v (KV head 0): rows < j untouched, rows >= j NaN in
     * the heads of KV head 0 */
    const int j = T + 9;
    ss[full].v[(size_t)j * d.kvdim + 3] = NAN;
    if (run(&d, ss, &order[full], &lens[full], 1, 2, other)) return;
    CHECK(memcmp(other[full], alone[full], sizeof(float) * (size_t)j * d.qdim) == 0,
          "a NaN in row %d's v changed an earlier row", j);
    int nan_rows = 0;
    for (int i = j; i < lens[full]; i++) nan_rows += isnan(other[full][(size_t)i * d.qdim + 3]);
    CHECK(nan_rows == lens[full] - j, "NaN in row %d's v: %d of %d later rows NaN", j, nan_rows,
          lens[full] - j);
    printf("nh %d nkv %d hd %d: lengths 1..%d right, packed / reversed / 1-3 threads / %d cuts "
           "bit-identical, NaN kept to later rows\n",
           nh, nkv, hd, lens[NS - 1], cuts);
    for (int i = 0; i < NS; i++) {
        free_seq(&ss[i]);
        free(alone[i]);
        free(packed[i]);
        free(other[i]);
    }
}

int main(void) {
    cpu_gemm_blas_init();
    check_dims(8, 2, 64);  /* GQA 4:1 */
    check_dims(2, 2, 128); /* one query head per KV head, head_dim 128 */
    return test_finish("test_cpu_attn");
}
