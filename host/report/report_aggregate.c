/* report_aggregate.c — the first pass of `armo report`: every line of the
 * scores file (and, in step, of the records it scored) read once, kept as
 * the few numbers the aggregates need, then reduced to report_data.h's
 * histograms, means, rates and selections.  The second pass
 * (report_detail.c) reads the selected records in full. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/report/report_data.h"
#include "host/report/report_jscan.h"
#include "host/report/rewardbench.h"

void armo_report_opts_default(armo_report_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_detail = 500;
    o->heatmap_rows = 48;
    o->smallest = 20;
    o->extremes = 10;
}

/* growable arrays of the first pass */
typedef struct {
    double *v;
    int64_t n, cap;
} dvec;

static int dvec_push(dvec *d, double x) {
    if (d->n == d->cap) {
        int64_t cap = d->cap ? d->cap * 2 : 1024;
        double *v = realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = x;
    return 0;
}

typedef struct {
    char *key;
    int64_t line;
    int preferred; /* groups: margin > 0 */
} keyed;

typedef struct {
    keyed *v;
    int64_t n, cap;
} kvec;

static int kvec_push(kvec *k, const char *key, int64_t line, int preferred) {
    if (k->n == k->cap) {
        int64_t cap = k->cap ? k->cap * 2 : 256;
        keyed *v = realloc(k->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        k->v = v;
        k->cap = cap;
    }
    char *s = strdup(key);
    if (!s) return -1;
    k->v[k->n++] = (keyed){s, line, preferred};
    return 0;
}

static void kvec_free(kvec *k) {
    for (int64_t i = 0; i < k->n; i++) free(k->v[i].key);
    free(k->v);
}

typedef struct {
    armo_report *r;
    const armo_report_opts *o;
    int64_t line;
    dvec scores, margins, spreads;
    dvec rewards;  /* response-major: n_obj values per scored response */
    kvec errs, groups;
    int64_t rec_cap;
    double gate_sum[ARMO_REPORT_MAX_OBJ], coef_sum[ARMO_REPORT_MAX_OBJ];
    int64_t obj_responses; /* responses that had objective rewards */
    armo_jscan js;         /* the current line's tokens */
} pass1;

/* One scored response (a record, chosen / rejected, responses[i]). */
typedef struct {
    double score;
    int has_obj;
    double reward[ARMO_REPORT_MAX_OBJ], gate[ARMO_REPORT_MAX_OBJ], coef[ARMO_REPORT_MAX_OBJ];
} response;

/* The objectives' names: the keys of the first "rewards" object. */
static int set_names(armo_report *r, const armo_jscan *j, int rewards) {
    char name[256];
    for (int k; r->n_obj < ARMO_REPORT_MAX_OBJ &&
                (k = armo_jscan_child(j, rewards, r->n_obj)) >= 0;) {
        armo_jscan_string(j, k, name, sizeof name);
        if (!(r->obj_names[r->n_obj] = strdup(name))) return -1;
        r->n_obj++;
    }
    return 0;
}

/* The value of objective i in object tok: its i-th member when the key
 * matches (armo writes them in order), else looked up by name. */
static int member(const armo_report *r, const armo_jscan *j, int tok, int i) {
    int k = armo_jscan_child(j, tok, i);
    if (k >= 0) {
        const armo_jtok *t = &j->t[k];
        size_t n = strlen(r->obj_names[i]);
        if ((size_t)(t->b - t->a) == n && !memcmp(j->text + t->a, r->obj_names[i], n)) return k + 1;
    }
    return armo_jscan_get(j, tok, r->obj_names[i]);
}

static int read_vec(const armo_jscan *j, int o, const char *field, armo_report *r, double *out,
                    int64_t line, armo_err *e) {
    int obj = armo_jscan_get(j, o, field);
    if (obj < 0 || j->t[obj].type != ARMO_JS_OBJECT)
        return armo_err_set(e, "%s: line %lld: \"%s\" is missing or not an object",
                            r->scores_path, (long long)line, field);
    for (int i = 0; i < r->n_obj; i++) {
        int v = member(r, j, obj, i);
        if (v < 0 || j->t[v].type != ARMO_JS_NUMBER)
            return armo_err_set(e, "%s: line %lld: \"%s\" has no number for objective '%s'",
                                r->scores_path, (long long)line, field, r->obj_names[i]);
        out[i] = armo_jscan_number(j, v);
    }
    return 0;
}

/* Reads response object o and adds it to the aggregates. */
static int take_response(pass1 *p, int o, response *out, armo_err *e) {
    armo_report *r = p->r;
    const armo_jscan *j = &p->js;
    int s = armo_jscan_get(j, o, "score");
    if (s < 0 || j->t[s].type != ARMO_JS_NUMBER)
        return armo_err_set(e, "%s: line %lld: a response without a numeric \"score\"",
                            r->scores_path, (long long)p->line);
    out->score = armo_jscan_number(j, s);
    int t = armo_jscan_get(j, o, "tokens");
    if (t >= 0 && j->t[t].type == ARMO_JS_NUMBER && j->t[t].is_int) {
        int64_t n = armo_jscan_integer(j, t);
        r->tokens += n;
        if (n > r->tokens_max) r->tokens_max = n;
    }
    r->responses++;
    if (dvec_push(&p->scores, out->score)) return armo_err_set(e, "out of memory");
    int rw = armo_jscan_get(j, o, "rewards");
    out->has_obj = rw >= 0 && j->t[rw].type == ARMO_JS_OBJECT;
    if (!out->has_obj) return 0;
    if (r->n_obj == 0 && set_names(r, j, rw)) return armo_err_set(e, "out of memory");
    if (read_vec(j, o, "rewards", r, out->reward, p->line, e) ||
        read_vec(j, o, "gating", r, out->gate, p->line, e) ||
        read_vec(j, o, "coefficients", r, out->coef, p->line, e))
        return -1;
    for (int k = 0; k < r->n_obj; k++) {
        if (dvec_push(&p->rewards, out->reward[k])) return armo_err_set(e, "out of memory");
        p->gate_sum[k] += out->gate[k];
        p->coef_sum[k] += out->coef[k];
        r->contrib_sum[k] += out->coef[k] * out->reward[k];
    }
    p->obj_responses++;
    return 0;
}

/* The prompt's gate (a pair's / best-of-N's responses share it). */
static void take_prompt(pass1 *p, const response *x, armo_report_rec *rec) {
    rec->dominant = -1;
    if (!x->has_obj || p->r->n_obj == 0) return;
    int best = 0;
    for (int j = 1; j < p->r->n_obj; j++)
        if (x->gate[j] > x->gate[best]) best = j;
    rec->dominant = best;
    rec->dominant_w = (float)x->gate[best];
    p->r->dominant_count[best]++;
    p->r->gated_prompts++;
}

/* The grouping value of the input record (or, without one, of the scores
 * line) as text ("" when absent). */
static void group_of(const pass1 *p, int o, json_t *in, char *buf, size_t len) {
    const armo_report *r = p->r;
    buf[0] = 0;
    if (in) {
        json_t *g = r->group_field ? json_object_get(in, r->group_field) : NULL;
        if (!r->group_field) {
            g = json_object_get(in, "subset");
            if (!g) g = json_object_get(in, "category");
        }
        if (json_is_string(g)) snprintf(buf, len, "%s", json_string_value(g));
        else if (json_is_integer(g)) snprintf(buf, len, "%lld", (long long)json_integer_value(g));
        else if (json_is_boolean(g)) snprintf(buf, len, "%s", json_is_true(g) ? "true" : "false");
        return;
    }
    const armo_jscan *j = &p->js;
    int g = r->group_field ? armo_jscan_get(j, o, r->group_field) : -1;
    if (!r->group_field && (g = armo_jscan_get(j, o, "subset")) < 0)
        g = armo_jscan_get(j, o, "category");
    if (g < 0) return;
    int type = j->t[g].type;
    if (type == ARMO_JS_STRING) armo_jscan_string(j, g, buf, len);
    else if (type == ARMO_JS_NUMBER && j->t[g].is_int)
        snprintf(buf, len, "%lld", armo_jscan_integer(j, g));
    else if (type == ARMO_JS_TRUE || type == ARMO_JS_FALSE)
        snprintf(buf, len, "%s", type == ARMO_JS_TRUE ? "true" : "false");
}

static int take_pair(pass1 *p, int o, json_t *in, armo_report_rec *rec, armo_err *e) {
    response ch, rj;
    const armo_jscan *j = &p->js;
    int c = armo_jscan_get(j, o, "chosen"), x = armo_jscan_get(j, o, "rejected");
    if (c < 0 || x < 0 || j->t[c].type != ARMO_JS_OBJECT || j->t[x].type != ARMO_JS_OBJECT)
        return armo_err_set(e, "%s: line %lld: a pair needs \"chosen\" and \"rejected\" objects",
                            p->r->scores_path, (long long)p->line);
    if (take_response(p, c, &ch, e) || take_response(p, x, &rj, e)) return -1;
    int m = armo_jscan_get(j, o, "margin");
    double margin = m >= 0 && j->t[m].type == ARMO_JS_NUMBER ? armo_jscan_number(j, m)
                                                             : ch.score - rj.score;
    rec->kind = ARMO_REPORT_KIND_PAIR;
    rec->score = (float)ch.score;
    rec->margin = (float)margin;
    take_prompt(p, &ch, rec);
    p->r->pairs++;
    p->r->pairs_preferred += margin > 0;
    if (dvec_push(&p->margins, margin)) return armo_err_set(e, "out of memory");
    char g[256];
    group_of(p, o, in, g, sizeof g);
    if (g[0] && kvec_push(&p->groups, g, p->line, margin > 0))
        return armo_err_set(e, "out of memory");
    return 0;
}

static int take_bon(pass1 *p, int o, armo_report_rec *rec, armo_err *e) {
    response x[2]; /* [0]: the current response, [1]: the first (its gate) */
    armo_report *r = p->r;
    const armo_jscan *j = &p->js;
    int arr = armo_jscan_get(j, o, "responses");
    int n = arr >= 0 && j->t[arr].type == ARMO_JS_ARRAY ? armo_jscan_size(j, arr) : 0;
    if (n == 0)
        return armo_err_set(e, "%s: line %lld: \"responses\" is empty or not an array",
                            r->scores_path, (long long)p->line);
    int b = armo_jscan_get(j, o, "best");
    int has_best = b >= 0 && j->t[b].type == ARMO_JS_NUMBER && j->t[b].is_int;
    int64_t start = p->rewards.n, best = has_best ? armo_jscan_integer(j, b) : -1;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0, c = arr + 1; i < n; i++, c = j->t[c].next) {
        if (take_response(p, c, &x[0], e)) return -1;
        if (i == 0) x[1] = x[0];
        if (x[0].score < lo) lo = x[0].score;
        if (!has_best && x[0].score > hi) best = i;
        if (x[0].score > hi) hi = x[0].score;
    }
    rec->kind = ARMO_REPORT_KIND_BON;
    rec->score = (float)hi;
    rec->margin = (float)(hi - lo);
    take_prompt(p, &x[1], rec);
    r->bons++;
    r->bon_responses += n;
    if (dvec_push(&p->spreads, hi - lo)) return armo_err_set(e, "out of memory");
    int k = r->n_obj;
    if (k && p->rewards.n - start == (int64_t)n * k && best >= 0 && best < n) {
        for (int i = 0; i < n; i++)
            for (int q = 0; q < k; q++) {
                double v = p->rewards.v[start + (int64_t)i * k + q];
                if (i == best) r->win_reward[q] += v;
                else r->other_reward[q] += v;
            }
        r->win_n++;
        r->other_n += n - 1;
    }
    return 0;
}

/* The next non-blank line of the records file, parsed; NULL at its end. */
static json_t *next_input(FILE *in, char **buf, size_t *cap, int64_t *in_line, armo_err *e,
                          const char *path, int *failed) {
    ssize_t len;
    *failed = 0;
    while ((len = getline(buf, cap, in)) >= 0) {
        (*in_line)++;
        const char *s = *buf;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
        if (!*s) continue;
        json_error_t je;
        json_t *j = json_loadb(*buf, (size_t)len, 0, &je);
        if (!j) {
            *failed = 1;
            armo_err_set(e, "%s: line %lld is not JSON: %s", path, (long long)*in_line, je.text);
        }
        return j;
    }
    return NULL;
}

/* Checks that input record `in` is the one scores line (its "id" token)
 * answers: the ids compared as JSON values. */
static int check_ids(const pass1 *p, int o, json_t *in, int64_t in_line, armo_err *e) {
    const armo_jscan *j = &p->js;
    int t = armo_jscan_get(j, o, "id");
    json_t *b = json_object_get(in, "id");
    if (t < 0 || !b) return 0;
    const char *raw = j->text + j->t[t].a - (j->t[t].type == ARMO_JS_STRING);
    size_t n = (size_t)(j->t[t].b - j->t[t].a) + 2 * (j->t[t].type == ARMO_JS_STRING);
    json_t *a = json_loadb(raw, n, JSON_DECODE_ANY, NULL);
    int same = a && json_equal(a, b);
    json_decref(a);
    if (same) return 0;
    char *sb = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);
    armo_err_set(e, "%s: line %lld (id %.*s) does not answer %s: line %lld (id %.80s): the "
                    "input is not the records these scores were computed from",
                 p->r->scores_path, (long long)p->line, n > 80 ? 80 : (int)n, raw,
                 p->r->input_path, (long long)in_line, sb ? sb : "?");
    free(sb);
    return -1;
}

