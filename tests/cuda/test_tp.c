/* test_tp.c — tensor parallel on CUDA (tp_group.c, the TP ranks of
 * cuda_backend.c, nccl_comm.c) against two independent references: the
 * unsharded CUDA backend and the CPU backend.  Label gpu (needs as many
 * devices as the largest TP it runs; exits 77 without a device); the ctest
 * emu_tp runs this same file on the CPU emulator with 4 emulated devices
 * (ARMO_EMU_DEVICES) and the fake NCCL (tests/emu/cuda/nccl_fake.cpp: ranks
 * are host threads, partials added in rank order).
 *
 * Models: the bundled tiny-armorm (2 KV heads: TP 1, 2) and a random ArmoRM
 * with 4 KV heads (TP 1, 2, 4).  On a ragged batch and a shared-prefix
 * batch, every TP group's results equal the unsharded CUDA backend's and the
 * CPU backend's within the bf16 bounds of test_engine.c (the all-reduce adds
 * bf16 partial sums: the same order of noise), and equal themselves bit for
 * bit on a second run.  Also: 4 devices as 2 data-parallel workers x TP 2
 * through the scheduler (armo_backend_open_workers + the worker pool) equal
 * the CPU backend; a TP that does not divide the KV heads, or a device list
 * that TP does not divide, is refused with a message saying so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda/cuda_backend.h"
#include "host/engine/backend_open.h"
#include "host/engine/scheduler.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/random_armorm.h"
#include "tests/util/test_util.h"
#include "weights/model.h"
#include "weights/random_model.h"

#define VEC_TOL 5e-2
#define SCORE_TOL 5e-2
#define NSEQ 5

typedef struct {
    int32_t ids[1024], cu[NSEQ + 1], gpos[NSEQ], prefix_of[NSEQ];
    int nseq, shared;
} batch;

static void make_batch(batch *b, int vocab, int shared) {
    const int ragged[NSEQ] = {1, 9, 40, 17, 3}, pre[3] = {24, 9, 13};
    b->shared = shared;
    b->nseq = shared ? 3 : NSEQ;
    b->cu[0] = 0;
    uint32_t s = shared ? 99 : 7;
    for (int i = 0; i < b->nseq; i++) {
        const int len = shared ? pre[i] : ragged[i];
        b->cu[i + 1] = b->cu[i] + len;
        b->gpos[i] = shared ? (i == 0 ? -1 : 20) : len / 2;
        b->prefix_of[i] = shared && i > 0 ? 0 : -1;
        for (int t = b->cu[i]; t < b->cu[i + 1]; t++) {
            s = s * 1664525u + 1013904223u;
            b->ids[t] = (int32_t)((s >> 8) % (uint32_t)vocab);
        }
    }
}

static int score(armo_backend *bk, const batch *b, armo_result *out, armo_err *e) {
    memset(out, 0, sizeof(armo_result) * NSEQ);
    return bk->score(bk, b->ids, b->cu, b->nseq, b->gpos, b->shared ? b->prefix_of : NULL, out, e);
}

/* got against ref (ArmoRM outputs) within the bf16 bounds. */
static void compare(const char *what, const armo_result *got, const armo_result *ref, int n) {
    for (int s = 0; s < n; s++) {
        if (ref[s].n_tokens == 0) continue; /* a shared prefix: no head */
        const int K = ref[s].n_objectives;
        double dr = test_rel_l2(got[s].rewards, ref[s].rewards, K),
               dg = test_rel_l2(got[s].gating, ref[s].gating, K),
               dc = test_rel_l2(got[s].coefficients, ref[s].coefficients, K);
        double nr = 0, nc = 0;
        for (int k = 0; k < K; k++)
            nr += (double)ref[s].rewards[k] * ref[s].rewards[k],
                nc += (double)ref[s].coefficients[k] * ref[s].coefficients[k];
        double ds = fabs((double)got[s].score - ref[s].score) / fmax(sqrt(nr * nc), 1e-6);
        printf("  %s seq %d: rewards %.2e gating %.2e coefficients %.2e score %.2e\n", what, s, dr,
               dg, dc, ds);
        CHECK(got[s].n_tokens == ref[s].n_tokens && got[s].nonfinite == ARMO_NF_NONE,
              "%s seq %d: tokens %d vs %d, nonfinite %d", what, s, got[s].n_tokens,
              ref[s].n_tokens, (int)got[s].nonfinite);
        CHECK(dr <= VEC_TOL && dg <= VEC_TOL && dc <= VEC_TOL && ds <= SCORE_TOL,
              "%s seq %d: rewards %.3g gating %.3g coefficients %.3g score %.3g over the bounds",
              what, s, dr, dg, dc, ds);
    }
}

