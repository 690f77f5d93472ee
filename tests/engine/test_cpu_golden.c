/* test_cpu_golden.c — the CPU backend end to end against Hugging Face goldens.
 *
 * For every tests/fixtures/NAME.golden.json (written by tools/gen_fixtures.py
 * from transformers' LlamaModel in fp32 plus a plain-PyTorch ArmoRM head) the
 * bundled checkpoint ARMO_MODELS_DIR/NAME is opened and every case is scored
 * one sequence at a time AND all cases packed into one batch.  Score, every
 * reward, gating weight and coefficient (or every label score of a
 * single-head RM) must match within relative error 1e-4 (DESIGN §5, oracle 2),
 * the head rows must be where the golden says (last token; gating position
 * found by armo_find_gating_pos), and packing must not change a single bit.
 * The head is also run alone on the golden hidden states, which separates a
 * head bug from a backbone bug.  Finally the input validation is exercised
 * (each error must name the offending sequence).
 *
 * No golden file at all is a failure: this test must never pass vacuously. */
#include <glob.h>
#include <jansson.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/engine/cpu_backend.h"
#include "host/engine/cpu_ops.h"
#include "host/text/positions.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"
#include "weights/model.h"

#define REL_TOL 1e-4

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    char name[128];
    int n;
    int32_t *ids;
    int last_pos, gating_pos;
    double score;
    int k;                       /* rewards / gating / coefficients (ArmoRM) or labels */
    double *rewards, *gating, *coefficients, *labels;
    int hidden;
    float *hidden_last, *hidden_prompt;
} golden_case;

static double *json_doubles(json_t *arr, int *count) {
    if (!json_is_array(arr)) return NULL;
    size_t n = json_array_size(arr);
    double *v = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = json_number_value(json_array_get(arr, i));
    *count = (int)n;
    return v;
}

static float *json_floats(json_t *arr, int *count) {
    double *d = json_doubles(arr, count);
    if (!d) return NULL;
    float *f = malloc(sizeof(float) * (*count ? *count : 1));
    for (int i = 0; i < *count; i++) f[i] = (float)d[i];
    free(d);
    return f;
}

static void free_case(golden_case *g) {
    free(g->ids);
    free(g->rewards);
    free(g->gating);
    free(g->coefficients);
    free(g->labels);
    free(g->hidden_last);
    free(g->hidden_prompt);
}

/* Parses one case; returns 0 or -1 (with a CHECK failure naming the problem). */
static int parse_case(json_t *jc, int armorm, const char *file, golden_case *g) {
    memset(g, 0, sizeof *g);
    const char *name = json_string_value(json_object_get(jc, "name"));
    snprintf(g->name, sizeof g->name, "%s", name ? name : "?");
    json_t *ids = json_object_get(jc, "input_ids");
    int ok = json_is_array(ids) && json_array_size(ids) > 0;
    CHECK(ok, "%s case %s: no input_ids", file, g->name);
    if (!ok) return -1;
    g->n = (int)json_array_size(ids);
    g->ids = malloc(sizeof(int32_t) * g->n);
    for (int i = 0; i < g->n; i++) g->ids[i] = (int32_t)json_integer_value(json_array_get(ids, i));
    g->last_pos = (int)json_integer_value(json_object_get(jc, "last_pos"));
    g->gating_pos = (int)json_integer_value(json_object_get(jc, "gating_pos"));
    g->score = json_number_value(json_object_get(jc, "score"));
    int kr = 0, kg = 0, kc = 0, h1 = 0, h2 = 0;
    if (armorm) {
        g->rewards = json_doubles(json_object_get(jc, "rewards"), &kr);
        g->gating = json_doubles(json_object_get(jc, "gating"), &kg);
        g->coefficients = json_doubles(json_object_get(jc, "coefficients"), &kc);
        g->hidden_last = json_floats(json_object_get(jc, "hidden_last"), &h1);
        g->hidden_prompt = json_floats(json_object_get(jc, "hidden_prompt"), &h2);
        ok = g->rewards && g->gating && g->coefficients && g->hidden_last && g->hidden_prompt &&
             kr > 0 && kr == kg && kr == kc && h1 > 0 && h1 == h2;
        CHECK(ok, "%s case %s: rewards/gating/coefficients/hidden_* missing or of unequal sizes",
              file, g->name);
        g->k = kr;
    } else {
        g->labels = json_doubles(json_object_get(jc, "scores"), &kr);
        g->hidden_last = json_floats(json_object_get(jc, "hidden_last"), &h1);
        ok = g->labels && g->hidden_last && kr > 0 && h1 > 0;
        CHECK(ok, "%s case %s: scores/hidden_last missing", file, g->name);
        g->k = kr;
    }
    g->hidden = h1;
    return ok ? 0 : -1;
}

