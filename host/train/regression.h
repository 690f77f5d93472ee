/* regression.h — `armo train regression`: stage 1 of the recipe from an
 * embeddings directory (embed_store.h) to a head directory.
 *
 * Reads h_last of every row (one conversation per record) and the label
 * columns named as objectives (default: every label column, in order),
 * fits each objective by ridge.h on the seeded split of split.h, and writes
 *   OUT/regression.safetensors  regression_layer.weight F32 [K, H]
 *   OUT/regression.json         {"objectives", "hidden_size", "alphas", "seed",
 *                                "val_frac", "embeddings", "fits": [{"objective",
 *                                "alpha", "val_mse": [per grid alpha], "n_train",
 *                                "n_val"}]}
 * and one report line per objective. */
#ifndef ARMO_TRAIN_REGRESSION_H
#define ARMO_TRAIN_REGRESSION_H

#include <stdint.h>
#include <stdio.h>

#include "base/errors.h"
#include "host/train/ridge.h"

typedef struct {
    const char *embeddings;      /* directory */
    const char *out_dir;         /* created if missing */
    const char *objectives;      /* comma-separated label columns; NULL: all */
    double alphas[ARMO_RIDGE_MAX_ALPHAS];
    int nalpha;
    uint64_t seed;
    double val_frac;
} armo_regression_opts;

/* Parses "a,b,c" (numbers > 0) into alphas; -1 with e on a bad list. */
int armo_parse_grid(const char *s, double *v, int max, int *n, armo_err *e);

int armo_train_regression(const armo_regression_opts *o, FILE *report, armo_err *e);

#endif
