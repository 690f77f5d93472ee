/* test_report_aggregate.c — the aggregation of `armo report` (host/report)
 * on a small scores file whose every number was worked out by hand (three
 * objectives a, b, c; scores = Σ coefficient × reward exactly): counts,
 * tokens, score quartiles, errors grouped by message, preference rate per
 * subset, RewardBench's weighted sections, objective means and shares,
 * dominant objectives, best-of-N winner profile, the selections and the
 * detail cap; then the refusals (input that does not match, a line that is
 * not JSON) and the escaping of text for HTML and of JSON for <script>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/report/report_data.h"
#include "host/report/report_html.h"
#include "host/report/report_jscan.h"
#include "tests/util/test_util.h"

#define V3(a, b, c) "{\"a\":" #a ",\"b\":" #b ",\"c\":" #c "}"
#define FIELDS(score, r, g, k, tok) \
    "\"score\":" #score ",\"rewards\":" r ",\"gating\":" g ",\"coefficients\":" k \
    ",\"tokens\":" #tok
#define RESP(score, r, g, k, tok) "{" FIELDS(score, r, g, k, tok) "}"

static const char *k_scores[] = {
    /* L1 */ "{\"id\":\"s1\"," FIELDS(1.0, V3(1, 2, 3), V3(0.5, 0.25, 0.25), V3(0.5, 0.25, 0), 10)
        "}",
    /* L2 */
    "{\"id\":\"p1\",\"chosen\":" RESP(2, V3(2, 0, 0), V3(0.2, 0.6, 0.2), V3(1, 0, 0), 5)
        ",\"rejected\":" RESP(-1, V3(-1, 0, 0), V3(0.2, 0.6, 0.2), V3(1, 0, 0), 7)
        ",\"margin\":3,\"preferred\":\"chosen\"}",
    /* L3 */
    "{\"id\":\"p2\",\"chosen\":" RESP(0.5, V3(0.5, 0, 0), V3(0.1, 0.1, 0.8), V3(1, 0, 0), 4)
        ",\"rejected\":" RESP(1.5, V3(1.5, 0, 0), V3(0.1, 0.1, 0.8), V3(1, 0, 0), 6)
        ",\"margin\":-1,\"preferred\":\"rejected\"}",
    /* L4-L6 */
    "{\"id\":\"e1\",\"error\":\"line 4 (id \\\"e1\\\"): Token pattern not found\"}",
    "{\"id\":\"e2\",\"error\":\"line 5: Token pattern not found\"}",
    "{\"id\":\"e3\",\"error\":\"other failure\"}",
    /* L7 */
    "{\"id\":\"b1\",\"responses\":[" RESP(0, V3(0, 0, 0), V3(0.9, 0.05, 0.05), V3(1, 0, 0), 1)
        "," RESP(3, V3(3, 0, 0), V3(0.9, 0.05, 0.05), V3(1, 0, 0), 2)
        "," RESP(1, V3(1, 0, 0), V3(0.9, 0.05, 0.05), V3(1, 0, 0), 3)
        "],\"ranking\":[1,2,0],\"best\":1}",
    /* L8, L9 */
    "   ",
    "{\"run\":{\"model\":\"tiny\",\"device\":\"cpu\"}}",
    /* L10 */
    "{\"id\":\"p3\",\"chosen\":" RESP(1, V3(1, 0, 0), V3(0.4, 0.3, 0.3), V3(1, 0, 0), 1)
        ",\"rejected\":" RESP(0, V3(0, 0, 0), V3(0.4, 0.3, 0.3), V3(1, 0, 0), 1)
        ",\"margin\":1,\"preferred\":\"chosen\"}",
};

