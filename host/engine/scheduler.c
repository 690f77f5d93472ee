/* scheduler.c — windowed, pipelined batch scoring (see scheduler.h).
 *
 * Shape: a reader thread reads records into a queue (up to a window ahead);
 * the main thread takes a window from it, has a pool of prepare workers
 * (started per window; thread start-up is noise next to a window's work)
 * prepare it, and while they prepare window k+1 it scores window k batch by
 * batch, in input order, writing after every batch the lines of the
 * records it completed.  The scoring workers do not wait at a window's
 * end: once window k's last batches are taken, window k+1's go to the
 * queue behind them.  Bounding the window bounds memory (two windows). */
#include "host/engine/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/engine/worker_pool.h"

void armo_job_clear(armo_job *job) {
    free(job->line);
    free(job->error);
    for (int i = 0; i < job->nseq; i++) {
        free(job->seqs[i].ids);
        free(job->seqs[i].error);
    }
    free(job->seqs);
    memset(job, 0, sizeof *job);
}

static int is_set(const atomic_int *flag) { return flag && atomic_load(flag) != 0; }

/* ---- the reader thread: records queued up to a window ahead ------------------- */

typedef struct {
    armo_line_reader *lr;
    atomic_int *saved_cancel;
    armo_job *q;                 /* ring of read records (line, line_no, end_offset) */
    int cap, head, n;
    int done;                    /* 1 end of input, -1 read error, 2 cancelled */
    int err;                     /* errno of a read error */
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* a record queued, the input ended, room made, quit */
    pthread_t th;
    int inited, started;
    atomic_int quit;
} feeder;

static void *feeder_main(void *arg) {
    feeder *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (f->n == f->cap && !atomic_load(&f->quit)) pthread_cond_wait(&f->cv, &f->mu);
        pthread_mutex_unlock(&f->mu);
        if (atomic_load(&f->quit)) break;
        const char *line;
        size_t len;
        int rc = armo_line_next_record(f->lr, &line, &len);
        armo_job job = {0};
        if (rc == 1) {
            job.line_no = f->lr->line_no;
            job.end_offset = f->lr->bytes;
            job.line_len = len;
            job.line = malloc(len + 1);
            if (job.line) {
                memcpy(job.line, line, len);
                job.line[len] = 0;
            } else {
                f->lr->err = ENOMEM;
                rc = -1;
            }
        }
        pthread_mutex_lock(&f->mu);
        if (rc == 1) {
            f->q[(f->head + f->n) % f->cap] = job;
            f->n++;
        } else {
            f->done = rc == 0 ? 1 : rc == -2 ? 2 : -1;
            f->err = f->lr->err;
        }
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (rc != 1) break;
    }
    return NULL;
}

static int feeder_start(feeder *f, armo_line_reader *lr, int cap, armo_err *e) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    atomic_init(&f->quit, 0);
    f->inited = 1;
    f->lr = lr;
    f->cap = cap;
    f->q = calloc((size_t)cap, sizeof *f->q);
    if (!f->q) return armo_err_set(e, "out of memory");
    f->saved_cancel = lr->cancel;
    lr->cancel = &f->quit;
    int err = pthread_create(&f->th, NULL, feeder_main, f);
    if (err) {
        lr->cancel = f->saved_cancel;
        return armo_err_set(e, "cannot start the input reader thread: %s", strerror(err));
    }
    f->started = 1;
    return 0;
}

/* Stops the reader thread (it sees quit within 100 ms even when blocked on
 * a pipe) and frees the records still queued.  Returns how many records
 * of the input were not taken: those queued, +1 when the reader had not
 * reached the input's end. */
static int feeder_stop(feeder *f, const armo_job_ops *ops) {
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        atomic_store(&f->quit, 1);
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->th, NULL);
        f->lr->cancel = f->saved_cancel;
        f->started = 0;
    }
    int left = f->n + (f->done != 1);
    for (int i = 0; f->q && i < f->n; i++) {
        armo_job *job = &f->q[(f->head + i) % f->cap];
        if (ops->release) ops->release(ops->ctx, job);
        armo_job_clear(job);
    }
    free(f->q);
    f->q = NULL;
    f->n = 0;
    if (f->inited) {
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        f->inited = 0;
    }
    return left;
}

/* Moves up to max queued records into jobs[], first waiting until `need`
 * are queued (or the input ended, or stop).  Returns the count; *failed:
 * the reader stopped on a read error (errno *err). */
static int feeder_take(feeder *f, armo_job *jobs, int need, int max, const atomic_int *stop,
                       int *failed, int *err) {
    pthread_mutex_lock(&f->mu);
    while (f->n < need && !f->done && !is_set(stop)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 100 * 1000 * 1000; /* wake up to see stop */
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &t);
    }
    int k = f->n < max ? f->n : max;
    for (int i = 0; i < k; i++) jobs[i] = f->q[(f->head + i) % f->cap];
    f->head = (f->head + k) % f->cap;
    f->n -= k;
    *failed = f->done == -1;
    *err = f->err;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return k;
}

