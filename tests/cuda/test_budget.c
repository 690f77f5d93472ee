/* test_budget.c — the CUDA backend's activations are sized for the batches it
 * is sent, not for the ceiling it was opened with (issue 21, item 4); label
 * gpu, exits 77 when no CUDA device is found; the ctest emu_budget runs it on
 * the CPU emulator.
 *
 * A small random ArmoRM with max_position_embeddings 131072 is opened with
 * the ceiling `armo score` gives it by default (max(16384, --max-length) =
 * 131072 tokens, 1024 sequences): nothing is allocated for activations at
 * open; a 10-token sequence makes the backend allocate for a few hundred
 * tokens; a 5000-token sequence after it grows the buffers (to at most 8192
 * tokens, nowhere near 131072) and scores like the CPU backend within the
 * bf16 bounds of test_engine.c; a small batch after that reuses them; a
 * prefix-shared batch adds the expanded-layout buffers.  What the backend
 * holds (backend.h's get_memory) is checked against device_memory.h's
 * arithmetic to the byte.  On the emulator, whose cudaMemGetInfo reads
 * ARMO_EMU_MEM_FREE_BYTES, a batch the "device" cannot hold fails with the
 * numbers, leaves the buffers as they were, and the backend scores on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda/cuda_backend.h"
#include "host/engine/backend_open.h"
#include "host/engine/device_memory.h"
#include "tests/util/random_armorm.h"
#include "tests/util/test_util.h"
#include "weights/random_model.h"

/* the bounds of tests/cuda/test_engine.c (see its header): bf16 activations
 * against the fp32 CPU backend, relative to the scale of what is compared */
#define VEC_TOL 5e-2
#define GATE_TOL 1e-1
#define SCORE_TOL 5e-2

static void compare(const char *what, const armo_result *g, const armo_result *c) {
    const int K = c->n_objectives;
    CHECK(g->n_tokens == c->n_tokens && g->n_objectives == K, "%s: %d tokens / %d objectives, "
          "cpu %d / %d", what, g->n_tokens, g->n_objectives, c->n_tokens, K);
    const double er = test_rel_l2(g->rewards, c->rewards, K), eg = test_rel_l2(g->gating, c->gating, K),
                 ec = test_rel_l2(g->coefficients, c->coefficients, K);
    const double scale = test_norm2(c->rewards, K) * test_norm2(c->coefficients, K);
    const double es = fabs((double)g->score - c->score) / (scale > 1e-6 ? scale : 1e-6);
    printf("%-34s rel err rewards %.2e gating %.2e coefficients %.2e score %.2e\n", what, er, eg,
           ec, es);
    CHECK(er <= VEC_TOL && eg <= GATE_TOL && ec <= GATE_TOL && isfinite(er + eg + ec),
          "%s: rel err rewards %.3g gating %.3g coefficients %.3g", what, er, eg, ec);
    CHECK(es <= SCORE_TOL, "%s: score cuda %.6f cpu %.6f (error %.3g of the scale)", what,
          g->score, c->score, es);
}

static int32_t *random_ids(int n, int vocab, uint64_t seed) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)vocab);
    }
    return ids;
}

/* One sequence of len tokens on both backends. */
static int score_one(const char *what, armo_backend *gpu, armo_backend *cpu, int len, int vocab,
                     uint64_t seed) {
    int32_t *ids = random_ids(len, vocab, seed);
    int32_t cu[2] = {0, len}, gpos[1] = {len > 3 ? len - 3 : 0};
    armo_result rg, rc;
    armo_err e;
    int ok = cpu->score(cpu, ids, cu, 1, gpos, NULL, &rc, &e) == 0;
    CHECK(ok, "%s: cpu: %s", what, e.msg);
    if (ok) {
        ok = gpu->score(gpu, ids, cu, 1, gpos, NULL, &rg, &e) == 0;
        CHECK(ok, "%s: cuda: %s", what, e.msg);
    }
    if (ok) compare(what, &rg, &rc);
    free(ids);
    return ok;
}

