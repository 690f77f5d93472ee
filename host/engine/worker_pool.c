/* worker_pool.c — data-parallel workers over one shared task queue (see
 * worker_pool.h).
 *
 * One mutex guards everything: the queue of tasks not started (an array
 * with room at its front: a lost worker's task goes back there, so that it
 * is the next one run and the output is not held back longer than needed;
 * at most one per worker can come back before the next take, so the front
 * keeps one slot per worker), the list of tasks returned to the caller,
 * the rounds (each submit's callback, context and tasks not yet returned),
 * the count in flight and which workers are alive.  Workers wait on
 * cv_work; the caller waits on cv_done (with a 100 ms timeout, so that a
 * stop flag set by a signal handler is seen). */
#include "host/engine/worker_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int round, task;
} queued;

typedef struct {
    int round, task, status;
} finished;

typedef struct {
    armo_pool_fn fn;
    void *ctx;
    int outstanding;             /* tasks not yet returned by armo_pool_next; 0: slot free */
} round_slot;

typedef struct {
    armo_pool *p;
    int idx;
} worker_arg;

struct armo_pool {
    armo_backend **b;
    int n;
    pthread_t *th;
    worker_arg *args;
    int started;                 /* threads started */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    queued *queue;               /* tasks not started: queue[qhead .. qhead+qn) */
    int qhead, qn, cap;
    finished *fin;               /* tasks back for the caller: fin[fhead .. fn) */
    int fhead, fn;
    round_slot rounds[ARMO_POOL_MAX_ROUNDS];
    int in_flight;
    int *alive, nalive;
    int *tasks_done;             /* per worker, for the test hook */
    const atomic_int *stop;
    int quit;
    int fatal;
    armo_err fatal_err;
    char lost_msg[ARMO_ERR_LEN - 200]; /* the last worker lost and why */
    int hook_worker, hook_after; /* ARMO_TEST_FAIL_WORKER; hook_worker -1: none */
};

static int stopped(const armo_pool *p) { return p->stop && atomic_load(p->stop) != 0; }

/* Every task still queued goes back as an orphan (no worker is left). */
static void orphan_queue(armo_pool *p) {
    for (int i = 0; i < p->qn; i++) {
        const queued q = p->queue[p->qhead + i];
        p->fin[p->fn++] = (finished){q.round, q.task, ARMO_POOL_ORPHAN};
    }
    p->qn = 0;
}

/* Under the lock: worker w lost its backend while running `task`. */
static void worker_lost(armo_pool *p, int w, queued task) {
    armo_backend *b = p->b[w];
    p->alive[w] = 0;
    p->nalive--;
    snprintf(p->lost_msg, sizeof p->lost_msg, "worker %d (%s: %.100s) failed: %.300s", w, b->name,
             b->device, b->lost ? b->lost : "lost");
    /* room at the front: qhead >= the tasks in flight (see the top) */
    p->queue[--p->qhead] = task;
    p->qn++;
    if (p->nalive > 0)
        fprintf(stderr, "armo: %s; its batch goes back to the queue (%d worker%s left)\n",
                p->lost_msg, p->nalive, p->nalive == 1 ? "" : "s");
    else
        fprintf(stderr, "armo: %s; no worker is left: the records not scored become errors\n",
                p->lost_msg);
    if (p->nalive == 0) orphan_queue(p);
}

static void *worker_main(void *arg) {
    armo_pool *p = ((worker_arg *)arg)->p;
    const int w = ((worker_arg *)arg)->idx;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && (p->qn == 0 || p->fatal || stopped(p)))
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->quit) break;
        const queued task = p->queue[p->qhead++];
        p->qn--;
        p->in_flight++;
        if (w == p->hook_worker && p->tasks_done[w] == p->hook_after && !p->b[w]->lost)
            p->b[w]->lost = "made to fail by ARMO_TEST_FAIL_WORKER (test hook)";
        const round_slot r = p->rounds[task.round];
        pthread_mutex_unlock(&p->mu);
        armo_err e;
        e.msg[0] = 0;
        const int rc = r.fn(r.ctx, task.task, w, p->b[w], &e);
        pthread_mutex_lock(&p->mu);
        p->in_flight--;
        if (rc == 0) {
            p->fin[p->fn++] = (finished){task.round, task.task, ARMO_POOL_DONE};
            p->tasks_done[w]++;
        } else if (rc == ARMO_POOL_LOST) {
            worker_lost(p, w, task);
        } else if (!p->fatal) {
            p->fatal = 1;
            p->fatal_err = e;
        }
        pthread_cond_broadcast(&p->cv_done);
        pthread_cond_broadcast(&p->cv_work);
        if (!p->alive[w]) break;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void parse_hook(armo_pool *p) {
    p->hook_worker = -1;
    const char *s = getenv("ARMO_TEST_FAIL_WORKER");
    int w, after;
    if (s && sscanf(s, "%d:%d", &w, &after) == 2 && w >= 0 && after >= 0) {
        p->hook_worker = w;
        p->hook_after = after;
    }
}

