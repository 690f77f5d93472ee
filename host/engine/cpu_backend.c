/* cpu_backend.c — the whole forward on the CPU (see cpu_backend.h).
 *
 * At create time the backend converts every matrix of the layers to fp32
 * once (BF16 / F16 checkpoints; aligned F32 tensors are used in place: the
 * cost is armo_cpu_weight_bytes, which `armo inspect` prints), and the small
 * tensors too: the norm weights, the whole ArmoRM head (an
 * armo_head_params, the CUDA head's struct too) and the seqcls score weight.
 * The embedding stays a view into the checkpoint's mmap (rows are converted
 * as they are gathered).  armo_cpu_score runs one packed batch (no padding)
 * through the layers with activation buffers sized by the batch's token
 * count, then gathers the two head rows of every sequence and applies the
 * head.  The matrix products go through BLAS in fixed call shapes
 * (cpu_gemm.h), attention in tiles of query rows per sequence and head
 * (cpu_attn.h).  Both give bit-identical results for any thread count and
 * any packing. */
#include "host/engine/cpu_backend.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/progress.h"
#include "host/engine/batch_check.h"
#include "host/engine/cpu_attn.h"
#include "host/engine/cpu_gemm.h"
#include "host/engine/cpu_ops.h"
#include "host/engine/tp_split.h"
#include "host/engine/prefix_share.h"
#include "weights/dtype.h"
#include "weights/rope_table.h"

/* A layer's matrices in fp32, [out, in] row-major as in the checkpoint. */
typedef struct {
    const float *wq, *wk, *wv, *wo, *wgate, *wup, *wdown;
} cpu_layer;

struct armo_cpu {
    const armo_model *m;
    int nthreads;
    cpu_layer *layers;           /* [num_layers] */
    float **owned;               /* the converted matrices (7 per layer; NULL: used in place) */
    float *norms;                /* all norm weights in fp32: 2 per layer + final */
    float **attn_norm, **mlp_norm; /* per layer, pointers into norms */
    float *final_norm;
    float *inv_freq;             /* [head_dim / 2] */
    /* ArmoRM head */
    armo_head_params head;
    float *head_storage;
    /* seqcls head */
    float *score_w;              /* [num_labels, H] */
    /* tensor parallel (armo_cpu_set_tp): tp.tp > 0 runs the sharded arithmetic */
    armo_tp_shards tp;
    float **tp_wo, **tp_wdown;   /* [layer * tp + rank]: the column shards in fp32 */
};

/* Converts a weight of rows*cols elements into dst, checking its dtype. */
static int convert_weight(float *dst, const armo_weight *w, int64_t rows, int64_t cols,
                          armo_err *e) {
    if (!armo_dtype_is_float_compute(w->dtype))
        return armo_err_set(e, "tensor %s has dtype %s; the CPU backend needs BF16, F16 or F32",
                            w->name ? w->name : "?", armo_dtype_name(w->dtype));
    if (w->rows * w->cols != rows * cols)
        return armo_err_set(e, "tensor %s is [%lld, %lld], expected %lld elements",
                            w->name ? w->name : "?", (long long)w->rows, (long long)w->cols,
                            (long long)(rows * cols));
    const size_t es = armo_dtype_size(w->dtype), bytes = (size_t)(rows * cols) * es;
    if ((uintptr_t)w->data % es == 0) {
        armo_convert_to_f32(dst, w->data, w->dtype, (size_t)(rows * cols));
        return 0;
    }
    /* safetensors data need not be aligned: convert from an aligned copy */
    void *copy = malloc(bytes);
    if (!copy)
        return armo_err_set(e, "out of memory copying tensor %s (%zu bytes)",
                            w->name ? w->name : "?", bytes);
    memcpy(copy, w->data, bytes);
    armo_convert_to_f32(dst, copy, w->dtype, (size_t)(rows * cols));
    free(copy);
    return 0;
}

static int check_matrix(const armo_weight *w, int64_t rows, int64_t cols, armo_err *e) {
    if (!w->data || !armo_dtype_is_float_compute(w->dtype))
        return armo_err_set(e, "tensor %s: missing or dtype %s; the CPU backend needs BF16, F16 "
                               "or F32", w->name ? w->name : "?", armo_dtype_name(w->dtype));
    if (w->rows != rows || w->cols != cols)
        return armo_err_set(e, "tensor %s is [%lld, %lld], the config implies [%lld, %lld]",
                            w->name ? w->name : "?", (long long)w->rows, (long long)w->cols,
                            (long long)rows, (long long)cols);
    return 0;
}