static int take_error(pass1 *p, int o, armo_report_rec *rec, armo_err *e) {
    char msg[2048];
    if (armo_jscan_string(&p->js, armo_jscan_get(&p->js, o, "error"), msg, sizeof msg))
        snprintf(msg, sizeof msg, "(error not a string)");
    rec->kind = ARMO_REPORT_KIND_ERROR;
    p->r->errors++;
    if (kvec_push(&p->errs, armo_report_error_key(msg), p->line, 0))
        return armo_err_set(e, "out of memory");
    return 0;
}

/* A {"run": {...}} line: its members join the run's metadata. */
static int take_meta(armo_report *r, const char *line, size_t len) {
    r->meta_lines++;
    json_t *o = json_loadb(line, len, 0, NULL);
    json_t *run = json_object_get(o, "run");
    if (!r->run_meta) r->run_meta = json_object();
    int rc = r->run_meta && run ? json_object_update(r->run_meta, run) : -1;
    json_decref(o);
    return rc;
}

/* One record of the scores file (token 0 of p->js), with its input record
 * (or NULL). */
static int take_line(pass1 *p, json_t *in, armo_err *e) {
    armo_report *r = p->r;
    if (r->n_recs == p->rec_cap) {
        int64_t cap = p->rec_cap ? p->rec_cap * 2 : 1024;
        armo_report_rec *v = realloc(r->recs, (size_t)cap * sizeof *v);
        if (!v) return armo_err_set(e, "out of memory");
        r->recs = v;
        p->rec_cap = cap;
    }
    armo_report_rec *rec = &r->recs[r->n_recs];
    memset(rec, 0, sizeof *rec);
    rec->line = p->line;
    rec->dominant = -1;
    const armo_jscan *j = &p->js;
    int rc;
    if (armo_jscan_get(j, 0, "error") >= 0) {
        rc = take_error(p, 0, rec, e);
    } else if (armo_jscan_get(j, 0, "chosen") >= 0 || armo_jscan_get(j, 0, "rejected") >= 0) {
        rc = take_pair(p, 0, in, rec, e);
    } else if (armo_jscan_get(j, 0, "responses") >= 0) {
        rc = take_bon(p, 0, rec, e);
    } else if (armo_jscan_get(j, 0, "score") >= 0) {
        response x;
        rc = take_response(p, 0, &x, e);
        rec->kind = ARMO_REPORT_KIND_SINGLE;
        rec->score = (float)x.score;
        if (!rc) take_prompt(p, &x, rec);
        r->singles++;
    } else {
        return armo_err_set(e, "%s: line %lld: neither a score, a pair, a best-of-N nor an "
                               "error: not a line of `armo score`", r->scores_path,
                            (long long)p->line);
    }
    if (rc) return -1;
    r->n_recs++;
    r->records++;
    return 0;
}

