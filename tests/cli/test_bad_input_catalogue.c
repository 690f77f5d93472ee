/* test_bad_input_catalogue.c — what armo says to bad input (issue 16, item
 * 5): one table, k_cases, of bad (and a few borderline good) arguments,
 * files, checkpoints, configs and records, each with the exit status and
 * the message a user needs (a substring of stderr, or of stdout where the
 * message is a record's "error"), run by this one program.
 *
 * A case is a shell command line run from the scratch directory with its
 * input file as standard input; in it
 *   {ARMO}    the armo executable          {M}     the bundled tiny ArmoRM
 *   {T}       the scratch directory        {V:x}   model variant x (below)
 *   {IN}      the case's input file (its `input`, also its stdin)
 *   {OUT}     a fresh output path of its own (removed before the case)
 * Stdout and stderr go to {T}/<name>.stdout / .stderr, unless the command
 * redirects them itself (`> /dev/full`).  A case with LOCK_OUT runs while
 * this process holds an fcntl write lock on {OUT}, as a second armo would.
 *
 * Model variants (k_variants) are made once, in {T}/models/: links to the
 * tiny ArmoRM's files with one thing changed — a NaN / Inf element (copies,
 * tests/util/poisoned_model.h), no tokenizer, another chat template, a
 * config.json edited or replaced, a model.safetensors cut short, with a
 * hostile header, or with one tensor's header entry edited.
 *
 * Exit statuses: 0 ok, 1 some records failed, 2 refused up front (bad
 * arguments, files, checkpoint, template, non-finite weights); `armo
 * inspect` exits 1 for a checkpoint it cannot load.
 *
 * ARMO_CATALOGUE_ARMO=PATH runs the table against another armo executable
 * (an older build: which cases it fails); ARMO_CATALOGUE_VERBOSE=1 prints
 * each case's exit status and first line of stderr. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/util/poisoned_model.h"
#include "tests/util/test_util.h"

#define TINY ARMO_MODELS_DIR "/tiny-armorm"

/* ---- the model variants ----------------------------------------------------------- */

enum {
    V_POISON,      /* a copy; tensor a, element (int)b, value c: "nan" "inf" "-inf" */
    V_NO_TOKENIZER,     /* no tokenizer.json, no tokenizer_config.json */
    V_TEMPLATE,    /* tokenizer_config.json with chat_template a */
    V_CONFIG_TEXT, /* config.json is text a */
    V_CONFIG_SET,  /* config.json with key a set to JSON b (NULL: removed) */
    V_ST_PREFIX,   /* model.safetensors: its first a bytes (decimal) */
    V_ST_RAW,      /* model.safetensors: 8-byte little-endian length (decimal b), then text a */
    V_ST_EDIT,     /* model.safetensors with tensor a's header entry key b set to JSON c
                    * (b NULL: the entry removed) */
};

static const struct {
    const char *name;
    int kind;
    const char *a, *b, *c;
} k_variants[] = {
    {"nan_head", V_POISON, "regression_layer.weight", "7", "nan"},
    {"inf_norm", V_POISON, "model.norm.weight", "3", "inf"},
    {"no_tokenizer", V_NO_TOKENIZER, NULL, NULL, NULL},
    {"chatml", V_TEMPLATE,
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
     "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}", NULL, NULL},
    {"cfg_not_json", V_CONFIG_TEXT, "{\n  \"hidden_size\": 64,\n  oops\n}\n", NULL, NULL},
    {"cfg_empty", V_CONFIG_TEXT, "", NULL, NULL},
    {"cfg_array", V_CONFIG_TEXT, "[1, 2, 3]\n", NULL, NULL},
    {"cfg_hidden_string", V_CONFIG_SET, "hidden_size", "\"64\"", NULL},
    {"cfg_hidden_negative", V_CONFIG_SET, "hidden_size", "-64", NULL},
    {"cfg_no_layers", V_CONFIG_SET, "num_hidden_layers", NULL, NULL},
    {"cfg_heads_3", V_CONFIG_SET, "num_attention_heads", "3", NULL},
    {"cfg_arch_gpt2", V_CONFIG_SET, "architectures", "[\"GPT2LMHeadModel\"]", NULL},
    {"cfg_rope_yarn", V_CONFIG_SET, "rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4}",
     NULL},
    {"cfg_vocab_200000", V_CONFIG_SET, "vocab_size", "200000", NULL},
    {"cfg_hidden_128", V_CONFIG_SET, "hidden_size", "128", NULL},
    {"cfg_layers_3", V_CONFIG_SET, "num_hidden_layers", "3", NULL},
    {"cfg_objectives_0", V_CONFIG_SET, "num_objectives", "0", NULL},
    {"st_truncated", V_ST_PREFIX, "9000000", NULL, NULL},
    {"st_tiny", V_ST_PREFIX, "5", NULL, NULL},
    {"st_header_huge", V_ST_RAW, "{}", "1099511627776", NULL},
    {"st_header_not_json", V_ST_RAW, "notjson!", "8", NULL},
    {"st_offsets_past_end", V_ST_EDIT, "model.norm.weight", "data_offsets", "[0, 99999999999]"},
    {"st_shape_wrong", V_ST_EDIT, "model.norm.weight", "shape", "[65]"},
    {"st_dtype_unknown", V_ST_EDIT, "model.norm.weight", "dtype", "\"Q4\""},
    {"st_no_norm", V_ST_EDIT, "model.norm.weight", NULL, NULL},
};