/* The matrices of layer l, in the order cpu_layer lists them. */
static void layer_matrices(const armo_layer_weights *lw, const armo_weight *mats[7]) {
    mats[0] = &lw->wq, mats[1] = &lw->wk, mats[2] = &lw->wv, mats[3] = &lw->wo;
    mats[4] = &lw->wgate, mats[5] = &lw->wup, mats[6] = &lw->wdown;
}

/* An F32 tensor aligned for float is used where it lies; anything else is
 * converted. */
static int used_in_place(const armo_weight *w) {
    return w->dtype == ARMO_DT_F32 && (uintptr_t)w->data % sizeof(float) == 0;
}

size_t armo_cpu_weight_bytes(const armo_model *m) {
    size_t bytes = 0;
    for (int l = 0; l < m->cfg.num_layers; l++) {
        const armo_weight *mats[7];
        layer_matrices(&m->layers[l], mats);
        for (int i = 0; i < 7; i++)
            if (!used_in_place(mats[i]))
                bytes += (size_t)mats[i]->rows * (size_t)mats[i]->cols * sizeof(float);
    }
    return bytes;
}

/* Every layer matrix in fp32 (shapes checked by the caller). */
static int setup_layers(armo_cpu *c, armo_err *e) {
    const armo_model *m = c->m;
    const int L = m->cfg.num_layers;
    c->layers = calloc((size_t)L, sizeof *c->layers);
    c->owned = calloc((size_t)L * 7, sizeof *c->owned);
    if (!c->layers || !c->owned) return armo_err_set(e, "out of memory for %d layers", L);
    for (int l = 0; l < L; l++) {
        const armo_weight *mats[7];
        const float *f32[7];
        layer_matrices(&m->layers[l], mats);
        for (int i = 0; i < 7; i++) {
            const armo_weight *w = mats[i];
            if (used_in_place(w)) {
                f32[i] = w->data;
                continue;
            }
            const size_t count = (size_t)w->rows * (size_t)w->cols;
            float *dst = malloc(count * sizeof(float));
            if (!dst)
                return armo_err_set(e, "out of memory converting %s to fp32 (%zu bytes; the "
                                       "CPU backend keeps every layer matrix in fp32: %zu "
                                       "bytes in all, see armo inspect)",
                                    w->name ? w->name : "?", count * sizeof(float),
                                    armo_cpu_weight_bytes(m));
            c->owned[(size_t)l * 7 + i] = dst;
            if (convert_weight(dst, w, w->rows, w->cols, e) < 0) return -1;
            f32[i] = dst;
        }
        c->layers[l] = (cpu_layer){f32[0], f32[1], f32[2], f32[3], f32[4], f32[5], f32[6]};
    }
    return 0;
}

/* The head's sizes from the checkpoint (checked there), its weights
 * converted to fp32 into one block. */
static int setup_armo_head(armo_cpu *c, armo_err *e) {
    const armo_model *m = c->m;
    armo_head_params *h = &c->head;
    if (armo_model_head_params(m, h, e)) return -1;
    const int H = h->hidden, K = h->k;
    size_t total = (size_t)K * H + (size_t)K * K;
    for (int l = 0; l < h->nlayers; l++)
        total += (size_t)h->dims[l + 1] * h->dims[l] + (size_t)h->dims[l + 1];
    c->head_storage = malloc(total * sizeof(float));
    if (!c->head_storage)
        return armo_err_set(e, "out of memory for the fp32 ArmoRM head (%zu floats)", total);
    float *p = c->head_storage;
    if (convert_weight(p, &m->regression, K, H, e) < 0) return -1;
    h->regression = p;
    p += (size_t)K * H;
    for (int l = 0; l < h->nlayers; l++) {
        int din = h->dims[l], dout = h->dims[l + 1];
        if (convert_weight(p, &m->gating_w[l], dout, din, e) < 0) return -1;
        h->gw[l] = p;
        p += (size_t)dout * din;
        if (convert_weight(p, &m->gating_b[l], dout, 1, e) < 0) return -1;
        h->gb[l] = p;
        p += dout;
    }
    if (convert_weight(p, &m->transform, K, K, e) < 0) return -1;
    h->transform = p;
    return 0;
}

