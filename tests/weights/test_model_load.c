/* test_model_load.c — config.json parsing and the tensor map, on the bundled
 * tiny checkpoints and on broken copies of them.
 *
 * Each broken case copies a bundled model directory (shards symlinked,
 * config.json rewritten with one key changed, or a shard truncated / removed)
 * and asserts that armo_model_open fails with a message naming the file and
 * the key or tensor at fault.  Expected dimensions come from the generator's
 * config (tools/gen_fixtures.py), not from the code under test. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/util/test_util.h"
#include "weights/dtype.h"
#include "weights/model.h"

static char g_tmp[512];

static void path_join(char *out, size_t len, const char *a, const char *b) {
    snprintf(out, len, "%s/%s", a, b);
}

/* rm -r of a flat directory */
static void clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    char p[2048];
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        path_join(p, sizeof p, dir, ent->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A fresh copy of bundled model SRC in g_tmp/NAME: safetensors symlinked,
 * config.json (and the index) copied as files; returns the new dir. */
static const char *copy_model(const char *src_name, const char *name, char *out, size_t len) {
    char src[1024];
    snprintf(src, sizeof src, "%s/%s", ARMO_MODELS_DIR, src_name);
    snprintf(out, len, "%s/%s", g_tmp, name);
    clear_dir(out);
    mkdir(out, 0755);
    DIR *d = opendir(src);
    if (!d) return out;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        char a[2048], b[2048];
        path_join(a, sizeof a, src, ent->d_name);
        path_join(b, sizeof b, out, ent->d_name);
        if (strstr(ent->d_name, ".safetensors") && !strstr(ent->d_name, ".json")) {
            if (symlink(a, b) != 0) perror("symlink");
        } else {
            FILE *fi = fopen(a, "rb"), *fo = fopen(b, "wb");
            char buf[65536];
            size_t n;
            while (fi && fo && (n = fread(buf, 1, sizeof buf, fi)) > 0) fwrite(buf, 1, n, fo);
            if (fi) fclose(fi);
            if (fo) fclose(fo);
        }
    }
    closedir(d);
    return out;
}

/* Rewrites DIR/config.json with key set to the JSON value given as text
 * (NULL: delete the key). */
static void set_config(const char *dir, const char *key, const char *json_value) {
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    json_t *root = json_load_file(p, 0, NULL);
    if (!root) return;
    if (json_value)
        json_object_set_new(root, key, json_loads(json_value, JSON_DECODE_ANY, NULL));
    else
        json_object_del(root, key);
    json_dump_file(root, p, JSON_INDENT(2));
    json_decref(root);
}

/* Opens DIR expecting failure; checks that the message holds every needle. */
static void expect_fail(const char *what, const char *dir, const char *n1, const char *n2) {
    armo_model m;
    armo_err e = {{0}};
    int rc = armo_model_open(dir, &m, &e);
    CHECK(rc == -1, "%s: armo_model_open succeeded on a broken checkpoint", what);
    if (rc == 0) {
        armo_model_close(&m);
        return;
    }
    CHECK(test_contains(e.msg, n1), "%s: message lacks '%s': %s", what, n1, e.msg);
    if (n2) CHECK(test_contains(e.msg, n2), "%s: message lacks '%s': %s", what, n2, e.msg);
}

static void broken_config(const char *what, const char *key, const char *value, const char *n1,
                          const char *n2) {
    char dir[1024];
    copy_model("tiny-armorm-sharded", "broken", dir, sizeof dir);
    set_config(dir, key, value);
    expect_fail(what, dir, n1, n2);
}

static int64_t expected_params(const armo_config *c) {
    int64_t H = c->hidden_size, q = (int64_t)c->num_heads * c->head_dim,
            kv = (int64_t)c->num_kv_heads * c->head_dim, I = c->intermediate_size;
    int64_t n = (int64_t)c->vocab_size * H + H;
    n += (int64_t)c->num_layers * (2 * H + H * q + 2 * H * kv + q * H + 3 * H * I);
    return n;
}