/* What the backend holds, checked against the arithmetic. */
static armo_backend_memory held(const char *what, armo_backend *gpu, const armo_config *c) {
    armo_backend_memory mem;
    memset(&mem, 0, sizeof mem);
    CHECK(gpu->get_memory != NULL, "the CUDA backend reports no memory");
    if (!gpu->get_memory) return mem;
    gpu->get_memory(gpu, &mem);
    const size_t want =
        armo_dev_activation_bytes(c, (armo_batch_shape){mem.tokens, mem.seqs, mem.exp_rows});
    printf("%-34s activations for %lld tokens / %lld sequences / %lld expanded rows: %zu bytes "
           "(%lld allocations so far)\n",
           what, (long long)mem.tokens, (long long)mem.seqs, (long long)mem.exp_rows,
           mem.activation_bytes, (long long)mem.grows);
    CHECK(mem.activation_bytes == want, "%s: %zu activation bytes held, device_memory.h says %zu",
          what, mem.activation_bytes, want);
    CHECK(mem.weight_bytes == armo_dev_weight_bytes(c),
          "%s: %zu weight bytes held, device_memory.h says %zu", what, mem.weight_bytes,
          armo_dev_weight_bytes(c));
    return mem;
}

/* [prefix 60] + continuations of 5 and 7 tokens: the expanded layout */
static void score_shared(armo_backend *gpu, armo_backend *cpu, int vocab) {
    int32_t *ids = random_ids(72, vocab, 31);
    int32_t cu[4] = {0, 60, 65, 72}, pre[3] = {-1, 0, 0}, gpos[3] = {-1, 50, 62};
    armo_result rg[3], rc[3];
    armo_err e;
    int ok = cpu->score(cpu, ids, cu, 3, gpos, pre, rc, &e) == 0;
    CHECK(ok, "shared: cpu: %s", e.msg);
    if (ok) {
        ok = gpu->score(gpu, ids, cu, 3, gpos, pre, rg, &e) == 0;
        CHECK(ok, "shared: cuda: %s", e.msg);
    }
    if (ok) {
        compare("shared continuation 1", &rg[1], &rc[1]);
        compare("shared continuation 2", &rg[2], &rc[2]);
    }
    free(ids);
}

#ifdef ARMO_EMULATED
/* The emulated device with little free memory: a batch it cannot hold is
 * refused with the numbers, the buffers stay, and the backend scores on. */
static void test_no_room(armo_backend *gpu, armo_backend *cpu, const armo_config *c, int vocab) {
    const armo_backend_memory before = held("before the refusal", gpu, c);
    /* free: what 6000 tokens need, less what the backend holds (the check
     * counts its own buffers as available) */
    const size_t reserve = ARMO_DEV_WORKSPACE_BYTES - ARMO_DEV_GEMM_WORKSPACE_BYTES;
    const size_t six = armo_dev_activation_bytes(c, (armo_batch_shape){6000, 1, 0}) + reserve;
    const size_t room = six > before.activation_bytes ? six - before.activation_bytes : 1;
    char v[64];
    snprintf(v, sizeof v, "%zu", room);
    setenv("ARMO_EMU_MEM_FREE_BYTES", v, 1);
    const int len = 20000;
    int32_t *ids = random_ids(len, vocab, 77);
    int32_t cu[2] = {0, len}, gpos[1] = {len - 3};
    armo_result r;
    armo_err e;
    const int rc = gpu->score(gpu, ids, cu, 1, gpos, NULL, &r, &e);
    printf("no room: %s\n", rc ? e.msg : "(scored)");
    CHECK(rc != 0 && test_contains(e.msg, "a batch of 20000 tokens") &&
              test_contains(e.msg, "needs") && test_contains(e.msg, "available") &&
              test_contains(e.msg, "batches of up to"),
          "a 20000-token batch with room for 6000 must fail with the numbers (rc %d: %s)", rc,
          e.msg);
    free(ids);
    const armo_backend_memory after = held("after the refusal", gpu, c);
    CHECK(after.tokens == before.tokens && after.grows == before.grows,
          "the refused batch changed the buffers: %lld tokens (%lld grows), before %lld (%lld)",
          (long long)after.tokens, (long long)after.grows, (long long)before.tokens,
          (long long)before.grows);
    score_one("10 tokens after the refusal", gpu, cpu, 10, vocab, 5);
    unsetenv("ARMO_EMU_MEM_FREE_BYTES");
}
#endif

