/* scheduler.c — windowed, pipelined batch scoring (see scheduler.h).
 *
 * Shape: the main thread reads window k+1's lines, hands them to a pool of
 * prepare workers (started per window; a window is thousands of records so
 * thread start-up is noise), scores window k meanwhile, then writes window
 * k's results in order.  Sorting sequences by length inside a window packs
 * batches with little waste; bounding the window bounds memory. */
#include "host/engine/scheduler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- a window of jobs and its prepare workers ------------------------------ */

typedef struct {
    armo_job *jobs;
    int n, cap;
    const armo_job_ops *ops;
    atomic_int next;
    pthread_t *threads;
    int nthreads;
    int started;
    double t_start, t_end;
} window;

static void *prepare_worker(void *arg) {
    window *w = arg;
    for (;;) {
        int i = atomic_fetch_add(&w->next, 1);
        if (i >= w->n) break;
        armo_job *job = &w->jobs[i];
        if (w->ops->prepare(w->ops->ctx, job) != 0 && !job->error)
            job->error = strdup("record could not be prepared");
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

/* Reads up to max lines (blank lines skipped).  Returns the count; *eof set
 * at end of input; -1 on a read error. */
static int window_read(window *w, FILE *in, int max, int64_t *line_no, int64_t *bytes, int *eof) {
    w->n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (w->n < max) {
        ssize_t len = getline(&line, &cap, in);
        if (len < 0) {
            *eof = 1;
            break;
        }
        (*line_no)++;
        *bytes += len;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' ||
                                   line[k] == '\n'))
            k++;
        if (k == (size_t)len) continue; /* blank line: not a record */
        armo_job *job = &w->jobs[w->n++];
        memset(job, 0, sizeof *job);
        job->line_no = *line_no;
        job->end_offset = *bytes;
        job->line = malloc((size_t)len + 1);
        if (!job->line) {
            free(line);
            return -1;
        }
        memcpy(job->line, line, (size_t)len + 1);
        job->line_len = (size_t)len;
    }
    free(line);
    return ferror(in) ? -1 : w->n;
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
} unit;

static int by_tokens(const void *a, const void *b) {
    const unit *x = a, *y = b;
    return (x->tokens > y->tokens) - (x->tokens < y->tokens);
}