/* ---- a window of jobs and its prepare workers ------------------------------ */

typedef struct {
    armo_job *jobs;
    int n, cap;
    int written;                 /* jobs [0, written) are written and cleared */
    const armo_job_ops *ops;
    const atomic_int *stop;      /* set: the workers leave the rest unprepared */
    atomic_int next;
    pthread_t *threads;
    int nthreads;
    int started;
    double t_start, t_end;
} window;

static void *prepare_worker(void *arg) {
    window *w = arg;
    for (;;) {
        if (is_set(w->stop)) break;
        int i = atomic_fetch_add(&w->next, 1);
        if (i >= w->n) break;
        armo_job *job = &w->jobs[i];
        if (w->ops->prepare(w->ops->ctx, job) != 0 && !job->error)
            job->error = strdup("record could not be prepared");
        job->prepared = 1;
        free(job->line); /* the text is not needed once prepared */
        job->line = NULL;
    }
    return NULL;
}

static void window_start(window *w, int nthreads) {
    atomic_store(&w->next, 0);
    w->t_start = armo_now();
    w->nthreads = 0;
    w->started = 1;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > w->n) nthreads = w->n > 0 ? w->n : 1;
    w->threads = calloc((size_t)nthreads, sizeof *w->threads);
    for (int t = 0; w->threads && t < nthreads; t++)
        if (pthread_create(&w->threads[t], NULL, prepare_worker, w) == 0) w->nthreads++;
    if (w->nthreads == 0) prepare_worker(w); /* no threads: do it here */
}

static void window_wait(window *w) {
    if (!w->started) return;
    for (int t = 0; t < w->nthreads; t++) pthread_join(w->threads[t], NULL);
    free(w->threads);
    w->threads = NULL;
    w->started = 0;
    w->t_end = armo_now();
}

/* Frees the window's jobs that are not written. */
static void window_clear(window *w) {
    window_wait(w);
    for (int i = w->written; i < w->n; i++) {
        if (w->ops->release) w->ops->release(w->ops->ctx, &w->jobs[i]);
        armo_job_clear(&w->jobs[i]);
    }
    w->n = w->written = 0;
}

/* ---- packing and scoring ---------------------------------------------------- */

/* What is packed: one standalone sequence, or the sequences of one record
 * sharing a prompt prefix of prefix_len tokens (each continuing it). */
typedef struct {
    armo_seq **seqs;
    int n;
    int prefix_len;              /* 0: standalone */
    int64_t tokens;              /* unique tokens the unit puts in a batch */
    int64_t expanded;            /* rows of the unit in the expanded attention layout */
    int group;                   /* the group (record) its sequences belong to */
} unit;

typedef struct {
    int32_t *ids, *cu, *gpos, *prefix_of;
    armo_result *res;
    armo_seq **owner;            /* segment -> sequence it scores (NULL for a prefix) */
    float **hidden;              /* segment -> its owner's hidden buffer (or NULL) */
    int64_t ids_cap;
    int seq_cap;
    int quiet;                   /* no note when the backend lowers the budget */
    int64_t noted_limit;         /* the backend's max_batch_tokens_now last noted */
} pack_buf;

static int pack_reserve(pack_buf *p, int64_t tokens, int nseg) {
    if (tokens > p->ids_cap) {
        int32_t *n = realloc(p->ids, (size_t)tokens * sizeof *n);
        if (!n) return -1;
        p->ids = n;
        p->ids_cap = tokens;
    }
    if (nseg > p->seq_cap) {
        int32_t *cu = realloc(p->cu, (size_t)(nseg + 1) * sizeof *cu);
        if (cu) p->cu = cu;
        int32_t *g = realloc(p->gpos, (size_t)nseg * sizeof *g);
        if (g) p->gpos = g;
        int32_t *pf = realloc(p->prefix_of, (size_t)nseg * sizeof *pf);
        if (pf) p->prefix_of = pf;
        armo_result *r = realloc(p->res, (size_t)nseg * sizeof *r);
        if (r) p->res = r;
        armo_seq **o = realloc(p->owner, (size_t)nseg * sizeof *o);
        if (o) p->owner = o;
        float **h = realloc(p->hidden, (size_t)nseg * sizeof *h);
        if (h) p->hidden = h;
        if (!cu || !g || !pf || !r || !o || !h) return -1;
        p->seq_cap = nseg;
    }
    return 0;
}

static void push_segment(pack_buf *p, int *nseg, int64_t *off, const int32_t *ids, int len,
                         int gpos, int prefix, armo_seq *owner) {
    memcpy(p->ids + *off, ids, (size_t)len * sizeof(int32_t));
    *off += len;
    p->cu[*nseg + 1] = (int32_t)*off;
    p->gpos[*nseg] = gpos;
    p->prefix_of[*nseg] = prefix;
    p->owner[*nseg] = owner;
    (*nseg)++;
}

static int score_units(armo_backend *b, pack_buf *p, unit *u, int n, armo_sched_stats *st,
                       armo_err *e);

