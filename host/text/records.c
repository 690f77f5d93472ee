/* records.c — parses armo's JSONL input records (see records.h).
 *
 * jansson does the parsing and validation (it rejects invalid UTF-8 and
 * lone-surrogate escapes); a tiny scanner beside it finds the raw text of
 * the top-level "id" value so that ids are echoed exactly as written (1.0
 * stays 1.0, big integers keep their digits) and so that errors can name
 * the id even when the rest of the line is broken. */
#include "host/text/records.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- raw id scanner ----------------------------------------------------- */

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

/* Skips a JSON string starting at s[i] == '"'; returns the index after the
 * closing quote, or 0 if unterminated. */
static size_t skip_string(const char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        }
    }
    return 0;
}

static size_t skip_value(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    if (s[i] == '"') return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, n, i);
                if (!i) return 0;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
            i++;
        }
        return 0;
    }
    size_t st = i;
    while (i < n && !strchr(",}] \t\r\n", s[i])) i++;
    return i > st ? i : 0;
}

/* 1 if the JSON string key at s[a..b) (quotes included) decodes to "id". */
static int key_is_id(const char *s, size_t a, size_t b) {
    char dec[3];
    size_t o = 0;
    for (size_t i = a + 1; i + 1 < b; i++) {
        char c = s[i];
        if (c == '\\') {
            if (i + 5 < b && s[i + 1] == 'u') {
                char hex[5] = {s[i + 2], s[i + 3], s[i + 4], s[i + 5], 0};
                long v = strtol(hex, NULL, 16);
                if (v <= 0 || v > 127) return 0;
                c = (char)v;
                i += 5;
            } else {
                return 0;
            }
        }
        if (o == 2) return 0;
        dec[o++] = c;
    }
    return o == 2 && dec[0] == 'i' && dec[1] == 'd';
}

/* Finds the raw text of the top-level "id" value; 0 on success. */
static int find_id_span(const char *s, size_t n, size_t *va, size_t *vb) {
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return -1;
    i++;
    for (;;) {
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != '"') return -1;
        size_t ka = i, kb = skip_string(s, n, i);
        if (!kb) return -1;
        i = skip_ws(s, n, kb);
        if (i >= n || s[i] != ':') return -1;
        i = skip_ws(s, n, i + 1);
        size_t a = i, b = skip_value(s, n, i);
        if (!b) return -1;
        if (key_is_id(s, ka, kb)) {
            *va = a;
            *vb = b;
            return 0;
        }
        i = skip_ws(s, n, b);
        if (i >= n || s[i] != ',') return -1;
        i++;
    }
}

