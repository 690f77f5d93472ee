/* test_records.c — JSONL input records: every kind, raw ids, every error
 * path (with line number and id), and tokenization of records — single and
 * on worker threads — against HF apply_chat_template goldens
 * (tests/data/tokenizer/chat.jsonl.xz). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/records.h"
#include "host/text/tokenizer.h"
#include "tests/util/test_util.h"

#define TOK_DIR ARMO_MODELS_DIR "/_data/llama3-tokenizer"

static int parse(const char *line, long no, armo_record *r, armo_err *e) {
    memset(e, 0, sizeof *e);
    return armo_record_parse(line, strlen(line), no, r, e);
}

static void expect_error(const char *line, long no, const char *want1, const char *want2) {
    armo_record r;
    armo_err e;
    int rc = parse(line, no, &r, &e);
    CHECK(rc == -1, "expected an error for %s", line);
    if (rc == 0) armo_record_free(&r);
    CHECK(test_contains(e.msg, want1) && (!want2 || test_contains(e.msg, want2)),
          "error for %s: '%s' lacks '%s' / '%s'", line, e.msg, want1, want2 ? want2 : "");
}

static int str_eq(const char *s, size_t n, const char *want) {
    return n == strlen(want) && !memcmp(s, want, n);
}

typedef struct {
    char *name;
    json_t *messages;
    armo_ids ids;
} chat_golden;

int main(void) {
    armo_record r;
    armo_err e;

    /* ---- kinds ---- */
    CHECK(parse("{\"id\": 1.0, \"messages\": [{\"role\":\"user\",\"content\":\"hi\"},"
                "{\"role\":\"assistant\",\"content\":\"yo\"}]}", 3, &r, &e) == 0, "%s", e.msg);
    CHECK(r.kind == ARMO_REC_MESSAGES && r.line == 3, "messages kind");
    CHECK(r.id_json && !strcmp(r.id_json, "1.0"), "raw id kept: %s", r.id_json);
    CHECK(r.n_convs == 1 && r.convs[0].n == 2 && str_eq(r.convs[0].msgs[1].content,
                                                         r.convs[0].msgs[1].content_len, "yo"),
          "messages conv");
    CHECK(armo_record_n_sequences(&r) == 1, "1 seq");
    armo_record_free(&r);

    CHECK(parse("{\"prompt\":\"P\",\"response\":\"R\",\"meta\":{\"x\":[1,2]}}", 1, &r, &e) == 0, "%s",
          e.msg);
    CHECK(r.kind == ARMO_REC_PROMPT_RESPONSE && r.id_json == NULL, "prompt_response, no id");
    CHECK(r.n_convs == 1 && r.convs[0].n == 2 && str_eq(r.convs[0].msgs[0].role, 4, "user") &&
              str_eq(r.convs[0].msgs[1].role, 9, "assistant") &&
              str_eq(r.convs[0].msgs[1].content, r.convs[0].msgs[1].content_len, "R"),
          "prompt_response conv");
    armo_record_free(&r);

    CHECK(parse("{\"id\":\"p\\\"1\",\"prompt\":\"P\",\"chosen\":\"C\",\"rejected\":\"J\"}", 2, &r,
                &e) == 0, "%s", e.msg);
    CHECK(r.kind == ARMO_REC_PAIR && r.n_convs == 2 && r.n_responses == 2, "pair");
    CHECK(r.id_json && !strcmp(r.id_json, "\"p\\\"1\""), "raw string id %s", r.id_json);
    CHECK(str_eq(r.convs[0].msgs[1].content, 1, "C") && str_eq(r.convs[1].msgs[1].content, 1, "J"),
          "chosen then rejected");
    armo_record_free(&r);

    CHECK(parse("{\"id\":{\"a\":[1,\"]\"]},\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
                "{\"role\":\"user\",\"content\":\"U\"}],\"responses\":[\"a\",\"b\",\"c\"]}", 9, &r,
                &e) == 0, "%s", e.msg);
    CHECK(r.kind == ARMO_REC_BEST_OF_N && r.n_convs == 3 && r.convs[2].n == 3, "best of n");
    CHECK(r.id_json && !strcmp(r.id_json, "{\"a\":[1,\"]\"]}"), "object id %s", r.id_json);
    CHECK(str_eq(r.convs[2].msgs[2].content, 1, "c") && str_eq(r.convs[2].msgs[0].role, 6, "system"),
          "bon conv");
    armo_record_free(&r);

    CHECK(parse("{\"id\": 12345678901234567890123, \"input_ids\":[128000, 9906, 0]}\r\n", 4, &r,
                &e) == 0, "%s", e.msg);
    CHECK(r.kind == ARMO_REC_INPUT_IDS && r.n_input_ids == 3 && r.input_ids[1] == 9906, "ids");
    CHECK(r.id_json && !strcmp(r.id_json, "12345678901234567890123"), "big id kept: %s", r.id_json);
    CHECK(armo_record_n_sequences(&r) == 1, "ids 1 seq");
    armo_record_free(&r);

    CHECK(parse("{\"\\u0069d\": \"esc\", \"prompt\":\"a\\u0000b\",\"response\":\"\"}", 5, &r, &e) == 0,
          "%s", e.msg);
    CHECK(r.id_json && !strcmp(r.id_json, "\"esc\""), "escaped key id");
    CHECK(r.convs[0].msgs[0].content_len == 3, "NUL kept in content");
    armo_record_free(&r);

    CHECK(parse("   \r\n", 6, &r, &e) == 1, "blank line");

    /* ---- errors: line number and id, never a crash ---- */
    expect_error("{\"id\":7,\"prompt\":\"x\",\"response\":\"\xff\"}", 11, "line 11 (id 7)", "UTF-8");
    expect_error("{\"id\":\"s\",\"prompt\":\"\\ud800\",\"response\":\"r\"}", 12, "line 12 (id \"s\")",
                 "surrogate");
    expect_error("{\"id\":\"s\",\"prompt\":\"\\udc00x\",\"response\":\"r\"}", 12, "(id \"s\")", "Unicode");
    expect_error("{\"id\":3,\"prompt\":\"x\",", 13, "line 13 (id 3)", "not valid JSON");
    expect_error("not json at all", 14, "line 14 (no id)", "not valid JSON");
    expect_error("[1,2]", 15, "line 15", "JSON object");
    expect_error("{\"id\":1}", 16, "(id 1)", "none of");
    expect_error("{\"id\":1,\"prompt\":\"x\"}", 17, "(id 1)", "needs");
    expect_error("{\"id\":1,\"prompt\":\"x\",\"messages\":[]}", 18, "(id 1)", "not both");
    expect_error("{\"id\":1,\"prompt\":\"x\",\"response\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}", 19,
                 "(id 1)", "only one");
    expect_error("{\"id\":1,\"prompt\":\"x\",\"chosen\":\"b\"}", 20, "(id 1)", "both");
    expect_error("{\"id\":1,\"prompt\":5,\"response\":\"a\"}", 21, "\"prompt\" must be a string", NULL);
    expect_error("{\"id\":1,\"prompt\":\"x\",\"response\":null}", 22, "\"response\"", "null");
    expect_error("{\"id\":1,\"messages\":\"hi\"}", 23, "(id 1)", "must be an array");
    expect_error("{\"id\":1,\"messages\":[]}", 24, "(id 1)", "empty");
    expect_error("{\"id\":1,\"messages\":[{\"role\":\"usr\",\"content\":\"x\"}]}", 25, "usr",
                 "system, user, assistant");
    expect_error("{\"id\":1,\"messages\":[{\"role\":\"user\",\"content\":[\"x\"]}]}", 26,
                 "messages[0].content", "array");
    expect_error("{\"id\":1,\"messages\":[{\"role\":\"user\"}]}", 27, "messages[0].content", "missing");
    expect_error("{\"id\":1,\"messages\":[5]}", 28, "messages[0]", "object");
    expect_error("{\"id\":1,\"prompt\":\"x\",\"responses\":[]}", 29, "(id 1)", "non-empty");
    expect_error("{\"id\":1,\"prompt\":\"x\",\"responses\":[\"a\",2]}", 30, "responses[1]", NULL);
    expect_error("{\"id\":1,\"input_ids\":[1,-2]}", 31, "input_ids[1]", NULL);
    expect_error("{\"id\":1,\"input_ids\":[1,2.5]}", 32, "input_ids[1]", NULL);
    expect_error("{\"id\":1,\"input_ids\":[]}", 33, "(id 1)", "non-empty");
    expect_error("{\"id\":1,\"input_ids\":[1],\"prompt\":\"x\"}", 34, "(id 1)", "cannot be combined");
    expect_error("{\"id\":1,\"id\":2,\"prompt\":\"x\",\"response\":\"y\"}", 35, "line 35", "duplicate");
    expect_error("{\"id\":1,\"prompt\":\"x\",\"response\":\"y\"} trailing", 36, "line 36", "JSON");

    /* ---- tokenization against HF goldens ---- */
    armo_tokenizer *tok = armo_tokenizer_load(TOK_DIR, &e);
    CHECK(tok != NULL, "load: %s", e.msg);
    if (!tok) return test_finish("test_records");

    FILE *p = popen("xz -dc '" ARMO_SOURCE_DIR "/tests/data/tokenizer/chat.jsonl.xz'", "r");
    chat_golden g[128];
    int ng = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while (p && ng < 128 && (got = getline(&line, &lcap, p)) > 0) {
        json_t *j = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, NULL);
        if (!j) continue;
        g[ng].name = strdup(json_string_value(json_object_get(j, "name")));
        g[ng].messages = json_incref(json_object_get(j, "messages"));
        memset(&g[ng].ids, 0, sizeof g[ng].ids);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "ids"), i, v)
            armo_ids_push(&g[ng].ids, (int32_t)json_integer_value(v), NULL);
        json_decref(j);
        ng++;
    }
    free(line);
    if (p) pclose(p);
    CHECK(ng >= 30, "%d chat goldens", ng);

    /* build records: messages records, and (for conversations ending with an assistant turn)
     * prompt/messages + response, pair and best-of-N records whose sequences are all the golden */
    enum { MAXR = 600 };
    armo_record *recs = calloc(MAXR, sizeof *recs);
    const armo_ids **want = calloc(MAXR, sizeof *want);
    size_t nr = 0;
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < ng && nr + 4 < MAXR; k++) {
            json_t *msgs = g[k].messages;
            size_t nm = json_array_size(msgs);
            json_t *rec = json_pack("{s:i, s:O}", "id", (int)nr, "messages", msgs);
            char *txt = json_dumps(rec, 0);
            CHECK(armo_record_parse(txt, strlen(txt), (long)nr + 1, &recs[nr], &e) == 0, "%s: %s",
                  g[k].name, e.msg);
            want[nr++] = &g[k].ids;
            free(txt);
            json_decref(rec);
            json_t *last = json_array_get(msgs, nm - 1);
            if (nm < 2 || strcmp(json_string_value(json_object_get(last, "role")), "assistant"))
                continue;
            json_t *ctx = json_array();
            for (size_t q = 0; q + 1 < nm; q++) json_array_append(ctx, json_array_get(msgs, q));
            json_t *resp = json_object_get(last, "content");
            const char *shapes[3] = {"response", "pair", "bon"};
            for (int s = 0; s < 3; s++) {
                json_t *rr = json_pack("{s:i, s:O}", "id", (int)nr, "messages", ctx);
                if (s == 0) json_object_set(rr, "response", resp);
                if (s == 1) {
                    json_object_set(rr, "chosen", resp);
                    json_object_set(rr, "rejected", resp);
                }
                if (s == 2) json_object_set_new(rr, "responses", json_pack("[O,O,O]", resp, resp, resp));
                txt = json_dumps(rr, 0);
                CHECK(armo_record_parse(txt, strlen(txt), (long)nr + 1, &recs[nr], &e) == 0,
                      "%s %s: %s", g[k].name, shapes[s], e.msg);
                want[nr++] = &g[k].ids;
                free(txt);
                json_decref(rr);
            }
            json_decref(ctx);
        }
    /* one record that fails at tokenization time */
    CHECK(parse("{\"id\":\"bad\",\"input_ids\":[1,999999]}", 999, &recs[nr], &e) == 0, "%s", e.msg);
    size_t bad_index = nr++;

    armo_record_tokens *out = calloc(nr, sizeof *out);
    CHECK(armo_encode_records(tok, recs, nr, 4, 0, out, &e) == 0, "batch: %s", e.msg);
    int mismatches = 0;
    for (size_t i = 0; i < nr; i++) {
        if (i == bad_index) {
            CHECK(out[i].error && test_contains(out[i].error, "line 999 (id \"bad\")") &&
                      test_contains(out[i].error, "outside the vocabulary"),
                  "bad record error: %s", out[i].error ? out[i].error : "(none)");
            continue;
        }
        CHECK(out[i].error == NULL, "record %zu: %s", i, out[i].error);
        CHECK(out[i].n_seqs == armo_record_n_sequences(&recs[i]), "record %zu seqs", i);
        for (size_t s = 0; s < out[i].n_seqs; s++) {
            const armo_ids *a = &out[i].seqs[s], *b = want[i];
            if (a->n != b->n || memcmp(a->ids, b->ids, a->n * sizeof *a->ids)) mismatches++;
        }
        /* single-record path agrees */
        armo_ids one = {0};
        CHECK(armo_record_encode(tok, &recs[i], 0, 0, &one, &e) == 0, "%s", e.msg);
        CHECK(one.n == want[i]->n && !memcmp(one.ids, want[i]->ids, one.n * 4), "single %zu", i);
        armo_ids_free(&one);
    }
    CHECK(mismatches == 0, "%d sequences differ from HF", mismatches);
    printf("batch: %zu records on 4 threads, %d mismatching sequences\n", nr, mismatches);

    /* shared prefix of a pair: the templated prompt up to the response text */
    armo_record pr;
    CHECK(parse("{\"prompt\":\"Hi\",\"chosen\":\"A\",\"rejected\":\"B\"}", 1, &pr, &e) == 0, "%s",
          e.msg);
    armo_record_tokens pt;
    CHECK(armo_encode_records(tok, &pr, 1, 2, 0, &pt, &e) == 0 && !pt.error && pt.n_seqs == 2, "pair");
    /* BOS SH user EH \n\n Hi EOT SH assistant EH \n\n | A/B EOT */
    CHECK(pt.shared_prefix == 11 && pt.seqs[0].n == 13, "shared prefix %zu", pt.shared_prefix);
    armo_record_tokens_free(&pt);
    armo_record_free(&pr);

    /* input_ids pass through unchanged */
    armo_ids one = {0};
    CHECK(parse("{\"input_ids\":[128000, 9906, 1917, 0]}", 1, &r, &e) == 0, "%s", e.msg);
    CHECK(armo_record_encode(tok, &r, 0, 0, &one, &e) == 0 && one.n == 4 && one.ids[3] == 0, "ids");
    armo_record_free(&r);
    armo_ids_free(&one);

    for (size_t i = 0; i < nr; i++) {
        armo_record_tokens_free(&out[i]);
        armo_record_free(&recs[i]);
    }
    free(out);
    free(recs);
    free(want);
    for (int k = 0; k < ng; k++) {
        free(g[k].name);
        json_decref(g[k].messages);
        armo_ids_free(&g[k].ids);
    }
    armo_tokenizer_free(tok);
    return test_finish("test_records");
}
