/* gating.c — `armo train gating`: data, training loop, validation and output
 * (see gating.h; the network itself is gating_net.c). */
#include "host/train/gating.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "host/train/embed_store.h"
#include "host/train/gating_net.h"
#include "host/train/head_dir.h"
#include "host/train/split.h"
#include "weights/st_writer.h"

void armo_gating_defaults(armo_gating_opts *o) {
    memset(o, 0, sizeof *o);
    o->hidden_dim = 1024, o->n_hidden = 3;
    o->dropout = 0.2, o->temperature = 10.0;
    o->lr = 1e-3, o->weight_decay = 0.0;
    o->steps = 2000, o->batch = 1024, o->eval_every = 100;
    o->val_frac = 0.2;
}

/* The pairs and what training reads of them. */
typedef struct {
    armo_embeddings x;
    int H, K;
    float *d;                    /* [rows, K] debiased reward differences */
    int64_t *tr, *va, ntr, nva;
    float *xb, *db;              /* a batch gathered: [cap, H], [cap, K] */
} pairs;

static void pairs_free(pairs *p) {
    armo_embeddings_free(&p->x);
    free(p->d);
    free(p->tr);
    free(p->va);
    free(p->xb);
    free(p->db);
}

static int pairs_load(pairs *p, const armo_gating_opts *o, const armo_head_dir *h, int cap,
                      armo_err *e) {
    memset(p, 0, sizeof *p);
    if (armo_embeddings_load(&p->x, o->pairs, e)) return -1;
    const int64_t n = p->x.rows;
    p->H = h->hidden, p->K = h->k;
    if (p->x.nseq != 2 || p->x.hidden != h->hidden || n < 2)
        return armo_err_set(e, "%s: gating trains on pairs (2 sequences per record, hidden %d, 2 "
                               "or more); it holds %d per record, hidden %d, %lld records",
                            o->pairs, h->hidden, p->x.nseq, p->x.hidden, (long long)n);
    const int H = p->H, K = p->K;
    float *r = malloc(sizeof(float) * (size_t)n * 2 * K);
    p->d = malloc(sizeof(float) * (size_t)n * K);
    p->tr = malloc(sizeof(int64_t) * (size_t)n);
    p->va = malloc(sizeof(int64_t) * (size_t)n);
    p->xb = malloc(sizeof(float) * (size_t)cap * H);
    p->db = malloc(sizeof(float) * (size_t)cap * K);
    if (!r || !p->d || !p->tr || !p->va || !p->xb || !p->db) {
        free(r);
        return armo_err_set(e, "gating: out of memory for %lld pairs", (long long)n);
    }
    /* rewards of both sequences, their difference, then @ T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(2 * n), K, H, 1.0f, p->x.h_last, H,
                h->regression, H, 0.0f, r, K);
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++) r[i * K + k] = r[(2 * i) * K + k] - r[(2 * i + 1) * K + k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, K, K, 1.0f, r, K, h->transform,
                K, 0.0f, p->d, K);
    free(r);
    for (int64_t i = 0; i < n; i++)
        *(armo_split_is_val(o->seed, (uint64_t)i, o->val_frac) ? &p->va[p->nva++] : &p->tr[p->ntr++]) = i;
    if (p->ntr == 0 || p->nva == 0)
        return armo_err_set(e, "%s: the split leaves %lld training and %lld validation pairs",
                            o->pairs, (long long)p->ntr, (long long)p->nva);
    return 0;
}

/* Gathers pairs rows[0..B) into p->xb (h_prompt of the chosen) and p->db. */
static void gather(pairs *p, const int64_t *rows, int B) {
    for (int b = 0; b < B; b++) {
        memcpy(p->xb + (size_t)b * p->H, p->x.h_prompt + (size_t)rows[b] * 2 * p->H,
               sizeof(float) * p->H);
        memcpy(p->db + (size_t)b * p->K, p->d + (size_t)rows[b] * p->K, sizeof(float) * p->K);
    }
}

/* Validation accuracy (score > 0) and mean loss, no dropout. */
static double evaluate(armo_gnet *n, pairs *p, double *loss) {
    int64_t right = 0;
    double l = 0;
    for (int64_t at = 0; at < p->nva; at += n->cap) {
        int B = (int)(p->nva - at < n->cap ? p->nva - at : n->cap);
        gather(p, p->va + at, B);
        armo_gnet_forward(n, p->xb, B, p->db, 0);
        for (int b = 0; b < B; b++) {
            double x = n->score[b];
            right += x > 0;
            l += x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
        }
    }
    *loss = l / (double)p->nva;
    return (double)right / (double)p->nva;
}

static int load_init(armo_gnet *n, const char *path, armo_err *e) {
    char name[64];
    for (int l = 0; l <= n->nl; l++) {
        float *t = NULL;
        int64_t cnt = l < n->nl ? (int64_t)n->dims[l + 1] * n->dims[l] : 1;
        float *dst = l < n->nl ? armo_gnet_w(n, l) : armo_gnet_logit_scale(n);
        snprintf(name, sizeof name, l < n->nl ? "gating.layers.%d.weight" : "gating.logit_scale", l);
        if (armo_read_f32_tensor(path, name, cnt, &t, e)) return -1;
        memcpy(dst, t, sizeof(float) * (size_t)cnt);
        free(t);
        if (l == n->nl) break;
        snprintf(name, sizeof name, "gating.layers.%d.bias", l);
        if (armo_read_f32_tensor(path, name, n->dims[l + 1], &t, e)) return -1;
        memcpy(armo_gnet_b(n, l), t, sizeof(float) * (size_t)n->dims[l + 1]);
        free(t);
    }
    return 0;
}

static int write_outputs(const armo_gating_opts *o, armo_gnet *n, const pairs *p,
                         const double *losses, json_t *evals, double seconds, armo_err *e) {
    st_write_tensor t[2 * ARMO_GNET_MAX_LAYERS + 1];
    char names[2 * ARMO_GNET_MAX_LAYERS][48];
    int nt = 0;
    for (int l = 0; l < n->nl; l++) {
        snprintf(names[2 * l], 48, "gating.layers.%d.weight", l);
        snprintf(names[2 * l + 1], 48, "gating.layers.%d.bias", l);
        t[nt++] = (st_write_tensor){names[2 * l], ARMO_DT_F32, 2, {n->dims[l + 1], n->dims[l]},
                                    armo_gnet_w(n, l)};
        t[nt++] = (st_write_tensor){names[2 * l + 1], ARMO_DT_F32, 1, {n->dims[l + 1]},
                                    armo_gnet_b(n, l)};
    }
    t[nt++] = (st_write_tensor){"gating.logit_scale", ARMO_DT_F32, 1, {1}, armo_gnet_logit_scale(n)};
    char path[4200];
    snprintf(path, sizeof path, "%s/gating.safetensors", o->head_dir);
    if (st_write_file(path, t, nt, e)) return -1;
    json_t *jl = json_array();
    for (int s = 0; s < o->steps; s++) json_array_append_new(jl, json_real(losses[s]));
    json_t *root = json_pack(
        "{s:i, s:i, s:f, s:f, s:f, s:f, s:i, s:i, s:I, s:f, s:s, s:s*, s:I, s:I, s:f, s:o, s:O}",
        "gating_hidden_dim", o->hidden_dim, "gating_n_hidden", o->n_hidden, "dropout", o->dropout,
        "gating_temperature", o->temperature, "lr", o->lr, "weight_decay", o->weight_decay,
        "steps", o->steps, "batch", o->batch, "seed", (json_int_t)o->seed, "val_frac",
        o->val_frac, "pairs", o->pairs, "init", o->init, "n_train", (json_int_t)p->ntr, "n_val",
        (json_int_t)p->nva, "seconds", seconds, "losses", jl, "evals", evals);
    snprintf(path, sizeof path, "%s/gating.json", o->head_dir);
    int rc = root ? json_dump_file(root, path, JSON_INDENT(1)) : -1;
    json_decref(root);
    return rc ? armo_err_set(e, "cannot write %s", path) : 0;
}

/* The loop: sample, forward, backward, AdamW on the cosine schedule, report. */
static int train_loop(const armo_gating_opts *o, armo_gnet *n, pairs *p, FILE *report,
                      double *losses, json_t *evals, double *acc) {
    const int B = o->batch;
    int64_t *rows = malloc(sizeof(int64_t) * (size_t)B);
    if (!rows) return -1;
    const uint64_t bseed = o->seed ^ 0xB47C4ull, dseed = armo_splitmix64(o->seed ^ 0xD509ull);
    const double t0 = armo_now();
    for (int t = 0; t < o->steps; t++) {
        const double lr = o->lr * 0.5 * (1.0 + cos(M_PI * t / o->steps));
        for (int b = 0; b < B; b++)
            rows[b] = p->tr[(int64_t)(armo_split_u(bseed, (uint64_t)t * B + b) * (double)p->ntr)];
        gather(p, rows, B);
        armo_gnet_forward(n, p->xb, B, p->db, o->dropout > 0 ? dseed + (uint64_t)t + 1 : 0);
        losses[t] = armo_gnet_backward(n, B, p->db);
        armo_gnet_adamw(n, lr, o->weight_decay);
        if ((t + 1) % o->eval_every == 0 || t + 1 == o->steps) {
            double vl, va = evaluate(n, p, &vl);
            *acc = va;
            json_array_append_new(evals, json_pack("{s:i, s:f, s:f, s:f}", "step", t + 1, "loss",
                                                   losses[t], "val_acc", va, "val_loss", vl));
            if (report && !o->quiet)
                fprintf(report, "step %5d/%d  loss %.4f  lr %.3g  val_acc %.4f  val_loss %.4f  "
                                "%.1f s\n", t + 1, o->steps, losses[t], lr, va, vl, armo_now() - t0);
        }
    }
    free(rows);
    return 0;
}

int armo_train_gating(const armo_gating_opts *o, FILE *report, double *val_acc, armo_err *e) {
    armo_head_dir h;
    if (armo_head_dir_load(&h, o->head_dir, 1, e)) return -1;
    if (o->steps < 1 || o->batch < 1 || o->eval_every < 1 || !(o->dropout >= 0 && o->dropout < 1))
        return armo_head_dir_free(&h), armo_err_set(e, "gating: steps, batch and eval-every must "
                                                       "be positive, dropout in [0, 1)");
    armo_gnet n;
    pairs p;
    int rc = -1;
    double *losses = NULL, acc = 0;
    json_t *evals = json_array();
    memset(&p, 0, sizeof p);
    if (armo_gnet_init(&n, h.hidden, o->hidden_dim, o->n_hidden, h.k, (float)o->temperature,
                       (float)o->dropout, o->batch, e))
        goto done;
    if (o->init ? load_init(&n, o->init, e) : (armo_gnet_random(&n, o->seed ^ 0x1417ull), 0))
        goto done_net;
    if (pairs_load(&p, o, &h, o->batch, e)) goto done_net;
    losses = malloc(sizeof(double) * (size_t)o->steps);
    if (!losses || !evals) {
        armo_err_set(e, "gating: out of memory");
        goto done_net;
    }
    if (report)
        fprintf(report, "gating: %lld training / %lld validation pairs, hidden %d, %d x %d, %d "
                        "objectives, %lld parameters, %d steps of %d\n",
                (long long)p.ntr, (long long)p.nva, h.hidden, o->n_hidden, o->hidden_dim, h.k,
                (long long)n.np, o->steps, o->batch);
    const double t0 = armo_now();
    if (train_loop(o, &n, &p, report, losses, evals, &acc)) {
        armo_err_set(e, "gating: out of memory");
        goto done_net;
    }
    const double secs = armo_now() - t0;
    if (write_outputs(o, &n, &p, losses, evals, secs, e)) goto done_net;
    if (report)
        fprintf(report, "gating: validation accuracy %.4f after %d steps, %.2f s (%.1f ms/step)\n",
                acc, o->steps, secs, 1e3 * secs / o->steps);
    if (val_acc) *val_acc = acc;
    rc = 0;
done_net:
    armo_gnet_free(&n);
done:
    pairs_free(&p);
    free(losses);
    json_decref(evals);
    armo_head_dir_free(&h);
    return rc;
}