armo_cpu *armo_cpu_create(const armo_model *m, int nthreads, armo_err *e) {
    const armo_config *cfg = &m->cfg;
    const int H = cfg->hidden_size, L = cfg->num_layers;
    const int nh = cfg->num_heads, nkv = cfg->num_kv_heads, hd = cfg->head_dim;
    const int I = cfg->intermediate_size;
    if (H <= 0 || L <= 0 || nh <= 0 || nkv <= 0 || hd <= 0 || hd % 2 || nh % nkv || I <= 0 ||
        cfg->vocab_size <= 0) {
        armo_err_set(e, "CPU backend: inconsistent config (hidden %d, layers %d, heads %d/%d, "
                        "head_dim %d, intermediate %d, vocab %d)",
                     H, L, nh, nkv, hd, I, cfg->vocab_size);
        return NULL;
    }
    armo_cpu *c = calloc(1, sizeof *c);
    if (!c) {
        armo_err_set(e, "CPU backend: out of memory");
        return NULL;
    }
    c->m = m;
    if (nthreads <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = ncpu > 0 ? (int)ncpu : 1;
    }
    c->nthreads = nthreads;

    /* shapes of the big matrices (the loader checks them too; a backend that
     * indexes them must not trust a caller-built armo_model blindly) */
    if (check_matrix(&m->embed, cfg->vocab_size, H, e) < 0) goto fail;
    for (int l = 0; l < L; l++) {
        const armo_layer_weights *lw = &m->layers[l];
        if (check_matrix(&lw->wq, (int64_t)nh * hd, H, e) < 0 ||
            check_matrix(&lw->wk, (int64_t)nkv * hd, H, e) < 0 ||
            check_matrix(&lw->wv, (int64_t)nkv * hd, H, e) < 0 ||
            check_matrix(&lw->wo, H, (int64_t)nh * hd, e) < 0 ||
            check_matrix(&lw->wgate, I, H, e) < 0 || check_matrix(&lw->wup, I, H, e) < 0 ||
            check_matrix(&lw->wdown, H, I, e) < 0)
            goto fail;
    }

    cpu_gemm_blas_init();
    if (setup_layers(c, e) < 0) goto fail;

    c->norms = malloc(sizeof(float) * (size_t)H * (2 * (size_t)L + 1));
    c->attn_norm = malloc(sizeof(float *) * L);
    c->mlp_norm = malloc(sizeof(float *) * L);
    c->inv_freq = malloc(sizeof(float) * (size_t)(hd / 2));
    if (!c->norms || !c->attn_norm || !c->mlp_norm || !c->inv_freq) {
        armo_err_set(e, "CPU backend: out of memory for norm weights");
        goto fail;
    }
    for (int l = 0; l < L; l++) {
        c->attn_norm[l] = c->norms + (size_t)H * (2 * (size_t)l);
        c->mlp_norm[l] = c->norms + (size_t)H * (2 * (size_t)l + 1);
        if (convert_weight(c->attn_norm[l], &m->layers[l].attn_norm, H, 1, e) < 0 ||
            convert_weight(c->mlp_norm[l], &m->layers[l].mlp_norm, H, 1, e) < 0)
            goto fail;
    }
    c->final_norm = c->norms + (size_t)H * (2 * (size_t)L);
    if (convert_weight(c->final_norm, &m->final_norm, H, 1, e) < 0) goto fail;
    armo_rope_inv_freq(cfg, c->inv_freq);

    if (cfg->arch == ARMO_ARCH_ARMORM) {
        if (setup_armo_head(c, e) < 0) goto fail;
    } else if (cfg->arch == ARMO_ARCH_SEQCLS) {
        int labels = cfg->num_labels;
        if (labels <= 0 || labels > ARMO_MAX_LABELS) {
            armo_err_set(e, "num_labels %d is outside 1..%d", labels, ARMO_MAX_LABELS);
            goto fail;
        }
        c->score_w = malloc(sizeof(float) * (size_t)labels * H);
        if (!c->score_w) {
            armo_err_set(e, "CPU backend: out of memory for the score head");
            goto fail;
        }
        if (check_matrix(&m->score, labels, H, e) < 0 ||
            convert_weight(c->score_w, &m->score, labels, H, e) < 0)
            goto fail;
    } else if (cfg->arch != ARMO_ARCH_BACKBONE) { /* a backbone has no head */
        armo_err_set(e, "CPU backend: unknown architecture %s", cfg->arch_name);
        goto fail;
    }
    return c;
fail:
    armo_err_prefix(e, "CPU backend (%s)", m->dir);
    armo_cpu_destroy(c);
    return NULL;
}

