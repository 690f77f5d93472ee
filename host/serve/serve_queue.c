/* serve_queue.c — the engine thread and its FIFO of jobs (see serve_queue.h). */
#include "host/serve/serve_queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/progress.h"

struct armo_serve_entry {
    armo_serve_req *req;
    int job;
    int64_t tokens;
};

static int job_scorable(const armo_job *job) {
    if (job->error || job->nseq == 0) return 0;
    for (int s = 0; s < job->nseq; s++)
        if (job->seqs[s].error) return 0;
    return 1;
}

int64_t armo_serve_job_tokens(const armo_job *job) {
    if (!job_scorable(job)) return 0;
    int64_t t = 0;
    for (int s = 0; s < job->nseq; s++) t += job->seqs[s].len;
    return t;
}

/* The request's last job is done: hand it back (engine thread). */
static void req_finish_one(armo_serve_req *r) {
    if (--r->remaining == 0 && r->done) r->done(r);
}

int armo_serve_queue_submit(armo_serve_queue *q, armo_serve_req *r) {
    int k = 0;
    for (int j = 0; j < r->njobs; j++) k += job_scorable(&r->jobs[j]);
    r->remaining = k;
    r->status = 0;
    if (k == 0) {
        if (r->done) r->done(r);
        return 0;
    }
    pthread_mutex_lock(&q->mu);
    if (q->stop || q->n + k > q->cap) {
        pthread_mutex_unlock(&q->mu);
        r->remaining = 0;
        return 1;
    }
    for (int j = 0; j < r->njobs; j++) {
        if (!job_scorable(&r->jobs[j])) continue;
        struct armo_serve_entry *en = &q->q[(q->head + q->n) % q->cap];
        en->req = r;
        en->job = j;
        en->tokens = armo_serve_job_tokens(&r->jobs[j]);
        q->tokens += en->tokens;
        q->n++;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* The CLOCK_REALTIME time from_now seconds ahead (pthread_cond_timedwait's). */
static void abs_time(struct timespec *t, double from_now) {
    clock_gettime(CLOCK_REALTIME, t);
    long long ns = (long long)t->tv_nsec + (long long)(from_now * 1e9);
    t->tv_sec += (time_t)(ns / 1000000000LL);
    t->tv_nsec = (long)(ns % 1000000000LL);
}

/* Waits (q->mu held) for work, then for the batch to fill: until the queued
 * tokens reach the budget, max_wait_ms after the oldest job arrived, that
 * job's deadline (it is then failed at once), a flush or a stop.  Returns 0
 * when the engine should exit (stopped and empty). */
static int wait_batch(armo_serve_queue *q) {
    while (q->n == 0 && !q->stop) pthread_cond_wait(&q->cv, &q->mu);
    if (q->n == 0) return 0;
    for (;;) {
        if (q->stop || q->flush || q->tokens >= q->o.max_batch_tokens) return 1;
        const armo_serve_req *oldest = q->q[q->head].req;
        double due = oldest->t_arrival + q->o.max_wait_ms / 1000.0;
        if (oldest->deadline > 0 && oldest->deadline < due) due = oldest->deadline;
        double left = due - armo_now();
        if (left <= 0) return 1;
        struct timespec t;
        abs_time(&t, left);
        pthread_cond_timedwait(&q->cv, &q->mu, &t);
    }
}

/* Takes entries from the head (q->mu held) up to the token budget (at
 * least one), dropping those of requests past their deadline into *late. */
static int take_batch(armo_serve_queue *q, struct armo_serve_entry *out, int max_out,
                      struct armo_serve_entry *late, int *nlate) {
    int n = 0;
    int64_t tokens = 0;
    double now = armo_now();
    *nlate = 0;
    while (q->n > 0 && n < max_out) {
        struct armo_serve_entry *en = &q->q[q->head];
        int expired = en->req->deadline > 0 && now > en->req->deadline;
        if (!expired && n > 0 && tokens + en->tokens > q->o.max_batch_tokens) break;
        if (expired) late[(*nlate)++] = *en;
        else {
            out[n++] = *en;
            tokens += en->tokens;
        }
        q->tokens -= en->tokens;
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    return n;
}

/* 1 when jobs a and b (one sequence each) score the same prompt: the same
 * gating position and tokens up to it (ArmoRM), or a common prefix of at
 * least min_share tokens (single-head RMs). */
static int same_prompt(const armo_job *a, const armo_job *b, int min_share) {
    if (a->nseq != 1 || b->nseq != 1) return 0;
    const armo_seq *x = &a->seqs[0], *y = &b->seqs[0];
    if (x->gating_pos >= 0 || y->gating_pos >= 0)
        return x->gating_pos == y->gating_pos && x->gating_pos < x->len - 1 &&
               y->gating_pos < y->len - 1 &&
               !memcmp(x->ids, y->ids, sizeof(int32_t) * (size_t)(x->gating_pos + 1));
    int lim = x->len < y->len ? x->len : y->len, i = 0;
    while (i < lim && x->ids[i] == y->ids[i]) i++;
    return i >= min_share;
}

/* The groups of a batch: a job's sequences, and with share_across the
 * consecutive single-sequence jobs of one request that share a prompt. */
static int build_groups(armo_serve_queue *q, const struct armo_serve_entry *en, int n,
                        armo_seq_group *groups, armo_seq **ptrs) {
    int ng = 0, np = 0;
    for (int i = 0; i < n; i++) {
        armo_job *job = &en[i].req->jobs[en[i].job];
        int join = 0;
        if (i > 0 && q->o.share_prefix && en[i].req == en[i - 1].req && en[i].req->share_across) {
            const armo_seq_group *g = &groups[ng - 1];
            armo_job first = {.seqs = g->seqs[0], .nseq = 1};
            join = job->nseq == 1 && g->n >= 1 &&
                   same_prompt(&first, job, q->o.min_shared_prefix > 0 ? q->o.min_shared_prefix : 8);
            /* the first of the group must itself be a single-sequence job */
            join = join && en[i - 1].req->jobs[en[i - 1].job].nseq == 1;
        }
        if (!join) {
            groups[ng].seqs = ptrs + np;
            groups[ng].n = 0;
            ng++;
        }
        for (int s = 0; s < job->nseq; s++) {
            ptrs[np++] = &job->seqs[s];
            groups[ng - 1].n++;
        }
    }
    return ng;
}

static void record_batch(armo_serve_queue *q, const armo_sched_stats *st, int njobs,
                         double seconds) {
    pthread_mutex_lock(&q->mu);
    q->st.records += njobs;
    q->st.sequences += st->sequences;
    q->st.tokens += st->tokens;
    q->st.tokens_computed += st->tokens_computed;
    q->st.batches += st->batches;
    q->st.busy_seconds += seconds;
    q->st.batch_tokens_sum += (double)st->tokens_computed;
    /* one observation per engine cycle (its tokens computed) */
    for (int b = 0; b < ARMO_SERVE_BATCH_BUCKETS; b++)
        if ((double)st->tokens_computed <= q->st.batch_tokens_bounds[b]) q->st.batch_tokens_le[b]++;
    pthread_mutex_unlock(&q->mu);
}

/* Scores one batch of entries; every request whose last job it held is done. */
static void score_batch(armo_serve_queue *q, struct armo_serve_entry *en, int n,
                        armo_seq_group *groups, armo_seq **ptrs) {
    int ng = build_groups(q, en, n, groups, ptrs);
    armo_sched_opts so = {.max_batch_tokens = q->o.max_batch_tokens,
                          .max_batch_seqs = q->o.max_batch_seqs,
                          .share_prefix = q->o.share_prefix,
                          .min_shared_prefix = q->o.min_shared_prefix};
    armo_sched_stats st;
    memset(&st, 0, sizeof st);
    armo_err e;
    double t0 = armo_now();
    int rc = armo_score_groups(q->backend, groups, ng, &so, &st, &e);
    record_batch(q, &st, n, armo_now() - t0);
    for (int i = 0; i < n; i++) {
        armo_serve_req *r = en[i].req;
        if (rc && !r->status) {
            r->status = 500;
            snprintf(r->error, sizeof r->error, "scoring failed: %.200s", e.msg);
        }
        req_finish_one(r);
    }
}

typedef struct {
    struct armo_serve_entry *batch, *late;
    armo_seq_group *groups;
    armo_seq **ptrs;
    int cap_seqs;
} engine_buf;

static int engine_reserve(engine_buf *b, const struct armo_serve_entry *en, int n) {
    int seqs = 0;
    for (int i = 0; i < n; i++) seqs += en[i].req->jobs[en[i].job].nseq;
    if (seqs > b->cap_seqs) {
        armo_seq_group *g = realloc(b->groups, sizeof *g * (size_t)seqs);
        if (g) b->groups = g;
        armo_seq **p = realloc(b->ptrs, sizeof *p * (size_t)seqs);
        if (p) b->ptrs = p;
        if (!g || !p) return -1;
        b->cap_seqs = seqs;
    }
    return 0;
}

static void *engine_main(void *arg) {
    armo_serve_queue *q = arg;
    engine_buf b = {0};
    b.batch = malloc(sizeof *b.batch * (size_t)q->cap);
    b.late = malloc(sizeof *b.late * (size_t)q->cap);
    for (;;) {
        pthread_mutex_lock(&q->mu);
        if (!wait_batch(q)) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        int nlate = 0;
        int n = b.batch && b.late ? take_batch(q, b.batch, q->cap, b.late, &nlate) : 0;
        q->st.timeouts += nlate;
        pthread_mutex_unlock(&q->mu);
        for (int i = 0; i < nlate; i++) {
            armo_serve_req *r = b.late[i].req;
            if (!r->status) {
                r->status = 504;
                snprintf(r->error, sizeof r->error,
                         "the request waited longer than the server's --request-timeout");
            }
            req_finish_one(r);
        }
        if (n == 0 && !(b.batch && b.late)) { /* out of memory: fail what is queued */
            pthread_mutex_lock(&q->mu);
            q->stop = 1;
            pthread_mutex_unlock(&q->mu);
            break;
        }
        if (n == 0) continue;
        if (engine_reserve(&b, b.batch, n)) {
            for (int i = 0; i < n; i++) {
                b.batch[i].req->status = 500;
                snprintf(b.batch[i].req->error, sizeof b.batch[i].req->error, "out of memory");
                req_finish_one(b.batch[i].req);
            }
            continue;
        }
        score_batch(q, b.batch, n, b.groups, b.ptrs);
    }
    free(b.batch);
    free(b.late);
    free(b.groups);
    free(b.ptrs);
    return NULL;
}

int armo_serve_queue_start(armo_serve_queue *q, armo_backend *b, const armo_serve_queue_opts *o,
                           armo_err *e) {
    memset(q, 0, sizeof *q);
    q->backend = b;
    q->o = *o;
    q->cap = o->max_queue > 0 ? o->max_queue : 4096;
    q->q = calloc((size_t)q->cap, sizeof *q->q);
    if (!q->q) return armo_err_set(e, "out of memory for a queue of %d jobs", q->cap);
    for (int k = 0; k < ARMO_SERVE_BATCH_BUCKETS; k++) /* 16 .. 32768 tokens, then +Inf */
        q->st.batch_tokens_bounds[k] = k + 1 < ARMO_SERVE_BATCH_BUCKETS ? (double)(16 << k)
                                                                         : 1e300;
    int err = pthread_mutex_init(&q->mu, NULL);
    if (err) {
        free(q->q);
        q->q = NULL;
        return armo_err_set(e, "cannot create the queue's mutex: %s", strerror(err));
    }
    err = pthread_cond_init(&q->cv, NULL);
    if (err) {
        free(q->q);
        q->q = NULL;
        pthread_mutex_destroy(&q->mu);
        return armo_err_set(e, "cannot create the queue's condition: %s", strerror(err));
    }
    err = pthread_create(&q->th, NULL, engine_main, q);
    if (err) {
        free(q->q);
        q->q = NULL;
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        return armo_err_set(e, "cannot start the engine thread: %s", strerror(err));
    }
    q->started = 1;
    return 0;
}

void armo_serve_queue_flush(armo_serve_queue *q) {
    if (!q->started) return;
    pthread_mutex_lock(&q->mu);
    q->flush = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void armo_serve_queue_stop(armo_serve_queue *q) {
    if (!q->started) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->th, NULL);
    /* an engine that quit early (out of memory) leaves jobs: fail them */
    while (q->n > 0) {
        struct armo_serve_entry *en = &q->q[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        en->req->status = 500;
        snprintf(en->req->error, sizeof en->req->error, "the engine stopped");
        req_finish_one(en->req);
    }
    free(q->q);
    q->q = NULL;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    q->started = 0;
}

void armo_serve_queue_stats_get(armo_serve_queue *q, armo_serve_queue_stats *out) {
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    out->queued_jobs = q->n;
    out->queued_tokens = q->tokens;
    pthread_mutex_unlock(&q->mu);
}
