/* test_engine_faults.c — the CUDA backend's error paths, which only a failing
 * device reaches, driven through the emulator's fault injection
 * (runtime.cpp: ARMO_EMU_FAULT, ARMO_EMU_FAIL_ALLOC).  Each scenario runs in
 * a child process (the emulator reads its variables once) on the bundled
 * tiny ArmoRM:
 *   - a kernel that fails while running (an illegal address in the 2nd RoPE
 *     launch: layer 1 of the first batch): the batch fails saying so, and
 *     pointing at ARMO_CUDA_SYNC=1; the next batch is refused at once, naming
 *     the earlier failure (the context is poisoned), and the backend is
 *     marked lost (backend.h) so that data parallel moves its batches;
 *   - the same with ARMO_CUDA_SYNC=1: the message names armo_rope_strided_bf16 and
 *     layer 1; and a failure in the 2nd flash attention launch names
 *     armo_attention_ex_bf16 and layer 1;
 *   - without a fault, ARMO_CUDA_SYNC=1 changes no result (the sync is a
 *     check, not a behaviour change): scores equal the plain run's bit for bit;
 *   - every cudaMalloc the backend makes failing in turn (the 1st, 2nd, ...):
 *     the backend's creation fails with a message naming the allocation and
 *     its size, and nothing leaks (the emulator reports leaked device memory
 *     at exit; the child's stderr must not have that report);
 *   - every cudaMalloc of a run through the scheduler failing in turn (a
 *     first small call, then a larger one whose batch grows the activation
 *     buffers): an activation allocation that fails mid-run lowers the
 *     batch budget (backend max_batch_tokens_now: the buffers held before,
 *     or half the batch), the scheduler re-packs under it with a one-line
 *     note, and every sequence is still scored, with the scores of a run
 *     without the failure (within bf16 bounds: packed differently); nothing
 *     leaks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/cuda/cuda_backend.h"
#include "host/engine/backend_open.h"
#include "host/engine/scheduler.h"
#include "tests/util/test_util.h"
#include "weights/model.h"

#define NSEQ 3

/* the budget scenario: BUDGET1 sequences of 10 tokens, then BUDGET2 of 50 */
#define BUDGET1 3
#define BUDGET2 6

/* what a child reports back through its pipe */
typedef struct {
    int open_ok, score1_ok, score2_ok;
    int lost1;                   /* backend.h's lost set after batch 1 */
    char open_msg[1100], msg1[1100], msg2[1100], lost_msg[300];
    float scores[NSEQ];
    /* the budget scenario (ARMO_TEST_CHILD=budget) */
    int sched_ok, nerr;
    long long limit, batches;
    float bscores[BUDGET1 + BUDGET2];
    char bmsg[1100];
} outcome;

static void batch(int32_t *ids, int32_t *cu, int32_t *gpos) {
    const int lens[NSEQ] = {9, 17, 5};
    cu[0] = 0;
    for (int s = 0; s < NSEQ; s++) {
        for (int i = 0; i < lens[s]; i++) ids[cu[s] + i] = 100 + 37 * s + 11 * i;
        cu[s + 1] = cu[s] + lens[s];
        gpos[s] = cu[s + 1] - cu[s] - 2;
    }
}

/* In the child (ARMO_TEST_CHILD=budget): two calls of the scheduler's
 * packing step on backend b, a small one and one that grows the buffers. */
