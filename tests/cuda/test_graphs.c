/* test_graphs.c — CUDA graphs for small batches (ARMO_CUDA_GRAPHS=1, issue 20
 * item 3); label gpu, exits 77 when no CUDA device is found; the ctest
 * emu_graphs runs it on the CPU emulator, whose fake runtime records the
 * launches and GEMMs of a stream capture and replays them at cudaGraphLaunch.
 *
 * A small random ArmoRM is opened three times: CUDA with graphs, CUDA
 * without, and CPU.  A sequence of batches (plain ragged, the same shape
 * with other tokens, another bucket, prompt-prefix shared twice, one over
 * the graphs' 2048-token limit that also grows the buffers, then the first
 * shape again) must give:
 *   - every result within the bf16 bounds of test_engine.c of the CPU
 *     backend's;
 *   - on the emulator, results equal bit for bit to the backend without
 *     graphs (the padding of a bucket is a sequence of its own; the fake
 *     GEMM computes rows independently; on a GPU another token count may
 *     pick another GEMM algorithm, so only the bounds apply there);
 *   - the expected captures and replays: one capture per new bucket, a
 *     replay for a batch of a known bucket, none over the limit, and a new
 *     capture after the buffers were reallocated (graphs hold addresses);
 *   - on the emulator, the captured forward pass holds exactly the expected
 *     operations: 9 launches and GEMMs per layer (the count of issue 20's
 *     profiling/RESULTS.md section, held by a test). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda/cuda_backend.h"
#include "host/engine/backend_open.h"
#include "tests/util/random_armorm.h"
#include "tests/util/test_util.h"
#include "weights/random_model.h"

#ifdef ARMO_EMULATED
long armo_emu_last_graph_ops(void); /* tests/emu/cuda/runtime.cpp */
#endif

#define VEC_TOL 5e-2
#define GATE_TOL 1e-1
#define SCORE_TOL 5e-2

static void compare_cpu(const char *what, int s, const armo_result *g, const armo_result *c) {
    const int K = c->n_objectives;
    const double er = test_rel_l2(g->rewards, c->rewards, K), eg = test_rel_l2(g->gating, c->gating, K),
                 ec = test_rel_l2(g->coefficients, c->coefficients, K);
    const double scale = test_norm2(c->rewards, K) * test_norm2(c->coefficients, K);
    const double es = fabs((double)g->score - c->score) / (scale > 1e-6 ? scale : 1e-6);
    CHECK(g->n_tokens == c->n_tokens && er <= VEC_TOL && eg <= GATE_TOL && ec <= GATE_TOL &&
              es <= SCORE_TOL && isfinite(er + eg + ec + es),
          "%s seq %d: tokens %d/%d, rel err rewards %.3g gating %.3g coefficients %.3g score %.3g",
          what, s, g->n_tokens, c->n_tokens, er, eg, ec, es);
}

static int32_t *random_ids(int n, int vocab, uint64_t seed) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
    return ids;
}

typedef struct {
    armo_backend *graphs, *plain, *cpu;
    int vocab;
} backends;

/* One batch on the three backends; returns the graph launches it added. */
static void run_batch(const backends *b, const char *what, const int *lens, int nseq,
                      const int32_t *prefix_of, uint64_t seed, int64_t want_captures,
                      int64_t want_launches) {
    int32_t cu[16], gpos[16];
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) cu[s + 1] = cu[s] + lens[s];
    for (int s = 0; s < nseq; s++) { /* a gating position inside the whole sequence */
        const int full = lens[s] + (prefix_of && prefix_of[s] >= 0 ? lens[prefix_of[s]] : 0);
        gpos[s] = prefix_of && prefix_of[s] < 0 && s + 1 < nseq && prefix_of[s + 1] == s
                      ? -1
                      : full / 2;
    }
    int32_t *ids = random_ids(cu[nseq], b->vocab, seed);
    armo_result rg[16], rp[16], rc[16];
    armo_err e;
    int ok = b->cpu->score(b->cpu, ids, cu, nseq, gpos, prefix_of, rc, &e) == 0;
    CHECK(ok, "%s: cpu: %s", what, e.msg);
    ok = ok && b->plain->score(b->plain, ids, cu, nseq, gpos, prefix_of, rp, &e) == 0;
    CHECK(ok, "%s: cuda without graphs: %s", what, ok ? "" : e.msg);
    ok = ok && b->graphs->score(b->graphs, ids, cu, nseq, gpos, prefix_of, rg, &e) == 0;
    CHECK(ok, "%s: cuda with graphs: %s", what, ok ? "" : e.msg);
    int heads = 0, same = 0;
    for (int s = 0; ok && s < nseq; s++) {
        if (prefix_of && s + 1 < nseq && prefix_of[s] < 0 && prefix_of[s + 1] == s) continue;
        heads++;
        compare_cpu(what, s, &rg[s], &rc[s]);
        const int K = rc[s].n_objectives;
        const int eq = rg[s].score == rp[s].score &&
                       memcmp(rg[s].rewards, rp[s].rewards, (size_t)K * 4) == 0 &&
                       memcmp(rg[s].gating, rp[s].gating, (size_t)K * 4) == 0 &&
                       memcmp(rg[s].coefficients, rp[s].coefficients, (size_t)K * 4) == 0;
        same += eq;
#ifdef ARMO_EMULATED
        CHECK(eq, "%s seq %d: with graphs score %.9g, without %.9g: not bit for bit", what, s,
              rg[s].score, rp[s].score);
#endif
    }
    int64_t captures = 0;
    const int64_t launches = armo_cuda_graph_stats(b->graphs, &captures);
    CHECK(captures == want_captures && launches == want_launches,
          "%s: %lld captures and %lld graph launches so far, expected %lld and %lld", what,
          (long long)captures, (long long)launches, (long long)want_captures,
          (long long)want_launches);
    printf("%-34s %2d head sequences like the CPU, %2d bit for bit as without graphs; %lld "
           "captures, %lld graph launches so far\n",
           what, heads, same, (long long)captures, (long long)launches);
    free(ids);
}

