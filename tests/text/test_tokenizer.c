/* test_tokenizer.c — armo's Llama-3 tokenizer against Hugging Face ids.
 *
 * Goldens: tests/data/tokenizer/corpus.jsonl.xz, written by
 * tools/gen_tokenizer_golden.py with HF `tokenizers` (encode without special
 * tokens, and with encode_special_tokens=True for the as-text ids).  Every
 * text must match exactly.  Also: lookups, decode, invalid UTF-8, loading
 * errors, and concurrent encodes from several threads (results compared
 * with the single-thread goldens). */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "host/text/tokenizer.h"
#include "tests/util/test_util.h"

#define TOK_DIR ARMO_MODELS_DIR "/_data/llama3-tokenizer"

typedef struct {
    char name[64];
    char *text;
    size_t len;
    armo_ids ids, ids_text, ids_variant, ids_variant_text;
} golden;

static int load_ids(json_t *arr, armo_ids *out) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (armo_ids_push(out, (int32_t)json_integer_value(v), NULL)) return -1;
    }
    return 0;
}

static golden *load_corpus(int *n_out) {
    FILE *p = popen("xz -dc '" ARMO_SOURCE_DIR "/tests/data/tokenizer/corpus.jsonl.xz'", "r");
    if (!p) return NULL;
    golden *g = NULL;
    int n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, p)) > 0) {
        json_error_t je;
        json_t *r = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &je);
        if (!r) {
            fprintf(stderr, "corpus line %d: %s\n", n + 1, je.text);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            g = realloc(g, (size_t)cap * sizeof *g);
        }
        golden *x = &g[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", json_string_value(json_object_get(r, "name")));
        json_t *t = json_object_get(r, "text");
        x->len = json_string_length(t);
        x->text = malloc(x->len + 1);
        memcpy(x->text, json_string_value(t), x->len + 1);
        load_ids(json_object_get(r, "ids"), &x->ids);
        load_ids(json_object_get(r, "ids_text"), &x->ids_text);
        load_ids(json_object_get(r, "ids_variant"), &x->ids_variant);
        load_ids(json_object_get(r, "ids_variant_text"), &x->ids_variant_text);
        json_decref(r);
    }
    free(line);
    pclose(p);
    *n_out = n;
    return g;
}

static int same_ids(const armo_ids *a, const armo_ids *b, const char *name, const char *what) {
    if (a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids))) return 1;
    size_t k = 0;
    while (k < a->n && k < b->n && a->ids[k] == b->ids[k]) k++;
    fprintf(stderr, "  %s (%s): %zu ids vs %zu expected; first difference at %zu: %d vs %d\n",
            name, what, a->n, b->n, k, k < a->n ? a->ids[k] : -1, k < b->n ? b->ids[k] : -1);
    return 0;
}

/* ---- threads ---- */
typedef struct {
    const armo_tokenizer *tok;
    golden *g;
    int n, start, failures;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    for (int rep = 0; rep < 2; rep++)
        for (int k = 0; k < j->n; k++) {
            int i = (j->start + k * 7) % j->n;
            if (strncmp(j->g[i].name, "long", 4) == 0) continue; /* keep it quick */
            armo_ids ids = {0};
            armo_err e;
            if (armo_tokenizer_encode(j->tok, j->g[i].text, j->g[i].len, 0, &ids, &e) ||
                ids.n != j->g[i].ids.n ||
                (ids.n && memcmp(ids.ids, j->g[i].ids.ids, ids.n * sizeof(int32_t))))
                j->failures++;
            armo_ids_free(&ids);
        }
    return NULL;
}

