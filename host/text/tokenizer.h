/* tokenizer.h — the Llama-3 byte-level BPE tokenizer, exact to Hugging Face.
 *
 * Loaded from a checkpoint's tokenizer.json (model.vocab, model.merges,
 * model.ignore_merges, added_tokens, the Split pre-tokenizer regex) and
 * tokenizer_config.json (bos_token).  Encoding follows HF `tokenizers`
 * step by step (DESIGN §3):
 *   1. added-token split: the text is cut at every exact occurrence of an
 *      added token's content (leftmost, longest first); each occurrence
 *      becomes that token's id.  (All 256 Llama-3 added tokens are special,
 *      normalized=false, no lstrip/rstrip/single_word.)
 *   2. the pieces in between are split by the pre-tokenizer regex (PCRE2,
 *      UTF + UCP, JIT), "Isolated" behaviour: matches and gaps are pieces;
 *   3. each piece, as bytes: with ignore_merges, a piece that is a whole
 *      vocabulary entry is that id; otherwise BPE from single bytes, merging
 *      the lowest-ranked pair first (leftmost among equals), exactly as HF's
 *      heap-based Word::merge_all does (O(n log n), so a 30 000-byte piece is
 *      fast).
 * Encode never adds BOS; the chat template (host/text/chat_template.h) does.
 *
 * Special-token strings inside user text.  HF's default, and armo's
 * default (flags = 0), recognises "<|eot_id|>" etc. anywhere in the text,
 * including inside a user's message content after templating: a message
 * that contains the literal string "<|eot_id|>" is encoded with the real
 * <|eot_id|> id (128009), exactly as apply_chat_template does (so a user can
 * forge turn boundaries).  With ARMO_TOK_SPECIAL_AS_TEXT the special added
 * tokens are NOT recognised and their strings are encoded as plain text
 * through regex + BPE ("<|eot_id|>" -> "<", "|", "e", "ot", "_id", "|>"
 * pieces), as HF's `encode_special_tokens=True` / transformers'
 * `split_special_tokens=True` does (non-special added tokens, which Llama-3
 * has none of, are still recognised);
 * the chat renderer applies the flag to roles and contents only, so the
 * template's own special tokens stay special.
 *
 * Thread safety: an armo_tokenizer is read-only after load.  Any number of
 * threads may call the encode / decode / lookup functions on one tokenizer
 * at the same time; each call borrows private scratch (PCRE2 match data, JIT
 * stack, BPE buffers and a piece → ids cache) from a small pool inside the
 * tokenizer, guarded by a mutex held only to take and return it. */
#ifndef ARMO_TOKENIZER_H
#define ARMO_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

typedef struct armo_tokenizer armo_tokenizer;

/* A growable array of token ids.  Zero-initialise, then pass to encode
 * calls, which append; free with armo_ids_free. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} armo_ids;

void armo_ids_free(armo_ids *v);
int armo_ids_push(armo_ids *v, int32_t id, armo_err *e);
int armo_ids_append(armo_ids *v, const int32_t *ids, size_t n, armo_err *e);

/* Encode flags. */
enum {
    /* Encode added/special-token strings as plain text (not as their ids). */
    ARMO_TOK_SPECIAL_AS_TEXT = 1u << 0,
};

/* Loads model_dir/tokenizer.json and model_dir/tokenizer_config.json (the
 * latter optional: bos_token defaults to "<|begin_of_text|>").  Refuses
 * models other than byte-level BPE with a message saying why.  NULL on
 * error. */
armo_tokenizer *armo_tokenizer_load(const char *model_dir, armo_err *e);
/* Same, from a tokenizer.json path and an optional tokenizer_config.json
 * path (NULL: none). */
armo_tokenizer *armo_tokenizer_load_files(const char *tokenizer_json,
                                          const char *tokenizer_config_json, armo_err *e);
void armo_tokenizer_free(armo_tokenizer *tok);

/* Appends the ids of text[0..len) to out.  text must be valid UTF-8 (it may
 * contain NUL bytes); invalid UTF-8 is an error naming the byte offset.
 * Thread-safe.  Returns 0 / -1. */
int armo_tokenizer_encode(const armo_tokenizer *tok, const char *text, size_t len,
                          unsigned flags, armo_ids *out, armo_err *e);

/* Total number of ids (vocabulary + added tokens; 128256 for Llama-3):
 * one more than the largest id. */
int armo_tokenizer_vocab_size(const armo_tokenizer *tok);
/* The bytes of one id (a vocabulary entry's raw bytes — not the GPT-2
 * "Ġ" alphabet — or an added token's content).  NULL for an unknown id.
 * The pointer stays valid until armo_tokenizer_free. */
const char *armo_tokenizer_id_bytes(const armo_tokenizer *tok, int32_t id, size_t *len);
/* 1 if id is an added token marked special. */
int armo_tokenizer_is_special(const armo_tokenizer *tok, int32_t id);
/* Id of the token whose bytes (or added-token content) are exactly s[0..len),
 * or -1.  Added tokens are looked up first. */
int32_t armo_tokenizer_token_id(const armo_tokenizer *tok, const char *s, size_t len);
/* bos_token of tokenizer_config.json (128000 for Llama-3), or -1. */
int32_t armo_tokenizer_bos_id(const armo_tokenizer *tok);
/* eos_token of tokenizer_config.json, or -1. */
int32_t armo_tokenizer_eos_id(const armo_tokenizer *tok);
/* The model directory's tokenizer_config.json chat_template (or
 * chat_template.jinja beside it), NUL-terminated, or NULL if none. */
const char *armo_tokenizer_chat_template(const armo_tokenizer *tok);
/* The file the chat template was read from (NULL if none). */
const char *armo_tokenizer_chat_template_path(const armo_tokenizer *tok);
/* The directory tokenizer.json was loaded from. */
const char *armo_tokenizer_dir(const armo_tokenizer *tok);
/* The template's armo_chat_kind (host/text/chat_template.h), identified
 * once at load. */
int armo_tokenizer_chat_kind(const armo_tokenizer *tok);

/* Validates UTF-8 (no overlongs, no surrogates, <= U+10FFFF).  Returns -1 if
 * valid, otherwise the byte offset of the first bad sequence. */
long armo_utf8_invalid_at(const char *s, size_t len);

#endif