/* Tokenizes one line into p->js: 0, or -1 with the reason (jansson's words
 * when it agrees the line is not JSON). */
static int scan_line(pass1 *p, const char *buf, size_t len, armo_err *e) {
    if (armo_jscan_parse(&p->js, buf, len) == 0 && p->js.t[0].type == ARMO_JS_OBJECT) return 0;
    json_error_t je;
    json_t *o = json_loadb(buf, len, 0, &je);
    int obj = json_is_object(o);
    json_decref(o);
    return armo_err_set(e, "%s: line %lld is not a JSON object: %s", p->r->scores_path,
                        (long long)p->line, obj ? p->js.err : o ? "another JSON value" : je.text);
}

/* The input record that answers the current scores line (when --input). */
static int match_input(pass1 *p, FILE *inf, char **ibuf, size_t *icap, int64_t *in_line,
                       json_t **in, armo_err *e) {
    int failed;
    *in = next_input(inf, ibuf, icap, in_line, e, p->r->input_path, &failed);
    if (failed) return -1;
    if (!*in)
        return armo_err_set(e, "%s: line %lld has no record in %s (it ends at line %lld): the "
                               "input is not the records these scores were computed from",
                            p->r->scores_path, (long long)p->line, p->r->input_path,
                            (long long)*in_line);
    return check_ids(p, 0, *in, *in_line, e);
}

