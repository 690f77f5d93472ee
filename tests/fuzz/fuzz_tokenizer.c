/* fuzz_tokenizer.c — libFuzzer harness for the Llama-3 tokenizer's encoder
 * (host/text/tokenizer.c: armo_tokenizer_encode, armo_utf8_invalid_at,
 * the lookups).
 *
 * The bundled Llama-3 tokenizer is loaded once (fuzz_util.h says where
 * from); the input is the text, encoded twice: with special-token strings
 * recognised (flags 0) and as plain text (ARMO_TOK_SPECIAL_AS_TEXT).
 *
 * Invariants: encode succeeds exactly when armo_utf8_invalid_at says the
 * text is valid UTF-8, and a failure names "UTF-8" and the same offset;
 * every id is in [0, vocab) and has bytes; decoding the ids (concatenating
 * armo_tokenizer_id_bytes) gives back the text byte for byte (byte-level
 * BPE is lossless, and added tokens decode to their own content); as plain
 * text no special id appears (Llama-3 has only special added tokens); and a
 * second encode, which now meets the piece cache, gives the same ids. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/fuzz_util.h"

static armo_tokenizer *g_tok;
static int g_vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_tok = fuzz_tokenizer();
    g_vocab = armo_tokenizer_vocab_size(g_tok);
    return 0;
}

static void encode_and_check(const char *text, size_t n, long bad, unsigned flags) {
    armo_ids ids = {0};
    armo_err e = {{0}};
    int rc = armo_tokenizer_encode(g_tok, text, n, flags, &ids, &e);
    if (bad >= 0) {
        FUZZ_CHECK(rc == -1, "invalid UTF-8 at %ld encoded", bad);
        char off[32];
        snprintf(off, sizeof off, "offset %ld", bad);
        FUZZ_CHECK(strstr(e.msg, "UTF-8") && strstr(e.msg, off), "message '%s' lacks '%s'", e.msg,
                   off);
        armo_ids_free(&ids);
        return;
    }
    FUZZ_CHECK(rc == 0, "valid UTF-8 refused (flags %u): %s", flags, e.msg);
    FUZZ_CHECK(n == 0 || ids.n > 0, "%zu bytes gave no ids", n);
    FUZZ_CHECK(ids.n <= n, "%zu ids for %zu bytes", ids.n, n);
    for (size_t i = 0; i < ids.n; i++) {
        FUZZ_CHECK(ids.ids[i] >= 0 && ids.ids[i] < g_vocab, "id %d out of range", ids.ids[i]);
        if (flags & ARMO_TOK_SPECIAL_AS_TEXT)
            FUZZ_CHECK(!armo_tokenizer_is_special(g_tok, ids.ids[i]),
                       "special id %d at %zu with special-as-text", ids.ids[i], i);
    }
    size_t dl;
    char *dec = fuzz_decode(g_tok, ids.ids, ids.n, &dl);
    FUZZ_CHECK(dl == n && !memcmp(dec, text, n), "decode(encode(x)) != x (flags %u, %zu vs %zu bytes)",
               flags, dl, n);
    free(dec);

    armo_ids again = {0};
    FUZZ_CHECK(armo_tokenizer_encode(g_tok, text, n, flags, &again, &e) == 0, "second encode: %s",
               e.msg);
    FUZZ_CHECK(again.n == ids.n && (!ids.n || !memcmp(again.ids, ids.ids, ids.n * sizeof *ids.ids)),
               "second encode differs (%zu vs %zu ids)", again.n, ids.n);
    armo_ids_free(&again);
    armo_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    long bad = armo_utf8_invalid_at(text, size);
    FUZZ_CHECK(bad < (long)size, "invalid offset %ld past %zu bytes", bad, size);
    encode_and_check(text, size, bad, 0);
    encode_and_check(text, size, bad, ARMO_TOK_SPECIAL_AS_TEXT);
    /* a lookup of the whole text agrees with its bytes */
    int32_t id = armo_tokenizer_token_id(g_tok, text, size);
    if (id >= 0) {
        size_t l;
        const char *b = armo_tokenizer_id_bytes(g_tok, id, &l);
        FUZZ_CHECK(b && l == size && !memcmp(b, text, size), "token_id %d does not spell the text",
                   id);
    }
    return 0;
}