armo_pool *armo_pool_create(armo_backend **backends, int n, armo_err *e) {
    if (n < 1) {
        armo_err_set(e, "worker pool: no backend");
        return NULL;
    }
    armo_pool *p = calloc(1, sizeof *p);
    if (!p) {
        armo_err_set(e, "worker pool: out of memory");
        return NULL;
    }
    p->b = backends;
    p->n = n;
    p->th = calloc((size_t)n, sizeof *p->th);
    p->args = calloc((size_t)n, sizeof *p->args);
    p->alive = calloc((size_t)n, sizeof *p->alive);
    p->tasks_done = calloc((size_t)n, sizeof *p->tasks_done);
    if (!p->th || !p->args || !p->alive || !p->tasks_done) {
        free(p->th);
        free(p->args);
        free(p->alive);
        free(p->tasks_done);
        free(p);
        armo_err_set(e, "worker pool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    parse_hook(p);
    for (int w = 0; w < n; w++) {
        p->alive[w] = !backends[w]->lost;
        p->nalive += p->alive[w];
    }
    for (int w = 0; w < n; w++) {
        p->args[w] = (worker_arg){p, w};
        int err = pthread_create(&p->th[w], NULL, worker_main, &p->args[w]);
        if (err) {
            armo_err_set(e, "worker pool: cannot start worker thread %d: %s", w, strerror(err));
            armo_pool_destroy(p);
            return NULL;
        }
        p->started++;
    }
    return p;
}

void armo_pool_destroy(armo_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int w = 0; w < p->started; w++) pthread_join(p->th[w], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p->queue);
    free(p->fin);
    free(p->th);
    free(p->args);
    free(p->alive);
    free(p->tasks_done);
    free(p);
}

/* Under the lock: room for `more` further tasks (the queue behind its
 * front room, fin for every task not returned yet); both compacted. */
static int pool_reserve(armo_pool *p, int more) {
    int outstanding = more;
    for (int r = 0; r < ARMO_POOL_MAX_ROUNDS; r++) outstanding += p->rounds[r].outstanding;
    const int need = p->n + outstanding;
    if (need > p->cap) {
        queued *q = realloc(p->queue, (size_t)need * sizeof *q);
        if (!q) return -1;
        p->queue = q;
        finished *f = realloc(p->fin, (size_t)need * sizeof *f);
        if (!f) return -1;
        p->fin = f;
        p->cap = need;
    }
    memmove(p->queue + p->n, p->queue + p->qhead, (size_t)p->qn * sizeof *p->queue);
    p->qhead = p->n;
    memmove(p->fin, p->fin + p->fhead, (size_t)(p->fn - p->fhead) * sizeof *p->fin);
    p->fn -= p->fhead;
    p->fhead = 0;
    return 0;
}

int armo_pool_submit(armo_pool *p, int ntasks, armo_pool_fn fn, void *ctx, const atomic_int *stop,
                     armo_err *e) {
    pthread_mutex_lock(&p->mu);
    int slot = -1, busy = 0;
    for (int r = 0; r < ARMO_POOL_MAX_ROUNDS; r++) {
        if (p->rounds[r].outstanding > 0) busy++;
        else if (slot < 0) slot = r;
    }
    if (slot < 0) {
        pthread_mutex_unlock(&p->mu);
        return armo_err_set(e, "worker pool: %d rounds already running", ARMO_POOL_MAX_ROUNDS);
    }
    if (pool_reserve(p, ntasks)) {
        pthread_mutex_unlock(&p->mu);
        return armo_err_set(e, "worker pool: out of memory for %d tasks", ntasks);
    }
    if (!busy) p->fatal = 0; /* a fresh start */
    p->rounds[slot] = (round_slot){fn, ctx, ntasks};
    p->stop = stop;
    for (int i = 0; i < ntasks; i++) p->queue[p->qhead + p->qn++] = (queued){slot, i};
    if (p->nalive == 0) orphan_queue(p);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void armo_pool_drain(armo_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->qn = 0;
    while (p->in_flight > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    p->fhead = p->fn = 0;
    memset(p->rounds, 0, sizeof p->rounds);
    pthread_mutex_unlock(&p->mu);
}

int armo_pool_queued(armo_pool *p) {
    pthread_mutex_lock(&p->mu);
    const int n = stopped(p) ? 0 : p->qn;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int armo_pool_next(armo_pool *p, void **ctx, int *task, armo_err *e) {
    pthread_mutex_lock(&p->mu);
    int rc;
    for (;;) {
        if (p->fhead < p->fn) {
            const finished f = p->fin[p->fhead++];
            *task = f.task;
            *ctx = p->rounds[f.round].ctx;
            p->rounds[f.round].outstanding--;
            rc = f.status;
            if (rc == ARMO_POOL_ORPHAN)
                armo_err_set(e, "not scored: no worker is left (%s)", p->lost_msg);
            break;
        }
        if (p->in_flight == 0 && p->fatal) {
            if (e) *e = p->fatal_err;
            rc = ARMO_POOL_FATAL;
            break;
        }
        if (p->in_flight == 0 && (p->qn == 0 || stopped(p))) {
            rc = ARMO_POOL_END;
            break;
        }
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 100 * 1000 * 1000;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv_done, &p->mu, &t);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}
