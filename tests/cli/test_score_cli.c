/* test_score_cli.c — `armo score --device cpu` end to end, as a user runs it:
 * JSONL in (every record kind, bad records mixed in, a blank line), JSONL out,
 * compared with the Hugging Face golden values of the bundled fixtures
 * (tests/fixtures/NAME.golden.json, written by tools/gen_fixtures.py from
 * transformers + a PyTorch ArmoRM head).
 *
 * Text records are built from the golden cases' messages, so the chat
 * template and the tokenizer are exercised too: a wrong token anywhere moves
 * the score far beyond the 1e-4 tolerance.  Pairs and best-of-N use the three
 * golden responses to one shared prompt.  Also checked: output order and
 * count, the id echoed exactly as written, per-record errors naming line and
 * id, the exit status, the pad cut of input_ids, and --max-length /
 * --truncate left (whose expected value is the golden model scored by the
 * CPU backend on the truncated ids). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "host/engine/cpu_backend.h"
#include "host/text/positions.h"
#include "tests/util/test_util.h"
#include "weights/config.h"

#define TOL 1e-4

static char g_tmp[512];

static json_t *load_golden(const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/tests/fixtures/%s.golden.json", ARMO_SOURCE_DIR, name);
    json_error_t je;
    json_t *g = json_load_file(p, 0, &je);
    CHECK(g != NULL, "%s: %s", p, je.text);
    return g;
}

static json_t *golden_case(json_t *g, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
    }
    CHECK(0, "golden case %s missing", name);
    return NULL;
}

static const char *msg_content(json_t *c, size_t i) {
    return json_string_value(json_object_get(json_array_get(json_object_get(c, "messages"), i), "content"));
}

/* Runs armo score; returns its exit status and the output lines parsed. */
static int run_score(const char *model, const char *extra, const char *input, json_t **lines,
                     int max_lines, int *nlines) {
    char in[1024], out[1024], cmd[4096];
    snprintf(in, sizeof in, "%s/in.jsonl", g_tmp);
    snprintf(out, sizeof out, "%s/out.jsonl", g_tmp);
    FILE *f = fopen(in, "wb");
    if (!f) return -1;
    fputs(input, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s score --model %s/%s --device cpu --quiet %s < %s > %s", ARMO_EXE,
             ARMO_MODELS_DIR, model, extra, in, out);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    *nlines = 0;
    f = fopen(out, "rb");
    if (!f) return rc;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && *nlines < max_lines) {
        json_error_t je;
        lines[*nlines] = json_loads(line, 0, &je);
        CHECK(lines[*nlines] != NULL, "output line %d is not JSON: %s", *nlines + 1, line);
        (*nlines)++;
    }
    free(line);
    fclose(f);
    return rc;
}

/* score, rewards, gating, coefficients of out (an output object or a pair
 * side) against golden case c. */
static void check_result(const char *what, json_t *out, json_t *c) {
    CHECK(out != NULL && c != NULL, "%s: missing", what);
    if (!out || !c) return;
    double s = json_number_value(json_object_get(out, "score"));
    double gs = json_number_value(json_object_get(c, "score"));
    CHECK(test_close(s, gs, TOL, 1e-2), "%s: score %.8g, golden %.8g", what, s, gs);
    CHECK(json_integer_value(json_object_get(out, "tokens")) ==
              (json_int_t)json_array_size(json_object_get(c, "input_ids")),
          "%s: tokens", what);
    const char *keys[3] = {"rewards", "gating", "coefficients"};
    json_t *gr = json_object_get(c, "rewards");
    if (!gr) return; /* single-head RM */
    for (int k = 0; k < 3; k++) {
        json_t *o = json_object_get(out, keys[k]), *gv = json_object_get(c, keys[k]);
        CHECK(json_object_size(o) == 19, "%s: %s has %zu entries", what, keys[k], json_object_size(o));
        for (int j = 0; j < 19; j++) {
            const char *name = armo_objective_name(j);
            double v = json_number_value(json_object_get(o, name));
            double g = json_number_value(json_array_get(gv, (size_t)j));
            CHECK(json_object_get(o, name) && test_close(v, g, TOL, 1e-2), "%s: %s[%s] %.8g vs %.8g",
                  what, keys[k], name, v, g);
        }
    }
}

