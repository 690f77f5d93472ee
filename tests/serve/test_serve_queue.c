/* test_serve_queue.c — the batching queue of `armo serve` (host/serve/
 * serve_queue.h) against a counting mock backend whose "score" of a sequence
 * is the sum of its token ids (prefix included), so that every result can be
 * checked exactly:
 *   - requests submitted from several threads at once each get every job's
 *     result and exactly one done call; the engine takes at most the token
 *     budget per cycle and no backend call exceeds it;
 *   - share_across: single-sequence jobs of one request with the same
 *     prompt (gating position and tokens up to it) reach the backend as one
 *     prefix-shared group, still with every result right; without it, not;
 *   - a queue without room refuses a request whole (submit returns 1);
 *   - a request past its deadline is failed with 504, nothing scored;
 *   - stop scores what is queued before the engine exits; a deadline fails
 *     its request at once even while a batch waits to fill; a flush (the
 *     drain) sends a waiting batch at once.
 * Deterministic: where the engine must not take a batch yet, max_wait_ms is
 * far longer than the test and the budget far above what is queued. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/progress.h"
#include "host/serve/serve_queue.h"
#include "tests/util/test_util.h"

typedef struct {
    atomic_int calls, shared_calls;
    atomic_long max_tokens;      /* most tokens of one call */
} mock_stats;

static mock_stats g_mock;

static int mock_score(armo_backend *b, const int32_t *ids, const int32_t *cu, int nseq,
                      const int32_t *gpos, const int32_t *prefix_of, armo_result *out,
                      armo_err *e) {
    (void)b, (void)gpos, (void)e;
    atomic_fetch_add(&g_mock.calls, 1);
    if (prefix_of) atomic_fetch_add(&g_mock.shared_calls, 1);
    long tokens = cu[nseq];
    if (tokens > atomic_load(&g_mock.max_tokens)) atomic_store(&g_mock.max_tokens, tokens);
    for (int s = 0; s < nseq; s++) {
        memset(&out[s], 0, sizeof out[s]);
        int is_prefix = 0;
        for (int t = 0; prefix_of && t < nseq; t++) is_prefix |= prefix_of[t] == s;
        if (is_prefix) continue; /* continued by others: no head */
        double sum = 0;
        int n = cu[s + 1] - cu[s];
        for (int k = cu[s]; k < cu[s + 1]; k++) sum += ids[k];
        if (prefix_of && prefix_of[s] >= 0) {
            int p = prefix_of[s];
            for (int k = cu[p]; k < cu[p + 1]; k++) sum += ids[k];
            n += cu[p + 1] - cu[p];
        }
        out[s].n_tokens = n;
        out[s].last_pos = n - 1;
        out[s].score = (float)sum;
    }
    return 0;
}

static void mock_destroy(armo_backend *b) { (void)b; }

static armo_backend g_backend = {.name = "mock", .score = mock_score, .destroy = mock_destroy};

/* ---- requests --------------------------------------------------------------- */

typedef struct {
    armo_serve_req req;
    atomic_int done_calls;
    double *want;                /* per job: the sum of its sequence's ids */
} test_req;

static void on_done(armo_serve_req *r) {
    test_req *t = r->user;
    atomic_fetch_add(&t->done_calls, 1);
}

/* A request of n single-sequence jobs; job j has len[j] tokens: a shared
 * prompt of plen tokens (ids 1..plen, gating position plen-1) when plen > 0,
 * then ids base+j*1000+k. */
static void make_req(test_req *t, int n, const int *len, int plen, int base, int share) {
    memset(t, 0, sizeof *t);
    t->req.jobs = calloc((size_t)n, sizeof *t->req.jobs);
    t->want = calloc((size_t)n, sizeof *t->want);
    t->req.njobs = n;
    t->req.share_across = share;
    t->req.t_arrival = armo_now();
    t->req.done = on_done;
    t->req.user = t;
    for (int j = 0; j < n; j++) {
        armo_job *job = &t->req.jobs[j];
        job->nseq = 1;
        job->seqs = calloc(1, sizeof *job->seqs);
        armo_seq *s = &job->seqs[0];
        s->len = len[j];
        s->ids = malloc(sizeof(int32_t) * (size_t)len[j]);
        s->gating_pos = plen > 0 ? plen - 1 : -1;
        for (int k = 0; k < len[j]; k++) {
            s->ids[k] = k < plen ? k + 1 : base + j * 1000 + k;
            t->want[j] += s->ids[k];
        }
    }
}

