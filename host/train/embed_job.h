/* embed_job.h — `armo embed`'s scheduler callbacks: armo score's record
 * preparation (parse, template, tokenize, gating position, length policy:
 * score_job.h) plus a buffer per sequence for the backend's head input rows
 * (backend.h hidden_out), and a write step that appends each embedded
 * record to the shards (embed_store.h) and its id / row / error line to
 * records.jsonl, in input order.
 *
 * Records: every kind armo score reads with one or two sequences — one
 * conversation (a ratings row) or a pair (chosen, rejected); the first
 * embedded record fixes which, a record of the other kind is a per-record
 * error.  Labels: the record's "labels" object, {"name": number | null, …};
 * the columns are the --labels list, or the first embedded record's keys in
 * its order; a missing or null label is NaN; a name outside the columns is a
 * per-record error (nothing is dropped silently). */
#ifndef ARMO_EMBED_JOB_H
#define ARMO_EMBED_JOB_H

#include <stdint.h>

#include "base/errors.h"
#include "host/engine/scheduler.h"
#include "host/scoring/score_job.h"
#include "host/train/embed_store.h"

typedef struct {
    armo_scoring *scoring;       /* bound to the model (score_job.h) */
    const char *out_dir;
    int64_t rows_per_shard;
    int nlabels;                 /* fixed columns (--labels), or -1: from the first record */
    char *label_names[ARMO_EMBED_MAX_LABELS];
    /* state */
    int writer_open;
    int kind;                    /* 0 not yet, 1 single, 2 pair */
    armo_embed_writer writer;
    int64_t errors;
    armo_err err;                /* why a write failed (the run then stops) */
} armo_embed_ctx;

/* Sets up ctx (labels: a comma-separated list, or NULL). */
int armo_embed_ctx_init(armo_embed_ctx *ctx, armo_scoring *sc, const char *out_dir,
                        int64_t rows_per_shard, const char *labels, armo_err *e);
/* Writes the last shard and embeddings.json (an empty embeddings set when
 * no record was embedded). */
int armo_embed_ctx_finish(armo_embed_ctx *ctx, armo_err *e);
void armo_embed_ctx_free(armo_embed_ctx *ctx);

armo_job_ops armo_embed_job_ops(armo_embed_ctx *ctx);

#endif