char *armo_record_raw_id(const char *s, size_t n) {
    size_t a, b;
    if (find_id_span(s, n, &a, &b)) return NULL;
    json_error_t je;
    json_t *v = json_loadb(s + a, b - a, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (!v) return NULL;
    json_decref(v);
    char *out = malloc(b - a + 1);
    if (!out) return NULL;
    memcpy(out, s + a, b - a);
    out[b - a] = 0;
    return out;
}

/* ---- errors ------------------------------------------------------------- */

#define ID_SHOWN 80

static int rec_err(armo_err *e, long line, const char *id, const char *fmt, ...) ARMO_PRINTF(4, 5);

void armo_record_error_prefix(char *buf, size_t len, long line, const char *id_json) {
    if (id_json)
        snprintf(buf, len, "line %ld (id %.*s%s): ", line, ID_SHOWN, id_json,
                 strlen(id_json) > ID_SHOWN ? "…" : "");
    else
        snprintf(buf, len, "line %ld (no id): ", line);
}

static int rec_err(armo_err *e, long line, const char *id, const char *fmt, ...) {
    char what[ARMO_ERR_LEN], prefix[ID_SHOWN + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    armo_record_error_prefix(prefix, sizeof prefix, line, id);
    return armo_err_set(e, "%s%s", prefix, what);
}

/* ---- parsing ------------------------------------------------------------ */

const char *armo_record_kind_name(armo_record_kind k) {
    switch (k) {
    case ARMO_REC_MESSAGES: return "messages";
    case ARMO_REC_PROMPT_RESPONSE: return "prompt_response";
    case ARMO_REC_PAIR: return "pair";
    case ARMO_REC_BEST_OF_N: return "best_of_n";
    case ARMO_REC_INPUT_IDS: return "input_ids";
    }
    return "?";
}

void armo_record_free(armo_record *r) {
    if (!r) return;
    free(r->id_json);
    free(r->prompt);
    free(r->responses);
    if (r->convs)
        for (size_t i = 0; i < r->n_convs; i++) free(r->convs[i].msgs);
    free(r->convs);
    free(r->input_ids);
    json_decref((json_t *)r->owner_);
    memset(r, 0, sizeof *r);
}

size_t armo_record_n_sequences(const armo_record *r) {
    return r->kind == ARMO_REC_INPUT_IDS ? 1 : r->n_convs;
}

static const char *type_name(json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* The roles the Llama-3 and Llama-3.1 templates are used with (both would
 * render any string; another one is most likely a typo). */
static int known_role(const char *s, size_t n) {
    static const char *roles[] = {"system", "user", "assistant", "ipython", "tool"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (n == strlen(roles[i]) && !memcmp(s, roles[i], n)) return 1;
    return 0;
}

static int parse_messages(json_t *arr, armo_record *r, armo_err *e) {
    if (!json_is_array(arr))
        return rec_err(e, r->line, r->id_json, "\"messages\" must be an array of {role, content} "
                                               "objects, not %s", type_name(arr));
    size_t n = json_array_size(arr);
    r->prompt = calloc(n ? n : 1, sizeof *r->prompt);
    if (!r->prompt) return rec_err(e, r->line, r->id_json, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        if (!json_is_object(m))
            return rec_err(e, r->line, r->id_json, "messages[%zu] must be an object, not %s", i,
                           type_name(m));
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role))
            return rec_err(e, r->line, r->id_json, "messages[%zu].role must be a string (%s)", i,
                           role ? type_name(role) : "missing");
        const char *rs = json_string_value(role);
        size_t rl = json_string_length(role);
        if (!known_role(rs, rl))
            return rec_err(e, r->line, r->id_json, "messages[%zu].role \"%.40s\" is not one of "
                                                   "system, user, assistant, ipython, tool", i, rs);
        if (json_object_get(m, "tool_calls") && !r->tool_calls_msg) r->tool_calls_msg = i + 1;
        if (!json_is_string(content))
            return rec_err(e, r->line, r->id_json, "messages[%zu].content must be a string (%s)",
                           i, content ? type_name(content) : "missing");
        r->prompt[i] = (armo_message){rs, rl, json_string_value(content),
                                      json_string_length(content)};
    }
    r->n_prompt = n;
    return 0;
}

static int get_string(json_t *root, const char *key, armo_str *out, armo_record *r, armo_err *e) {
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v))
        return rec_err(e, r->line, r->id_json, "\"%s\" must be a string, not %s", key, type_name(v));
    out->s = json_string_value(v);
    out->len = json_string_length(v);
    return 0;
}

