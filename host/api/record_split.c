/* record_split.c — the records of a JSON text as byte spans (see
 * record_split.h).  jansson validates the text; a small scanner then finds
 * where each element of the top-level array starts and ends (strings and
 * nesting skipped), which jansson does not report. */
#include "host/api/record_split.h"

#include <jansson.h>
#include <stdlib.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t i, size_t len) {
    while (i < len && is_ws(s[i])) i++;
    return i;
}

/* The end of the (valid) JSON value starting at s[i]. */
static size_t value_end(const char *s, size_t i, size_t len) {
    if (s[i] == '"') {
        for (i++; i < len && s[i] != '"'; i++)
            if (s[i] == '\\') i++;
        return i < len ? i + 1 : len;
    }
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        for (; i < len; i++) {
            if (s[i] == '"') {
                i = value_end(s, i, len) - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return len;
    }
    while (i < len && !is_ws(s[i]) && s[i] != ',' && s[i] != ']' && s[i] != '}') i++;
    return i; /* a number, true, false, null */
}

int armo_split_records(const char *json, size_t len, armo_span **spans, size_t *n,
                       int *is_array, armo_err *e) {
    *spans = NULL;
    *n = 0;
    *is_array = 0;
    json_error_t je;
    json_t *v = json_loadb(json, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (!v)
        return armo_err_set(e, "the records are not valid JSON: line %d, column %d: %s",
                            je.line, je.column, je.text);
    int kind = json_is_array(v) ? 2 : json_is_object(v) ? 1 : 0;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    json_decref(v);
    if (!kind) return armo_err_set(e, "the records must be a JSON object or an array of objects");
    size_t i = skip_ws(json, 0, len);
    if (kind == 1) {
        *spans = malloc(sizeof **spans);
        if (!*spans) return armo_err_set(e, "out of memory");
        (*spans)[0] = (armo_span){i, value_end(json, i, len) - i};
        *n = 1;
        return 0;
    }
    *is_array = 1;
    if (count == 0) return 0;
    *spans = malloc(count * sizeof **spans);
    if (!*spans) return armo_err_set(e, "out of memory");
    i = skip_ws(json, i + 1, len); /* after '[' */
    for (size_t k = 0; k < count; k++) {
        size_t end = value_end(json, i, len);
        (*spans)[k] = (armo_span){i, end - i};
        i = skip_ws(json, end, len);
        i = skip_ws(json, i + 1, len); /* after ',' (or the closing ']') */
    }
    *n = count;
    return 0;
}
