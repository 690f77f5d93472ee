/* embed_store.c — writes and reads an embeddings directory (see embed_store.h). */
#include "host/train/embed_store.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "weights/safetensors.h"
#include "weights/st_writer.h"

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int armo_embed_writer_open(armo_embed_writer *w, const char *dir, int hidden, int nseq,
                           const char *const *seq_names, int nlabels,
                           const char *const *label_names, int64_t rows_per_shard, armo_err *e) {
    memset(w, 0, sizeof *w);
    if (hidden <= 0 || nseq < 1 || nseq > ARMO_EMBED_MAX_SEQS || nlabels < 0 ||
        nlabels > ARMO_EMBED_MAX_LABELS || rows_per_shard < 1)
        return armo_err_set(e, "embeddings %s: bad shape (hidden %d, %d sequences, %d labels, "
                               "%lld rows per shard)",
                            dir, hidden, nseq, nlabels, (long long)rows_per_shard);
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return armo_err_set(e, "cannot create %s: %s", dir, strerror(errno));
    w->hidden = hidden, w->nseq = nseq, w->nlabels = nlabels, w->rows_per_shard = rows_per_shard;
    int ok = 1;
    for (int s = 0; s < nseq; s++) ok &= (w->seq_names[s] = dupstr(seq_names[s])) != NULL;
    for (int l = 0; l < nlabels; l++) ok &= (w->label_names[l] = dupstr(label_names[l])) != NULL;
    const size_t per = (size_t)nseq * hidden;
    w->h_last = malloc((size_t)rows_per_shard * per * sizeof(float));
    w->h_prompt = malloc((size_t)rows_per_shard * per * sizeof(float));
    w->labels = malloc((size_t)rows_per_shard * (nlabels ? nlabels : 1) * sizeof(float));
    w->line = malloc((size_t)rows_per_shard * sizeof(int64_t));
    if (!ok || !w->h_last || !w->h_prompt || !w->labels || !w->line) {
        armo_embed_writer_free(w);
        return armo_err_set(e, "embeddings %s: out of memory for a shard of %lld rows", dir,
                            (long long)rows_per_shard);
    }
    return 0;
}

static int flush_shard(armo_embed_writer *w, armo_err *e) {
    if (w->fill == 0) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/embeddings-%05d.safetensors", w->dir, w->nshards);
    const int64_t n = w->fill;
    st_write_tensor t[4] = {
        {"h_last", ARMO_DT_F32, 3, {n, w->nseq, w->hidden}, w->h_last},
        {"h_prompt", ARMO_DT_F32, 3, {n, w->nseq, w->hidden}, w->h_prompt},
        {"line", ARMO_DT_I64, 1, {n}, w->line},
        {"labels", ARMO_DT_F32, 2, {n, w->nlabels}, w->labels},
    };
    if (st_write_file(path, t, w->nlabels ? 4 : 3, e)) return -1;
    int64_t *r = realloc(w->shard_rows, (size_t)(w->nshards + 1) * sizeof *r);
    if (!r) return armo_err_set(e, "embeddings %s: out of memory", w->dir);
    w->shard_rows = r;
    w->shard_rows[w->nshards++] = n;
    w->fill = 0;
    return 0;
}

int armo_embed_writer_add(armo_embed_writer *w, const float *const *hidden, const float *labels,
                          int64_t line, armo_err *e) {
    const int H = w->hidden;
    const size_t per = (size_t)w->nseq * H, at = (size_t)w->fill;
    for (int s = 0; s < w->nseq; s++) {
        memcpy(w->h_last + at * per + (size_t)s * H, hidden[s], sizeof(float) * H);
        memcpy(w->h_prompt + at * per + (size_t)s * H, hidden[s] + H, sizeof(float) * H);
    }
    for (int l = 0; l < w->nlabels; l++)
        w->labels[at * w->nlabels + l] = labels ? labels[l] : NAN;
    w->line[at] = line;
    w->fill++;
    w->rows++;
    return w->fill == w->rows_per_shard ? flush_shard(w, e) : 0;
}