/* Reads the scores file (and the records) line by line. */
static int read_all(pass1 *p, FILE *sf, FILE *inf, armo_err *e) {
    armo_report *r = p->r;
    char *buf = NULL, *ibuf = NULL;
    size_t cap = 0, icap = 0;
    ssize_t len;
    int64_t in_line = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&buf, &cap, sf)) >= 0) {
        p->line++;
        r->lines++;
        const char *s = buf;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
        if (!*s) continue;
        if ((rc = scan_line(p, buf, (size_t)len, e))) break;
        int run = armo_jscan_get(&p->js, 0, "run");
        if (run >= 0 && p->js.t[run].type == ARMO_JS_OBJECT &&
            armo_jscan_get(&p->js, 0, "score") < 0 && armo_jscan_get(&p->js, 0, "error") < 0) {
            if (take_meta(r, buf, (size_t)len)) rc = armo_err_set(e, "out of memory");
            continue;
        }
        json_t *in = NULL;
        if (inf) rc = match_input(p, inf, &ibuf, &icap, &in_line, &in, e);
        if (rc == 0) rc = take_line(p, in, e);
        if (rc == 0 && in) r->recs[r->n_recs - 1].in_line = in_line;
        json_decref(in);
    }
    if (rc == 0 && ferror(sf))
        rc = armo_err_set(e, "%s: read error: %s", r->scores_path, strerror(errno));
    free(buf);
    free(ibuf);
    return rc;
}