static char g_tmp[512];

static int write_text(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(text, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* dir: links to the tiny ArmoRM's files but `skip` (a file name, or NULL). */
static int link_model(const char *dir, const char *skip1, const char *skip2) {
    static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                  "tokenizer_config.json"};
    mkdir(dir, 0755);
    for (int i = 0; i < 4; i++) {
        char from[1024], to[1200];
        snprintf(from, sizeof from, "%s/%s", TINY, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        unlink(to);
        if ((skip1 && !strcmp(files[i], skip1)) || (skip2 && !strcmp(files[i], skip2))) continue;
        if (symlink(from, to)) return -1;
    }
    return 0;
}

/* model.safetensors of the tiny model with one header entry edited. */
static int edit_header(const char *dst, const char *tensor, const char *key, const char *val) {
    size_t len;
    char *buf = read_whole(TINY "/model.safetensors", &len);
    if (!buf || len < 8) return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)buf[i];
    json_error_t je;
    json_t *h = json_loadb(buf + 8, (size_t)hl, 0, &je);
    json_t *t = h ? json_object_get(h, tensor) : NULL;
    int rc = -1;
    if (t) {
        if (!key) {
            json_object_del(h, tensor);
        } else {
            json_t *v = json_loads(val, JSON_DECODE_ANY, &je);
            json_object_set_new(t, key, v);
        }
        char *txt = json_dumps(h, JSON_COMPACT);
        size_t tl = strlen(txt);
        FILE *f = fopen(dst, "wb");
        unsigned char lb[8];
        for (int i = 0; i < 8; i++) lb[i] = (unsigned char)((uint64_t)tl >> (8 * i));
        rc = f && fwrite(lb, 1, 8, f) == 8 && fwrite(txt, 1, tl, f) == tl &&
                     fwrite(buf + 8 + hl, 1, len - 8 - hl, f) == len - 8 - hl
                 ? 0
                 : -1;
        if (f && fclose(f)) rc = -1;
        free(txt);
    }
    json_decref(h);
    free(buf);
    return rc;
}

static int make_variant(int k) {
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/models/%s", g_tmp, k_variants[k].name);
    const char *a = k_variants[k].a, *b = k_variants[k].b, *c = k_variants[k].c;
    switch (k_variants[k].kind) {
    case V_POISON: {
        if (test_copy_model(TINY, dir)) return -1;
        float v = !strcmp(c, "nan") ? NAN : !strcmp(c, "inf") ? INFINITY : -INFINITY;
        return test_poison_tensor(dir, a, atoll(b), v);
    }
    case V_NO_TOKENIZER:
        return link_model(dir, "tokenizer.json", "tokenizer_config.json");
    case V_TEMPLATE: {
        if (link_model(dir, "tokenizer_config.json", NULL)) return -1;
        json_error_t je;
        json_t *cfg = json_load_file(TINY "/tokenizer_config.json", 0, &je);
        if (!cfg) return -1;
        json_object_set_new(cfg, "chat_template", json_string(a));
        snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
        int rc = json_dump_file(cfg, p, 0);
        json_decref(cfg);
        return rc;
    }
    case V_CONFIG_TEXT:
        if (link_model(dir, "config.json", NULL)) return -1;
        snprintf(p, sizeof p, "%s/config.json", dir);
        return write_text(p, a, strlen(a));
    case V_CONFIG_SET: {
        if (link_model(dir, "config.json", NULL)) return -1;
        json_error_t je;
        json_t *cfg = json_load_file(TINY "/config.json", 0, &je);
        if (!cfg) return -1;
        if (b) json_object_set_new(cfg, a, json_loads(b, JSON_DECODE_ANY, &je));
        else json_object_del(cfg, a);
        snprintf(p, sizeof p, "%s/config.json", dir);
        int rc = json_dump_file(cfg, p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(cfg);
        return rc;
    }
    case V_ST_PREFIX: {
        if (link_model(dir, "model.safetensors", NULL)) return -1;
        size_t len;
        char *buf = read_whole(TINY "/model.safetensors", &len);
        size_t keep = (size_t)atoll(a);
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        int rc = buf && keep < len ? write_text(p, buf, keep) : -1;
        free(buf);
        return rc;
    }
    case V_ST_RAW: {
        if (link_model(dir, "model.safetensors", NULL)) return -1;
        char raw[256];
        uint64_t hl = (uint64_t)atoll(b);
        for (int i = 0; i < 8; i++) raw[i] = (char)(hl >> (8 * i));
        size_t n = strlen(a);
        memcpy(raw + 8, a, n);
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        return write_text(p, raw, 8 + n);
    }
    case V_ST_EDIT:
        if (link_model(dir, "model.safetensors", NULL)) return -1;
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        return edit_header(p, a, b, c);
    }
    return -1;
}

/* ---- the catalogue ---------------------------------------------------------------- */

enum { NONE, LOCK_OUT };

typedef struct {
    const char *name;
    const char *cmd;    /* shell command line ({ARMO}, {M}, {V:x}, {T}, {IN}, {OUT}) */
    const char *input;  /* {IN}'s contents, also the standard input (NULL: empty) */
    int setup;          /* NONE or LOCK_OUT */
    int status;         /* the exit status expected */
    const char *err;    /* a substring of stderr (NULL: not checked) */
    const char *out;    /* a substring of stdout (NULL: not checked) */
} bad_case;

#define SCORE "{ARMO} score --device cpu --quiet "
#define REC_PR "{\"id\":\"a\",\"prompt\":\"Say hi.\",\"response\":\"Hi!\"}\n"
#define REC_IDS                                                                                \
    "{\"id\":\"ids\",\"input_ids\":[128000,128006,882,128007,271,13347,128009,128006,78191,"   \
    "128007,271,13347,0,128009]}\n"

static const bad_case k_cases[] = {
    /* ---- arguments ---- */
    {"no_arguments", "{ARMO}", NULL, NONE, 2, "usage: armo <command>", NULL},
    {"unknown_command", "{ARMO} frobnicate", NULL, NONE, 2, "unknown command 'frobnicate'", NULL},
    {"version", "{ARMO} --version", NULL, NONE, 0, NULL, "armo 0.1.0 ("},
    {"version_build_flags", "{ARMO} score --version", NULL, NONE, 0, NULL, "build "},
    {"score_no_model", SCORE, NULL, NONE, 2, "armo score: --model DIR is required", NULL},
    {"score_model_no_value", "{ARMO} score --model", NULL, NONE, 2,
     "armo score: option '--model' needs a value", NULL},
    {"score_opt_equals_value", SCORE "--model={M} --input={IN} --output={OUT} --explain=2 "
     "&& cat {OUT}", REC_PR, NONE, 0, NULL, "\"id\":\"a\",\"score\":"},
    {"score_bad_device", SCORE "--model {M} --device=tpu", NULL, NONE, 2,
     "--device expects auto, cuda or cpu, got 'tpu'", NULL},
    {"score_bad_int", SCORE "--model {M} --max-length 12x", NULL, NONE, 2,
     "armo score: --max-length expects an integer in [1, 2147483647], got '12x'", NULL},
    {"score_negative_threads", SCORE "--model {M} --threads=-1", NULL, NONE, 2,
     "--threads expects an integer in [0, 1024], got '-1'", NULL},
    {"score_int_overflow", SCORE "--model {M} --window 99999999999999999999", NULL, NONE, 2,
     "--window expects an integer in [1, 16777216], got '99999999999999999999'", NULL},
    {"score_unknown_option", SCORE "--model {M} --frobnicate", NULL, NONE, 2,
     "armo score: unknown option '--frobnicate'", NULL},
    {"score_abbreviated_option", SCORE "--mod {M}", NULL, NONE, 2,
     "unknown option '--mod' (options are spelled in full", NULL},
    {"score_flag_with_value", SCORE "--model {M} --resume=yes --output {OUT}", NULL, NONE, 2,
     "option '--resume' takes no value", NULL},
    {"score_bad_truncate", SCORE "--model {M} --truncate right", NULL, NONE, 2,
     "--truncate expects none or left, got 'right'", NULL},
    {"score_resume_stdout", SCORE "--model {M} --resume", NULL, NONE, 2,
     "--resume needs --output FILE", NULL},
    {"score_stray_argument", SCORE "--model {M} records.jsonl", NULL, NONE, 2,
     "unexpected argument 'records.jsonl' (the input is --input FILE)", NULL},
    {"inspect_no_model", "{ARMO} inspect", NULL, NONE, 2, "armo inspect: --model DIR is required",
     NULL},
    {"inspect_zero_batch", "{ARMO} inspect --model {M} --max-batch-tokens=0", NULL, NONE, 2,
     "--max-batch-tokens expects an integer in [1, 2147483647], got '0'", NULL},
    {"tokenize_two_texts", "{ARMO} tokenize --model {M} one two", NULL, NONE, 2,
     "one TEXT or FILE argument at most", NULL},
    {"bench_bad_ceiling", "{ARMO} bench --device cpu --ceiling=12", NULL, NONE, 2,
     "--ceiling 12 is not a multiple of 8", NULL},
    {"bench_bad_workload", "{ARMO} bench --device cpu --workload z", NULL, NONE, 2,
     "--workload expects a, b, c or all, got 'z'", NULL},

    /* ---- input and output files ---- */
    {"input_is_output", SCORE "--model {M} --input {IN} --output {IN}", REC_PR, NONE, 2,
     "is the input", NULL},
    {"input_hard_linked_as_output",
     "ln -f {IN} {T}/hardlink.jsonl && " SCORE "--model {M} --input {IN} --output "
     "{T}/hardlink.jsonl", REC_PR, NONE, 2, "(the same file): refusing to overwrite the input",
     NULL},
    {"output_locked", SCORE "--model {M} --input {IN} --output {OUT}", REC_PR, LOCK_OUT, 2,
     "is being written by another process (pid", NULL},
    {"input_missing", SCORE "--model {M} --input {T}/no-such.jsonl", NULL, NONE, 2,
     "cannot open input {T}/no-such.jsonl: No such file or directory", NULL},
    {"input_is_directory", SCORE "--model {M} --input {T}", NULL, NONE, 2,
     "reading {T} failed at line 1: Is a directory", NULL},
    {"output_dir_missing", SCORE "--model {M} --input {IN} --output {T}/no/such/out.jsonl",
     REC_PR, NONE, 2, "cannot open output {T}/no/such/out.jsonl: No such file or directory",
     NULL},
    {"output_write_error", SCORE "--model {M} --input {IN} --output /dev/full", REC_PR REC_PR,
     NONE, 2, "writing line 1 of /dev/full: No space left on device (the result of input line 1)",
     NULL},
    {"output_write_error_after_blank_line", SCORE "--model {M} --input {IN} --output /dev/full",
     "\n" REC_PR, NONE, 2,
     "writing line 1 of /dev/full: No space left on device (the result of input line 2)", NULL},
    {"stdout_write_error_score", SCORE "--model {M} --input {IN} > /dev/full", REC_PR, NONE, 2,
     "writing line 1 of the standard output: No space left on device", NULL},
    {"stdout_write_error_inspect", "{ARMO} inspect --model {M} > /dev/full", NULL, NONE, 2,
     "armo inspect: writing the standard output failed: No space left on device", NULL},
    {"stdout_write_error_tokenize", "{ARMO} tokenize --model {M} hello > /dev/full", NULL, NONE,
     2, "armo tokenize: writing the standard output failed: No space left on device", NULL},
    {"resume_other_output",
     "printf '{\"id\":\"zzz\",\"score\":1}\\n' > {OUT} && " SCORE "--model {M} --input {IN} "
     "--output {OUT} --resume", REC_PR, NONE, 2, "--resume: line 1 of {OUT}", NULL},

    /* ---- checkpoints: non-finite weights, tokenizer, template ---- */
    {"nan_in_head_refused", SCORE "--model {V:nan_head} --input {IN}", REC_PR, NONE, 2,
     "tensor 'regression_layer.weight' [0, 7] is NaN", NULL},
    {"inf_in_final_norm_refused", SCORE "--model {V:inf_norm} --input {IN}", REC_PR, NONE, 2,
     "tensor 'model.norm.weight' [3] is +Inf", NULL},
    {"nan_in_head_allowed", SCORE "--model {V:nan_head} --input {IN} --allow-nonfinite-weights",
     REC_PR, NONE, 1, NULL, "line 1 (id \\\"a\\\"): non-finite reward 'helpsteer-helpfulness' is NaN"},
    {"inf_in_final_norm_allowed",
     SCORE "--model {V:inf_norm} --input {IN} --allow-nonfinite-weights", REC_PR, NONE, 1, NULL,
     "non-finite backbone hidden state at the last token"},
    {"inspect_check_weights_nan", "{ARMO} inspect --model {V:nan_head} --check-weights", NULL,
     NONE, 2, "tensor 'regression_layer.weight' [0, 7] is NaN", NULL},
    {"no_tokenizer_inspect", "{ARMO} inspect --model {V:no_tokenizer}", NULL, NONE, 2,
     "tokenizer.json", "unsupported chat template (no usable tokenizer)"},
    {"no_tokenizer_score", SCORE "--model {V:no_tokenizer} --input {IN}", REC_PR, NONE, 2,
     "tokenizer.json", NULL},
    {"no_tokenizer_input_ids_only",
     SCORE "--model {V:no_tokenizer} --input {IN} --input-ids-only", REC_IDS, NONE, 0, NULL,
     "\"id\":\"ids\",\"score\":"},
    {"chatml_template_inspect", "{ARMO} inspect --model {V:chatml}", NULL, NONE, 2,
     "tokenizer_config.json: the chat_template (", "unsupported chat template"},
    {"chatml_template_score", SCORE "--model {V:chatml} --input {IN}", REC_PR, NONE, 2,
     "tokenizer_config.json: the chat_template (", NULL},
    {"chatml_template_input_ids_only", SCORE "--model {V:chatml} --input {IN} --input-ids-only",
     REC_IDS, NONE, 0, NULL, "\"id\":\"ids\",\"score\":"},
    {"ipython_role_accepted", SCORE "--model {M} --input {IN}",
     "{\"id\":\"py\",\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"ipython\","
     "\"content\":\"4\"},{\"role\":\"assistant\",\"content\":\"4.\"}]}\n", NONE, 0, NULL,
     "\"id\":\"py\",\"score\":"},
    {"model_dir_missing", SCORE "--model {T}/no-such-model --input {IN}", REC_PR, NONE, 2,
     "{T}/no-such-model", NULL},

    /* ---- config.json ---- */
    {"config_not_json", "{ARMO} inspect --model {V:cfg_not_json}", NULL, NONE, 1,
     "cfg_not_json/config.json:3:6: config is not valid JSON", NULL},
    {"config_empty", "{ARMO} inspect --model {V:cfg_empty}", NULL, NONE, 1,
     "cfg_empty/config.json:1:0: config is not valid JSON", NULL},
    {"config_not_object", "{ARMO} inspect --model {V:cfg_array}", NULL, NONE, 1,
     "cfg_array/config.json: top level must be a JSON object", NULL},
    {"config_hidden_string", "{ARMO} inspect --model {V:cfg_hidden_string}", NULL, NONE, 1,
     "config.json: key \"hidden_size\" must be an integer", NULL},
    {"config_hidden_negative", "{ARMO} inspect --model {V:cfg_hidden_negative}", NULL, NONE, 1,
     "config.json: key \"hidden_size\" = -64 is out of range", NULL},
    {"config_no_layers", "{ARMO} inspect --model {V:cfg_no_layers}", NULL, NONE, 1,
     "config.json: required key \"num_hidden_layers\" is missing", NULL},
    {"config_heads_3", "{ARMO} inspect --model {V:cfg_heads_3}", NULL, NONE, 1,
     "config.json: num_attention_heads (3) must be a multiple of num_key_value_heads (2)", NULL},
    {"config_arch_gpt2", "{ARMO} inspect --model {V:cfg_arch_gpt2}", NULL, NONE, 1,
     "config.json: architecture \"GPT2LMHeadModel\" is not supported", NULL},
    {"config_rope_yarn", "{ARMO} inspect --model {V:cfg_rope_yarn}", NULL, NONE, 1,
     "config.json: rope_scaling type \"yarn\" is not supported", NULL},
    {"config_vocab_mismatch", "{ARMO} inspect --model {V:cfg_vocab_200000}", NULL, NONE, 1,
     "tensor 'model.embed_tokens.weight' has shape [128257, 64] but config.json implies "
     "[200000, 64]", NULL},
    {"config_hidden_mismatch", "{ARMO} inspect --model {V:cfg_hidden_128}", NULL, NONE, 1,
     "tensor 'model.embed_tokens.weight' has shape [128257, 64] but config.json implies "
     "[128257, 128]", NULL},
    {"config_layers_mismatch", "{ARMO} inspect --model {V:cfg_layers_3}", NULL, NONE, 1,
     "tensor 'model.layers.2.input_layernorm.weight' is missing from the checkpoint", NULL},
    {"config_no_objectives", "{ARMO} inspect --model {V:cfg_objectives_0}", NULL, NONE, 1,
     "cfg_objectives_0/config.json: key \"num_objectives\" = 0 is out of range", NULL},
    {"config_error_in_score", SCORE "--model {V:cfg_heads_3} --input {IN}", REC_PR, NONE, 2,
     "cfg_heads_3/config.json: num_attention_heads (3) must be a multiple", NULL},

    /* ---- safetensors ---- */
    {"safetensors_truncated", "{ARMO} inspect --model {V:st_truncated}", NULL, NONE, 1,
     "st_truncated/model.safetensors: tensor \"model.embed_tokens.weight\": data_offsets "
     "[25588, 16442484] run past the end of the data section", NULL},
    {"safetensors_5_bytes", "{ARMO} inspect --model {V:st_tiny}", NULL, NONE, 1,
     "st_tiny/model.safetensors: file is 5 bytes, shorter than the 8-byte header length", NULL},
    {"safetensors_header_huge", "{ARMO} inspect --model {V:st_header_huge}", NULL, NONE, 1,
     "st_header_huge/model.safetensors: header length 1099511627776 exceeds the limit", NULL},
    {"safetensors_header_not_json", "{ARMO} inspect --model {V:st_header_not_json}", NULL, NONE,
     1, "st_header_not_json/model.safetensors: header is not valid JSON (line 1, column 7)",
     NULL},
    {"safetensors_offsets_past_end", "{ARMO} inspect --model {V:st_offsets_past_end}", NULL,
     NONE, 1, "model.safetensors: tensor \"model.norm.weight\": data_offsets [0, 99999999999] "
     "run past the end", NULL},
    {"safetensors_shape_wrong", "{ARMO} inspect --model {V:st_shape_wrong}", NULL, NONE, 1,
     "model.safetensors: tensor \"model.norm.weight\": data_offsets span 128 bytes but shape "
     "[65] of BF16 needs 130 bytes", NULL},
    {"safetensors_dtype_unknown", "{ARMO} inspect --model {V:st_dtype_unknown}", NULL, NONE, 1,
     "model.safetensors: tensor \"model.norm.weight\": unknown dtype \"Q4\"", NULL},
    {"safetensors_tensor_missing", "{ARMO} inspect --model {V:st_no_norm}", NULL, NONE, 1,
     "st_no_norm: tensor 'model.norm.weight' is missing from the checkpoint", NULL},
    {"safetensors_error_in_score", SCORE "--model {V:st_truncated} --input {IN}", REC_PR, NONE, 2,
     "st_truncated/model.safetensors: tensor \"model.embed_tokens.weight\"", NULL},

    /* ---- records (a bad record: its own {"id","error"} line, exit 1) ---- */
    {"record_not_json", SCORE "--model {M} --input {IN}", REC_PR "{\"id\":\"b\",\"prompt\":\n",
     NONE, 1, NULL, "line 2 (id \\\"b\\\"): not valid JSON at column"},
    {"record_not_json_summary", "{ARMO} score --device cpu --model {M} --input {IN}",
     REC_PR "{\"id\":\"b\",\"prompt\":\n", NONE, 1, "1 of 2 records failed", NULL},
    {"record_not_object", SCORE "--model {M} --input {IN}", "[1, 2, 3]\n", NONE, 1, NULL,
     "line 1 (no id): a record must be a JSON object, not an array"},
    {"record_empty_messages", SCORE "--model {M} --input {IN}", "{\"id\":7,\"messages\":[]}\n",
     NONE, 1, NULL, "line 1 (id 7): \\\"messages\\\" is empty"},
    {"record_unknown_role", SCORE "--model {M} --input {IN}",
     "{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}\n", NONE, 1, NULL,
     "messages[0].role \\\"robot\\\" is not one of"},
    {"record_content_not_string", SCORE "--model {M} --input {IN}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[\"hi\"]}]}\n", NONE, 1, NULL,
     "messages[0].content must be a string"},
    {"record_prompt_and_messages", SCORE "--model {M} --input {IN}",
     "{\"prompt\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"response\":\"b\"}\n",
     NONE, 1, NULL, "give either \\\"prompt\\\" or \\\"messages\\\", not both"},
    {"record_pair_chosen_not_string", SCORE "--model {M} --input {IN}",
     "{\"prompt\":\"a\",\"chosen\":1,\"rejected\":\"b\"}\n", NONE, 1, NULL,
     "\\\"chosen\\\" must be a string, not"},
    {"record_pair_without_rejected", SCORE "--model {M} --input {IN}",
     "{\"id\":\"p\",\"prompt\":\"a\",\"chosen\":\"b\"}\n", NONE, 1, NULL,
     "line 1 (id \\\"p\\\"): a pair needs both \\\"chosen\\\" and \\\"rejected\\\""},
    {"record_empty_responses", SCORE "--model {M} --input {IN}",
     "{\"prompt\":\"a\",\"responses\":[]}\n", NONE, 1, NULL,
     "\\\"responses\\\" must be a non-empty array"},
    {"record_input_ids_bad_id", SCORE "--model {M} --input {IN}",
     "{\"id\":\"x\",\"input_ids\":[128000,\"a\"]}\n", NONE, 1, NULL,
     "input_ids[1] is not a token id"},
    {"record_input_ids_out_of_vocab", SCORE "--model {M} --input {IN}",
     "{\"id\":\"x\",\"input_ids\":[128000,999999]}\n", NONE, 1, NULL,
     "input_ids[1] = 999999 is outside the model's vocabulary (128257 ids)"},
    {"record_no_assistant_turn", SCORE "--model {M} --input {IN}",
     "{\"id\":\"u\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n", NONE, 1, NULL,
     "line 1 (id \\\"u\\\"): Token pattern not found"},
    {"record_too_long_truncate_none", SCORE "--model {M} --input {IN} --max-length 8", REC_PR,
     NONE, 1, NULL,
     "line 1 (id \\\"a\\\"): the sequence has 16 tokens, more than --max-length 8"},
    {"record_bad_utf8", SCORE "--model {M} --input {IN}",
     "{\"id\":\"u8\",\"prompt\":\"a\xff\",\"response\":\"b\"}\n", NONE, 1, NULL,
     "line 1 (id \\\"u8\\\"): not valid JSON at column 22: unable to decode byte 0xff"},
    {"tokenize_bad_record", "{ARMO} tokenize --model {M} --jsonl {IN}",
     "{\"id\":1,\"prompt\":\"a\",\"response\":\"b\"}\n{\"id\":2,\"prompt\":3}\n", NONE, 1,
     "1 record(s) failed", "line 2 (id 2): \\\"prompt\\\" must be a string, not an integer"},
};

/* ---- running one case ----------------------------------------------------------- */

/* s with the placeholders of case c expanded, into out. */
static void expand(const char *s, const char *name, char *out, size_t len) {
    size_t o = 0;
    while (*s && o + 1 < len) {
        char rep[1200] = "";
        const char *end = NULL;
        if (*s == '{') end = strchr(s, '}');
        if (end) {
            size_t n = (size_t)(end - s - 1);
            if (n == 4 && !strncmp(s + 1, "ARMO", 4))
                snprintf(rep, sizeof rep, "%s",
                         getenv("ARMO_CATALOGUE_ARMO") ? getenv("ARMO_CATALOGUE_ARMO") : ARMO_EXE);
            else if (n == 1 && s[1] == 'M') snprintf(rep, sizeof rep, "%s", TINY);
            else if (n == 1 && s[1] == 'T') snprintf(rep, sizeof rep, "%s", g_tmp);
            else if (n == 2 && !strncmp(s + 1, "IN", 2))
                snprintf(rep, sizeof rep, "%s/%s.in.jsonl", g_tmp, name);
            else if (n == 3 && !strncmp(s + 1, "OUT", 3))
                snprintf(rep, sizeof rep, "%s/%s.out.jsonl", g_tmp, name);
            else if (n > 2 && !strncmp(s + 1, "V:", 2))
                snprintf(rep, sizeof rep, "%s/models/%.*s", g_tmp, (int)n - 2, s + 3);
            else end = NULL;
        }
        if (!end) {
            out[o++] = *s++;
            continue;
        }
        size_t rl = strlen(rep);
        if (o + rl >= len) break;
        memcpy(out + o, rep, rl);
        o += rl;
        s = end + 1;
    }
    out[o] = 0;
}

static char g_out[1 << 16], g_err[1 << 16];

static void run_case(const bad_case *c) {
    char in[1024], out[1024], cmd[4096], full[8192], so[1100], se[1100];
    expand("{IN}", c->name, in, sizeof in);
    expand("{OUT}", c->name, out, sizeof out);
    expand(c->cmd, c->name, cmd, sizeof cmd);
    snprintf(so, sizeof so, "%s/%s.stdout", g_tmp, c->name);
    snprintf(se, sizeof se, "%s/%s.stderr", g_tmp, c->name);
    const char *input = c->input ? c->input : "";
    CHECK(write_text(in, input, strlen(input)) == 0, "%s: cannot write %s", c->name, in);
    unlink(out);
    int lock_fd = -1;
    if (c->setup == LOCK_OUT) {
        lock_fd = open(out, O_RDWR | O_CREAT, 0644);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        CHECK(lock_fd >= 0 && fcntl(lock_fd, F_SETLK, &fl) == 0, "%s: cannot lock %s",
              c->name, out);
    }
    snprintf(full, sizeof full, "cd '%s' && ( %s ) < '%s' > '%s' 2> '%s'", g_tmp, cmd, in, so,
             se);
    int st = system(full);
    if (lock_fd >= 0) close(lock_fd);
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    test_read_file(so, g_out, sizeof g_out);
    test_read_file(se, g_err, sizeof g_err);
    char want_err[2048] = "", want_out[2048] = "";
    if (c->err) expand(c->err, c->name, want_err, sizeof want_err);
    if (c->out) expand(c->out, c->name, want_out, sizeof want_out);
    int ok = status == c->status && (!c->err || test_contains(g_err, want_err)) &&
             (!c->out || test_contains(g_out, want_out));
    CHECK(ok, "case %s: exit %d (expected %d)%s%s%s%s\n  command: %s\n  stderr: %.1500s\n"
          "  stdout: %.1500s", c->name, status, c->status, c->err ? ", stderr should hold: " : "",
          c->err ? want_err : "", c->out ? ", stdout should hold: " : "", c->out ? want_out : "",
          cmd, g_err, g_out);
    if (getenv("ARMO_CATALOGUE_VERBOSE")) /* each case's first line of stderr */
        printf("%-34s exit %d  %.*s\n", c->name, status, (int)strcspn(g_err, "\n"), g_err);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_bad_input_catalogue", ARMO_BINARY_DIR);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/models'", g_tmp, g_tmp);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make %s\n", g_tmp);
        return 1;
    }
    const int nv = (int)(sizeof k_variants / sizeof k_variants[0]);
    for (int k = 0; k < nv; k++)
        CHECK(make_variant(k) == 0, "cannot make model variant %s", k_variants[k].name);
    const int n = (int)(sizeof k_cases / sizeof k_cases[0]);
    int dup = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(k_cases[i].name, k_cases[j].name)) dup = i;
    CHECK(!dup, "two cases named %s", k_cases[dup].name);
    for (int i = 0; i < n; i++) run_case(&k_cases[i]);
    printf("%d cases\n", n);
    return test_finish("test_bad_input_catalogue");
}
