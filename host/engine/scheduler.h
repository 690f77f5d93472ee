/* scheduler.h — the batch pipeline of `armo score` (DESIGN §4):
 *
 *   read lines (a reader thread) -> prepare records on worker threads (parse,
 *   template, tokenize, find head positions) -> pack the window's sequences
 *   in input order under a token budget -> the scoring workers (one backend
 *   replica each: data parallel, worker_pool.h; one worker by default) take
 *   the batches from one queue -> write results strictly in input order,
 *   each line as soon as its record and every earlier one are done.
 *
 * Records are taken in windows of at most `window`, so memory stays
 * constant on a file of any length; while the backend scores one window,
 * the workers prepare the next.  A window from a regular file is always
 * full (reading ahead costs nothing); from a pipe or a terminal it holds
 * the records that have arrived (at least one), so that a slow producer's
 * records are scored without waiting for the window to fill.  Batches are
 * packed in input order (no padding: a length sort would not fill them
 * better), so each completes a run of consecutive records, whose lines are
 * written as soon as it is scored: output and progress flow batch by batch,
 * and a stop (opts.stop) finishes the batch in flight, writes its lines and
 * returns, losing nothing else.  Each record's line is
 * written with one write(2) of the whole line (no stdio buffer), so that a
 * kill at any moment leaves whole lines behind (a SIGKILL inside that one
 * write aside).  With share_prefix, the sequences of one record (a pair,
 * best-of-N) that start with the same tokens are scored as one unit: their
 * longest common prefix once, each response as a continuation of it
 * (prefix_share.h).  The scheduler knows nothing of JSON record kinds: a
 * `prepare` callback turns one line into a job (0..n sequences or an error)
 * and a `write` callback turns a finished job into its output line. */
#ifndef ARMO_SCHEDULER_H
#define ARMO_SCHEDULER_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "base/progress.h"
#include "host/engine/backend.h"
#include "host/engine/line_reader.h"

typedef struct {
    int32_t *ids;                /* owned (malloc) */
    int len;
    int gating_pos;              /* -1 when the model has no gating input */
    char *error;                 /* owned; set -> not scored */
    armo_result result;
    float *hidden;               /* not owned; NULL, or where the backend puts the head's
                                  * input rows (backend.h hidden_out: 2 * hidden floats) */
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
    int prepared;                /* the prepare callback has run */
} armo_job;

typedef struct {
    /* Fills job->seqs / nseq (allocated with malloc) or job->error from
     * job->line.  Runs on worker threads: must be thread-safe. */
    int (*prepare)(void *ctx, armo_job *job);
    /* Writes the finished job's output line (in input order, on the main
     * thread) to `out`, a memory stream: the scheduler then writes the whole
     * line to the output with one write(2).  Returns 0, or -1 on an error
     * (which stops the run; nothing of that line is written). */
    int (*write)(void *ctx, armo_job *job, FILE *out);
    /* Frees job->record (may be NULL). */
    void (*release)(void *ctx, armo_job *job);
    void *ctx;
} armo_job_ops;

typedef struct {
    int64_t max_batch_tokens;    /* token budget of one packed batch */
    int max_batch_seqs;          /* sequences per batch */
    int window;                  /* records read ahead and prepared together */
    int threads;                 /* prepare workers */
    int quiet;                   /* no progress */
    int share_prefix;            /* pairs / best-of-N: compute the shared prompt once */
    int min_shared_prefix;       /* tokens a prefix must have to be shared (default 8) */
    /* armo_schedule: nonzero (set by a signal handler, say) = stop: no new
     * record is taken, the batch in flight finishes, the finished prefix is
     * written and the call returns with stats.interrupted.  May be NULL. */
    atomic_int *stop;
    const char *in_name, *out_name; /* for messages ("-": standard input / output) */
    int64_t out_line0;           /* lines the output already holds (--resume): a write
                                  * error names the output's line, this + records + 1 */
} armo_sched_opts;