/* Each value must satisfy |got - want| <= 1e-4 * max(|want|, floor) with
 * floor = 1e-2 * max|want| over the vector, i.e. relative error 1e-4, but an
 * absolute error of up to 1e-6 * max|want| is always allowed.  Why the floor:
 * all rewards (or gating weights, coefficients) of a case come from the same
 * hidden state through dot products that cancel, so their fp32 rounding noise
 * is absolute, of the size of the vector's magnitude times ~1e-7 (measured:
 * both the golden's and ours are ~6e-7 relative on the hidden state, and
 * computing ours in double does not shrink the difference).  A component
 * that happens to be 0.1% of its siblings would otherwise be held to a
 * tolerance below that noise.  1e-6 * max stays far below any real mistake
 * (the head mutations move values by > 1e-2).
 * Returns the worst |got - want| / allowed over the vector (pass < 1). */
static double compare_vec(const char *what, const char *model, const char *cname,
                          const char *mode, const float *got, const double *want, int n) {
    double mx = 0, worst = 0;
    for (int i = 0; i < n; i++)
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    double floor_ = 1e-6 * mx / REL_TOL;
    for (int i = 0; i < n; i++) {
        double scale = fabs(want[i]) > floor_ ? fabs(want[i]) : floor_;
        double allowed = REL_TOL * scale;
        double err = allowed > 0 ? fabs(got[i] - want[i]) / allowed : fabs(got[i] - want[i]);
        if (err > worst || got[i] != got[i]) worst = got[i] != got[i] ? INFINITY : err;
        CHECK(test_close(got[i], want[i], REL_TOL, floor_), "%s/%s [%s] %s[%d] = %.9g, want %.9g",
              model, cname, mode, what, i, got[i], want[i]);
    }
    return worst;
}

typedef struct {
    double score, rewards, gating, coefficients;
} worst_errs;

static void update(double *w, double v) {
    if (v > *w || v != v) *w = v;
}

static void compare_result(const char *model, const golden_case *g, const char *mode,
                           const armo_result *r, int armorm, worst_errs *w) {
    CHECK(r->n_tokens == g->n, "%s/%s [%s] n_tokens %d, want %d", model, g->name, mode,
          r->n_tokens, g->n);
    CHECK(r->last_pos == g->last_pos, "%s/%s [%s] last_pos %d, want %d", model, g->name, mode,
          r->last_pos, g->last_pos);
    CHECK(r->gating_pos == g->gating_pos, "%s/%s [%s] gating_pos %d, want %d", model, g->name,
          mode, r->gating_pos, g->gating_pos);
    float sc = r->score;
    update(&w->score, compare_vec("score", model, g->name, mode, &sc, &g->score, 1));
    if (armorm) {
        CHECK(r->n_objectives == g->k, "%s/%s [%s] %d objectives, want %d", model, g->name, mode,
              r->n_objectives, g->k);
        if (r->n_objectives != g->k) return;
        update(&w->rewards, compare_vec("rewards", model, g->name, mode, r->rewards, g->rewards, g->k));
        update(&w->gating, compare_vec("gating", model, g->name, mode, r->gating, g->gating, g->k));
        update(&w->coefficients, compare_vec("coefficients", model, g->name, mode,
                                             r->coefficients, g->coefficients, g->k));
    } else {
        CHECK(r->n_labels == g->k, "%s/%s [%s] %d labels, want %d", model, g->name, mode,
              r->n_labels, g->k);
        if (r->n_labels != g->k) return;
        update(&w->rewards, compare_vec("labels", model, g->name, mode, r->labels, g->labels, g->k));
    }
}