int main(void) {
    if (armo_cuda_device_count() <= 0) {
        printf("test_graphs: no CUDA device: skipped\n");
        return 77;
    }
    armo_backend_register_cuda(&armo_cuda_accel);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tmp_graphs_model", ARMO_BINARY_DIR);
    armo_random_spec s = test_small_armorm_spec(2, 9876);
    armo_model m;
    if (test_open_random_model(dir, &s, "graphs", &m)) return test_finish("test_graphs");
    armo_err e;
    armo_backend_opts o = {.threads = 0, .max_batch_tokens = 4096, .max_seqs = 64, .quiet = 1};
    backends b = {NULL, NULL, NULL, s.vocab};
    setenv("ARMO_CUDA_GRAPHS", "1", 1); /* read at open */
    b.graphs = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(b.graphs != NULL, "cuda backend with graphs: %s", e.msg);
    unsetenv("ARMO_CUDA_GRAPHS");
    b.plain = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(b.plain != NULL, "cuda backend: %s", e.msg);
    b.cpu = armo_backend_open(&m, "cpu", &o, &e);
    CHECK(b.cpu != NULL, "cpu backend: %s", e.msg);
    if (b.graphs && b.plain && b.cpu) {
        const int lens_a[] = {10, 1, 37}, lens_c[] = {5, 6}, lens_big[] = {2100};
        const int lens_s[] = {20, 5, 7};
        const int32_t pre_s[] = {-1, 0, 0};
        run_batch(&b, "ragged 10+1+37 (bucket 64/4/4)", lens_a, 3, NULL, 1, 1, 1);
#ifdef ARMO_EMULATED
        {
            /* the captured forward pass, operation by operation (launches
             * and GEMMs): embedding + first norm; per layer QKV GEMM, RoPE,
             * attention, o GEMM, add+norm, gate|up GEMM, SwiGLU, down GEMM,
             * add+norm (9: no q/k/v copies, issue 20); the last layer's
             * head-row gather; the head (regression, the gating MLP's
             * layers, the gate) */
            const long want = 2 + 9L * m.cfg.num_layers + 1 + 1 + (m.cfg.gating_n_hidden + 1) + 1;
            const long got = armo_emu_last_graph_ops();
            CHECK(got == want, "the forward pass holds %ld operations, expected %ld (2 + 9 per "
                               "layer x %d + 1 + head %d)", got, want, m.cfg.num_layers,
                  m.cfg.gating_n_hidden + 3);
            printf("forward pass: %ld operations (%d layers: 9 per layer)\n", got,
                   m.cfg.num_layers);
        }
#endif
        run_batch(&b, "the same shape, other tokens", lens_a, 3, NULL, 2, 1, 2);
        run_batch(&b, "5+6 (another bucket)", lens_c, 2, NULL, 3, 2, 3);
        run_batch(&b, "shared prefix 20 + 5, 7", lens_s, 3, pre_s, 4, 3, 4);
        run_batch(&b, "shared again, other tokens", lens_s, 3, pre_s, 5, 3, 5);
        run_batch(&b, "2100 tokens (no graph; grows)", lens_big, 1, NULL, 6, 3, 5);
        run_batch(&b, "ragged again (buffers new)", lens_a, 3, NULL, 7, 4, 6);
        int64_t captures = 0;
        CHECK(armo_cuda_graph_stats(b.plain, &captures) == 0 && captures == 0,
              "the backend without ARMO_CUDA_GRAPHS launched graphs");
    }
    armo_backend_close(b.graphs);
    armo_backend_close(b.plain);
    armo_backend_close(b.cpu);
    armo_model_close(&m);
    return test_finish("test_graphs");
}
