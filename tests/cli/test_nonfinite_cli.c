/* test_nonfinite_cli.c — NaN / Inf weights and non-finite results, as the
 * CLI reports them (issue 16, item 1).  Poisoned copies of the bundled tiny
 * ArmoRM are written at test time (the fixture's files copied, tokenizer
 * files linked, one element of one tensor overwritten in place):
 *   - `armo inspect --check-weights` scans every tensor: a clean model exits
 *     0 with the scan's time; NaN in regression_layer.weight, +Inf in
 *     model.norm.weight, both, or a tensor in the last shard of the sharded
 *     fixture: exit 2 naming each tensor, the element and NaN / +Inf;
 *   - `armo score` refuses such a checkpoint up front (exit 2, the tensor
 *     named, no output); its default scan covers the norms and the head, so
 *     NaN in a backbone matrix is refused only with --check-weights;
 *   - with --allow-nonfinite-weights (or a NaN outside the default scan)
 *     every record the NaN reaches is {"id", "error"} naming the record and
 *     what went non-finite (a reward and its objective; the backbone hidden
 *     state at the last token), a pair or best-of-N names the response(s)
 *     and has no "preferred" / "ranking", records it does not reach (a NaN
 *     in one token's embedding row) still score, the run's summary counts
 *     the errors and the exit status is 1;
 *   - the same records through the emulated CUDA path (armo_emu, when the
 *     build has it) come out byte for byte as on the CPU;
 *   - score_output on its own: a result no backend flagged but holding a
 *     NaN is still an error record. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/scoring/score_output.h"
#include "tests/util/poisoned_model.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"
#include "weights/safetensors.h"

static char g_tmp[512];
static char g_out[1 << 17], g_err[1 << 17];

/* ---- poisoned copies ------------------------------------------------------------- */

/* g_tmp/<name>: fixture with up to two poisoned elements; the path in dir. */
static int make_model(char *dir, size_t len, const char *name, const char *fixture,
                      const char *t1, int64_t i1, float v1, const char *t2, int64_t i2,
                      float v2) {
    snprintf(dir, len, "%s/%s", g_tmp, name);
    char src[1024];
    snprintf(src, sizeof src, "%s/%s", ARMO_MODELS_DIR, fixture);
    int rc = test_copy_model(src, dir);
    if (!rc && t1) rc = test_poison_tensor(dir, t1, i1, v1);
    if (!rc && t2) rc = test_poison_tensor(dir, t2, i2, v2);
    CHECK(rc == 0, "could not write the poisoned model %s", dir);
    return rc;
}

/* ---- running armo ---------------------------------------------------------------- */

/* "EXE ARGS < input > out 2> err": the exit status; g_out / g_err hold the
 * output (also left in g_tmp/out_<tag>.jsonl). */
