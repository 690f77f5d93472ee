/* score_output.c — result records as JSON (see score_output.h). */
#include "host/scoring/score_output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *armo_objective_label(const armo_config *cfg, int i, int k, char *buf, size_t len) {
    if (cfg && cfg->n_objective_names == k && i >= 0 && i < k) return cfg->objective_names[i];
    if (k == ARMO_NUM_NAMED_OBJECTIVES && armo_objective_name(i)) return armo_objective_name(i);
    snprintf(buf, len, "objective_%d", i);
    return buf;
}

static json_t *named(const armo_config *cfg, const float *v, int k) {
    json_t *o = json_object();
    char buf[32];
    for (int i = 0; i < k; i++)
        json_object_set_new(o, armo_objective_label(cfg, i, k, buf, sizeof buf), json_real(v[i]));
    return o;
}

json_t *armo_result_to_json(const armo_config *cfg, const armo_result *r) {
    json_t *o = json_object();
    json_object_set_new(o, "score", json_real(r->score));
    if (cfg->arch == ARMO_ARCH_ARMORM) {
        json_object_set_new(o, "rewards", named(cfg, r->rewards, r->n_objectives));
        json_object_set_new(o, "gating", named(cfg, r->gating, r->n_objectives));
        json_object_set_new(o, "coefficients", named(cfg, r->coefficients, r->n_objectives));
    } else if (r->n_labels > 1) {
        json_t *a = json_array();
        for (int i = 0; i < r->n_labels; i++) json_array_append_new(a, json_real(r->labels[i]));
        json_object_set_new(o, "scores", a);
    }
    json_object_set_new(o, "tokens", json_integer(r->n_tokens));
    return o;
}

typedef struct {
    int idx;
    double key;
} ranked;

static int by_key_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? 1 : -1;
    return x->idx - y->idx; /* stable: earlier first on ties */
}

/* The objectives whose coefficient-weighted reward difference moved the
 * margin most: margin = Σ_j (c_ch[j]·r_ch[j] − c_rej[j]·r_rej[j]) exactly, and
 * each term is listed with its sign, largest |term| first. */
static json_t *explain_pair(const armo_config *cfg, const armo_result *ch,
                            const armo_result *rej, int top) {
    int k = ch->n_objectives;
    ranked terms[ARMO_MAX_OBJECTIVES];
    double contrib[ARMO_MAX_OBJECTIVES];
    for (int j = 0; j < k; j++) {
        contrib[j] = (double)ch->coefficients[j] * ch->rewards[j] -
                     (double)rej->coefficients[j] * rej->rewards[j];
        terms[j].idx = j;
        terms[j].key = fabs(contrib[j]);
    }
    qsort(terms, (size_t)k, sizeof terms[0], by_key_desc);
    json_t *a = json_array();
    char buf[32];
    for (int t = 0; t < top && t < k; t++) {
        int j = terms[t].idx;
        json_t *o = json_object();
        json_object_set_new(o, "objective", json_string(armo_objective_label(cfg, j, k, buf, sizeof buf)));
        json_object_set_new(o, "contribution", json_real(contrib[j]));
        json_object_set_new(o, "chosen_reward", json_real(ch->rewards[j]));
        json_object_set_new(o, "rejected_reward", json_real(rej->rewards[j]));
        json_array_append_new(a, o);
    }
    return a;
}

/* ---- non-finite results --------------------------------------------------------- */

static const char *value_kind(float v) {
    return v != v ? "NaN" : v < 0 ? "-Inf" : "+Inf";
}

int armo_result_nonfinite_message(const armo_config *cfg, const armo_result *r, char *msg,
                                  size_t len) {
    armo_result c = *r;
    if (c.nonfinite == ARMO_NF_NONE) /* a result no backend flagged: check its outputs */
        armo_result_check_finite(&c, NULL, NULL, 0);
    if (c.nonfinite == ARMO_NF_NONE) return 0;
    const int i = c.nonfinite_index;
    const char *v = value_kind(c.nonfinite_value);
    char buf[32];
    const char *obj = armo_objective_label(cfg, i, c.n_objectives, buf, sizeof buf);
    switch (c.nonfinite) {
    case ARMO_NF_HIDDEN_LAST:
    case ARMO_NF_HIDDEN_GATING:
        snprintf(msg, len,
                 "non-finite backbone hidden state at the %s token (position %d), the head's "
                 "input: dimension %d is %s",
                 c.nonfinite == ARMO_NF_HIDDEN_LAST ? "last" : "gating",
                 c.nonfinite == ARMO_NF_HIDDEN_LAST ? c.last_pos : c.gating_pos, i, v);
        break;
    case ARMO_NF_REWARD: snprintf(msg, len, "non-finite reward '%s' is %s", obj, v); break;
    case ARMO_NF_GATING: snprintf(msg, len, "non-finite gating weight '%s' is %s", obj, v); break;
    case ARMO_NF_COEFFICIENT:
        snprintf(msg, len, "non-finite coefficient '%s' is %s", obj, v);
        break;
    case ARMO_NF_SCORE: snprintf(msg, len, "non-finite score is %s", v); break;
    case ARMO_NF_LABEL:
        if (cfg->arch == ARMO_ARCH_SEQCLS && c.n_labels == 1)
            snprintf(msg, len, "non-finite score is %s", v);
        else
            snprintf(msg, len, "non-finite score of label %d is %s", i, v);
        break;
    default: snprintf(msg, len, "non-finite value (%s)", v); break;
    }
    return 1;
}