static void check_error(const char *what, json_t *out, const char *id_text, const char *needle) {
    CHECK(out && json_object_get(out, "error"), "%s: expected an error record", what);
    if (!out) return;
    const char *msg = json_string_value(json_object_get(out, "error"));
    CHECK(test_contains(msg, needle), "%s: error lacks '%s': %s", what, needle, msg ? msg : "");
    if (id_text) {
        char *id = json_dumps(json_object_get(out, "id"), JSON_ENCODE_ANY | JSON_COMPACT);
        CHECK(id && !strcmp(id, id_text), "%s: id %s, expected %s", what, id ? id : "(none)", id_text);
        free(id);
    }
}

static char *jstr(const char *s) { /* s as a JSON string literal (malloc'ed) */
    json_t *j = json_string(s);
    char *t = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    return t;
}

static void test_armorm(void) {
    json_t *g = load_golden("tiny-armorm");
    if (!g) return;
    json_t *single = golden_case(g, "single_turn"), *mts = golden_case(g, "multi_turn_system"),
           *uni = golden_case(g, "unicode"), *r0 = golden_case(g, "shared_prompt_r0"),
           *r1 = golden_case(g, "shared_prompt_r1"), *r2 = golden_case(g, "shared_prompt_r2"),
           *mid = golden_case(g, "random_pattern_mid"), *twice = golden_case(g, "random_pattern_twice"),
           *code = golden_case(g, "code");
    if (!single || !mts || !uni || !r0 || !r1 || !r2 || !mid || !twice || !code) return;
    char *m_single = json_dumps(json_object_get(single, "messages"), JSON_COMPACT);
    char *m_mts = json_dumps(json_object_get(mts, "messages"), JSON_COMPACT);
    char *m_uni = json_dumps(json_object_get(uni, "messages"), JSON_COMPACT | JSON_ENSURE_ASCII);
    char *m_code = json_dumps(json_object_get(code, "messages"), JSON_COMPACT);
    char *prompt = jstr(msg_content(r0, 0)), *a0 = jstr(msg_content(r0, 1)),
         *a1 = jstr(msg_content(r1, 1)), *a2 = jstr(msg_content(r2, 1)),
         *su = jstr(msg_content(single, 0)), *sa = jstr(msg_content(single, 1));
    char *ids_mid = json_dumps(json_object_get(mid, "input_ids"), JSON_COMPACT);
    char *ids_twice = json_dumps(json_object_get(twice, "input_ids"), JSON_COMPACT);
    ids_twice[strlen(ids_twice) - 1] = 0; /* drop ']' to append pads */
    size_t cap = 1 << 16;
    char *in = malloc(cap);
    snprintf(in, cap,
             "{\"id\":\"msg-single\",\"messages\":%s}\n"                        /* 1 */
             "{\"messages\":%s,\"id\":7,\"meta\":{\"x\":1}}\n"                  /* 2 */
             "{\"id\":\"pr\",\"prompt\":%s,\"response\":%s}\n"                  /* 3 */
             "{\"id\":[1,\"two\"],\"prompt\":%s,\"chosen\":%s,\"rejected\":%s}\n" /* 4 */
             "{\"id\":\"bon\",\"prompt\":%s,\"responses\":[%s,%s,%s]}\n"        /* 5 */
             "\n"                                                              /* blank: no output */
             "{\"id\":\"ids\",\"input_ids\":%s}\n"                              /* 6 */
             "{\"id\":\"ids-pad\",\"input_ids\":%s,128256,5,6]}\n"              /* 7 */
             "{\"id\":\"unicode\",\"messages\":%s}\n"                           /* 8 */
             "{\"id\":\"broken\",\"messages\":[\n"                              /* 9 */
             "{\"id\":\"no-assistant\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n" /* 10 */
             "{\"id\":\"bad-role\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}\n" /* 11 */
             "{\"id\":\"surrogate\",\"prompt\":\"\\ud800\",\"response\":\"x\"}\n" /* 12 */
             "{\"id\":\"utf8\",\"prompt\":\"\xff\xfe\",\"response\":\"x\"}\n"  /* 13 */
             "{\"id\":\"oov\",\"input_ids\":[1,2,999999]}\n"                    /* 14 */
             "{\"id\":\"nothing\"}\n"                                          /* 15 */
             "{\"id\":\"code\",\"messages\":%s}\n",                             /* 16 */
             m_single, m_mts, su, sa, prompt, a0, a1, prompt, a0, a1, a2, ids_mid, ids_twice, m_uni,
             m_code);
    json_t *out[32] = {0};
    int n = 0;
    int rc = run_score("tiny-armorm", "", in, out, 32, &n);
    CHECK(rc == 1, "exit status %d, expected 1 (some records failed)", rc);
    CHECK(n == 16, "%d output lines for 16 records", n);
    if (n == 16) {
        check_result("messages", out[0], single);
        CHECK(!strcmp(json_string_value(json_object_get(out[0], "id")), "msg-single"), "id echo");
        check_result("messages, id after", out[1], mts);
        CHECK(json_integer_value(json_object_get(out[1], "id")) == 7, "numeric id echo");
        check_result("prompt+response", out[2], single);
        /* pair */
        json_t *p = out[3];
        check_result("pair chosen", json_object_get(p, "chosen"), r0);
        check_result("pair rejected", json_object_get(p, "rejected"), r1);
        double s0 = json_number_value(json_object_get(r0, "score")),
               s1 = json_number_value(json_object_get(r1, "score"));
        /* a difference of two scores: tolerance relative to the scores themselves */
        CHECK(fabs(json_number_value(json_object_get(p, "margin")) - (s0 - s1)) <=
                  TOL * (fabs(s0) + fabs(s1)),
              "margin");
        CHECK(!strcmp(json_string_value(json_object_get(p, "preferred")),
                      s0 >= s1 ? "chosen" : "rejected"),
              "preferred");
        /* explanation: first entry = the objective with the largest |c·r| difference */
        json_t *gr0 = json_object_get(r0, "rewards"), *gc0 = json_object_get(r0, "coefficients"),
               *gr1 = json_object_get(r1, "rewards"), *gc1 = json_object_get(r1, "coefficients");
        int best = 0;
        double bestv = -1, sum = 0;
        for (int j = 0; j < 19; j++) {
            double d = json_number_value(json_array_get(gc0, j)) * json_number_value(json_array_get(gr0, j)) -
                       json_number_value(json_array_get(gc1, j)) * json_number_value(json_array_get(gr1, j));
            sum += d;
            if (fabs(d) > bestv) bestv = fabs(d), best = j;
        }
        CHECK(test_close(sum, s0 - s1, 1e-3, 1e-2), "golden margin decomposes");
        json_t *ex = json_object_get(p, "explanation");
        CHECK(json_array_size(ex) == 3, "explanation lists 3 objectives");
        CHECK(!strcmp(json_string_value(json_object_get(json_array_get(ex, 0), "objective")),
                      armo_objective_name(best)),
              "explanation leads with %s", armo_objective_name(best));
        char *pid = json_dumps(json_object_get(p, "id"), JSON_COMPACT);
        CHECK(pid && !strcmp(pid, "[1,\"two\"]"), "array id echoed: %s", pid);
        free(pid);
        /* best-of-N */
        json_t *b = out[4], *resp = json_object_get(b, "responses");
        json_t *gcase[3] = {r0, r1, r2};
        CHECK(json_array_size(resp) == 3, "best-of-N responses");
        for (int i = 0; i < 3 && i < (int)json_array_size(resp); i++)
            check_result("best-of-N", json_array_get(resp, i), gcase[i]);
        double sc[3];
        for (int i = 0; i < 3; i++) sc[i] = json_number_value(json_object_get(gcase[i], "score"));
        int top = 0;
        for (int i = 1; i < 3; i++)
            if (sc[i] > sc[top]) top = i;
        CHECK(json_integer_value(json_object_get(b, "best")) == top, "best-of-N best");
        json_t *rk = json_object_get(b, "ranking");
        CHECK(json_array_size(rk) == 3 && json_integer_value(json_array_get(rk, 0)) == top, "ranking");
        for (int i = 0; i + 1 < 3 && json_array_size(rk) == 3; i++)
            CHECK(sc[json_integer_value(json_array_get(rk, i))] >=
                      sc[json_integer_value(json_array_get(rk, i + 1))],
                  "ranking is by score");
        check_result("input_ids", out[5], mid);
        check_result("input_ids cut at pad", out[6], twice);
        check_result("unicode messages", out[7], uni);
        check_error("invalid JSON", out[8], NULL, "line 10");
        check_error("no assistant turn", out[9], "\"no-assistant\"", "Token pattern not found");
        check_error("bad role", out[10], "\"bad-role\"", "robot");
        check_error("lone surrogate", out[11], NULL, "line 13");
        check_error("invalid UTF-8", out[12], NULL, "line 14");
        check_error("id outside the vocabulary", out[13], "\"oov\"", "999999");
        check_error("nothing to score", out[14], "\"nothing\"", "line 16");
        check_result("code messages", out[15], code);
    }
    for (int i = 0; i < n; i++) json_decref(out[i]);
    free(in);
    free(m_single), free(m_mts), free(m_uni), free(m_code), free(prompt), free(a0), free(a1), free(a2);
    free(su), free(sa), free(ids_mid), free(ids_twice);
    json_decref(g);
}

