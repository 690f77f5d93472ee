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
} pass1;

/* One scored response (a record, chosen / rejected, responses[i]). */
typedef struct {
    double score;
    int has_obj;
    double reward[ARMO_REPORT_MAX_OBJ], gate[ARMO_REPORT_MAX_OBJ], coef[ARMO_REPORT_MAX_OBJ];
} response;

static int set_names(armo_report *r, json_t *rewards) {
    const char *k;
    json_t *v;
    json_object_foreach(rewards, k, v) {
        if (r->n_obj == ARMO_REPORT_MAX_OBJ) break;
        if (!(r->obj_names[r->n_obj] = strdup(k))) return -1;
        r->n_obj++;
    }
    return 0;
}

static int read_vec(json_t *o, const char *field, armo_report *r, double *out, int64_t line,
                    armo_err *e) {
    json_t *obj = json_object_get(o, field);
    if (!json_is_object(obj))
        return armo_err_set(e, "%s: line %lld: \"%s\" is missing or not an object",
                            r->scores_path, (long long)line, field);
    for (int j = 0; j < r->n_obj; j++) {
        json_t *v = json_object_get(obj, r->obj_names[j]);
        if (!json_is_number(v))
            return armo_err_set(e, "%s: line %lld: \"%s\" has no number for objective '%s'",
                                r->scores_path, (long long)line, field, r->obj_names[j]);
        out[j] = json_number_value(v);
    }
    return 0;
}

