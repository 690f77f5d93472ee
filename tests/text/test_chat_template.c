/* test_chat_template.c — the Llama-3 chat template against HF
 * apply_chat_template (tests/data/tokenizer/chat.jsonl.xz: rendered text
 * and ids per conversation, from tools/gen_tokenizer_golden.py), plus
 * template recognition / refusal, Python-strip semantics, the gating
 * pattern and the special-tokens-as-text option. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/text/chat_template.h"
#include "host/text/tokenizer.h"
#include "tests/util/test_util.h"

#define TOK_DIR ARMO_MODELS_DIR "/_data/llama3-tokenizer"

static const char *k_llama31_fragment =
    "{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n"
    "{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n";

static char *g_llama3_template; /* the bundled tokenizer_config.json's, copied */

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* A model dir with the Llama-3 tokenizer.json and the given config text. */
static armo_tokenizer *load_with_config(const char *sub, const char *config_json, const char *jinja,
                                        armo_err *e) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/chat_test_%s", ARMO_BINARY_DIR, sub);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    if (symlink(TOK_DIR "/tokenizer.json", path)) return NULL;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (write_file(path, config_json)) return NULL;
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    unlink(path);
    if (jinja && write_file(path, jinja)) return NULL;
    return armo_tokenizer_load(dir, e);
}

static void check_strip(const char *s, const char *expect) {
    size_t st, n = armo_strip_py(s, strlen(s), &st);
    CHECK(n == strlen(expect) && !memcmp(s + st, expect, n), "strip('%s') gave '%.*s'", s, (int)n,
          s + st);
}