static void test_bundled(void) {
    char dir[1024];
    armo_model m;
    armo_err e = {{0}};
    /* tiny-armorm and its sharded twin: identical config, one file vs three */
    const char *armo_dirs[] = {"tiny-armorm", "tiny-armorm-sharded"};
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/%s", ARMO_MODELS_DIR, armo_dirs[i]);
        int rc = armo_model_open(dir, &m, &e);
        CHECK(rc == 0, "%s: %s", armo_dirs[i], e.msg);
        if (rc) continue;
        const armo_config *c = &m.cfg;
        CHECK(c->arch == ARMO_ARCH_ARMORM, "%s arch", armo_dirs[i]);
        CHECK(c->hidden_size == 64 && c->num_layers == 2 && c->num_heads == 4 &&
                  c->num_kv_heads == 2 && c->head_dim == 64 && c->intermediate_size == 128,
              "%s dims", armo_dirs[i]);
        CHECK(c->vocab_size == 128257 && c->pad_token_id == 128256 && c->bos_token_id == 128000,
              "%s vocab/pad/bos", armo_dirs[i]);
        CHECK(c->num_objectives == 19 && c->gating_hidden_dim == 32 && c->gating_n_hidden == 3 &&
                  c->gating_temperature == 10.0,
              "%s gating config", armo_dirs[i]);
        CHECK(c->rope_type == ARMO_ROPE_DEFAULT && c->rope_theta == 500000.0, "%s rope",
              armo_dirs[i]);
        CHECK(m.ck.nfiles == (i == 0 ? 1 : 3), "%s: %d shard files", armo_dirs[i], m.ck.nfiles);
        CHECK(m.gating_nlayers == 4, "gating layers %d", m.gating_nlayers);
        CHECK(m.regression.dtype == ARMO_DT_F32 && m.transform.dtype == ARMO_DT_F32 &&
                  m.gating_w[0].dtype == ARMO_DT_F32,
              "%s: head tensors must stay F32", armo_dirs[i]);
        CHECK(m.layers[1].wq.dtype == ARMO_DT_BF16, "%s: backbone BF16", armo_dirs[i]);
        int64_t head = 19 * 64 + (64 * 32 + 32) + 2 * (32 * 32 + 32) + (32 * 19 + 19) + 1 + 19 * 19;
        CHECK(armo_model_param_count(&m) == expected_params(c) + head, "%s params %lld",
              armo_dirs[i], (long long)armo_model_param_count(&m));
        armo_model_close(&m);
    }
    snprintf(dir, sizeof dir, "%s/tiny-rm-llama3", ARMO_MODELS_DIR);
    int rc = armo_model_open(dir, &m, &e);
    CHECK(rc == 0, "tiny-rm-llama3: %s", e.msg);
    if (rc == 0) {
        const armo_config *c = &m.cfg;
        CHECK(c->arch == ARMO_ARCH_SEQCLS && c->num_labels == 1, "seqcls arch/labels");
        CHECK(c->num_kv_heads == 1 && c->num_heads == 4, "GQA 4:1");
        CHECK(c->rope_type == ARMO_ROPE_LLAMA3 && c->rope_factor == 8.0 &&
                  c->rope_low_freq_factor == 1.0 && c->rope_high_freq_factor == 4.0 &&
                  c->rope_original_max_pos == 32,
              "llama3 rope_scaling parsed: type %d factor %g", c->rope_type, c->rope_factor);
        CHECK(m.score.rows == 1 && m.score.cols == 64, "score weight shape");
        CHECK(armo_model_param_count(&m) == expected_params(c) + 64, "seqcls params");
        armo_model_close(&m);
    }
}