typedef struct {
    int32_t *ids, *cu, *gpos, *prefix_of;
    armo_result *res;
    armo_seq **owner;            /* segment -> sequence it scores (NULL for a prefix) */
    int64_t ids_cap;
    int seq_cap;
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
        if (!cu || !g || !pf || !r || !o) return -1;
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

/* Scores units u[0..n) as one packed batch.  On a backend error the units
 * are retried one by one, and a shared unit that still fails is retried as
 * unshared sequences, so that one bad sequence cannot fail its neighbours. */
static int score_units(armo_backend *b, pack_buf *p, unit *u, int n, armo_sched_stats *st,
                       armo_err *e) {
    int64_t tokens = 0;
    int nseg = 0, shared = 0;
    for (int i = 0; i < n; i++) {
        tokens += u[i].tokens;
        nseg += u[i].n + (u[i].prefix_len > 0);
        shared |= u[i].prefix_len > 0;
    }
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
    st->batches++;
    if (b->score(b, p->ids, p->cu, nseg, p->gpos, shared ? p->prefix_of : NULL, p->res, &be) == 0) {
        for (int s = 0; s < nseg; s++)
            if (p->owner[s]) p->owner[s]->result = p->res[s];
        st->tokens_computed += tokens;
        return 0;
    }
    if (n > 1) {
        for (int i = 0; i < n; i++)
            if (score_units(b, p, &u[i], 1, st, e)) return -1;
        return 0;
    }
    if (u[0].prefix_len > 0) { /* the shared unit alone failed: score its sequences unshared */
        for (int j = 0; j < u[0].n; j++) {
            unit one = {.seqs = &u[0].seqs[j], .n = 1, .prefix_len = 0,
                        .tokens = u[0].seqs[j]->len, .expanded = u[0].seqs[j]->len};
            if (score_units(b, p, &one, 1, st, e)) return -1;
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

int armo_score_groups(armo_backend *b, const armo_seq_group *groups, int ngroups,
                      const armo_sched_opts *o, armo_sched_stats *st, armo_err *e) {
    int total = 0;
    for (int g = 0; g < ngroups; g++) total += groups[g].n;
    if (total == 0) return 0;
    unit *units = malloc((size_t)total * sizeof *units);
    armo_seq **ptrs = malloc((size_t)total * sizeof *ptrs);
    pack_buf p = {0};
    if (!units || !ptrs) {
        free(units);
        free(ptrs);
        return armo_err_set(e, "out of memory");
    }
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
            for (int j = 0; j < nv; j++) {
                u->tokens += u->seqs[j]->len - P;
                u->expanded += u->seqs[j]->len;
            }
        } else {
            for (int j = first; j < np; j++)
                units[nu++] = (unit){.seqs = &ptrs[j], .n = 1, .prefix_len = 0,
                                     .tokens = ptrs[j]->len, .expanded = ptrs[j]->len};
        }
    }
    qsort(units, (size_t)nu, sizeof *units, by_tokens);
    int rc = 0;
    for (int i = 0; i < nu && rc == 0;) {
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
        rc = score_units(b, &p, units + i, j - i, st, e);
        for (int k = i; k < j; k++) {
            st->sequences += units[k].n;
            st->tokens += units[k].expanded;
        }
        i = j;
    }
    free(units);
    free(ptrs);
    free(p.ids);
    free(p.cu);
    free(p.gpos);
    free(p.prefix_of);
    free(p.res);
    free(p.owner);
    return rc;
}

static int score_window(window *w, armo_backend *b, const armo_sched_opts *o,
                        armo_sched_stats *st, armo_err *e) {
    armo_seq_group *groups = malloc((size_t)(w->n ? w->n : 1) * sizeof *groups);
    armo_seq **ptrs = NULL;
    int total = 0, ng = 0, np = 0;
    for (int i = 0; i < w->n; i++)
        if (!w->jobs[i].error) total += w->jobs[i].nseq;
    ptrs = malloc((size_t)(total ? total : 1) * sizeof *ptrs);
    if (!groups || !ptrs) {
        free(groups);
        free(ptrs);
        return armo_err_set(e, "out of memory");
    }
    for (int i = 0; i < w->n; i++) {
        armo_job *job = &w->jobs[i];
        if (job->error) continue;
        groups[ng].seqs = ptrs + np;
        groups[ng].n = job->nseq;
        for (int s = 0; s < job->nseq; s++) ptrs[np++] = &job->seqs[s];
        ng++;
    }
    int rc = armo_score_groups(b, groups, ng, o, st, e);
    free(groups);
    free(ptrs);
    return rc;
}

static int write_window(window *w, const armo_job_ops *ops, FILE *out, armo_sched_stats *st,
                        int64_t *bytes_done, armo_err *e) {
    for (int i = 0; i < w->n; i++) {
        armo_job *job = &w->jobs[i];
        int failed = job->error != NULL;
        for (int s = 0; s < job->nseq; s++) failed |= job->seqs[s].error != NULL;
        st->records++;
        st->errors += failed;
        if (ops->write(ops->ctx, job, out))
            return armo_err_set(e, "writing the result of input line %lld failed",
                                (long long)job->line_no);
        *bytes_done = job->end_offset;
        if (ops->release) ops->release(ops->ctx, job);
        armo_job_clear(job);
    }
    w->n = 0;
    return fflush(out) == 0 ? 0 : armo_err_set(e, "writing output failed");
}

int armo_schedule(FILE *in, int64_t in_size, FILE *out, armo_backend *backend,
                  const armo_job_ops *ops, const armo_sched_opts *o, armo_sched_stats *stats,
                  armo_err *e) {
    memset(stats, 0, sizeof *stats);
    int wsize = o->window > 0 ? o->window : 1024;
    window win[2];
    memset(win, 0, sizeof win);
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        win[k].jobs = calloc((size_t)wsize, sizeof(armo_job));
        win[k].cap = wsize;
        win[k].ops = ops;
        if (!win[k].jobs) rc = armo_err_set(e, "out of memory");
    }
    armo_progress prog;
    armo_progress_init(&prog, in_size, o->quiet);
    double t0 = armo_now();
    int64_t line_no = 0, bytes = 0, bytes_done = 0;
    int eof = 0, cur = 0;
    if (!rc && window_read(&win[cur], in, wsize, &line_no, &bytes, &eof) < 0)
        rc = armo_err_set(e, "reading input failed");
    if (!rc) window_start(&win[cur], o->threads);
    while (!rc && win[cur].started) {
        window_wait(&win[cur]);
        stats->seconds_prepare += win[cur].t_end - win[cur].t_start;
        int nxt = cur ^ 1;
        if (!eof) { /* overlap: prepare the next window while this one is scored */
            if (window_read(&win[nxt], in, wsize, &line_no, &bytes, &eof) < 0) {
                rc = armo_err_set(e, "reading input failed");
                break;
            }
            if (win[nxt].n > 0) window_start(&win[nxt], o->threads);
        }
        double tb = armo_now();
        rc = score_window(&win[cur], backend, o, stats, e);
        stats->seconds_backend += armo_now() - tb;
        if (!rc) rc = write_window(&win[cur], ops, out, stats, &bytes_done, e);
        armo_progress_update(&prog, stats->records, stats->tokens, stats->errors, bytes_done);
        cur = nxt;
    }
    /* on a fatal error, let a running window finish and free everything */
    for (int k = 0; k < 2; k++) {
        window_wait(&win[k]);
        for (int i = 0; i < win[k].n; i++) {
            if (ops->release) ops->release(ops->ctx, &win[k].jobs[i]);
            armo_job_clear(&win[k].jobs[i]);
        }
        free(win[k].jobs);
    }
    stats->seconds = armo_now() - t0;
    armo_progress_finish(&prog);
    return rc;
}
