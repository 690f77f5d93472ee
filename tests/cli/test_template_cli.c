/* test_template_cli.c — chat templates as `armo score` and `armo inspect`
 * see them (issue 16, item 3), on the bundled tiny-rm-llama3 weights with
 * tokenizer_config.json / chat_template.jinja swapped per case:
 *   - an unsupported template (ChatML), no template, no tokenizer: `armo
 *     score` exits 2 at load with one message naming the file and what was
 *     found, before any output, whatever the records; with --input-ids-only
 *     input_ids records score (the same score as under the Llama-3 model)
 *     and a text record fails alone (exit 1); `armo inspect` prints
 *     "unsupported chat template" and exits 2;
 *   - the Llama-3.1 template: inspect names it (exit 0); text records
 *     score, each exactly as its ids (rendered by the library) score as an
 *     input_ids record; ipython / tool roles render; tool_calls is a
 *     per-record error;
 *   - the Llama-3 template: an ipython message scores (it was refused);
 *   - --help of both commands documents the behaviour. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/text/chat_template.h"
#include "host/text/tokenizer.h"
#include "tests/util/test_util.h"

#define BASE ARMO_MODELS_DIR "/tiny-rm-llama3"
#define TOK ARMO_MODELS_DIR "/_data/llama3-tokenizer/tokenizer.json"

static const char *k_chatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}";

static char g_tmp[512];
static char g_out[1 << 16], g_err[1 << 16];

static int run(const char *args, const char *input) {
    char in[1024], out[1024], err[1024], cmd[8192];
    snprintf(in, sizeof in, "%s/in.jsonl", g_tmp);
    snprintf(out, sizeof out, "%s/out.txt", g_tmp);
    snprintf(err, sizeof err, "%s/err.txt", g_tmp);
    FILE *f = fopen(in, "wb");
    if (!f) return -1;
    fputs(input ? input : "", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s < %s > %s 2> %s", ARMO_EXE, args, in, out, err);
    const int st = system(cmd);
    test_read_file(out, g_out, sizeof g_out);
    test_read_file(err, g_err, sizeof g_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* g_tmp/NAME: the tiny model's weights and config, the Llama-3 tokenizer.json
 * (unless !with_tok), tokenizer_config.json with chat_template cfg_tmpl (NULL:
 * none), chat_template.jinja with jinja (NULL: none). */
static void make_model(char *dir, size_t len, const char *name, int with_tok, const char *cfg_tmpl,
                       const char *jinja) {
    char p[1200];
    snprintf(dir, len, "%s/%s", g_tmp, name);
    mkdir(dir, 0755);
    const char *links[][2] = {{"config.json", BASE "/config.json"},
                              {"model.safetensors", BASE "/model.safetensors"},
                              {"tokenizer.json", TOK}};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, links[i][0]);
        unlink(p);
        if (i < 2 || with_tok) CHECK(symlink(links[i][1], p) == 0, "symlink %s", p);
    }
    json_t *cfg = json_pack("{s:s, s:s}", "bos_token", "<|begin_of_text|>", "eos_token", "<|eot_id|>");
    if (cfg_tmpl) json_object_set_new(cfg, "chat_template", json_string(cfg_tmpl));
    char *txt = json_dumps(cfg, 0);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    CHECK(write_text(p, txt) == 0, "%s", p);
    free(txt);
    json_decref(cfg);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    unlink(p);
    if (jinja) CHECK(write_text(p, jinja) == 0, "%s", p);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The "score" of output line i (0-based) of g_out; NAN if absent. */
