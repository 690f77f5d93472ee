/* fuzz_chat_template.c — libFuzzer harness for the Llama-3 chat template
 * (host/text/chat_template.c: armo_chat_encode, armo_chat_encode_response,
 * armo_chat_render, armo_strip_py, armo_chat_template_is_llama3).
 *
 * Input layout (chosen so that mutations stay meaningful without JSON):
 *   byte 0      flags: bit 0 ARMO_TOK_SPECIAL_AS_TEXT; bit 1 also encode the
 *               last message as the response (armo_chat_encode_response);
 *               bit 2 template mode (below)
 *   the rest    messages separated by byte 0xFF; in each, the bytes before
 *               the first 0xFE are the role, the rest the content; without
 *               a 0xFE the role alternates user / assistant.  0xFE and 0xFF
 *               never occur in UTF-8, so they cannot collide with text.
 * Template mode: the rest of the input, as a NUL-terminated string, is the
 * model's chat_template text given to armo_chat_template_is_llama3 (the
 * Jinja normaliser).
 * The bundled Llama-3 tokenizer (with its Llama-3 template) is loaded once.
 *
 * Invariants: encoding succeeds exactly when every role and content is
 * valid UTF-8 (else the message says UTF-8); the ids start with BOS, are in
 * range, and decode to exactly armo_chat_render's text; as plain text
 * (bit 0) the special ids are the template's own, one BOS and one
 * start/end-header and eot per message; encode_response(msgs[..n-1], last)
 * equals encode(msgs) when the last role is "assistant"; armo_strip_py
 * returns a range inside the content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/chat_template.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_MSGS 64

static armo_tokenizer *g_tok;
static int32_t g_bos, g_sh, g_eh, g_eot;
static int g_vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_tok = fuzz_tokenizer();
    armo_err e = {{0}};
    if (armo_chat_check(g_tok, &e) != 0) {
        fprintf(stderr, "fuzz_chat_template: the bundled template is refused: %s\n", e.msg);
        exit(1);
    }
    g_vocab = armo_tokenizer_vocab_size(g_tok);
    g_bos = armo_tokenizer_token_id(g_tok, "<|begin_of_text|>", 17);
    g_sh = armo_tokenizer_token_id(g_tok, "<|start_header_id|>", 19);
    g_eh = armo_tokenizer_token_id(g_tok, "<|end_header_id|>", 17);
    g_eot = armo_tokenizer_token_id(g_tok, "<|eot_id|>", 10);
    return 0;
}

static void template_mode(const uint8_t *data, size_t size) {
    char *t = malloc(size + 1);
    FUZZ_CHECK(t != NULL, "oom");
    memcpy(t, data, size);
    t[size] = 0;
    (void)armo_chat_template_is_llama3(t);
    free(t);
}

static size_t split_messages(const uint8_t *p, size_t n, armo_message *m) {
    size_t nm = 0, start = 0;
    for (size_t i = 0; i <= n && nm < MAX_MSGS; i++) {
        if (i < n && p[i] != 0xFF) continue;
        const char *s = (const char *)p + start;
        size_t len = i - start;
        const char *sep = memchr(s, 0xFE, len);
        if (sep) {
            m[nm] = (armo_message){s, (size_t)(sep - s), sep + 1, len - (size_t)(sep - s) - 1};
        } else if (nm % 2 == 0) {
            m[nm] = (armo_message){"user", 4, s, len};
        } else {
            m[nm] = (armo_message){"assistant", 9, s, len};
        }
        nm++;
        start = i + 1;
    }
    return nm;
}

static int count(const armo_ids *ids, int32_t id) {
    int c = 0;
    for (size_t i = 0; i < ids->n; i++) c += ids->ids[i] == id;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned flags = data[0];
    if (flags & 4) {
        template_mode(data + 1, size - 1);
        return 0;
    }
    unsigned tok_flags = (flags & 1) ? ARMO_TOK_SPECIAL_AS_TEXT : 0;
    armo_message m[MAX_MSGS];
    size_t nm = split_messages(data + 1, size - 1, m);

    int valid = 1;
    for (size_t i = 0; i < nm; i++) {
        size_t st, sl = armo_strip_py(m[i].content, m[i].content_len, &st);
        FUZZ_CHECK(st <= m[i].content_len && sl <= m[i].content_len - st,
                   "strip gave [%zu, +%zu) of %zu bytes", st, sl, m[i].content_len);
        if (armo_utf8_invalid_at(m[i].role, m[i].role_len) >= 0 ||
            armo_utf8_invalid_at(m[i].content, m[i].content_len) >= 0)
            valid = 0;
    }

    armo_ids ids = {0};
    armo_err e = {{0}};
    int rc = armo_chat_encode(g_tok, m, nm, tok_flags, &ids, &e);
    size_t rl = 0;
    char *text = armo_chat_render(m, nm, &rl, &e);
    FUZZ_CHECK(text != NULL, "render failed: %s", e.msg);
    FUZZ_CHECK(strlen(text) <= rl, "render length %zu < strlen", rl);
    if (!valid) {
        FUZZ_CHECK(rc == -1 && strstr(e.msg, "UTF-8"), "invalid UTF-8: rc %d, '%s'", rc, e.msg);
    } else {
        FUZZ_CHECK(rc == 0, "valid conversation refused: %s", e.msg);
        FUZZ_CHECK(ids.n >= 1 + 4 * nm && ids.ids[0] == g_bos, "%zu ids for %zu messages", ids.n,
                   nm);
        for (size_t i = 0; i < ids.n; i++)
            FUZZ_CHECK(ids.ids[i] >= 0 && ids.ids[i] < g_vocab, "id %d", ids.ids[i]);
        size_t dl;
        char *dec = fuzz_decode(g_tok, ids.ids, ids.n, &dl);
        FUZZ_CHECK(dl == rl && !memcmp(dec, text, rl),
                   "decoded ids (%zu bytes) differ from the rendered text (%zu bytes)", dl, rl);
        free(dec);
        if (tok_flags) {
            int specials = 0;
            for (size_t i = 0; i < ids.n; i++) specials += armo_tokenizer_is_special(g_tok, ids.ids[i]);
            FUZZ_CHECK(count(&ids, g_bos) == 1 && count(&ids, g_sh) == (int)nm &&
                           count(&ids, g_eh) == (int)nm && count(&ids, g_eot) == (int)nm &&
                           specials == 1 + 3 * (int)nm,
                       "as text: special ids other than the template's (%d for %zu messages)",
                       specials, nm);
        }
        if ((flags & 2) && nm >= 1 && m[nm - 1].role_len == 9 &&
            !memcmp(m[nm - 1].role, "assistant", 9)) {
            armo_ids r = {0};
            FUZZ_CHECK(armo_chat_encode_response(g_tok, m, nm - 1, m[nm - 1].content,
                                                 m[nm - 1].content_len, tok_flags, &r, &e) == 0,
                       "encode_response: %s", e.msg);
            FUZZ_CHECK(r.n == ids.n && !memcmp(r.ids, ids.ids, ids.n * sizeof *ids.ids),
                       "encode_response differs from encode (%zu vs %zu ids)", r.n, ids.n);
            armo_ids_free(&r);
        }
    }
    free(text);
    armo_ids_free(&ids);
    return 0;
}
