/* ridge.h — stage 1 of the ArmoRM recipe: per objective, ridge regression
 * without intercept on the rows that have its label, the penalty chosen
 * from a grid by validation MSE on a seeded split (split.h), then refit on
 * every labelled row (train + validation) with that penalty.
 *
 * One eigendecomposition per objective serves the whole grid: with the
 * training Gram matrix G = XᵀX = Q Λ Qᵀ (cblas_dsyrk over row blocks,
 * LAPACKE_dsyevd), w(α) = Q (Λ + αI)⁻¹ Qᵀ Xᵀy for every α at the cost of a
 * matrix product; the refit solves (G + G_val + αI) w = Xᵀy by Cholesky
 * (LAPACKE_dposv).  Objectives labelled on the same rows share the Gram
 * matrices and the eigendecomposition.  Everything in double. */
#ifndef ARMO_RIDGE_H
#define ARMO_RIDGE_H

#include <stdint.h>

#include "base/errors.h"

#define ARMO_RIDGE_MAX_ALPHAS 64

typedef struct {
    double alpha;                /* chosen penalty */
    int best;                    /* its index in the grid */
    double val_mse[ARMO_RIDGE_MAX_ALPHAS]; /* validation MSE per grid penalty */
    int64_t n_train, n_val;      /* labelled rows on each side of the split */
} armo_ridge_report;

typedef struct {
    const float *x;              /* rows: x + i * ld, hidden floats each */
    int64_t n, ld;
    int hidden;
    const double *alphas;        /* the grid, in the order ties are broken (first wins) */
    int nalpha;
    const uint8_t *is_val;       /* [n]: 1 = validation row */
} armo_ridge_problem;

/* Fits the K objectives y[i * ldy + k] (NaN: unlabelled), k < K, into
 * w[k * hidden ..] (fp32, the regression_layer.weight layout) and rep[k].
 * Errors name the objective (names[k]) that cannot be fitted: no labelled
 * training or validation row. */
int armo_ridge_fit_all(const armo_ridge_problem *p, const float *y, int64_t ldy, int K,
                       const char *const *names, float *w, armo_ridge_report *rep, armo_err *e);

#endif