/* Reads one response object and adds it to the aggregates. */
static int take_response(pass1 *p, json_t *o, response *out, armo_err *e) {
    armo_report *r = p->r;
    json_t *s = json_object_get(o, "score");
    if (!json_is_number(s))
        return armo_err_set(e, "%s: line %lld: a response without a numeric \"score\"",
                            r->scores_path, (long long)p->line);
    out->score = json_number_value(s);
    json_t *t = json_object_get(o, "tokens");
    if (json_is_integer(t)) {
        int64_t n = (int64_t)json_integer_value(t);
        r->tokens += n;
        if (n > r->tokens_max) r->tokens_max = n;
    }
    r->responses++;
    if (dvec_push(&p->scores, out->score)) return armo_err_set(e, "out of memory");
    json_t *rw = json_object_get(o, "rewards");
    out->has_obj = json_is_object(rw);
    if (!out->has_obj) return 0;
    if (r->n_obj == 0 && set_names(r, rw)) return armo_err_set(e, "out of memory");
    if (read_vec(o, "rewards", r, out->reward, p->line, e) ||
        read_vec(o, "gating", r, out->gate, p->line, e) ||
        read_vec(o, "coefficients", r, out->coef, p->line, e))
        return -1;
    for (int j = 0; j < r->n_obj; j++) {
        if (dvec_push(&p->rewards, out->reward[j])) return armo_err_set(e, "out of memory");
        p->gate_sum[j] += out->gate[j];
        p->coef_sum[j] += out->coef[j];
        r->contrib_sum[j] += out->coef[j] * out->reward[j];
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

/* The grouping value of an input record as text ("" when absent). */
static void group_of(const armo_report *r, json_t *in, char *buf, size_t len) {
    buf[0] = 0;
    if (!in) return;
    json_t *g = r->group_field ? json_object_get(in, r->group_field) : NULL;
    if (!r->group_field) {
        g = json_object_get(in, "subset");
        if (!g) g = json_object_get(in, "category");
    }
    if (json_is_string(g)) snprintf(buf, len, "%s", json_string_value(g));
    else if (json_is_integer(g)) snprintf(buf, len, "%lld", (long long)json_integer_value(g));
    else if (json_is_boolean(g)) snprintf(buf, len, "%s", json_is_true(g) ? "true" : "false");
}

static int take_pair(pass1 *p, json_t *o, json_t *in, armo_report_rec *rec, armo_err *e) {
    response ch, rj;
    json_t *c = json_object_get(o, "chosen"), *x = json_object_get(o, "rejected");
    if (!json_is_object(c) || !json_is_object(x))
        return armo_err_set(e, "%s: line %lld: a pair needs \"chosen\" and \"rejected\" objects",
                            p->r->scores_path, (long long)p->line);
    if (take_response(p, c, &ch, e) || take_response(p, x, &rj, e)) return -1;
    json_t *m = json_object_get(o, "margin");
    double margin = json_is_number(m) ? json_number_value(m) : ch.score - rj.score;
    rec->kind = ARMO_REPORT_KIND_PAIR;
    rec->score = (float)ch.score;
    rec->margin = (float)margin;
    take_prompt(p, &ch, rec);
    p->r->pairs++;
    p->r->pairs_preferred += margin > 0;
    if (dvec_push(&p->margins, margin)) return armo_err_set(e, "out of memory");
    char g[256];
    group_of(p->r, in ? in : o, g, sizeof g);
    if (g[0] && kvec_push(&p->groups, g, p->line, margin > 0))
        return armo_err_set(e, "out of memory");
    return 0;
}

static int take_bon(pass1 *p, json_t *o, armo_report_rec *rec, armo_err *e) {
    response x[2]; /* [0]: the current response, [1]: the first (its gate) */
    armo_report *r = p->r;
    json_t *arr = json_object_get(o, "responses");
    size_t n = json_array_size(arr);
    if (n == 0)
        return armo_err_set(e, "%s: line %lld: \"responses\" is empty", r->scores_path,
                            (long long)p->line);
    json_t *b = json_object_get(o, "best");
    int64_t start = p->rewards.n;
    double lo = INFINITY, hi = -INFINITY;
    int64_t best = json_is_integer(b) ? (int64_t)json_integer_value(b) : -1;
    double best_score = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (take_response(p, json_array_get(arr, i), &x[0], e)) return -1;
        if (i == 0) x[1] = x[0];
        if (x[0].score < lo) lo = x[0].score;
        if (x[0].score > hi) hi = x[0].score;
        if (!json_is_integer(b) && x[0].score > best_score) best = (int64_t)i;
        if (x[0].score > best_score) best_score = x[0].score;
    }
    rec->kind = ARMO_REPORT_KIND_BON;
    rec->score = (float)hi;
    rec->margin = (float)(hi - lo);
    take_prompt(p, &x[1], rec);
    r->bons++;
    r->bon_responses += (int64_t)n;
    if (dvec_push(&p->spreads, hi - lo)) return armo_err_set(e, "out of memory");
    int k = r->n_obj;
    if (k && p->rewards.n - start == (int64_t)n * k && best >= 0 && best < (int64_t)n) {
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < k; j++) {
                double v = p->rewards.v[start + (int64_t)i * k + j];
                if ((int64_t)i == best) r->win_reward[j] += v;
                else r->other_reward[j] += v;
            }
        r->win_n++;
        r->other_n += (int64_t)n - 1;
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

/* Checks that input record `in` is the one scores line `o` answers. */
static int check_ids(const pass1 *p, json_t *o, json_t *in, int64_t in_line, armo_err *e) {
    json_t *a = json_object_get(o, "id"), *b = json_object_get(in, "id");
    if (!a || !b || json_equal(a, b)) return 0;
    char *sa = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
    char *sb = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);
    armo_err_set(e, "%s: line %lld (id %.80s) does not answer %s: line %lld (id %.80s): the "
                    "input is not the records these scores were computed from",
                 p->r->scores_path, (long long)p->line, sa ? sa : "?", p->r->input_path,
                 (long long)in_line, sb ? sb : "?");
    free(sa);
    free(sb);
    return -1;
}

static int take_error(pass1 *p, json_t *o, armo_report_rec *rec, armo_err *e) {
    const char *msg = json_string_value(json_object_get(o, "error"));
    rec->kind = ARMO_REPORT_KIND_ERROR;
    p->r->errors++;
    if (kvec_push(&p->errs, armo_report_error_key(msg ? msg : "(error not a string)"), p->line, 0))
        return armo_err_set(e, "out of memory");
    return 0;
}

static int take_meta(armo_report *r, json_t *run) {
    r->meta_lines++;
    if (!r->run_meta) r->run_meta = json_object();
    return r->run_meta ? json_object_update(r->run_meta, run) : -1;
}

/* One line of the scores file, parsed, with its input record (or NULL). */
static int take_line(pass1 *p, json_t *o, json_t *in, armo_err *e) {
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
    int rc;
    if (json_object_get(o, "error")) {
        rc = take_error(p, o, rec, e);
    } else if (json_object_get(o, "chosen") || json_object_get(o, "rejected")) {
        rc = take_pair(p, o, in, rec, e);
    } else if (json_object_get(o, "responses")) {
        rc = take_bon(p, o, rec, e);
    } else if (json_object_get(o, "score")) {
        response x;
        rc = take_response(p, o, &x, e);
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
        json_error_t je;
        json_t *o = json_loadb(buf, (size_t)len, 0, &je);
        if (!json_is_object(o)) {
            rc = armo_err_set(e, "%s: line %lld is not a JSON object%s%s", r->scores_path,
                              (long long)p->line, o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            break;
        }
        json_t *run = json_object_get(o, "run");
        if (json_is_object(run) && !json_object_get(o, "score") &&
            !json_object_get(o, "error")) {
            if (take_meta(r, run)) rc = armo_err_set(e, "out of memory");
            json_decref(o);
            continue;
        }
        json_t *in = NULL;
        if (inf) {
            int failed;
            in = next_input(inf, &ibuf, &icap, &in_line, e, r->input_path, &failed);
            if (failed) rc = -1;
            else if (!in)
                rc = armo_err_set(e, "%s: line %lld has no record in %s (it ends at line %lld): "
                                     "the input is not the records these scores were computed "
                                     "from", r->scores_path, (long long)p->line, r->input_path,
                                  (long long)in_line);
            else rc = check_ids(p, o, in, in_line, e);
        }
        if (rc == 0) rc = take_line(p, o, in, e);
        if (rc == 0 && in) r->recs[r->n_recs - 1].in_line = in_line;
        json_decref(in);
        json_decref(o);
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
    free(r->title);
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