/* Units u[0..n) re-packed in order into batches of at most `limit` tokens
 * (a unit larger than that alone), each scored by score_units. */
static int score_repacked(armo_backend *b, pack_buf *p, unit *u, int n, int64_t limit,
                          armo_sched_stats *st, armo_err *e) {
    for (int i = 0; i < n;) {
        int j = i + 1;
        int64_t tokens = u[i].tokens;
        while (j < n && tokens + u[j].tokens <= limit) tokens += u[j++].tokens;
        int r = score_units(b, p, u + i, j - i, st, e);
        if (r) return r;
        i = j;
    }
    return 0;
}

/* The backend lowered the batch budget (it could not allocate a batch's
 * activations): a one-line note, once per new limit. */
static void note_limit(const armo_backend *b, pack_buf *p, int64_t tokens, const char *why) {
    if (p->noted_limit == b->max_batch_tokens_now) return;
    p->noted_limit = b->max_batch_tokens_now;
    if (!p->quiet)
        fprintf(stderr, "\narmo: a batch of %lld tokens did not fit on the %s (%s); batches of up "
                        "to %lld tokens from now on\n", (long long)tokens, b->device, why,
                (long long)b->max_batch_tokens_now);
}

/* Scores units u[0..n) as one packed batch.  On a backend error the units
 * are re-packed under the budget the backend lowered, if it did (the
 * device ran out of memory), else retried one by one; a shared unit that
 * still fails is retried as unshared sequences, so that one bad sequence
 * cannot fail its neighbours.  Returns 0, -1 (fatal, e set), or
 * ARMO_POOL_LOST when the backend is lost (b->lost): then the batch's
 * results are incomplete and it is run again elsewhere (batch_reset). */
static int score_units(armo_backend *b, pack_buf *p, unit *u, int n, armo_sched_stats *st,
                       armo_err *e) {
    int64_t tokens = 0;
    int nseg = 0, shared = 0;
    for (int i = 0; i < n; i++) {
        tokens += u[i].tokens;
        nseg += u[i].n + (u[i].prefix_len > 0);
        shared |= u[i].prefix_len > 0;
    }
    const int64_t limit = b->max_batch_tokens_now;
    if (n > 1 && limit > 0 && tokens > limit) /* packed before the budget was lowered */
        return score_repacked(b, p, u, n, limit, st, e);
    if (pack_reserve(p, tokens, nseg)) return armo_err_set(e, "out of memory packing a batch");
    int64_t off = 0;
    int k = 0;
    p->cu[0] = 0;
    for (int i = 0; i < n; i++) {
        if (u[i].prefix_len > 0) {
            int pseg = k, P = u[i].prefix_len;
            push_segment(p, &k, &off, u[i].seqs[0]->ids, P, -1, -1, NULL);
            for (int j = 0; j < u[i].n; j++)
                push_segment(p, &k, &off, u[i].seqs[j]->ids + P, u[i].seqs[j]->len - P,
                             u[i].seqs[j]->gating_pos, pseg, u[i].seqs[j]);
        } else {
            push_segment(p, &k, &off, u[i].seqs[0]->ids, u[i].seqs[0]->len,
                         u[i].seqs[0]->gating_pos, -1, u[i].seqs[0]);
        }
    }
    armo_err be;
    if (b->lost) return ARMO_POOL_LOST;
    st->batches++;
    /* armo embed: where each segment's head input rows go (backend.h) */
    int want_hidden = 0;
    for (int s = 0; s < nseg; s++) {
        p->hidden[s] = p->owner[s] ? p->owner[s]->hidden : NULL;
        want_hidden |= p->hidden[s] != NULL;
    }
    b->hidden_out = want_hidden ? p->hidden : NULL;
    int src = b->score(b, p->ids, p->cu, nseg, p->gpos, shared ? p->prefix_of : NULL, p->res, &be);
    b->hidden_out = NULL;
    if (src == 0) {
        for (int s = 0; s < nseg; s++)
            if (p->owner[s]) p->owner[s]->result = p->res[s];
        st->tokens_computed += tokens;
        return 0;
    }
    if (b->lost) return ARMO_POOL_LOST;
    if (n > 1 && b->max_batch_tokens_now > 0 && b->max_batch_tokens_now < tokens) {
        note_limit(b, p, tokens, be.msg);
        return score_repacked(b, p, u, n, b->max_batch_tokens_now, st, e);
    }
    if (n > 1) {
        for (int i = 0; i < n; i++) {
            int r = score_units(b, p, &u[i], 1, st, e);
            if (r) return r;
        }
        return 0;
    }
    if (u[0].prefix_len > 0) { /* the shared unit alone failed: score its sequences unshared */
        for (int j = 0; j < u[0].n; j++) {
            unit one = {.seqs = &u[0].seqs[j], .n = 1, .prefix_len = 0,
                        .tokens = u[0].seqs[j]->len, .expanded = u[0].seqs[j]->len,
                        .group = u[0].group};
            int r = score_units(b, p, &one, 1, st, e);
            if (r) return r;
        }
        return 0;
    }
    u[0].seqs[0]->error = strdup(be.msg);
    return 0;
}

