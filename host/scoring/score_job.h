/* score_job.h — one input record to the sequences a backend scores, and a
 * scored record back to its output line (DESIGN §3): the scheduler's
 * prepare / write callbacks (armo_job_ops), so that `armo score` and any
 * later front end (a server) treat records alike.
 *
 * prepare (worker threads): parse the JSON record, apply the chat template
 * and tokenize (or take input_ids, cut at the first pad id), check ids
 * against the vocabulary, find the gating position, apply the length
 * policy (--max-length, --truncate left).  write (in input order): the
 * result JSON of score_output.h, the record's "id" echoed byte for byte as
 * it was written; a bad record becomes {"id":…, "error":"line N (id X): …"}. */
#ifndef ARMO_SCORE_JOB_H
#define ARMO_SCORE_JOB_H

#include <stdint.h>

#include "base/errors.h"
#include "host/engine/scheduler.h"
#include "host/text/tokenizer.h"
#include "weights/model.h"

typedef enum {
    ARMO_TRUNCATE_NONE = 0,      /* an over-long sequence is a per-record error */
    ARMO_TRUNCATE_LEFT,          /* drop the oldest tokens after <|begin_of_text|> */
} armo_truncate;

typedef struct {
    int max_length;              /* longest sequence scored; <= 0: max_position_embeddings */
    armo_truncate truncate;
    unsigned tok_flags;          /* tokenizer.h encode flags (ARMO_TOK_SPECIAL_AS_TEXT) */
    int explain;                 /* objectives listed in a pair's explanation */
    int input_ids_only;          /* do not refuse a model that cannot template text */
} armo_scoring_opts;

typedef struct {
    const armo_model *model;
    armo_tokenizer *tok;         /* NULL: the model directory has no usable tokenizer.json */
    char text_error[ARMO_ERR_LEN]; /* why text records cannot be scored ("" if they can) */
    int32_t pattern[16];         /* the gating pattern as the model's tokenizer spells it */
    int plen;
    int max_length;
    armo_truncate truncate;
    unsigned tok_flags;
    int explain;
    int64_t nonfinite_records;   /* records written as errors for a non-finite result
                                  * (score_output.h); the scheduler counted them as scored */
} armo_scoring;

/* Binds the scoring of records to model m: loads its directory's tokenizer
 * (text records need it), derives the gating pattern with it, and checks
 * max_length against the model.  A model whose text records cannot be
 * templated (no loadable tokenizer, no chat template, or one that
 * chat_template.h does not render) is refused here, -1 with a message
 * naming the file and what was found, unless o->input_ids_only: then text
 * records get a per-record error saying why and input_ids records still
 * work.  Returns 0 / -1. */
int armo_scoring_init(armo_scoring *s, const armo_model *m, const armo_scoring_opts *o,
                      armo_err *e);
void armo_scoring_free(armo_scoring *s);

/* The scheduler's callbacks over s (which must outlive the run). */
armo_job_ops armo_scoring_job_ops(armo_scoring *s);

/* One sequence given as already-templated text — OpenRLHF's "query", a
 * vLLM / SGLang /classify input: tokenized with special-token strings
 * recognised (the template's <|begin_of_text|>, <|eot_id|>, ... become
 * their ids) and no BOS added, then treated as an input_ids record: cut at
 * the first pad id, checked against the vocabulary, the gating position
 * found, the length policy applied.  Fills job->seqs (one sequence, maybe
 * with its error) or job->error; messages start with "<label>: ".
 * job->record stays NULL (the write callback is not for such jobs).
 * Thread-safe.  Returns 0, -1 when out of memory. */
int armo_scoring_prepare_text(armo_scoring *s, armo_job *job, const char *text, size_t len,
                              const char *label);

/* ---- --resume: the lines an earlier run wrote ---------------------------------- */

/* Whether out[0..len) (one output line, its '\n' excluded) is a whole
 * output line: a JSON object.  Returns 1 (and *is_error: it is an error
 * line, {"id"?, "error":…}) or 0 (torn, or not armo's). */
int armo_output_line_valid(const char *out, size_t len, int *is_error);

/* Whether output line out[0..len) is the one written for the input record
 * line[0..line_len): its "id" is the record's, byte for byte as the write
 * callback echoes it, or both have none (records without an "id" are
 * matched by their count alone).  Returns 1, or 0 with why = "has id X,
 * the record has id Y" (ids shortened). */
int armo_output_line_matches(const char *line, size_t line_len, const char *out, size_t len,
                             char *why, size_t why_len);

#endif