static int parse_body(json_t *root, int ints_as_real, armo_record *r, armo_err *e) {
    json_t *j_ids = json_object_get(root, "input_ids");
    json_t *j_msgs = json_object_get(root, "messages"), *j_prompt = json_object_get(root, "prompt");
    json_t *j_resp = json_object_get(root, "response"), *j_resps = json_object_get(root, "responses");
    json_t *j_ch = json_object_get(root, "chosen"), *j_rj = json_object_get(root, "rejected");

    if (j_ids) {
        if (j_msgs || j_prompt || j_resp || j_resps || j_ch || j_rj)
            return rec_err(e, r->line, r->id_json, "\"input_ids\" cannot be combined with "
                                                   "messages/prompt/response fields");
        if (!json_is_array(j_ids) || json_array_size(j_ids) == 0)
            return rec_err(e, r->line, r->id_json, "\"input_ids\" must be a non-empty array of "
                                                   "token ids");
        size_t n = json_array_size(j_ids);
        r->input_ids = malloc(n * sizeof *r->input_ids);
        if (!r->input_ids) return rec_err(e, r->line, r->id_json, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(j_ids, i);
            double d = json_is_integer(v) ? (double)json_integer_value(v)
                       : ints_as_real && json_is_real(v) ? json_real_value(v)
                                                          : -1.0;
            if (d < 0 || d > INT32_MAX || d != (double)(int32_t)d)
                return rec_err(e, r->line, r->id_json, "input_ids[%zu] is not a token id (a "
                                                       "non-negative integer)", i);
            r->input_ids[i] = (int32_t)d;
        }
        r->n_input_ids = n;
        r->kind = ARMO_REC_INPUT_IDS;
        return 0;
    }
    if (j_msgs && j_prompt)
        return rec_err(e, r->line, r->id_json, "give either \"prompt\" or \"messages\", not both");
    if (!j_msgs && !j_prompt)
        return rec_err(e, r->line, r->id_json, "record has none of \"messages\", \"prompt\", "
                                               "\"input_ids\"");
    int n_kinds = (j_resp != NULL) + (j_ch || j_rj) + (j_resps != NULL);
    if (n_kinds > 1)
        return rec_err(e, r->line, r->id_json, "give only one of \"response\", "
                                               "\"chosen\"+\"rejected\", \"responses\"");
    if (j_msgs) {
        if (parse_messages(j_msgs, r, e)) return -1;
        if (n_kinds == 0 && r->n_prompt == 0)
            return rec_err(e, r->line, r->id_json, "\"messages\" is empty");
    } else {
        r->prompt = calloc(1, sizeof *r->prompt);
        if (!r->prompt) return rec_err(e, r->line, r->id_json, "out of memory");
        armo_str p;
        if (get_string(root, "prompt", &p, r, e)) return -1;
        r->prompt[0] = (armo_message){"user", 4, p.s, p.len};
        r->n_prompt = 1;
        if (n_kinds == 0)
            return rec_err(e, r->line, r->id_json, "\"prompt\" needs \"response\", "
                                                   "\"chosen\"+\"rejected\" or \"responses\"");
    }
    size_t nr = 0;
    if (j_resp) {
        r->kind = ARMO_REC_PROMPT_RESPONSE;
        nr = 1;
    } else if (j_ch || j_rj) {
        if (!j_ch || !j_rj)
            return rec_err(e, r->line, r->id_json, "a pair needs both \"chosen\" and \"rejected\"");
        r->kind = ARMO_REC_PAIR;
        nr = 2;
    } else if (j_resps) {
        if (!json_is_array(j_resps) || json_array_size(j_resps) == 0)
            return rec_err(e, r->line, r->id_json, "\"responses\" must be a non-empty array of "
                                                   "strings");
        r->kind = ARMO_REC_BEST_OF_N;
        nr = json_array_size(j_resps);
    } else {
        r->kind = ARMO_REC_MESSAGES;
    }
    if (nr) {
        r->responses = calloc(nr, sizeof *r->responses);
        if (!r->responses) return rec_err(e, r->line, r->id_json, "out of memory");
        if (r->kind == ARMO_REC_PROMPT_RESPONSE) {
            if (get_string(root, "response", &r->responses[0], r, e)) return -1;
        } else if (r->kind == ARMO_REC_PAIR) {
            if (get_string(root, "chosen", &r->responses[0], r, e) ||
                get_string(root, "rejected", &r->responses[1], r, e))
                return -1;
        } else {
            for (size_t i = 0; i < nr; i++) {
                json_t *v = json_array_get(j_resps, i);
                if (!json_is_string(v))
                    return rec_err(e, r->line, r->id_json, "responses[%zu] must be a string, not "
                                                           "%s", i, type_name(v));
                r->responses[i] = (armo_str){json_string_value(v), json_string_length(v)};
            }
        }
        r->n_responses = nr;
    }
    /* the conversations to score */
    size_t nc = nr ? nr : 1;
    r->convs = calloc(nc, sizeof *r->convs);
    if (!r->convs) return rec_err(e, r->line, r->id_json, "out of memory");
    r->n_convs = nc;
    for (size_t c = 0; c < nc; c++) {
        size_t nm = r->n_prompt + (nr ? 1 : 0);
        r->convs[c].msgs = malloc(nm * sizeof(armo_message));
        if (!r->convs[c].msgs) return rec_err(e, r->line, r->id_json, "out of memory");
        memcpy(r->convs[c].msgs, r->prompt, r->n_prompt * sizeof(armo_message));
        if (nr)
            r->convs[c].msgs[r->n_prompt] =
                (armo_message){"assistant", 9, r->responses[c].s, r->responses[c].len};
        r->convs[c].n = nm;
    }
    return 0;
}

