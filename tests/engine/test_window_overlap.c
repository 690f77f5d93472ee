/* test_window_overlap.c — the data-parallel workers do not wait at a
 * window's end (scheduler.c, worker_pool.c; issue 13: "a slow or
 * long-sequence batch does not stall the others").
 *
 * Two workers on mock backends that sleep for as many milliseconds as the
 * batch's first token id says and record when each batch starts and ends.
 * Windows of 4 records, one record per batch (4-token records, a 4-token
 * budget): window 1 holds one slow batch (SLOW_MS) and three fast ones
 * (FAST_MS), windows 2 and 3 fast ones only.  While one worker runs the
 * slow batch the other finishes window 1's fast ones; it must then go on
 * to window 2's batches instead of idling until the slow one is back —
 * checked by the start times: window 2's first batch starts before the
 * slow batch ends, and all of window 2 runs meanwhile (window 3 waits for
 * window 1 to be written: two windows in flight at most).  The output (one line per record, the mock's score = the
 * record's number) must still come strictly in input order, every record
 * exactly once.  The same run with one worker is the reference for the
 * lines; a stop mid-run and a worker lost mid-run are covered by
 * test_data_parallel on the real CPU backend. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/progress.h"
#include "host/engine/scheduler.h"
#include "tests/util/test_util.h"

#define SLOW_MS 1200
#define FAST_MS 20
#define NREC 12

typedef struct {
    double start, end;
    int worker, record;
} event;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static event g_ev[64];
static int g_nev;
static double g_t0;

typedef struct {
    armo_backend b;
    int idx;
} mock;

/* ids = {ms, record, 0, 0}: sleeps ms, scores "record". */
static int mock_score(armo_backend *b, const int32_t *ids, const int32_t *cu, int nseq,
                      const int32_t *gpos, const int32_t *prefix_of, armo_result *out,
                      armo_err *e) {
    (void)gpos, (void)prefix_of, (void)e;
    const double t = armo_now() - g_t0;
    const int ms = ids[0];
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&g_mu);
    for (int s = 0; s < nseq && g_nev < 64; s++)
        g_ev[g_nev++] = (event){t, armo_now() - g_t0, ((mock *)b->impl)->idx, ids[cu[s] + 1]};
    pthread_mutex_unlock(&g_mu);
    for (int s = 0; s < nseq; s++) {
        memset(&out[s], 0, sizeof out[s]);
        out[s].n_tokens = cu[s + 1] - cu[s];
        out[s].last_pos = out[s].n_tokens - 1;
        out[s].gating_pos = -1;
        out[s].score = (float)ids[cu[s] + 1];
    }
    return 0;
}

static void mock_destroy(armo_backend *b) { (void)b; }

/* Line "MS RECORD": one 4-token sequence {MS, RECORD, 0, 0}. */
static int prepare(void *ctx, armo_job *job) {
    (void)ctx;
    int ms = 0, rec = 0;
    if (sscanf(job->line, "%d %d", &ms, &rec) != 2) {
        job->error = strdup("bad test line");
        return 0;
    }
    job->seqs = calloc(1, sizeof *job->seqs);
    if (!job->seqs) return -1;
    job->nseq = 1;
    job->seqs[0].ids = calloc(4, sizeof(int32_t));
    if (!job->seqs[0].ids) return -1;
    job->seqs[0].ids[0] = ms;
    job->seqs[0].ids[1] = rec;
    job->seqs[0].len = 4;
    job->seqs[0].gating_pos = -1;
    return 0;
}

static int write_line(void *ctx, armo_job *job, FILE *out) {
    (void)ctx;
    if (job->error || job->nseq != 1 || job->seqs[0].error) return fprintf(out, "error\n") < 0;
    return fprintf(out, "%lld %.0f\n", (long long)job->line_no, job->seqs[0].result.score) < 0;
}