/* The tensor-parallel shards (armo_cpu_set_tp), if any. */
static void free_tp(armo_cpu *c) {
    const int count = c->tp.tp * c->m->cfg.num_layers;
    for (int i = 0; c->tp_wo && i < count; i++) free(c->tp_wo[i]);
    for (int i = 0; c->tp_wdown && i < count; i++) free(c->tp_wdown[i]);
    free(c->tp_wo);
    free(c->tp_wdown);
    c->tp_wo = c->tp_wdown = NULL;
    armo_tp_shards_free(&c->tp);
}

void armo_cpu_destroy(armo_cpu *c) {
    if (!c) return;
    free_tp(c);
    free(c->score_w);
    free(c->head_storage);
    free(c->inv_freq);
    free(c->mlp_norm);
    free(c->attn_norm);
    free(c->norms);
    if (c->owned)
        for (int i = 0; i < 7 * c->m->cfg.num_layers; i++) free(c->owned[i]);
    free(c->owned);
    free(c->layers);
    free(c);
}

/* The column shards of tp_split.h (o_proj's and down_proj's, copies in the
 * checkpoint's dtype) converted to fp32 once, for cpu_gemm; the row shards
 * are row ranges of the fp32 layer matrices. */
int armo_cpu_set_tp(armo_cpu *c, int tp, armo_err *e) {
    free_tp(c);
    if (tp == 0) return 0;
    if (armo_tp_shards_init(&c->tp, c->m, tp, e)) return -1;
    const armo_config *cfg = &c->m->cfg;
    const int count = tp * cfg->num_layers, H = cfg->hidden_size;
    const int64_t qcols = (int64_t)c->tp.nh * cfg->head_dim;
    c->tp_wo = calloc((size_t)count, sizeof *c->tp_wo);
    c->tp_wdown = calloc((size_t)count, sizeof *c->tp_wdown);
    if (!c->tp_wo || !c->tp_wdown) goto oom;
    for (int i = 0; i < count; i++) {
        c->tp_wo[i] = malloc(sizeof(float) * (size_t)(H * qcols));
        c->tp_wdown[i] = malloc(sizeof(float) * (size_t)H * (size_t)c->tp.inter);
        if (!c->tp_wo[i] || !c->tp_wdown[i]) goto oom;
        if (convert_weight(c->tp_wo[i], &c->tp.wo[i], H, qcols, e) ||
            convert_weight(c->tp_wdown[i], &c->tp.wdown[i], H, c->tp.inter, e)) {
            free_tp(c);
            return -1;
        }
    }
    return 0;
oom:
    free_tp(c);
    return armo_err_set(e, "out of memory for the tensor-parallel shards (%d ranks)", tp);
}

const armo_head_params *armo_cpu_head(const armo_cpu *c) {
    return c && c->m->cfg.arch == ARMO_ARCH_ARMORM ? &c->head : NULL;
}

/* Attention of one layer (cpu_attn.h): on the packed rows, or (prefix
 * sharing) on the expanded layout of prefix_share.h, gathered in and
 * scattered back. */
