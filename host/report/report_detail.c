/* report_detail.c — the second pass of `armo report`: the records the page
 * shows in full (the first --max-detail records, and every record a list or
 * the heatmap names), read again from the scores file and the input, as
 * JSON the page embeds: id, rewards, gate, coefficients, a pair's objective
 * terms, and the conversation's texts (each cut at a length cap). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/report/report_data.h"

#define TEXT_CAP 4000              /* bytes of one message or response shown */
#define TEXT_BUDGET (8u << 20)     /* bytes of text in the whole page */

/* s cut to at most TEXT_CAP bytes on a UTF-8 boundary, with a note; once
 * the page holds TEXT_BUDGET bytes of text, a note only. */
static json_t *capped_text(armo_report *r, const char *s) {
    size_t n = strlen(s);
    if (r->text_bytes >= TEXT_BUDGET) {
        char note[96];
        snprintf(note, sizeof note, "[%zu bytes not embedded: the page's 8 MB of text are used]",
                 n);
        r->text_cut++;
        return json_string(note);
    }
    r->text_bytes += n < TEXT_CAP ? n : TEXT_CAP;
    if (n <= TEXT_CAP) return json_string(s);
    size_t k = TEXT_CAP;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    char *b = malloc(k + 64);
    if (!b) return NULL;
    memcpy(b, s, k);
    snprintf(b + k, 64, " \xE2\x80\xA6 [%zu more bytes not shown]", n - k);
    r->text_cut++;
    json_t *j = json_string(b);
    free(b);
    return j;
}

static json_t *vec_of(const armo_report *r, json_t *o, const char *field) {
    json_t *obj = json_object_get(o, field), *a = json_array();
    for (int j = 0; j < r->n_obj; j++)
        json_array_append_new(a, json_real(json_number_value(json_object_get(obj,
                                                                             r->obj_names[j]))));
    return a;
}

static json_t *response_json(const armo_report *r, json_t *o, const char *label) {
    json_t *x = json_pack("{s:s,s:f,s:O?}", "label", label,
                          "score", json_number_value(json_object_get(o, "score")), "tokens",
                          json_object_get(o, "tokens"));
    if (x && r->n_obj && json_is_object(json_object_get(o, "rewards"))) {
        json_object_set_new(x, "r", vec_of(r, o, "rewards"));
        json_object_set_new(x, "g", vec_of(r, o, "gating"));
        json_object_set_new(x, "c", vec_of(r, o, "coefficients"));
    }
    return x;
}

/* A pair's objective terms c_ch·r_ch − c_rej·r_rej (they sum to the margin). */
static json_t *pair_terms(const armo_report *r, json_t *ch, json_t *rj) {
    json_t *a = json_array();
    json_t *rc = json_object_get(ch, "rewards"), *cc = json_object_get(ch, "coefficients");
    json_t *rr = json_object_get(rj, "rewards"), *cr = json_object_get(rj, "coefficients");
    for (int j = 0; j < r->n_obj; j++) {
        const char *n = r->obj_names[j];
        double t = json_number_value(json_object_get(cc, n)) *
                       json_number_value(json_object_get(rc, n)) -
                   json_number_value(json_object_get(cr, n)) *
                       json_number_value(json_object_get(rr, n));
        json_array_append_new(a, json_real(t));
    }
    return a;
}

static json_t *responses_of(const armo_report *r, json_t *o, json_t *d) {
    json_t *a = json_array();
    json_t *ch = json_object_get(o, "chosen"), *rj = json_object_get(o, "rejected");
    json_t *arr = json_object_get(o, "responses");
    if (json_is_object(ch) && json_is_object(rj)) {
        json_object_set_new(d, "kind", json_string("pair"));
        json_array_append_new(a, response_json(r, ch, "chosen"));
        json_array_append_new(a, response_json(r, rj, "rejected"));
        json_object_set(d, "margin", json_object_get(o, "margin"));
        if (r->n_obj) json_object_set_new(d, "terms", pair_terms(r, ch, rj));
    } else if (json_is_array(arr)) {
        json_object_set_new(d, "kind", json_string("bon"));
        char label[32];
        for (size_t i = 0; i < json_array_size(arr); i++) {
            snprintf(label, sizeof label, "responses[%zu]", i);
            json_array_append_new(a, response_json(r, json_array_get(arr, i), label));
        }
        json_object_set(d, "best", json_object_get(o, "best"));
    } else {
        json_object_set_new(d, "kind", json_string("single"));
        json_array_append_new(a, response_json(r, o, "response"));
    }
    return a;
}

/* The conversation of an input record: [[role, text]...], then the texts
 * of its responses in the order of "resp". */
static void conversation_of(armo_report *r, json_t *in, json_t *d) {
    json_t *conv = json_array(), *texts = json_array();
    json_t *msgs = json_object_get(in, "messages"), *prompt = json_object_get(in, "prompt");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *c = json_string_value(json_object_get(m, "content"));
        json_array_append_new(conv, json_pack("[s,o]", role ? role : "?", capped_text(r, c ? c : "")));
    }
    if (json_is_string(prompt))
        json_array_append_new(conv, json_pack("[s,o]", "user",
                                              capped_text(r, json_string_value(prompt))));
    json_t *ids = json_object_get(in, "input_ids");
    if (json_is_array(ids)) {
        char note[96];
        snprintf(note, sizeof note, "(pre-tokenized: %zu token ids)", json_array_size(ids));
        json_array_append_new(conv, json_pack("[s,s]", "input_ids", note));
    }
    const char *keys[] = {"response", "chosen", "rejected"};
    for (int k = 0; k < 3; k++) {
        const char *t = json_string_value(json_object_get(in, keys[k]));
        if (t) json_array_append_new(texts, capped_text(r, t));
    }
    json_t *rs = json_object_get(in, "responses");
    json_array_foreach(rs, i, m) {
        const char *t = json_string_value(m);
        json_array_append_new(texts, capped_text(r, t ? t : ""));
    }
    json_object_set_new(d, "conv", conv);
    json_object_set_new(d, "texts", texts);
}