static void test_broken(void) {
    char dir[1024];
    broken_config("unknown architecture", "architectures", "[\"MistralForCausalLM\"]",
                  "MistralForCausalLM", "not supported");
    broken_config("missing tensor", "num_hidden_layers", "3",
                  "model.layers.2.input_layernorm.weight", "missing");
    broken_config("wrong shape", "intermediate_size", "96", "mlp.gate_proj.weight",
                  "[128, 64] but config.json implies [96, 64]");
    broken_config("objectives disagree", "num_objectives", "18", "regression_layer.weight",
                  "implies [18, 64]");
    broken_config("gating depth disagrees", "gating_n_hidden", "2", "gating.layers.2.weight",
                  "shape");
    broken_config("missing key", "hidden_size", NULL, "config.json", "\"hidden_size\"");
    broken_config("heads", "num_key_value_heads", "3", "config.json", "multiple of");
    broken_config("rope type", "rope_scaling", "{\"rope_type\":\"yarn\",\"factor\":4}", "yarn",
                  "not supported");
    broken_config("llama3 rope lacks a key", "rope_scaling",
                  "{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1}",
                  "high_freq_factor", "missing");
    broken_config("activation", "hidden_act", "\"gelu\"", "hidden_act", "gelu");
    broken_config("bias", "attention_bias", "true", "attention_bias", "config.json");
    broken_config("integer as string", "hidden_size", "\"64\"", "hidden_size", "integer");

    /* config.json not JSON */
    copy_model("tiny-armorm-sharded", "broken", dir, sizeof dir);
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("{\"architectures\": [\"LlamaForRewardModelWithGating\"],\n  hidden_size: 64}", f);
        fclose(f);
    }
    expect_fail("config not JSON", dir, "config.json:2", "not valid JSON");

    /* no config.json */
    unlink(p);
    expect_fail("config missing", dir, "config.json", "cannot read");

    /* a shard replaced by a truncated copy */
    copy_model("tiny-armorm-sharded", "broken", dir, sizeof dir);
    char src[2048];
    snprintf(src, sizeof src, "%s/tiny-armorm-sharded/model-00002-of-00003.safetensors",
             ARMO_MODELS_DIR);
    path_join(p, sizeof p, dir, "model-00002-of-00003.safetensors");
    unlink(p);
    FILE *fi = fopen(src, "rb"), *fo = fopen(p, "wb");
    if (fi && fo) {
        fseek(fi, 0, SEEK_END);
        long size = ftell(fi);
        fseek(fi, 0, SEEK_SET);
        for (long i = 0; i < size / 2; i++) fputc(fgetc(fi), fo);
    }
    if (fi) fclose(fi);
    if (fo) fclose(fo);
    expect_fail("truncated shard", dir, "model-00002-of-00003.safetensors", NULL);

    /* armo inspect on the same directory: exit 1 and the same message on stderr */
    char cmd[4096], log[1024];
    snprintf(log, sizeof log, "%s/inspect.err", g_tmp);
    snprintf(cmd, sizeof cmd, "%s inspect --model %s > /dev/null 2> %s", ARMO_EXE, dir, log);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "armo inspect on a corrupted shard: exit 1");
    char text[2048];
    test_read_file(log, text, sizeof text);
    CHECK(test_contains(text, "model-00002-of-00003.safetensors"),
          "armo inspect names the corrupted shard: %s", text);
    unlink(log);

    /* a shard removed */
    unlink(p);
    expect_fail("missing shard", dir, "model-00002-of-00003.safetensors", "missing");
    clear_dir(dir);
}

/* transformers 5 writes rope_parameters and dtype instead of rope_theta,
 * rope_scaling and torch_dtype. */
/* armo_model_head_params: the head's sizes from the bundled ArmoRM (dims
 * from tools/gen_fixtures.py: hidden 64, gating 32 x 3, 19 objectives,
 * temperature 10), and refusals of heads a backend must not index. */
static void test_head_params(void) {
    char dir[1024];
    armo_model m;
    armo_err e;
    armo_head_params h;
    snprintf(dir, sizeof dir, "%s/tiny-armorm", ARMO_MODELS_DIR);
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "open %s: %s", dir, e.msg);
        return;
    }
    CHECK(armo_model_head_params(&m, &h, &e) == 0, "head params: %s", e.msg);
    CHECK(h.hidden == 64 && h.k == 19 && h.nlayers == 4, "sizes %d %d %d", h.hidden, h.k,
          h.nlayers);
    CHECK(h.dims[0] == 64 && h.dims[1] == 32 && h.dims[2] == 32 && h.dims[3] == 32 &&
              h.dims[4] == 19,
          "dims %d %d %d %d %d", h.dims[0], h.dims[1], h.dims[2], h.dims[3], h.dims[4]);
    float scale;
    CHECK(m.logit_scale.dtype == ARMO_DT_F32, "logit_scale is F32 in the fixture");
    memcpy(&scale, m.logit_scale.data, 4);
    CHECK(h.logit_scale == scale && h.temperature == 10.0f, "logit_scale %g (tensor %g), T %g",
          h.logit_scale, scale, h.temperature);
    CHECK(!h.regression && !h.gw[0] && !h.transform, "weights are left to the backend");
    armo_model bad = m;
    bad.gating_w[1].cols = 31;
    CHECK(armo_model_head_params(&bad, &h, &e) < 0 &&
              test_contains(e.msg, "gating.layers.1.weight"),
          "a gating layer whose input is not the previous output: '%s'", e.msg);
    bad = m;
    bad.cfg.num_objectives = 18;
    CHECK(armo_model_head_params(&bad, &h, &e) < 0 &&
              test_contains(e.msg, "num_objectives is 18"),
          "K disagreeing with the last gating layer: '%s'", e.msg);
    bad = m;
    bad.cfg.gating_temperature = 0.0;
    CHECK(armo_model_head_params(&bad, &h, &e) < 0 && test_contains(e.msg, "gating_temperature"),
          "T = 0: '%s'", e.msg);
    bad = m;
    bad.gating_nlayers = ARMO_MAX_GATING_LAYERS + 1;
    CHECK(armo_model_head_params(&bad, &h, &e) < 0 && test_contains(e.msg, "layers"),
          "too deep a gating network: '%s'", e.msg);
    armo_model_close(&m);
    snprintf(dir, sizeof dir, "%s/tiny-rm-llama3", ARMO_MODELS_DIR);
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "open %s: %s", dir, e.msg);
        return;
    }
    CHECK(armo_model_head_params(&m, &h, &e) < 0 && test_contains(e.msg, "not an ArmoRM"),
          "a sequence classifier has no gated head: '%s'", e.msg);
    armo_model_close(&m);
}