static int attention_layer(float *att, const float *q, const float *k, const float *v,
                           const int32_t *cu_seqlens, int nseq, const armo_expansion *x, int nh,
                           int nkv, int hd, int nt, armo_err *e) {
    const int n = x->n_unique;
    if (x->identity) return cpu_attn(att, q, k, v, cu_seqlens, nseq, nh, nkv, hd, nt, e);
    const size_t qdim = (size_t)nh * hd, kvdim = (size_t)nkv * hd, ne = (size_t)x->n_exp;
    float *qe = malloc(sizeof(float) * ne * qdim), *ke = malloc(sizeof(float) * ne * kvdim),
          *ve = malloc(sizeof(float) * ne * kvdim), *ae = malloc(sizeof(float) * ne * qdim);
    int rc = -1;
    if (qe && ke && ve && ae) {
        for (int s = 0; s < x->nseq_exp; s++)
            for (int r = x->cu_exp[s]; r < x->cu_exp[s + 1]; r++) {
                size_t u = (size_t)x->exp_rows[r];
                memcpy(qe + r * qdim, q + u * qdim, sizeof(float) * qdim);
                memcpy(ke + r * kvdim, k + u * kvdim, sizeof(float) * kvdim);
                memcpy(ve + r * kvdim, v + u * kvdim, sizeof(float) * kvdim);
            }
        rc = cpu_attn(ae, qe, ke, ve, x->cu_exp, x->nseq_exp, nh, nkv, hd, nt, e);
        if (rc == 0)
            for (int u = 0; u < n; u++)
                memcpy(att + (size_t)u * qdim, ae + (size_t)x->back_rows[u] * qdim,
                       sizeof(float) * qdim);
    } else {
        armo_err_set(e, "out of memory for the shared-prefix attention of %d rows", x->n_exp);
    }
    free(qe);
    free(ke);
    free(ve);
    free(ae);
    return rc;
}

/* The activations of one batch, all proportional to its token count. */
typedef struct {
    int n, nseq;
    const int32_t *cu_seqlens;
    const armo_expansion *xp;
    float *x, *xn, *delta;       /* residual stream, normed block input, o/down output */
    float *q, *k, *v, *att;      /* [n, heads * hd] (a rank's heads under tensor parallel) */
    float *gate, *up;            /* [n, I] (a rank's columns under tensor parallel) */
    float *part;                 /* tensor parallel: a rank's partial o/down sum [n, H] */
} acts;

/* The all-reduce of tensor parallel: acc += part, called for ranks 1, 2,
 * ... in order after rank 0 wrote acc, so the sum is ((p0 + p1) + p2) + ... */
static void tp_reduce_add(float *acc, const float *part, size_t count) {
    for (size_t i = 0; i < count; i++) acc[i] += part[i];
}

/* delta = o_proj(attention(rope(q), rope(k), v)) of layer l on a->xn: whole,
 * or (c->tp) rank by rank on each rank's heads (row ranges of the fp32
 * q/k/v matrices, o_proj's fp32 column shard), the partials all-reduced.
 * 0, or -1 with e set (out of memory). */
static int attention_block(armo_cpu *c, int l, acts *a, armo_err *e) {
    const armo_config *cfg = &c->m->cfg;
    const cpu_layer *lw = &c->layers[l];
    const int n = a->n, H = cfg->hidden_size, hd = cfg->head_dim, nt = c->nthreads;
    const int sharded = c->tp.tp > 0, tp = sharded ? c->tp.tp : 1;
    const int nh = sharded ? c->tp.nh : cfg->num_heads;
    const int nkv = sharded ? c->tp.nkv : cfg->num_kv_heads;
    const size_t qrows = (size_t)nh * hd, kvrows = (size_t)nkv * hd;
    for (int r = 0; r < tp; r++) {
        const cpu_gemm_op qkv[3] = {{lw->wq + r * qrows * H, a->q, (int)qrows},
                                    {lw->wk + r * kvrows * H, a->k, (int)kvrows},
                                    {lw->wv + r * kvrows * H, a->v, (int)kvrows}};
        if (cpu_gemm(a->xn, n, H, qkv, 3, nt, e)) return -1;
        cpu_rope_apply(a->q, n, nh, hd, a->xp->pos, c->inv_freq);
        cpu_rope_apply(a->k, n, nkv, hd, a->xp->pos, c->inv_freq);
        if (attention_layer(a->att, a->q, a->k, a->v, a->cu_seqlens, a->nseq, a->xp, nh, nkv, hd,
                            nt, e))
            return -1;
        const cpu_gemm_op o_proj = {sharded ? c->tp_wo[l * tp + r] : lw->wo,
                                    r == 0 ? a->delta : a->part, H};
        if (cpu_gemm(a->att, n, (int)qrows, &o_proj, 1, nt, e)) return -1;
        if (r > 0) tp_reduce_add(a->delta, a->part, (size_t)n * H);
    }
    return 0;
}