/* Longest common prefix of the job's scorable sequences, kept short of the
 * shortest one so that each continuation has a token of its own. */
static int shared_prefix_len(armo_seq **v, int n) {
    int P = v[0]->len - 1;
    for (int j = 1; j < n; j++) {
        int lim = v[j]->len - 1 < P ? v[j]->len - 1 : P, i = 0;
        while (i < lim && v[j]->ids[i] == v[0]->ids[i]) i++;
        P = i;
    }
    return P > 0 ? P : 0;
}

/* The packed batches of a set of groups: units (a group's shared unit, or
 * its sequences one by one) in the groups' order, batch b being units
 * [start[b], start[b+1]).  Not sorted by length: packing is without
 * padding and attention is tiled over the batch's rows, so a batch of
 * mixed lengths costs what its tokens cost, and budgets fill as well in
 * input order (a unit that does not fit starts the next batch either way);
 * in input order a batch completes a run of consecutive records, so that
 * their lines can be written as soon as it is scored. */
typedef struct {
    unit *units;
    armo_seq **ptrs;
    int nu, nb;
    int *start;
} plan;

static void plan_free(plan *pl) {
    free(pl->units);
    free(pl->ptrs);
    free(pl->start);
    memset(pl, 0, sizeof *pl);
}

static int plan_build(plan *pl, const armo_backend *b, const armo_seq_group *groups, int ngroups,
                      const armo_sched_opts *o, armo_err *e) {
    memset(pl, 0, sizeof *pl);
    int total = 0;
    for (int g = 0; g < ngroups; g++) total += groups[g].n;
    pl->units = malloc((size_t)(total ? total : 1) * sizeof *pl->units);
    pl->ptrs = malloc((size_t)(total ? total : 1) * sizeof *pl->ptrs);
    pl->start = malloc((size_t)(total + 1) * sizeof *pl->start);
    if (!pl->units || !pl->ptrs || !pl->start) {
        plan_free(pl);
        return armo_err_set(e, "out of memory");
    }
    unit *units = pl->units;
    armo_seq **ptrs = pl->ptrs;
    int nu = 0, np = 0;
    int min_share = o->min_shared_prefix > 0 ? o->min_shared_prefix : 8;
    const int64_t max_exp = b->max_expanded_rows > 0 ? b->max_expanded_rows : INT64_MAX;
    for (int g = 0; g < ngroups; g++) {
        int first = np;
        for (int s = 0; s < groups[g].n; s++)
            if (!groups[g].seqs[s]->error && groups[g].seqs[s]->len > 0)
                ptrs[np++] = groups[g].seqs[s];
        int nv = np - first;
        int P = o->share_prefix && nv >= 2 ? shared_prefix_len(ptrs + first, nv) : 0;
        int64_t whole = 0; /* rows of the group's expanded attention layout */
        for (int j = first; j < np; j++) whole += ptrs[j]->len;
        /* a group whose expanded layout exceeds what the backend holds is
         * scored unshared (in ordinary batches) */
        if (P >= min_share && whole <= max_exp) {
            unit *u = &units[nu++];
            u->seqs = ptrs + first;
            u->n = nv;
            u->prefix_len = P;
            u->tokens = P;
            u->expanded = 0;
            u->group = g;
            for (int j = 0; j < nv; j++) {
                u->tokens += u->seqs[j]->len - P;
                u->expanded += u->seqs[j]->len;
            }
        } else {
            for (int j = first; j < np; j++)
                units[nu++] = (unit){.seqs = &ptrs[j], .n = 1, .prefix_len = 0,
                                     .tokens = ptrs[j]->len, .expanded = ptrs[j]->len,
                                     .group = g};
        }
    }
    pl->nu = nu;
    for (int i = 0; i < nu;) {
        int j = i, segs = 0;
        int64_t tokens = 0, expanded = 0;
        /* a unit larger than the budget goes alone; the expanded attention
         * rows of a batch stay within what the backend holds */
        while (j < nu &&
               (j == i || (tokens + units[j].tokens <= o->max_batch_tokens &&
                           expanded + units[j].expanded <= max_exp &&
                           segs + units[j].n + 1 <= o->max_batch_seqs))) {
            tokens += units[j].tokens;
            expanded += units[j].expanded;
            segs += units[j].n + (units[j].prefix_len > 0);
            j++;
        }
        pl->start[pl->nb++] = i;
        i = j;
    }
    pl->start[pl->nb] = nu;
    return 0;
}

/* Counts batch k's sequences and tokens as scored. */
static void plan_count(const plan *pl, int k, armo_sched_stats *st) {
    for (int u = pl->start[k]; u < pl->start[k + 1]; u++) {
        st->sequences += pl->units[u].n;
        st->tokens += pl->units[u].expanded;
    }
}