typedef struct {
    int64_t records, errors, sequences, batches;
    int64_t tokens;              /* tokens of the sequences scored (as the user counts them) */
    int64_t tokens_computed;     /* tokens run through the model (shared prefixes once) */
    double seconds, seconds_prepare, seconds_backend;
    int interrupted;             /* opts.stop ended the run before the input's end */
} armo_sched_stats;

/* Runs the pipeline over the records `in` has not returned yet, until its
 * end (or o->stop), writing each record's line to the file descriptor
 * out_fd.  in_size: the input's size in bytes for the ETA (-1 unknown; the
 * bytes `in` already returned are not counted as this run's).  Returns 0
 * if the run completed or was stopped (records may still have failed: see
 * stats.errors; stopped: stats.interrupted), -1 on a fatal error (input
 * read or output write failure, out of memory, backend failure) with e
 * set.  Lines written stay written in every case. */
int armo_schedule(armo_line_reader *in, int64_t in_size, int out_fd, armo_backend *backend,
                  const armo_job_ops *ops, const armo_sched_opts *o, armo_sched_stats *stats,
                  armo_err *e);

/* Where armo_score_jobs puts each record's whole line (its '\n' included),
 * in input order; line_no is the job's.  Returns 0, or -1 with e set, which
 * stops the run. */
typedef int (*armo_line_emit)(void *ctx, const char *line, size_t len, int64_t line_no,
                              armo_err *e);

/* One window of records held in memory, scored as armo_schedule scores each
 * of its windows (the same code): jobs[0..n) — each with line (malloc'ed),
 * line_len and line_no set, zero otherwise; the call owns them and clears
 * them — are prepared on o->threads workers, packed in input order under
 * o->max_batch_tokens, scored batch by batch, and each record's line goes
 * to emit as soon as it and every earlier record are done.  For callers
 * that hold their records in memory (the in-process API, host/api); no
 * progress is shown and o->window is not used.  Returns 0 (records may
 * have failed: stats.errors) or -1 on a fatal error (backend, emit, out of
 * memory) with e set. */
int armo_score_jobs(armo_job *jobs, int n, armo_backend *backend, const armo_job_ops *ops,
                    const armo_sched_opts *o, armo_line_emit emit, void *emit_ctx,
                    armo_sched_stats *stats, armo_err *e);
/* The same with data parallel: nbackends workers, each owning one backend
 * replica (one device, or a share of the CPU's threads), take the packed
 * batches of a window from one shared queue as they finish
 * (worker_pool.h); lines are still written strictly in input order, each
 * as soon as every earlier record is done.  A worker whose backend is lost
 * (backend.h's lost) is reported on stderr by name and its batch goes to
 * the others; with none left, the records not scored become per-record
 * errors.  The output equals a one-worker run's byte for byte when the
 * backends compute the same bits (the CPU backend does at any thread
 * count).  armo_schedule is this with one backend. */
int armo_schedule_workers(armo_line_reader *in, int64_t in_size, int out_fd,
                          armo_backend **backends, int nbackends, const armo_job_ops *ops,
                          const armo_sched_opts *o, armo_sched_stats *stats, armo_err *e);

/* The sequences of one record (or any group that may share a prompt
 * prefix). */
typedef struct {
    armo_seq **seqs;
    int n;
} armo_seq_group;

/* The packing and scoring step alone, for callers that bring their own
 * sequences (`armo bench`): sequences with an error or no tokens are
 * skipped; a group's common prefix is shared when o->share_prefix; units are
 * packed in order under o->max_batch_tokens; each armo_seq gets its
 * result (or its error).  Counts go into st (not reset). */
int armo_score_groups(armo_backend *b, const armo_seq_group *groups, int ngroups,
                      const armo_sched_opts *o, armo_sched_stats *st, armo_err *e);

/* The same through the data-parallel workers (one per backend of b[0..nb),
 * as armo_schedule_workers runs them): `armo bench`'s measure of their
 * overhead and scaling. */
int armo_score_groups_workers(armo_backend **b, int nb, const armo_seq_group *groups,
                              int ngroups, const armo_sched_opts *o, armo_sched_stats *st,
                              armo_err *e);

/* Frees what a job owns (not the job itself). */
void armo_job_clear(armo_job *job);

#endif