/* keyed runs (sorted by key) -> errors by count / groups by name */
static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int cmp_err_count(const void *a, const void *b) {
    const armo_report_error *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return (x->first_line > y->first_line) - (x->first_line < y->first_line);
}

static int reduce_errors(pass1 *p) {
    armo_report *r = p->r;
    if (p->errs.v) /* qsort wants a valid pointer even for 0 */
        qsort(p->errs.v, (size_t)p->errs.n, sizeof *p->errs.v, cmp_keyed);
    for (int64_t i = 0; i < p->errs.n; i++) {
        if (i == 0 || strcmp(p->errs.v[i].key, p->errs.v[i - 1].key)) {
            armo_report_error *v = realloc(r->errs, (size_t)(r->n_errs + 1) * sizeof *v);
            if (!v) return -1;
            r->errs = v;
            v[r->n_errs] = (armo_report_error){strdup(p->errs.v[i].key), 0, p->errs.v[i].line};
            if (!v[r->n_errs++].msg) return -1;
        }
        r->errs[r->n_errs - 1].count++;
    }
    if (r->errs) /* qsort wants a valid pointer even for 0 */
        qsort(r->errs, (size_t)r->n_errs, sizeof *r->errs, cmp_err_count);
    return 0;
}

static int reduce_groups(pass1 *p) {
    armo_report *r = p->r;
    if (p->groups.v) /* qsort wants a valid pointer even for 0 */
        qsort(p->groups.v, (size_t)p->groups.n, sizeof *p->groups.v, cmp_keyed);
    for (int64_t i = 0; i < p->groups.n; i++) {
        if (i == 0 || strcmp(p->groups.v[i].key, p->groups.v[i - 1].key)) {
            armo_report_group *v = realloc(r->groups, (size_t)(r->n_groups + 1) * sizeof *v);
            if (!v) return -1;
            r->groups = v;
            v[r->n_groups] = (armo_report_group){strdup(p->groups.v[i].key), 0, 0, -1};
            if (!v[r->n_groups++].name) return -1;
        }
        r->groups[r->n_groups - 1].pairs++;
        r->groups[r->n_groups - 1].preferred += p->groups.v[i].preferred;
        r->grouped_pairs++;
    }
    return 0;
}

