/* ridge.c — per-objective ridge regression over a penalty grid (see ridge.h). */
#include "host/train/ridge.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 1024

/* The Gram matrices of one labelled-row set, kept for the next objective
 * labelled on the same rows. */
typedef struct {
    int H;
    uint8_t *mask;               /* [n] the labelled rows they were built from */
    double *q, *lam;             /* eigenvectors (columns of row-major q) and values of G_train */
    double *gall;                /* G_train + G_val, full */
    int valid;
} gram;

/* Rows rows[0..m) of the problem into dst [m, H] as doubles. */
static void gather(double *dst, const armo_ridge_problem *p, const int64_t *rows, int64_t m) {
    for (int64_t i = 0; i < m; i++) {
        const float *s = p->x + rows[i] * p->ld;
        for (int j = 0; j < p->hidden; j++) dst[i * p->hidden + j] = s[j];
    }
}

/* g += Xᵀ X (upper triangle) and b += Xᵀ y over the listed rows. */
static void accumulate(const armo_ridge_problem *p, const int64_t *rows, int64_t m,
                       const double *y, double *g, double *b, double *buf) {
    const int H = p->hidden;
    for (int64_t at = 0; at < m; at += BLOCK) {
        int64_t k = m - at < BLOCK ? m - at : BLOCK;
        gather(buf, p, rows + at, k);
        if (g) cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, H, (int)k, 1.0, buf, H, 1.0, g, H);
        if (b) cblas_dgemv(CblasRowMajor, CblasTrans, (int)k, H, 1.0, buf, H, y + at, 1, 1.0, b, 1);
    }
}

static int gram_build(gram *c, const armo_ridge_problem *p, const uint8_t *mask,
                      const int64_t *tr, int64_t ntr, const int64_t *va, int64_t nva, double *buf,
                      armo_err *e) {
    const int H = p->hidden;
    const size_t HH = (size_t)H * H;
    memset(c->q, 0, HH * sizeof(double));
    memset(c->gall, 0, HH * sizeof(double));
    accumulate(p, tr, ntr, NULL, c->q, NULL, buf);
    accumulate(p, va, nva, NULL, c->gall, NULL, buf);
    for (int i = 0; i < H; i++)
        for (int j = i; j < H; j++) {
            double t = c->q[(size_t)i * H + j], a = t + c->gall[(size_t)i * H + j];
            c->gall[(size_t)i * H + j] = c->gall[(size_t)j * H + i] = a;
            c->q[(size_t)j * H + i] = t;
        }
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', H, c->q, H, c->lam);
    if (info != 0)
        return armo_err_set(e, "ridge: the eigendecomposition of the %dx%d Gram matrix failed "
                               "(LAPACKE_dsyevd info %d)", H, H, (int)info);
    memcpy(c->mask, mask, (size_t)p->n);
    c->valid = 1;
    return 0;
}

/* Validation MSE of every grid penalty for one objective (c built on its rows). */
static void grid_mse(const gram *c, const armo_ridge_problem *p, const double *btr,
                     const int64_t *va, int64_t nva, const double *yva, double *work,
                     double *buf, armo_ridge_report *r) {
    const int H = p->hidden, A = p->nalpha;
    double *cq = work, *cw = work + H, *W = cw + (size_t)H * A, *P = W + (size_t)H * A;
    cblas_dgemv(CblasRowMajor, CblasTrans, H, H, 1.0, c->q, H, btr, 1, 0.0, cq, 1);
    for (int j = 0; j < H; j++)
        for (int a = 0; a < A; a++) cw[(size_t)j * A + a] = cq[j] / (c->lam[j] + p->alphas[a]);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, A, H, 1.0, c->q, H, cw, A, 0.0, W,
                A);
    for (int a = 0; a < A; a++) r->val_mse[a] = 0;
    for (int64_t at = 0; at < nva; at += BLOCK) {
        int64_t k = nva - at < BLOCK ? nva - at : BLOCK;
        gather(buf, p, va + at, k);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)k, A, H, 1.0, buf, H, W, A,
                    0.0, P, A);
        for (int64_t i = 0; i < k; i++)
            for (int a = 0; a < A; a++) {
                double d = P[i * A + a] - yva[at + i];
                r->val_mse[a] += d * d;
            }
    }
    int best = 0;
    for (int a = 0; a < A; a++) {
        r->val_mse[a] /= (double)nva;
        if (r->val_mse[a] < r->val_mse[best]) best = a;
    }
    r->alpha = p->alphas[best];
    r->best = best;
}

