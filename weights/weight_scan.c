/* weight_scan.c — NaN / ±Inf in a checkpoint's weights (see weight_scan.h).
 *
 * A value is NaN or ±Inf exactly when its exponent bits are all ones, so the
 * scan tests bits, not floats: per element (x & mask) == mask, counted over
 * fixed blocks that the compiler vectorizes.  The tensors are cut into
 * chunks of at most CHUNK_ELEMS elements, which worker threads take in turn;
 * a chunk that holds a bad value is read a second time for its first index
 * (only then). */
#include "weights/weight_scan.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/progress.h"

#define CHUNK_ELEMS ((int64_t)8 << 20) /* 16 MiB of BF16 */
#define BLOCK 512
#define MAX_THREADS 64

typedef struct {
    const st_tensor *t;
    int64_t begin, n;            /* elements [begin, begin + n) of t */
    int64_t count, first;        /* results: bad elements, first bad index (-1) */
} chunk;

typedef struct {
    chunk *chunks;
    int nchunks;
    atomic_int next;
} job;

#define DEFINE_COUNT(fn, T, MASK)                                                   \
    static int64_t fn(const unsigned char *p, int64_t n) {                         \
        const T mask = (T)(MASK);                                                  \
        int64_t c = 0, i = 0;                                                      \
        for (; i + BLOCK <= n; i += BLOCK) {                                       \
            unsigned acc = 0;                                                      \
            const unsigned char *b = p + (size_t)i * sizeof(T);                   \
            for (int j = 0; j < BLOCK; j++) {                                      \
                T x;                                                               \
                memcpy(&x, b + (size_t)j * sizeof(T), sizeof(T));                 \
                acc += (x & mask) == mask;                                         \
            }                                                                      \
            c += acc;                                                              \
        }                                                                          \
        for (; i < n; i++) {                                                       \
            T x;                                                                   \
            memcpy(&x, p + (size_t)i * sizeof(T), sizeof(T));                      \
            c += (x & mask) == mask;                                               \
        }                                                                          \
        return c;                                                                  \
    }

DEFINE_COUNT(count_bf16, uint16_t, 0x7f80u)
DEFINE_COUNT(count_f16, uint16_t, 0x7c00u)
DEFINE_COUNT(count_f32, uint32_t, 0x7f800000u)
DEFINE_COUNT(count_f64, uint64_t, 0x7ff0000000000000ull)

/* 1 if element i of p (dtype dt) is NaN / ±Inf. */
static int bad_at(const unsigned char *p, armo_dtype dt, int64_t i) {
    uint16_t h;
    uint32_t u;
    uint64_t d;
    switch (dt) {
    case ARMO_DT_BF16: memcpy(&h, p + 2 * i, 2); return (h & 0x7f80u) == 0x7f80u;
    case ARMO_DT_F16: memcpy(&h, p + 2 * i, 2); return (h & 0x7c00u) == 0x7c00u;
    case ARMO_DT_F32: memcpy(&u, p + 4 * i, 4); return (u & 0x7f800000u) == 0x7f800000u;
    case ARMO_DT_F64:
        memcpy(&d, p + 8 * i, 8);
        return (d & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
    default: return 0;
    }
}

static int scannable(armo_dtype dt) {
    return dt == ARMO_DT_BF16 || dt == ARMO_DT_F16 || dt == ARMO_DT_F32 || dt == ARMO_DT_F64;
}

static void scan_chunk(chunk *c) {
    const armo_dtype dt = c->t->dtype;
    const size_t es = armo_dtype_size(dt);
    const unsigned char *p = (const unsigned char *)c->t->data + (size_t)c->begin * es;
    switch (dt) {
    case ARMO_DT_BF16: c->count = count_bf16(p, c->n); break;
    case ARMO_DT_F16: c->count = count_f16(p, c->n); break;
    case ARMO_DT_F32: c->count = count_f32(p, c->n); break;
    case ARMO_DT_F64: c->count = count_f64(p, c->n); break;
    default: c->count = 0; break;
    }
    c->first = -1;
    for (int64_t i = 0; c->count && i < c->n; i++)
        if (bad_at(p, dt, i)) {
            c->first = c->begin + i;
            break;
        }
}

static void *worker(void *arg) {
    job *j = arg;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->nchunks) return NULL;
        scan_chunk(&j->chunks[i]);
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* The tensors of the scope, in name order; *n their count.  NULL (with e
 * set) when out of memory. */
static const st_tensor **scope_tensors(const armo_model *m, armo_scan_scope scope, int *n,
                                       armo_err *e) {
    const st_checkpoint *ck = &m->ck;
    const st_tensor **v = malloc(sizeof *v * (size_t)(ck->ntensors ? ck->ntensors : 1));
    if (!v) {
        armo_err_set(e, "out of memory listing %d tensors", ck->ntensors);
        return NULL;
    }
    *n = 0;
    if (scope == ARMO_SCAN_ALL) {
        for (int i = 0; i < ck->ntensors; i++) v[(*n)++] = &ck->tensors[i];
        return v;
    }
    /* the norms and the head: the weights the model binds that are not matrices of the
     * backbone */
    const armo_weight *w[8 + 2 * ARMO_MAX_GATING_LAYERS];
    int nw = 0;
    w[nw++] = &m->final_norm;
    w[nw++] = &m->regression;
    w[nw++] = &m->logit_scale;
    w[nw++] = &m->transform;
    w[nw++] = &m->score;
    for (int l = 0; l < m->gating_nlayers && l < ARMO_MAX_GATING_LAYERS; l++) {
        w[nw++] = &m->gating_w[l];
        w[nw++] = &m->gating_b[l];
    }
    for (int i = 0; i < nw; i++) {
        const st_tensor *t = w[i]->name ? st_find(ck, w[i]->name) : NULL;
        if (t && *n < ck->ntensors) v[(*n)++] = t;
    }
    for (int l = 0; m->layers && l < m->cfg.num_layers; l++) {
        const armo_weight *lw[2] = {&m->layers[l].attn_norm, &m->layers[l].mlp_norm};
        for (int k = 0; k < 2; k++) {
            const st_tensor *t = lw[k]->name ? st_find(ck, lw[k]->name) : NULL;
            if (t && *n < ck->ntensors) v[(*n)++] = t;
        }
    }
    qsort(v, (size_t)*n, sizeof *v, by_name);
    return v;
}

/* Runs the chunks on nt threads (the caller's included). */
static void run_chunks(job *j, int nt) {
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&tid[started], NULL, worker, j) != 0) break;
        started++;
    }
    worker(j); /* the caller takes chunks too: done even if no thread started */
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