/* Scores batch k of the plan; its sequences get their results (or errors). */
static int plan_score(plan *pl, int k, armo_backend *b, pack_buf *p, armo_sched_stats *st,
                      armo_err *e) {
    int i = pl->start[k], j = pl->start[k + 1];
    int rc = score_units(b, p, pl->units + i, j - i, st, e);
    if (rc == ARMO_POOL_LOST)
        rc = armo_err_set(e, "the %s backend (%s) failed: %s", b->name, b->device, b->lost);
    plan_count(pl, k, st);
    return rc;
}

/* Batch k's sequences back to "not scored" (a lost worker may have left
 * some results or errors in them), so that another worker runs it anew. */
static void batch_reset(plan *pl, int k) {
    for (int u = pl->start[k]; u < pl->start[k + 1]; u++)
        for (int j = 0; j < pl->units[u].n; j++) {
            armo_seq *q = pl->units[u].seqs[j];
            free(q->error);
            q->error = NULL;
            memset(&q->result, 0, sizeof q->result);
        }
}

/* Batch k could not be run (no worker left): each sequence gets `why`. */
static void batch_orphan(plan *pl, int k, const char *why) {
    batch_reset(pl, k);
    for (int u = pl->start[k]; u < pl->start[k + 1]; u++)
        for (int j = 0; j < pl->units[u].n; j++) pl->units[u].seqs[j]->error = strdup(why);
}

static void pack_free(pack_buf *p) {
    free(p->ids);
    free(p->cu);
    free(p->gpos);
    free(p->prefix_of);
    free(p->res);
    free(p->owner);
    free(p->hidden);
}

int armo_score_groups(armo_backend *b, const armo_seq_group *groups, int ngroups,
                      const armo_sched_opts *o, armo_sched_stats *st, armo_err *e) {
    plan pl;
    if (plan_build(&pl, b, groups, ngroups, o, e)) return -1;
    pack_buf p = {.quiet = o->quiet};
    int rc = 0;
    for (int k = 0; k < pl.nb && rc == 0; k++) rc = plan_score(&pl, k, b, &p, st, e);
    pack_free(&p);
    plan_free(&pl);
    return rc;
}

/* ---- a window scored batch by batch, its lines written as they are done ------ */

typedef struct {
    const armo_job_ops *ops;
    armo_line_emit emit;         /* where each whole line goes */
    void *emit_ctx;
    armo_sched_stats *st;
    armo_progress *prog;         /* NULL: no progress */
    int64_t bytes0;              /* input bytes before this run's first record */
} sink;

static int write_all(int fd, const char *buf, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += (size_t)k;
    }
    return 0;
}

/* armo_schedule's emit: the line to a file descriptor with one write(2) (a
 * short write, or EINTR, continues where it stopped). */
typedef struct {
    int fd;
    const char *name;
    int64_t line0;               /* lines the output held before this run (--resume) */
    int64_t written;             /* lines this run wrote */
} fd_out;

static int emit_fd(void *ctx, const char *line, size_t len, int64_t line_no, armo_err *e) {
    fd_out *f = ctx;
    if (write_all(f->fd, line, len) == 0) {
        f->written++;
        return 0;
    }
    int en = errno;
    return armo_err_set(e, "writing line %lld of %s: %s (the result of input line %lld)",
                        (long long)(f->line0 + f->written + 1),
                        f->name && strcmp(f->name, "-") ? f->name : "the standard output",
                        strerror(en), (long long)line_no);
}

/* The job's line, formatted in memory and handed whole to the sink. */
static int write_line(sink *s, armo_job *job, armo_err *e) {
    char *buf = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&buf, &len);
    if (!ms) return armo_err_set(e, "out of memory writing the result of input line %lld",
                                 (long long)job->line_no);
    int rc = s->ops->write(s->ops->ctx, job, ms);
    if (fclose(ms) != 0) rc = -1;
    if (rc) {
        free(buf);
        return armo_err_set(e, "formatting the result of input line %lld failed",
                            (long long)job->line_no);
    }
    rc = s->emit(s->emit_ctx, buf, len, job->line_no, e);
    free(buf);
    return rc;
}

/* Writes the window's jobs from w->written on while they are done
 * (remaining[i] == 0: no sequence left to score). */
static int window_flush(window *w, const int *remaining, sink *s, armo_err *e) {
    int64_t bytes_done = -1;
    while (w->written < w->n && remaining[w->written] == 0) {
        armo_job *job = &w->jobs[w->written];
        int failed = job->error != NULL;
        for (int q = 0; q < job->nseq; q++)
            failed |= job->seqs[q].error != NULL || job->seqs[q].result.nonfinite != ARMO_NF_NONE;
        if (write_line(s, job, e)) return -1;
        s->st->records++;
        s->st->errors += failed;
        bytes_done = job->end_offset - s->bytes0;
        if (w->ops->release) w->ops->release(w->ops->ctx, job);
        armo_job_clear(job);
        w->written++;
    }
    if (bytes_done >= 0 && s->prog)
        armo_progress_update(s->prog, s->st->records, s->st->tokens, s->st->errors, bytes_done);
    return 0;
}