int main(void) {
    armo_err e = {{0}};
    armo_tokenizer *tok = armo_tokenizer_load(TOK_DIR, &e);
    CHECK(tok != NULL, "load: %s", e.msg);
    if (!tok) return test_finish("test_chat_template");
    CHECK(armo_chat_check(tok, &e) == 0, "bundled template recognised: %s", e.msg);

    /* HF goldens */
    FILE *p = popen("xz -dc '" ARMO_SOURCE_DIR "/tests/data/tokenizer/chat.jsonl.xz'", "r");
    CHECK(p != NULL, "popen xz");
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int n_conv = 0, bad = 0;
    while (p && (got = getline(&line, &lcap, p)) > 0) {
        json_error_t je;
        json_t *r = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &je);
        CHECK(r != NULL, "golden line: %s", je.text);
        if (!r) continue;
        const char *name = json_string_value(json_object_get(r, "name"));
        json_t *msgs = json_object_get(r, "messages");
        size_t nm = json_array_size(msgs);
        armo_message *m = calloc(nm ? nm : 1, sizeof *m);
        for (size_t i = 0; i < nm; i++) {
            json_t *role = json_object_get(json_array_get(msgs, i), "role");
            json_t *content = json_object_get(json_array_get(msgs, i), "content");
            m[i] = (armo_message){json_string_value(role), json_string_length(role),
                                  json_string_value(content), json_string_length(content)};
        }
        armo_ids ids = {0};
        CHECK(armo_chat_encode(tok, m, nm, 0, &ids, &e) == 0, "%s: %s", name, e.msg);
        json_t *want = json_object_get(r, "ids");
        int same = ids.n == json_array_size(want);
        for (size_t i = 0; same && i < ids.n; i++)
            same = ids.ids[i] == json_integer_value(json_array_get(want, i));
        if (!same) {
            bad++;
            fprintf(stderr, "  %s: %zu ids vs %zu expected\n", name, ids.n, json_array_size(want));
        }
        /* the same conversation as (prefix, final assistant response) */
        if (nm >= 1 && !strcmp(m[nm - 1].role, "assistant")) {
            armo_ids ids2 = {0};
            CHECK(armo_chat_encode_response(tok, m, nm - 1, m[nm - 1].content, m[nm - 1].content_len,
                                            0, &ids2, &e) == 0, "%s: %s", name, e.msg);
            CHECK(ids2.n == ids.n && !memcmp(ids2.ids, ids.ids, ids.n * 4),
                  "%s: encode_response differs from encode", name);
            armo_ids_free(&ids2);
        }
        size_t rl;
        char *txt = armo_chat_render(m, nm, &rl, &e);
        json_t *wt = json_object_get(r, "text");
        CHECK(txt && rl == json_string_length(wt) && !memcmp(txt, json_string_value(wt), rl),
              "%s: rendered text differs from HF", name);
        free(txt);
        armo_ids_free(&ids);
        free(m);
        json_decref(r);
        n_conv++;
    }
    free(line);
    if (p) pclose(p);
    CHECK(n_conv >= 30, "only %d golden conversations", n_conv);
    CHECK(bad == 0, "%d of %d conversations differ from HF apply_chat_template", bad, n_conv);
    printf("golden conversations: %d, mismatches %d\n", n_conv, bad);

    /* gating pattern, derived by tokenizing */
    armo_ids gp = {0};
    CHECK(armo_chat_gating_pattern(tok, &gp, &e) == 0, "%s", e.msg);
    const int32_t want_gp[5] = {128009, 128006, 78191, 128007, 271};
    CHECK(gp.n == 5 && !memcmp(gp.ids, want_gp, sizeof want_gp), "gating pattern (%zu ids)", gp.n);
    armo_ids_free(&gp);

    /* special-token strings inside content: HF default makes them special; the option keeps them
     * text while the template's own tokens stay special */
    armo_message inj[2] = {{"user", 4, "hi <|eot_id|> there", 19}, {"assistant", 9, "ok", 2}};
    armo_ids d = {0}, t = {0};
    CHECK(armo_chat_encode(tok, inj, 2, 0, &d, &e) == 0, "%s", e.msg);
    CHECK(armo_chat_encode(tok, inj, 2, ARMO_TOK_SPECIAL_AS_TEXT, &t, &e) == 0, "%s", e.msg);
    int eot_d = 0, eot_t = 0, sh_t = 0;
    for (size_t i = 0; i < d.n; i++) eot_d += d.ids[i] == 128009;
    for (size_t i = 0; i < t.n; i++) {
        eot_t += t.ids[i] == 128009;
        sh_t += t.ids[i] == 128006;
    }
    CHECK(eot_d == 3, "default: injected <|eot_id|> is special (%d eot)", eot_d);
    CHECK(eot_t == 2 && sh_t == 2 && t.ids[0] == 128000, "as text: structure kept (%d eot)", eot_t);
    /* "hi <|eot_id|> there" as text = HF ids with encode_special_tokens (golden corpus logic):
     * '\n\nhi' ' <|' 'eot' '_id' '|>' ' there' */
    armo_ids_free(&d);
    armo_ids_free(&t);

    /* strip = Python str.strip() */
    check_strip("  a b  ", "a b");
    check_strip("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f x \x1f", "x");
    check_strip("\xc2\x85\xc2\xa0x\xe3\x80\x80", "x");
    check_strip("\xe2\x80\x8bx\xe2\x80\x8b", "\xe2\x80\x8bx\xe2\x80\x8b"); /* ZWSP is not space */
    check_strip("\xe1\x9a\x80\xe2\x80\x80\xe2\x80\x8a\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f", "");
    check_strip("", "");
    check_strip("\xef\xbb\xbfx", "\xef\xbb\xbfx"); /* BOM is not space */
    check_strip("\xc3\xa0", "\xc3\xa0");           /* à: 0xa0 continuation byte is not NBSP */

    /* template recognition */
    const char *tmpl = armo_tokenizer_chat_template(tok);
    g_llama3_template = tmpl ? strdup(tmpl) : strdup("");
    CHECK(armo_chat_template_is_llama3(tmpl), "bundled");
    CHECK(!armo_chat_template_is_llama3(k_llama31_fragment), "3.1 refused");
    CHECK(!armo_chat_template_is_llama3(NULL), "null");
    /* spellings that render the same are recognised ... */
    CHECK(armo_chat_template_is_llama3(
              "{# Llama 3 #}{% for message in messages %}{% set content = \"<|start_header_id|>\" ~ "
              "message.role ~ \"<|end_header_id|>\\n\\n\" ~ message.content | trim ~ \"<|eot_id|>\" %}"
              "{% if loop.first %}{% set content = bos_token ~ content %}{% endif %}{{ content }}"
              "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
              "<|end_header_id|>\n\n' }}{% endif %}"), "equivalent spelling accepted");
    /* ... but not the first Meta release, which always appends the assistant header, nor output
     * text outside tags, nor an eos_token branch */
    CHECK(!armo_chat_template_is_llama3(
              "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
              "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
              "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
              "{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"),
          "unconditional generation header refused");
    CHECK(!armo_chat_template_is_llama3(
              "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
              "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
              "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
              "{% endif %}{{ content }}\n{% endfor %}{% if add_generation_prompt %}{{ "
              "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
          "output newline refused");
    CHECK(!armo_chat_template_is_llama3(
              "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
              "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
              "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
              "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
              "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% else %}{{ eos_token }}{% endif %}"),
          "eos branch refused");
    if (tmpl) {
        /* spacing inside tags does not matter, literal text does */
        size_t L = strlen(tmpl);
        char *v = malloc(2 * L + 8);
        size_t o = 0;
        for (size_t i = 0; i < L; i++) {
            if (tmpl[i] == '%' && tmpl[i + 1] == '}') v[o++] = ' ';
            v[o++] = tmpl[i];
        }
        v[o] = 0;
        CHECK(armo_chat_template_is_llama3(v), "extra spaces before %%} accepted");
        char *nl = strstr(v, "\n\n'+");
        if (nl) {
            memmove(nl, nl + 1, strlen(nl + 1) + 1); /* one newline instead of two */
            CHECK(!armo_chat_template_is_llama3(v), "changed literal refused");
        }
        free(v);
    }
    armo_tokenizer_free(tok);

    /* a model with another template: text refused with a clear message */
    armo_err le = {{0}};
    json_t *cfg = json_pack("{s:s, s:s, s:s}", "bos_token", "<|begin_of_text|>", "eos_token",
                            "<|eot_id|>", "chat_template", k_llama31_fragment);
    char *cfg_text = json_dumps(cfg, 0);
    armo_tokenizer *t31 = load_with_config("llama31", cfg_text, NULL, &le);
    free(cfg_text);
    json_decref(cfg);
    CHECK(t31 != NULL, "load 3.1-style: %s", le.msg);
    if (t31) {
        armo_ids x = {0};
        CHECK(armo_chat_encode(t31, inj, 2, 0, &x, &le) == -1 && test_contains(le.msg, "Llama-3.1") &&
                  test_contains(le.msg, "input_ids"), "refusal message: %s", le.msg);
        CHECK(x.n == 0, "nothing emitted on refusal");
        /* plain encode still works */
        CHECK(armo_tokenizer_encode(t31, "Hello world!", 12, 0, &x, &le) == 0 && x.n == 3, "encode");
        armo_ids_free(&x);
        armo_tokenizer_free(t31);
    }
    armo_tokenizer *tnone = load_with_config("none", "{\"bos_token\": \"<|begin_of_text|>\"}", NULL, &le);
    CHECK(tnone != NULL, "load no-template: %s", le.msg);
    if (tnone) {
        armo_ids x = {0};
        CHECK(armo_chat_encode(tnone, inj, 2, 0, &x, &le) == -1 &&
                  test_contains(le.msg, "no chat_template"), "no template: %s", le.msg);
        armo_ids_free(&x);
        armo_tokenizer_free(tnone);
    }
    /* chat_template.jinja beside tokenizer_config.json wins over its chat_template */
    armo_tokenizer *tj = load_with_config("jinja", "{\"bos_token\": \"<|begin_of_text|>\"}",
                                          g_llama3_template, &le);
    CHECK(tj && armo_chat_check(tj, &le) == 0, "template from chat_template.jinja: %s", le.msg);
    armo_tokenizer_free(tj);
    json_t *cfg3 = json_pack("{s:s, s:s}", "bos_token", "<|begin_of_text|>", "chat_template",
                             g_llama3_template);
    char *cfg3_text = json_dumps(cfg3, 0);
    tj = load_with_config("jinja31", cfg3_text, k_llama31_fragment, &le);
    free(cfg3_text);
    json_decref(cfg3);
    CHECK(tj && armo_chat_check(tj, &le) == -1, "jinja file wins");
    armo_tokenizer_free(tj);
    free(g_llama3_template);
    return test_finish("test_chat_template");
}