int armo_record_nonfinite(const armo_config *cfg, armo_out_kind kind, const armo_result *res,
                          int nres, char *msg, size_t len) {
    int bad = 0, shown = 0;
    size_t off = 0;
    msg[0] = 0;
    for (int s = 0; s < nres; s++) {
        char one[400], which[48] = "";
        if (!armo_result_nonfinite_message(cfg, &res[s], one, sizeof one)) continue;
        bad++;
        if (shown == 3) continue; /* the first three, then a count */
        shown++;
        if (kind == ARMO_OUT_PAIR) snprintf(which, sizeof which, "%s: ", s ? "rejected" : "chosen");
        if (kind == ARMO_OUT_BEST_OF_N) snprintf(which, sizeof which, "responses[%d]: ", s);
        int n = snprintf(msg + off, len - off, "%s%s%s", shown > 1 ? "; " : "", which, one);
        if (n > 0) off += (size_t)n < len - off ? (size_t)n : len - off - 1;
    }
    if (!bad) return 0;
    if (bad > shown)
        snprintf(msg + off, len - off, "; and %d more", bad - shown);
    off = strlen(msg);
    if (kind == ARMO_OUT_PAIR)
        snprintf(msg + off, len - off, " (no preference between the two)");
    else if (kind == ARMO_OUT_BEST_OF_N)
        snprintf(msg + off, len - off, " (%d of %d responses non-finite; no ranking)", bad, nres);
    off = strlen(msg);
    snprintf(msg + off, len - off,
             " (`armo inspect --check-weights` scans the checkpoint for NaN/Inf weights)");
    return 1;
}

json_t *armo_record_to_json(const armo_config *cfg, json_t *id, armo_out_kind kind,
                            const armo_result *res, int nres, int explain) {
    char nf[1024];
    if (armo_record_nonfinite(cfg, kind, res, nres, nf, sizeof nf))
        return armo_error_to_json(id, nf);
    json_t *o = json_object(); /* "id" first, then the rest in a fixed order */
    if (id) json_object_set(o, "id", id);
    if (kind == ARMO_OUT_SINGLE || nres < 1) {
        json_t *r = armo_result_to_json(cfg, &res[0]);
        json_object_update(o, r);
        json_decref(r);
        return o;
    }
    if (kind == ARMO_OUT_PAIR) {
        json_object_set_new(o, "chosen", armo_result_to_json(cfg, &res[0]));
        json_object_set_new(o, "rejected", armo_result_to_json(cfg, &res[1]));
        double margin = (double)res[0].score - res[1].score;
        json_object_set_new(o, "margin", json_real(margin));
        json_object_set_new(o, "preferred", json_string(margin >= 0 ? "chosen" : "rejected"));
        if (cfg->arch == ARMO_ARCH_ARMORM && explain > 0)
            json_object_set_new(o, "explanation", explain_pair(cfg, &res[0], &res[1], explain));
        return o;
    }
    json_t *arr = json_array();
    ranked *rk = malloc((size_t)nres * sizeof *rk);
    for (int i = 0; i < nres; i++) {
        json_array_append_new(arr, armo_result_to_json(cfg, &res[i]));
        if (rk) {
            rk[i].idx = i;
            rk[i].key = res[i].score;
        }
    }
    json_object_set_new(o, "responses", arr);
    if (rk) {
        qsort(rk, (size_t)nres, sizeof *rk, by_key_desc);
        json_t *ranking = json_array();
        for (int i = 0; i < nres; i++) json_array_append_new(ranking, json_integer(rk[i].idx));
        json_object_set_new(o, "ranking", ranking);
        json_object_set_new(o, "best", json_integer(rk[0].idx));
        free(rk);
    }
    return o;
}

json_t *armo_error_to_json(json_t *id, const char *msg) {
    json_t *o = json_object();
    if (id) json_object_set(o, "id", id);
    json_t *m = json_string(msg);
    if (!m) m = json_string("error message was not valid UTF-8");
    json_object_set_new(o, "error", m);
    return o;
}

char *armo_json_line(json_t *obj) {
    return json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
}