static double score_of(int i) {
    const char *s = g_out;
    for (int k = 0; k < i && s; k++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    if (!s || !*s) return NAN;
    const char *end = strchr(s, '\n');
    json_error_t je;
    json_t *j = json_loadb(s, end ? (size_t)(end - s) : strlen(s), 0, &je);
    double v = j && json_is_number(json_object_get(j, "score"))
                   ? json_number_value(json_object_get(j, "score"))
                   : NAN;
    json_decref(j);
    return v;
}

static const char *k_text = "{\"id\":\"t\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                            "{\"role\":\"user\",\"content\":\"Capital of France?\"},"
                            "{\"role\":\"assistant\",\"content\":\"Paris.\"}]}\n";
static const char *k_ids = "{\"id\":\"i\",\"input_ids\":[128000,128006,882,128007,271,13347,128009,"
                           "128006,78191,128007,271,65825,128009]}\n";

/* An unsupported template, no template, no tokenizer: refused at load. */
static void test_refused(const char *dir, const char *what, double ids_score) {
    char args[2048], input[1024];
    snprintf(input, sizeof input, "%s%s", k_ids, k_text);
    snprintf(args, sizeof args, "score --model %s --device cpu", dir);
    int rc = run(args, input);
    printf("%s, refused: %s", what, g_err);
    CHECK(rc == 2, "%s: exit %d, expected 2: %s", what, rc, g_err);
    CHECK(g_out[0] == 0, "%s: output before the refusal: %s", what, g_out);
    CHECK(count_lines(g_err) == 1 && test_contains(g_err, "armo score: ") &&
              test_contains(g_err, dir) && test_contains(g_err, "--input-ids-only"),
          "%s: one message naming the model and the way out: %s", what, g_err);
    /* input_ids alone: still refused without the flag ... */
    rc = run(args, k_ids);
    CHECK(rc == 2 && g_out[0] == 0, "%s: input_ids without --input-ids-only: exit %d", what, rc);
    /* ... and scored with it, as under the Llama-3 model; a text record fails alone */
    snprintf(args, sizeof args, "score --model %s --device cpu --quiet --input-ids-only", dir);
    rc = run(args, k_ids);
    CHECK(rc == 0 && test_close(score_of(0), ids_score, 1e-6, 1e-3),
          "%s: input_ids with --input-ids-only: exit %d, score %g vs %g: %s%s", what, rc,
          score_of(0), ids_score, g_out, g_err);
    rc = run(args, input);
    CHECK(rc == 1 && count_lines(g_out) == 2 && test_close(score_of(0), ids_score, 1e-6, 1e-3) &&
              test_contains(g_out, "\"error\":\"line 2 (id \\\"t\\\"): "),
          "%s: a text record fails alone: exit %d: %s", what, rc, g_out);
    /* inspect */
    snprintf(args, sizeof args, "inspect --model %s", dir);
    rc = run(args, NULL);
    CHECK(rc == 2 && test_contains(g_out, "chat template  unsupported chat template") &&
              test_contains(g_err, "armo inspect: "),
          "%s: inspect: exit %d: %s%s", what, rc, g_out, g_err);
}

/* The Llama-3.1 template: text scores as its own ids do. */
static void test_llama31(const char *dir) {
    char args[2048];
    snprintf(args, sizeof args, "inspect --model %s", dir);
    int rc = run(args, NULL);
    CHECK(rc == 0 && test_contains(g_out, "chat template  Llama-3.1-Instruct ("),
          "3.1: inspect: exit %d: %s%s", rc, g_out, g_err);

    const char *texts[] = {
        k_text,
        "{\"id\":\"tool\",\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"role\":\"assistant\",\"content\":\"Checking.\"},{\"role\":\"tool\",\"content\":\"sunny\"},"
        "{\"role\":\"ipython\",\"content\":\"{\\\"t\\\": 21}\"},{\"role\":\"assistant\",\"content\":"
        "\"Sunny, 21.\"}]}\n",
        "{\"id\":\"pr\",\"prompt\":\"Hi\",\"response\":\"Hello!\"}\n",
    };
    armo_err e;
    armo_tokenizer *tok = armo_tokenizer_load(dir, &e);
    CHECK(tok && armo_chat_kind_of(tok) == ARMO_CHAT_LLAMA31, "3.1 tokenizer: %s", tok ? "" : e.msg);
    if (!tok) return;
    size_t cap = 1 << 16, o = 0;
    char *input = malloc(cap);
    input[0] = 0;
    for (int i = 0; i < 3; i++) o += (size_t)snprintf(input + o, cap - o, "%s", texts[i]);
    /* the same conversations as input_ids, rendered by the library */
    const armo_message convs[3][5] = {
        {{"system", 6, "Be brief.", 9}, {"user", 4, "Capital of France?", 18}, {"assistant", 9, "Paris.", 6}},
        {{"user", 4, "Weather?", 8}, {"assistant", 9, "Checking.", 9}, {"tool", 4, "sunny", 5},
         {"ipython", 7, "{\"t\": 21}", 9}, {"assistant", 9, "Sunny, 21.", 10}},
        {{"user", 4, "Hi", 2}, {"assistant", 9, "Hello!", 6}},
    };
    const size_t nconv[3] = {3, 5, 2};
    for (int i = 0; i < 3; i++) {
        armo_ids ids = {0};
        CHECK(armo_chat_encode(tok, convs[i], nconv[i], 0, &ids, &e) == 0, "%s", e.msg);
        CHECK(ids.n > 20 && ids.ids[0] == 128000 && ids.ids[1] == 128006 && ids.ids[2] == 9125,
              "3.1: the system header comes first");
        o += (size_t)snprintf(input + o, cap - o, "{\"id\":%d,\"input_ids\":[", i);
        for (size_t k = 0; k < ids.n; k++)
            o += (size_t)snprintf(input + o, cap - o, "%s%d", k ? "," : "", ids.ids[k]);
        o += (size_t)snprintf(input + o, cap - o, "]}\n");
        armo_ids_free(&ids);
    }
    armo_tokenizer_free(tok);
    snprintf(args, sizeof args, "score --model %s --device cpu --quiet", dir);
    rc = run(args, input);
    CHECK(rc == 0 && count_lines(g_out) == 6 && !test_contains(g_out, "error"),
          "3.1: text records score: exit %d: %s%s", rc, g_out, g_err);
    for (int i = 0; i < 3; i++)
        CHECK(test_close(score_of(i), score_of(3 + i), 1e-6, 1e-3),
              "3.1: text record %d scores %g, its ids %g", i, score_of(i), score_of(3 + i));
    /* tool_calls: a per-record error */
    rc = run(args, "{\"id\":\"tc\",\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":"
                   "\"assistant\",\"content\":\"\",\"tool_calls\":[]}]}\n");
    CHECK(rc == 1 && test_contains(g_out, "tool_calls"), "3.1: tool_calls: exit %d: %s", rc, g_out);
    free(input);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_template_cli", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    char args[2048];

    /* the reference: the input_ids record under the Llama-3 model; an ipython message scores */
    snprintf(args, sizeof args, "score --model %s --device cpu --quiet", BASE);
    int rc = run(args, k_ids);
    const double ids_score = score_of(0);
    CHECK(rc == 0 && ids_score == ids_score, "reference: exit %d: %s%s", rc, g_out, g_err);
    rc = run(args, "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\","
                   "\"content\":\"Let me compute.\"},{\"role\":\"ipython\",\"content\":\"4\"},"
                   "{\"role\":\"assistant\",\"content\":\"4.\"}]}\n");
    CHECK(rc == 0 && score_of(0) == score_of(0), "Llama-3: an ipython message scores: exit %d: %s",
          rc, g_out);

    char dir[1024];
    make_model(dir, sizeof dir, "chatml", 1, k_chatml, NULL);
    test_refused(dir, "ChatML template", ids_score);
    snprintf(args, sizeof args, "score --model %s --device cpu", dir);
    rc = run(args, k_text);
    CHECK(test_contains(g_err, "tokenizer_config.json: the chat_template (") &&
              test_contains(g_err, "<|im_start|>") && test_contains(g_err, "is not one armo renders"),
          "the message says what was found: %s", g_err);
    make_model(dir, sizeof dir, "chatml_jinja", 1, NULL, k_chatml);
    snprintf(args, sizeof args, "score --model %s --device cpu", dir);
    rc = run(args, k_text);
    CHECK(rc == 2 && test_contains(g_err, "chat_template.jinja: the chat_template ("),
          "the message names chat_template.jinja: %s", g_err);
    make_model(dir, sizeof dir, "none", 1, NULL, NULL);
    test_refused(dir, "no template", ids_score);
    snprintf(args, sizeof args, "score --model %s --device cpu", dir);
    rc = run(args, k_text);
    CHECK(test_contains(g_err, "has no chat_template"), "no template: %s", g_err);
    make_model(dir, sizeof dir, "notok", 0, NULL, NULL);
    test_refused(dir, "no tokenizer", ids_score);

    char tpath[1024], t31[8192];
    snprintf(tpath, sizeof tpath, "%s/tests/data/template/llama31.jinja", ARMO_SOURCE_DIR);
    CHECK(test_read_file(tpath, t31, sizeof t31) > 4000, "%s", tpath);
    make_model(dir, sizeof dir, "llama31", 1, NULL, t31);
    test_llama31(dir);

    rc = run("score --help", NULL);
    CHECK(rc == 0 && test_contains(g_out, "--input-ids-only") &&
              test_contains(g_out, "Llama-3.1-Instruct"), "score --help");
    rc = run("inspect --help", NULL);
    CHECK(rc == 0 && test_contains(g_out, "chat template") &&
              test_contains(g_out, "unsupported"), "inspect --help");
    return test_finish("test_template_cli");
}
