/* regression.c — `armo train regression` (see regression.h). */
#include "host/train/regression.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/train/embed_store.h"
#include "host/train/split.h"
#include "weights/st_writer.h"

int armo_parse_grid(const char *s, double *v, int max, int *n, armo_err *e) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !(x >= 0) || !isfinite(x) || (*end && *end != ','))
            return armo_err_set(e, "penalty grid '%s': '%s' is not a non-negative number", s, p);
        if (*n == max) return armo_err_set(e, "penalty grid '%s': more than %d values", s, max);
        v[(*n)++] = x;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) return armo_err_set(e, "penalty grid is empty");
    return 0;
}

/* The label columns named by list (NULL: all) into cols; -1 naming a missing one. */
static int pick_columns(const armo_embeddings *x, const char *list, int *cols, int *k,
                        armo_err *e) {
    *k = 0;
    if (!list) {
        for (int i = 0; i < x->nlabels; i++) cols[(*k)++] = i;
        return 0;
    }
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n < 255 ? n : 255), p);
        int col = armo_embeddings_label(x, name);
        if (col < 0) return armo_err_set(e, "objective '%s' is not a label column of the embeddings", name);
        if (*k == ARMO_EMBED_MAX_LABELS) return armo_err_set(e, "too many objectives");
        cols[(*k)++] = col;
        p = c ? c + 1 : p + n;
    }
    return 0;
}

static int write_outputs(const armo_regression_opts *o, const armo_embeddings *x,
                         const int *cols, int K, const float *w, const armo_ridge_report *rep,
                         armo_err *e) {
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        return armo_err_set(e, "cannot create %s: %s", o->out_dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/regression.safetensors", o->out_dir);
    st_write_tensor t = {"regression_layer.weight", ARMO_DT_F32, 2, {K, x->hidden}, w};
    if (st_write_file(path, &t, 1, e)) return -1;
    json_t *names = json_array(), *alphas = json_array(), *fits = json_array();
    for (int a = 0; a < o->nalpha; a++) json_array_append_new(alphas, json_real(o->alphas[a]));
    for (int k = 0; k < K; k++) {
        json_array_append_new(names, json_string(x->label_names[cols[k]]));
        json_t *mse = json_array();
        for (int a = 0; a < o->nalpha; a++) json_array_append_new(mse, json_real(rep[k].val_mse[a]));
        json_array_append_new(fits, json_pack("{s:s, s:f, s:o, s:I, s:I}", "objective",
                                              x->label_names[cols[k]], "alpha", rep[k].alpha,
                                              "val_mse", mse, "n_train", (json_int_t)rep[k].n_train,
                                              "n_val", (json_int_t)rep[k].n_val));
    }
    json_t *root = json_pack("{s:o, s:i, s:o, s:I, s:f, s:s, s:o}", "objectives", names,
                             "hidden_size", x->hidden, "alphas", alphas, "seed",
                             (json_int_t)o->seed, "val_frac", o->val_frac, "embeddings",
                             o->embeddings, "fits", fits);
    snprintf(path, sizeof path, "%s/regression.json", o->out_dir);
    int rc = root ? json_dump_file(root, path, JSON_INDENT(1)) : -1;
    json_decref(root);
    return rc ? armo_err_set(e, "cannot write %s", path) : 0;
}

int armo_train_regression(const armo_regression_opts *o, FILE *report, armo_err *e) {
    armo_embeddings x;
    if (armo_embeddings_load_last(&x, o->embeddings, e)) return -1;
    int cols[ARMO_EMBED_MAX_LABELS], K = 0, rc = -1;
    float *w = NULL, *y = NULL;
    uint8_t *is_val = NULL;
    armo_ridge_report *rep = NULL;
    if (x.nseq != 1) {
        armo_err_set(e, "%s holds pairs; stage-1 regression reads one rated conversation per "
                        "record", o->embeddings);
        goto done;
    }
    if (pick_columns(&x, o->objectives, cols, &K, e)) goto done;
    if (K == 0) {
        armo_err_set(e, "%s has no label columns to regress on", o->embeddings);
        goto done;
    }
    w = malloc(sizeof(float) * (size_t)K * x.hidden);
    y = malloc(sizeof(float) * (size_t)K * (size_t)(x.rows ? x.rows : 1));
    is_val = malloc((size_t)(x.rows ? x.rows : 1));
    rep = calloc((size_t)K, sizeof *rep);
    const char *names[ARMO_EMBED_MAX_LABELS];
    if (!w || !y || !is_val || !rep) {
        armo_err_set(e, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < x.rows; i++) {
        is_val[i] = (uint8_t)armo_split_is_val(o->seed, (uint64_t)i, o->val_frac);
        for (int k = 0; k < K; k++) y[i * K + k] = x.labels[i * x.nlabels + cols[k]];
    }
    for (int k = 0; k < K; k++) names[k] = x.label_names[cols[k]];
    armo_ridge_problem p = {.x = x.h_last, .n = x.rows, .ld = x.hidden, .hidden = x.hidden,
                            .alphas = o->alphas, .nalpha = o->nalpha, .is_val = is_val};
    if (armo_ridge_fit_all(&p, y, K, K, names, w, rep, e)) goto done;
    if (write_outputs(o, &x, cols, K, w, rep, e)) goto done;
    if (report) {
        fprintf(report, "%-32s %8s %8s %10s %12s\n", "objective", "train", "val", "alpha",
                "val_mse");
        for (int k = 0; k < K; k++)
            fprintf(report, "%-32s %8lld %8lld %10g %12.6g\n", names[k],
                    (long long)rep[k].n_train, (long long)rep[k].n_val, rep[k].alpha,
                    rep[k].val_mse[rep[k].best]);
    }
    rc = 0;
done:
    free(w);
    free(y);
    free(is_val);
    free(rep);
    armo_embeddings_free(&x);
    return rc;
}
