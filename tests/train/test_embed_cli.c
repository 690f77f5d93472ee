/* test_embed_cli.c — `armo embed` end to end on the bundled tiny ArmoRM and
 * on the same backbone saved as LlamaForCausalLM and as a bare LlamaModel
 * (tensor names without "model."), against the Hugging Face golden hidden
 * states (tests/fixtures/tiny-armorm.golden.json: hidden_last and
 * hidden_prompt from transformers' LlamaModel, fp32): every golden
 * conversation as a record with labels (one missing, one null -> NaN), a
 * pair built from the shared-prompt cases (prefix sharing on), and the
 * records.jsonl / embeddings.json bookkeeping; armo score refuses the bare
 * backbone. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "host/train/embed_store.h"
#include "tests/util/backbone_copy.h"
#include "tests/util/test_util.h"
#include "weights/safetensors.h"
#include "weights/st_writer.h"

#define TOL 1e-4

static char g_tmp[512];

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *golden_case(json_t *g, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
    }
    return NULL;
}

/* max |a - b| / max |b| over n floats against a JSON array */
static double rel_err(const float *a, json_t *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double r = json_number_value(json_array_get(b, (size_t)i));
        num = fmax(num, fabs(a[i] - r));
        den = fmax(den, fabs(r));
    }
    return num / (den > 0 ? den : 1);
}

/* The golden conversations as records: case i gets labels {"x": i} and, on
 * even i, "y": null; "z" never appears (NaN). */
static int write_singles(json_t *g, const char *path, int *n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t i;
    json_t *c;
    *n = 0;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        json_t *msgs = json_object_get(c, "messages");
        json_t *rec = json_object();
        json_object_set(rec, "id", json_object_get(c, "name"));
        if (json_array_size(msgs))
            json_object_set(rec, "messages", msgs);
        else
            json_object_set(rec, "input_ids", json_object_get(c, "input_ids"));
        json_t *lab = json_pack("{s:f}", "x", (double)i);
        if (i % 2 == 0) json_object_set_new(lab, "y", json_null());
        json_object_set_new(rec, "labels", lab);
        char *s = json_dumps(rec, JSON_COMPACT);
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(rec);
        (*n)++;
    }
    return fclose(f);
}

static void check_singles(json_t *g, const char *dir, int n, const char *what) {
    armo_embeddings x;
    armo_err e;
    int rc = armo_embeddings_load(&x, dir, &e);
    CHECK(rc == 0, "%s: %s", what, e.msg);
    if (rc) return;
    CHECK(x.rows == n && x.nseq == 1 && x.hidden == 64, "%s: rows %lld seq %d", what,
          (long long)x.rows, x.nseq);
    CHECK(x.nlabels == 3 && !strcmp(x.label_names[0], "x") && !strcmp(x.label_names[2], "z"),
          "%s: label columns %d", what, x.nlabels);
    json_t *cases = json_object_get(g, "cases");
    for (int64_t r = 0; r < x.rows && r < (int64_t)json_array_size(cases); r++) {
        json_t *c = json_array_get(cases, (size_t)r);
        const char *name = json_string_value(json_object_get(c, "name"));
        double el = rel_err(x.h_last + r * 64, json_object_get(c, "hidden_last"), 64);
        double ep = rel_err(x.h_prompt + r * 64, json_object_get(c, "hidden_prompt"), 64);
        CHECK(el <= TOL && ep <= TOL, "%s %s: h_last err %g, h_prompt err %g", what, name, el, ep);
        CHECK(x.labels[r * 3] == (float)r && isnan(x.labels[r * 3 + 2]) &&
                  (r % 2 == 0 ? isnan(x.labels[r * 3 + 1]) : isnan(x.labels[r * 3 + 1])),
              "%s %s: labels", what, name);
        CHECK(x.line[r] == r + 1, "%s: line %lld", what, (long long)x.line[r]);
    }
    armo_embeddings_free(&x);
}