int armo_weights_scan(const armo_model *m, armo_scan_scope scope, int threads,
                      armo_weight_scan *out, armo_err *e) {
    memset(out, 0, sizeof *out);
    const double t0 = armo_now();
    int nt_list = 0;
    const st_tensor **list = scope_tensors(m, scope, &nt_list, e);
    if (!list) return -1;
    int64_t nchunks = 0;
    for (int i = 0; i < nt_list; i++) {
        if (!scannable(list[i]->dtype) || !list[i]->data) {
            out->skipped += scannable(list[i]->dtype) ? 0 : 1;
            continue;
        }
        nchunks += (list[i]->numel + CHUNK_ELEMS - 1) / CHUNK_ELEMS;
    }
    job j = {.chunks = malloc(sizeof(chunk) * (size_t)(nchunks ? nchunks : 1)), .nchunks = 0};
    if (!j.chunks) {
        free(list);
        return armo_err_set(e, "out of memory for %lld scan chunks", (long long)nchunks);
    }
    atomic_init(&j.next, 0);
    for (int i = 0; i < nt_list; i++) {
        const st_tensor *t = list[i];
        if (!scannable(t->dtype) || !t->data) continue;
        out->tensors++;
        out->bytes += (int64_t)t->nbytes;
        for (int64_t b = 0; b < t->numel; b += CHUNK_ELEMS)
            j.chunks[j.nchunks++] = (chunk){.t = t, .begin = b,
                                            .n = t->numel - b < CHUNK_ELEMS ? t->numel - b
                                                                            : CHUNK_ELEMS};
    }
    if (threads <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? (int)ncpu : 1;
    }
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > j.nchunks) threads = j.nchunks > 0 ? j.nchunks : 1;
    out->threads = threads;
    run_chunks(&j, threads);
    /* chunks are in tensor (name) order and, within a tensor, in index order */
    const st_tensor *prev = NULL; /* the last tensor found bad */
    for (int c = 0; c < j.nchunks; c++) {
        const chunk *k = &j.chunks[c];
        if (!k->count) continue;
        out->bad_values += k->count;
        if (k->t == prev) { /* a later chunk of a tensor already counted */
            armo_bad_tensor *last = &out->listed[out->nlisted - 1]; /* prev set: nlisted >= 1 */
            if (last->name == k->t->name) last->count += k->count;
            continue;
        }
        prev = k->t;
        out->bad_tensors++;
        if (out->nlisted < ARMO_SCAN_LISTED) {
            const size_t es = armo_dtype_size(k->t->dtype);
            const unsigned char *p = (const unsigned char *)k->t->data + (size_t)k->first * es;
            uint64_t d;
            float v;
            if (k->t->dtype == ARMO_DT_F64) {
                double x;
                memcpy(&d, p, 8);
                memcpy(&x, &d, 8);
                v = (float)x;
            } else {
                v = armo_load_f32(p, k->t->dtype, 0);
            }
            out->listed[out->nlisted++] =
                (armo_bad_tensor){.name = k->t->name, .index = k->first,
                                  .cols = k->t->ndim >= 2 ? k->t->shape[k->t->ndim - 1] : 0,
                                  .count = k->count, .value = v};
        }
    }
    free(j.chunks);
    free(list);
    out->seconds = armo_now() - t0;
    return 0;
}

static const char *kind(float v) {
    return v != v ? "NaN" : v < 0 ? "-Inf" : "+Inf";
}

const char *armo_weight_scan_message(const armo_weight_scan *s, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < s->nlisted && off + 1 < len; i++) {
        const armo_bad_tensor *b = &s->listed[i];
        char at[64];
        if (b->cols > 0)
            snprintf(at, sizeof at, "[%lld, %lld]", (long long)(b->index / b->cols),
                     (long long)(b->index % b->cols));
        else
            snprintf(at, sizeof at, "[%lld]", (long long)b->index);
        char more[48] = "";
        if (b->count > 1)
            snprintf(more, sizeof more, " (%lld NaN/Inf values)", (long long)b->count);
        int n = snprintf(buf + off, len - off, "%stensor '%s' %s is %s%s", i ? "; " : "", b->name,
                         at, kind(b->value), more);
        if (n < 0) break;
        off += (size_t)n < len - off ? (size_t)n : len - off - 1;
    }
    if (s->bad_tensors > 1 && off + 1 < len)
        snprintf(buf + off, len - off, "%s (%lld tensors, %lld NaN/Inf values in all)",
                 s->bad_tensors > s->nlisted ? "; ..." : "", (long long)s->bad_tensors,
                 (long long)s->bad_values);
    return buf;
}