static void free_req(test_req *t) {
    for (int j = 0; j < t->req.njobs; j++) armo_job_clear(&t->req.jobs[j]);
    free(t->req.jobs);
    free(t->want);
}

static int results_right(const test_req *t) {
    for (int j = 0; j < t->req.njobs; j++)
        if ((double)t->req.jobs[j].seqs[0].result.score != t->want[j] ||
            t->req.jobs[j].seqs[0].result.n_tokens != t->req.jobs[j].seqs[0].len)
            return 0;
    return 1;
}

/* Waits for the request's done call: 1, or 0 after 20 s (far beyond any
 * deadline here, far below the 60 s a batch would wait to fill). */
static int wait_done(test_req *t) {
    double until = armo_now() + 20.0;
    while (atomic_load(&t->done_calls) == 0) {
        if (armo_now() > until) return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

typedef struct {
    armo_serve_queue *q;
    test_req *t;
    int rc;
} submit_arg;

static void *submitter(void *arg) {
    submit_arg *a = arg;
    a->rc = armo_serve_queue_submit(a->q, &a->t->req);
    return NULL;
}

static void test_concurrent(void) {
    memset(&g_mock, 0, sizeof g_mock);
    armo_serve_queue q;
    armo_err e;
    armo_serve_queue_opts o = {.max_batch_tokens = 64, .max_batch_seqs = 64, .max_wait_ms = 1,
                               .max_queue = 256, .share_prefix = 1, .min_shared_prefix = 8};
    CHECK(armo_serve_queue_start(&q, &g_backend, &o, &e) == 0, "start: %s", e.msg);
    enum { R = 6 };
    test_req t[R];
    submit_arg a[R];
    pthread_t th[R];
    for (int r = 0; r < R; r++) {
        int len[10];
        for (int j = 0; j < 10; j++) len[j] = 3 + (r * 7 + j * 5) % 29; /* 3..31 tokens */
        make_req(&t[r], 10, len, 0, 100 * (r + 1), 0);
        a[r] = (submit_arg){.q = &q, .t = &t[r]};
        pthread_create(&th[r], NULL, submitter, &a[r]);
    }
    for (int r = 0; r < R; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < R; r++) {
        CHECK(a[r].rc == 0, "request %d queued", r);
        wait_done(&t[r]);
    }
    /* the engine takes at most the budget per cycle (batch_tokens_bounds[2]
     * is 64): a request is answered when its own batches are done */
    armo_serve_queue_stats st;
    armo_serve_queue_stats_get(&q, &st);
    CHECK(st.batch_tokens_bounds[2] == 64 &&
          st.batch_tokens_le[2] == st.batch_tokens_le[ARMO_SERVE_BATCH_BUCKETS - 1],
          "every engine cycle within the budget (%lld of %lld)", (long long)st.batch_tokens_le[2],
          (long long)st.batch_tokens_le[ARMO_SERVE_BATCH_BUCKETS - 1]);
    CHECK(st.records == 60 && st.sequences == 60, "60 jobs counted (%lld)", (long long)st.records);
    armo_serve_queue_stop(&q);
    for (int r = 0; r < R; r++) {
        CHECK(atomic_load(&t[r].done_calls) == 1, "request %d: done once (%d)", r,
              atomic_load(&t[r].done_calls));
        CHECK(t[r].req.status == 0, "request %d: status %d", r, t[r].req.status);
        CHECK(results_right(&t[r]), "request %d: every job's result", r);
        free_req(&t[r]);
    }
    CHECK(atomic_load(&g_mock.max_tokens) <= 64, "no batch over the budget (%ld tokens)",
          atomic_load(&g_mock.max_tokens));
    CHECK(atomic_load(&g_mock.calls) >= 6 * 10 * 3 / 64, "batches: %d", atomic_load(&g_mock.calls));
    CHECK(atomic_load(&g_mock.shared_calls) == 0, "nothing shared without share_across");
}

/* Same-prompt jobs of one request: shared with share_across, not without. */
static void test_share(int share) {
    memset(&g_mock, 0, sizeof g_mock);
    armo_serve_queue q;
    armo_err e;
    armo_serve_queue_opts o = {.max_batch_tokens = 4096, .max_batch_seqs = 64, .max_wait_ms = 1,
                               .max_queue = 64, .share_prefix = 1, .min_shared_prefix = 8};
    CHECK(armo_serve_queue_start(&q, &g_backend, &o, &e) == 0, "start: %s", e.msg);
    test_req t;
    int len[4] = {30, 25, 40, 21};
    make_req(&t, 4, len, 20, 5000, share); /* a 20-token prompt, gating at 19 */
    CHECK(armo_serve_queue_submit(&q, &t.req) == 0, "queued");
    wait_done(&t);
    armo_serve_queue_stop(&q);
    CHECK(results_right(&t), "shared=%d: every result", share);
    CHECK((atomic_load(&g_mock.shared_calls) > 0) == share, "share_across=%d: backend saw a "
          "shared prefix %d times", share, atomic_load(&g_mock.shared_calls));
    free_req(&t);
}

/* A queue with no room, a deadline passed, and stop scoring what waits:
 * the engine is kept from taking a batch by a long wait and a large budget. */
static void test_full_deadline_stop(void) {
    memset(&g_mock, 0, sizeof g_mock);
    armo_serve_queue q;
    armo_err e;
    armo_serve_queue_opts o = {.max_batch_tokens = 1 << 20, .max_batch_seqs = 64,
                               .max_wait_ms = 60000, .max_queue = 4, .share_prefix = 1};
    CHECK(armo_serve_queue_start(&q, &g_backend, &o, &e) == 0, "start: %s", e.msg);
    int len[3] = {5, 6, 7};
    test_req a, b, late;
    make_req(&a, 3, len, 0, 10, 0);
    make_req(&b, 2, len, 0, 20, 0);
    make_req(&late, 1, len, 0, 30, 0);
    CHECK(armo_serve_queue_submit(&q, &a.req) == 0, "3 of 4 places taken");
    CHECK(armo_serve_queue_submit(&q, &b.req) == 1, "no room for 2 more: refused");
    CHECK(atomic_load(&b.done_calls) == 0, "a refused request is not done");
    late.req.deadline = armo_now() - 1.0; /* already past */
    CHECK(armo_serve_queue_submit(&q, &late.req) == 0, "the 4th place taken");
    armo_serve_queue_stats st;
    armo_serve_queue_stats_get(&q, &st);
    CHECK(st.queued_jobs == 4 && st.queued_tokens == 5 + 6 + 7 + 5, "queue depth %lld / %lld",
          (long long)st.queued_jobs, (long long)st.queued_tokens);
    CHECK(atomic_load(&g_mock.calls) == 0, "nothing scored while the batch fills");
    armo_serve_queue_stop(&q); /* scores what waits, then the engine exits */
    CHECK(atomic_load(&a.done_calls) == 1 && a.req.status == 0 && results_right(&a),
          "stop: the queued request is scored and done");
    CHECK(atomic_load(&late.done_calls) == 1 && late.req.status == 504,
          "past its deadline: 504 (%d)", late.req.status);
    CHECK(late.req.jobs[0].seqs[0].result.n_tokens == 0, "a late request is not scored");
    free_req(&a);
    free_req(&b);
    free_req(&late);
}

/* A batch that would wait a minute to fill: a deadline fails its request at
 * the deadline, and a flush (the drain) sends the batch at once. */
static void test_deadline_and_flush(void) {
    memset(&g_mock, 0, sizeof g_mock);
    armo_serve_queue q;
    armo_err e;
    armo_serve_queue_opts o = {.max_batch_tokens = 1 << 20, .max_batch_seqs = 64,
                               .max_wait_ms = 60000, .max_queue = 16, .share_prefix = 1};
    CHECK(armo_serve_queue_start(&q, &g_backend, &o, &e) == 0, "start: %s", e.msg);
    int len[2] = {4, 9};
    test_req late, waiting;
    make_req(&late, 1, len, 0, 40, 0);
    late.req.deadline = armo_now() + 0.05;
    CHECK(armo_serve_queue_submit(&q, &late.req) == 0, "queued");
    CHECK(wait_done(&late), "done at the deadline, before the batch's wait");
    CHECK(late.req.status == 504 && atomic_load(&g_mock.calls) == 0,
          "failed at its deadline, not scored (%d)", late.req.status);
    make_req(&waiting, 2, len, 0, 50, 0);
    CHECK(armo_serve_queue_submit(&q, &waiting.req) == 0, "queued");
    armo_serve_queue_flush(&q);
    CHECK(wait_done(&waiting), "the flush sent the waiting batch");
    CHECK(waiting.req.status == 0 && results_right(&waiting), "flushed and scored");
    armo_serve_queue_stop(&q);
    free_req(&late);
    free_req(&waiting);
}

int main(void) {
    test_concurrent();
    test_share(1);
    test_share(0);
    test_full_deadline_stop();
    test_deadline_and_flush();
    return test_finish("test_serve_queue");
}