static void test_pairs(json_t *g, const char *model) {
    char in[700], out[700], cmd[3000];
    snprintf(in, sizeof in, "%s/pairs.jsonl", g_tmp);
    snprintf(out, sizeof out, "%s/pairs", g_tmp);
    json_t *c0 = golden_case(g, "shared_prompt_r0"), *c1 = golden_case(g, "shared_prompt_r1");
    json_t *m0 = json_object_get(c0, "messages"), *m1 = json_object_get(c1, "messages");
    json_t *rec = json_pack("{s:s, s:O, s:O, s:O, s:{s:i}}", "id", "pair1", "prompt",
                            json_object_get(json_array_get(m0, 0), "content"), "chosen",
                            json_object_get(json_array_get(m0, 1), "content"), "rejected",
                            json_object_get(json_array_get(m1, 1), "content"), "labels", "x", 1);
    char *s = json_dumps(rec, JSON_COMPACT);
    FILE *f = fopen(in, "wb");
    if (f) {
        fprintf(f, "%s\n%s\n{\"id\":\"one\",\"prompt\":\"a\",\"response\":\"b\"}\n", s, s);
        fclose(f);
    }
    free(s);
    json_decref(rec);
    snprintf(cmd, sizeof cmd, "%s embed --model %s --input %s --output %s --quiet --threads 2",
             ARMO_EXE, model, in, out);
    CHECK(sh(cmd) == 1, "pairs: exit 1 (one record of the wrong kind)");
    armo_embeddings x;
    armo_err e;
    int rc = armo_embeddings_load(&x, out, &e);
    CHECK(rc == 0, "pairs: %s", e.msg);
    if (rc) return;
    CHECK(x.rows == 2 && x.nseq == 2 && !strcmp(x.seq_names[1], "rejected"), "pairs shape");
    for (int r = 0; r < x.rows; r++)
        for (int k = 0; k < 2; k++) {
            json_t *c = k ? c1 : c0;
            double el = rel_err(x.h_last + (r * 2 + k) * 64, json_object_get(c, "hidden_last"), 64);
            double ep = rel_err(x.h_prompt + (r * 2 + k) * 64, json_object_get(c, "hidden_prompt"), 64);
            CHECK(el <= TOL && ep <= TOL, "pair %d seq %d: err %g %g", r, k, el, ep);
        }
    armo_embeddings_free(&x);
    char buf[4096], p[800];
    snprintf(p, sizeof p, "%s/records.jsonl", out);
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "{\"id\":\"pair1\",\"line\":2,\"row\":1,\"tokens\":[50,31]}"),
          "records.jsonl: %s", buf);
    CHECK(test_contains(buf, "\"id\":\"one\",\"line\":3,\"error\":\"line 3 (id \\\"one\\\"): one "
                             "conversation, but these embeddings hold pairs"), "kind error: %s", buf);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_embed_cli.tmp", ARMO_BINARY_DIR);
    char cmd[8192], in[700], out[700], src[700], dst[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", g_tmp, g_tmp);
    CHECK(sh(cmd) == 0, "tmp dir");
    snprintf(cmd, sizeof cmd, "%s/tests/fixtures/tiny-armorm.golden.json", ARMO_SOURCE_DIR);
    json_error_t je;
    json_t *g = json_load_file(cmd, 0, &je);
    CHECK(g != NULL, "golden: %s", je.text);
    if (!g) return test_finish("test_embed_cli");
    snprintf(in, sizeof in, "%s/singles.jsonl", g_tmp);
    int n = 0;
    CHECK(write_singles(g, in, &n) == 0 && n > 10, "write records");
    snprintf(src, sizeof src, "%s/tiny-armorm", ARMO_MODELS_DIR);
    /* the ArmoRM, labels named on the command line (z never appears) */
    snprintf(out, sizeof out, "%s/armorm", g_tmp);
    snprintf(cmd, sizeof cmd, "%s embed --model %s --input %s --output %s --labels x,y,z --quiet "
             "--shard-rows 5 --max-batch-tokens 300", ARMO_EXE, src, in, out);
    CHECK(sh(cmd) == 0, "armo embed armorm");
    check_singles(g, out, n, "armorm");
    /* LlamaForCausalLM: the same checkpoint, the head tensors ignored */
    snprintf(dst, sizeof dst, "%s/causallm", g_tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && ln -s %s/model.safetensors %s/ && cp "
             "%s/tokenizer*.json %s/ && sed 's/LlamaForRewardModelWithGating/LlamaForCausalLM/' "
             "%s/config.json > %s/config.json", dst, src, dst, src, dst, src, dst);
    CHECK(sh(cmd) == 0, "make causallm");
    snprintf(out, sizeof out, "%s/causallm-emb", g_tmp);
    snprintf(cmd, sizeof cmd, "%s embed --model %s --input %s --output %s --labels x,y,z --quiet",
             ARMO_EXE, dst, in, out);
    CHECK(sh(cmd) == 0, "armo embed causallm");
    check_singles(g, out, n, "causallm");
    /* a bare LlamaModel */
    snprintf(dst, sizeof dst, "%s/llamamodel", g_tmp);
    CHECK(write_backbone_copy(src, dst, "LlamaModel", 1) == 0, "make llamamodel");
    snprintf(out, sizeof out, "%s/llamamodel-emb", g_tmp);
    snprintf(cmd, sizeof cmd, "%s embed --model %s --input %s --output %s --labels x,y,z --quiet",
             ARMO_EXE, dst, in, out);
    CHECK(sh(cmd) == 0, "armo embed llamamodel");
    check_singles(g, out, n, "llamamodel");
    snprintf(cmd, sizeof cmd, "%s score --model %s --input %s --quiet > /dev/null 2> %s/score.err",
             ARMO_EXE, dst, in, g_tmp);
    CHECK(sh(cmd) == 2, "armo score refuses a bare backbone");
    char buf[2048], p[800];
    snprintf(p, sizeof p, "%s/score.err", g_tmp);
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "no reward head"), "score message: %s", buf);
    test_pairs(g, src);
    json_decref(g);
    return test_finish("test_embed_cli");
}