/* RewardBench's section scores from the per-subset accuracies
 * (rewardbench.h: weighted by EXAMPLE_COUNTS, mean of the sections). */
static void reduce_rewardbench(armo_report *r) {
    double num[ARMO_REPORT_SECTIONS] = {0}, den[ARMO_REPORT_SECTIONS] = {0};
    for (int i = 0; i < ARMO_REPORT_SECTIONS; i++) r->rb_section[i] = -1;
    r->rb_score = -1;
    for (int g = 0; g < r->n_groups; g++) {
        int w, s = armo_rb_subset(r->groups[g].name, &w);
        r->groups[g].rb_section = s;
        if (s < 0 || r->groups[g].pairs == 0) continue;
        r->rb_present = 1;
        num[s] += (double)r->groups[g].preferred / (double)r->groups[g].pairs * w;
        den[s] += w;
        r->rb_section_pairs[s] += r->groups[g].pairs;
    }
    double sum = 0;
    int n = 0;
    for (int i = 0; i < ARMO_REPORT_SECTIONS; i++)
        if (den[i] > 0) {
            r->rb_section[i] = num[i] / den[i];
            sum += r->rb_section[i];
            n++;
        }
    if (n) r->rb_score = sum / n;
}

static int reduce_objectives(pass1 *p) {
    armo_report *r = p->r;
    int k = r->n_obj;
    int64_t n = p->obj_responses;
    if (!k || !n) return 0;
    double *col = malloc((size_t)n * sizeof *col);
    if (!col) return -1;
    double abs_total = 0;
    for (int j = 0; j < k; j++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += col[i] = p->rewards.v[i * k + j];
        r->mean_reward[j] = s / (double)n;
        r->mean_gate[j] = p->gate_sum[j] / (double)n;
        r->mean_coef[j] = p->coef_sum[j] / (double)n;
        armo_hist_fill(&r->reward_hist[j], col, n, ARMO_REPORT_OBJ_BINS);
        armo_box_fill(&r->reward_box[j], col, n);
        abs_total += fabs(r->contrib_sum[j]);
    }
    for (int j = 0; j < k; j++) r->contrib_share[j] = abs_total > 0 ? r->contrib_sum[j] / abs_total : 0;
    for (int j = 0; j < k; j++) {
        if (r->win_n) r->win_reward[j] /= (double)r->win_n;
        if (r->other_n) r->other_reward[j] /= (double)r->other_n;
    }
    free(col);
    return 0;
}