static void test_config_v5(void) {
    char p[2048];
    path_join(p, sizeof p, g_tmp, "config_v5.json");
    FILE *f = fopen(p, "w");
    if (!f) return;
    fputs("{\"architectures\":[\"LlamaForSequenceClassification\"],\"model_type\":\"llama\","
          "\"hidden_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
          "\"num_key_value_heads\":2,\"intermediate_size\":256,\"vocab_size\":1000,"
          "\"dtype\":\"bfloat16\",\"id2label\":{\"0\":\"LABEL_0\"},\"eos_token_id\":[1,2],"
          "\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":8.0,"
          "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
          "\"original_max_position_embeddings\":8192}}",
          f);
    fclose(f);
    armo_config c;
    armo_err e = {{0}};
    int rc = armo_config_load(p, &c, &e);
    CHECK(rc == 0, "v5 config: %s", e.msg);
    CHECK(c.rope_type == ARMO_ROPE_LLAMA3 && c.rope_theta == 500000.0 && c.rope_factor == 8.0 &&
              c.rope_original_max_pos == 8192,
          "rope_parameters read");
    CHECK(c.head_dim == 32, "head_dim derived: %d", c.head_dim);
    CHECK(c.num_labels == 1, "num_labels from id2label: %d", c.num_labels);
    CHECK(c.n_eos == 2 && c.eos_token_ids[1] == 2, "eos list");
    CHECK(!strcmp(c.torch_dtype, "bfloat16"), "dtype key: %s", c.torch_dtype);
    CHECK(c.pad_token_id == -1 && c.bos_token_id == -1, "absent ids are -1");
    unlink(p);
}

/* Values a config derives (no explicit key) are held to the same ranges as
 * explicit ones (fuzz_config found both gaps): num_labels from id2label's
 * size (17 > ARMO_MAX_LABELS, and 0), head_dim from hidden / heads. */
static void test_derived_ranges(void) {
    static const struct {
        const char *extra, *needle;
    } cases[] = {
        {"\"architectures\":[\"LlamaForSequenceClassification\"],\"id2label\":{\"0\":\"a\","
         "\"1\":\"b\",\"2\":\"c\",\"3\":\"d\",\"4\":\"e\",\"5\":\"f\",\"6\":\"g\",\"7\":\"h\","
         "\"8\":\"i\",\"9\":\"j\",\"10\":\"k\",\"11\":\"l\",\"12\":\"m\",\"13\":\"n\","
         "\"14\":\"o\",\"15\":\"p\",\"16\":\"q\"},\"hidden_size\":128,\"num_attention_heads\":4",
         "17 labels"},
        {"\"architectures\":[\"LlamaForSequenceClassification\"],\"id2label\":{},"
         "\"hidden_size\":128,\"num_attention_heads\":4",
         "0 labels"},
        {"\"architectures\":[\"LlamaForSequenceClassification\"],\"hidden_size\":4096,"
         "\"num_attention_heads\":2",
         "head_dim"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[2048];
        path_join(p, sizeof p, g_tmp, "config_derived.json");
        FILE *f = fopen(p, "w");
        if (!f) return;
        fprintf(f, "{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"num_key_value_heads\":2,"
                   "\"intermediate_size\":256,\"vocab_size\":1000,%s}", cases[i].extra);
        fclose(f);
        armo_config c;
        armo_err e = {{0}};
        CHECK(armo_config_load(p, &c, &e) != 0 && test_contains(e.msg, cases[i].needle) &&
                  test_contains(e.msg, "config_derived.json"),
              "derived-value case %zu must be refused naming '%s': '%s'", i, cases[i].needle,
              e.msg);
        unlink(p);
    }
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_model_load", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    CHECK(armo_objective_name(0) && !strcmp(armo_objective_name(0), "helpsteer-helpfulness"),
          "objective 0");
    CHECK(armo_objective_name(18) && !strcmp(armo_objective_name(18), "code-readability"),
          "objective 18");
    CHECK(armo_objective_name(19) == NULL, "objective 19");
    test_bundled();
    test_broken();
    test_config_v5();
    test_derived_ranges();
    test_head_params();
    rmdir(g_tmp);
    return test_finish("test_model_load");
}