static void child_budget(armo_backend *b, outcome *o) {
    static int32_t ids[BUDGET1 + BUDGET2][50];
    armo_seq seqs[BUDGET1 + BUDGET2];
    armo_seq *ptrs[BUDGET1 + BUDGET2];
    armo_seq_group groups[BUDGET1 + BUDGET2];
    memset(seqs, 0, sizeof seqs);
    for (int s = 0; s < BUDGET1 + BUDGET2; s++) {
        int len = s < BUDGET1 ? 10 : 50;
        for (int i = 0; i < len; i++) ids[s][i] = 100 + 37 * s + 11 * i;
        seqs[s] = (armo_seq){.ids = ids[s], .len = len, .gating_pos = len - 2};
        ptrs[s] = &seqs[s];
        groups[s] = (armo_seq_group){.seqs = &ptrs[s], .n = 1};
    }
    armo_sched_opts so = {.max_batch_tokens = 1024, .max_batch_seqs = 64, .share_prefix = 0};
    armo_sched_stats st;
    memset(&st, 0, sizeof st);
    armo_err e;
    o->sched_ok = armo_score_groups(b, groups, BUDGET1, &so, &st, &e) == 0 &&
                  armo_score_groups(b, groups + BUDGET1, BUDGET2, &so, &st, &e) == 0;
    if (!o->sched_ok) snprintf(o->bmsg, sizeof o->bmsg, "%s", e.msg);
    for (int s = 0; s < BUDGET1 + BUDGET2; s++) {
        if (seqs[s].error) {
            if (!o->nerr++) snprintf(o->bmsg, sizeof o->bmsg, "%s", seqs[s].error);
            free(seqs[s].error);
        }
        o->bscores[s] = seqs[s].result.score;
    }
    o->limit = b->max_batch_tokens_now;
    o->batches = st.batches;
}

/* In the child: open the CUDA backend on tiny-armorm, score the batch twice
 * (or run the budget scenario). */
static void child_run(outcome *o) {
    memset(o, 0, sizeof *o);
    const int budget = getenv("ARMO_TEST_CHILD") && !strcmp(getenv("ARMO_TEST_CHILD"), "budget");
    armo_backend_register_cuda(&armo_cuda_accel);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tiny-armorm", ARMO_MODELS_DIR);
    armo_model m;
    armo_err e;
    if (armo_model_open(dir, &m, &e)) {
        snprintf(o->open_msg, sizeof o->open_msg, "model: %s", e.msg);
        return;
    }
    armo_backend_opts opts = {.threads = 1, .max_batch_tokens = budget ? 1024 : 256,
                              .max_seqs = budget ? 64 : 16, .quiet = 1};
    armo_backend *b = armo_backend_open(&m, "cuda", &opts, &e);
    o->open_ok = b != NULL;
    if (!b) {
        snprintf(o->open_msg, sizeof o->open_msg, "%s", e.msg);
        armo_model_close(&m);
        return;
    }
    if (budget) {
        child_budget(b, o);
        armo_backend_close(b);
        armo_model_close(&m);
        return;
    }
    int32_t ids[64], cu[NSEQ + 1], gpos[NSEQ];
    batch(ids, cu, gpos);
    armo_result r[NSEQ];
    o->score1_ok = b->score(b, ids, cu, NSEQ, gpos, NULL, r, &e) == 0;
    snprintf(o->msg1, sizeof o->msg1, "%s", o->score1_ok ? "" : e.msg);
    o->lost1 = b->lost != NULL; /* the scheduler moves a lost worker's batches elsewhere */
    snprintf(o->lost_msg, sizeof o->lost_msg, "%s", b->lost ? b->lost : "");
    if (o->score1_ok)
        for (int s = 0; s < NSEQ; s++) o->scores[s] = r[s].score;
    o->score2_ok = b->score(b, ids, cu, NSEQ, gpos, NULL, r, &e) == 0;
    snprintf(o->msg2, sizeof o->msg2, "%s", o->score2_ok ? "" : e.msg);
    armo_backend_close(b);
    armo_model_close(&m);
}

/* Runs child_run in a child with the given environment ("NAME=VALUE" pairs,
 * NULL-terminated); its outcome and stderr come back. */