/* Bad input must give an error naming the sequence, never a crash. */
static void check_validation(armo_cpu *c, const armo_model *m, const golden_case *g, int armorm) {
    int n = g->n;
    int32_t *ids = malloc(sizeof(int32_t) * 2 * n);
    memcpy(ids, g->ids, sizeof(int32_t) * n);
    memcpy(ids + n, g->ids, sizeof(int32_t) * n);
    int32_t cu[3] = {0, n, 2 * n};
    int32_t gp[2] = {g->gating_pos, g->gating_pos};
    armo_result res[2];
    armo_err e;

    ids[n + n - 1] = m->cfg.vocab_size; /* out of the vocabulary, in sequence 1 */
    e.msg[0] = 0;
    CHECK(armo_cpu_score(c, ids, cu, 2, gp, res, &e) < 0 && test_contains(e.msg, "sequence 1"),
          "id == vocab_size not refused with the sequence named: '%s'", e.msg);
    ids[n + n - 1] = -5;
    e.msg[0] = 0;
    CHECK(armo_cpu_score(c, ids, cu, 2, gp, res, &e) < 0 && test_contains(e.msg, "sequence 1"),
          "negative id not refused: '%s'", e.msg);
    ids[n + n - 1] = g->ids[n - 1];

    int32_t cu_empty[3] = {0, 0, n};
    e.msg[0] = 0;
    CHECK(armo_cpu_score(c, ids, cu_empty, 2, gp, res, &e) < 0 &&
              test_contains(e.msg, "sequence 0") && test_contains(e.msg, "empty"),
          "empty sequence not refused: '%s'", e.msg);

    if (armorm) {
        int32_t bad_gp[2] = {g->gating_pos, n};
        e.msg[0] = 0;
        CHECK(armo_cpu_score(c, ids, cu, 2, bad_gp, res, &e) < 0 &&
                  test_contains(e.msg, "sequence 1") && test_contains(e.msg, "gating"),
              "gating_pos == len not refused: '%s'", e.msg);
        bad_gp[1] = -1;
        e.msg[0] = 0;
        CHECK(armo_cpu_score(c, ids, cu, 2, bad_gp, res, &e) < 0 &&
                  test_contains(e.msg, "sequence 1"),
              "gating_pos -1 not refused: '%s'", e.msg);
        e.msg[0] = 0;
        CHECK(armo_cpu_score(c, ids, cu, 2, NULL, res, &e) < 0,
              "ArmoRM without gating positions not refused");
    }

    /* longer than max_position_embeddings (a sequence of max+1 copies of id 0) */
    int maxpos = m->cfg.max_position_embeddings;
    if (maxpos > 0 && maxpos < 1 << 20) {
        int32_t *longids = calloc((size_t)maxpos + 2, sizeof(int32_t));
        int32_t cul[3] = {0, 1, maxpos + 2};
        int32_t gpl[2] = {0, 0};
        e.msg[0] = 0;
        CHECK(armo_cpu_score(c, longids, cul, 2, gpl, res, &e) < 0 &&
                  test_contains(e.msg, "sequence 1") &&
                  test_contains(e.msg, "max_position_embeddings"),
              "over-long sequence not refused: '%s'", e.msg);
        free(longids);
    }
    free(ids);
}

