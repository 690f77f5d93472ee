/* scheduler.c — windowed, pipelined batch scoring (see scheduler.h).
 *
 * Shape: the main thread reads window k+1's lines, hands them to a pool of
 * prepare workers (started per window; a window is thousands of records so
 * thread start-up is noise), scores window k meanwhile, then writes window
 * k's results in order.  Sorting sequences by length inside a window packs
 * batches with little waste; bounding the window bounds memory. */
#include "host/scheduler.h"

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

typedef struct {
    armo_seq *seq;
    int len;
} seq_ref;

static int by_len(const void *a, const void *b) {
    const seq_ref *x = a, *y = b;
    return (x->len > y->len) - (x->len < y->len);
}

typedef struct {
    int32_t *ids, *cu, *gpos;
    armo_result *res;
    int64_t ids_cap;
    int seq_cap;
} pack_buf;

static int pack_reserve(pack_buf *p, int64_t tokens, int nseq) {
    if (tokens > p->ids_cap) {
        int32_t *n = realloc(p->ids, (size_t)tokens * sizeof *n);
        if (!n) return -1;
        p->ids = n;
        p->ids_cap = tokens;
    }
    if (nseq > p->seq_cap) {
        int32_t *cu = realloc(p->cu, (size_t)(nseq + 1) * sizeof *cu);
        if (cu) p->cu = cu;
        int32_t *g = realloc(p->gpos, (size_t)nseq * sizeof *g);
        if (g) p->gpos = g;
        armo_result *r = realloc(p->res, (size_t)nseq * sizeof *r);
        if (r) p->res = r;
        if (!cu || !g || !r) return -1;
        p->seq_cap = nseq;
    }
    return 0;
}

/* Scores refs[0..n) as one packed batch; on a backend error retries each
 * sequence alone so that one bad sequence cannot fail its neighbours. */
static int score_batch(armo_backend *b, pack_buf *p, seq_ref *refs, int n, armo_sched_stats *st,
                       armo_err *e) {
    int64_t tokens = 0;
    for (int i = 0; i < n; i++) tokens += refs[i].len;
    if (pack_reserve(p, tokens, n)) return armo_err_set(e, "out of memory packing a batch");
    int64_t off = 0;
    p->cu[0] = 0;
    for (int i = 0; i < n; i++) {
        memcpy(p->ids + off, refs[i].seq->ids, (size_t)refs[i].len * sizeof(int32_t));
        off += refs[i].len;
        p->cu[i + 1] = (int32_t)off;
        p->gpos[i] = refs[i].seq->gating_pos;
    }
    armo_err be;
    st->batches++;
    if (b->score(b, p->ids, p->cu, n, p->gpos, p->res, &be) == 0) {
        for (int i = 0; i < n; i++) refs[i].seq->result = p->res[i];
        return 0;
    }
    if (n == 1) {
        refs[0].seq->error = strdup(be.msg);
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (score_batch(b, p, &refs[i], 1, st, e)) return -1;
    return 0;
}

static int score_window(window *w, armo_backend *b, const armo_sched_opts *o, pack_buf *p,
                        armo_sched_stats *st, armo_err *e) {
    int total = 0;
    for (int i = 0; i < w->n; i++)
        if (!w->jobs[i].error) total += w->jobs[i].nseq;
    if (total == 0) return 0;
    seq_ref *refs = malloc((size_t)total * sizeof *refs);
    if (!refs) return armo_err_set(e, "out of memory");
    int n = 0;
    for (int i = 0; i < w->n; i++) {
        armo_job *job = &w->jobs[i];
        if (job->error) continue;
        for (int s = 0; s < job->nseq; s++)
            if (!job->seqs[s].error && job->seqs[s].len > 0) {
                refs[n].seq = &job->seqs[s];
                refs[n].len = job->seqs[s].len;
                n++;
            }
    }
    qsort(refs, (size_t)n, sizeof *refs, by_len);
    int rc = 0;
    for (int i = 0; i < n && rc == 0;) {
        int j = i;
        int64_t tokens = 0;
        /* a sequence longer than the budget goes alone */
        while (j < n && (j == i || (tokens + refs[j].len <= o->max_batch_tokens &&
                                    j - i < o->max_batch_seqs))) {
            tokens += refs[j].len;
            j++;
        }
        rc = score_batch(b, p, refs + i, j - i, st, e);
        st->sequences += j - i;
        st->tokens += tokens;
        i = j;
    }
    free(refs);
    return rc;
}

static int write_window(window *w, const armo_job_ops *ops, FILE *out, armo_sched_stats *st,
                        armo_err *e) {
    for (int i = 0; i < w->n; i++) {
        armo_job *job = &w->jobs[i];
        int failed = job->error != NULL;
        for (int s = 0; s < job->nseq; s++) failed |= job->seqs[s].error != NULL;
        st->records++;
        st->errors += failed;
        if (ops->write(ops->ctx, job, out))
            return armo_err_set(e, "writing the result of input line %lld failed",
                                (long long)job->line_no);
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
    pack_buf pack = {0};
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
    int64_t line_no = 0, bytes = 0;
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
        rc = score_window(&win[cur], backend, o, &pack, stats, e);
        stats->seconds_backend += armo_now() - tb;
        if (!rc) rc = write_window(&win[cur], ops, out, stats, e);
        armo_progress_update(&prog, stats->records, stats->tokens, stats->errors, bytes);
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
    free(pack.ids);
    free(pack.cu);
    free(pack.gpos);
    free(pack.res);
    stats->seconds = armo_now() - t0;
    armo_progress_finish(&prog);
    return rc;
}