static const char *k_input[] = {
    "{\"id\":\"s1\",\"prompt\":\"x\",\"response\":\"y\"}",
    "{\"id\":\"p1\",\"prompt\":\"q\",\"chosen\":\"c\",\"rejected\":\"r\",\"subset\":\"alpacaeval-easy\"}",
    "{\"id\":\"p2\",\"prompt\":\"q\",\"chosen\":\"c\",\"rejected\":\"r\",\"subset\":\"math-prm\"}",
    "{\"id\":\"e1\"}",
    "",
    "{\"id\":\"e2\"}",
    "{\"id\":\"e3\"}",
    "{\"id\":\"b1\",\"prompt\":\"q\",\"responses\":[\"r0\",\"r1\",\"r2\"]}",
    "{\"id\":\"p3\",\"prompt\":\"q\",\"chosen\":\"c\",\"rejected\":\"r\",\"subset\":\"hep-python\"}",
};

static void write_lines(const char *path, const char *const *lines, size_t n) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    for (size_t i = 0; i < n; i++) fprintf(f, "%s\n", lines[i]);
    fclose(f);
}

#define NEAR(x, want) CHECK(test_close((x), (want), 1e-9, 1e-9), "%s = %.9g, want %.9g", #x, (double)(x), (double)(want))

static void check_counts(const armo_report *r) {
    CHECK(r->lines == 10 && r->records == 8 && r->singles == 1 && r->pairs == 3 && r->bons == 1 &&
              r->errors == 3 && r->meta_lines == 1,
          "lines %lld records %lld singles %lld pairs %lld bons %lld errors %lld meta %lld",
          (long long)r->lines, (long long)r->records, (long long)r->singles, (long long)r->pairs,
          (long long)r->bons, (long long)r->errors, (long long)r->meta_lines);
    CHECK(r->responses == 10 && r->tokens == 40 && r->tokens_max == 10,
          "responses %lld tokens %lld max %lld", (long long)r->responses, (long long)r->tokens,
          (long long)r->tokens_max);
    /* scores -1 0 0 0.5 1 1 1 1.5 2 3 */
    NEAR(r->score_box.mean, 0.9);
    NEAR(r->score_box.median, 1.0);
    NEAR(r->score_box.q1, 0.125); /* position 2.25: 0 + 0.25 * 0.5 */
    NEAR(r->score_box.min, -1);
    NEAR(r->score_box.max, 3);
    int64_t total = 0;
    for (int i = 0; i < r->score_hist.nbins; i++) total += r->score_hist.counts[i];
    CHECK(total == 10 && r->score_hist.counts[r->score_hist.nbins - 1] == 1,
          "score histogram holds %lld (last bin %lld)", (long long)total,
          (long long)r->score_hist.counts[r->score_hist.nbins - 1]);
    CHECK(r->n_errs == 2 && !strcmp(r->errs[0].msg, "Token pattern not found") &&
              r->errs[0].count == 2 && r->errs[0].first_line == 4 &&
              !strcmp(r->errs[1].msg, "other failure") && r->errs[1].count == 1,
          "errors by message: %d groups, first '%s' x%lld", r->n_errs,
          r->n_errs ? r->errs[0].msg : "", r->n_errs ? (long long)r->errs[0].count : 0LL);
    CHECK(r->run_meta && !strcmp(json_string_value(json_object_get(r->run_meta, "model")), "tiny"),
          "run metadata not read");
}

static void check_pairs(const armo_report *r) {
    CHECK(r->pairs_preferred == 2, "preferred %lld, want 2", (long long)r->pairs_preferred);
    NEAR(r->margin_box.mean, 1.0);
    NEAR(r->margin_box.median, 1.0);
    CHECK(r->n_groups == 3 && !strcmp(r->groups[0].name, "alpacaeval-easy") &&
              r->groups[0].preferred == 1 && !strcmp(r->groups[1].name, "hep-python") &&
              r->groups[1].preferred == 1 && !strcmp(r->groups[2].name, "math-prm") &&
              r->groups[2].preferred == 0 && r->groups[2].rb_section == 3,
          "groups: %d", r->n_groups);
    CHECK(r->rb_present, "RewardBench subsets not recognised");
    NEAR(r->rb_section[0], 1.0);                        /* Chat: alpacaeval-easy 1/1 */
    NEAR(r->rb_section[3], 164.0 / (164.0 + 984.0));    /* Reasoning: hep 1/1, math 0/1 */
    CHECK(r->rb_section[1] < 0 && r->rb_section[2] < 0, "sections without subsets must be absent");
    NEAR(r->rb_score, (1.0 + 164.0 / 1148.0) / 2);
    CHECK(r->n_smallest == 3 && r->recs[r->smallest[0]].line == 3 &&
              r->recs[r->smallest[1]].line == 10 && r->recs[r->smallest[2]].line == 2,
          "smallest margins in the wrong order");
}

