/* device_memory.c — the CUDA backend's device memory as arithmetic (see
 * device_memory.h). */
#include "host/engine/device_memory.h"

#include <stdio.h>

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

size_t armo_dev_weight_bytes(const armo_config *c) {
    const int64_t H = c->hidden_size, q = (int64_t)c->num_heads * c->head_dim,
                  kv = (int64_t)c->num_kv_heads * c->head_dim, I = c->intermediate_size;
    /* bf16: embedding, per layer attn_norm, fused QKV, o, mlp_norm, fused
     * gate|up, down; final norm */
    int64_t bf16 = (int64_t)c->vocab_size * H + H;
    bf16 += (int64_t)c->num_layers * (H + (q + 2 * kv) * H + H * q + H + 2 * I * H + H * I);
    /* fp32: the head, and the RoPE table */
    int64_t f32 = c->head_dim / 2;
    if (c->arch == ARMO_ARCH_ARMORM) {
        const int64_t K = c->num_objectives, G = c->gating_hidden_dim;
        const int nl = c->gating_n_hidden + 1;
        f32 += K * H + K * K; /* regression, transform */
        for (int l = 0; l < nl; l++) {
            const int64_t in = l == 0 ? H : G, out = l == nl - 1 ? K : G;
            f32 += out * in + out;
        }
    } else {
        f32 += (int64_t)c->num_labels * H;
    }
    return (size_t)(2 * bf16 + 4 * f32);
}

size_t armo_dev_activation_buffer(const armo_config *c, armo_batch_shape s, armo_act_buffer b,
                                  const char **name) {
    const int64_t H = c->hidden_size, q = (int64_t)c->num_heads * c->head_dim,
                  kv = (int64_t)c->num_kv_heads * c->head_dim, I = c->intermediate_size;
    const int64_t T = s.tokens, S = s.seqs, E = s.exp_rows, R = max64(T, 2 * S);
    const int armorm = c->arch == ARMO_ARCH_ARMORM;
    const int64_t K = armorm ? c->num_objectives : c->num_labels;
    const int64_t widest = c->gating_n_hidden >= 1 ? max64(c->gating_hidden_dim, K) : K;
    int64_t bytes = 0;
    const char *n = "?";
    switch (b) {
    case ARMO_ACT_X: n = "x", bytes = R * H * 2; break;
    case ARMO_ACT_XN: n = "xn", bytes = R * H * 2; break;
    case ARMO_ACT_QKV: n = "qkv", bytes = T * (q + 2 * kv) * 2; break;
    case ARMO_ACT_ATTN: n = "attn", bytes = R * q * 2; break;
    case ARMO_ACT_O: n = "o", bytes = R * max64(H, q) * 2; break;
    case ARMO_ACT_GU: n = "gate|up", bytes = R * 2 * I * 2; break;
    case ARMO_ACT_SWIGLU: n = "swiglu", bytes = R * I * 2; break;
    case ARMO_ACT_IDS: n = "ids", bytes = T * 4; break;
    case ARMO_ACT_POS: n = "positions", bytes = T * 4; break;
    case ARMO_ACT_CU: n = "cu_seqlens", bytes = (S + 1) * 4; break;
    case ARMO_ACT_ROWS: n = "head rows", bytes = 2 * S * 4; break;
    case ARMO_ACT_HEAD_IN: n = "head inputs", bytes = 2 * S * H * 4; break;
    case ARMO_ACT_HEAD_OUT: n = "head outputs", bytes = S * (3 * K + 1) * 4; break;
    case ARMO_ACT_HEAD_SCRATCH: n = "head scratch", bytes = armorm ? 2 * S * widest * 4 : 0; break;
    case ARMO_ACT_PREFIX_OF: n = "prefix_of", bytes = E > 0 ? S * 4 : 0; break;
    case ARMO_ACT_COUNT: break;
    }
    if (name) *name = n;
    return T > 0 ? (size_t)bytes : 0;
}

size_t armo_dev_activation_bytes(const armo_config *c, armo_batch_shape s) {
    size_t total = 0;
    for (int b = 0; b < ARMO_ACT_COUNT; b++)
        total += armo_dev_activation_buffer(c, s, (armo_act_buffer)b, NULL);
    return total;
}

armo_batch_shape armo_dev_budget_shape(int64_t max_tokens, int max_seqs, int share_prefix) {
    const int64_t n = max_tokens > 0 ? max_tokens : 0;
    const int64_t S = max_seqs > 0 ? max_seqs : ARMO_DEFAULT_MAX_SEQS;
    return (armo_batch_shape){.tokens = n, .seqs = n < S ? n : S, .exp_rows = share_prefix ? 2 * n : 0};
}