static void check_model(const char *name, const armo_model *m, int max_tp, int devices) {
    armo_err e;
    armo_backend_opts o = {.threads = 2, .max_batch_tokens = 512, .max_seqs = 16, .quiet = 1};
    armo_backend *cpu = armo_backend_open(m, "cpu", &o, &e);
    armo_backend *whole = armo_cuda_backend_create(m, &o, &e);
    CHECK(cpu && whole, "%s: opening the references: %s", name, e.msg);
    if (!cpu || !whole) {
        armo_backend_close(cpu);
        armo_backend_close(whole);
        return;
    }
    for (int shared = 0; shared < 2; shared++) {
        batch b;
        make_batch(&b, m->cfg.vocab_size, shared);
        armo_result rc[NSEQ], rw[NSEQ], r1[NSEQ], r2[NSEQ];
        CHECK(score(cpu, &b, rc, &e) == 0, "%s cpu: %s", name, e.msg);
        CHECK(score(whole, &b, rw, &e) == 0, "%s cuda: %s", name, e.msg);
        for (int tp = 1; tp <= max_tp && tp <= devices; tp *= 2) {
            const int dev[4] = {0, 1, 2, 3};
            char what[96];
            snprintf(what, sizeof what, "%s %s TP %d", name, shared ? "shared" : "ragged", tp);
            armo_backend *g = armo_cuda_tp_group_open(m, &o, dev, tp, &e);
            CHECK(g != NULL, "%s: open: %s", what, e.msg);
            if (!g) continue;
            int ok1 = score(g, &b, r1, &e) == 0;
            CHECK(ok1, "%s: %s", what, e.msg);
            int ok2 = score(g, &b, r2, &e) == 0;
            CHECK(ok2 && !memcmp(r1, r2, sizeof(armo_result) * (size_t)b.nseq),
                  "%s: a second run differs", what);
            if (ok1) {
                char w2[128];
                snprintf(w2, sizeof w2, "%s vs unsharded CUDA", what);
                compare(w2, r1, rw, b.nseq);
                snprintf(w2, sizeof w2, "%s vs CPU", what);
                compare(w2, r1, rc, b.nseq);
            }
            armo_backend_close(g);
        }
    }
    armo_backend_close(whole);
    armo_backend_close(cpu);
}