static json_t *names_json(char *const *names, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) json_array_append_new(a, json_string(names[i]));
    return a;
}

int armo_embed_writer_finish(armo_embed_writer *w, const char *model, const char *arch,
                             armo_err *e) {
    if (flush_shard(w, e)) return -1;
    json_t *shards = json_array();
    for (int i = 0; shards && i < w->nshards; i++) {
        char f[64];
        snprintf(f, sizeof f, "embeddings-%05d.safetensors", i);
        json_array_append_new(shards, json_pack("{s:s, s:I}", "file", f, "rows",
                                                (json_int_t)w->shard_rows[i]));
    }
    json_t *root = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:I, s:I, s:o}", "format",
                             "armo-embeddings/1", "model", model, "architecture", arch,
                             "hidden_size", w->hidden, "sequences",
                             names_json(w->seq_names, w->nseq), "labels",
                             names_json(w->label_names, w->nlabels), "rows", (json_int_t)w->rows,
                             "errors", (json_int_t)w->errors, "shards", shards);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", w->dir, ARMO_EMBED_INDEX);
    int rc = root ? json_dump_file(root, path, JSON_INDENT(1)) : -1;
    json_decref(root);
    if (rc) return armo_err_set(e, "cannot write %s", path);
    return 0;
}

void armo_embed_writer_free(armo_embed_writer *w) {
    for (int s = 0; s < ARMO_EMBED_MAX_SEQS; s++) free(w->seq_names[s]);
    for (int l = 0; l < ARMO_EMBED_MAX_LABELS; l++) free(w->label_names[l]);
    free(w->h_last);
    free(w->h_prompt);
    free(w->labels);
    free(w->line);
    free(w->shard_rows);
    memset(w, 0, sizeof *w);
}

/* ---- reading ---------------------------------------------------------------- */

static char **names_from(json_t *a, int *n) {
    *n = json_is_array(a) ? (int)json_array_size(a) : -1;
    if (*n < 0) return NULL;
    char **v = calloc((size_t)(*n ? *n : 1), sizeof *v);
    for (int i = 0; v && i < *n; i++) {
        const char *s = json_string_value(json_array_get(a, (size_t)i));
        v[i] = dupstr(s ? s : "");
        if (!v[i] || !s) *n = -1;
    }
    return v;
}

/* Copies tensor `name` of shard `path` (dtype dt, shape rows x inner) to dst. */
static int take(const st_checkpoint *ck, const char *path, const char *name, armo_dtype dt,
                int64_t rows, int64_t inner, void *dst, armo_err *e) {
    const st_tensor *t = st_find(ck, name);
    if (!t) return armo_err_set(e, "%s: tensor '%s' is missing", path, name);
    if (t->dtype != dt || t->ndim < 1 || t->shape[0] != rows || t->numel != rows * inner)
        return armo_err_set(e, "%s: tensor '%s' is %s %lld elements, embeddings.json implies %s "
                               "[%lld, …] of %lld",
                            path, name, armo_dtype_name(t->dtype), (long long)t->numel,
                            armo_dtype_name(dt), (long long)rows, (long long)(rows * inner));
    memcpy(dst, t->data, t->nbytes);
    return 0;
}

