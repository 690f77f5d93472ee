/* model.c — binds a checkpoint directory to armo_model (see model.h).
 *
 * Every tensor the architecture needs is looked up by its Hugging Face name
 * and checked against the shape the config implies, so that a checkpoint
 * that disagrees with its config fails here, at load, with both shapes in the
 * message — not later as garbage scores. */
#include "weights/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Looks up NAME, requires a float dtype and shape [rows] (cols == 0) or
 * [rows, cols], fills *w. */
static int bind(armo_model *m, armo_weight *w, const char *name, int64_t rows, int64_t cols,
                armo_err *e) {
    const st_tensor *t = st_find(&m->ck, name);
    if (!t)
        return armo_err_set(e,
                            "%s: tensor '%s' is missing from the checkpoint (architecture %s "
                            "needs it)",
                            m->dir, name, m->cfg.arch_name);
    if (!armo_dtype_is_float_compute(t->dtype))
        return armo_err_set(e, "%s: tensor '%s' has dtype %s; armo computes with BF16, F16 or F32",
                            m->dir, name, armo_dtype_name(t->dtype));
    int want_ndim = cols ? 2 : 1;
    int ok = t->ndim == want_ndim && t->shape[0] == rows && (!cols || t->shape[1] == cols);
    if (!ok) {
        char have[128];
        st_shape_str(t, have, sizeof have);
        char want[64];
        if (cols)
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
        else
            snprintf(want, sizeof want, "[%lld]", (long long)rows);
        return armo_err_set(e,
                            "%s: tensor '%s' has shape %s but config.json implies %s "
                            "(hidden_size %d, heads %d/%d, head_dim %d, intermediate %d, vocab "
                            "%d)",
                            m->dir, name, have, want, m->cfg.hidden_size, m->cfg.num_heads,
                            m->cfg.num_kv_heads, m->cfg.head_dim, m->cfg.intermediate_size,
                            m->cfg.vocab_size);
    }
    w->name = t->name;
    w->dtype = t->dtype;
    w->data = t->data;
    w->rows = rows;
    w->cols = cols ? cols : 1;
    return 0;
}

static int bind_layer(armo_model *m, int i, armo_err *e) {
    const armo_config *c = &m->cfg;
    armo_layer_weights *L = &m->layers[i];
    int64_t H = c->hidden_size, q = (int64_t)c->num_heads * c->head_dim,
            kv = (int64_t)c->num_kv_heads * c->head_dim, I = c->intermediate_size;
    char n[160];
#define BIND(field, suffix, r, cl)                                         \
    snprintf(n, sizeof n, "%slayers.%d.%s", m->prefix, i, suffix);          \
    if (bind(m, &L->field, n, r, cl, e)) return -1;
    BIND(attn_norm, "input_layernorm.weight", H, 0);
    BIND(wq, "self_attn.q_proj.weight", q, H);
    BIND(wk, "self_attn.k_proj.weight", kv, H);
    BIND(wv, "self_attn.v_proj.weight", kv, H);
    BIND(wo, "self_attn.o_proj.weight", H, q);
    BIND(mlp_norm, "post_attention_layernorm.weight", H, 0);
    BIND(wgate, "mlp.gate_proj.weight", I, H);
    BIND(wup, "mlp.up_proj.weight", I, H);
    BIND(wdown, "mlp.down_proj.weight", H, I);
#undef BIND
    return 0;
}

static int bind_armorm_head(armo_model *m, armo_err *e) {
    const armo_config *c = &m->cfg;
    int64_t H = c->hidden_size, K = c->num_objectives, G = c->gating_hidden_dim;
    if (c->gating_n_hidden + 1 > ARMO_MAX_GATING_LAYERS)
        return armo_err_set(e, "%s: gating_n_hidden %d exceeds armo's limit of %d", m->dir,
                            c->gating_n_hidden, ARMO_MAX_GATING_LAYERS - 1);
    if (bind(m, &m->regression, "regression_layer.weight", K, H, e)) return -1;
    m->gating_nlayers = c->gating_n_hidden + 1;
    char n[96];
    for (int l = 0; l < m->gating_nlayers; l++) {
        int64_t in = l == 0 ? H : G;
        int64_t out = l == m->gating_nlayers - 1 ? K : G;
        snprintf(n, sizeof n, "gating.layers.%d.weight", l);
        if (bind(m, &m->gating_w[l], n, out, in, e)) return -1;
        snprintf(n, sizeof n, "gating.layers.%d.bias", l);
        if (bind(m, &m->gating_b[l], n, out, 0, e)) return -1;
    }
    if (bind(m, &m->logit_scale, "gating.logit_scale", 1, 0, e)) return -1;
    return bind(m, &m->transform, "reward_transform_matrix", K, K, e);
}

