/* scheduler.h — the batch pipeline of `armo score` (DESIGN §4):
 *
 *   read lines (stream) -> prepare records on worker threads (parse, template,
 *   tokenize, find head positions) -> pack the window's sequences in
 *   length-sorted order under a token budget -> backend -> write results
 *   strictly in input order.
 *
 * Input is read in windows of at most `window` records, so memory stays
 * constant on a file of any length; while the backend scores one window,
 * the workers prepare the next.  With share_prefix, the sequences of one
 * record (a pair, best-of-N) that start with the same tokens are scored as
 * one unit: their longest common prefix once, each response as a
 * continuation of it (prefix_share.h).  The scheduler knows nothing of JSON record
 * kinds: a `prepare` callback turns one line into a job (0..n sequences or
 * an error) and a `write` callback turns a finished job into output. */
#ifndef ARMO_SCHEDULER_H
#define ARMO_SCHEDULER_H

#include <stdint.h>
#include <stdio.h>

#include "base/progress.h"
#include "host/engine/backend.h"

typedef struct {
    int32_t *ids;                /* owned (malloc) */
    int len;
    int gating_pos;              /* -1 when the model has no gating input */
    char *error;                 /* owned; set -> not scored */
    armo_result result;
} armo_seq;

typedef struct {
    int64_t line_no;             /* 1-based line of the input */
    char *line;                  /* owned until prepared */
    size_t line_len;
    int64_t end_offset;          /* input bytes up to the end of this line (progress / ETA) */
    void *record;                /* the prepare callback's own data (freed by release) */
    char *error;                 /* owned; record-level error */
    armo_seq *seqs;              /* owned */
    int nseq;
} armo_job;

typedef struct {
    /* Fills job->seqs / nseq (allocated with malloc) or job->error from
     * job->line.  Runs on worker threads: must be thread-safe. */
    int (*prepare)(void *ctx, armo_job *job);
    /* Writes the finished job (in input order, on the main thread). Returns
     * 0, or -1 on an output error (which stops the run). */
    int (*write)(void *ctx, armo_job *job, FILE *out);
    /* Frees job->record (may be NULL). */
    void (*release)(void *ctx, armo_job *job);
    void *ctx;
} armo_job_ops;

typedef struct {
    int64_t max_batch_tokens;    /* token budget of one packed batch */
    int max_batch_seqs;          /* sequences per batch */
    int window;                  /* records read ahead and sorted together */
    int threads;                 /* prepare workers */
    int quiet;                   /* no progress */
    int share_prefix;            /* pairs / best-of-N: compute the shared prompt once */
    int min_shared_prefix;       /* tokens a prefix must have to be shared (default 8) */
} armo_sched_opts;

typedef struct {
    int64_t records, errors, sequences, batches;
    int64_t tokens;              /* tokens of the sequences scored (as the user counts them) */
    int64_t tokens_computed;     /* tokens run through the model (shared prefixes once) */
    double seconds, seconds_prepare, seconds_backend;
} armo_sched_stats;

/* Runs the pipeline over `in` until EOF.  in_size: the input's size in bytes
 * for the ETA (-1 unknown).  Returns 0 if the run completed (records may
 * still have failed: see stats.errors), -1 on a fatal error (output write
 * failure, out of memory, backend failure) with e set. */
int armo_schedule(FILE *in, int64_t in_size, FILE *out, armo_backend *backend,
                  const armo_job_ops *ops, const armo_sched_opts *o, armo_sched_stats *stats,
                  armo_err *e);

/* The sequences of one record (or any group that may share a prompt
 * prefix). */
typedef struct {
    armo_seq **seqs;
    int n;
} armo_seq_group;

/* The packing and scoring step alone, for callers that bring their own
 * sequences (`armo bench`): sequences with an error or no tokens are
 * skipped; a group's common prefix is shared when o->share_prefix; units are
 * length-sorted and packed under o->max_batch_tokens; each armo_seq gets its
 * result (or its error).  Counts go into st (not reset). */
int armo_score_groups(armo_backend *b, const armo_seq_group *groups, int ngroups,
                      const armo_sched_opts *o, armo_sched_stats *st, armo_err *e);

/* Frees what a job owns (not the job itself). */
void armo_job_clear(armo_job *job);

#endif
