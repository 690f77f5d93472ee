/* chat_template.c — renders and tokenizes the Llama-3 chat template (see
 * chat_template.h); recognises the template text instead of running Jinja,
 * because one exact, well-tested renderer beats a partial Jinja engine. */
#include "host/text/chat_template.h"

#include <stdlib.h>
#include <string.h>

static const char k_llama3_template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

static const char k_gating[] = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

/* Canonical form of a Jinja template for comparison.  Text outside tags is
 * output, so it is kept byte for byte; inside {{ }} / {% %} tags ASCII
 * whitespace outside string literals is dropped and "..." literals become
 * '...' (when free of quotes), with \n escapes in literals read as newlines
 * (as Jinja does); {# #} comments are dropped.  Then spellings
 * that render identically are unified: `~` for `+`, loop.first for
 * loop.index0 == 0, message.role / message.content for message['role'] /
 * message['content'], and the `loop_messages = messages` alias. */
static char *replace_all(char *s, const char *from, const char *to) {
    if (!s) return NULL;
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from)) n++;
    if (!n) return s;
    char *out = malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1);
    if (!out) {
        free(s);
        return NULL;
    }
    char *o = out;
    const char *p = s, *q;
    while ((q = strstr(p, from))) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    strcpy(o, p);
    free(s);
    return out;
}

static char *normalize_template(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] == '{' && i + 1 < n && s[i + 1] == '#') { /* comment */
            const char *end = strstr(s + i + 2, "#}");
            i = end ? (size_t)(end - s) + 2 : n;
            continue;
        }
        if (!(s[i] == '{' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '%'))) {
            out[o++] = s[i++]; /* output text: verbatim */
            continue;
        }
        char close = s[i + 1] == '{' ? '}' : '%';
        out[o++] = s[i++];
        out[o++] = s[i++];
        while (i < n) {
            char c = s[i];
            if (c == close && i + 1 < n && s[i + 1] == '}') {
                out[o++] = s[i++];
                out[o++] = s[i++];
                break;
            }
            if (c == '\'' || c == '"') {
                size_t j = i + 1;
                int other = 0;
                while (j < n && s[j] != c) {
                    if (s[j] == '\\' && j + 1 < n) j++;
                    if (s[j] == '\'' || s[j] == '"') other = 1;
                    j++;
                }
                char q = other ? c : '\'';
                out[o++] = q;
                for (size_t k = i + 1; k < j; k++) { /* Jinja unescapes \n in literals */
                    if (s[k] == '\\' && k + 1 < j && s[k + 1] == 'n') {
                        out[o++] = '\n';
                        k++;
                    } else {
                        out[o++] = s[k];
                    }
                }
                if (j < n) out[o++] = q;
                i = j + 1;
                continue;
            }
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out[o++] = c;
            i++;
        }
    }
    out[o] = 0;
    out = replace_all(out, "{%setloop_messages=messages%}", "");
    out = replace_all(out, "loop_messages", "messages");
    out = replace_all(out, "~", "+");
    out = replace_all(out, "loop.first", "loop.index0==0");
    out = replace_all(out, "message.role", "message['role']");
    out = replace_all(out, "message.content", "message['content']");
    return out;
}