/* ---- the workers: data parallel over the window's batches ------------------- */

/* What each worker keeps between batches: its packing buffers and counts. */
typedef struct {
    pack_buf p;
    armo_sched_stats st;         /* batches, tokens_computed, seconds_backend */
} worker_state;

typedef struct {
    armo_backend **b;            /* one backend replica per worker */
    int n;
    armo_pool *pool;
    worker_state *ws;
} workers;

typedef struct {
    plan *pl;
    worker_state *ws;
} round_ctx;

/* armo_pool_fn: batch k of the round's plan on worker w. */
static int run_batch(void *ctx, int k, int w, armo_backend *b, armo_err *e) {
    round_ctx *r = ctx;
    worker_state *ws = &r->ws[w];
    batch_reset(r->pl, k);
    double t0 = armo_now();
    int rc = score_units(b, &ws->p, r->pl->units + r->pl->start[k],
                         r->pl->start[k + 1] - r->pl->start[k], &ws->st, e);
    ws->st.seconds_backend += armo_now() - t0;
    return rc;
}

/* One window's scoring as a round of the pool: its groups (group i = job
 * i), their plan, and per record the sequences still to score. */
typedef struct {
    window *w;
    int begun;                   /* set up (round_end frees it) */
    armo_seq_group *groups;
    armo_seq **ptrs;
    int *remaining;              /* per job: sequences not scored; -1: never written
                                  * (stopped before it was prepared) */
    plan pl;
    round_ctx r;                 /* the pool's ctx for this round */
    int submitted, returned;     /* batches handed to the pool, and back */
} wround;

static void round_end(wround *R) {
    if (R->begun) plan_free(&R->pl);
    free(R->groups);
    free(R->ptrs);
    free(R->remaining);
    memset(R, 0, sizeof *R);
}

/* Sets up window w (prepared) as round R and, unless o->stop is set,
 * submits its batches to the workers (behind any still queued). */
static int round_begin(wround *R, window *w, workers *wk, const armo_sched_opts *o, armo_err *e) {
    memset(R, 0, sizeof *R);
    R->w = w;
    const int n = w->n;
    int total = 0;
    for (int i = 0; i < n; i++)
        if (!w->jobs[i].error) total += w->jobs[i].nseq;
    const size_t njobs = n > 0 ? (size_t)n : 1, nptrs = total > 0 ? (size_t)total : 1;
    R->groups = calloc(njobs, sizeof *R->groups);
    R->ptrs = malloc(nptrs * sizeof *R->ptrs);
    R->remaining = calloc(njobs, sizeof *R->remaining);
    if (!R->groups || !R->ptrs || !R->remaining) {
        round_end(R);
        return armo_err_set(e, "out of memory");
    }
    for (int i = 0, np = 0; i < n; i++) {
        armo_job *job = &w->jobs[i];
        R->remaining[i] = job->prepared ? 0 : -1;
        if (job->error || !job->prepared) continue;
        R->groups[i].seqs = R->ptrs + np;
        R->groups[i].n = job->nseq;
        for (int q = 0; q < job->nseq; q++) R->ptrs[np++] = &job->seqs[q];
    }
    if (plan_build(&R->pl, wk->b[0], R->groups, n, o, e)) {
        round_end(R);
        return -1;
    }
    R->begun = 1;
    for (int i = 0; i < wk->n; i++) wk->ws[i].p.quiet = o->quiet;
    for (int u = 0; u < R->pl.nu; u++) R->remaining[R->pl.units[u].group] += R->pl.units[u].n;
    R->r = (round_ctx){&R->pl, wk->ws};
    if (R->pl.nb > 0 && !is_set(o->stop)) {
        if (armo_pool_submit(wk->pool, R->pl.nb, run_batch, &R->r, o->stop, e)) return -1;
        R->submitted = R->pl.nb;
    }
    return 0;
}

/* Batch k of round R came back from the pool with status st. */
static void round_batch_back(wround *R, int k, int st, const armo_err *pe, armo_sched_stats *ss) {
    if (st == ARMO_POOL_ORPHAN) batch_orphan(&R->pl, k, pe->msg);
    else plan_count(&R->pl, k, ss);
    for (int u = R->pl.start[k]; u < R->pl.start[k + 1]; u++)
        R->remaining[R->pl.units[u].group] -= R->pl.units[u].n;
    R->returned++;
}

/* What begins the next window's round when the pool's queue runs dry (the
 * workers about to run out of work while cur's last batches are in
 * flight); NULL: no next window. */
typedef struct {
    wround *R;
    window *w;
    double *seconds_prepare;
} next_round;

/* Scores round cur until all its batches are back (or a stop or an error),
 * writing its records' lines as they complete; with nxt, its window's
 * batches are submitted behind cur's as soon as the queue runs dry, so that
 * no worker waits for cur's last batch (their records are written once
 * they are the oldest).  With o->stop set no new batch starts; those in
 * flight finish and their records are written. */