/* delta = down_proj(silu(gate_proj(xn)) * up_proj(xn)) of layer l: whole, or
 * (c->tp) rank by rank on each rank's intermediate columns, all-reduced. */
static int mlp_block(armo_cpu *c, int l, acts *a, armo_err *e) {
    const armo_config *cfg = &c->m->cfg;
    const cpu_layer *lw = &c->layers[l];
    const int n = a->n, H = cfg->hidden_size, nt = c->nthreads;
    const int sharded = c->tp.tp > 0, tp = sharded ? c->tp.tp : 1;
    const int inter = sharded ? c->tp.inter : cfg->intermediate_size;
    for (int r = 0; r < tp; r++) {
        const size_t off = (size_t)r * inter * H;
        const cpu_gemm_op gate_up[2] = {{lw->wgate + off, a->gate, inter},
                                        {lw->wup + off, a->up, inter}};
        if (cpu_gemm(a->xn, n, H, gate_up, 2, nt, e)) return -1;
        cpu_swiglu(a->gate, a->gate, a->up, (int64_t)n * inter);
        const cpu_gemm_op down = {sharded ? c->tp_wdown[l * tp + r] : lw->wdown,
                                  r == 0 ? a->delta : a->part, H};
        if (cpu_gemm(a->gate, n, inter, &down, 1, nt, e)) return -1;
        if (r > 0) tp_reduce_add(a->delta, a->part, (size_t)n * H);
    }
    return 0;
}

static int score_impl(armo_cpu *c, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                      const int32_t *gating_pos, const int32_t *prefix_of,
                      float *const *hidden_out, armo_result *out, armo_err *e);

int armo_cpu_score(armo_cpu *c, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                   const int32_t *gating_pos, armo_result *out, armo_err *e) {
    return score_impl(c, ids, cu_seqlens, nseq, gating_pos, NULL, NULL, out, e);
}

int armo_cpu_score_shared(armo_cpu *c, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                          const int32_t *gating_pos, const int32_t *prefix_of, armo_result *out,
                          armo_err *e) {
    return score_impl(c, ids, cu_seqlens, nseq, gating_pos, prefix_of, NULL, out, e);
}

