/* tp_group.c — a tensor-parallel group of CUDA ranks behind one backend
 * (cuda_backend.h, armo_cuda_tp_group_open).
 *
 * One host thread per rank, started at open and kept: the group's score
 * call hands the batch to every rank's thread (a generation counter under
 * one mutex), each runs the whole forward on its device with its shards
 * (cuda_backend.c; NCCL all-reduces after o_proj and down_proj join the
 * ranks on their streams), and the call returns when all are back, with
 * rank 0's results (after each all-reduce every rank holds the same
 * residual stream, so every rank's head computes the same values).
 *
 * Failures: a batch every rank refuses alike (a bad batch, checked before
 * any collective) is an ordinary per-batch error.  A rank that fails while
 * running leaves its peers' collectives without a partner: the group is
 * then lost (backend.h) and its communicators are aborted, so the
 * scheduler moves its batches to other workers.  Peers already blocked in
 * such a collective are released by the group's watchdog thread: while a
 * batch is in flight it polls every 20 ms, and when a rank has returned an
 * error while its peers are still running ARMO_TP_WATCHDOG_GRACE_MS later
 * (default 10000: peers refusing the same bad batch return within
 * microseconds; peers waiting for a failed partner never do), or when NCCL
 * reports an asynchronous error on a communicator (ncclCommGetAsyncError),
 * it aborts the communicators (ncclCommAbort): the blocked collectives
 * return, the batch's results are discarded whatever the peers returned,
 * and the group is lost, naming the rank and why.  Checked on the
 * emulator's fake NCCL only; a real NCCL's abort of a kernel in flight has
 * not run here.  The test hook ARMO_TEST_FAIL_TP_GROUP=R:K makes TP rank R
 * of the first group to reach its K-th batch (0-based) fail it alone, once
 * per process, without running it, as a rank whose device failed would. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/cuda/cuda_backend.h"
#include "host/cuda/nccl_comm.h"

typedef struct tp_group tp_group;

typedef struct {
    tp_group *grp;
    int rank;
    armo_backend *b;
    pthread_t th;
    int started;
    armo_result *out;            /* rank > 0: its own results (discarded) */
    int out_cap;
    int rc;
    int done;                    /* returned from the batch in flight */
    armo_err err;
} tp_rank;

struct tp_group {
    int tp;
    armo_nccl_group *nccl;
    tp_rank *ranks;
    pthread_mutex_t mu;
    pthread_cond_t cv_go, cv_done;
    long generation;             /* bumped per batch */
    int pending;                 /* ranks still running the batch */
    int quit, failed;
    char lost[300];
    /* the watchdog (see the top of the file) */
    pthread_t watchdog;
    int watchdog_started;
    pthread_cond_t cv_watch;     /* a rank returned, or quit */
    double grace_s;              /* ARMO_TP_WATCHDOG_GRACE_MS */
    int aborted;                 /* the watchdog aborted the communicators */
    char aborted_why[300];
    long batches;                /* score calls so far (the test hook) */
    /* the batch in flight */
    const int32_t *ids, *cu, *gpos, *prefix_of;
    int nseq;
    armo_result *out;
};

/* ARMO_TEST_FAIL_TP_GROUP=R:K: whether TP rank `rank` fails batch `batch`
 * (once per process: the first group to get there). */
