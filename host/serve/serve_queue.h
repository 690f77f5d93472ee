/* serve_queue.h — the one continuous-batching queue of `armo serve`
 * (DESIGN §4): every client's records wait here, and one engine thread,
 * the only one that touches the backend, packs them into batches.
 *
 * A request is a set of prepared jobs (scheduler.h: each a record's
 * sequences, tokenized by the HTTP thread that received it).  Its jobs join
 * the tail of one FIFO; the engine takes jobs from the head up to the token
 * budget (--max-batch-tokens), waiting at most max_wait_ms after the oldest
 * job arrived for a batch to fill, scores them (armo_score_groups: a pair's
 * or best-of-N's prompt prefix shared, and with req->share_across the
 * single-sequence records of one request that share a prompt, e.g. the n
 * samples of one prompt that an RL trainer sends, grouped to share it too),
 * and calls req->done as soon as the last job of the request is scored: a
 * request waits for its own batches only.  A request still queued past its
 * deadline is failed with 504 (its jobs dropped), at its deadline even when
 * that comes before max_wait_ms. */
#ifndef ARMO_SERVE_QUEUE_H
#define ARMO_SERVE_QUEUE_H

#include <pthread.h>
#include <stdint.h>

#include "base/errors.h"
#include "host/engine/backend.h"
#include "host/engine/scheduler.h"

typedef struct armo_serve_req armo_serve_req;
struct armo_serve_req {
    armo_job *jobs;              /* prepared; only jobs without an error are queued */
    int njobs;
    int share_across;            /* group the request's single-sequence jobs by prompt */
    double t_arrival;            /* armo_now() when received */
    double deadline;             /* armo_now() after which it is failed (<= 0: none) */
    /* set by the queue before done() */
    int status;                  /* 0 scored; 504 timed out; 500 the engine failed */
    char error[256];
    /* engine-owned */
    int remaining;               /* jobs queued or in flight */
    void (*done)(armo_serve_req *r); /* on the engine thread, once, when remaining hits 0 */
    void *user;
};

typedef struct {
    int64_t max_batch_tokens;
    int max_batch_seqs;
    int max_wait_ms;             /* a batch waits at most this long (from its oldest job) to fill */
    int max_queue;               /* jobs the queue holds; more: submit says full */
    int share_prefix;
    int min_shared_prefix;
} armo_serve_queue_opts;

/* What the engine did, for /metrics (a snapshot: armo_serve_queue_stats). */
#define ARMO_SERVE_BATCH_BUCKETS 12
typedef struct {
    int64_t queued_jobs, queued_tokens; /* now */
    int64_t records, sequences, tokens, tokens_computed, batches, timeouts;
    int64_t batch_tokens_le[ARMO_SERVE_BATCH_BUCKETS]; /* cumulative histogram of batch tokens */
    double batch_tokens_bounds[ARMO_SERVE_BATCH_BUCKETS];
    double batch_tokens_sum;
    double busy_seconds;         /* engine time spent scoring */
} armo_serve_queue_stats;

typedef struct {
    armo_backend *backend;
    armo_serve_queue_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct armo_serve_entry *q;  /* ring of queued jobs */
    int cap, head, n;
    int64_t tokens;              /* tokens of the queued jobs */
    int stop;                    /* finish what is queued, then the engine exits */
    int flush;                   /* batches no longer wait to fill (draining) */
    pthread_t th;
    int started;
    armo_serve_queue_stats st;
} armo_serve_queue;

/* Starts the engine thread over backend b (which it alone uses from now on). */
int armo_serve_queue_start(armo_serve_queue *q, armo_backend *b, const armo_serve_queue_opts *o,
                           armo_err *e);
/* Queues r's jobs without an error (r->done is called from the engine; at
 * once, from this thread, when none needs scoring).  Returns 0, or 1 when
 * the queue has no room for them (nothing queued: answer 503). */
int armo_serve_queue_submit(armo_serve_queue *q, armo_serve_req *r);
/* From now on batches do not wait to fill (max_wait_ms): for a drain. */
void armo_serve_queue_flush(armo_serve_queue *q);
/* Scores what is queued, then stops the engine thread and frees the queue. */
void armo_serve_queue_stop(armo_serve_queue *q);
void armo_serve_queue_stats_get(armo_serve_queue *q, armo_serve_queue_stats *out);

/* Tokens the job puts in a batch (its sequences' lengths; 0 with an error). */
int64_t armo_serve_job_tokens(const armo_job *job);

#endif