int armo_record_parse(const char *line, size_t len, long line_no, armo_record *out, armo_err *e) {
    size_t i = skip_ws(line, len, 0);
    if (i == len) return 1;
    armo_record r;
    memset(&r, 0, sizeof r);
    r.line = line_no;
    r.id_json = armo_record_raw_id(line, len);
    json_error_t je;
    json_t *root = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    int ints_as_real = 0;
    if (!root && strstr(je.text, "too big integer")) {
        /* an id like 12345678901234567890123: numbers as reals (the raw id text is kept) */
        root = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
                          &je);
        ints_as_real = 1;
    }
    if (!root) {
        const char *why = strstr(je.text, "Unicode") || strstr(je.text, "decode")
                              ? " (the line must be valid UTF-8 without lone \\ud800-\\udfff "
                                "surrogate escapes)"
                              : "";
        rec_err(e, line_no, r.id_json, "not valid JSON at column %d: %s%s", je.column, je.text, why);
        free(r.id_json);
        return -1;
    }
    r.owner_ = root;
    if (!json_is_object(root)) {
        rec_err(e, line_no, r.id_json, "a record must be a JSON object, not %s", type_name(root));
        armo_record_free(&r);
        return -1;
    }
    if (parse_body(root, ints_as_real, &r, e)) {
        armo_record_free(&r);
        return -1;
    }
    *out = r;
    return 0;
}

/* ---- tokenizing records ------------------------------------------------- */

int armo_record_encode(const armo_tokenizer *tok, const armo_record *r, size_t i, unsigned flags,
                       armo_ids *out, armo_err *e) {
    out->n = 0;
    if (i >= armo_record_n_sequences(r))
        return rec_err(e, r->line, r->id_json, "sequence %zu out of range", i);
    if (r->kind == ARMO_REC_INPUT_IDS) {
        int vs = armo_tokenizer_vocab_size(tok);
        for (size_t k = 0; k < r->n_input_ids; k++)
            if (r->input_ids[k] >= vs)
                return rec_err(e, r->line, r->id_json, "input_ids[%zu] = %d is outside the "
                                                       "vocabulary (size %d)", k, r->input_ids[k], vs);
        return armo_ids_append(out, r->input_ids, r->n_input_ids, e);
    }
    if (r->tool_calls_msg && armo_chat_kind_of(tok) == ARMO_CHAT_LLAMA31)
        return rec_err(e, r->line, r->id_json, "messages[%zu] has \"tool_calls\", which the "
                                               "Llama-3.1 template renders as a function call that "
                                               "armo does not implement; pass pre-tokenized "
                                               "\"input_ids\" instead", r->tool_calls_msg - 1);
    armo_err inner;
    if (armo_chat_encode(tok, r->convs[i].msgs, r->convs[i].n, flags, out, &inner)) {
        const char *which = r->kind == ARMO_REC_PAIR ? (i == 0 ? "chosen: " : "rejected: ") : "";
        if (r->kind == ARMO_REC_BEST_OF_N)
            return rec_err(e, r->line, r->id_json, "responses[%zu]: %s", i, inner.msg);
        return rec_err(e, r->line, r->id_json, "%s%s", which, inner.msg);
    }
    return 0;
}
