/* chat_template.c — recognises a model's chat template by content and
 * renders and tokenizes the ones armo knows (see chat_template.h), instead
 * of running Jinja: one exact, well-tested renderer per template beats a
 * partial Jinja engine. */
#include "host/text/chat_template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the known templates -------------------------------------------------- */

/* Meta-Llama-3-8B-Instruct's tokenizer_config.json "chat_template" (the one
 * bundled in tests/data/llama3-tokenizer.tar.xz). */
static const char k_llama3_template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/* Llama-3.1-8B-Instruct's tokenizer_config.json "chat_template", byte for
 * byte as shipped in the PyPI package ldp 0.43.0
 * (ldp/nn/chat_templates/llama3.1_chat_template_hf.jinja); committed as
 * tests/data/template/llama31.jinja, which the tests compare with this. */
static const char k_llama31_template[] =
    "{{- bos_token }}\n"
    "{%- if custom_tools is defined %}\n"
    "    {%- set tools = custom_tools %}\n"
    "{%- endif %}\n"
    "{%- if not tools_in_user_message is defined %}\n"
    "    {%- set tools_in_user_message = true %}\n"
    "{%- endif %}\n"
    "{%- if not date_string is defined %}\n"
    "    {%- set date_string = \"26 Jul 2024\" %}\n"
    "{%- endif %}\n"
    "{%- if not tools is defined %}\n"
    "    {%- set tools = none %}\n"
    "{%- endif %}\n"
    "\n"
    "{#- This block extracts the system message, so we can slot it into the right place. #}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = \"\" %}\n"
    "{%- endif %}\n"
    "\n"
    "{#- System message + builtin tools #}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{%- if builtin_tools is defined or tools is not none %}\n"
    "    {{- \"Environment: ipython\\n\" }}\n"
    "{%- endif %}\n"
    "{%- if builtin_tools is defined %}\n"
    "    {{- \"Tools: \" + builtin_tools | reject('equalto', 'code_interpreter') | join(\", \") + \"\\n\\n\"}}\n"
    "{%- endif %}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{%- if tools is not none and not tools_in_user_message %}\n"
    "    {{- \"You have access to the following functions. To call a function, please respond with JSON for a function call.\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n"
    "    {%- for t in tools %}\n"
    "        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n"
    "    {%- endfor %}\n"
    "{%- endif %}\n"
    "{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n"
    "\n"
    "{#- Custom tools are passed in a user message with some extra guidance #}\n"
    "{%- if tools_in_user_message and not tools is none %}\n"
    "    {#- Extract the first user message so we can plug it in here #}\n"
    "    {%- if messages | length != 0 %}\n"
    "        {%- set first_user_message = messages[0]['content']|trim %}\n"
    "        {%- set messages = messages[1:] %}\n"
    "    {%- else %}\n"
    "        {{- raise_exception(\"Cannot put tools in the first user message when there's no first user message!\") }}\n"
    "{%- endif %}\n"
    "    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n"
    "    {{- \"Given the following functions, please respond with a JSON for a function call \" }}\n"
    "    {{- \"with its proper arguments that best answers the given prompt.\\n\\n\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n"
    "    {%- for t in tools %}\n"
    "        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n"
    "    {%- endfor %}\n"
    "    {{- first_user_message + \"<|eot_id|>\"}}\n"
    "{%- endif %}\n"
    "\n"
    "{%- for message in messages %}\n"
    "    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}\n"
    "        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "    {%- elif 'tool_calls' in message %}\n"
    "        {%- if not message.tool_calls|length == 1 %}\n"
    "            {{- raise_exception(\"This model only supports single tool-calls at once!\") }}\n"
    "        {%- endif %}\n"
    "        {%- set tool_call = message.tool_calls[0].function %}\n"
    "        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}\n"
    "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "            {{- \"<|python_tag|>\" + tool_call.name + \".call(\" }}\n"
    "            {%- for arg_name, arg_val in tool_call.arguments | items %}\n"
    "                {{- arg_name + '=\"' + arg_val + '\"' }}\n"
    "                {%- if not loop.last %}\n"
    "                    {{- \", \" }}\n"
    "                {%- endif %}\n"
    "                {%- endfor %}\n"
    "            {{- \")\" }}\n"
    "        {%- else  %}\n"
    "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "            {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n"
    "            {{- '\"parameters\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- \"}\" }}\n"
    "        {%- endif %}\n"
    "        {%- if builtin_tools is defined %}\n"
    "            {#- This means we're in ipython mode #}\n"
    "            {{- \"<|eom_id|>\" }}\n"
    "        {%- else %}\n"
    "            {{- \"<|eot_id|>\" }}\n"
    "        {%- endif %}\n"
    "    {%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n"
    "        {{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n"
    "        {%- if message.content is mapping or message.content is iterable %}\n"
    "            {{- message.content | tojson }}\n"
    "        {%- else %}\n"
    "            {{- message.content }}\n"
    "        {%- endif %}\n"
    "        {{- \"<|eot_id|>\" }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n";

typedef struct {
    armo_chat_kind kind;
    const char *name;
    const char *source;
    const char *text;
} known_template;

static const known_template k_known[] = {
    {ARMO_CHAT_LLAMA3, "Llama-3-Instruct",
     "Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template (bundled: "
     "tests/data/llama3-tokenizer.tar.xz)", k_llama3_template},
    {ARMO_CHAT_LLAMA31, "Llama-3.1-Instruct",
     "Llama-3.1-8B-Instruct tokenizer_config.json chat_template, as shipped in PyPI ldp 0.43.0 "
     "(ldp/nn/chat_templates/llama3.1_chat_template_hf.jinja; tests/data/template/llama31.jinja)",
     k_llama31_template},
};
#define N_KNOWN (sizeof k_known / sizeof k_known[0])

static const char k_gating[] = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

/* ---- Python's str.isspace() and str.strip() -------------------------------- */

/* Python str.isspace() code points, as UTF-8 lengths: returns the byte
 * length of a whitespace code point at s, or 0. */
static size_t py_space_at(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
    if (c == 0xc2 && n >= 2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3) {
        uint32_t cp;
        /* a 3-byte sequence only with both continuation bytes: E1 1A 00 is
         * not U+1680 (found by fuzz_chat_template) */
        if ((c & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
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
    while (b > a && (l = py_space_before(s + a, b - a))) b -= l;
    *start = a;
    return b - a;
}

/* ---- recognising a template: its canonical form ------------------------------ */

/* A growable string; oom is sticky. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom || (n == 0 && b->p)) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

static int is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Spellings inside tags that Jinja evaluates alike (on the strings and
 * dicts these templates see), each matched as whole identifiers. */
static const struct {
    const char *from, *to;
} k_same[] = {
    {"loop.first", "loop.index0==0"},
    {"message.role", "message['role']"},
    {"message.content", "message['content']"},
};

/* Appends the canonical code of a tag's body s[0..n): ASCII whitespace
 * outside string literals dropped, "..." literals as '...' (when free of
 * quotes) with \n escapes read as newlines (as Jinja reads them), `~` as `+`,
 * the k_same spellings unified; with alias, the identifier loop_messages
 * read as messages. */
static void put_tag_code(sbuf *b, const char *s, size_t n, int alias) {
    char prev = ' ';
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            int other = 0;
            while (j < n && s[j] != c) {
                if (s[j] == '\\' && j + 1 < n) j++;
                if (s[j] == '\'' || s[j] == '"') other = 1;
                j++;
            }
            char q = other ? c : '\'';
            sb_putc(b, q);
            for (size_t k = i + 1; k < j && k < n; k++) {
                if (s[k] == '\\' && k + 1 < j && s[k + 1] == 'n') {
                    sb_putc(b, '\n');
                    k++;
                } else {
                    sb_putc(b, s[k]);
                }
            }
            if (j < n) sb_putc(b, q);
            i = j + 1;
            prev = c;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            prev = c;
            i++;
            continue;
        }
        if (c == '~') {
            sb_putc(b, '+');
            prev = c;
            i++;
            continue;
        }
        if (!is_ident(prev)) {
            const char *from = NULL, *to = NULL;
            if (alias) from = "loop_messages", to = "messages";
            size_t fl = from ? strlen(from) : 0;
            if (!(from && n - i >= fl && !memcmp(s + i, from, fl) && (i + fl == n || !is_ident(s[i + fl]))))
                from = NULL;
            for (size_t r = 0; !from && r < sizeof k_same / sizeof k_same[0]; r++) {
                fl = strlen(k_same[r].from);
                if (n - i >= fl && !memcmp(s + i, k_same[r].from, fl) &&
                    (i + fl == n || !is_ident(s[i + fl])))
                    from = k_same[r].from, to = k_same[r].to;
            }
            if (from) {
                sb_put(b, to, strlen(to));
                i += fl;
                prev = 'x';
                continue;
            }
        }
        sb_putc(b, c);
        prev = c;
        i++;
    }
}

/* Where the tag that opens at s[j] ('{' + kind) closes: the index of its
 * closing "}}" / "%}" / "#}", or n.  Outside string literals and, for
 * expressions, only where brackets are balanced (as Jinja's lexer does). */
static size_t tag_end(const char *s, size_t n, size_t j, char kind) {
    char close = kind == '{' ? '}' : kind;
    int depth = 0;
    for (size_t i = j + 2; i + 1 < n; i++) {
        char c = s[i];
        if (kind == '#') {
            if (c == '#' && s[i + 1] == '}') return i;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t k = i + 1;
            while (k < n && s[k] != c) k += s[k] == '\\' ? 2 : 1;
            i = k;
            continue;
        }
        if (c == '(' || c == '[' || c == '{') depth++;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) {
            depth--;
            continue;
        }
        if (depth == 0 && c == close && s[i + 1] == '}') return i;
    }
    return n;
}

/* One pass of the canonical form (see normalize_template); *has_alias is
 * set when a "{% set loop_messages = messages %}" tag is seen. */
static char *normalize_pass(const char *s, size_t n, int alias, int *has_alias) {
    sbuf out = {0};
    sb_put(&out, "", 0);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    int strip_next = 0, trim_next = 0; /* what the previous tag's end does to the text after it */
    for (;;) {
        size_t j = i;
        while (j + 1 < n && !(s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#')))
            j++;
        if (j + 1 >= n) j = n;
        /* the output text s[a..b) between the previous tag and this one */
        size_t a = i, b = j, l;
        if (strip_next)
            while (a < b && (l = py_space_at(u + a, b - a))) a += l; /* "-%}": \s* */
        else if (trim_next && a < b && s[a] == '\n')
            a++;                                                       /* trim_blocks */
        int line_start = i == 0 || (a > i && s[a - 1] == '\n');
        char kind = j < n ? s[j + 1] : 0, mark = j + 2 < n ? s[j + 2] : 0;
        if (j < n && mark == '-') {
            while (b > a && (l = py_space_before(u + a, b - a))) b -= l; /* "{%-": rstrip */
        } else if (j < n && kind != '{' && mark != '+') {             /* lstrip_blocks */
            size_t ls = b;
            while (ls > a && s[ls - 1] != '\n') ls--;
            if (ls > a || line_start) {
                size_t k = ls;
                while (k < b && (l = py_space_at(u + k, b - k))) k += l;
                if (k == b) b = ls;
            }
        }
        sb_put(&out, s + a, b - a);
        if (j >= n) break;
        size_t body = j + 2 + (mark == '-' || mark == '+');
        size_t end = tag_end(s, n, j, kind);
        if (end >= n) { /* unterminated: Jinja refuses it; keep it verbatim so nothing matches */
            sb_put(&out, "\x01", 1);
            sb_put(&out, s + j, n - j);
            break;
        }
        char emark = end > body && (s[end - 1] == '-' || s[end - 1] == '+') ? s[end - 1] : 0;
        size_t body_end = emark ? end - 1 : end;
        if (kind != '#') {
            sbuf code = {0};
            sb_put(&code, "", 0);
            put_tag_code(&code, s + body, body_end - body, alias);
            if (code.oom) out.oom = 1;
            int no_op = kind == '%' && code.p &&
                        (!strcmp(code.p, "setloop_messages=messages") || !strcmp(code.p, "setmessages=messages"));
            if (no_op && !strcmp(code.p, "setloop_messages=messages")) *has_alias = 1;
            if (!no_op && code.p) {
                sb_put(&out, kind == '{' ? "{{" : "{%", 2);
                sb_put(&out, code.p, code.n);
                sb_put(&out, kind == '{' ? "}}" : "%}", 2);
            }
            free(code.p);
        }
        strip_next = emark == '-';
        trim_next = kind != '{' && !emark;
        i = end + 2;
    }
    if (out.oom) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

/* Canonical form of a Jinja template, as transformers compiles it
 * (trim_blocks, lstrip_blocks, keep_trailing_newline off): two templates
 * with the same form render the same.  Newlines are made "\n" and one
 * trailing newline dropped; the output text between tags is kept byte for
 * byte after Jinja's whitespace control ("{%-" / "-%}" strip whitespace, a
 * block's or comment's end eats one newline, a block or comment alone on a
 * line drops the indentation before it); tags keep their code (see
 * put_tag_code) without the whitespace-control marks, whose effect is
 * already applied; comments and the no-op alias
 * "{% set loop_messages = messages %}" are dropped (the alias name then read
 * as messages). */
static char *normalize_template(const char *src) {
    size_t n0 = strlen(src), n = 0;
    char *s = malloc(n0 + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < n0; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < n0 && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    int has_alias = 0, unused = 0;
    char *out = normalize_pass(s, n, 0, &has_alias);
    if (out && has_alias) {
        free(out);
        out = normalize_pass(s, n, 1, &unused);
    }
    free(s);
    return out;
}

armo_chat_kind armo_chat_template_identify(const char *tmpl) {
    if (!tmpl) return ARMO_CHAT_NONE;
    char *a = normalize_template(tmpl);
    armo_chat_kind k = ARMO_CHAT_UNKNOWN;
    for (size_t i = 0; a && i < N_KNOWN && k == ARMO_CHAT_UNKNOWN; i++) {
        char *b = normalize_template(k_known[i].text);
        if (b && !strcmp(a, b)) k = k_known[i].kind;
        free(b);
    }
    free(a);
    return k;
}

int armo_chat_template_is_llama3(const char *tmpl) {
    return armo_chat_template_identify(tmpl) == ARMO_CHAT_LLAMA3;
}

armo_chat_kind armo_chat_kind_of(const armo_tokenizer *tok) {
    return (armo_chat_kind)armo_tokenizer_chat_kind(tok);
}

static const known_template *known(armo_chat_kind k) {
    for (size_t i = 0; i < N_KNOWN; i++)
        if (k_known[i].kind == k) return &k_known[i];
    return NULL;
}

const char *armo_chat_kind_name(armo_chat_kind k) {
    const known_template *t = known(k);
    return t ? t->name : k == ARMO_CHAT_NONE ? "no chat template" : "unsupported chat template";
}

const char *armo_chat_kind_source(armo_chat_kind k) {
    const known_template *t = known(k);
    return t ? t->source : NULL;
}

const char *armo_chat_kind_text(armo_chat_kind k) {
    const known_template *t = known(k);
    return t ? t->text : NULL;
}

/* The first characters of a template, on one line, for a message. */
static void template_excerpt(const char *t, char *buf, size_t cap) {
    size_t o = 0, i = 0;
    for (; t[i] && o + 4 < cap; i++) {
        char c = t[i] == '\n' || t[i] == '\r' || t[i] == '\t' ? ' ' : t[i];
        if (c == ' ' && o && buf[o - 1] == ' ') continue;
        buf[o++] = c;
    }
    if (t[i]) { /* cut on a UTF-8 boundary */
        while (o && ((unsigned char)buf[o - 1] & 0xc0) == 0x80) o--;
        if (o && (unsigned char)buf[o - 1] >= 0xc0) o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
}

int armo_chat_check(const armo_tokenizer *tok, armo_err *e) {
    const char *t = armo_tokenizer_chat_template(tok);
    const char *path = armo_tokenizer_chat_template_path(tok);
    armo_chat_kind k = armo_chat_kind_of(tok);
    if (k == ARMO_CHAT_NONE)
        return armo_err_set(e, "%s: the model has no chat_template (neither in "
                               "tokenizer_config.json nor in chat_template.jinja), so armo cannot "
                               "template text: pass pre-tokenized \"input_ids\" records instead",
                            armo_tokenizer_dir(tok));
    if (k == ARMO_CHAT_UNKNOWN) {
        char ex[72];
        template_excerpt(t, ex, sizeof ex);
        const char *hint = strstr(t, "Cutting Knowledge Date")
                               ? "; it looks like a Llama-3.1-style template but is not the known one"
                               : "";
        return armo_err_set(e, "%s: the chat_template (%zu bytes: \"%s\") is not one armo renders "
                               "(Llama-3-Instruct, Llama-3.1-Instruct)%s; armo refuses to template "
                               "text with it rather than mis-template it silently: pass "
                               "pre-tokenized \"input_ids\" records rendered with the model's own "
                               "template (tokenizer.apply_chat_template in Python)",
                            path, strlen(t), ex, hint);
    }
    const char *need[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                          "<|eot_id|>"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (armo_tokenizer_token_id(tok, need[i], strlen(need[i])) < 0)
            return armo_err_set(e, "%s: the tokenizer lacks the special token %s that the %s chat "
                                   "template needs", armo_tokenizer_dir(tok), need[i],
                                armo_chat_kind_name(k));
    if (armo_tokenizer_bos_id(tok) != armo_tokenizer_token_id(tok, "<|begin_of_text|>", 17))
        return armo_err_set(e, "%s: tokenizer_config.json's bos_token is not <|begin_of_text|>; the "
                               "%s template would render a different BOS",
                            armo_tokenizer_dir(tok), armo_chat_kind_name(k));
    return 0;
}

/* ---- rendering: one walk over the pieces, two sinks ---------------------------- */

/* How the body of a text piece is written. */
enum { BODY_AS_IS = 0, BODY_TRIM, BODY_TOJSON };

/* Where the walk's pieces go: with tok, tokenized into out (scratch holds
 * the text of one piece); without, appended to text. */
typedef struct {
    const armo_tokenizer *tok;
    unsigned flags;
    armo_ids *out;
    sbuf text;
} sink;

static int sink_special(sink *k, const char *name, armo_err *e) {
    if (!k->tok) {
        sb_put(&k->text, name, strlen(name));
        return 0;
    }
    int32_t id = armo_tokenizer_token_id(k->tok, name, strlen(name));
    if (id < 0) return armo_err_set(e, "the tokenizer has no %s token", name);
    return armo_ids_push(k->out, id, e);
}

/* transformers' tojson on a string: Python json.dumps(s, ensure_ascii=False). */
static void put_json_string(sbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c >= 0x20) {
                sb_putc(b, (char)c);
                continue;
            }
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        sb_put(b, esc, el);
    }
    sb_putc(b, '"');
}

/* One text piece: head (template text or a role) followed by body written
 * as mode says. */
static int sink_text(sink *k, const char *head, size_t hl, const char *body, size_t bl, int mode,
                     armo_err *e) {
    sbuf local = {0}, *b = k->tok ? &local : &k->text;
    sb_put(b, head, hl);
    if (mode == BODY_TRIM) {
        size_t st, n = armo_strip_py(body, bl, &st);
        sb_put(b, body + st, n);
    } else if (mode == BODY_TOJSON) {
        put_json_string(b, body, bl);
    } else {
        sb_put(b, body, bl);
    }
    if (b->oom) {
        free(local.p);
        return armo_err_set(e, "out of memory rendering a %zu-byte message", bl);
    }
    int rc = 0;
    if (k->tok) {
        if (local.n) rc = armo_tokenizer_encode(k->tok, local.p, local.n, k->flags, k->out, e);
        free(local.p);
    }
    return rc;
}

static int is_role(const armo_message *m, const char *r) {
    size_t n = strlen(r);
    return m->role_len == n && !memcmp(m->role, r, n);
}

/* <|start_header_id|>{role}<|end_header_id|>{head}{body as mode}<|eot_id|> */
static int walk_message(sink *k, const char *role, size_t rl, const char *head, size_t hl,
                        const char *body, size_t bl, int mode, armo_err *e) {
    if (sink_special(k, "<|start_header_id|>", e)) return -1;
    if (sink_text(k, role, rl, NULL, 0, BODY_AS_IS, e)) return armo_err_prefix(e, "message role");
    if (sink_special(k, "<|end_header_id|>", e)) return -1;
    if (sink_text(k, head, hl, body, bl, mode, e)) return armo_err_prefix(e, "message content");
    return sink_special(k, "<|eot_id|>", e);
}

static const char k_31_system[] =
    "\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

/* Renders msgs[0..n) (then resp as one more assistant message, when given)
 * under template kind into k. */
static int walk(armo_chat_kind kind, const armo_message *msgs, size_t n, const armo_message *resp,
                sink *k, armo_err *e) {
    size_t total = n + (resp != NULL);
    if (total == 0) return armo_err_set(e, "the conversation is empty");
    if (kind != ARMO_CHAT_LLAMA3 && kind != ARMO_CHAT_LLAMA31)
        return armo_err_set(e, "no renderer for a %s", armo_chat_kind_name(kind));
    if (sink_special(k, "<|begin_of_text|>", e)) return -1;
    size_t first = 0;
    if (kind == ARMO_CHAT_LLAMA31) { /* the system header, with messages[0] if it is a system one */
        const armo_message *m0 = n ? &msgs[0] : resp;
        int sys = is_role(m0, "system");
        if (walk_message(k, "system", 6, k_31_system, sizeof k_31_system - 1, sys ? m0->content : "",
                         sys ? m0->content_len : 0, BODY_TRIM, e))
            return armo_err_prefix(e, "system header");
        first = sys;
    }
    for (size_t i = first; i < total; i++) {
        const armo_message *m = i < n ? &msgs[i] : resp;
        int rc;
        if (kind == ARMO_CHAT_LLAMA31 && (is_role(m, "ipython") || is_role(m, "tool")))
            rc = walk_message(k, "ipython", 7, "\n\n", 2, m->content, m->content_len, BODY_TOJSON, e);
        else
            rc = walk_message(k, m->role, m->role_len, "\n\n", 2, m->content, m->content_len,
                              BODY_TRIM, e);
        if (rc) return i < n ? armo_err_prefix(e, "message %zu", i) : armo_err_prefix(e, "response");
    }
    return 0;
}

static int chat_encode(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                       const armo_message *resp, unsigned flags, armo_ids *out, armo_err *e) {
    if (armo_chat_check(tok, e)) return -1;
    sink k = {.tok = tok, .flags = flags, .out = out};
    size_t n0 = out->n;
    if (walk(armo_chat_kind_of(tok), msgs, n, resp, &k, e)) {
        out->n = n0;
        return -1;
    }
    return 0;
}

int armo_chat_encode(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                     unsigned flags, armo_ids *out, armo_err *e) {
    return chat_encode(tok, msgs, n, NULL, flags, out, e);
}

int armo_chat_encode_response(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                              const char *response, size_t response_len, unsigned flags,
                              armo_ids *out, armo_err *e) {
    armo_message r = {"assistant", 9, response ? response : "", response ? response_len : 0};
    return chat_encode(tok, msgs, n, &r, flags, out, e);
}

char *armo_chat_render_kind(armo_chat_kind kind, const armo_message *msgs, size_t n, size_t *len,
                            armo_err *e) {
    sink k = {0};
    sb_put(&k.text, "", 0);
    if (walk(kind, msgs, n, NULL, &k, e) || k.text.oom) {
        if (k.text.oom) armo_err_set(e, "out of memory rendering a conversation");
        free(k.text.p);
        return NULL;
    }
    *len = k.text.n;
    return k.text.p;
}

char *armo_chat_render(const armo_message *msgs, size_t n, size_t *len, armo_err *e) {
    return armo_chat_render_kind(ARMO_CHAT_LLAMA3, msgs, n, len, e);
}

int armo_chat_gating_pattern(const armo_tokenizer *tok, armo_ids *out, armo_err *e) {
    out->n = 0;
    if (armo_tokenizer_encode(tok, k_gating, sizeof k_gating - 1, 0, out, e))
        return armo_err_prefix(e, "tokenizing the gating pattern");
    return 0;
}