int main(void) {
    if (armo_cuda_device_count() <= 0) {
        printf("test_budget: no CUDA device: skipped\n");
        return 77;
    }
    armo_backend_register_cuda(&armo_cuda_accel);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tmp_budget_model", ARMO_BINARY_DIR);
    armo_random_spec s = test_small_armorm_spec(2, 4321);
    s.max_positions = 131072;
    armo_model m;
    if (test_open_random_model(dir, &s, "budget", &m)) return test_finish("test_budget");
    armo_err e;
    CHECK(m.cfg.max_position_embeddings == 131072, "max_position_embeddings %d",
          m.cfg.max_position_embeddings);
    /* armo score's default: a ceiling of max(16384, --max-length) */
    armo_backend_opts o = {.threads = 0, .max_batch_tokens = m.cfg.max_position_embeddings,
                           .max_seqs = ARMO_DEFAULT_MAX_SEQS, .quiet = 1};
    armo_backend *gpu = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(gpu != NULL, "cuda backend: %s", e.msg);
    armo_backend *cpu = armo_backend_open(&m, "cpu", &o, &e);
    CHECK(cpu != NULL, "cpu backend: %s", e.msg);
    if (gpu && cpu) {
        const size_t ceiling = armo_dev_activation_bytes(
            &m.cfg, armo_dev_budget_shape(o.max_batch_tokens, o.max_seqs, 1));
        printf("the ceiling's activations would be %zu bytes\n", ceiling);
        armo_backend_memory mem = held("after open", gpu, &m.cfg);
        CHECK(mem.activation_bytes == 0 && mem.tokens == 0,
              "open allocated activations for %lld tokens (%zu bytes)", (long long)mem.tokens,
              mem.activation_bytes);

        score_one("10 tokens", gpu, cpu, 10, s.vocab, 1);
        mem = held("after 10 tokens", gpu, &m.cfg);
        CHECK(mem.tokens >= 10 && mem.tokens <= 1024 && mem.grows == 1,
              "a 10-token batch: buffers for %lld tokens (%lld allocations)",
              (long long)mem.tokens, (long long)mem.grows);
        CHECK(mem.activation_bytes * 100 < ceiling, "a 10-token batch holds %zu bytes, the "
              "ceiling's %zu", mem.activation_bytes, ceiling);

        score_one("5000 tokens (grown)", gpu, cpu, 5000, s.vocab, 2);
        mem = held("after 5000 tokens", gpu, &m.cfg);
        CHECK(mem.tokens >= 5000 && mem.tokens <= 8192 && mem.grows == 2,
              "a 5000-token batch after a 10-token one: buffers for %lld tokens (%lld "
              "allocations)", (long long)mem.tokens, (long long)mem.grows);
        CHECK(mem.activation_bytes * 10 < ceiling, "5000 tokens hold %zu bytes, the ceiling's %zu",
              mem.activation_bytes, ceiling);

        score_one("10 tokens again (no growth)", gpu, cpu, 10, s.vocab, 3);
        armo_backend_memory again = held("after 10 tokens again", gpu, &m.cfg);
        CHECK(again.grows == mem.grows && again.tokens == mem.tokens,
              "a smaller batch reallocated: %lld tokens, %lld allocations",
              (long long)again.tokens, (long long)again.grows);

        score_shared(gpu, cpu, s.vocab);
        mem = held("after a shared batch", gpu, &m.cfg);
        CHECK(mem.exp_rows >= 72 && mem.tokens >= 5000, "a shared batch: %lld expanded rows, "
              "%lld tokens", (long long)mem.exp_rows, (long long)mem.tokens);
#ifdef ARMO_EMULATED
        test_no_room(gpu, cpu, &m.cfg, s.vocab);
#endif
    }
    armo_backend_close(gpu);
    armo_backend_close(cpu);
    armo_model_close(&m);
    return test_finish("test_budget");
}