static int score_round(wround *cur, const next_round *nxt, workers *wk,
                       const armo_sched_opts *o, sink *s, armo_err *e) {
    int rc = window_flush(cur->w, cur->remaining, s, e); /* nothing to score, or done before */
    while (rc == 0 && cur->returned < cur->submitted) {
        if (nxt && !nxt->R->begun && nxt->w->n > 0 && !is_set(o->stop) &&
            armo_pool_queued(wk->pool) == 0) {
            window_wait(nxt->w);
            *nxt->seconds_prepare += nxt->w->t_end - nxt->w->t_start;
            rc = round_begin(nxt->R, nxt->w, wk, o, e);
            if (rc) break;
        }
        void *ctx = NULL;
        int k = 0;
        armo_err pe;
        const int st = armo_pool_next(wk->pool, &ctx, &k, &pe);
        if (st == ARMO_POOL_END) break; /* stopped */
        if (st == ARMO_POOL_FATAL) {
            *e = pe;
            rc = -1;
            break;
        }
        wround *R = ctx == &cur->r ? cur : nxt->R;
        round_batch_back(R, k, st, &pe, s->st);
        if (R == cur) rc = window_flush(cur->w, cur->remaining, s, e);
    }
    return rc;
}

/* Scores window w (prepared) alone: armo_score_jobs. */
static int score_window(window *w, workers *wk, const armo_sched_opts *o, sink *s, armo_err *e) {
    wround R;
    int rc = round_begin(&R, w, wk, o, e);
    if (rc == 0) rc = score_round(&R, NULL, wk, o, s, e);
    /* an error: the batches in flight still use the plan */
    if (rc) armo_pool_drain(wk->pool);
    round_end(&R);
    return rc;
}

static void workers_stop(workers *wk, armo_sched_stats *st) {
    armo_pool_destroy(wk->pool);
    for (int i = 0; wk->ws && i < wk->n; i++) {
        st->batches += wk->ws[i].st.batches;
        st->tokens_computed += wk->ws[i].st.tokens_computed;
        st->seconds_backend += wk->ws[i].st.seconds_backend;
        pack_free(&wk->ws[i].p);
    }
    free(wk->ws);
    memset(wk, 0, sizeof *wk);
}

static int workers_start(workers *wk, armo_backend **b, int n, armo_err *e) {
    memset(wk, 0, sizeof *wk);
    wk->b = b;
    wk->n = n;
    wk->ws = calloc((size_t)n, sizeof *wk->ws);
    if (!wk->ws) return armo_err_set(e, "out of memory");
    wk->pool = armo_pool_create(b, n, e);
    return wk->pool ? 0 : -1;
}

int armo_score_groups_workers(armo_backend **b, int nb, const armo_seq_group *groups,
                              int ngroups, const armo_sched_opts *o, armo_sched_stats *st,
                              armo_err *e) {
    workers wk;
    plan pl;
    int rc = workers_start(&wk, b, nb, e);
    if (rc == 0 && plan_build(&pl, b[0], groups, ngroups, o, e) == 0) {
        round_ctx r = {&pl, wk.ws};
        if (pl.nb > 0) rc = armo_pool_submit(wk.pool, pl.nb, run_batch, &r, NULL, e);
        for (int k, s; rc == 0 && pl.nb > 0;) {
            armo_err pe;
            void *ctx;
            s = armo_pool_next(wk.pool, &ctx, &k, &pe);
            if (s == ARMO_POOL_END) break;
            if (s == ARMO_POOL_FATAL) {
                *e = pe;
                rc = -1;
            } else if (s == ARMO_POOL_ORPHAN) {
                batch_orphan(&pl, k, pe.msg);
            } else {
                plan_count(&pl, k, st);
            }
        }
        plan_free(&pl);
    } else {
        rc = -1;
    }
    workers_stop(&wk, st);
    return rc;
}

/* ---- the pipeline --------------------------------------------------------------- */

/* Takes the next window from the reader: `need` records at least (fewer at
 * the input's end or on stop), at most a window.  A read error with no
 * record left to take is fatal. */
static int take_window(window *w, feeder *f, int need, int nthreads, const armo_sched_opts *o,
                       armo_err *e) {
    int failed = 0, err = 0;
    w->n = feeder_take(f, w->jobs, need, w->cap, o->stop, &failed, &err);
    w->written = 0;
    if (w->n > 0) {
        window_start(w, nthreads);
        return 0;
    }
    if (failed)
        return armo_err_set(e, "reading %s failed at line %lld: %s",
                            o->in_name && strcmp(o->in_name, "-") ? o->in_name
                                                                  : "the standard input",
                            (long long)f->lr->line_no + 1, strerror(err));
    return 0;
}

int armo_schedule(armo_line_reader *in, int64_t in_size, int out_fd, armo_backend *backend,
                  const armo_job_ops *ops, const armo_sched_opts *o, armo_sched_stats *stats,
                  armo_err *e) {
    return armo_schedule_workers(in, in_size, out_fd, &backend, 1, ops, o, stats, e);
}

