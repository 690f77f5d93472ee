/* test_budget_cli.c — the GPU memory a batch budget needs, as the CLI shows
 * and enforces it (issue 21, item 4):
 *   - `armo inspect --max-batch-tokens N` prints the weights, workspace,
 *     activations per token and per sequence, and the activations and total
 *     for the default 16384 tokens and for N — the figures of
 *     host/engine/device_memory.h, checked here to the printed digit; with
 *     no CUDA device visible the fit is "not checked"; a bad N is exit 2;
 *   - `armo score --device cpu` packs batches within its own 2048-token
 *     default, not raised to the model's max_position_embeddings, and a
 *     sequence over --max-batch-tokens still scores (alone);
 * and, when the build has the emulated CUDA path (armo_emu, next to armo;
 * its cudaMemGetInfo reports 64 GiB free of 80, or ARMO_EMU_MEM_FREE_BYTES):
 *   - armo_emu inspect prints the fit line: fits in 64.00 GiB free of
 *     80.00 GiB; with less free memory, "no" and what would fit;
 *   - armo_emu score --device cuda on a GPU too small for the weights is
 *     refused up front: exit 2, one message with what is needed, what is
 *     free and that no --max-batch-tokens fits, nothing uploaded (no load
 *     progress line), no output;
 *   - an explicit --max-batch-tokens that does not fit: exit 2, naming the
 *     budget that would; the default budget that does not fit is lowered to
 *     what fits, with a note, and the records score. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/engine/device_memory.h"
#include "tests/util/test_util.h"
#include "weights/model.h"

static char g_tmp[512];
static char g_out[1 << 16], g_err[1 << 16];

/* Runs "ENV EXE ARGS < input" and reads its stdout and stderr; the exit status. */
static int run(const char *env, const char *exe, const char *args, const char *input) {
    char in[1024], out[1024], err[1024], cmd[8192];
    snprintf(in, sizeof in, "%s/in.jsonl", g_tmp);
    snprintf(out, sizeof out, "%s/out.txt", g_tmp);
    snprintf(err, sizeof err, "%s/err.txt", g_tmp);
    FILE *f = fopen(in, "wb");
    if (!f) return -1;
    fputs(input ? input : "", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s %s < %s > %s 2> %s", env ? env : "", exe, args, in, out, err);
    const int st = system(cmd);
    test_read_file(out, g_out, sizeof g_out);
    test_read_file(err, g_err, sizeof g_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "activations A, total T" as inspect prints it for a budget of n tokens */
static void budget_text(const armo_config *c, int64_t n, char *buf, size_t len) {
    armo_dev_need d;
    armo_dev_need_for(c, n, ARMO_DEFAULT_MAX_SEQS, 1, &d);
    char a[32], t[32];
    snprintf(buf, len, "activations %s, total %s", armo_dev_human((double)d.activations, a, sizeof a),
             armo_dev_human((double)d.total, t, sizeof t));
}

static void test_inspect(const char *exe, const armo_config *c, const char *model, int emulated) {
    char args[2048], want[256], line[512];
    snprintf(args, sizeof args, "inspect --model %s --max-batch-tokens 4096", model);
    int rc = run(NULL, exe, args, NULL);
    printf("%s", g_out);
    CHECK(rc == 0, "%s %s: exit %d: %s", exe, args, rc, g_err);
    armo_dev_need d;
    armo_dev_need_for(c, 16384, ARMO_DEFAULT_MAX_SEQS, 1, &d);
    char w[32], p[32], ps[32], s[32];
    snprintf(line, sizeof line, "weights %s (backbone bf16, head f32), workspace 128.00 MiB",
             armo_dev_human((double)d.weights, w, sizeof w));
    CHECK(test_contains(g_out, line), "inspect: no '%s' in:\n%s", line, g_out);
    snprintf(line, sizeof line, "activations %s per token (%s of it for prompt-prefix sharing), "
             "%s per sequence", armo_dev_human(d.per_token, p, sizeof p),
             armo_dev_human(d.per_token_shared, ps, sizeof ps),
             armo_dev_human(d.per_seq, s, sizeof s));
    CHECK(test_contains(g_out, line), "inspect: no '%s' in:\n%s", line, g_out);
    budget_text(c, 16384, want, sizeof want);
    snprintf(line, sizeof line, "batch 16384    %s (the default --max-batch-tokens)", want);
    CHECK(test_contains(g_out, line), "inspect: no '%s' in:\n%s", line, g_out);
    budget_text(c, 4096, want, sizeof want);
    snprintf(line, sizeof line, "batch 4096     %s (--max-batch-tokens 4096)", want);
    CHECK(test_contains(g_out, line), "inspect: no '%s' in:\n%s", line, g_out);
    if (emulated) {
        armo_dev_need_for(c, 4096, ARMO_DEFAULT_MAX_SEQS, 1, &d);
        snprintf(line, sizeof line, "gpu fit        yes: a 4096-token batch needs %s, the GPU has "
                 "64.00 GiB free of 80.00 GiB", armo_dev_human((double)d.total, w, sizeof w));
        CHECK(test_contains(g_out, line), "armo_emu inspect: no '%s' in:\n%s", line, g_out);
        /* 100 MiB free: not even the workspace */
        rc = run("ARMO_EMU_MEM_FREE_BYTES=104857600", exe, args, NULL);
        printf("%s", g_out);
        CHECK(rc == 0 && test_contains(g_out, "gpu fit        no: even a minimal 128-token batch") &&
                  test_contains(g_out, "100.00 MiB free of 80.00 GiB") &&
                  test_contains(g_out, "no --max-batch-tokens fits"),
              "armo_emu inspect with 100 MiB free (exit %d):\n%s", rc, g_out);
    } else {
        /* no GPU here (or a real one: then a real verdict) */
        CHECK(test_contains(g_out, "gpu fit        not checked: no CUDA device visible") ||
                  test_contains(g_out, "gpu fit        yes: a 4096-token batch needs") ||
                  test_contains(g_out, "gpu fit        no: "),
              "inspect: no fit line in:\n%s", g_out);
    }
    snprintf(args, sizeof args, "inspect --model %s --max-batch-tokens 0", model);
    rc = run(NULL, exe, args, NULL);
    CHECK(rc == 2 && test_contains(g_err, "--max-batch-tokens expects an integer"),
          "inspect --max-batch-tokens 0: exit %d: %s", rc, g_err);
}

static const char *k_input = "{\"id\":1,\"prompt\":\"What is the capital of France?\","
                             "\"response\":\"Paris.\"}\n";

/* armo score --device cpu: the CPU's own budget, a long sequence alone */
static void test_cpu_budget(const char *model) {
    char args[2048];
    snprintf(args, sizeof args, "score --model %s --device cpu", model);
    int rc = run(NULL, ARMO_EXE, args, k_input);
    CHECK(rc == 0 && test_contains(g_err, "batches of up to 2048 tokens"),
          "cpu: the default budget must stay 2048 (not max_position_embeddings) (exit %d): %s",
          rc, g_err);
    snprintf(args, sizeof args, "score --model %s --device cpu --max-batch-tokens 8 --quiet", model);
    rc = run(NULL, ARMO_EXE, args, k_input);
    CHECK(rc == 0 && test_contains(g_out, "\"score\"") && !test_contains(g_out, "error"),
          "cpu: a sequence over --max-batch-tokens 8 must score alone (exit %d): %s%s", rc, g_out,
          g_err);
}

static void test_emu_score(const char *exe, const armo_config *c, const char *model) {
    char args[2048], env[256];
    const size_t fixed = armo_dev_weight_bytes(c) + ARMO_DEV_WORKSPACE_BYTES;

    /* 50 MB free: not even the workspace; refused before any upload */
    snprintf(args, sizeof args, "score --model %s --device cuda", model);
    int rc = run("ARMO_EMU_MEM_FREE_BYTES=50000000", exe, args, k_input);
    printf("refused: %s", g_err);
    CHECK(rc == 2, "a model that does not fit: exit %d, expected 2: %s", rc, g_err);
    CHECK(test_contains(g_err, "armo score: the model does not fit on GPU 0: even a minimal "
                               "128-token batch needs") &&
              test_contains(g_err, "47.68 MiB free of 80.00 GiB") &&
              test_contains(g_err, "no --max-batch-tokens fits: the weights and workspace alone "
                                   "need"),
          "the refusal must give needed, free and what fits: %s", g_err);
    CHECK(!test_contains(g_err, "weights to the GPU"), "weights were uploaded before the "
          "refusal: %s", g_err);
    CHECK(g_out[0] == 0, "output before the refusal: %s", g_out);

    /* room for 1024 tokens: an explicit 100000 is refused, naming 1024 */
    snprintf(env, sizeof env, "ARMO_EMU_MEM_FREE_BYTES=%zu",
             fixed + armo_dev_activation_bytes(c, armo_dev_budget_shape(1024, ARMO_DEFAULT_MAX_SEQS, 1)));
    snprintf(args, sizeof args, "score --model %s --device cuda --max-batch-tokens 100000", model);
    rc = run(env, exe, args, k_input);
    printf("explicit: %s", g_err);
    CHECK(rc == 2 && test_contains(g_err, "--max-batch-tokens 100000 does not fit on GPU 0: a "
                                          "100000-token batch needs") &&
              test_contains(g_err, "--max-batch-tokens 1024 would fit"),
          "an explicit budget that does not fit (exit %d): %s", rc, g_err);
    CHECK(!test_contains(g_err, "weights to the GPU"), "weights uploaded: %s", g_err);

    /* room for 2048 tokens: the default 16384 is lowered, the record scores */
    snprintf(env, sizeof env, "ARMO_EMU_MEM_FREE_BYTES=%zu",
             fixed + armo_dev_activation_bytes(c, armo_dev_budget_shape(2048, ARMO_DEFAULT_MAX_SEQS, 1)));
    snprintf(args, sizeof args, "score --model %s --device cuda", model);
    rc = run(env, exe, args, k_input);
    printf("lowered: %s", g_err);
    CHECK(rc == 0 && test_contains(g_err, "the default --max-batch-tokens does not fit on GPU 0: a "
                                          "16384-token batch needs") &&
              test_contains(g_err, "; using 2048") &&
              test_contains(g_err, "batches of up to 2048 tokens") &&
              test_contains(g_out, "\"score\""),
          "the default budget lowered to what fits (exit %d): %s%s", rc, g_err, g_out);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_budget_cli", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    char model[1024];
    snprintf(model, sizeof model, "%s/tiny-armorm", ARMO_MODELS_DIR);
    armo_model m;
    armo_err e;
    if (armo_model_open(model, &m, &e)) {
        CHECK(0, "%s", e.msg);
        return test_finish("test_budget_cli");
    }
    test_inspect(ARMO_EXE, &m.cfg, model, 0);
    test_cpu_budget(model);
    char emu[1024];
    snprintf(emu, sizeof emu, "%s/armo_emu", ARMO_BINARY_DIR);
    if (access(emu, X_OK) == 0) {
        test_inspect(emu, &m.cfg, model, 1);
        test_emu_score(emu, &m.cfg, model);
    } else {
        printf("no %s (the emulated CUDA path is not built): its checks are skipped\n", emu);
    }
    armo_model_close(&m);
    return test_finish("test_budget_cli");
}
