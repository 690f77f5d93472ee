/* test_template_golden.c — the Llama-3 and Llama-3.1 chat templates against
 * Hugging Face apply_chat_template, byte for byte and id for id.
 *
 * Data (tools/gen_template_golden.py, transformers' apply_chat_template with
 * its defaults on the bundled Llama-3 tokenizer): tests/data/template/
 *   llama3.jinja, llama31.jinja  the two template strings (also checked
 *                                against the copies compiled into armo)
 *   goldens.jsonl.xz             per (template, conversation): HF's rendered
 *                                text and ids, or the word armo's refusal
 *                                must contain (tool_calls under 3.1, a
 *                                non-string content, an unknown role)
 *   variants.jsonl.xz            edits of each template and whether HF
 *                                renders them the same: recognised iff so
 * Each conversation goes through the record parser and armo_record_encode
 * (the path `armo score` takes), the renderer, and encode_response. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/text/chat_template.h"
#include "host/text/records.h"
#include "host/text/tokenizer.h"
#include "tests/util/test_util.h"

#define TOK_DIR ARMO_MODELS_DIR "/_data/llama3-tokenizer"
#define DATA_DIR ARMO_SOURCE_DIR "/tests/data/template"

static const struct {
    const char *name;
    armo_chat_kind kind;
} k_templates[] = {{"llama3", ARMO_CHAT_LLAMA3}, {"llama31", ARMO_CHAT_LLAMA31}};

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return s;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* A model dir with the Llama-3 tokenizer.json and the template either in
 * chat_template.jinja (in_config 0) or in tokenizer_config.json. */
static armo_tokenizer *load_with_template(const char *name, const char *tmpl, int in_config,
                                          armo_err *e) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/tpl_golden_%s%s", ARMO_BINARY_DIR, name, in_config ? "_cfg" : "");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    if (symlink(TOK_DIR "/tokenizer.json", path)) return NULL;
    json_t *cfg = json_pack("{s:s, s:s}", "bos_token", "<|begin_of_text|>", "eos_token", "<|eot_id|>");
    if (in_config) json_object_set_new(cfg, "chat_template", json_string(tmpl));
    char *cfg_text = json_dumps(cfg, 0);
    json_decref(cfg);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    int rc = write_text(path, cfg_text);
    free(cfg_text);
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    unlink(path);
    if (rc || (!in_config && write_text(path, tmpl))) return NULL;
    return armo_tokenizer_load(dir, e);
}

static armo_tokenizer *g_tok[2];

static int template_index(const char *name) {
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, k_templates[i].name)) return i;
    return -1;
}

static int same_ids(const armo_ids *a, json_t *want) {
    if (a->n != json_array_size(want)) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->ids[i] != json_integer_value(json_array_get(want, i))) return 0;
    return 1;
}