/* Runs the input through nworkers mocks; the output in *out (malloc'd). */
static int run(const char *in_path, int nworkers, char **out, double *secs) {
    mock m[2];
    armo_backend *bs[2];
    for (int i = 0; i < nworkers; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].idx = i;
        m[i].b.name = "mock";
        snprintf(m[i].b.device, sizeof m[i].b.device, "mock %d", i);
        m[i].b.score = mock_score;
        m[i].b.destroy = mock_destroy;
        m[i].b.impl = &m[i];
        bs[i] = &m[i].b;
    }
    FILE *in = fopen(in_path, "r"), *o = tmpfile();
    if (!in || !o) return -1;
    armo_line_reader lr;
    armo_line_reader_init(&lr, fileno(in));
    armo_job_ops ops = {.prepare = prepare, .write = write_line};
    armo_sched_opts so = {.max_batch_tokens = 4, .max_batch_seqs = 8, .window = 4,
                          .threads = 1, .quiet = 1};
    armo_sched_stats st;
    armo_err e;
    g_nev = 0;
    g_t0 = armo_now();
    int rc = armo_schedule_workers(&lr, -1, fileno(o), bs, nworkers, &ops, &so, &st, &e);
    *secs = armo_now() - g_t0;
    CHECK(rc == 0, "armo_schedule_workers (%d workers): %s", nworkers, e.msg);
    armo_line_reader_free(&lr);
    fclose(in);
    long n = ftell(o);
    *out = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    rewind(o);
    if (*out && n > 0 && fread(*out, 1, (size_t)n, o) != (size_t)n) n = 0;
    fclose(o);
    return rc;
}

int main(void) {
    char in_path[] = "/tmp/armo_overlap_XXXXXX";
    int fd = mkstemp(in_path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return test_finish("test_window_overlap");
    FILE *f = fdopen(fd, "w");
    /* window 1: the slow batch first, then three fast ones; windows 2, 3 fast */
    for (int i = 0; i < NREC; i++) fprintf(f, "%d %d\n", i == 0 ? SLOW_MS : FAST_MS, 100 + i);
    fclose(f);

    char *ref = NULL, *got = NULL;
    double secs1 = 0, secs2 = 0;
    run(in_path, 1, &ref, &secs1);
    run(in_path, 2, &got, &secs2);

    /* the lines: in input order, each record once, the same as one worker */
    char want[1024] = "";
    for (int i = 0; i < NREC; i++) {
        size_t l = strlen(want);
        snprintf(want + l, sizeof want - l, "%d %d\n", i + 1, 100 + i);
    }
    CHECK(ref && !strcmp(ref, want), "1 worker wrote:\n%s\nexpected:\n%s", ref ? ref : "", want);
    CHECK(got && !strcmp(got, want), "2 workers wrote:\n%s\nexpected:\n%s", got ? got : "", want);

    /* the timing of the 2-worker run */
    double slow_end = -1, w2_first_start = -1;
    for (int i = 0; i < g_nev; i++) {
        if (g_ev[i].record == 100) slow_end = g_ev[i].end;
        if (g_ev[i].record >= 104 && g_ev[i].record < 108 &&
            (w2_first_start < 0 || g_ev[i].start < w2_first_start))
            w2_first_start = g_ev[i].start;
    }
    CHECK(g_nev == NREC, "%d batches ran, expected %d (one per record)", g_nev, NREC);
    CHECK(slow_end > 0 && w2_first_start >= 0 && w2_first_start < slow_end,
          "window 2's first batch started at %.3f s, after the slow batch of window 1 ended "
          "(%.3f s): the other worker waited at the window's end", w2_first_start, slow_end);
    /* while the slow batch ran, the other worker ran window 1's 3 fast
     * batches and all 4 of window 2 (two windows in flight at most, so that
     * memory stays bounded: window 3 waits for window 1 to be written) */
    int during = 0;
    for (int i = 0; i < g_nev; i++)
        if (g_ev[i].record != 100 && g_ev[i].end <= slow_end) during++;
    CHECK(during == 7, "%d fast batches ended while the slow one ran, expected 3 + 4", during);
    printf("1 worker: %.3f s; 2 workers: %.3f s (slow batch ends at %.3f s, window 2 starts at "
           "%.3f s, %d fast batches during the slow one)\n",
           secs1, secs2, slow_end, w2_first_start, during);
    free(ref);
    free(got);
    unlink(in_path);
    return test_finish("test_window_overlap");
}