static int hook_fires(int rank, long batch) {
    static atomic_int fired;
    const char *v = getenv("ARMO_TEST_FAIL_TP_GROUP");
    int r = -1;
    long k = -1;
    if (!v || sscanf(v, "%d:%ld", &r, &k) != 2 || r != rank || k != batch) return 0;
    return !atomic_exchange(&fired, 1);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Under the lock: aborts the communicators (the lock is let go meanwhile:
 * ranks blocked in a collective come back through it). */
static void watchdog_abort(tp_group *g, const char *why) {
    g->aborted = 1;
    snprintf(g->aborted_why, sizeof g->aborted_why, "%.230s; the watchdog aborted the group's "
             "NCCL communicators", why);
    pthread_mutex_unlock(&g->mu);
    armo_nccl_group_abort(g->nccl);
    pthread_mutex_lock(&g->mu);
}

/* While a batch is in flight: a rank failed and its peers are still out
 * past the grace period, or NCCL reports an asynchronous error -> abort. */
static void *watchdog_main(void *arg) {
    tp_group *g = arg;
    double failed_at = 0;        /* when a rank of batch `gen` was first seen failed */
    long gen = -1;
    pthread_mutex_lock(&g->mu);
    while (!g->quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        int w = pthread_cond_timedwait(&g->cv_watch, &g->mu, &until);
        if (w && w != ETIMEDOUT) break;
        if (g->quit || g->pending == 0 || g->aborted) continue;
        if (gen != g->generation) gen = g->generation, failed_at = 0;
        int first = -1;
        for (int r = 0; r < g->tp && first < 0; r++)
            if (g->ranks[r].done && g->ranks[r].rc) first = r;
        char why[300];
        if (first >= 0 && failed_at == 0) failed_at = now_s();
        if (first >= 0 && now_s() - failed_at > g->grace_s) {
            snprintf(why, sizeof why, "TP rank %d failed (%.150s) while its peers (%d) were "
                     "still in the batch %.1f s later", first, g->ranks[first].err.msg,
                     g->pending, g->grace_s);
            watchdog_abort(g, why);
            continue;
        }
        armo_err ae;
        pthread_mutex_unlock(&g->mu);
        const int async = armo_nccl_group_async_error(g->nccl, &ae);
        pthread_mutex_lock(&g->mu);
        if (async && !g->aborted && g->pending > 0) {
            snprintf(why, sizeof why, "%.200s", ae.msg);
            watchdog_abort(g, why);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void *rank_main(void *arg) {
    tp_rank *r = arg;
    tp_group *g = r->grp;
    long seen = 0;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->quit && g->generation == seen) pthread_cond_wait(&g->cv_go, &g->mu);
        if (g->quit) break;
        seen = g->generation;
        armo_result *out = r->rank == 0 ? g->out : r->out;
        const int fail = hook_fires(r->rank, g->batches);
        pthread_mutex_unlock(&g->mu);
        if (fail)
            r->rc = armo_err_set(&r->err, "made to fail by ARMO_TEST_FAIL_TP_GROUP (test hook)");
        else
            r->rc = r->b->score(r->b, g->ids, g->cu, g->nseq, g->gpos, g->prefix_of, out, &r->err);
        pthread_mutex_lock(&g->mu);
        r->done = 1;
        if (--g->pending == 0) pthread_cond_broadcast(&g->cv_done);
        pthread_cond_signal(&g->cv_watch);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static int group_score(armo_backend *b, const int32_t *ids, const int32_t *cu, int nseq,
                       const int32_t *gpos, const int32_t *prefix_of, armo_result *out,
                       armo_err *e) {
    tp_group *g = b->impl;
    if (g->lost[0]) return armo_err_set(e, "the TP group failed earlier: %s", g->lost);
    for (int r = 1; r < g->tp; r++) { /* the other ranks' result space */
        tp_rank *k = &g->ranks[r];
        if (k->out_cap < nseq) {
            armo_result *o = realloc(k->out, (size_t)(nseq > 0 ? nseq : 1) * sizeof *o);
            if (!o) return armo_err_set(e, "out of host memory for TP rank %d's results", r);
            k->out = o;
            k->out_cap = nseq;
        }
    }
    pthread_mutex_lock(&g->mu);
    g->ids = ids, g->cu = cu, g->gpos = gpos, g->prefix_of = prefix_of;
    g->nseq = nseq, g->out = out;
    g->pending = g->tp;
    for (int r = 0; r < g->tp; r++) g->ranks[r].done = 0;
    g->generation++;
    pthread_cond_broadcast(&g->cv_go);
    while (g->pending > 0) pthread_cond_wait(&g->cv_done, &g->mu);
    g->batches++;
    const int aborted = g->aborted;
    pthread_mutex_unlock(&g->mu);
    if (aborted) { /* whatever the ranks returned, the batch's results are void */
        snprintf(g->lost, sizeof g->lost, "%.290s", g->aborted_why);
        g->failed = 1;
        b->lost = g->lost;
        return armo_err_set(e, "%s", g->aborted_why);
    }
    int nfail = 0, first = -1;
    for (int r = 0; r < g->tp; r++)
        if (g->ranks[r].rc) nfail++, first = first < 0 ? r : first;
    if (!nfail) return 0;
    const tp_rank *f = &g->ranks[first];
    if (nfail < g->tp || f->b->lost) { /* the ranks disagree, or a device is gone */
        snprintf(g->lost, sizeof g->lost, "TP rank %d (%.80s): %.180s", first, f->b->device,
                 f->b->lost ? f->b->lost : f->err.msg);
        g->failed = 1;
        b->lost = g->lost;
    }
    return armo_err_set(e, "TP rank %d: %s", first, f->err.msg);
}

static void group_destroy(armo_backend *b) {
    if (!b) return;
    tp_group *g = b->impl;
    if (g) {
        pthread_mutex_lock(&g->mu);
        g->quit = 1;
        pthread_cond_broadcast(&g->cv_go);
        pthread_cond_broadcast(&g->cv_watch);
        pthread_mutex_unlock(&g->mu);
        for (int r = 0; g->ranks && r < g->tp; r++)
            if (g->ranks[r].started) pthread_join(g->ranks[r].th, NULL);
        if (g->watchdog_started) pthread_join(g->watchdog, NULL);
        for (int r = 0; g->ranks && r < g->tp; r++) {
            armo_backend_close(g->ranks[r].b);
            free(g->ranks[r].out);
        }
        armo_nccl_group_destroy(g->nccl, g->failed);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv_go);
        pthread_cond_destroy(&g->cv_done);
        pthread_cond_destroy(&g->cv_watch);
        free(g->ranks);
        free(g);
    }
    free(b);
}

/* The ranks' backends (each uploads its shards) and their threads. */
static int open_ranks(armo_backend *b, tp_group *g, const armo_model *m,
                      const armo_backend_opts *o, const int *dev, armo_err *e) {
    for (int r = 0; r < g->tp; r++) {
        armo_backend_opts ro = o ? *o : (armo_backend_opts){0};
        ro.has_device = 1;
        ro.device = dev[r];
        ro.tp = 0;
        g->ranks[r].grp = g;
        g->ranks[r].rank = r;
        g->ranks[r].b = armo_cuda_backend_create_rank(m, &ro, g->tp, r, g->nccl, e);
        if (!g->ranks[r].b) return armo_err_prefix(e, "TP rank %d (device %d)", r, dev[r]);
    }
    for (int r = 0; r < g->tp; r++) {
        int err = pthread_create(&g->ranks[r].th, NULL, rank_main, &g->ranks[r]);
        if (err)
            return armo_err_set(e, "cannot start the thread of TP rank %d: %s", r, strerror(err));
        g->ranks[r].started = 1;
    }
    const char *grace = getenv("ARMO_TP_WATCHDOG_GRACE_MS");
    g->grace_s = grace && atof(grace) > 0 ? atof(grace) / 1000.0 : 10.0;
    int err = pthread_create(&g->watchdog, NULL, watchdog_main, g);
    if (err) return armo_err_set(e, "cannot start the TP group's watchdog: %s", strerror(err));
    g->watchdog_started = 1;
    int len = snprintf(b->device, sizeof b->device, "TP group of %d: %.60s", g->tp,
                       g->ranks[0].b->device);
    for (int r = 1; r < g->tp && len > 0 && (size_t)len < sizeof b->device; r++)
        len += snprintf(b->device + len, sizeof b->device - (size_t)len, " + device %d", dev[r]);
    b->max_expanded_rows = g->ranks[0].b->max_expanded_rows;
    return 0;
}

armo_backend *armo_cuda_tp_group_open(const armo_model *m, const armo_backend_opts *o,
                                      const int *dev, int tp, armo_err *e) {
    if (tp < 1 || tp > ARMO_MAX_TP) {
        armo_err_set(e, "--tp %d: between 1 and %d", tp, ARMO_MAX_TP);
        return NULL;
    }
    armo_backend *b = calloc(1, sizeof *b);
    tp_group *g = calloc(1, sizeof *g);
    if (g) g->ranks = calloc((size_t)tp, sizeof *g->ranks);
    if (!b || !g || !g->ranks) {
        if (g) free(g->ranks);
        free(g);
        free(b);
        armo_err_set(e, "out of host memory");
        return NULL;
    }
    g->tp = tp;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv_go, NULL);
    pthread_cond_init(&g->cv_done, NULL);
    pthread_cond_init(&g->cv_watch, NULL);
    b->impl = g;
    b->name = "cuda";
    b->score = group_score;
    b->destroy = group_destroy;
    g->nccl = armo_nccl_group_create(dev, tp, e);
    if (!g->nccl || open_ranks(b, g, m, o, dev, e)) {
        armo_err_prefix(e, "tensor parallel over %d devices", tp);
        group_destroy(b);
        return NULL;
    }
    return b;
}