/* One golden line; returns 1 when armo agrees with it. */
static int check_golden(json_t *g, int *n_refused) {
    const char *tname = json_string_value(json_object_get(g, "template"));
    const char *name = json_string_value(json_object_get(g, "name"));
    int t = template_index(tname ? tname : "");
    CHECK(t >= 0 && name, "golden line without a known template / name");
    if (t < 0 || !name || !g_tok[t]) return 0;
    json_t *rec = json_pack("{s:s, s:O}", "id", name, "messages", json_object_get(g, "messages"));
    char *line = json_dumps(rec, 0);
    json_decref(rec);
    armo_record r;
    armo_err e = {{0}};
    armo_ids ids = {0};
    int ok = 1;
    const char *why = json_string_value(json_object_get(g, "refused"));
    int parsed = armo_record_parse(line, strlen(line), 1, &r, &e) == 0;
    if (why) { /* armo refuses on purpose, at parse or at encode time */
        int refused = !parsed || armo_record_encode(g_tok[t], &r, 0, 0, &ids, &e) != 0;
        CHECK(refused && test_contains(e.msg, why), "%s/%s: expected a refusal naming '%s', got %s",
              tname, name, why, refused ? e.msg : "none");
        ok = refused && test_contains(e.msg, why);
        (*n_refused)++;
    } else if (!parsed) {
        CHECK(0, "%s/%s: %s", tname, name, e.msg);
        ok = 0;
    } else {
        /* ids through the record path */
        json_t *want = json_object_get(g, "ids");
        if (armo_record_encode(g_tok[t], &r, 0, 0, &ids, &e)) {
            CHECK(0, "%s/%s: %s", tname, name, e.msg);
            ok = 0;
        } else if (!same_ids(&ids, want)) {
            fprintf(stderr, "  %s/%s: %zu ids vs %zu expected\n", tname, name, ids.n,
                    json_array_size(want));
            ok = 0;
        }
        /* the text */
        const armo_message *m = r.convs[0].msgs;
        size_t nm = r.convs[0].n, tl;
        char *txt = armo_chat_render_kind(k_templates[t].kind, m, nm, &tl, &e);
        json_t *wt = json_object_get(g, "text");
        if (!txt || tl != json_string_length(wt) || memcmp(txt, json_string_value(wt), tl)) {
            fprintf(stderr, "  %s/%s: rendered text differs from HF:\n    armo %s\n    HF   %s\n",
                    tname, name, txt ? txt : e.msg, json_string_value(wt));
            ok = 0;
        }
        free(txt);
        /* the same conversation as (prefix, final assistant response) */
        if (nm >= 2 && m[nm - 1].role_len == 9 && !memcmp(m[nm - 1].role, "assistant", 9)) {
            armo_ids ids2 = {0};
            int rc = armo_chat_encode_response(g_tok[t], m, nm - 1, m[nm - 1].content,
                                               m[nm - 1].content_len, 0, &ids2, &e);
            CHECK(rc == 0 && ids2.n == ids.n && !memcmp(ids2.ids, ids.ids, ids.n * sizeof(int32_t)),
                  "%s/%s: encode_response differs from encode", tname, name);
            armo_ids_free(&ids2);
        }
    }
    if (parsed) armo_record_free(&r);
    armo_ids_free(&ids);
    free(line);
    return ok;
}

static json_t *next_line(FILE *p, char **line, size_t *cap) {
    ssize_t got = getline(line, cap, p);
    if (got <= 0) return NULL;
    json_error_t je;
    json_t *j = json_loadb(*line, (size_t)got, JSON_ALLOW_NUL, &je);
    CHECK(j != NULL, "golden line: %s", je.text);
    return j ? j : json_null();
}