/* 4 devices as 2 data-parallel workers x TP 2 through the scheduler. */
static void check_dp_tp(const armo_model *m) {
    armo_err e;
    armo_backend_opts o = {.threads = 2, .max_batch_tokens = 48, .max_seqs = 16, .quiet = 1,
                           .tp = 2};
    armo_backend **w = NULL;
    int n = 0;
    int rc = armo_backend_open_workers(m, "cuda", "0,1,2,3", 0, &o, &w, &n, &e);
    CHECK(rc == 0 && n == 2, "DP 2 x TP 2: %s", rc ? e.msg : "wrong worker count");
    armo_backend_opts oc = {.threads = 2, .max_batch_tokens = 512, .max_seqs = 16, .quiet = 1};
    armo_backend *cpu = armo_backend_open(m, "cpu", &oc, &e);
    if (!rc && cpu) {
        enum { N = 12 };
        static int32_t ids[N][40];
        armo_seq seqs[N], ref[N];
        armo_seq *ptrs[N], *rptrs[N];
        armo_seq_group groups[N], rgroups[N];
        uint32_t s = 5;
        for (int i = 0; i < N; i++) {
            const int len = 3 + (i * 7) % 37;
            for (int t = 0; t < len; t++) {
                s = s * 1664525u + 1013904223u;
                ids[i][t] = (int32_t)((s >> 8) % (uint32_t)m->cfg.vocab_size);
            }
            seqs[i] = (armo_seq){.ids = ids[i], .len = len, .gating_pos = len / 2};
            ref[i] = seqs[i];
            ptrs[i] = &seqs[i], rptrs[i] = &ref[i];
            groups[i] = (armo_seq_group){&ptrs[i], 1};
            rgroups[i] = (armo_seq_group){&rptrs[i], 1};
        }
        armo_sched_opts so = {.max_batch_tokens = 48, .max_batch_seqs = 16};
        armo_sched_stats st = {0}, rst = {0};
        CHECK(armo_score_groups_workers(w, n, groups, N, &so, &st, &e) == 0, "DP x TP: %s", e.msg);
        CHECK(armo_score_groups(cpu, rgroups, N, &so, &rst, &e) == 0, "cpu: %s", e.msg);
        CHECK(st.batches > 2, "DP x TP: only %lld batches", (long long)st.batches);
        for (int i = 0; i < N; i++) {
            CHECK(!seqs[i].error, "DP x TP seq %d: %s", i, seqs[i].error);
            compare("DP 2 x TP 2 vs CPU", &seqs[i].result, &ref[i].result, 1);
            free(seqs[i].error);
            free(ref[i].error);
        }
    }
    armo_backend_close(cpu);
    armo_backend_close_workers(w, n);
    /* bad launches: TP that does not divide the KV heads, or the devices */
    o.tp = 4;
    rc = armo_backend_open_workers(m, "cuda", "0,1,2,3", 0, &o, &w, &n, &e);
    CHECK(rc != 0 && test_contains(e.msg, "does not divide the model's 2 KV heads"),
          "TP 4 on 2 KV heads: rc %d, %s", rc, e.msg);
    o.tp = 2;
    rc = armo_backend_open_workers(m, "cuda", "0,1,2", 0, &o, &w, &n, &e);
    CHECK(rc != 0 && test_contains(e.msg, "--tp 2 does not divide the 3 devices"),
          "TP 2 on 3 devices: rc %d, %s", rc, e.msg);
    rc = armo_backend_open_workers(m, "cuda", "0,7", 0, &o, &w, &n, &e);
    CHECK(rc != 0 && test_contains(e.msg, "device 7 is not visible"), "device 7: %s", e.msg);
}

int main(void) {
#if GPU_TEST_EMULATED
    setenv("ARMO_EMU_DEVICES", "4", 1); /* before the first CUDA call */
#endif
    gpu_test_require_device();
    armo_backend_register_cuda(&armo_cuda_accel);
    int devices = armo_cuda_device_count();
    printf("%d CUDA device%s\n", devices, devices == 1 ? "" : "s");
    if (devices < 2) {
        printf("tensor parallel needs 2 devices: skipped\n");
        return 77;
    }
    char dir[1024];
    armo_err e;
    armo_model m;
    snprintf(dir, sizeof dir, "%s/tiny-armorm", ARMO_MODELS_DIR);
    if (armo_model_open(dir, &m, &e) == 0) {
        check_model("tiny-armorm", &m, 2, devices);
        if (devices >= 4) check_dp_tp(&m);
        armo_model_close(&m);
    } else {
        CHECK(0, "%s: %s", dir, e.msg);
    }
    snprintf(dir, sizeof dir, "%s/tmp_tp_kv4", ARMO_BINARY_DIR);
    armo_random_spec s = armo_random_spec_armorm(2, 77);
    s.hidden = 128;
    s.heads = 4;
    s.kv_heads = 4;
    s.head_dim = 64;
    s.intermediate = 256;
    s.vocab = 512;
    s.gating_hidden = 32;
    if (test_open_random_model(dir, &s, "random kv4", &m) == 0) {
        check_model("random kv4", &m, 4, devices);
        armo_model_close(&m);
    }
    return test_finish("test_tp");
}