static int score_impl(armo_cpu *c, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                      const int32_t *gating_pos, const int32_t *prefix_of,
                      float *const *hidden_out, armo_result *out, armo_err *e) {
    armo_expansion xp;
    if (armo_batch_check(&c->m->cfg, ids, cu_seqlens, nseq, gating_pos, prefix_of, &xp, e))
        return -1;
    if (nseq == 0) return 0;
    const armo_model *m = c->m;
    const armo_config *cfg = &m->cfg;
    const int n = cu_seqlens[nseq];
    const int H = cfg->hidden_size, L = cfg->num_layers, I = cfg->intermediate_size;
    const int nh = cfg->num_heads, nkv = cfg->num_kv_heads, hd = cfg->head_dim;
    const float eps = (float)cfg->rms_norm_eps;
    const size_t qdim = (size_t)nh * hd, kvdim = (size_t)nkv * hd;

    /* activations, all proportional to the batch's token count */
    float *x = malloc(sizeof(float) * (size_t)n * H);       /* residual stream */
    float *xn = malloc(sizeof(float) * (size_t)n * H);      /* normed input of each block */
    float *delta = malloc(sizeof(float) * (size_t)n * H);   /* o_proj / down_proj output */
    float *q = malloc(sizeof(float) * (size_t)n * qdim);
    float *k = malloc(sizeof(float) * (size_t)n * kvdim);
    float *v = malloc(sizeof(float) * (size_t)n * kvdim);
    float *att = malloc(sizeof(float) * (size_t)n * qdim);
    float *gate = malloc(sizeof(float) * (size_t)n * I);
    float *up = malloc(sizeof(float) * (size_t)n * I);
    float *part = c->tp.tp > 1 ? malloc(sizeof(float) * (size_t)n * H) : NULL;
    int32_t *row_ids = malloc(sizeof(int32_t) * (size_t)n);
    float *hlast = malloc(sizeof(float) * (size_t)nseq * H);
    float *hprompt = malloc(sizeof(float) * (size_t)nseq * H);
    const int K = cfg->arch == ARMO_ARCH_ARMORM ? c->head.k
                  : cfg->arch == ARMO_ARCH_SEQCLS ? cfg->num_labels
                                                  : 1; /* backbone: no head */
    const int gated = cfg->arch != ARMO_ARCH_SEQCLS; /* reads the gating row */
    float *r_rew = malloc(sizeof(float) * (size_t)nseq * K);
    float *r_gate = malloc(sizeof(float) * (size_t)nseq * K);
    float *r_coef = malloc(sizeof(float) * (size_t)nseq * K);
    float *r_score = malloc(sizeof(float) * (size_t)nseq);
    int rc = 0;
    if (!x || !xn || !delta || !q || !k || !v || !att || !gate || !up || !row_ids ||
        (c->tp.tp > 1 && !part) || !hlast || !hprompt || !r_rew || !r_gate || !r_coef || !r_score) {
        rc = armo_err_set(e, "CPU backend: out of memory for a batch of %d tokens in %d "
                             "sequences; score fewer tokens at a time",
                          n, nseq);
        goto done;
    }
    for (int i = 0; i < n; i++) row_ids[i] = i;

    acts a = {n, nseq, cu_seqlens, &xp, x, xn, delta, q, k, v, att, gate, up, part};
    cpu_embed(x, &m->embed, ids, n);
    cpu_rmsnorm(xn, x, c->attn_norm[0], n, H, eps);
    for (int l = 0; l < L; l++) {
        if (attention_block(c, l, &a, e)) goto gemm_failed;
        cpu_add_rmsnorm(x, delta, xn, c->mlp_norm[l], n, H, eps);
        if (mlp_block(c, l, &a, e)) goto gemm_failed;
        /* residual, then the next block's norm (the final norm after the last layer) */
        const float *next_norm = l + 1 < L ? c->attn_norm[l + 1] : c->final_norm;
        cpu_add_rmsnorm(x, delta, xn, next_norm, n, H, eps);
    }

    /* gather the head rows (post final norm) of the segments that get a head */
    int nhead = 0;
    int32_t *head_seg = row_ids; /* reused: nhead <= nseq <= n */
    for (int s = 0; s < nseq; s++) {
        if (xp.is_prefix[s]) continue;
        int last = cu_seqlens[s + 1] - 1;
        memcpy(hlast + (size_t)nhead * H, xn + (size_t)last * H, sizeof(float) * H);
        if (gated) {
            int32_t row = armo_expansion_row(cu_seqlens, prefix_of, s, gating_pos[s]);
            memcpy(hprompt + (size_t)nhead * H, xn + (size_t)row * H, sizeof(float) * H);
        } else {
            memset(hprompt + (size_t)nhead * H, 0, sizeof(float) * H);
        }
        if (hidden_out && hidden_out[s]) { /* armo embed's hook (backend.h) */
            memcpy(hidden_out[s], hlast + (size_t)nhead * H, sizeof(float) * H);
            memcpy(hidden_out[s] + H, hprompt + (size_t)nhead * H, sizeof(float) * H);
        }
        head_seg[nhead++] = s;
    }

    if (cfg->arch == ARMO_ARCH_ARMORM)
        cpu_armo_head(&c->head, hlast, hprompt, nhead, r_rew, r_gate, r_coef, r_score);
    else if (cfg->arch == ARMO_ARCH_SEQCLS)
        cpu_seqcls_head(c->score_w, K, H, hlast, nhead, r_rew);

    for (int s = 0; s < nseq; s++) memset(&out[s], 0, sizeof out[s]);
    for (int h = 0; h < nhead; h++) {
        int s = head_seg[h];
        armo_result *r = &out[s];
        r->n_tokens = xp.full_len[s];
        r->last_pos = r->n_tokens - 1;
        if (cfg->arch == ARMO_ARCH_ARMORM) {
            r->gating_pos = gating_pos[s];
            r->score = r_score[h];
            r->n_objectives = K;
            memcpy(r->rewards, r_rew + (size_t)h * K, sizeof(float) * K);
            memcpy(r->gating, r_gate + (size_t)h * K, sizeof(float) * K);
            memcpy(r->coefficients, r_coef + (size_t)h * K, sizeof(float) * K);
        } else if (cfg->arch == ARMO_ARCH_SEQCLS) {
            r->gating_pos = -1;
            r->n_labels = K;
            memcpy(r->labels, r_rew + (size_t)h * K, sizeof(float) * K);
            r->score = r->labels[0];
        } else {
            r->gating_pos = gating_pos[s]; /* backbone: the rows alone, no head */
        }
        /* the head's input rows first, then its outputs (backend.h) */
        armo_result_check_finite(r, hlast + (size_t)h * H, gated ? hprompt + (size_t)h * H : NULL,
                                 H);
    }
    goto done;
gemm_failed: /* a GEMM or the attention: out of memory */
    rc = -1;
    armo_err_prefix(e, "CPU backend, a batch of %d tokens", n);
done:
    free(r_score);
    free(r_coef);
    free(r_gate);
    free(r_rew);
    free(hprompt);
    free(hlast);
    free(row_ids);
    armo_expansion_free(&xp);
    free(part);
    free(up);
    free(gate);
    free(att);
    free(v);
    free(k);
    free(q);
    free(delta);
    free(xn);
    free(x);
    return rc;
}