/* One objective: split its labelled rows, (re)build the Gram matrices if its
 * rows differ from the cached ones, choose the penalty, refit on all. */
static int fit_one(gram *c, const armo_ridge_problem *p, const float *y, int64_t ldy,
                   const char *name, float *w, armo_ridge_report *r, int64_t *tr, int64_t *va,
                   uint8_t *mask, double *ys, double *work, double *buf, armo_err *e) {
    const int H = p->hidden;
    int64_t ntr = 0, nva = 0;
    for (int64_t i = 0; i < p->n; i++) {
        mask[i] = !isnan(y[i * ldy]);
        if (mask[i]) *(p->is_val[i] ? &va[nva++] : &tr[ntr++]) = i;
    }
    r->n_train = ntr, r->n_val = nva;
    if (ntr == 0 || nva == 0)
        return armo_err_set(e, "objective %s: %lld labelled training rows and %lld validation "
                               "rows; ridge needs both", name, (long long)ntr, (long long)nva);
    if (!c->valid || memcmp(c->mask, mask, (size_t)p->n) != 0)
        if (gram_build(c, p, mask, tr, ntr, va, nva, buf, e)) return -1;
    double *ytr = ys, *yva = ys + ntr, *btr = ys + p->n, *ball = btr + H;
    for (int64_t i = 0; i < ntr; i++) ytr[i] = y[tr[i] * ldy];
    for (int64_t i = 0; i < nva; i++) yva[i] = y[va[i] * ldy];
    memset(btr, 0, sizeof(double) * 2 * (size_t)H);
    accumulate(p, tr, ntr, ytr, NULL, btr, buf);
    accumulate(p, va, nva, yva, NULL, ball, buf);
    for (int j = 0; j < H; j++) ball[j] += btr[j];
    grid_mse(c, p, btr, va, nva, yva, work, buf, r);
    /* refit on every labelled row: (G_all + αI) w = Xᵀy */
    double *m = work;
    memcpy(m, c->gall, sizeof(double) * (size_t)H * H);
    for (int j = 0; j < H; j++) m[(size_t)j * H + j] += r->alpha;
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', H, 1, m, H, ball, 1);
    if (info != 0)
        return armo_err_set(e, "objective %s: the refit's Cholesky solve failed (LAPACKE_dposv "
                               "info %d)", name, (int)info);
    for (int j = 0; j < H; j++) w[j] = (float)ball[j];
    return 0;
}

int armo_ridge_fit_all(const armo_ridge_problem *p, const float *y, int64_t ldy, int K,
                       const char *const *names, float *w, armo_ridge_report *rep, armo_err *e) {
    const int H = p->hidden, A = p->nalpha;
    if (A < 1 || A > ARMO_RIDGE_MAX_ALPHAS || H < 1 || p->n < 1)
        return armo_err_set(e, "ridge: %d penalties (1..%d), %lld rows, hidden %d", A,
                            ARMO_RIDGE_MAX_ALPHAS, (long long)p->n, H);
    const size_t HH = (size_t)H * H, n = (size_t)p->n;
    size_t nwork = (size_t)H + 2 * (size_t)H * A + (size_t)BLOCK * A;
    if (nwork < HH) nwork = HH;
    gram c = {.H = H};
    c.mask = malloc(n);
    c.q = malloc(HH * sizeof(double));
    c.lam = malloc((size_t)H * sizeof(double));
    c.gall = malloc(HH * sizeof(double));
    int64_t *tr = malloc(n * sizeof(int64_t)), *va = malloc(n * sizeof(int64_t));
    uint8_t *mask = malloc(n);
    double *ys = malloc((n + 2 * (size_t)H) * sizeof(double));
    double *work = malloc(nwork * sizeof(double));
    double *buf = malloc((size_t)BLOCK * H * sizeof(double));
    int rc = 0;
    if (!c.mask || !c.q || !c.lam || !c.gall || !tr || !va || !mask || !ys || !work || !buf)
        rc = armo_err_set(e, "ridge: out of memory (hidden %d, %lld rows)", H, (long long)p->n);
    for (int k = 0; k < K && rc == 0; k++)
        rc = fit_one(&c, p, y + k, ldy, names[k], w + (size_t)k * H, &rep[k], tr, va, mask, ys,
                     work, buf, e);
    free(c.mask);
    free(c.q);
    free(c.lam);
    free(c.gall);
    free(tr);
    free(va);
    free(mask);
    free(ys);
    free(work);
    free(buf);
    return rc;
}
