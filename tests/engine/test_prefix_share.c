/* test_prefix_share.c — prompt-prefix sharing (host/engine/prefix_share.h) on the
 * CPU backend.
 *
 * 1. The expanded layout on a hand-worked example, and its rule checks.
 * 2. The golden "shared_prompt_r0..r2" cases of the bundled fixtures (three
 *    responses to one prompt, tokenized by Hugging Face) scored as one
 *    prefix + three continuations, next to an unrelated standalone sequence
 *    in the same batch: every result must equal unshared scoring (1e-6; the
 *    arithmetic per row is the same) and the Hugging Face golden (1e-4), for
 *    the ArmoRM and the single-head fixture, the gating row lying inside the
 *    shared prefix. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_backend.h"
#include "host/engine/prefix_share.h"
#include "host/text/positions.h"
#include "tests/util/test_util.h"

static void test_layout(void) {
    /* segments: 0 = prefix [0,3), 1 = continuation of 0 [3,5), 2 = standalone [5,6),
     * 3 = continuation of 0 [6,9) */
    int32_t cu[5] = {0, 3, 5, 6, 9};
    int32_t pre[4] = {-1, 0, -1, 0};
    armo_expansion x;
    armo_err e;
    CHECK(armo_expansion_build(&x, cu, 4, pre, &e) == 0, "%s", e.msg);
    CHECK(!x.identity && x.n_unique == 9, "unique rows");
    CHECK(x.nseq_exp == 3 && x.n_exp == 5 + 1 + 6, "expanded: %d seqs, %d rows", x.nseq_exp, x.n_exp);
    const int32_t want_rows[12] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 6, 7, 8};
    const int32_t want_cu[4] = {0, 5, 6, 12};
    for (int i = 0; i < 12; i++) CHECK(x.exp_rows[i] == want_rows[i], "exp_rows[%d]", i);
    for (int i = 0; i < 4; i++) CHECK(x.cu_exp[i] == want_cu[i], "cu_exp[%d]", i);
    const int32_t want_back[9] = {0, 1, 2, 3, 4, 5, 9, 10, 11};
    const int32_t want_pos[9] = {0, 1, 2, 3, 4, 0, 3, 4, 5};
    for (int i = 0; i < 9; i++) {
        CHECK(x.back_rows[i] == want_back[i], "back_rows[%d] = %d", i, x.back_rows[i]);
        CHECK(x.pos[i] == want_pos[i], "pos[%d] = %d", i, x.pos[i]);
    }
    CHECK(x.is_prefix[0] && !x.is_prefix[1] && !x.is_prefix[2] && !x.is_prefix[3], "is_prefix");
    CHECK(x.full_len[1] == 5 && x.full_len[3] == 6 && x.full_len[2] == 1, "full lengths");
    CHECK(x.max_len_exp == 6, "max expanded length");
    CHECK(armo_expansion_row(cu, pre, 3, 1) == 1 && armo_expansion_row(cu, pre, 3, 4) == 7,
          "row lookup");
    armo_expansion_free(&x);

    CHECK(armo_expansion_build(&x, cu, 4, NULL, &e) == 0 && x.identity && x.n_exp == 9,
          "no prefixes: identity");
    armo_expansion_free(&x);
    int32_t bad1[4] = {-1, 2, -1, -1}; /* a later segment as prefix */
    CHECK(armo_expansion_build(&x, cu, 4, bad1, &e) == -1 && test_contains(e.msg, "segment 1"),
          "later prefix refused: %s", e.msg);
    int32_t bad2[4] = {-1, 0, 1, -1}; /* two levels */
    CHECK(armo_expansion_build(&x, cu, 4, bad2, &e) == -1 && test_contains(e.msg, "segment 2"),
          "nested prefix refused: %s", e.msg);
}

static json_t *find_case(json_t *g, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
    }
    return NULL;
}

