/* tp_split.c — the tensor-parallel weight split (see tp_split.h). */
#include "host/engine/tp_split.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weights/dtype.h"

armo_weight armo_tp_rows(const armo_weight *w, int rank, int tp) {
    armo_weight v = *w;
    const int64_t rows = w->rows / tp;
    v.rows = rows;
    v.data = (const char *)w->data +
             (size_t)(rank * rows) * (size_t)w->cols * armo_dtype_size(w->dtype);
    return v;
}

armo_weight armo_tp_column_shard(const armo_weight *w, int rank, int tp, void *dstv) {
    char *dst = dstv;
    const size_t es = armo_dtype_size(w->dtype);
    const int64_t cols = w->cols / tp;
    const char *src = (const char *)w->data;
    for (int64_t i = 0; i < w->rows; i++)
        memcpy(dst + (size_t)i * (size_t)cols * es,
               src + ((size_t)i * (size_t)w->cols + (size_t)(rank * cols)) * es, (size_t)cols * es);
    armo_weight v = *w;
    v.cols = cols;
    v.data = dst;
    return v;
}

int armo_tp_check(const armo_config *c, int tp, armo_err *e) {
    if (tp < 1) return armo_err_set(e, "--tp %d: the shard count must be at least 1", tp);
    if (c->num_kv_heads % tp)
        return armo_err_set(e, "--tp %d does not divide the model's %d KV heads (use a divisor of "
                               "%d)", tp, c->num_kv_heads, c->num_kv_heads);
    if (c->intermediate_size % tp)
        return armo_err_set(e, "--tp %d does not divide the model's intermediate size %d", tp,
                            c->intermediate_size);
    return 0;
}

int armo_tp_shards_init(armo_tp_shards *t, const armo_model *m, int tp, armo_err *e) {
    memset(t, 0, sizeof *t);
    const armo_config *c = &m->cfg;
    if (armo_tp_check(c, tp, e)) return -1;
    const int L = c->num_layers;
    if (L < 1) return armo_err_set(e, "--tp: the model has no layers");
    t->tp = tp;
    t->nh = c->num_heads / tp;
    t->nkv = c->num_kv_heads / tp;
    t->inter = c->intermediate_size / tp;
    size_t bytes = 0;
    for (int l = 0; l < L; l++)
        bytes += (size_t)(m->layers[l].wo.rows * m->layers[l].wo.cols) *
                     armo_dtype_size(m->layers[l].wo.dtype) +
                 (size_t)(m->layers[l].wdown.rows * m->layers[l].wdown.cols) *
                     armo_dtype_size(m->layers[l].wdown.dtype);
    const size_t nshards = (size_t)(unsigned)L * (size_t)(unsigned)tp;
    t->wo = calloc(nshards, sizeof *t->wo);
    t->wdown = calloc(nshards, sizeof *t->wdown);
    t->storage = malloc(bytes ? bytes : 1);
    if (!t->wo || !t->wdown || !t->storage) {
        armo_tp_shards_free(t);
        return armo_err_set(e, "--tp %d: out of memory for the o_proj / down_proj shards (%zu "
                               "bytes)", tp, bytes);
    }
    char *p = t->storage;
    for (int l = 0; l < L; l++) {
        const armo_weight *wo = &m->layers[l].wo, *wd = &m->layers[l].wdown;
        for (int r = 0; r < tp; r++) {
            t->wo[l * tp + r] = armo_tp_column_shard(wo, r, tp, p);
            p += (size_t)(wo->rows * wo->cols / tp) * armo_dtype_size(wo->dtype);
            t->wdown[l * tp + r] = armo_tp_column_shard(wd, r, tp, p);
            p += (size_t)(wd->rows * wd->cols / tp) * armo_dtype_size(wd->dtype);
        }
    }
    return 0;
}

void armo_tp_shards_free(armo_tp_shards *t) {
    free(t->wo);
    free(t->wdown);
    free(t->storage);
    memset(t, 0, sizeof *t);
}
