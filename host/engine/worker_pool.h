/* worker_pool.h — data parallel: a pool of workers, each owning one backend
 * replica (one GPU, or a share of the CPU's threads), pulling tasks (the
 * scheduler's packed batches) from one shared queue as they finish.
 *
 * The pool knows nothing of batches: a task is an index 0..n-1 of a round
 * that the round's callback runs on a worker's backend.  The caller
 * (scheduler.c) submits a window's batches as one round, then takes
 * finished tasks back one at a time, in the order they finish, and writes
 * what every earlier record completed; when the queue runs dry it submits
 * the next window's round behind the first, so that no worker waits for
 * the window's last batch.
 *
 * A worker whose backend is lost (backend.h: b->lost, a sticky device
 * failure; the callback returns ARMO_POOL_LOST) is reported on stderr by
 * name and takes no more work; its task goes back to the front of the
 * queue for the others.  When no worker is left, every task not done comes
 * back as ARMO_POOL_ORPHAN (the caller turns it into per-record errors).
 * A task is thus returned exactly once: done or orphaned.
 *
 * Test hook (documented in README): ARMO_TEST_FAIL_WORKER=IDX:AFTER makes
 * worker IDX lose its backend when it takes its task number AFTER+1 (after
 * AFTER finished tasks), as a device failing mid-run would.
 *
 * Internal to host/engine/. */
#ifndef ARMO_WORKER_POOL_H
#define ARMO_WORKER_POOL_H

#include <stdatomic.h>

#include "base/errors.h"
#include "host/engine/backend.h"

#define ARMO_POOL_LOST 1         /* a callback's return: the backend is lost */

/* Runs task `task` on `worker`'s backend b: 0 done, ARMO_POOL_LOST (the
 * task goes back), -1 a fatal error (e set: the run stops). */
typedef int (*armo_pool_fn)(void *ctx, int task, int worker, armo_backend *b, armo_err *e);

typedef struct armo_pool armo_pool;

/* Starts one thread per backend (n >= 1; the backends stay the caller's). */
armo_pool *armo_pool_create(armo_backend **backends, int n, armo_err *e);
/* Waits for the workers to finish their task and stops them. */
void armo_pool_destroy(armo_pool *p);

/* Rounds that may be in the pool at once (submitted, not all returned). */
#define ARMO_POOL_MAX_ROUNDS 2

/* Queues tasks 0..ntasks-1 (in that order, after every task queued before)
 * for fn(ctx, ...): one round, told apart from the others by ctx.  A round
 * may be submitted while earlier ones still run (at most
 * ARMO_POOL_MAX_ROUNDS not fully returned), so that the workers go on to the
 * next window's batches while the last of a window are in flight.  stop
 * (the latest submit's) holds back every queued task. */
int armo_pool_submit(armo_pool *p, int ntasks, armo_pool_fn fn, void *ctx, const atomic_int *stop,
                     armo_err *e);

enum {
    ARMO_POOL_END = 0,           /* nothing left: all returned, or stop with none in flight */
    ARMO_POOL_DONE,              /* *task of round *ctx finished */
    ARMO_POOL_ORPHAN,            /* *task of round *ctx cannot be run: no worker is left
                                  * (why in *e) */
    ARMO_POOL_FATAL,             /* a task failed fatally (e); none is in flight any more */
};
/* Waits for the next task of any round to finish (or be orphaned): its
 * round's ctx in *ctx, its index in *task.  After stop is set, queued tasks
 * are not started: END comes once those in flight are back. */
int armo_pool_next(armo_pool *p, void **ctx, int *task, armo_err *e);

/* Tasks queued and not started yet (every round): 0 means the workers
 * will run out of work as they finish the tasks in flight. */
int armo_pool_queued(armo_pool *p);

/* Abandons every round: no queued task starts; returns once none is in
 * flight (the caller may then free what the tasks use). */
void armo_pool_drain(armo_pool *p);

#endif