static int load_ids(json_t *c, int32_t *out, int max) {
    json_t *a = json_object_get(c, "input_ids");
    int n = (int)json_array_size(a);
    for (int i = 0; i < n && i < max; i++) out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

static void close_results(const char *what, const armo_result *a, const armo_result *b, double tol) {
    CHECK(test_close(a->score, b->score, tol, 1e-2), "%s: score %.9g vs %.9g", what, a->score,
          b->score);
    CHECK(a->n_tokens == b->n_tokens, "%s: tokens %d vs %d", what, a->n_tokens, b->n_tokens);
    for (int j = 0; j < b->n_objectives; j++)
        CHECK(test_close(a->rewards[j], b->rewards[j], tol, 1e-2) &&
                  test_close(a->gating[j], b->gating[j], tol, 1e-2) &&
                  test_close(a->coefficients[j], b->coefficients[j], tol, 1e-2),
              "%s: objective %d", what, j);
}

static void test_model(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s.golden.json", ARMO_SOURCE_DIR, name);
    json_error_t je;
    json_t *g = json_load_file(path, 0, &je);
    CHECK(g != NULL, "%s: %s", path, je.text);
    if (!g) return;
    snprintf(path, sizeof path, "%s/%s", ARMO_MODELS_DIR, name);
    armo_model m;
    armo_err e;
    if (armo_model_open(path, &m, &e)) {
        CHECK(0, "%s", e.msg);
        json_decref(g);
        return;
    }
    armo_cpu *cpu = armo_cpu_create(&m, 2, &e);
    CHECK(cpu != NULL, "%s", e.msg);
    const char *names[4] = {"shared_prompt_r0", "shared_prompt_r1", "shared_prompt_r2", "code"};
    json_t *cs[4];
    int32_t ids[4][1024];
    int len[4];
    for (int i = 0; i < 4; i++) {
        cs[i] = find_case(g, names[i]);
        CHECK(cs[i] != NULL, "golden case %s", names[i]);
        if (!cs[i]) goto out;
        len[i] = load_ids(cs[i], ids[i], 1024);
    }
    /* the common prefix of the three responses, clipped as the scheduler does */
    int P = len[0] - 1;
    for (int j = 1; j < 3; j++) {
        int i = 0;
        while (i < P && i < len[j] - 1 && ids[j][i] == ids[0][i]) i++;
        P = i;
    }
    int armorm = m.cfg.arch == ARMO_ARCH_ARMORM;
    int32_t gp[4];
    for (int i = 0; i < 4; i++)
        gp[i] = armorm ? armo_find_gating_pos(ids[i], len[i], ARMO_LLAMA3_GATING_PATTERN, 5) : -1;
    if (armorm) CHECK(gp[0] < P, "the gating token lies in the shared prefix (%d < %d)", gp[0], P);

    /* unshared: the four sequences packed */
    int32_t flat[4096], cu[6];
    cu[0] = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(flat + cu[i], ids[i], sizeof(int32_t) * (size_t)len[i]);
        cu[i + 1] = cu[i] + len[i];
    }
    armo_result un[4], sh[5];
    CHECK(armo_cpu_score(cpu, flat, cu, 4, armorm ? gp : NULL, un, &e) == 0, "unshared: %s", e.msg);

    /* shared: [standalone "code"], [prefix], [r0 tail], [r1 tail], [r2 tail] */
    int32_t sflat[4096], scu[6], pre[5], sgp[5];
    int off = 0, k = 0;
    scu[0] = 0;
#define SEG(src, n, p, gpos)                                            \
    memcpy(sflat + off, src, sizeof(int32_t) * (size_t)(n));             \
    off += (n);                                                          \
    scu[k + 1] = off;                                                    \
    pre[k] = (p);                                                        \
    sgp[k] = (gpos);                                                     \
    k++;
    SEG(ids[3], len[3], -1, gp[3]);
    SEG(ids[0], P, -1, -1);
    for (int j = 0; j < 3; j++) {
        SEG(ids[j] + P, len[j] - P, 1, gp[j]);
    }
#undef SEG
    int rc = armo_cpu_score_shared(cpu, sflat, scu, 5, armorm ? sgp : NULL, pre, sh, &e);
    CHECK(rc == 0, "shared: %s", e.msg);
    if (rc == 0) {
        CHECK(sh[1].n_tokens == 0, "the prefix segment gets no head");
        close_results("standalone beside shared", &sh[0], &un[3], 1e-6);
        char what[96];
        for (int j = 0; j < 3; j++) {
            snprintf(what, sizeof what, "%s %s shared vs unshared", name, names[j]);
            close_results(what, &sh[2 + j], &un[j], 1e-6);
            /* and against Hugging Face */
            double gs = json_number_value(json_object_get(cs[j], "score"));
            CHECK(test_close(sh[2 + j].score, gs, 1e-4, 1e-2), "%s %s vs golden: %.9g vs %.9g",
                  name, names[j], sh[2 + j].score, gs);
        }
    }
out:
    armo_cpu_destroy(cpu);
    armo_model_close(&m);
    json_decref(g);
}

int main(void) {
    test_layout();
    test_model("tiny-armorm");
    test_model("tiny-rm-llama3");
    return test_finish("test_prefix_share");
}