/* distributions of scores, margins and spreads */
static int reduce_distributions(pass1 *p) {
    armo_report *r = p->r;
    armo_hist_fill(&r->score_hist, p->scores.v, p->scores.n, ARMO_REPORT_BINS);
    armo_box_fill(&r->score_box, p->scores.v, p->scores.n);
    armo_hist_fill(&r->margin_hist, p->margins.v, p->margins.n, ARMO_REPORT_BINS);
    armo_box_fill(&r->margin_box, p->margins.v, p->margins.n);
    armo_hist_fill(&r->spread_hist, p->spreads.v, p->spreads.n, ARMO_REPORT_BINS);
    armo_box_fill(&r->spread_box, p->spreads.v, p->spreads.n);
    return 0;
}

/* ---- selections: which records the page lists and embeds ---- */

static const armo_report_rec *g_recs; /* for the qsort comparators below */

static int by_abs_margin(const void *a, const void *b) {
    const armo_report_rec *x = &g_recs[*(const int64_t *)a], *y = &g_recs[*(const int64_t *)b];
    float u = fabsf(x->margin), v = fabsf(y->margin);
    if (u != v) return u < v ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int by_score_desc(const void *a, const void *b) {
    const armo_report_rec *x = &g_recs[*(const int64_t *)a], *y = &g_recs[*(const int64_t *)b];
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->line > y->line) - (x->line < y->line);
}

static int by_dominant(const void *a, const void *b) {
    const armo_report_rec *x = &g_recs[*(const int64_t *)a], *y = &g_recs[*(const int64_t *)b];
    if (x->dominant != y->dominant) return x->dominant - y->dominant;
    if (x->dominant_w != y->dominant_w) return x->dominant_w < y->dominant_w ? 1 : -1;
    return (x->line > y->line) - (x->line < y->line);
}

/* The first `want` of the records that pass `keep`, ordered by cmp, into
 * a new array (*out, *n). */
static int select_recs(armo_report *r, int (*keep)(const armo_report_rec *), int want,
                       int (*cmp)(const void *, const void *), int64_t **out, int *n) {
    *out = NULL;
    *n = 0;
    int64_t m = 0;
    int64_t *idx = malloc((size_t)(r->n_recs ? r->n_recs : 1) * sizeof *idx);
    if (!idx) return -1;
    for (int64_t i = 0; i < r->n_recs; i++)
        if (keep(&r->recs[i])) idx[m++] = i;
    g_recs = r->recs;
    qsort(idx, (size_t)m, sizeof *idx, cmp);
    *n = (int)(m < want ? m : want);
    *out = idx;
    return 0;
}