/* Runs the armo CLI; returns its exit status and its stdout in out. */
static int run_cli(const char *args, char *out, size_t cap) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", ARMO_EXE, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    char out[8192];
    CHECK(run_cli("tokenize --help", out, sizeof out) == 0 && test_contains(out, "--special-as-text") &&
              test_contains(out, "--jsonl") && test_contains(out, "--pieces"), "help");
    CHECK(run_cli("tokenize --model '" TOK_DIR "' 'Hello world!'", out, sizeof out) == 0 &&
              !strcmp(out, "9906 1917 0\n"), "text: '%s'", out);
    CHECK(run_cli("tokenize --model '" TOK_DIR "' --bos 'Hello world!'", out, sizeof out) == 0 &&
              !strcmp(out, "128000 9906 1917 0\n"), "bos: '%s'", out);
    CHECK(run_cli("tokenize --model '" TOK_DIR "' --pieces 'a<|eot_id|>'", out, sizeof out) == 0 &&
              !strcmp(out, "64\ta\n128009\t<|eot_id|>\n"), "pieces: '%s'", out);
    CHECK(run_cli("tokenize --model '" TOK_DIR "' --special-as-text 'a<|eot_id|>b'", out, sizeof out) == 0 &&
              !strcmp(out, "64 27 91 68 354 851 91 29 65\n"), "as text: '%s'", out);
    CHECK(run_cli("tokenize --model '" TOK_DIR "' --gating", out, sizeof out) == 0 &&
              !strcmp(out, "128009 128006 78191 128007 271\n"), "gating: '%s'", out);
    FILE *f = fopen(ARMO_BINARY_DIR "/tokenize_cli.jsonl", "w");
    if (f) {
        fputs("{\"id\":\"a\",\"prompt\":\"Hello!\",\"response\":\"Hi there.\"}\n"
              "{\"id\":7,\"prompt\":\"x\"}\n\n{\"input_ids\":[1,2]}\n", f);
        fclose(f);
    }
    CHECK(run_cli("tokenize --model '" TOK_DIR "' --jsonl '" ARMO_BINARY_DIR "/tokenize_cli.jsonl'",
                  out, sizeof out) == 1, "jsonl exit 1 on a bad record");
    /* ids of chat_0 in the HF golden: user Hello! / assistant Hi there. */
    CHECK(test_contains(out, "{\"id\":\"a\",\"kind\":\"prompt_response\",\"input_ids\":[[128000,"
                             "128006,882,128007,271,9906,0,128009,128006,78191,128007,271,13347,1070,"
                             "13,128009]]}\n"), "jsonl ok record: %s", out);
    CHECK(test_contains(out, "{\"id\":7,\"error\":\"line 2 (id 7)"), "jsonl error: %s", out);
    CHECK(test_contains(out, "{\"id\":null,\"kind\":\"input_ids\",\"input_ids\":[[1,2]]}"), "ids: %s", out);
    CHECK(run_cli("tokenize --model /nonexistent x", out, sizeof out) == 2, "bad model exit 2");
    CHECK(run_cli("tokenize --bogus", out, sizeof out) == 2, "bad option exit 2");
}