void armo_dev_need_for(const armo_config *c, int64_t max_tokens, int max_seqs, int share_prefix,
                       armo_dev_need *out) {
    out->weights = armo_dev_weight_bytes(c);
    out->workspace = ARMO_DEV_WORKSPACE_BYTES;
    out->activations =
        armo_dev_activation_bytes(c, armo_dev_budget_shape(max_tokens, max_seqs, share_prefix));
    out->total = out->weights + out->workspace + out->activations;
    /* the rates: differences between large batches (every term is linear
     * in T, S and E once T >= 2 S) */
    const int64_t big = (int64_t)1 << 20;
    const armo_batch_shape t1 = {big, 1, 0}, t2 = {2 * big, 1, 0};
    const armo_batch_shape e1 = {big, 1, 2 * big}, e2 = {2 * big, 1, 4 * big};
    const armo_batch_shape s2 = {big, 2, 0};
    const double plain = ((double)armo_dev_activation_bytes(c, t2) -
                          (double)armo_dev_activation_bytes(c, t1)) / (double)big;
    const double shared = ((double)armo_dev_activation_bytes(c, e2) -
                           (double)armo_dev_activation_bytes(c, e1)) / (double)big;
    out->per_token = share_prefix ? shared : plain;
    out->per_token_shared = shared - plain;
    out->per_seq = (double)armo_dev_activation_bytes(c, s2) - (double)armo_dev_activation_bytes(c, t1);
}

int64_t armo_dev_max_tokens(const armo_config *c, size_t avail, int max_seqs, int share_prefix,
                            int64_t limit) {
    int64_t lo = 0, hi = limit; /* activations(lo) fit; find the last n that does */
    if (armo_dev_activation_bytes(c, armo_dev_budget_shape(hi, max_seqs, share_prefix)) <= avail)
        return hi;
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (armo_dev_activation_bytes(c, armo_dev_budget_shape(mid, max_seqs, share_prefix)) <=
            avail)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void armo_dev_fit(const armo_config *c, int64_t max_tokens, int max_seqs, int share_prefix,
                  size_t free_bytes, size_t total_bytes, armo_fit *out) {
    out->max_tokens = max_tokens;
    out->free_bytes = free_bytes;
    out->total_bytes = total_bytes;
    armo_dev_need_for(c, max_tokens, max_seqs, share_prefix, &out->need);
    const int64_t min_tokens =
        max_tokens < ARMO_DEV_MIN_BATCH_TOKENS ? max_tokens : ARMO_DEV_MIN_BATCH_TOKENS;
    armo_dev_need_for(c, min_tokens, max_seqs, share_prefix, &out->minimal);
    const size_t fixed = out->need.weights + out->need.workspace;
    const size_t avail = free_bytes > fixed ? free_bytes - fixed : 0;
    int64_t fit = armo_dev_max_tokens(c, avail, max_seqs, share_prefix, (int64_t)1 << 31);
    if (fit >= 256) fit -= fit % 256; /* a round figure to suggest */
    out->fit_tokens = fit;
    out->kind = out->need.total <= free_bytes      ? ARMO_FIT_OK
                : out->minimal.total <= free_bytes ? ARMO_FIT_LOWER
                                                   : ARMO_FIT_NONE;
}

const char *armo_dev_human(double bytes, char *buf, size_t len) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

const char *armo_dev_fit_message(const armo_fit *f, char *buf, size_t len) {
    char w[32], ws[32], a[32], t[32], fr[32], tot[32];
    const armo_dev_need *n = f->kind == ARMO_FIT_NONE ? &f->minimal : &f->need;
    const int64_t tokens = f->kind == ARMO_FIT_NONE && f->max_tokens > ARMO_DEV_MIN_BATCH_TOKENS
                               ? ARMO_DEV_MIN_BATCH_TOKENS
                               : f->max_tokens;
    int k = snprintf(buf, len,
                     "%s %lld-token batch needs %s on the GPU (weights %s, workspace %s, "
                     "activations %s); the GPU has %s free of %s",
                     f->kind == ARMO_FIT_NONE ? "even a minimal" : "a", (long long)tokens,
                     armo_dev_human((double)n->total, t, sizeof t),
                     armo_dev_human((double)n->weights, w, sizeof w),
                     armo_dev_human((double)n->workspace, ws, sizeof ws),
                     armo_dev_human((double)n->activations, a, sizeof a),
                     armo_dev_human((double)f->free_bytes, fr, sizeof fr),
                     armo_dev_human((double)f->total_bytes, tot, sizeof tot));
    if (k < 0 || (size_t)k >= len) return buf;
    if (f->fit_tokens > 0)
        snprintf(buf + k, len - (size_t)k, "; --max-batch-tokens %lld would fit%s",
                 (long long)f->fit_tokens,
                 f->kind == ARMO_FIT_NONE ? ", below the smallest batch worth running" : "");
    else
        snprintf(buf + k, len - (size_t)k,
                 "; no --max-batch-tokens fits: the weights and workspace alone need %s",
                 armo_dev_human((double)(n->weights + n->workspace), t, sizeof t));
    return buf;
}