static int by_score_asc(const void *a, const void *b) {
    const armo_report_rec *x = &g_recs[*(const int64_t *)a], *y = &g_recs[*(const int64_t *)b];
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int is_pair(const armo_report_rec *x) { return x->kind == ARMO_REPORT_KIND_PAIR; }
static int is_scored(const armo_report_rec *x) { return x->kind != ARMO_REPORT_KIND_ERROR; }

static int select_all(armo_report *r, const armo_report_opts *o) {
    if (select_recs(r, is_pair, o->smallest, by_abs_margin, &r->smallest, &r->n_smallest) ||
        select_recs(r, is_scored, o->extremes, by_score_desc, &r->highest, &r->n_highest) ||
        select_recs(r, is_scored, o->extremes, by_score_asc, &r->lowest, &r->n_lowest))
        return -1;
    /* heatmap: prompts spread evenly over the file, then sorted by their
     * dominant objective and its weight so that similar prompts stand together */
    int64_t gated = 0;
    for (int64_t i = 0; i < r->n_recs; i++) gated += r->recs[i].dominant >= 0;
    int rows = (int)(gated < o->heatmap_rows ? gated : o->heatmap_rows);
    r->heatmap = malloc((size_t)(rows ? rows : 1) * sizeof *r->heatmap);
    if (!r->heatmap) return -1;
    int64_t seen = 0;
    for (int64_t i = 0; i < r->n_recs && r->n_heatmap < rows; i++) {
        if (r->recs[i].dominant < 0) continue;
        if (seen++ == (int64_t)r->n_heatmap * gated / rows) r->heatmap[r->n_heatmap++] = i;
    }
    g_recs = r->recs;
    qsort(r->heatmap, (size_t)r->n_heatmap, sizeof *r->heatmap, by_dominant);
    return 0;
}

static void pass1_free(pass1 *p) {
    free(p->scores.v);
    free(p->margins.v);
    free(p->spreads.v);
    free(p->rewards.v);
    kvec_free(&p->errs);
    kvec_free(&p->groups);
    armo_jscan_free(&p->js);
}

static int open_inputs(armo_report *r, FILE **sf, FILE **inf, armo_err *e) {
    *inf = NULL;
    *sf = fopen(r->scores_path, "rb");
    if (!*sf) return armo_err_set(e, "cannot open %s: %s", r->scores_path, strerror(errno));
    if (r->input_path && !(*inf = fopen(r->input_path, "rb"))) {
        armo_err_set(e, "cannot open %s: %s", r->input_path, strerror(errno));
        fclose(*sf);
        return -1;
    }
    return 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int armo_report_build(const armo_report_opts *o, armo_report **out, armo_err *e) {
    *out = NULL;
    armo_report *r = calloc(1, sizeof *r);
    if (!r) return armo_err_set(e, "out of memory");
    r->scores_path = strdup(o->scores_path);
    r->input_path = dup_or_null(o->input_path);
    r->group_field = dup_or_null(o->group_by);
    if (!r->scores_path || (o->input_path && !r->input_path) || (o->group_by && !r->group_field)) {
        armo_report_free(r);
        return armo_err_set(e, "out of memory");
    }
    FILE *sf, *inf;
    if (open_inputs(r, &sf, &inf, e)) {
        armo_report_free(r);
        return -1;
    }
    pass1 p = {.r = r, .o = o};
    int rc = read_all(&p, sf, inf, e);
    fclose(sf);
    if (inf) fclose(inf);
    if (rc == 0 && (reduce_errors(&p) || reduce_groups(&p) || reduce_objectives(&p) ||
                    reduce_distributions(&p) || select_all(r, o)))
        rc = armo_err_set(e, "out of memory");
    pass1_free(&p);
    if (rc == 0) reduce_rewardbench(r);
    if (rc == 0) rc = armo_report_details(r, o, e);
    if (rc) {
        armo_report_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void armo_report_free(armo_report *r) {
    if (!r) return;
    free(r->scores_path);
    free(r->input_path);
    free(r->group_field);
    json_decref(r->run_meta);
    for (int j = 0; j < r->n_obj; j++) free(r->obj_names[j]);
    for (int i = 0; i < r->n_errs; i++) free(r->errs[i].msg);
    free(r->errs);
    for (int i = 0; i < r->n_groups; i++) free(r->groups[i].name);
    free(r->groups);
    free(r->recs);
    free(r->smallest);
    free(r->highest);
    free(r->lowest);
    free(r->heatmap);
    json_decref(r->heatmap_gates);
    json_decref(r->details);
    free(r);
}
