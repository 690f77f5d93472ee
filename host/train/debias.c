/* debias.c — the reward transform matrix of the recipe (see debias.h). */
#include "host/train/debias.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/train/embed_store.h"
#include "host/train/head_dir.h"
#include "weights/st_writer.h"

void armo_debias_default_penalties(double *p, int *n) {
    static const double head[] = {0, .01, .025, .05, .075, .1, .125, .15, .2, .25};
    *n = 0;
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) p[(*n)++] = head[i];
    for (int i = 6; i <= 19; i++) p[(*n)++] = i * 0.05; /* .3 ... .95 */
}

typedef struct {
    double v;
    int64_t i;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* Ranks 1..n of a (ties: their average rank) into r; k is scratch [n]. */
static void ranks(const double *a, int64_t n, double *r, keyed *k) {
    for (int64_t i = 0; i < n; i++) k[i] = (keyed){a[i], i};
    qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && k[j + 1].v == k[i].v) j++;
        double avg = 0.5 * (double)(i + j) + 1.0;
        for (int64_t t = i; t <= j; t++) r[k[t].i] = avg;
        i = j + 1;
    }
}

static double pearson(const double *a, const double *b, int64_t n) {
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= (double)n, mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        sab += x * y, saa += x * x, sbb += y * y;
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

double armo_spearman(const double *a, const double *b, int64_t n) {
    double *ra = malloc(sizeof(double) * (size_t)n), *rb = malloc(sizeof(double) * (size_t)n);
    keyed *k = malloc(sizeof(keyed) * (size_t)n);
    double rho = NAN;
    if (ra && rb && k && n > 1) {
        ranks(a, n, ra, k);
        ranks(b, n, rb, k);
        rho = pearson(ra, rb, n);
    }
    free(ra);
    free(rb);
    free(k);
    return rho;
}

int armo_debias_matrix(const double *R, int64_t n, int K, int v, const double *grid, int npen,
                       double threshold, float *T, double *penalty, double *rho, armo_err *e) {
    double *rv = malloc(sizeof(double) * (size_t)n), *d = malloc(sizeof(double) * (size_t)n);
    if (!rv || !d) {
        free(rv);
        free(d);
        return armo_err_set(e, "debias: out of memory for %lld rows", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) rv[i] = R[i * K + v];
    for (int j = 0; j < K; j++) {
        penalty[j] = 1.0;
        rho[j] = NAN;
        if (j == v) continue;
        for (int p = 0; p < npen; p++) {
            for (int64_t i = 0; i < n; i++) d[i] = R[i * K + j] - grid[p] * rv[i];
            double s = armo_spearman(d, rv, n);
            if (p == 0 || s <= threshold) rho[j] = s;
            if (s <= threshold) {
                penalty[j] = grid[p];
                break;
            }
        }
    }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) T[i * K + j] = (float)((i == j) - (i == v ? penalty[j] : 0.0));
    free(rv);
    free(d);
    return 0;
}

static int write_outputs(const armo_debias_opts *o, const armo_head_dir *h, int v,
                         const float *T, const double *pen, const double *rho, int64_t rows,
                         armo_err *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/debias.safetensors", o->head_dir);
    st_write_tensor t = {"reward_transform_matrix", ARMO_DT_F32, 2, {h->k, h->k}, T};
    if (st_write_file(path, &t, 1, e)) return -1;
    json_t *grid = json_array(), *names = json_array(), *jp = json_array(), *jr = json_array();
    for (int p = 0; p < o->npen; p++) json_array_append_new(grid, json_real(o->penalties[p]));
    for (int j = 0; j < h->k; j++) {
        json_array_append_new(names, json_string(h->names[j]));
        json_array_append_new(jp, json_real(pen[j]));
        json_array_append_new(jr, isnan(rho[j]) ? json_null() : json_real(rho[j]));
    }
    json_t *root = json_pack("{s:s, s:i, s:f, s:o, s:o, s:o, s:o, s:s, s:I}", "verbosity",
                             h->names[v], "verbosity_index", v, "threshold", o->threshold,
                             "penalties", grid, "objectives", names, "penalty", jp, "spearman",
                             jr, "reference", o->embeddings, "rows", (json_int_t)rows);
    snprintf(path, sizeof path, "%s/debias.json", o->head_dir);
    int rc = root ? json_dump_file(root, path, JSON_INDENT(1)) : -1;
    json_decref(root);
    return rc ? armo_err_set(e, "cannot write %s", path) : 0;
}

int armo_train_debias(const armo_debias_opts *o, FILE *report, armo_err *e) {
    armo_head_dir h;
    if (armo_head_dir_load(&h, o->head_dir, 0, e)) return -1;
    armo_embeddings x;
    if (armo_embeddings_load_last(&x, o->embeddings, e)) {
        armo_head_dir_free(&h);
        return -1;
    }
    int v = -1, rc = -1;
    for (int j = 0; j < h.k; j++)
        if (!strcmp(h.names[j], o->verbosity)) v = j;
    const int64_t n = x.rows * x.nseq;
    const int H = h.hidden, K = h.k;
    double *X = NULL, *W = NULL, *R = NULL, pen[ARMO_EMBED_MAX_LABELS], rho[ARMO_EMBED_MAX_LABELS];
    float *T = NULL;
    if (v < 0) {
        armo_err_set(e, "the verbosity objective '%s' is not one of the head's %d objectives "
                        "(--verbosity)", o->verbosity, K);
        goto done;
    }
    if (x.hidden != H || n < 2) {
        armo_err_set(e, "%s: hidden size %d and %lld rows; the head has hidden %d and debiasing "
                        "needs 2 rows or more", o->embeddings, x.hidden, (long long)n, H);
        goto done;
    }
    X = malloc(sizeof(double) * (size_t)n * H);
    W = malloc(sizeof(double) * (size_t)K * H);
    R = malloc(sizeof(double) * (size_t)n * K);
    T = malloc(sizeof(float) * (size_t)K * K);
    if (!X || !W || !R || !T || K > ARMO_EMBED_MAX_LABELS) {
        armo_err_set(e, "debias: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n * H; i++) X[i] = x.h_last[i];
    for (int64_t i = 0; i < (int64_t)K * H; i++) W[i] = h.regression[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, K, H, 1.0, X, H, W, H, 0.0, R, K);
    if (armo_debias_matrix(R, n, K, v, o->penalties, o->npen, o->threshold, T, pen, rho, e) ||
        write_outputs(o, &h, v, T, pen, rho, n, e))
        goto done;
    if (report) {
        fprintf(report, "%-32s %8s %10s   (verbosity: %s, threshold %g, %lld reference rows)\n",
                "objective", "penalty", "spearman", h.names[v], o->threshold, (long long)n);
        for (int j = 0; j < K; j++)
            fprintf(report, "%-32s %8g %10.4f%s\n", h.names[j], j == v ? 1.0 : pen[j], rho[j],
                    j == v ? "   (verbosity: zeroed)" : !(rho[j] <= o->threshold) ? "   (never under)" : "");
    }
    rc = 0;
done:
    free(X);
    free(W);
    free(R);
    free(T);
    armo_embeddings_free(&x);
    armo_head_dir_free(&h);
    return rc;
}