/* --max-length and --truncate left on the 619-token case. */
static void test_truncate(void) {
    json_t *g = load_golden("tiny-armorm");
    if (!g) return;
    json_t *lc = golden_case(g, "long_600");
    if (!lc) return;
    char *m = json_dumps(json_object_get(lc, "messages"), JSON_COMPACT);
    char in[65536];
    snprintf(in, sizeof in, "{\"id\":\"long\",\"messages\":%s}\n", m);
    json_t *out[4] = {0};
    int n = 0;
    int rc = run_score("tiny-armorm", "--max-length 400", in, out, 4, &n);
    CHECK(rc == 1 && n == 1, "over-long record without --truncate: rc %d, %d lines", rc, n);
    if (n == 1) check_error("too long", out[0], "\"long\"", "--max-length 400");
    if (n == 1) json_decref(out[0]);

    rc = run_score("tiny-armorm", "--max-length 400 --truncate left", in, out, 4, &n);
    CHECK(rc == 0 && n == 1, "--truncate left: rc %d, %d lines", rc, n);
    /* expected: BOS + the last 399 tokens, scored by the CPU backend */
    json_t *ids = json_object_get(lc, "input_ids");
    int len = (int)json_array_size(ids), cut = len - 400;
    int32_t t[400];
    t[0] = (int32_t)json_integer_value(json_array_get(ids, 0));
    for (int i = 1; i < 400; i++) t[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)(i + cut)));
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny-armorm", ARMO_MODELS_DIR);
    armo_model model;
    armo_err e;
    if (n == 1 && armo_model_open(dir, &model, &e) == 0) {
        armo_cpu *cpu = armo_cpu_create(&model, 1, &e);
        int32_t cu[2] = {0, 400};
        int32_t gpos = armo_find_gating_pos(t, 400, ARMO_LLAMA3_GATING_PATTERN, 5);
        CHECK(gpos == json_integer_value(json_object_get(lc, "gating_pos")) - cut,
              "gating position moves with the cut");
        armo_result r;
        if (cpu && armo_cpu_score(cpu, t, cu, 1, &gpos, &r, &e) == 0) {
            double s = json_number_value(json_object_get(out[0], "score"));
            CHECK(test_close(s, r.score, TOL, 1e-2), "truncated score %.8g vs %.8g", s, r.score);
            CHECK(json_integer_value(json_object_get(out[0], "tokens")) == 400, "truncated tokens");
        } else {
            CHECK(0, "cpu backend: %s", e.msg);
        }
        armo_cpu_destroy(cpu);
        armo_model_close(&model);
    }
    if (n == 1) json_decref(out[0]);

    /* the final turn alone is longer than the limit: a clear error */
    rc = run_score("tiny-armorm", "--max-length 100 --truncate left", in, out, 4, &n);
    CHECK(rc == 1 && n == 1, "impossible truncation: rc %d", rc);
    if (n == 1) check_error("cannot truncate", out[0], "\"long\"", "cannot truncate");
    if (n == 1) json_decref(out[0]);
    free(m);
    json_decref(g);
}