int armo_model_open(const char *dir, armo_model *m, armo_err *e) {
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (armo_config_load(path, &m->cfg, e)) return -1;
    const armo_config *c = &m->cfg;
    if (c->pad_token_id >= 0 && c->pad_token_id >= c->vocab_size)
        return armo_err_set(e, "%s: pad_token_id %d is outside the vocabulary (vocab_size %d)",
                            path, c->pad_token_id, c->vocab_size);
    if (st_open_dir(&m->ck, dir, e)) goto fail;
    m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
    if (!m->layers) {
        armo_err_set(e, "%s: out of memory", dir);
        goto fail;
    }
    /* a LlamaModel saved on its own names its tensors without "model." */
    snprintf(m->prefix, sizeof m->prefix, "%s",
             c->arch == ARMO_ARCH_BACKBONE && !st_find(&m->ck, "model.embed_tokens.weight") &&
                     st_find(&m->ck, "embed_tokens.weight")
                 ? ""
                 : "model.");
    char name[64];
    snprintf(name, sizeof name, "%sembed_tokens.weight", m->prefix);
    if (bind(m, &m->embed, name, c->vocab_size, c->hidden_size, e)) goto fail;
    for (int i = 0; i < c->num_layers; i++)
        if (bind_layer(m, i, e)) goto fail;
    snprintf(name, sizeof name, "%snorm.weight", m->prefix);
    if (bind(m, &m->final_norm, name, c->hidden_size, 0, e)) goto fail;
    if (c->arch == ARMO_ARCH_ARMORM) {
        if (bind_armorm_head(m, e)) goto fail;
    } else if (c->arch == ARMO_ARCH_SEQCLS) {
        if (bind(m, &m->score, "score.weight", c->num_labels, c->hidden_size, e)) goto fail;
    }
    return 0;
fail:
    armo_model_close(m);
    return -1;
}

void armo_model_close(armo_model *m) {
    if (!m) return;
    st_close(&m->ck);
    free(m->layers);
    m->layers = NULL;
}

static int64_t numel(const armo_weight *w) { return w->data ? w->rows * w->cols : 0; }

int64_t armo_model_param_count(const armo_model *m) {
    int64_t n = numel(&m->embed) + numel(&m->final_norm);
    for (int i = 0; m->layers && i < m->cfg.num_layers; i++) {
        const armo_layer_weights *L = &m->layers[i];
        n += numel(&L->attn_norm) + numel(&L->wq) + numel(&L->wk) + numel(&L->wv) +
             numel(&L->wo) + numel(&L->mlp_norm) + numel(&L->wgate) + numel(&L->wup) +
             numel(&L->wdown);
    }
    n += numel(&m->regression) + numel(&m->logit_scale) + numel(&m->transform) +
         numel(&m->score);
    for (int l = 0; l < m->gating_nlayers; l++) n += numel(&m->gating_w[l]) + numel(&m->gating_b[l]);
    return n;
}

/* One head tensor's shape against what the head computation indexes by. */
static int head_shape(const armo_weight *w, int64_t rows, int64_t cols, armo_err *e) {
    if (!w->data || w->rows != rows || w->cols != cols)
        return armo_err_set(e, "tensor %s is [%lld, %lld], the head needs [%lld, %lld]",
                            w->name ? w->name : "?", (long long)w->rows, (long long)w->cols,
                            (long long)rows, (long long)cols);
    return 0;
}

int armo_model_head_params(const armo_model *m, armo_head_params *h, armo_err *e) {
    const armo_config *c = &m->cfg;
    memset(h, 0, sizeof *h);
    if (c->arch != ARMO_ARCH_ARMORM)
        return armo_err_set(e, "%s is not an ArmoRM checkpoint: it has no gated head",
                            c->arch_name);
    const int H = c->hidden_size, K = c->num_objectives;
    if (K <= 0 || K > ARMO_MAX_OBJECTIVES)
        return armo_err_set(e, "num_objectives %d is outside 1..%d", K, ARMO_MAX_OBJECTIVES);
    if (m->gating_nlayers < 1 || m->gating_nlayers > ARMO_MAX_GATING_LAYERS)
        return armo_err_set(e, "gating network has %d layers; 1..%d supported", m->gating_nlayers,
                            ARMO_MAX_GATING_LAYERS);
    h->hidden = H;
    h->k = K;
    h->nlayers = m->gating_nlayers;
    h->dims[0] = H;
    for (int l = 0; l < h->nlayers; l++) {
        const armo_weight *w = &m->gating_w[l];
        h->dims[l + 1] = (int)w->rows;
        if (h->dims[l + 1] <= 0)
            return armo_err_set(e, "gating layer %s has no outputs", w->name ? w->name : "?");
        if (head_shape(w, h->dims[l + 1], h->dims[l], e) ||
            head_shape(&m->gating_b[l], h->dims[l + 1], 1, e))
            return -1;
    }
    if (h->dims[h->nlayers] != K)
        return armo_err_set(e, "last gating layer %s has %d outputs, num_objectives is %d",
                            m->gating_w[h->nlayers - 1].name ? m->gating_w[h->nlayers - 1].name
                                                             : "?",
                            h->dims[h->nlayers], K);
    if (head_shape(&m->regression, K, H, e) || head_shape(&m->transform, K, K, e) ||
        head_shape(&m->logit_scale, 1, 1, e))
        return -1;
    if (!armo_dtype_is_float_compute(m->logit_scale.dtype))
        return armo_err_set(e, "tensor %s has dtype %s; BF16, F16 or F32 expected",
                            m->logit_scale.name ? m->logit_scale.name : "?",
                            armo_dtype_name(m->logit_scale.dtype));
    h->logit_scale = armo_load_f32(m->logit_scale.data, m->logit_scale.dtype, 0);
    h->temperature = (float)c->gating_temperature;
    if (!(h->temperature > 0.0f))
        return armo_err_set(e, "gating_temperature %g must be positive", c->gating_temperature);
    return 0;
}