int main(void) {
    armo_err e = {{0}};
    test_cli();
    armo_tokenizer *tok = armo_tokenizer_load(TOK_DIR, &e);
    CHECK(tok != NULL, "load: %s", e.msg);
    if (!tok) return test_finish("test_tokenizer");

    CHECK(armo_tokenizer_vocab_size(tok) == 128256, "vocab size %d", armo_tokenizer_vocab_size(tok));
    CHECK(armo_tokenizer_bos_id(tok) == 128000, "bos %d", armo_tokenizer_bos_id(tok));
    CHECK(armo_tokenizer_eos_id(tok) == 128009, "eos %d", armo_tokenizer_eos_id(tok));
    CHECK(armo_tokenizer_token_id(tok, "<|eot_id|>", 10) == 128009, "eot lookup");
    CHECK(armo_tokenizer_token_id(tok, " world", 6) == 1917, "' world' lookup");
    CHECK(armo_tokenizer_token_id(tok, "no such token xyz", 17) == -1, "missing lookup");
    CHECK(armo_tokenizer_is_special(tok, 128006) && !armo_tokenizer_is_special(tok, 1917), "special");
    size_t bl = 0;
    const char *b = armo_tokenizer_id_bytes(tok, 1917, &bl);
    CHECK(b && bl == 6 && !memcmp(b, " world", 6), "decode 1917");
    b = armo_tokenizer_id_bytes(tok, 271, &bl);
    CHECK(b && bl == 2 && !memcmp(b, "\n\n", 2), "decode 271");
    b = armo_tokenizer_id_bytes(tok, 128009, &bl);
    CHECK(b && bl == 10 && !memcmp(b, "<|eot_id|>", 10), "decode eot");
    CHECK(armo_tokenizer_id_bytes(tok, 128256, &bl) == NULL, "decode out of range");
    CHECK(armo_tokenizer_id_bytes(tok, -1, &bl) == NULL, "decode negative");
    b = armo_tokenizer_id_bytes(tok, 128, &bl); /* byte 0xC4? whichever: one raw byte */
    CHECK(b && bl == 1, "byte token is one raw byte");

    /* README example */
    armo_ids ids = {0};
    CHECK(armo_tokenizer_encode(tok, "Hello world!", 12, 0, &ids, &e) == 0, "%s", e.msg);
    CHECK(ids.n == 3 && ids.ids[0] == 9906 && ids.ids[1] == 1917 && ids.ids[2] == 0,
          "Hello world! -> %zu ids", ids.n);
    /* encode appends */
    CHECK(armo_tokenizer_encode(tok, "!", 1, 0, &ids, &e) == 0 && ids.n == 4 && ids.ids[3] == 0,
          "append");
    armo_ids_free(&ids);

    /* invalid UTF-8 is an error with an offset, never a crash */
    const char *bad[] = {"ab\xff", "\xc3", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
                         "\xf4\x90\x80\x80 too big", "ok \xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        armo_err e2 = {{0}};
        int rc = armo_tokenizer_encode(tok, bad[i], strlen(bad[i]), 0, &ids, &e2);
        CHECK(rc == -1 && test_contains(e2.msg, "UTF-8"), "bad utf8 %zu: rc %d '%s'", i, rc, e2.msg);
        armo_ids_free(&ids);
    }
    CHECK(armo_utf8_invalid_at("ab\xff", 3) == 2, "offset");
    CHECK(armo_utf8_invalid_at("\xf0\x9f\x98\x80", 4) == -1, "emoji valid");

    /* goldens */
    int n = 0;
    golden *g = load_corpus(&n);
    CHECK(g && n >= 300, "corpus has %d texts", n);
    int bad_ids = 0, bad_text = 0;
    for (int i = 0; i < n; i++) {
        armo_ids a = {0}, t = {0};
        int rc1 = armo_tokenizer_encode(tok, g[i].text, g[i].len, 0, &a, &e);
        CHECK(rc1 == 0, "%s: %s", g[i].name, e.msg);
        int rc2 = armo_tokenizer_encode(tok, g[i].text, g[i].len, ARMO_TOK_SPECIAL_AS_TEXT, &t, &e);
        CHECK(rc2 == 0, "%s: %s", g[i].name, e.msg);
        if (!same_ids(&a, &g[i].ids, g[i].name, "default")) bad_ids++;
        if (!same_ids(&t, &g[i].ids_text, g[i].name, "special as text")) bad_text++;
        armo_ids_free(&a);
        armo_ids_free(&t);
    }
    CHECK(bad_ids == 0, "%d of %d texts differ from HF", bad_ids, n);
    CHECK(bad_text == 0, "%d of %d texts differ from HF (special tokens as text)", bad_text, n);
    printf("golden corpus: %d texts, %d + %d mismatches\n", n, bad_ids, bad_text);

    /* the variant of gen_tokenizer_golden.py: ignore_merges=false (every piece through the merge
     * loop) and a non-special added token "<x>" = 128256 */
    {
        json_error_t je;
        json_t *tj = json_load_file(TOK_DIR "/tokenizer.json", 0, &je);
        CHECK(tj != NULL, "variant: %s", je.text);
        json_object_set_new(json_object_get(tj, "model"), "ignore_merges", json_false());
        json_array_append_new(json_object_get(tj, "added_tokens"),
                              json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 128256, "content",
                                        "<x>", "single_word", 0, "lstrip", 0, "rstrip", 0,
                                        "normalized", 0, "special", 0));
        CHECK(json_dump_file(tj, ARMO_BINARY_DIR "/variant_tokenizer.json", 0) == 0, "dump variant");
        json_decref(tj);
        armo_tokenizer *tv = armo_tokenizer_load_files(ARMO_BINARY_DIR "/variant_tokenizer.json",
                                                       NULL, &e);
        CHECK(tv != NULL, "variant load: %s", e.msg);
        int bad_v = 0, bad_vt = 0;
        for (int i = 0; tv && i < n; i++) {
            armo_ids a = {0}, t = {0};
            CHECK(armo_tokenizer_encode(tv, g[i].text, g[i].len, 0, &a, &e) == 0, "%s", e.msg);
            CHECK(armo_tokenizer_encode(tv, g[i].text, g[i].len, ARMO_TOK_SPECIAL_AS_TEXT, &t, &e) == 0,
                  "%s", e.msg);
            if (!same_ids(&a, &g[i].ids_variant, g[i].name, "variant")) bad_v++;
            if (!same_ids(&t, &g[i].ids_variant_text, g[i].name, "variant, special as text")) bad_vt++;
            armo_ids_free(&a);
            armo_ids_free(&t);
        }
        CHECK(bad_v == 0 && bad_vt == 0, "variant tokenizer: %d + %d texts differ from HF", bad_v,
              bad_vt);
        CHECK(tv && armo_tokenizer_vocab_size(tv) == 128257 && !armo_tokenizer_is_special(tv, 128256),
              "variant vocab");
        printf("variant tokenizer (ignore_merges=false, non-special <x>): %d + %d mismatches\n",
               bad_v, bad_vt);
        armo_tokenizer_free(tv);
    }

    /* concurrent encodes */
    enum { NT = 4 };
    pthread_t th[NT];
    thread_job jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (thread_job){tok, g, n, i * 13, 0};
        CHECK(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].failures == 0, "thread %d: %d encodes differ", i, jobs[i].failures);
    }

    for (int i = 0; i < n; i++) {
        free(g[i].text);
        armo_ids_free(&g[i].ids);
        armo_ids_free(&g[i].ids_text);
        armo_ids_free(&g[i].ids_variant);
        armo_ids_free(&g[i].ids_variant_text);
    }
    free(g);
    armo_tokenizer_free(tok);

    /* loading errors are messages, not crashes */
    armo_err le = {{0}};
    CHECK(armo_tokenizer_load("/nonexistent-dir", &le) == NULL &&
              test_contains(le.msg, "tokenizer.json"), "missing dir: %s", le.msg);
    FILE *f = fopen(ARMO_BINARY_DIR "/bad_tokenizer.json", "w");
    if (f) {
        fputs("{\"model\": {\"type\": \"Unigram\"}}", f);
        fclose(f);
    }
    CHECK(armo_tokenizer_load_files(ARMO_BINARY_DIR "/bad_tokenizer.json", NULL, &le) == NULL &&
              test_contains(le.msg, "BPE"), "unigram: %s", le.msg);
    f = fopen(ARMO_BINARY_DIR "/bad_tokenizer.json", "w");
    if (f) {
        fputs("{\"model\": ", f);
        fclose(f);
    }
    CHECK(armo_tokenizer_load_files(ARMO_BINARY_DIR "/bad_tokenizer.json", NULL, &le) == NULL &&
              test_contains(le.msg, "cannot parse"), "truncated: %s", le.msg);
    /* malformed tokenizer.json variants: each a clear message */
    static const struct {
        const char *json, *want;
    } bad_files[] = {
        {"[]", "BPE"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "bad id"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a c\"]},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "missing from the vocab"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a\"]},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "left right"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\\u4e2d\":0},\"merges\":[]},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "byte-level alphabet"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
         "\"pre_tokenizer\":{\"type\":\"Whitespace\"}}", "pre_tokenizer"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":{\"type\":\"NFC\"},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "normalizer"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"byte_fallback\":true},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "byte_fallback"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
         "\"added_tokens\":[{\"id\":1,\"content\":\"<x>\",\"lstrip\":true}],"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "lstrip"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
         "\"added_tokens\":[{\"content\":\"<x>\"}],\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
         "lacks an id"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":"
         "\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
         "\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\"}]}}", "does not compile"},
    };
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        f = fopen(ARMO_BINARY_DIR "/bad_tokenizer.json", "w");
        if (!f) continue;
        fputs(bad_files[i].json, f);
        fclose(f);
        armo_err be = {{0}};
        armo_tokenizer *bt = armo_tokenizer_load_files(ARMO_BINARY_DIR "/bad_tokenizer.json", NULL, &be);
        CHECK(bt == NULL && test_contains(be.msg, bad_files[i].want), "bad file %zu: '%s' lacks '%s'",
              i, be.msg, bad_files[i].want);
        armo_tokenizer_free(bt);
    }
    return test_finish("test_tokenizer");
}