/* ---- the backend interface (backend.h) ---- */

static int cpu_score(armo_backend *b, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                     const int32_t *gating_pos, const int32_t *prefix_of, armo_result *out,
                     armo_err *e) {
    return score_impl((armo_cpu *)b->impl, ids, cu_seqlens, nseq, gating_pos, prefix_of,
                      b->hidden_out, out, e);
}

static void cpu_destroy(armo_backend *b) {
    armo_cpu_destroy((armo_cpu *)b->impl);
    free(b);
}

armo_backend *armo_cpu_backend_open(const armo_model *m, const armo_backend_opts *o,
                                    armo_err *e) {
    armo_backend *b = calloc(1, sizeof *b);
    if (!b) {
        armo_err_set(e, "out of memory");
        return NULL;
    }
    armo_cpu *c = armo_cpu_create(m, o ? o->threads : 0, e); /* <= 0: all cores */
    if (!c) {
        free(b);
        return NULL;
    }
    if (o && o->tp > 1 && armo_cpu_set_tp(c, o->tp, e)) {
        armo_cpu_destroy(c);
        free(b);
        return NULL;
    }
    const int threads = c->nthreads;
    b->impl = c;
    b->name = "cpu";
    if (c->tp.tp > 1)
        snprintf(b->device, sizeof b->device, "CPU (%d thread%s, tensor parallel %d)", threads,
                 threads == 1 ? "" : "s", c->tp.tp);
    else
        snprintf(b->device, sizeof b->device, "CPU (%d thread%s)", threads,
                 threads == 1 ? "" : "s");
    b->score = cpu_score;
    b->destroy = cpu_destroy;
    b->returns_hidden = 1;
    return b;
}

/* ---- the GEMM ceiling for armo bench ---- */

int armo_cpu_gemm_ceiling(int threads, int *n_out, int *in_out, int *out_out, double *tflops,
                          armo_err *e) {
    const int n = 2048, in = 1024, out = 1024;
    *n_out = n, *in_out = in, *out_out = out;
    *tflops = 0.0;
    if (threads <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? (int)ncpu : 1;
    }
    float *w = malloc((size_t)in * out * 4);
    float *x = malloc((size_t)n * in * 4), *y = malloc((size_t)n * out * 4);
    int rc = 0;
    if (w && x && y) {
        uint32_t s = 99; /* any data will do: this times the matmul */
        for (size_t i = 0; i < (size_t)in * out; i++) {
            s = s * 1664525u + 1013904223u;
            w[i] = armo_bf16_to_f32(armo_f32_to_bf16(((float)(s >> 8) / 8388608.0f - 1.0f) * 0.03f));
        }
        for (size_t i = 0; i < (size_t)n * in; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
        }
        cpu_gemm_blas_init();
        const cpu_gemm_op op = {w, y, out};
        rc = cpu_gemm(x, n, in, &op, 1, threads, e); /* warm-up */
        for (int r = 0; r < 3 && rc == 0; r++) {
            double t0 = armo_now();
            rc = cpu_gemm(x, n, in, &op, 1, threads, e);
            double t = armo_now() - t0;
            double tf = 2.0 * n * in * out / (t > 0 ? t : 1e-9) / 1e12;
            if (tf > *tflops) *tflops = tf;
        }
    } else {
        rc = armo_err_set(e, "GEMM ceiling: out of memory");
    }
    free(w);
    free(x);
    free(y);
    return rc;
}