static void check_objectives(const armo_report *r) {
    CHECK(r->n_obj == 3 && !strcmp(r->obj_names[2], "c"), "objectives: %d", r->n_obj);
    NEAR(r->mean_gate[0], 0.46);   /* (0.5 + 2*0.2 + 2*0.1 + 2*0.4 + 3*0.9) / 10 */
    NEAR(r->mean_coef[0], 0.95);   /* (0.5 + 9 * 1) / 10 */
    NEAR(r->mean_reward[1], 0.2);  /* only s1 has b = 2 */
    NEAR(r->contrib_sum[0], 8.5);  /* 0.5 + (2 - 1) + (0.5 + 1.5) + (1 + 0) + (0 + 3 + 1) */
    NEAR(r->contrib_sum[1], 0.5);
    NEAR(r->contrib_share[0], 8.5 / 9);
    NEAR(r->contrib_share[2], 0);
    CHECK(r->dominant_count[0] == 3 && r->dominant_count[1] == 1 && r->dominant_count[2] == 1 &&
              r->gated_prompts == 5, "dominant objectives %lld %lld %lld",
          (long long)r->dominant_count[0], (long long)r->dominant_count[1],
          (long long)r->dominant_count[2]);
    NEAR(r->spread_box.mean, 3);
    NEAR(r->win_reward[0], 3);
    NEAR(r->other_reward[0], 0.5);
    int64_t want_hm[5] = {6, 0, 7, 1, 2}; /* a: 0.9, 0.5, 0.4; then b; then c */
    CHECK(r->n_heatmap == 5, "heatmap rows %d", r->n_heatmap);
    for (int i = 0; i < r->n_heatmap && i < 5; i++)
        CHECK(r->heatmap[i] == want_hm[i], "heatmap row %d is record %lld, want %lld", i,
              (long long)r->heatmap[i], (long long)want_hm[i]);
    CHECK(r->n_highest == 5 && r->recs[r->highest[0]].line == 7 && r->n_lowest == 5 &&
              r->recs[r->lowest[0]].line == 3, "highest / lowest records");
}

static void check_details(const armo_report *r) {
    CHECK(json_array_size(r->details) == 8 && r->detail_cut == 0, "details %zu cut %lld",
          json_array_size(r->details), (long long)r->detail_cut);
    json_t *p1 = json_array_get(r->details, 1);
    json_t *terms = json_object_get(p1, "terms");
    NEAR(json_number_value(json_array_get(terms, 0)), 3.0); /* 1*2 - 1*(-1) */
    NEAR(json_number_value(json_array_get(terms, 1)), 0.0);
    json_t *s1 = json_array_get(r->details, 0);
    json_t *conv = json_object_get(s1, "conv");
    CHECK(!strcmp(json_string_value(json_array_get(json_array_get(conv, 0), 1)), "x") &&
              !strcmp(json_string_value(json_array_get(json_object_get(s1, "texts"), 0)), "y"),
          "the conversation of s1 was not read from the input");
    json_t *g = json_array_get(r->heatmap_gates, 0); /* b1's gate */
    NEAR(json_number_value(json_array_get(g, 0)), 0.9);
}

