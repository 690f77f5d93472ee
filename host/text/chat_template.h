/* chat_template.h — the Llama-3 and Llama-3.1 chat templates, rendered and
 * tokenized in C.
 *
 * armo does not run Jinja.  It recognises a model's chat_template
 * (tokenizer_config.json, or chat_template.jinja beside it) by content and
 * renders the templates it knows exactly as Hugging Face's
 * apply_chat_template does with its defaults (no tools, no generation prompt:
 * armo scores complete conversations; DESIGN §3):
 *
 *   Llama-3-Instruct:
 *     <|begin_of_text|>
 *     per message: <|start_header_id|>{role}<|end_header_id|>\n\n{trim(content)}<|eot_id|>
 *
 *   Llama-3.1-Instruct (date_string left at the template's default):
 *     <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n
 *     Cutting Knowledge Date: December 2023\n
 *     Today Date: 26 Jul 2024\n\n
 *     {trim(content of messages[0]) if its role is "system", else nothing}<|eot_id|>
 *     then per remaining message:
 *       role "ipython" or "tool": <|start_header_id|>ipython<|end_header_id|>\n\n{tojson(content)}<|eot_id|>
 *       any other role:           <|start_header_id|>{role}<|end_header_id|>\n\n{trim(content)}<|eot_id|>
 *     (the system header is always there; a later "system" message is an
 *     ordinary message; tojson is transformers' json.dumps(ensure_ascii=
 *     False): the content quoted and escaped, not trimmed)
 *
 * where trim is Python's str.strip() (Jinja's `trim` filter): it removes the
 * 29 code points for which str.isspace() is true, from both ends.  Messages
 * that carry "tool_calls" are rendered by the Llama-3.1 template as a JSON
 * function call, which armo does not implement: records.c refuses them for
 * that template (the Llama-3 template ignores the key).  An empty
 * conversation is refused, as apply_chat_template refuses it.
 *
 * Recognition: the template text is brought to a canonical form that keeps
 * exactly what Jinja (with transformers' trim_blocks and lstrip_blocks)
 * renders — output text after whitespace control, tags without the spaces
 * inside them, comments dropped, a few same-meaning spellings unified — and
 * compared with the canonical forms of the known templates (the table in
 * chat_template.c names each one's source).  Any other template is
 * ARMO_CHAT_UNKNOWN: armo never silently mis-templates.  Pre-tokenized
 * input_ids need no template.
 *
 * Tokenization is done piece by piece: the template's own special tokens
 * are pushed as ids; every text between two of them (a role, "\n\n" +
 * content, the 3.1 system header's text + system message) goes through
 * armo_tokenizer_encode with the caller's flags.  With flags = 0 this gives
 * exactly the ids of HF's tokenize(rendered string) (HF splits at special
 * tokens before the regex, so the pieces are independent); with
 * ARMO_TOK_SPECIAL_AS_TEXT a "<|eot_id|>" typed inside a message stays text
 * while the template's structure keeps its special ids.  Rendering and
 * tokenizing walk the same list of pieces, so they cannot disagree. */
#ifndef ARMO_CHAT_TEMPLATE_H
#define ARMO_CHAT_TEMPLATE_H

#include <stddef.h>

#include "base/errors.h"
#include "host/text/tokenizer.h"

/* One chat message; strings need not be NUL-terminated. */
typedef struct {
    const char *role;
    size_t role_len;
    const char *content;
    size_t content_len;
} armo_message;

/* What a model's chat_template is. */
typedef enum {
    ARMO_CHAT_NONE = 0, /* the model has no chat_template */
    ARMO_CHAT_UNKNOWN,  /* a template armo does not render */
    ARMO_CHAT_LLAMA3,   /* Llama-3-Instruct */
    ARMO_CHAT_LLAMA31,  /* Llama-3.1-Instruct */
} armo_chat_kind;

/* The kind of template text tmpl (NULL: ARMO_CHAT_NONE). */
armo_chat_kind armo_chat_template_identify(const char *tmpl);
/* The kind of the tokenizer's chat template (identified once, at load). */
armo_chat_kind armo_chat_kind_of(const armo_tokenizer *tok);
/* "Llama-3-Instruct", "Llama-3.1-Instruct", "unsupported chat template",
 * "no chat template". */
const char *armo_chat_kind_name(armo_chat_kind k);
/* Where the known template's text comes from (NULL for NONE / UNKNOWN). */
const char *armo_chat_kind_source(armo_chat_kind k);
/* The exact text of a known template (NULL for NONE / UNKNOWN). */
const char *armo_chat_kind_text(armo_chat_kind k);

/* 1 if tmpl is the Llama-3-Instruct chat template. */
int armo_chat_template_is_llama3(const char *tmpl);

/* 0 if the tokenizer's chat template is one armo renders (and the special
 * tokens it needs exist); otherwise -1 with a message naming the file, what
 * was found, and what to do (pre-tokenized input_ids). */
int armo_chat_check(const armo_tokenizer *tok, armo_err *e);

/* Appends the rendered, tokenized conversation (BOS first) to out, with the
 * tokenizer's template.  n == 0 is an error. */
int armo_chat_encode(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                     unsigned flags, armo_ids *out, armo_err *e);

/* Same, with one more assistant message (response) after msgs: the
 * sequence a reward model scores for (conversation, response). */
int armo_chat_encode_response(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                              const char *response, size_t response_len, unsigned flags,
                              armo_ids *out, armo_err *e);

/* The rendered text under template kind k (malloc'ed, NUL-terminated, *len
 * without the NUL), for debugging and for feeding other tools.  NULL with a
 * message for an unknown kind or an empty conversation. */
char *armo_chat_render_kind(armo_chat_kind k, const armo_message *msgs, size_t n, size_t *len,
                            armo_err *e);
/* The same with the Llama-3 template (kept for existing callers). */
char *armo_chat_render(const armo_message *msgs, size_t n, size_t *len, armo_err *e);

/* The gating pattern of DESIGN §2: the ids of
 * "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" under this
 * tokenizer (128009 128006 78191 128007 271 for Llama-3).  Replaces out's
 * contents. */
int armo_chat_gating_pattern(const armo_tokenizer *tok, armo_ids *out, armo_err *e);

/* Length of s[0..len) after stripping Python-isspace() code points from the
 * start (*start receives the offset) and end. */
size_t armo_strip_py(const char *s, size_t len, size_t *start);

#endif
