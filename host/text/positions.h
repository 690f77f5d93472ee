/* positions.h — which rows of a sequence feed the head (DESIGN §2).
 *
 * h_last is the last token (packing removes padding; pre-tokenized input is
 * cut at the first pad_token_id, as the reference effectively does).
 * h_prompt, the gating input, is the first token of the LAST occurrence of
 * the gating pattern (<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
 * tokenized by the model's own tokenizer), searched backwards as the
 * reference's find_token_for_gating does. */
#ifndef ARMO_POSITIONS_H
#define ARMO_POSITIONS_H

#include <stdint.h>

/* Index of the first token of the last occurrence of pattern in ids, or -1. */
int armo_find_gating_pos(const int32_t *ids, int n, const int32_t *pattern, int plen);

/* Length of ids once cut at the first pad_token_id (pad_id < 0: n). */
int armo_cut_at_pad(const int32_t *ids, int n, int pad_id);

/* The Llama-3 gating pattern ids, for callers that have no tokenizer at hand
 * (tests, pre-tokenized input on a model directory without tokenizer.json).
 * Callers with a tokenizer derive it by tokenizing the pattern string. */
extern const int32_t ARMO_LLAMA3_GATING_PATTERN[5];

#endif
