/* fuzz_records.c — libFuzzer harness for the JSONL input records
 * (host/text/records.c: armo_record_parse, armo_record_raw_id,
 * armo_record_encode; host/text/records_batch.c: armo_encode_records).
 *
 * The input is a JSONL file: split at '\n' (one line, the common case, when
 * there is none), each line parsed with its 1-based line number, as
 * `armo score` does.  Records that parse are tokenized one by one with the
 * bundled Llama-3 tokenizer (loaded once), and then all together through the
 * threaded batch path, which must agree with the one-by-one results.
 *
 * Invariants (records.h's promises): parse returns 1 only for a blank line,
 * -1 with a message starting "line N (" — never an empty one; on success
 * the kind and the counts agree (convs, responses, sequences), every role is
 * one records.h allows, the response of each scored conversation is the
 * assistant's last message, input ids are non-negative, and the raw "id"
 * text — when the record has an "id" — is a slice of the line that parses to
 * the same JSON value as the record's own "id".  Every string byte is read
 * (ASan checks the pointers into the parsed JSON).  Encoding errors carry the
 * "line N (" prefix too. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/records.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_LINES 32

static armo_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_tok = fuzz_tokenizer();
    return 0;
}

/* The roles records.h allows (ipython / tool: for the Llama-3.1 template). */
static int is_role(const armo_message *m) {
    static const char *const roles[] = {"system", "user", "assistant", "ipython", "tool"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (m->role_len == strlen(roles[i]) && !memcmp(m->role, roles[i], m->role_len)) return 1;
    return 0;
}

static unsigned touch(const char *s, size_t n) {
    unsigned h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31 + (unsigned char)s[i];
    return h;
}

static int prefix_ok(const char *msg, long line) {
    char want[48];
    snprintf(want, sizeof want, "line %ld (", line);
    return strncmp(msg, want, strlen(want)) == 0;
}

/* The record's "id" (from its parsed JSON) and the raw text kept for it
 * must be the same JSON value. */
static void check_id(const armo_record *r, const char *line, size_t len) {
    json_t *id = json_object_get((json_t *)r->owner_, "id");
    if (!id) {
        FUZZ_CHECK(r->id_json == NULL, "no \"id\" but raw id '%.80s'", r->id_json);
        return;
    }
    FUZZ_CHECK(r->id_json != NULL, "record has an \"id\" but no raw id text");
    size_t il = strlen(r->id_json);
    FUZZ_CHECK(il <= len && memmem(line, len, r->id_json, il), "raw id is not part of the line");
    /* a line with an integer too big for jansson is parsed with every
     * integer as a real (records.c), so compare both ways */
    int same = 0;
    for (int as_real = 0; as_real < 2 && !same; as_real++) {
        size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL | (as_real ? JSON_DECODE_INT_AS_REAL : 0);
        json_t *again = json_loadb(r->id_json, il, flags, NULL);
        FUZZ_CHECK(again != NULL || !as_real, "raw id '%.80s' is not JSON", r->id_json);
        same = again && json_equal(again, id);
        json_decref(again);
    }
    FUZZ_CHECK(same, "raw id '%.80s' is not the record's id", r->id_json);
}

static void check_record(const armo_record *r, long line_no, const char *line, size_t len) {
    volatile unsigned h = 0;
    FUZZ_CHECK(r->line == line_no, "line %ld, want %ld", r->line, line_no);
    check_id(r, line, len);
    size_t want_convs = 0, want_resp = 0;
    switch (r->kind) {
    case ARMO_REC_MESSAGES: want_convs = 1; break;
    case ARMO_REC_PROMPT_RESPONSE: want_convs = want_resp = 1; break;
    case ARMO_REC_PAIR: want_convs = want_resp = 2; break;
    case ARMO_REC_BEST_OF_N:
        want_convs = want_resp = r->n_responses;
        FUZZ_CHECK(r->n_responses >= 1, "best-of-N with no responses");
        break;
    case ARMO_REC_INPUT_IDS:
        FUZZ_CHECK(r->n_input_ids >= 1 && r->input_ids, "no input ids");
        for (size_t i = 0; i < r->n_input_ids; i++)
            FUZZ_CHECK(r->input_ids[i] >= 0, "input id %d", r->input_ids[i]);
        FUZZ_CHECK(armo_record_n_sequences(r) == 1, "input_ids: %zu sequences",
                   armo_record_n_sequences(r));
        return;
    default: FUZZ_CHECK(0, "kind %d", (int)r->kind);
    }
    FUZZ_CHECK(r->n_convs == want_convs && r->n_responses == want_resp,
               "%s: %zu convs %zu responses", armo_record_kind_name(r->kind), r->n_convs,
               r->n_responses);
    FUZZ_CHECK(armo_record_n_sequences(r) == r->n_convs, "sequences");
    FUZZ_CHECK(r->n_prompt >= (r->kind == ARMO_REC_MESSAGES ? 1u : 0u), "empty messages record");
    for (size_t i = 0; i < r->n_prompt; i++) {
        FUZZ_CHECK(is_role(&r->prompt[i]), "prompt[%zu] role", i);
        h += touch(r->prompt[i].content, r->prompt[i].content_len);
    }
    for (size_t c = 0; c < r->n_convs; c++) {
        const armo_conversation *cv = &r->convs[c];
        FUZZ_CHECK(cv->n == r->n_prompt + (want_resp ? 1 : 0), "conv %zu has %zu messages", c,
                   cv->n);
        for (size_t i = 0; i < cv->n; i++) {
            FUZZ_CHECK(is_role(&cv->msgs[i]), "conv %zu message %zu role", c, i);
            h += touch(cv->msgs[i].content, cv->msgs[i].content_len);
        }
        if (want_resp) {
            const armo_message *last = &cv->msgs[cv->n - 1];
            FUZZ_CHECK(last->role_len == 9 && last->content == r->responses[c].s &&
                           last->content_len == r->responses[c].len,
                       "conv %zu does not end with response %zu", c, c);
        }
    }
    (void)h;
}

static void encode_record(const armo_record *r, armo_record_tokens *want) {
    size_t ns = armo_record_n_sequences(r);
    memset(want, 0, sizeof *want);
    want->seqs = calloc(ns ? ns : 1, sizeof *want->seqs);
    FUZZ_CHECK(want->seqs != NULL, "oom");
    want->n_seqs = ns;
    for (size_t i = 0; i < ns; i++) {
        armo_err e = {{0}};
        if (armo_record_encode(g_tok, r, i, 0, &want->seqs[i], &e) != 0) {
            FUZZ_CHECK(prefix_ok(e.msg, r->line), "encode error lacks the prefix: '%s'", e.msg);
            want->error = strdup(e.msg);
            return;
        }
        FUZZ_CHECK(want->seqs[i].n >= 1, "empty sequence");
    }
    armo_err e = {{0}};
    FUZZ_CHECK(armo_record_encode(g_tok, r, ns, 0, &want->seqs[0], &e) == -1,
               "sequence past the end encoded");
    /* that call emptied seqs[0]; encode it again */
    FUZZ_CHECK(armo_record_encode(g_tok, r, 0, 0, &want->seqs[0], &e) == 0, "re-encode: %s", e.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    armo_record recs[MAX_LINES];
    armo_record_tokens want[MAX_LINES];
    size_t nrec = 0;
    long line_no = 0;
    size_t start = 0;
    while (start <= size && line_no < MAX_LINES) {
        const char *nl = memchr(s + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - s) : size;
        const char *line = s + start;
        size_t len = end - start;
        line_no++;

        char *raw = armo_record_raw_id(line, len);
        if (raw) FUZZ_CHECK(memmem(line, len, raw, strlen(raw)) != NULL, "raw id not in line");
        free(raw);

        armo_record r;
        armo_err e = {{0}};
        int rc = armo_record_parse(line, len, line_no, &r, &e);
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n'))
            k++; /* (not strchr: it matches the NUL terminator too) */
        if (rc == 1) {
            FUZZ_CHECK(k == len, "non-blank line %ld reported blank", line_no);
        } else if (rc == -1) {
            FUZZ_CHECK(k < len, "blank line %ld reported as an error", line_no);
            FUZZ_CHECK(prefix_ok(e.msg, line_no), "error lacks 'line %ld (': '%s'", line_no, e.msg);
        } else {
            FUZZ_CHECK(rc == 0, "parse returned %d", rc);
            check_record(&r, line_no, line, len);
            encode_record(&r, &want[nrec]);
            recs[nrec++] = r;
        }
        if (!nl) break;
        start = end + 1;
    }
    if (nrec) {
        armo_record_tokens got[MAX_LINES];
        armo_err e = {{0}};
        FUZZ_CHECK(armo_encode_records(g_tok, recs, nrec, 2, 0, got, &e) == 0, "batch: %s", e.msg);
        for (size_t i = 0; i < nrec; i++) {
            FUZZ_CHECK(!got[i].error == !want[i].error, "record %zu: batch error '%s', alone '%s'",
                       i, got[i].error ? got[i].error : "-", want[i].error ? want[i].error : "-");
            if (!got[i].error) {
                FUZZ_CHECK(got[i].n_seqs == want[i].n_seqs, "record %zu: %zu vs %zu sequences", i,
                           got[i].n_seqs, want[i].n_seqs);
                size_t common = got[i].n_seqs ? got[i].seqs[0].n : 0;
                for (size_t q = 0; q < got[i].n_seqs; q++) {
                    const armo_ids *a = &got[i].seqs[q], *b = &want[i].seqs[q];
                    FUZZ_CHECK(a->n == b->n && !memcmp(a->ids, b->ids, a->n * sizeof *a->ids),
                               "record %zu sequence %zu: batch and single encodes differ", i, q);
                    size_t c = 0;
                    while (c < common && c < a->n && a->ids[c] == got[i].seqs[0].ids[c]) c++;
                    common = c;
                }
                FUZZ_CHECK(got[i].shared_prefix == common, "record %zu: shared prefix %zu, want %zu",
                           i, got[i].shared_prefix, common);
            }
            armo_record_tokens_free(&got[i]);
            armo_record_tokens_free(&want[i]);
            armo_record_free(&recs[i]);
        }
    }
    return 0;
}
