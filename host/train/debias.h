/* debias.h — `armo train debias`: the recipe's verbosity debiasing, the
 * reward transform matrix T (reward_transform_matrix, applied as r @ T).
 *
 * On a reference set (every h_last row of an embeddings directory: each
 * sequence of each record), R = X Wᵀ with the head directory's regression
 * weights.  For each objective j other than the verbosity objective v, the
 * first penalty p on the ascending grid with Spearman(R_j - p R_v, R_v) <=
 * threshold (ranks with ties averaged, as scipy.stats.spearmanr); objectives
 * that never get there, and v itself, keep 1.  T = I with row v minus the
 * penalty vector: r'_j = r_j - p_j r_v, r'_v = 0.  Writes
 *   HEAD/debias.safetensors  reward_transform_matrix F32 [K, K]
 *   HEAD/debias.json         {"verbosity", "threshold", "penalties" (the grid),
 *                             "objectives", "penalty": [K], "spearman": [K] (at the
 *                             penalty chosen), "reference", "rows"}
 * and one report line per objective. */
#ifndef ARMO_TRAIN_DEBIAS_H
#define ARMO_TRAIN_DEBIAS_H

#include <stdint.h>
#include <stdio.h>

#include "base/errors.h"

#define ARMO_DEBIAS_MAX_PENALTIES 64

typedef struct {
    const char *embeddings;      /* the reference set */
    const char *head_dir;        /* holds regression.{safetensors,json}; gets debias.* */
    const char *verbosity;       /* objective name */
    double threshold;
    double penalties[ARMO_DEBIAS_MAX_PENALTIES];
    int npen;
} armo_debias_opts;

/* The recipe's grid: 0, .01, .025, .05, .075, .1, .125, .15, .2, .25, .3, ..., .95. */
void armo_debias_default_penalties(double *p, int *n);

/* Spearman's rank correlation of a[0..n) and b[0..n) (average ranks for ties);
 * NaN when either is constant. */
double armo_spearman(const double *a, const double *b, int64_t n);

/* The transform matrix T [K*K] from the rewards R [n, K] (row-major): penalty[K],
 * rho[K] (Spearman at the chosen penalty; NaN for v). */
int armo_debias_matrix(const double *R, int64_t n, int K, int v, const double *grid, int npen,
                       double threshold, float *T, double *penalty, double *rho, armo_err *e);

int armo_train_debias(const armo_debias_opts *o, FILE *report, armo_err *e);

#endif
