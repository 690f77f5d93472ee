/* report_jscan.c — a JSON line as a flat array of tokens (see
 * report_jscan.h): recursive descent over RFC 8259's grammar. */
#include "host/report/report_jscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    armo_jscan *j;
    const char *s;
    int32_t i, len;
} parser;

static int fail(parser *p, const char *what) {
    snprintf(p->j->err, sizeof p->j->err, "%s at byte %d", what, (int)p->i);
    return -1;
}

static void ws(parser *p) {
    while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                             p->s[p->i] == '\r'))
        p->i++;
}

static int push(parser *p, int type, int32_t a) {
    armo_jscan *j = p->j;
    if (j->n == j->cap) {
        int cap = j->cap ? j->cap * 2 : 256;
        armo_jtok *t = realloc(j->t, (size_t)cap * sizeof *t);
        if (!t) return -1;
        j->t = t;
        j->cap = cap;
    }
    j->t[j->n] = (armo_jtok){(uint8_t)type, 0, a, a, j->n + 1};
    return j->n++;
}

static int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int string(parser *p) {
    int k = push(p, ARMO_JS_STRING, ++p->i); /* after the opening quote */
    if (k < 0) return fail(p, "out of memory");
    while (p->i < p->len && p->s[p->i] != '"') {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) return fail(p, "control character in a string");
        if (c == '\\') {
            if (++p->i >= p->len) break;
            char e = p->s[p->i];
            if (e == 'u') {
                for (int h = 1; h <= 4; h++)
                    if (p->i + h >= p->len || !is_hex(p->s[p->i + h]))
                        return fail(p, "bad \\u escape");
                p->i += 4;
            } else if (!strchr("\"\\/bfnrt", e) || !e) {
                return fail(p, "bad escape");
            }
        }
        p->i++;
    }
    if (p->i >= p->len) return fail(p, "unterminated string");
    p->j->t[k].b = p->i++;
    return k;
}

static int digits(parser *p) {
    int32_t from = p->i;
    while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    return p->i > from;
}

static int number(parser *p) {
    int k = push(p, ARMO_JS_NUMBER, p->i);
    if (k < 0) return fail(p, "out of memory");
    int is_int = 1;
    if (p->s[p->i] == '-') p->i++;
    if (p->i < p->len && p->s[p->i] == '0') p->i++;
    else if (!digits(p)) return fail(p, "bad number");
    if (p->i < p->len && p->s[p->i] == '.') {
        p->i++;
        is_int = 0;
        if (!digits(p)) return fail(p, "bad number");
    }
    if (p->i < p->len && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        is_int = 0;
        if (p->i < p->len && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!digits(p)) return fail(p, "bad number");
    }
    p->j->t[k].b = p->i;
    p->j->t[k].is_int = (uint8_t)is_int;
    return k;
}

static int literal(parser *p, const char *word, int type) {
    size_t n = strlen(word);
    if ((size_t)(p->len - p->i) < n || memcmp(p->s + p->i, word, n)) return fail(p, "bad literal");
    int k = push(p, type, p->i);
    if (k < 0) return fail(p, "out of memory");
    p->i += (int32_t)n;
    p->j->t[k].b = p->i;
    return k;
}

static int value(parser *p, int depth);