static void test_seqcls(void) {
    json_t *g = load_golden("tiny-rm-llama3");
    if (!g) return;
    json_t *a = golden_case(g, "system_prompt"), *r0 = golden_case(g, "shared_prompt_r0"),
           *r2 = golden_case(g, "shared_prompt_r2");
    if (!a || !r0 || !r2) return;
    char *m = json_dumps(json_object_get(a, "messages"), JSON_COMPACT);
    char *prompt = jstr(msg_content(r0, 0)), *a0 = jstr(msg_content(r0, 1)),
         *a2 = jstr(msg_content(r2, 1));
    char in[65536];
    snprintf(in, sizeof in,
             "{\"id\":1,\"messages\":%s}\n{\"id\":2,\"prompt\":%s,\"chosen\":%s,\"rejected\":%s}\n",
             m, prompt, a2, a0);
    json_t *out[4] = {0};
    int n = 0;
    int rc = run_score("tiny-rm-llama3", "", in, out, 4, &n);
    CHECK(rc == 0 && n == 2, "seqcls: rc %d, %d lines", rc, n);
    if (n == 2) {
        check_result("seqcls messages", out[0], a);
        CHECK(!json_object_get(out[0], "rewards"), "a single-head RM has no rewards");
        check_result("seqcls chosen", json_object_get(out[1], "chosen"), r2);
        check_result("seqcls rejected", json_object_get(out[1], "rejected"), r0);
        double s2 = json_number_value(json_object_get(r2, "score")),
               s0 = json_number_value(json_object_get(r0, "score"));
        CHECK(fabs(json_number_value(json_object_get(out[1], "margin")) - (s2 - s0)) <=
                  TOL * (fabs(s2) + fabs(s0)),
              "seqcls margin");
    }
    for (int i = 0; i < n; i++) json_decref(out[i]);
    free(m), free(prompt), free(a0), free(a2);
    json_decref(g);
}

static void test_usage(void) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s score --device cpu < /dev/null > /dev/null 2>&1", ARMO_EXE);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "missing --model: exit 2");
    snprintf(cmd, sizeof cmd, "%s score --model %s/nonexistent < /dev/null > /dev/null 2>&1",
             ARMO_EXE, ARMO_MODELS_DIR);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "missing model dir: exit 2");
    snprintf(cmd, sizeof cmd, "%s score --help | grep -q -- --truncate", ARMO_EXE);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "--help documents --truncate");
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_score_cli", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    test_armorm();
    test_truncate();
    test_seqcls();
    test_usage();
    return test_finish("test_score_cli");
}