static int run(const char *exe, const char *args, const char *input, const char *tag) {
    char in[1024], out[1024], err[1024], cmd[8192];
    snprintf(in, sizeof in, "%s/in.jsonl", g_tmp);
    snprintf(out, sizeof out, "%s/out_%s.jsonl", g_tmp, tag);
    snprintf(err, sizeof err, "%s/err.txt", g_tmp);
    FILE *f = fopen(in, "wb");
    if (!f) return -1;
    fputs(input ? input : "", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s < %s > %s 2> %s", exe, args, in, out, err);
    const int st = system(cmd);
    test_read_file(out, g_out, sizeof g_out);
    test_read_file(err, g_err, sizeof g_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output line i (0-based) of g_out, parsed; NULL if none. */
static json_t *line_at(int i) {
    const char *p = g_out;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) return NULL;
    const char *end = strchr(p, '\n');
    json_error_t je;
    return json_loadb(p, end ? (size_t)(end - p) : strlen(p), 0, &je);
}

static const char *err_of(json_t *o) {
    return json_string_value(json_object_get(o, "error"));
}

#define NREC 5
static const char *RECORDS =
    "{\"id\":\"single\",\"messages\":[{\"role\":\"user\",\"content\":\"What is the capital of "
    "France?\"},{\"role\":\"assistant\",\"content\":\"Paris.\"}]}\n"
    "{\"id\":\"pr\",\"prompt\":\"Say hi.\",\"response\":\"Hi there!\"}\n"
    "{\"id\":\"pair\",\"prompt\":\"Name an animal.\",\"chosen\":\"A horse.\",\"rejected\":\"A "
    "zebra.\"}\n"
    "{\"id\":\"bon\",\"prompt\":\"Name an animal.\",\"responses\":[\"A cat.\",\"A zebra.\",\"A "
    "dog.\"]}\n"
    "{\"id\":\"ids\",\"input_ids\":[128000,128006,882,128007,271,3923,374,279,6864,315,9822,30,"
    "128009,128006,78191,128007,271,791,6864,315,9822,374,12366,13,128009]}\n";
static const char *IDS[NREC] = {"single", "pr", "pair", "bon", "ids"};

/* Every record an error naming its line and id and `what`; pairs and
 * best-of-N name their responses and have no preferred / ranking. */
static void check_all_errors(const char *what, const char *label) {
    for (int i = 0; i < NREC; i++) {
        json_t *o = line_at(i);
        CHECK(o != NULL, "%s: no output line %d:\n%s", label, i + 1, g_out);
        if (!o) continue;
        const char *e = err_of(o);
        char want[96];
        snprintf(want, sizeof want, "line %d (id \"%s\"): ", i + 1, IDS[i]);
        CHECK(e && test_contains(e, want) && test_contains(e, what),
              "%s: record %d: error '%s' should name '%s' and '%s'", label, i + 1,
              e ? e : "(none)", want, what);
        CHECK(!strcmp(json_string_value(json_object_get(o, "id")), IDS[i]), "%s: id echoed",
              label);
        CHECK(!json_object_get(o, "score") && !json_object_get(o, "rewards") &&
                  !json_object_get(o, "preferred") && !json_object_get(o, "ranking") &&
                  !json_object_get(o, "chosen") && !json_object_get(o, "responses"),
              "%s: record %d has scores beside its error", label, i + 1);
        if (i == 2)
            CHECK(test_contains(e, "chosen: non-finite") && test_contains(e, "rejected: non-finite"),
                  "%s: the pair's error names both sides: %s", label, e);
        if (i == 3)
            CHECK(test_contains(e, "responses[0]: non-finite") &&
                      test_contains(e, "responses[2]: non-finite") &&
                      test_contains(e, "3 of 3 responses"),
                  "%s: the best-of-N error names the responses: %s", label, e);
        json_decref(o);
    }
    CHECK(line_at(NREC) == NULL, "%s: more than %d output lines", label, NREC);
    CHECK(test_contains(g_err, "5 of 5 records failed"), "%s: the summary counts the errors:\n%s",
          label, g_err);
}

/* ---- the checks ------------------------------------------------------------------ */

static void test_inspect(const char *clean, const char *nan_head, const char *inf_norm,
                         const char *two, const char *sharded) {
    char args[2048];
    snprintf(args, sizeof args, "inspect --model %s --check-weights", clean);
    int rc = run(ARMO_EXE, args, NULL, "inspect");
    CHECK(rc == 0 && test_contains(g_out, "weights scan   31 tensors") &&
              test_contains(g_out, " s (") && test_contains(g_out, "no NaN or Inf"),
          "inspect --check-weights, clean model: exit %d\n%s%s", rc, g_out, g_err);
    printf("%s", strstr(g_out, "weights scan") ? strstr(g_out, "weights scan") : g_out);
    struct {
        const char *dir, *want[2];
    } bad[] = {
        {nan_head, {"tensor 'regression_layer.weight' [0, 7] is NaN", NULL}},
        {inf_norm, {"tensor 'model.norm.weight' [3] is +Inf", NULL}},
        {two, {"tensor 'model.norm.weight' [3] is +Inf; tensor 'regression_layer.weight' [0, 7] "
               "is NaN", "(2 tensors, 2 NaN/Inf values in all)"}},
        {sharded, {"tensor 'model.layers.1.mlp.up_proj.weight' [0, 5] is -Inf", NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "inspect --model %s --check-weights", bad[i].dir);
        rc = run(ARMO_EXE, args, NULL, "inspect");
        CHECK(rc == 2, "inspect --check-weights %s: exit %d, expected 2\n%s", bad[i].dir, rc,
              g_err);
        for (int k = 0; k < 2; k++)
            if (bad[i].want[k])
                CHECK(test_contains(g_err, bad[i].want[k]), "inspect %s: no \"%s\" in:\n%s",
                      bad[i].dir, bad[i].want[k], g_err);
        CHECK(test_contains(g_out, "with NaN/Inf"), "inspect %s: the scan line:\n%s", bad[i].dir,
              g_out);
    }
}

static void test_score(const char *clean, const char *nan_head, const char *inf_norm,
                       const char *nan_mlp, const char *nan_emb) {
    char args[2048];
    /* the clean model scores every record */
    snprintf(args, sizeof args, "score --model %s --device cpu", clean);
    int rc = run(ARMO_EXE, args, RECORDS, "clean");
    CHECK(rc == 0 && !test_contains(g_out, "\"error\""), "clean model: exit %d\n%s%s", rc, g_out,
          g_err);
    /* refused up front: exit 2, the tensor named, nothing written */
    const struct {
        const char *dir, *want;
    } refused[] = {{nan_head, "tensor 'regression_layer.weight' [0, 7] is NaN"},
                   {inf_norm, "tensor 'model.norm.weight' [3] is +Inf"}};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "score --model %s --device cpu", refused[i].dir);
        rc = run(ARMO_EXE, args, RECORDS, "refused");
        CHECK(rc == 2 && test_contains(g_err, refused[i].want) &&
                  test_contains(g_err, "--allow-nonfinite-weights") && g_out[0] == 0,
              "score %s: exit %d, expected 2 naming %s:\n%s%s", refused[i].dir, rc,
              refused[i].want, g_err, g_out);
    }
    /* --allow-nonfinite-weights: every record an error naming what */
    snprintf(args, sizeof args, "score --model %s --device cpu --allow-nonfinite-weights",
             nan_head);
    rc = run(ARMO_EXE, args, RECORDS, "nan_head");
    CHECK(rc == 1, "nan head, allowed: exit %d, expected 1\n%s", rc, g_err);
    check_all_errors("non-finite reward 'helpsteer-helpfulness' is NaN", "nan head");
    snprintf(args, sizeof args, "score --model %s --device cpu --allow-nonfinite-weights",
             inf_norm);
    rc = run(ARMO_EXE, args, RECORDS, "inf_norm");
    CHECK(rc == 1, "inf norm, allowed: exit %d, expected 1\n%s", rc, g_err);
    check_all_errors("non-finite backbone hidden state at the last token", "inf norm");
    CHECK(test_contains(g_out, "dimension 3 is"), "inf norm: the dimension named:\n%s", g_out);
    /* a NaN in a backbone matrix: outside the default scan (records become
     * errors), refused with --check-weights */
    snprintf(args, sizeof args, "score --model %s --device cpu", nan_mlp);
    rc = run(ARMO_EXE, args, RECORDS, "nan_mlp");
    CHECK(rc == 1, "nan mlp: exit %d, expected 1\n%s", rc, g_err);
    check_all_errors("non-finite backbone hidden state at the last token", "nan mlp");
    snprintf(args, sizeof args, "score --model %s --device cpu --check-weights", nan_mlp);
    rc = run(ARMO_EXE, args, RECORDS, "nan_mlp_refused");
    CHECK(rc == 2 && test_contains(g_err, "tensor 'model.layers.0.mlp.down_proj.weight' [0, 0] "
                                          "is NaN") && g_out[0] == 0,
          "nan mlp --check-weights: exit %d, expected 2:\n%s", rc, g_err);
    CHECK(test_contains(g_err, "for NaN/Inf in"), "--check-weights prints its time:\n%s", g_err);
    /* a NaN in the embedding row of "ebra" (" zebra"): only the responses
     * holding it fail, and the error names them */
    snprintf(args, sizeof args, "score --model %s --device cpu", nan_emb);
    rc = run(ARMO_EXE, args, RECORDS, "nan_emb");
    CHECK(rc == 1, "nan embedding row: exit %d, expected 1\n%s", rc, g_err);
    for (int i = 0; i < NREC; i++) {
        json_t *o = line_at(i);
        const char *e = o ? err_of(o) : NULL;
        if (i == 2)
            CHECK(e && test_contains(e, "rejected: non-finite backbone hidden state") &&
                      !test_contains(e, "chosen:") && !json_object_get(o, "preferred"),
                  "nan embedding row: the pair's error names the rejected side only: %s",
                  e ? e : "(none)");
        else if (i == 3)
            CHECK(e && test_contains(e, "responses[1]: non-finite") &&
                      !test_contains(e, "responses[0]") && !test_contains(e, "responses[2]") &&
                      test_contains(e, "1 of 3 responses") && !json_object_get(o, "ranking"),
                  "nan embedding row: the best-of-N error names responses[1] only: %s",
                  e ? e : "(none)");
        else
            CHECK(o && !e && json_is_real(json_object_get(o, "score")),
                  "nan embedding row: record %d does not hold the token and scores: %s", i + 1,
                  e ? e : "(no line)");
        json_decref(o);
    }
    CHECK(test_contains(g_err, "2 of 5 records failed"), "nan embedding row: summary:\n%s", g_err);
}

/* The emulated CUDA path gives the CPU's records byte for byte. */
static void test_emu(const char *nan_head, const char *inf_norm, const char *nan_mlp) {
    char emu[1024];
    snprintf(emu, sizeof emu, "%s/armo_emu", ARMO_BINARY_DIR);
    if (access(emu, X_OK) != 0) {
        printf("no %s (the emulated CUDA path is not built): its checks are skipped\n", emu);
        return;
    }
    const char *dirs[3] = {nan_head, inf_norm, nan_mlp};
    for (int i = 0; i < 3; i++) {
        char args[2048], cpu_out[sizeof g_out];
        snprintf(args, sizeof args, "score --model %s --device cpu --allow-nonfinite-weights",
                 dirs[i]);
        int rc = run(ARMO_EXE, args, RECORDS, "cpu");
        memcpy(cpu_out, g_out, sizeof cpu_out);
        snprintf(args, sizeof args, "score --model %s --device cuda --allow-nonfinite-weights",
                 dirs[i]);
        int rc_emu = run(emu, args, RECORDS, "emu");
        CHECK(rc == 1 && rc_emu == 1, "armo_emu %s: exit %d (cpu %d)\n%s", dirs[i], rc_emu, rc,
              g_err);
        CHECK(!strcmp(cpu_out, g_out) && g_out[0], "armo_emu %s: the CUDA path's records differ "
              "from the CPU's:\n%s\nvs\n%s", dirs[i], g_out, cpu_out);
        CHECK(test_contains(g_err, "5 of 5 records failed"), "armo_emu %s: summary:\n%s", dirs[i],
              g_err);
    }
    char args[2048];
    snprintf(args, sizeof args, "score --model %s --device cuda", nan_head);
    int rc = run(emu, args, RECORDS, "emu_refused");
    CHECK(rc == 2 && test_contains(g_err, "regression_layer.weight") && g_out[0] == 0,
          "armo_emu refuses the nan-head model: exit %d\n%s", rc, g_err);
}

/* score_output alone: a NaN that no backend flagged is still an error. */
static void test_output_fallback(void) {
    armo_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.arch = ARMO_ARCH_ARMORM;
    armo_result r[2];
    memset(r, 0, sizeof r);
    for (int s = 0; s < 2; s++) {
        r[s].n_objectives = 19;
        r[s].n_tokens = 10;
    }
    r[1].coefficients[4] = -INFINITY; /* nonfinite left ARMO_NF_NONE */
    json_t *o = armo_record_to_json(&cfg, NULL, ARMO_OUT_PAIR, r, 2, 3);
    const char *e = err_of(o);
    CHECK(e && test_contains(e, "rejected: non-finite coefficient 'helpsteer-verbosity' is -Inf")
              && !json_object_get(o, "preferred"),
          "an unflagged -Inf coefficient: %s", e ? e : "(no error)");
    json_decref(o);
    r[1].coefficients[4] = 0;
    o = armo_record_to_json(&cfg, NULL, ARMO_OUT_PAIR, r, 2, 3);
    CHECK(!err_of(o) && json_object_get(o, "preferred"), "finite pair: preferred");
    json_decref(o);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_nonfinite_cli", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    char clean[1024], nan_head[1024], inf_norm[1024], two[1024], sharded[1024], nan_mlp[1024],
        nan_emb[1024];
    snprintf(clean, sizeof clean, "%s/tiny-armorm", ARMO_MODELS_DIR);
    int rc = make_model(nan_head, sizeof nan_head, "nan_head", "tiny-armorm",
                        "regression_layer.weight", 7, NAN, NULL, 0, 0);
    rc |= make_model(inf_norm, sizeof inf_norm, "inf_norm", "tiny-armorm", "model.norm.weight", 3,
                     INFINITY, NULL, 0, 0);
    rc |= make_model(two, sizeof two, "two", "tiny-armorm", "model.norm.weight", 3, INFINITY,
                     "regression_layer.weight", 7, NAN);
    rc |= make_model(sharded, sizeof sharded, "sharded", "tiny-armorm-sharded",
                     "model.layers.1.mlp.up_proj.weight", 5, -INFINITY, NULL, 0, 0);
    rc |= make_model(nan_mlp, sizeof nan_mlp, "nan_mlp", "tiny-armorm",
                     "model.layers.0.mlp.down_proj.weight", 0, NAN, NULL, 0, 0);
    /* token 51313 is "ebra" (" zebra" = " z" "ebra"); hidden size 64 */
    rc |= make_model(nan_emb, sizeof nan_emb, "nan_emb", "tiny-armorm",
                     "model.embed_tokens.weight", (int64_t)51313 * 64, NAN, NULL, 0, 0);
    if (rc == 0) {
        test_inspect(clean, nan_head, inf_norm, two, sharded);
        test_score(clean, nan_head, inf_norm, nan_mlp, nan_emb);
        test_emu(nan_head, inf_norm, nan_mlp);
    }
    test_output_fallback();
    return test_finish("test_nonfinite_cli");
}
