/* records.h — armo's input records (DESIGN §3): one JSON object per line.
 *
 *   {"id":…, "messages":[{"role":…, "content":…}, …]}           MESSAGES
 *   {"id":…, "prompt":"…" | "messages":[…], "response":"…"}     PROMPT_RESPONSE
 *   {"id":…, "prompt":"…" | "messages":[…], "chosen":"…", "rejected":"…"}   PAIR
 *   {"id":…, "prompt":"…" | "messages":[…], "responses":["…", …]}          BEST_OF_N
 *   {"id":…, "input_ids":[…]}                                    INPUT_IDS
 *
 * "id" is optional and may be any JSON value; it is kept as the raw JSON
 * text of the input line so that output can echo it back byte for byte.
 * Keys other than these are ignored (records often carry metadata).  Roles
 * must be "system", "user", "assistant", "ipython" or "tool" (chat_template.h
 * says how each template renders them); contents must be strings.  A
 * message's "tool_calls" key is remembered: the Llama-3.1 template would
 * render it as a function call, which armo refuses (armo_record_encode).
 * A "prompt" is one user message.  Every problem — invalid JSON, invalid
 * UTF-8, a \ud800 lone-surrogate escape, a wrong type, a missing or
 * conflicting key — is an error whose message starts with
 * "line N (id X): " (or "line N (no id): "), never a crash.
 *
 * Thread safety: parsing is reentrant; a parsed record is read-only. */
#ifndef ARMO_RECORDS_H
#define ARMO_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "host/text/chat_template.h"
#include "host/text/tokenizer.h"

typedef enum {
    ARMO_REC_MESSAGES = 0,
    ARMO_REC_PROMPT_RESPONSE,
    ARMO_REC_PAIR,
    ARMO_REC_BEST_OF_N,
    ARMO_REC_INPUT_IDS,
} armo_record_kind;

/* A string that need not be NUL-terminated (JSON strings may hold \u0000). */
typedef struct {
    const char *s;
    size_t len;
} armo_str;

/* One conversation to score: messages ending (for every kind but MESSAGES)
 * with the assistant response being scored. */
typedef struct {
    armo_message *msgs;
    size_t n;
} armo_conversation;

typedef struct {
    armo_record_kind kind;
    long line;      /* 1-based line number in the input */
    char *id_json;  /* raw JSON text of "id" as written in the input; NULL if absent */
    /* The shared context: the record's messages, or the prompt as one user
     * message.  For MESSAGES it is the whole conversation. */
    armo_message *prompt;
    size_t n_prompt;
    /* The responses scored after the prompt: PROMPT_RESPONSE 1, PAIR 2
     * (chosen, rejected), BEST_OF_N N, MESSAGES and INPUT_IDS 0. */
    armo_str *responses;
    size_t n_responses;
    /* The conversations to score, in output order: MESSAGES 1 (= prompt),
     * PROMPT_RESPONSE 1, PAIR 2 (prompt + chosen, prompt + rejected),
     * BEST_OF_N N (prompt + responses[i]); INPUT_IDS 0. */
    armo_conversation *convs;
    size_t n_convs;
    /* 1 + the index of the first message with a "tool_calls" key; 0: none. */
    size_t tool_calls_msg;
    /* INPUT_IDS only. */
    int32_t *input_ids;
    size_t n_input_ids;
    void *owner_; /* the parsed JSON, which owns the strings */
} armo_record;

/* Parses one line (len bytes, no need for a NUL; a trailing "\n" / "\r\n" is
 * fine).  Returns 0 with *out filled, 1 for a blank line (no record, *out
 * untouched), -1 with e = "line N (id X): what is wrong". */
int armo_record_parse(const char *line, size_t len, long line_no, armo_record *out, armo_err *e);
void armo_record_free(armo_record *r);

/* The raw JSON text of a line's top-level "id" value (malloc'ed), or NULL
 * when absent or unreadable — also usable on lines that failed to parse,
 * to label their error output. */
char *armo_record_raw_id(const char *line, size_t len);

/* The "line N (id X): " / "line N (no id): " prefix every record error
 * starts with (long ids shortened), for callers that report their own
 * per-record errors. */
void armo_record_error_prefix(char *buf, size_t len, long line, const char *id_json);

/* "messages", "prompt_response", "pair", "best_of_n", "input_ids". */
const char *armo_record_kind_name(armo_record_kind k);

/* Number of token sequences the record yields: n_convs, or 1 for INPUT_IDS. */
size_t armo_record_n_sequences(const armo_record *r);

/* Tokenizes sequence i (0 <= i < armo_record_n_sequences) with the chat
 * template (BOS once) into out (replacing its contents).  INPUT_IDS: a copy
 * of the ids, each checked against the vocabulary size.  Errors carry the
 * record's line and id. */
int armo_record_encode(const armo_tokenizer *tok, const armo_record *r, size_t i, unsigned flags,
                       armo_ids *out, armo_err *e);

/* ---- batch tokenization on worker threads ------------------------------ */

typedef struct {
    armo_ids *seqs;  /* armo_record_n_sequences(record) sequences */
    size_t n_seqs;
    /* Number of leading ids identical in every sequence (for a pair or
     * best-of-N, the templated prompt that prefix sharing can compute once;
     * for one sequence, its length). */
    size_t shared_prefix;
    char *error;     /* NULL, or "line N (id X): …" (malloc'ed); seqs then empty */
} armo_record_tokens;

/* Tokenizes recs[0..n) on n_threads pthreads (<= 0: one per online CPU),
 * out[i] for recs[i].  A bad record sets out[i].error and the others go on.
 * Returns -1 only when the batch itself cannot run (threads, memory). */
int armo_encode_records(const armo_tokenizer *tok, const armo_record *recs, size_t n,
                        int n_threads, unsigned flags, armo_record_tokens *out, armo_err *e);
void armo_record_tokens_free(armo_record_tokens *t);

#endif