static json_t *id_text(json_t *id) {
    if (!id) return json_null();
    if (json_is_string(id)) return json_incref(id);
    char *s = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
    json_t *j = json_string(s ? s : "?");
    free(s);
    return j;
}

static json_t *detail_of(armo_report *r, int64_t idx, json_t *o, json_t *in) {
    json_t *d = json_object();
    json_object_set_new(d, "i", json_integer(idx));
    json_object_set_new(d, "line", json_integer(r->recs[idx].line));
    json_object_set_new(d, "id", id_text(json_object_get(o, "id")));
    json_t *err = json_object_get(o, "error");
    if (err) {
        json_object_set_new(d, "kind", json_string("error"));
        json_object_set(d, "error", err);
    } else {
        json_object_set_new(d, "resp", responses_of(r, o, d));
    }
    if (in) conversation_of(r, in, d);
    return d;
}

/* The gate of the heatmap's row h (its record's first response). */
static json_t *gate_of(const armo_report *r, json_t *o) {
    json_t *x = o;
    if (json_object_get(o, "chosen")) x = json_object_get(o, "chosen");
    else if (json_object_get(o, "responses")) x = json_array_get(json_object_get(o, "responses"), 0);
    return vec_of(r, x, "gating");
}

/* The next line of f up to line number `want` (counted in *at); 1 when
 * found, 0 at the end of the file. */
static int line_at(FILE *f, int64_t want, int64_t *at, char **buf, size_t *cap, ssize_t *len) {
    while (*at < want) {
        if ((*len = getline(buf, cap, f)) < 0) return 0;
        (*at)++;
    }
    return 1;
}

/* Reads the selected lines of the scores (and input) again, by the line
 * numbers the first pass kept; they become details. */
static int read_selected(armo_report *r, const unsigned char *sel, const int *hm_row, FILE *sf,
                         FILE *inf, armo_err *e) {
    char *buf = NULL, *ibuf = NULL;
    size_t cap = 0, icap = 0;
    ssize_t len = 0, ilen = 0;
    int64_t at = 0, in_at = 0;
    int rc = 0;
    for (int64_t idx = 0; rc == 0 && idx < r->n_recs; idx++) {
        if (!sel[idx]) continue;
        const armo_report_rec *x = &r->recs[idx];
        json_t *o = line_at(sf, x->line, &at, &buf, &cap, &len)
                        ? json_loadb(buf, (size_t)len, 0, NULL) : NULL;
        if (!o) {
            rc = armo_err_set(e, "%s: line %lld changed while the report was made",
                              r->scores_path, (long long)x->line);
            break;
        }
        json_t *in = NULL;
        if (inf && x->in_line && line_at(inf, x->in_line, &in_at, &ibuf, &icap, &ilen))
            in = json_loadb(ibuf, (size_t)ilen, 0, NULL);
        json_t *d = detail_of(r, idx, o, in);
        if (!d || json_array_append_new(r->details, d)) rc = armo_err_set(e, "out of memory");
        if (hm_row[idx] >= 0 && r->n_obj)
            json_array_set_new(r->heatmap_gates, (size_t)hm_row[idx], gate_of(r, o));
        json_decref(in);
        json_decref(o);
    }
    free(buf);
    free(ibuf);
    return rc;
}

int armo_report_details(armo_report *r, const armo_report_opts *o, armo_err *e) {
    r->details = json_array();
    r->heatmap_gates = json_array();
    unsigned char *sel = calloc((size_t)(r->n_recs ? r->n_recs : 1), 1);
    int *hm_row = malloc((size_t)(r->n_recs ? r->n_recs : 1) * sizeof *hm_row);
    if (!r->details || !r->heatmap_gates || !sel || !hm_row) {
        free(sel);
        free(hm_row);
        return armo_err_set(e, "out of memory");
    }
    for (int64_t i = 0; i < r->n_recs; i++) {
        sel[i] = i < o->max_detail;
        hm_row[i] = -1;
    }
    for (int i = 0; i < r->n_smallest; i++) sel[r->smallest[i]] = 1;
    for (int i = 0; i < r->n_highest; i++) sel[r->highest[i]] = 1;
    for (int i = 0; i < r->n_lowest; i++) sel[r->lowest[i]] = 1;
    for (int i = 0; i < r->n_heatmap; i++) {
        sel[r->heatmap[i]] = 1;
        hm_row[r->heatmap[i]] = i;
        json_array_append_new(r->heatmap_gates, json_null());
    }
    int64_t chosen = 0;
    for (int64_t i = 0; i < r->n_recs; i++) chosen += sel[i];
    r->detail_cut = r->n_recs - chosen;
    int rc = 0;
    FILE *sf = fopen(r->scores_path, "rb"), *inf = NULL;
    if (!sf) rc = armo_err_set(e, "cannot open %s: %s", r->scores_path, strerror(errno));
    else if (r->input_path && !(inf = fopen(r->input_path, "rb")))
        rc = armo_err_set(e, "cannot open %s: %s", r->input_path, strerror(errno));
    if (rc == 0) rc = read_selected(r, sel, hm_row, sf, inf, e);
    if (sf) fclose(sf);
    if (inf) fclose(inf);
    free(sel);
    free(hm_row);
    return rc;
}
