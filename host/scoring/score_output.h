/* score_output.h — the JSON that `armo score` writes for each input record
 * (DESIGN §3): named rewards, gating weights and coefficients; pairs add the
 * margin, the preferred side and an explanation; best-of-N adds a ranking;
 * a bad record becomes {"id":…, "error":"…"}.
 *
 * Kept apart from the scheduler so that the server (later) emits the same
 * objects. */
#ifndef ARMO_SCORE_OUTPUT_H
#define ARMO_SCORE_OUTPUT_H

#include <jansson.h>

#include "host/engine/backend.h"
#include "weights/config.h"

typedef enum {
    ARMO_OUT_SINGLE = 0,         /* one conversation (messages, prompt+response, input_ids) */
    ARMO_OUT_PAIR,               /* res[0] chosen, res[1] rejected */
    ARMO_OUT_BEST_OF_N,          /* res[0..n) in response order */
} armo_out_kind;

/* Name of objective i of a model with k objectives: config.json's
 * "objective_names" when it has them (cfg may be NULL), else DESIGN §2's
 * names when k == 19, else "objective_<i>".  buf is used for the latter. */
const char *armo_objective_label(const armo_config *cfg, int i, int k, char *buf, size_t len);

/* {"score":…, "rewards":{…}, "gating":{…}, "coefficients":{…}, "tokens":N}
 * (single-head RMs: "score", "scores" when labels > 1, "tokens"). */
json_t *armo_result_to_json(const armo_config *cfg, const armo_result *r);

/* The whole output object for one record.  id may be NULL (not echoed);
 * explain is how many objectives a pair's explanation lists.  A record with
 * a non-finite result gives {"id", "error"} (armo_record_nonfinite). */
json_t *armo_record_to_json(const armo_config *cfg, json_t *id, armo_out_kind kind,
                            const armo_result *res, int nres, int explain);

/* A result that is not a score: "non-finite <what> ..." into msg, naming
 * the quantity (backbone hidden state at the last / gating token, reward,
 * gating weight, coefficient, score, label), the objective or element and
 * the value (NaN, +Inf, -Inf), e.g. "non-finite reward
 * 'helpsteer-helpfulness' is NaN".  Uses r->nonfinite (armo_result_check_
 * finite, which every backend runs) and rechecks the outputs themselves for
 * a result no backend flagged.  Returns 1 when r is non-finite, else 0. */
int armo_result_nonfinite_message(const armo_config *cfg, const armo_result *r, char *msg,
                                  size_t len);

/* The same for a whole record: 1 when any of res[0..nres) is non-finite,
 * msg naming each such response ("chosen: …", "responses[2]: …") and what
 * went non-finite.  Such a record is an error (no score, no "preferred", no
 * "ranking"): armo_record_to_json returns {"id", "error":msg} for it. */
int armo_record_nonfinite(const armo_config *cfg, armo_out_kind kind, const armo_result *res,
                          int nres, char *msg, size_t len);

/* {"id":…, "error":msg}. */
json_t *armo_error_to_json(json_t *id, const char *msg);

/* One compact JSON line (no newline), malloc'ed; NULL on failure. */
char *armo_json_line(json_t *obj);

#endif