static void run_model(const char *golden_path) {
    char pathbuf[4096];
    snprintf(pathbuf, sizeof pathbuf, "%s", golden_path);
    const char *base = basename(pathbuf);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - strlen(".golden.json")), base);

    json_error_t jerr;
    json_t *root = json_load_file(golden_path, 0, &jerr);
    CHECK(root != NULL, "%s:%d: %s", golden_path, jerr.line, jerr.text);
    if (!root) return;
    const char *gmodel = json_string_value(json_object_get(root, "model"));
    CHECK(gmodel && strcmp(gmodel, name) == 0, "%s: \"model\" is %s, expected %s", golden_path,
          gmodel ? gmodel : "(none)", name);
    json_t *jcases = json_object_get(root, "cases");
    int ncases = json_is_array(jcases) ? (int)json_array_size(jcases) : 0;
    CHECK(ncases > 0, "%s: no cases", golden_path);

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", ARMO_MODELS_DIR, name);
    armo_model m;
    armo_err e;
    e.msg[0] = 0;
    double t0 = now_s();
    int rc = armo_model_open(dir, &m, &e);
    CHECK(rc == 0, "armo_model_open(%s): %s", dir, e.msg);
    if (rc != 0) {
        json_decref(root);
        return;
    }
    armo_cpu *c = armo_cpu_create(&m, 0, &e); /* 0: one thread per CPU */
    CHECK(c != NULL, "armo_cpu_create(%s): %s", dir, e.msg);
    double t_open = now_s() - t0;
    if (!c) {
        armo_model_close(&m);
        json_decref(root);
        return;
    }
    const int armorm = m.cfg.arch == ARMO_ARCH_ARMORM;

    golden_case *cases = calloc((size_t)ncases, sizeof *cases);
    int parsed = 0, total_tokens = 0;
    for (int i = 0; i < ncases; i++) {
        if (parse_case(json_array_get(jcases, i), armorm, golden_path, &cases[parsed]) < 0) {
            free_case(&cases[parsed]);
            continue;
        }
        total_tokens += cases[parsed].n;
        parsed++;
    }
    worst_errs w_single = {0, 0, 0, 0}, w_packed = {0, 0, 0, 0}, w_head = {0, 0, 0, 0};

    /* positions: last token, and the gating pattern found by our own search */
    const size_t nalloc = parsed > 0 ? (size_t)parsed : 1;
    int32_t *gpos = malloc(sizeof(int32_t) * nalloc);
    for (int i = 0; i < parsed; i++) {
        golden_case *g = &cases[i];
        CHECK(g->last_pos == g->n - 1, "%s/%s: golden last_pos %d but %d tokens", name, g->name,
              g->last_pos, g->n);
        if (armorm) {
            gpos[i] = armo_find_gating_pos(g->ids, g->n, ARMO_LLAMA3_GATING_PATTERN, 5);
            CHECK(gpos[i] == g->gating_pos, "%s/%s: armo_find_gating_pos %d, golden %d", name,
                  g->name, gpos[i], g->gating_pos);
            if (gpos[i] < 0) gpos[i] = g->gating_pos; /* keep going with the golden one */
        } else {
            gpos[i] = -1;
            CHECK(g->gating_pos == -1, "%s/%s: single-head golden with gating_pos %d", name,
                  g->name, g->gating_pos);
        }
    }

    /* the head alone on the golden hidden states */
    float *score_w = NULL;
    if (!armorm) {
        score_w = malloc(sizeof(float) * (size_t)m.score.rows * m.score.cols);
        armo_convert_to_f32(score_w, m.score.data, m.score.dtype,
                            (size_t)(m.score.rows * m.score.cols));
    }
    for (int i = 0; i < parsed; i++) {
        golden_case *g = &cases[i];
        CHECK(g->hidden == m.cfg.hidden_size, "%s/%s: golden hidden size %d, config %d", name,
              g->name, g->hidden, m.cfg.hidden_size);
        if (g->hidden != m.cfg.hidden_size) continue;
        armo_result r;
        memset(&r, 0, sizeof r);
        r.n_tokens = g->n;
        r.last_pos = g->n - 1;
        r.gating_pos = g->gating_pos;
        if (armorm) {
            const armo_head_params *hw = armo_cpu_head(c);
            CHECK(hw && hw->k == g->k, "%s: head has %d objectives, golden %d", name,
                  hw ? hw->k : -1, g->k);
            if (!hw || hw->k != g->k) continue;
            cpu_armo_head(hw, g->hidden_last, g->hidden_prompt, 1, r.rewards, r.gating,
                          r.coefficients, &r.score);
            r.n_objectives = hw->k;
        } else {
            CHECK(m.score.rows == g->k, "%s: %lld labels, golden %d", name,
                  (long long)m.score.rows, g->k);
            if (m.score.rows != g->k || g->k > ARMO_MAX_LABELS) continue;
            cpu_seqcls_head(score_w, g->k, g->hidden, g->hidden_last, 1, r.labels);
            r.n_labels = g->k;
            r.score = r.labels[0];
        }
        compare_result(name, g, "head on golden hidden", &r, armorm, &w_head);
    }
    free(score_w);

    /* each case on its own */
    armo_result *single = calloc(nalloc, sizeof *single);
    double t1 = now_s();
    for (int i = 0; i < parsed; i++) {
        golden_case *g = &cases[i];
        int32_t cu[2] = {0, g->n};
        e.msg[0] = 0;
        rc = armo_cpu_score(c, g->ids, cu, 1, armorm ? &gpos[i] : NULL, &single[i], &e);
        CHECK(rc == 0, "%s/%s: armo_cpu_score: %s", name, g->name, e.msg);
        if (rc == 0) compare_result(name, g, "single", &single[i], armorm, &w_single);
    }
    double t_single = now_s() - t1;

    /* all cases packed into one batch */
    int32_t *ids = malloc(sizeof(int32_t) * (total_tokens > 0 ? (size_t)total_tokens : 1));
    int32_t *cu = malloc(sizeof(int32_t) * (nalloc + 1));
    armo_result *packed = calloc(nalloc, sizeof *packed);
    cu[0] = 0;
    for (int i = 0; i < parsed; i++) {
        memcpy(ids + cu[i], cases[i].ids, sizeof(int32_t) * cases[i].n);
        cu[i + 1] = cu[i] + cases[i].n;
    }
    t1 = now_s();
    e.msg[0] = 0;
    rc = armo_cpu_score(c, ids, cu, parsed, armorm ? gpos : NULL, packed, &e);
    double t_packed = now_s() - t1;
    CHECK(rc == 0, "%s: packed armo_cpu_score: %s", name, e.msg);
    if (rc == 0)
        for (int i = 0; i < parsed; i++) {
            compare_result(name, &cases[i], "packed", &packed[i], armorm, &w_packed);
            /* every token's computation is independent of the other sequences in
             * the batch, so packing must reproduce the single run bit for bit */
            CHECK(memcmp(&packed[i], &single[i], sizeof(armo_result)) == 0,
                  "%s/%s: packed result differs from the single-sequence result", name,
                  cases[i].name);
        }

    /* one thread and three threads (matmul rows and attention rows split
     * differently) must give the same bits as the run above */
    for (int nt = 1; nt <= 3 && rc == 0; nt += 2) {
        armo_cpu *c2 = armo_cpu_create(&m, nt, &e);
        CHECK(c2 != NULL, "armo_cpu_create(%s, %d threads): %s", dir, nt, e.msg);
        if (!c2) break;
        armo_result *again = calloc(nalloc, sizeof *again);
        int rc2 = armo_cpu_score(c2, ids, cu, parsed, armorm ? gpos : NULL, again, &e);
        CHECK(rc2 == 0, "%s: packed armo_cpu_score with %d threads: %s", name, nt, e.msg);
        CHECK(rc2 != 0 || memcmp(again, packed, nalloc * sizeof *again) == 0,
              "%s: %d threads give different results", name, nt);
        free(again);
        armo_cpu_destroy(c2);
    }

    if (parsed > 0) check_validation(c, &m, &cases[0], armorm);

    printf("%-22s %s, %d cases, %d tokens; open+create %.3f s, single %.3f s, packed %.3f s\n",
           name, armorm ? "ArmoRM" : "seqcls", parsed, total_tokens, t_open, t_single, t_packed);
    printf("  worst error / tolerance: score %.2e  %s %.2e", w_packed.score,
           armorm ? "rewards" : "labels", w_packed.rewards);
    if (armorm)
        printf("  gating %.2e  coefficients %.2e", w_packed.gating, w_packed.coefficients);
    printf("  [single: score %.2e; head alone: score %.2e]\n", w_single.score, w_head.score);

    free(packed);
    free(cu);
    free(ids);
    free(single);
    free(gpos);
    for (int i = 0; i < parsed; i++) free_case(&cases[i]);
    free(cases);
    armo_cpu_destroy(c);
    armo_model_close(&m);
    json_decref(root);
}

int main(void) {
    glob_t gl;
    int grc = glob(ARMO_SOURCE_DIR "/tests/fixtures/*.golden.json", 0, NULL, &gl);
    size_t count = grc == 0 ? gl.gl_pathc : 0;
    CHECK(count > 0, "no golden files in %s/tests/fixtures: run tools/gen_fixtures.py "
                     "(this test must not pass without them)", ARMO_SOURCE_DIR);
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) run_model(gl.gl_pathv[i]);
    if (grc == 0) globfree(&gl);
    printf("total %.3f s\n", now_s() - t0);
    return test_finish("test_cpu_golden");
}