int armo_chat_template_is_llama3(const char *tmpl) {
    if (!tmpl) return 0;
    char *a = normalize_template(tmpl), *b = normalize_template(k_llama3_template);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

int armo_chat_check(const armo_tokenizer *tok, armo_err *e) {
    const char *t = armo_tokenizer_chat_template(tok);
    if (!t)
        return armo_err_set(e, "the model has no chat_template (tokenizer_config.json or "
                               "chat_template.jinja), so armo cannot template text input; pass "
                               "pre-tokenized \"input_ids\" records instead");
    if (!armo_chat_template_is_llama3(t)) {
        const char *hint = strstr(t, "Cutting Knowledge Date")
                               ? " (it looks like the Llama-3.1 template, which adds a dated "
                                 "system header)"
                               : "";
        return armo_err_set(e, "the model's chat_template is not the Llama-3-Instruct template "
                               "armo renders%s; refusing to template text input rather than "
                               "mis-template it silently. Pass pre-tokenized \"input_ids\" "
                               "records rendered with the model's own template (e.g. "
                               "tokenizer.apply_chat_template in Python)", hint);
    }
    const char *need[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                          "<|eot_id|>"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (armo_tokenizer_token_id(tok, need[i], strlen(need[i])) < 0)
            return armo_err_set(e, "the tokenizer lacks the special token %s that the Llama-3 "
                                   "chat template needs", need[i]);
    if (armo_tokenizer_bos_id(tok) != armo_tokenizer_token_id(tok, "<|begin_of_text|>", 17))
        return armo_err_set(e, "tokenizer_config.json's bos_token is not <|begin_of_text|>; the "
                               "Llama-3 template would render a different BOS");
    return 0;
}

/* Python str.isspace() code points, as UTF-8 lengths: returns the byte
 * length of a whitespace code point at s, or 0. */
static size_t py_space_at(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
    if (c == 0xc2 && n >= 2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3) {
        uint32_t cp;
        if ((c & 0xf0) != 0xe0) return 0;
        cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
            cp == 0x202f || cp == 0x205f || cp == 0x3000)
            return 3;
    }
    return 0;
}

/* Length of a whitespace code point that ends at s[end] (exclusive), or 0.
 * s is valid UTF-8, so the three cases cannot be confused. */
static size_t py_space_before(const unsigned char *s, size_t end) {
    unsigned c = s[end - 1];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
    if (end >= 2 && s[end - 2] == 0xc2 && (c == 0x85 || c == 0xa0)) return 2;
    if (end >= 3 && py_space_at(s + end - 3, 3) == 3) return 3;
    return 0;
}

size_t armo_strip_py(const char *str, size_t len, size_t *start) {
    const unsigned char *s = (const unsigned char *)str;
    size_t a = 0, b = len, l;
    while (a < b && (l = py_space_at(s + a, b - a))) a += l;
    while (b > a && (l = py_space_before(s, b))) b -= l;
    *start = a;
    return b - a;
}

static int push_named(const armo_tokenizer *tok, const char *name, armo_ids *out, armo_err *e) {
    int32_t id = armo_tokenizer_token_id(tok, name, strlen(name));
    if (id < 0) return armo_err_set(e, "the tokenizer has no %s token", name);
    return armo_ids_push(out, id, e);
}

static int encode_message(const armo_tokenizer *tok, const char *role, size_t role_len,
                          const char *content, size_t content_len, unsigned flags, armo_ids *out,
                          char **buf, size_t *buf_cap, armo_err *e) {
    if (push_named(tok, "<|start_header_id|>", out, e)) return -1;
    if (armo_tokenizer_encode(tok, role, role_len, flags, out, e))
        return armo_err_prefix(e, "message role");
    if (push_named(tok, "<|end_header_id|>", out, e)) return -1;
    size_t st, n = armo_strip_py(content, content_len, &st);
    if (n + 2 > *buf_cap) {
        size_t cap = (n + 2) * 2;
        char *nb = realloc(*buf, cap);
        if (!nb) return armo_err_set(e, "out of memory for a %zu-byte message", n);
        *buf = nb;
        *buf_cap = cap;
    }
    (*buf)[0] = '\n';
    (*buf)[1] = '\n';
    if (n) memcpy(*buf + 2, content + st, n);
    if (armo_tokenizer_encode(tok, *buf, n + 2, flags, out, e))
        return armo_err_prefix(e, "message content");
    return push_named(tok, "<|eot_id|>", out, e);
}

static int chat_encode(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                       const char *response, size_t response_len, unsigned flags, armo_ids *out,
                       armo_err *e) {
    if (armo_chat_check(tok, e)) return -1;
    if (push_named(tok, "<|begin_of_text|>", out, e)) return -1;
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = encode_message(tok, msgs[i].role, msgs[i].role_len, msgs[i].content,
                            msgs[i].content_len, flags, out, &buf, &cap, e);
        if (rc) armo_err_prefix(e, "message %zu", i);
    }
    if (!rc && response) {
        rc = encode_message(tok, "assistant", 9, response, response_len, flags, out, &buf, &cap, e);
        if (rc) armo_err_prefix(e, "response");
    }
    free(buf);
    return rc;
}

int armo_chat_encode(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                     unsigned flags, armo_ids *out, armo_err *e) {
    return chat_encode(tok, msgs, n, NULL, 0, flags, out, e);
}

int armo_chat_encode_response(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                              const char *response, size_t response_len, unsigned flags,
                              armo_ids *out, armo_err *e) {
    return chat_encode(tok, msgs, n, response ? response : "", response_len, flags, out, e);
}

char *armo_chat_render(const armo_message *msgs, size_t n, size_t *len, armo_err *e) {
    static const char bos[] = "<|begin_of_text|>", sh[] = "<|start_header_id|>",
                      eh[] = "<|end_header_id|>\n\n", eot[] = "<|eot_id|>";
    size_t total = sizeof bos;
    for (size_t i = 0; i < n; i++)
        total += sizeof sh + sizeof eh + sizeof eot + msgs[i].role_len + msgs[i].content_len;
    char *out = malloc(total + 1);
    if (!out) {
        armo_err_set(e, "out of memory rendering a conversation");
        return NULL;
    }
    size_t o = 0;
#define PUT(p, l)                \
    do {                         \
        memcpy(out + o, (p), (l)); \
        o += (l);                \
    } while (0)
    PUT(bos, sizeof bos - 1);
    for (size_t i = 0; i < n; i++) {
        size_t st, cl = armo_strip_py(msgs[i].content, msgs[i].content_len, &st);
        PUT(sh, sizeof sh - 1);
        PUT(msgs[i].role, msgs[i].role_len);
        PUT(eh, sizeof eh - 1);
        PUT(msgs[i].content + st, cl);
        PUT(eot, sizeof eot - 1);
    }
#undef PUT
    out[o] = 0;
    *len = o;
    return out;
}

int armo_chat_gating_pattern(const armo_tokenizer *tok, armo_ids *out, armo_err *e) {
    out->n = 0;
    if (armo_tokenizer_encode(tok, k_gating, sizeof k_gating - 1, 0, out, e))
        return armo_err_prefix(e, "tokenizing the gating pattern");
    return 0;
}