static int run_child(const char *const *env, outcome *o, char *err, size_t errcap) {
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) || pipe(err_pipe)) return -1;
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        dup2(err_pipe[1], 2);
        for (int i = 0; env[i]; i++) putenv((char *)env[i]);
        outcome mine;
        child_run(&mine);
        if (write(out_pipe[1], &mine, sizeof mine) != (ssize_t)sizeof mine) _exit(3);
        close(out_pipe[1]);
        exit(0); /* exit, not _exit: the emulator's leak report runs at exit */
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    size_t got = 0;
    ssize_t r;
    while (got < sizeof *o && (r = read(out_pipe[0], (char *)o + got, sizeof *o - got)) > 0)
        got += (size_t)r;
    size_t egot = 0;
    while (egot + 1 < errcap && (r = read(err_pipe[0], err + egot, errcap - 1 - egot)) > 0)
        egot += (size_t)r;
    err[egot] = 0;
    close(out_pipe[0]);
    close(err_pipe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == sizeof *o && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Every cudaMalloc from first_run_alloc on (the first after the backend's
 * creation) failing in turn in the budget scenario: every sequence scored
 * as without a failure, the budget lowered where an activation buffer
 * failed (to 256 tokens, the buffers held, where the growth failed), a
 * note on stderr, no leak. */
static void test_budget(int first_run_alloc) {
    static char err[1 << 16];
    outcome plain, o;
    const char *none[] = {"ARMO_TEST_CHILD=budget", NULL};
    CHECK(run_child(none, &plain, err, sizeof err) == 0, "budget, plain: child failed: %s", err);
    CHECK(plain.sched_ok && plain.nerr == 0 && plain.limit == 0,
          "budget, plain run: ok %d, %d errors, limit %lld: %s", plain.sched_ok, plain.nerr,
          plain.limit, plain.bmsg);
    int lowered = 0, held = 0, k = first_run_alloc;
    for (; k < first_run_alloc + 200; k++) {
        char var[64];
        snprintf(var, sizeof var, "ARMO_EMU_FAIL_ALLOC=%d", k);
        const char *env[] = {"ARMO_TEST_CHILD=budget", var, NULL};
        if (run_child(env, &o, err, sizeof err)) {
            CHECK(0, "budget, allocation %d failing: child failed: %s", k, err);
            break;
        }
        CHECK(o.open_ok, "budget, allocation %d failing: the backend did not open: %s", k,
              o.open_msg);
        if (!o.open_ok) break;
        if (o.limit == 0) break; /* k is past the run's allocations */
        lowered++;
        held += o.limit == 256;
        char note[128];
        snprintf(note, sizeof note, "batches of up to %lld tokens from now on", o.limit);
        CHECK(o.sched_ok && o.nerr == 0, "allocation %d failing: the run stopped or records "
              "failed (%d): %s", k, o.nerr, o.bmsg);
        /* packed differently (alone, or fewer per batch), a bf16 score moves
         * within bf16 bounds, not more */
        for (int q = 0; q < BUDGET1 + BUDGET2; q++)
            CHECK(fabsf(o.bscores[q] - plain.bscores[q]) <= 2e-2f * (1.0f + fabsf(plain.bscores[q])),
                  "allocation %d failing: sequence %d scores %g, %g without the failure", k, q,
                  o.bscores[q], plain.bscores[q]);
        CHECK(test_contains(err, note) && test_contains(err, "cudaMalloc"),
              "allocation %d failing: no note \"%s\" naming the failure:\n%s", k, note, err);
        CHECK(!test_contains(err, "never freed"), "allocation %d failing leaks: %s", k, err);
        /* re-packed, not one by one: the small call, the failed batch of
         * 300 tokens, then 250 + 50 under 256 */
        CHECK(o.limit != 256 || o.batches == 4, "allocation %d failing: %lld batches, expected "
              "4 (the failed one re-packed under 256 tokens)", k, o.batches);
        if (lowered == 1 || o.limit == 256)
            printf("budget: cudaMalloc %d fails: limit %lld, %lld batches: %.*s\n", k, o.limit,
                   o.batches, (int)strcspn(strstr(err, "armo:") ? strstr(err, "armo:") : err,
                                           "\n"),
                   strstr(err, "armo:") ? strstr(err, "armo:") : err);
    }
    CHECK(lowered >= 4 && held >= 1, "budget: %d runs had their budget lowered, %d to the "
          "buffers held (256 tokens)", lowered, held);
    printf("budget: %d allocations of a run failing in turn, each run went on (%d lowered to the "
           "buffers held)\n", lowered, held);
}

int main(void) {
    static char err[1 << 16];
    outcome plain, o;

    const char *none[] = {NULL};
    CHECK(run_child(none, &plain, err, sizeof err) == 0, "plain run: child failed: %s", err);
    CHECK(plain.open_ok && plain.score1_ok && plain.score2_ok, "plain run: %s%s%s", plain.open_msg,
          plain.msg1, plain.msg2);
    CHECK(!plain.lost1, "plain run: the backend says it is lost: %s", plain.lost_msg);
    printf("plain run: scores %.6f %.6f %.6f\n", plain.scores[0], plain.scores[1], plain.scores[2]);

    const char *sync[] = {"ARMO_CUDA_SYNC=1", NULL};
    CHECK(run_child(sync, &o, err, sizeof err) == 0, "sync run: child failed: %s", err);
    CHECK(o.score1_ok && memcmp(o.scores, plain.scores, sizeof o.scores) == 0,
          "ARMO_CUDA_SYNC=1 changed the scores: %.6f %.6f %.6f (%s)", o.scores[0], o.scores[1],
          o.scores[2], o.msg1);

    const char *fault[] = {"ARMO_EMU_FAULT=rope_kernel:2", NULL};
    CHECK(run_child(fault, &o, err, sizeof err) == 0, "fault run: child failed: %s", err);
    printf("fault, no sync:   batch 1: %s\n                  batch 2: %s\n", o.msg1, o.msg2);
    CHECK(!o.score1_ok && test_contains(o.msg1, "failed while running") &&
              test_contains(o.msg1, "an illegal memory access") &&
              test_contains(o.msg1, "ARMO_CUDA_SYNC=1"),
          "fault without sync: %s", o.msg1);
    CHECK(!o.score2_ok && test_contains(o.msg2, "failed on an earlier batch") &&
              test_contains(o.msg2, "illegal memory access"),
          "the batch after a fault: %s", o.msg2);
    /* a sticky failure marks the backend lost (backend.h), naming it */
    CHECK(o.lost1 && test_contains(o.lost_msg, "illegal memory access"),
          "a faulted backend must be lost: %d '%s'", o.lost1, o.lost_msg);

    const char *fault_sync[] = {"ARMO_EMU_FAULT=rope_kernel:2", "ARMO_CUDA_SYNC=1", NULL};
    CHECK(run_child(fault_sync, &o, err, sizeof err) == 0, "fault+sync run: child failed: %s", err);
    printf("fault, sync:      batch 1: %s\n", o.msg1);
    CHECK(!o.score1_ok && test_contains(o.msg1, "armo_rope_strided_bf16 failed while running (layer 1"),
          "fault with ARMO_CUDA_SYNC=1 must name the kernel and layer: %s", o.msg1);

    const char *fault_attn[] = {"ARMO_EMU_FAULT=flash_attn_kernel:2", "ARMO_CUDA_SYNC=1", NULL};
    CHECK(run_child(fault_attn, &o, err, sizeof err) == 0, "attention fault: child failed: %s", err);
    printf("attention fault:  batch 1: %s\n", o.msg1);
    CHECK(!o.score1_ok && test_contains(o.msg1, "armo_attention_ex_bf16 failed while running (layer 1"),
          "attention fault with ARMO_CUDA_SYNC=1: %s", o.msg1);

    /* every device allocation of the backend's creation failing in turn */
    int k = 1, last_failed = 0;
    for (; k < 200; k++) {
        char var[64];
        snprintf(var, sizeof var, "ARMO_EMU_FAIL_ALLOC=%d", k);
        const char *env[] = {var, NULL};
        if (run_child(env, &o, err, sizeof err)) {
            CHECK(0, "allocation %d failing: child failed: %s", k, err);
            break;
        }
        if (o.open_ok) break; /* k is past the backend's allocations */
        last_failed = k;
        CHECK(test_contains(o.open_msg, "cudaMalloc") && test_contains(o.open_msg, "out of memory"),
              "allocation %d failing: %s", k, o.open_msg);
        CHECK(!test_contains(err, "never freed"), "allocation %d failing leaks: %s", k, err);
        if (k == 1 || k % 16 == 0) printf("cudaMalloc %d fails: %s\n", k, o.open_msg);
    }
    CHECK(last_failed >= 10, "only %d allocations were made failing", last_failed);
    printf("backend creation refused cleanly with each of its %d cudaMallocs failing\n",
           last_failed);
    test_budget(last_failed + 1);
    return test_finish("emu_engine_faults");
}