/* '{' or '[' at p->i: members / elements until the closing bracket */
static int container(parser *p, int depth, int obj) {
    if (depth >= MAX_DEPTH) return fail(p, "nested too deeply");
    int k = push(p, obj ? ARMO_JS_OBJECT : ARMO_JS_ARRAY, p->i++);
    if (k < 0) return fail(p, "out of memory");
    char close = obj ? '}' : ']';
    ws(p);
    if (p->i < p->len && p->s[p->i] == close) {
        p->i++;
    } else {
        for (;;) {
            ws(p);
            if (obj) {
                if (p->i >= p->len || p->s[p->i] != '"') return fail(p, "expected a key");
                if (string(p) < 0) return -1;
                ws(p);
                if (p->i >= p->len || p->s[p->i++] != ':') return fail(p, "expected ':'");
            }
            if (value(p, depth + 1) < 0) return -1;
            ws(p);
            if (p->i < p->len && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->len && p->s[p->i] == close) {
                p->i++;
                break;
            }
            return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    p->j->t[k].b = p->i;
    p->j->t[k].next = p->j->n;
    return k;
}

static int value(parser *p, int depth) {
    ws(p);
    if (p->i >= p->len) return fail(p, "expected a value");
    char c = p->s[p->i];
    if (c == '{' || c == '[') return container(p, depth, c == '{');
    if (c == '"') return string(p);
    if (c == '-' || (c >= '0' && c <= '9')) return number(p);
    if (c == 't') return literal(p, "true", ARMO_JS_TRUE);
    if (c == 'f') return literal(p, "false", ARMO_JS_FALSE);
    if (c == 'n') return literal(p, "null", ARMO_JS_NULL);
    return fail(p, "unexpected character");
}

int armo_jscan_parse(armo_jscan *j, const char *text, size_t len) {
    j->text = text;
    j->n = 0;
    j->err[0] = 0;
    if (len > INT32_MAX) {
        snprintf(j->err, sizeof j->err, "line longer than 2 GB");
        return -1;
    }
    parser p = {j, text, 0, (int32_t)len};
    if (value(&p, 0) < 0) return -1;
    ws(&p);
    if (p.i != p.len) return fail(&p, "text after the value");
    return 0;
}

void armo_jscan_free(armo_jscan *j) {
    free(j->t);
    memset(j, 0, sizeof *j);
}

int armo_jscan_child(const armo_jscan *j, int tok, int i) {
    if (tok < 0 || tok >= j->n) return -1;
    int type = j->t[tok].type;
    if (type != ARMO_JS_OBJECT && type != ARMO_JS_ARRAY) return -1;
    int end = j->t[tok].next;
    for (int c = tok + 1; c < end; i--) {
        if (i == 0) return c;
        c = type == ARMO_JS_OBJECT ? j->t[c + 1].next : j->t[c].next;
    }
    return -1;
}

int armo_jscan_size(const armo_jscan *j, int tok) {
    int n = 0;
    while (armo_jscan_child(j, tok, n) >= 0) n++;
    return n;
}

/* 1 when string token k holds exactly key (escapes decoded). */
static int key_is(const armo_jscan *j, int k, const char *key, size_t klen) {
    const armo_jtok *t = &j->t[k];
    size_t n = (size_t)(t->b - t->a);
    if (!memchr(j->text + t->a, '\\', n)) return n == klen && !memcmp(j->text + t->a, key, n);
    char buf[256];
    return armo_jscan_string(j, k, buf, sizeof buf) == 0 && !strcmp(buf, key);
}

int armo_jscan_get(const armo_jscan *j, int obj, const char *key) {
    if (obj < 0 || obj >= j->n || j->t[obj].type != ARMO_JS_OBJECT) return -1;
    size_t klen = strlen(key);
    int found = -1; /* the last of duplicate keys, as jansson keeps it */
    for (int c = obj + 1; c < j->t[obj].next; c = j->t[c + 1].next)
        if (key_is(j, c, key, klen)) found = c + 1;
    return found;
}

double armo_jscan_number(const armo_jscan *j, int tok) {
    if (tok < 0 || j->t[tok].type != ARMO_JS_NUMBER) return 0;
    char buf[64];
    int n = j->t[tok].b - j->t[tok].a;
    if (n >= (int)sizeof buf) return strtod(j->text + j->t[tok].a, NULL);
    memcpy(buf, j->text + j->t[tok].a, (size_t)n);
    buf[n] = 0;
    return strtod(buf, NULL);
}

long long armo_jscan_integer(const armo_jscan *j, int tok) {
    if (tok < 0 || j->t[tok].type != ARMO_JS_NUMBER) return 0;
    return strtoll(j->text + j->t[tok].a, NULL, 10);
}

static int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Appends code point u as UTF-8 to buf[*o..len - 1). */
static void put_utf8(char *buf, size_t len, size_t *o, unsigned u) {
    char t[4];
    int n = u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 4;
    if (n == 1) t[0] = (char)u;
    else if (n == 2) t[0] = (char)(0xC0 | u >> 6);
    else if (n == 3) t[0] = (char)(0xE0 | u >> 12);
    else t[0] = (char)(0xF0 | u >> 18);
    for (int k = 1; k < n; k++) t[k] = (char)(0x80 | ((u >> (6 * (n - 1 - k))) & 0x3F));
    for (int k = 0; k < n && *o + 1 < len; k++) buf[(*o)++] = t[k];
}

int armo_jscan_string(const armo_jscan *j, int tok, char *buf, size_t len) {
    if (tok < 0 || tok >= j->n || j->t[tok].type != ARMO_JS_STRING || len == 0) return -1;
    const char *s = j->text;
    size_t o = 0;
    for (int32_t i = j->t[tok].a; i < j->t[tok].b && o + 1 < len; i++) {
        if (s[i] != '\\') {
            buf[o++] = s[i];
            continue;
        }
        char e = s[++i];
        if (e != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            buf[o++] = to[strchr(from, e) - from];
            continue;
        }
        unsigned u = (unsigned)hex4(s + i + 1);
        i += 4;
        if (u >= 0xD800 && u < 0xDC00 && i + 6 < j->t[tok].b && s[i + 1] == '\\' &&
            s[i + 2] == 'u') {
            unsigned lo = (unsigned)hex4(s + i + 3);
            if (lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        put_utf8(buf, len, &o, u);
    }
    buf[o] = 0;
    return 0;
}