static void check_refusals(const char *scores, const char *dir) {
    char bad_in[512], bad_json[512];
    snprintf(bad_in, sizeof bad_in, "%s/report_agg_badin.jsonl", dir);
    snprintf(bad_json, sizeof bad_json, "%s/report_agg_badjson.jsonl", dir);
    const char *wrong[] = {"{\"id\":\"s1\"}", "{\"id\":\"not-p1\"}"};
    write_lines(bad_in, wrong, 2);
    const char *broken[] = {k_scores[0], "{\"id\":\"x\",\"score\":"};
    write_lines(bad_json, broken, 2);
    armo_report_opts o;
    armo_report_opts_default(&o);
    armo_report *r = NULL;
    armo_err e;
    o.scores_path = scores;
    o.input_path = bad_in;
    CHECK(armo_report_build(&o, &r, &e) == -1 && test_contains(e.msg, "line 2") &&
              test_contains(e.msg, "not-p1"), "a mismatched input: %s", e.msg);
    o.scores_path = bad_json;
    o.input_path = NULL;
    CHECK(armo_report_build(&o, &r, &e) == -1 && test_contains(e.msg, "line 2") &&
              test_contains(e.msg, "report_agg_badjson.jsonl"), "a broken line: %s", e.msg);
    remove(bad_in);
    remove(bad_json);
}

/* A text over the 4000-byte cap is cut on a UTF-8 boundary, with a note. */
static void check_text_cap(const char *dir) {
    char sp[512], ip[512];
    snprintf(sp, sizeof sp, "%s/report_agg_long.jsonl", dir);
    snprintf(ip, sizeof ip, "%s/report_agg_long_in.jsonl", dir);
    const char *s[] = {"{\"id\":\"L\"," FIELDS(1.0, V3(1, 2, 3), V3(0.5, 0.25, 0.25),
                                                V3(0.5, 0.25, 0), 10) "}"};
    write_lines(sp, s, 1);
    size_t n = 2501; /* "x" + 2501 x "é" (2 bytes): 5003 bytes; byte 4000 is inside an "é" */
    char *line = malloc(64 + 2 * n);
    if (!line) return;
    char *q = line + sprintf(line, "{\"id\":\"L\",\"prompt\":\"p\",\"response\":\"x");
    for (size_t i = 0; i < n; i++) q += sprintf(q, "\xC3\xA9");
    strcpy(q, "\"}");
    const char *in[] = {line};
    write_lines(ip, in, 1);
    free(line);
    armo_report_opts o;
    armo_report_opts_default(&o);
    o.scores_path = sp;
    o.input_path = ip;
    armo_report *r = NULL;
    armo_err e;
    if (armo_report_build(&o, &r, &e)) {
        CHECK(0, "long text: %s", e.msg);
    } else {
        const char *t = json_string_value(json_array_get(
            json_object_get(json_array_get(r->details, 0), "texts"), 0));
        CHECK(r->text_cut == 1 && t && strlen(t) > 3990 && strlen(t) < 4100 &&
                  test_contains(t, "1004 more bytes not shown"),
              "long text: cut %lld, %zu bytes: ...%s", (long long)r->text_cut, t ? strlen(t) : 0,
              t && strlen(t) > 60 ? t + strlen(t) - 60 : "");
        armo_report_free(r);
    }
    remove(sp);
    remove(ip);
}

/* The token scanner of the first pass accepts exactly what jansson
 * accepts, and decodes strings as jansson does. */
static void check_jscan(void) {
    static const char *cases[] = {
        "{}", "[]", "{\"a\":1}", "{\"a\":1,}", "{\"a\" 1}", "[1,2", "01", "-", "1.", "1e",
        "1e+5", "-0.5E-3", "[-0]", "\"\\x\"", "\"\\u12G4\"", "\"abc", "{\"a\":tru}",
        "{\"a\":true} x", "  {\"a\":null}  \n", "[\"\\ud83d\\ude00\"]", "\"a\tb\"",
        "{\"a\":[1,{\"b\":[]}],\"c\":\"d\"}", "[1 2]", "{,}", "[,1]", "{\"a\":1 \"b\":2}",
        "nul", "true", "[true,false,null]", "{\"a\":-}", "+1", ".5", "[1.5e3,-2E-2]", "",
    };
    armo_jscan j = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json_loadb(cases[i], strlen(cases[i]), JSON_DECODE_ANY, NULL);
        int ours = armo_jscan_parse(&j, cases[i], strlen(cases[i])) == 0;
        CHECK(ours == (v != NULL), "scanner %s '%s', jansson %s it", ours ? "accepts" : "refuses",
              cases[i], v ? "accepts" : "refuses");
        json_decref(v);
    }
    const char *s = "{\"k\\u0041\":\"a\\u00e9\\ud83d\\ude00\\n\\\"/\",\"n\":[1,2.5,-3e2],\"k\":7,\"k\":8}";
    json_t *v = json_loadb(s, strlen(s), 0, NULL);
    char buf[64] = "";
    CHECK(armo_jscan_parse(&j, s, strlen(s)) == 0 &&
              armo_jscan_string(&j, armo_jscan_get(&j, 0, "kA"), buf, sizeof buf) == 0 &&
              !strcmp(buf, json_string_value(json_object_get(v, "kA"))),
          "decoded '%s'", buf);
    int n = armo_jscan_get(&j, 0, "n");
    CHECK(armo_jscan_size(&j, n) == 3 && armo_jscan_number(&j, armo_jscan_child(&j, n, 2)) == -300 &&
              armo_jscan_integer(&j, armo_jscan_get(&j, 0, "k")) == 8,
          "array or duplicate key (the last counts, as in jansson)");
    json_decref(v);
    armo_jscan_free(&j);
}

