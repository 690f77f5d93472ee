/* chat_template.h — the Llama-3 chat template, rendered and tokenized in C.
 *
 * armo does not run Jinja.  It renders the one template it knows exactly as
 * HF apply_chat_template does without a generation prompt (DESIGN §3):
 *
 *   <|begin_of_text|>                       (BOS, once, before the first message)
 *   per message:  <|start_header_id|>{role}<|end_header_id|>\n\n{trim(content)}<|eot_id|>
 *
 * where trim is Python's str.strip() (Jinja's `trim` filter): it removes the
 * 29 code points for which str.isspace() is true, from both ends.
 *
 * Before rendering, the model's chat_template (tokenizer_config.json or
 * chat_template.jinja) is compared with the known Llama-3 template text
 * (whitespace outside string literals ignored).  Any other template — the
 * Llama-3.1 one with its dated system header, for instance — is refused with
 * a message: armo never silently mis-templates.  Pre-tokenized input_ids do
 * not need a template and still work.
 *
 * Tokenization is done piece by piece: the template's own special tokens
 * are pushed as ids, roles and "\n\n" + trimmed content go through
 * armo_tokenizer_encode with the caller's flags.  With flags = 0 this gives
 * exactly the ids of HF's tokenize(rendered string) (HF splits at special
 * tokens before the regex, so the pieces are independent); with
 * ARMO_TOK_SPECIAL_AS_TEXT a "<|eot_id|>" typed inside a message stays text
 * while the template's structure keeps its special ids. */
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

/* 1 if tmpl is the Llama-3-Instruct chat template. */
int armo_chat_template_is_llama3(const char *tmpl);

/* 0 if the tokenizer's chat template is one armo renders (and the special
 * tokens it needs exist); otherwise -1 with a message saying what was found
 * and what to do (pre-tokenized input_ids). */
int armo_chat_check(const armo_tokenizer *tok, armo_err *e);

/* Appends BOS + the rendered, tokenized conversation to out. */
int armo_chat_encode(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                     unsigned flags, armo_ids *out, armo_err *e);

/* Same, with one more assistant message (response) after msgs: the
 * sequence a reward model scores for (conversation, response). */
int armo_chat_encode_response(const armo_tokenizer *tok, const armo_message *msgs, size_t n,
                              const char *response, size_t response_len, unsigned flags,
                              armo_ids *out, armo_err *e);

/* The rendered text (malloc'ed, NUL-terminated, *len without the NUL), for
 * debugging and for feeding other tools.  Does not check the template. */
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