static int load_shards(armo_embeddings *x, const char *dir, json_t *shards, armo_err *e) {
    const int64_t per = (int64_t)x->nseq * x->hidden;
    int64_t at = 0;
    for (size_t i = 0; i < json_array_size(shards); i++) {
        json_t *s = json_array_get(shards, i);
        const char *file = json_string_value(json_object_get(s, "file"));
        int64_t n = json_integer_value(json_object_get(s, "rows"));
        if (!file || n < 0 || at + n > x->rows)
            return armo_err_set(e, "%s/%s: shard %zu is malformed or holds more rows than "
                                   "\"rows\"", dir, ARMO_EMBED_INDEX, i);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        st_checkpoint ck;
        if (st_open_file(&ck, path, e)) return -1;
        int rc = take(&ck, path, "h_last", ARMO_DT_F32, n, per, x->h_last + at * per, e) ||
                 (x->h_prompt &&
                  take(&ck, path, "h_prompt", ARMO_DT_F32, n, per, x->h_prompt + at * per, e)) ||
                 take(&ck, path, "line", ARMO_DT_I64, n, 1, x->line + at, e) ||
                 (x->nlabels && take(&ck, path, "labels", ARMO_DT_F32, n, x->nlabels,
                                     x->labels + at * x->nlabels, e));
        st_close(&ck);
        if (rc) return -1;
        at += n;
    }
    if (at != x->rows)
        return armo_err_set(e, "%s/%s: the shards hold %lld rows, \"rows\" says %lld", dir,
                            ARMO_EMBED_INDEX, (long long)at, (long long)x->rows);
    return 0;
}

static int load(armo_embeddings *x, const char *dir, int want_prompt, armo_err *e) {
    memset(x, 0, sizeof *x);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, ARMO_EMBED_INDEX);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return armo_err_set(e, "%s: %s (line %d)", path, je.text, je.line);
    int rc = -1;
    x->hidden = (int)json_integer_value(json_object_get(root, "hidden_size"));
    x->rows = json_integer_value(json_object_get(root, "rows"));
    x->seq_names = names_from(json_object_get(root, "sequences"), &x->nseq);
    x->label_names = names_from(json_object_get(root, "labels"), &x->nlabels);
    json_t *shards = json_object_get(root, "shards");
    if (x->hidden <= 0 || x->rows < 0 || x->nseq < 1 || x->nseq > ARMO_EMBED_MAX_SEQS ||
        x->nlabels < 0 || !json_is_array(shards)) {
        armo_err_set(e, "%s: not an armo embeddings index (hidden_size, rows, sequences, labels, "
                        "shards)", path);
        goto done;
    }
    const size_t per = (size_t)x->nseq * x->hidden, rows = (size_t)(x->rows ? x->rows : 1);
    x->h_last = malloc(rows * per * sizeof(float));
    x->h_prompt = want_prompt ? malloc(rows * per * sizeof(float)) : NULL;
    x->line = malloc(rows * sizeof(int64_t));
    x->labels = x->nlabels ? malloc(rows * (size_t)x->nlabels * sizeof(float)) : NULL;
    if (!x->h_last || (want_prompt && !x->h_prompt) || !x->line || (x->nlabels && !x->labels)) {
        armo_err_set(e, "%s: out of memory for %lld rows", path, (long long)x->rows);
        goto done;
    }
    rc = load_shards(x, dir, shards, e);
done:
    json_decref(root);
    if (rc) armo_embeddings_free(x);
    return rc;
}

int armo_embeddings_load(armo_embeddings *x, const char *dir, armo_err *e) {
    return load(x, dir, 1, e);
}

int armo_embeddings_load_last(armo_embeddings *x, const char *dir, armo_err *e) {
    return load(x, dir, 0, e);
}

void armo_embeddings_free(armo_embeddings *x) {
    for (int i = 0; x->seq_names && i < x->nseq; i++) free(x->seq_names[i]);
    for (int i = 0; x->label_names && i < x->nlabels; i++) free(x->label_names[i]);
    free(x->seq_names);
    free(x->label_names);
    free(x->h_last);
    free(x->h_prompt);
    free(x->labels);
    free(x->line);
    memset(x, 0, sizeof *x);
}

int armo_embeddings_label(const armo_embeddings *x, const char *name) {
    for (int i = 0; i < x->nlabels; i++)
        if (!strcmp(x->label_names[i], name)) return i;
    return -1;
}