static void check_escaping(void) {
    char *h = armo_html_escape("<a href=\"x\">&'");
    CHECK(h && !strcmp(h, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"), "html escape: %s", h);
    free(h);
    char *j = armo_json_for_script("{\"s\":\"</script><!--\xE2\x80\xA8&\xE2\x80\xA9\xC3\xA9\"}");
    CHECK(j && !strcmp(j, "{\"s\":\"\\u003c/script\\u003e\\u003c!--\\u2028\\u0026\\u2029\xC3\xA9\"}"),
          "script json escape: %s", j);
    free(j);
}

int main(void) {
    char scores[512], input[512];
    snprintf(scores, sizeof scores, "%s/report_agg_scores.jsonl", ARMO_BINARY_DIR);
    snprintf(input, sizeof input, "%s/report_agg_input.jsonl", ARMO_BINARY_DIR);
    write_lines(scores, k_scores, sizeof k_scores / sizeof k_scores[0]);
    write_lines(input, k_input, sizeof k_input / sizeof k_input[0]);
    armo_report_opts o;
    armo_report_opts_default(&o);
    o.scores_path = scores;
    o.input_path = input;
    armo_report *r = NULL;
    armo_err e;
    int rc = armo_report_build(&o, &r, &e);
    CHECK(rc == 0, "armo_report_build: %s", e.msg);
    if (rc == 0) {
        check_counts(r);
        check_pairs(r);
        check_objectives(r);
        check_details(r);
        armo_report_free(r);
    }
    /* --max-detail 0: only the listed records (every scored one here) */
    o.max_detail = 0;
    if (armo_report_build(&o, &r, &e) == 0) {
        CHECK(json_array_size(r->details) == 5 && r->detail_cut == 3, "capped: %zu kept, %lld cut",
              json_array_size(r->details), (long long)r->detail_cut);
        armo_report_free(r);
    } else {
        CHECK(0, "armo_report_build (capped): %s", e.msg);
    }
    /* --group-by: a field the records lack groups nothing; "id" groups by id */
    o.max_detail = 500;
    o.group_by = "no-such-field";
    if (armo_report_build(&o, &r, &e) == 0) {
        CHECK(r->n_groups == 0 && !r->rb_present && r->pairs_preferred == 2,
              "--group-by no-such-field: %d groups", r->n_groups);
        armo_report_free(r);
    }
    o.group_by = "id";
    if (armo_report_build(&o, &r, &e) == 0) {
        CHECK(r->n_groups == 3 && !strcmp(r->groups[0].name, "p1") && r->groups[0].preferred == 1 &&
                  !strcmp(r->groups[1].name, "p2") && r->groups[1].preferred == 0,
              "--group-by id: %d groups", r->n_groups);
        armo_report_free(r);
    }
    check_refusals(scores, ARMO_BINARY_DIR);
    check_escaping();
    check_jscan();
    check_text_cap(ARMO_BINARY_DIR);
    remove(scores);
    remove(input);
    return test_finish("test_report_aggregate");
}