int main(void) {
    armo_err e = {{0}};
    /* the committed template strings are the ones armo compiles in */
    for (int t = 0; t < 2; t++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.jinja", DATA_DIR, k_templates[t].name);
        size_t len;
        char *tmpl = read_all(path, &len);
        CHECK(tmpl != NULL, "cannot read %s", path);
        if (!tmpl) return test_finish("test_template_golden");
        const char *known = armo_chat_kind_text(k_templates[t].kind);
        CHECK(known && strlen(known) == len && !memcmp(known, tmpl, len),
              "%s differs from the template compiled into chat_template.c", path);
        CHECK(armo_chat_template_identify(tmpl) == k_templates[t].kind, "%s recognised", path);
        CHECK(armo_chat_kind_source(k_templates[t].kind) != NULL, "source named");
        armo_tokenizer *cfg_tok = load_with_template(k_templates[t].name, tmpl, 1, &e);
        CHECK(cfg_tok && armo_chat_kind_of(cfg_tok) == k_templates[t].kind &&
                  armo_chat_check(cfg_tok, &e) == 0 &&
                  test_contains(armo_tokenizer_chat_template_path(cfg_tok), "tokenizer_config.json"),
              "%s in tokenizer_config.json: %s", k_templates[t].name, e.msg);
        armo_tokenizer_free(cfg_tok);
        g_tok[t] = load_with_template(k_templates[t].name, tmpl, 0, &e);
        CHECK(g_tok[t] != NULL, "load %s: %s", k_templates[t].name, e.msg);
        if (g_tok[t]) {
            CHECK(armo_chat_kind_of(g_tok[t]) == k_templates[t].kind, "%s: kind %d",
                  k_templates[t].name, (int)armo_chat_kind_of(g_tok[t]));
            CHECK(armo_chat_check(g_tok[t], &e) == 0, "%s: %s", k_templates[t].name, e.msg);
            CHECK(test_contains(armo_tokenizer_chat_template_path(g_tok[t]), "chat_template.jinja"),
                  "template path %s", armo_tokenizer_chat_template_path(g_tok[t]));
        }
        free(tmpl);
    }
    CHECK(!strcmp(armo_chat_kind_name(ARMO_CHAT_LLAMA31), "Llama-3.1-Instruct") &&
              !strcmp(armo_chat_kind_name(ARMO_CHAT_UNKNOWN), "unsupported chat template"),
          "kind names");

    /* HF goldens */
    char *line = NULL;
    size_t cap = 0;
    FILE *p = popen("xz -dc '" DATA_DIR "/goldens.jsonl.xz'", "r");
    CHECK(p != NULL, "popen xz");
    int n = 0, bad = 0, n_refused = 0, per[2] = {0, 0};
    json_t *g;
    while (p && (g = next_line(p, &line, &cap))) {
        if (json_is_object(g)) {
            const char *tn = json_string_value(json_object_get(g, "template"));
            int t = template_index(tn ? tn : "");
            if (t >= 0) per[t]++;
            n++;
            bad += !check_golden(g, &n_refused);
        }
        json_decref(g);
    }
    if (p) pclose(p);
    printf("goldens: %d (llama3 %d, llama31 %d; %d refusals), mismatches %d\n", n, per[0], per[1],
           n_refused, bad);
    CHECK(per[0] >= 60 && per[1] >= 60 && n_refused >= 8, "too few goldens: %d / %d / %d", per[0],
          per[1], n_refused);
    CHECK(bad == 0, "%d of %d conversations differ from HF apply_chat_template", bad, n);

    /* template edits: recognised iff HF renders them the same */
    p = popen("xz -dc '" DATA_DIR "/variants.jsonl.xz'", "r");
    int nv = 0, n_same = 0;
    while (p && (g = next_line(p, &line, &cap))) {
        const char *tname = json_string_value(json_object_get(g, "template"));
        const char *vname = json_string_value(json_object_get(g, "name"));
        int t = template_index(tname ? tname : "");
        if (t >= 0 && vname) {
            int same = json_is_true(json_object_get(g, "same"));
            armo_chat_kind k = armo_chat_template_identify(json_string_value(json_object_get(g, "text")));
            CHECK(k == (same ? k_templates[t].kind : ARMO_CHAT_UNKNOWN),
                  "%s variant %s: HF renders it %s, armo identifies it as %s", tname, vname,
                  same ? "the same" : "differently", armo_chat_kind_name(k));
            nv++;
            n_same += same;
        }
        json_decref(g);
    }
    if (p) pclose(p);
    printf("template variants: %d (%d render the same)\n", nv, n_same);
    CHECK(nv >= 20 && n_same >= 8 && nv - n_same >= 8, "variants: %d, same %d", nv, n_same);
    free(line);

    /* refusals without a golden: an empty conversation; an unknown kind */
    armo_ids x = {0};
    if (g_tok[1]) {
        CHECK(armo_chat_encode(g_tok[1], NULL, 0, 0, &x, &e) == -1 && x.n == 0 &&
                  test_contains(e.msg, "empty"), "empty conversation: %s", e.msg);
    }
    size_t tl;
    armo_message one = {"user", 4, "hi", 2};
    CHECK(armo_chat_render_kind(ARMO_CHAT_UNKNOWN, &one, 1, &tl, &e) == NULL, "unknown kind renders");
    armo_ids_free(&x);
    for (int t = 0; t < 2; t++) armo_tokenizer_free(g_tok[t]);
    return test_finish("test_template_golden");
}