int armo_schedule_workers(armo_line_reader *in, int64_t in_size, int out_fd,
                          armo_backend **backends, int nbackends, const armo_job_ops *ops,
                          const armo_sched_opts *o, armo_sched_stats *stats, armo_err *e) {
    memset(stats, 0, sizeof *stats);
    const int wsize = o->window > 0 ? o->window : 1024;
    /* a regular file: full windows (reading ahead costs nothing); else the
     * records that have arrived, so that a slow producer is not waited for */
    struct stat sb;
    const int whole = fstat(in->fd, &sb) == 0 && S_ISREG(sb.st_mode);
    window win[2];
    memset(win, 0, sizeof win);
    feeder f = {0};
    workers wk = {0};
    int rc = workers_start(&wk, backends, nbackends, e);
    for (int k = 0; k < 2; k++) {
        win[k].jobs = calloc((size_t)wsize, sizeof(armo_job));
        win[k].cap = wsize;
        win[k].ops = ops;
        win[k].stop = o->stop;
        if (!win[k].jobs) rc = armo_err_set(e, "out of memory");
    }
    armo_progress prog; /* this run's records: those `in` returned already are not */
    armo_progress_init(&prog, in_size >= 0 ? in_size - in->bytes : -1, o->quiet);
    fd_out fo = {.fd = out_fd, .name = o->out_name, .line0 = o->out_line0};
    sink s = {.ops = ops, .emit = emit_fd, .emit_ctx = &fo, .st = stats, .prog = &prog,
              .bytes0 = in->bytes};
    if (!rc) rc = feeder_start(&f, in, wsize, e);
    double t0 = armo_now();
    int cur = 0;
    wround rd[2];
    memset(rd, 0, sizeof rd);
    if (!rc) rc = take_window(&win[cur], &f, whole ? wsize : 1, o->threads, o, e);
    /* Two windows in flight at most: cur, the oldest, is scored and written;
     * the other is prepared meanwhile and its batches go to the workers
     * when cur's queue runs dry (score_round); once cur is written, the
     * other is cur and the freed window takes the next records. */
    while (!rc && win[cur].n > 0) {
        const int nxt = cur ^ 1;
        if (!rd[cur].begun) {
            window_wait(&win[cur]);
            stats->seconds_prepare += win[cur].t_end - win[cur].t_start;
            rc = round_begin(&rd[cur], &win[cur], &wk, o, e);
        }
        /* overlap: prepare the next window while this one is scored */
        if (!rc && win[nxt].n == 0 && !is_set(o->stop))
            rc = take_window(&win[nxt], &f, whole ? wsize : 0, o->threads, o, e);
        next_round nr = {&rd[nxt], &win[nxt], &stats->seconds_prepare};
        if (!rc) rc = score_round(&rd[cur], &nr, &wk, o, &s, e);
        if (rc || win[cur].written < win[cur].n) break; /* error, or stopped */
        round_end(&rd[cur]);
        win[cur].n = win[cur].written = 0;
        cur = nxt;
        if (win[cur].n == 0 && !is_set(o->stop))
            rc = take_window(&win[cur], &f, whole ? wsize : 1, o->threads, o, e);
    }
    /* what is left (a stop, an error): the batches in flight back (they use
     * the plans), the reader stopped, the windows' workers joined, the
     * records not written freed */
    if (rd[0].begun || rd[1].begun) armo_pool_drain(wk.pool);
    round_end(&rd[0]);
    round_end(&rd[1]);
    int left = win[0].n - win[0].written + win[1].n - win[1].written;
    left += feeder_stop(&f, ops);
    workers_stop(&wk, stats);
    for (int k = 0; k < 2; k++) {
        if (win[k].jobs) window_clear(&win[k]);
        free(win[k].jobs);
    }
    stats->interrupted = !rc && left > 0 && is_set(o->stop);
    stats->seconds = armo_now() - t0;
    armo_progress_finish(&prog);
    return rc;
}

int armo_score_jobs(armo_job *jobs, int n, armo_backend *backend, const armo_job_ops *ops,
                    const armo_sched_opts *o, armo_line_emit emit, void *emit_ctx,
                    armo_sched_stats *stats, armo_err *e) {
    memset(stats, 0, sizeof *stats);
    window w = {.jobs = jobs, .n = n, .cap = n, .ops = ops, .stop = o->stop};
    sink s = {.ops = ops, .emit = emit, .emit_ctx = emit_ctx, .st = stats};
    double t0 = armo_now();
    window_start(&w, o->threads);
    window_wait(&w);
    stats->seconds_prepare = w.t_end - w.t_start;
    workers wk;
    int rc = workers_start(&wk, &backend, 1, e);
    if (rc == 0) rc = score_window(&w, &wk, o, &s, e);
    workers_stop(&wk, stats);
    window_clear(&w); /* the records not written (an error, a stop) */
    stats->interrupted = !rc && w.written < n && is_set(o->stop);
    stats->seconds = armo_now() - t0;
    return rc;
}
