/* test_engine.c — the CUDA backend end to end against the CPU backend
 * (DESIGN §5, oracle 4), label gpu; exits 77 when no CUDA device is found.
 *
 * Models: every bundled tiny fixture (head_dim 64 with nh*hd > hidden; the
 * golden cases' token ids, all packed in one batch, and the same cases split
 * over small batches; refused bad batches; prompt-prefix sharing, ArmoRM and
 * single-head; the per-phase timing hooks of armo bench), and a "medium" random model written at test time (hidden
 * 1024, 4 layers, head_dim 128, GQA 4:1) scored on a ragged batch with
 * lengths 1, 7, 128, 1000, 333 and 64, and with prefix sharing; last, the
 * accelerator's GEMM ceiling and memory report at a small shape.  Also the
 * backend's own limits and paths the fixtures do not reach: an empty batch; a
 * shared-prefix batch whose expanded attention layout is over the backend's
 * cap (refused; the backend goes on scoring); models it refuses to open
 * (head_dim 32, hidden or intermediate not a multiple of 8); and non-BF16
 * backbone weights (F32 copies of BF16 tensors, converted at upload with the
 * load progress on), which must score bit for bit like the BF16 ones.  The CUDA
 * backend runs bf16 activations and the CPU backend fp32, so the bounds are
 * bf16 ones (see VEC_TOL / SCORE_TOL); every value finite.  Every compared
 * sequence prints its errors, so a GPU log shows the margins.
 * The ctest emu_engine runs this same file on the CPU emulator of the CUDA
 * path (tests/emu/cuda: the real launchers and device code, a faked runtime
 * and cuBLASLt; no GPU). */
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda/cuda_backend.h"
#include "host/engine/backend_open.h"
#include "tests/util/random_armorm.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"
#include "weights/random_model.h"

/* bf16 activations against fp32 (DESIGN §5): the bounds are relative to the
 * scale of what is compared, not to the value itself, which may be near 0
 * after cancellation.  ArmoRM: score = Σ rewards·coefficients, so a bf16
 * perturbation of a few 1e-3 in each vector moves it by a few 1e-3 of
 * ‖rewards‖·‖coefficients‖ (Cauchy–Schwarz), which bounds |score| itself;
 * single-head RMs: the RMS of the batch's reference labels.  The CPU
 * emulation of this engine (emu_engine, the kernels' own code) shows at most
 * ~1.5e-2 on the vectors and ~2.4e-2 of those scales on the tiny fixtures: the bounds leave a margin of 3 for the GPU's own
 * (differently ordered) sample of that noise.  The medium model's gating MLP
 * (weights scaled for a spread-out softmax) amplifies h_prompt's noise about
 * twofold: up to 4.4e-2 on its gating weights and coefficients in the
 * emulation, hence MEDIUM_GATE_TOL there.  (HF's own bf16 path, which rounds
 * the attention logits to bf16, is off by up to 36% on its rewards and 80% on
 * its gating for the medium model's 1000-token sequence: this engine keeps
 * logits in fp32, so its bar is the emulation's, not HF's.)  A layout, row or
 * position bug moves results by O(1) of the scale. */
#define VEC_TOL 5e-2
#define SCORE_TOL 5e-2
#define MEDIUM_GATE_TOL 1e-1

/* tolerance on the gating weights and coefficients of the model under test */
static double g_gate_tol = VEC_TOL;

static void compare_tol(const char *what, const armo_result *gpu, const armo_result *cpu, int n,
                        double vec_tol, double gate_tol, double score_tol) {
    /* single-head scale: RMS over the batch of each label */
    double label_rms[ARMO_MAX_LABELS] = {0};
    for (int s = 0; s < n; s++)
        for (int l = 0; l < cpu[s].n_labels; l++) label_rms[l] += (double)cpu[s].labels[l] * cpu[s].labels[l];
    for (int l = 0; l < ARMO_MAX_LABELS; l++) label_rms[l] = n ? sqrt(label_rms[l] / n) : 0.0;
    for (int s = 0; s < n; s++) {
        const armo_result *g = &gpu[s], *c = &cpu[s];
        CHECK(g->n_tokens == c->n_tokens, "%s seq %d: %d tokens, cpu %d", what, s, g->n_tokens,
              c->n_tokens);
        CHECK(isfinite(g->score), "%s seq %d: score not finite", what, s);
        if (c->n_objectives) {
            const int k = c->n_objectives;
            CHECK(g->n_objectives == k, "%s seq %d: %d objectives, cpu %d", what, s,
                  g->n_objectives, k);
            const double er = test_rel_l2(g->rewards, c->rewards, k),
                         eg = test_rel_l2(g->gating, c->gating, k),
                         ec = test_rel_l2(g->coefficients, c->coefficients, k);
            const double scale = test_norm2(c->rewards, k) * test_norm2(c->coefficients, k);
            const double es = fabs((double)g->score - c->score) / fmax(scale, 1e-6);
            printf("%-28s seq %2d (%5d tokens): score cuda %9.5f cpu %9.5f (err %.2e of "
                   "|r||c| %.3g) | rel err rewards %.2e gating %.2e coefficients %.2e\n",
                   what, s, c->n_tokens, g->score, c->score, es, scale, er, eg, ec);
            CHECK(er <= vec_tol && eg <= gate_tol && ec <= gate_tol && isfinite(er + eg + ec),
                  "%s seq %d: rel err rewards %.3g gating %.3g coefficients %.3g (tolerances "
                  "%.2g, %.2g)", what, s, er, eg, ec, vec_tol, gate_tol);
            CHECK(es <= score_tol, "%s seq %d: score cuda %.6f cpu %.6f: error %.3g of "
                  "|rewards||coefficients| %.3g (tolerance %.2g)", what, s, g->score, c->score,
                  es, scale, score_tol);
        } else {
            CHECK(g->n_labels == c->n_labels, "%s seq %d: %d labels, cpu %d", what, s, g->n_labels,
                  c->n_labels);
            printf("%-28s seq %2d (%5d tokens): score cuda %9.5f cpu %9.5f (err %.2e of batch "
                   "RMS %.3g)\n", what, s, c->n_tokens, g->score, c->score,
                   fabs((double)g->score - c->score) / fmax(label_rms[0], 1e-6), label_rms[0]);
            for (int l = 0; l < c->n_labels; l++)
                CHECK(fabs((double)g->labels[l] - c->labels[l]) <= score_tol * fmax(label_rms[l], 1e-6),
                      "%s seq %d label %d: cuda %.6f cpu %.6f (tolerance %.2g of the batch RMS "
                      "%.3g)", what, s, l, g->labels[l], c->labels[l], score_tol, label_rms[l]);
        }
    }
}

static void compare(const char *what, const armo_result *gpu, const armo_result *cpu, int n) {
    compare_tol(what, gpu, cpu, n, VEC_TOL, g_gate_tol, SCORE_TOL);
}

/* Scores the batch with both backends (the CUDA one in batches of `split`
 * sequences) and compares. */
static void run_both(const char *what, armo_backend *gpu, armo_backend *cpu, const int32_t *ids,
                     const int32_t *cu, int nseq, const int32_t *gpos, int split) {
    armo_result *rg = calloc((size_t)nseq, sizeof *rg), *rc = calloc((size_t)nseq, sizeof *rc);
    armo_err e;
    int ok = cpu->score(cpu, ids, cu, nseq, gpos, NULL, rc, &e) == 0;
    CHECK(ok, "%s: cpu: %s", what, e.msg);
    for (int s0 = 0; ok && s0 < nseq; s0 += split) {
        int m = nseq - s0 < split ? nseq - s0 : split;
        int32_t *cu2 = malloc(sizeof(int32_t) * (size_t)(m + 1));
        for (int i = 0; i <= m; i++) cu2[i] = cu[s0 + i] - cu[s0];
        int r = gpu->score(gpu, ids + cu[s0], cu2, m, gpos ? gpos + s0 : NULL, NULL, rg + s0, &e);
        CHECK(r == 0, "%s: cuda: %s", what, e.msg);
        free(cu2);
        if (r) ok = 0;
    }
    if (ok) compare(what, rg, rc, nseq);
    free(rg);
    free(rc);
}

/* Segments: [standalone 100], [prefix 300], 3 continuations (1, 57, 200
 * tokens) of it; gating rows inside the prefix (250, 299: its last row) and
 * inside a continuation's own tokens (420 of 500).  gpos NULL for single-head
 * RMs. */
static void test_shared(const char *what, armo_backend *gpu, armo_backend *cpu, int vocab,
                        int armorm) {
    const int lens[5] = {100, 300, 1, 57, 200};
    int32_t cu[6], pre[5] = {-1, -1, 1, 1, 1}, gpos[5] = {90, -1, 250, 299, 420};
    cu[0] = 0;
    for (int i = 0; i < 5; i++) cu[i + 1] = cu[i] + lens[i];
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cu[5]);
    uint64_t x = 7;
    for (int i = 0; i < cu[5]; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)vocab);
    }
    armo_result rg[5], rc[5];
    armo_err e;
    int ok = cpu->score(cpu, ids, cu, 5, armorm ? gpos : NULL, pre, rc, &e) == 0;
    CHECK(ok, "%s: cpu: %s", what, e.msg);
    if (ok) {
        ok = gpu->score(gpu, ids, cu, 5, armorm ? gpos : NULL, pre, rg, &e) == 0;
        CHECK(ok, "%s: cuda: %s", what, e.msg);
    }
    if (ok) {
        CHECK(rg[1].n_tokens == 0 && rc[1].n_tokens == 0, "%s: the prefix segment has no head",
              what);
        char name[96];
        snprintf(name, sizeof name, "%s standalone", what);
        compare(name, &rg[0], &rc[0], 1);
        snprintf(name, sizeof name, "%s continuations", what);
        compare(name, &rg[2], &rc[2], 3);
    }
    free(ids);
}

/* Bad batches are refused with a message and leave the backend usable. */
static void test_refusals(const char *what, armo_backend *gpu, int64_t cap_tokens, int armorm) {
    armo_err e;
    armo_result r[2];
    int32_t ids[4] = {1, 2, 3, 4}, gpos[2] = {0, 0};
    int32_t bad_start[2] = {1, 4}, decreasing[3] = {0, 3, 2};
    CHECK(gpu->score(gpu, ids, bad_start, 1, armorm ? gpos : NULL, NULL, r, &e) != 0 &&
              test_contains(e.msg, "cu_seqlens[0]"),
          "%s: cu_seqlens[0] = 1 must be refused (%s)", what, e.msg);
    CHECK(gpu->score(gpu, ids, decreasing, 2, armorm ? gpos : NULL, NULL, r, &e) != 0 &&
              test_contains(e.msg, "empty"),
          "%s: decreasing cu_seqlens must be refused (%s)", what, e.msg);
    const int32_t n = (int32_t)cap_tokens + 1;
    int32_t *big = calloc((size_t)n, sizeof *big), cu_big[2] = {0, n};
    CHECK(gpu->score(gpu, big, cu_big, 1, armorm ? gpos : NULL, NULL, r, &e) != 0 &&
              test_contains(e.msg, "exceeds"),
          "%s: a batch over max_batch_tokens must be refused (%s)", what, e.msg);
    free(big);
    /* an empty batch is not an error: 0, nothing written (ids / cu_seqlens
     * may be NULL then) */
    memset(r, 0xAB, sizeof r);
    armo_result untouched[2];
    memset(untouched, 0xAB, sizeof untouched);
    int32_t cu0[1] = {0};
    CHECK(gpu->score(gpu, ids, cu0, 0, armorm ? gpos : NULL, NULL, r, &e) == 0,
          "%s: nseq 0 must score (as nothing): %s", what, e.msg);
    CHECK(gpu->score(gpu, NULL, NULL, 0, NULL, NULL, r, &e) == 0,
          "%s: nseq 0 with no ids / cu_seqlens must score (as nothing): %s", what, e.msg);
    CHECK(memcmp(r, untouched, sizeof r) == 0, "%s: nseq 0 wrote results", what);
}

/* armo bench's hooks: per-phase timing of score calls (cudaEvents on the
 * backend's stream), switched on, read, reset and off. */
static void test_timing(const char *what, armo_backend *gpu, const int32_t *ids,
                        const int32_t *cu, int nseq, const int32_t *gpos) {
    armo_err e;
    armo_result *r = calloc((size_t)nseq, sizeof *r);
    CHECK(gpu->set_timing && gpu->get_timing, "%s: the CUDA backend has no timing hooks", what);
    if (!gpu->set_timing || !gpu->get_timing) {
        free(r);
        return;
    }
    CHECK(gpu->set_timing(gpu, 1, &e) == 0, "%s: set_timing: %s", what, e.msg);
    for (int rep = 0; rep < 2; rep++)
        CHECK(gpu->score(gpu, ids, cu, nseq, gpos, NULL, r, &e) == 0, "%s: timed score: %s", what,
              e.msg);
    armo_phase_times t;
    gpu->get_timing(gpu, &t);
    const double phases[5] = {t.upload_ms, t.embed_ms, t.layers_ms, t.head_ms, t.download_ms};
    double total = 0.0;
    for (int i = 0; i < 5; i++) {
        CHECK(isfinite(phases[i]) && phases[i] >= 0.0, "%s: phase %d timed %g ms", what, i,
              phases[i]);
        total += phases[i];
    }
    CHECK(t.calls == 2, "%s: %lld timed calls, expected 2", what, (long long)t.calls);
    CHECK(total > 0.0, "%s: the timed phases sum to %g ms", what, total);
    printf("%-28s timing: 2 calls, upload %.3g embed %.3g layers %.3g head %.3g download %.3g ms\n",
           what, t.upload_ms, t.embed_ms, t.layers_ms, t.head_ms, t.download_ms);
    CHECK(gpu->set_timing(gpu, 1, &e) == 0, "%s: set_timing again: %s", what, e.msg);
    gpu->get_timing(gpu, &t);
    CHECK(t.calls == 0 && t.layers_ms == 0.0, "%s: set_timing(1) did not reset the sums", what);
    CHECK(gpu->set_timing(gpu, 0, &e) == 0, "%s: set_timing off: %s", what, e.msg);
    CHECK(gpu->score(gpu, ids, cu, nseq, gpos, NULL, r, &e) == 0, "%s: untimed score: %s", what,
          e.msg);
    gpu->get_timing(gpu, &t);
    CHECK(t.calls == 0, "%s: a call was timed with timing off", what);
    free(r);
}

/* The accelerator's GEMM ceiling and memory report (armo bench's MFU
 * denominator and memory line), at a small shape. */
static void test_accel_reports(void) {
    armo_err e;
    double tflops = -1.0;
    CHECK(armo_cuda_accel.gemm_ceiling(64, 128, 256, 3, &tflops, &e) == 0, "gemm ceiling: %s",
          e.msg);
    CHECK(isfinite(tflops) && tflops > 0.0, "gemm ceiling: %g TFLOP/s", tflops);
    const double measured = tflops;
    CHECK(armo_cuda_accel.gemm_ceiling(64, 100, 256, 3, &tflops, &e) == -1,
          "gemm ceiling: in 100 (not a multiple of 8) must be refused");
    CHECK(armo_cuda_accel.gemm_ceiling(0, 128, 256, 3, &tflops, &e) == -1,
          "gemm ceiling: n 0 must be refused");
    size_t free_b = 0, total_b = 0;
    CHECK(armo_cuda_accel.mem_info(&free_b, &total_b, &e) == 0, "mem_info: %s", e.msg);
    CHECK(total_b > 0 && free_b <= total_b, "mem_info: free %zu of %zu bytes", free_b, total_b);
    printf("accelerator: GEMM 64x128x256 %.3g TFLOP/s; memory %zu of %zu MiB free\n", measured,
           free_b >> 20, total_b >> 20);
}

static void test_fixture(const char *golden_path) {
    json_error_t je;
    json_t *root = json_load_file(golden_path, 0, &je);
    CHECK(root != NULL, "%s: %s", golden_path, je.text);
    if (!root) return;
    const char *name = json_string_value(json_object_get(root, "model"));
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/%s", ARMO_MODELS_DIR, name ? name : "?");
    armo_model m;
    armo_err e;
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "%s", e.msg);
        json_decref(root);
        return;
    }
    json_t *cases = json_object_get(root, "cases");
    int nseq = (int)json_array_size(cases), total = 0;
    for (int s = 0; s < nseq; s++)
        total += (int)json_array_size(json_object_get(json_array_get(cases, s), "input_ids"));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)total), *cu = malloc(sizeof(int32_t) * (size_t)(nseq + 1)),
            *gpos = malloc(sizeof(int32_t) * (size_t)nseq);
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) {
        json_t *c = json_array_get(cases, s), *a = json_object_get(c, "input_ids");
        int n = (int)json_array_size(a);
        for (int i = 0; i < n; i++) ids[cu[s] + i] = (int32_t)json_integer_value(json_array_get(a, i));
        cu[s + 1] = cu[s] + n;
        gpos[s] = (int32_t)json_integer_value(json_object_get(c, "gating_pos"));
    }
    armo_backend_opts o = {.threads = 0, .max_batch_tokens = 8192, .max_seqs = 64, .quiet = 1};
    armo_backend *gpu = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(gpu != NULL, "%s: cuda backend: %s", name, e.msg);
    armo_backend *cpu = armo_backend_open(&m, "cpu", &o, &e);
    CHECK(cpu != NULL, "%s: cpu backend: %s", name, e.msg);
    if (gpu && cpu) {
        int armorm = m.cfg.arch == ARMO_ARCH_ARMORM;
        run_both(name, gpu, cpu, ids, cu, nseq, armorm ? gpos : NULL, nseq);
        run_both(name, gpu, cpu, ids, cu, nseq, armorm ? gpos : NULL, 3);
        test_refusals(name, gpu, o.max_batch_tokens, armorm);
        /* still right after the refusals; then prefix sharing on this model
         * (head_dim 64 with nh*hd > hidden, and the single-head path) */
        run_both(name, gpu, cpu, ids, cu, nseq, armorm ? gpos : NULL, nseq);
        char what[160];
        snprintf(what, sizeof what, "%s shared", name);
        test_shared(what, gpu, cpu, m.cfg.vocab_size, armorm);
        test_timing(name, gpu, ids, cu, nseq < 2 ? nseq : 2, armorm ? gpos : NULL);
    }
    armo_backend_close(gpu);
    armo_backend_close(cpu);
    armo_model_close(&m);
    free(ids);
    free(cu);
    free(gpos);
    json_decref(root);
}

static void test_medium(void) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tmp_engine_medium", ARMO_BINARY_DIR);
    armo_random_spec s = armo_random_spec_armorm(4, 1234);
    s.hidden = 1024;
    s.heads = 8;
    s.kv_heads = 2;
    s.head_dim = 128;
    s.intermediate = 2816;
    s.vocab = 4096;
    s.gating_hidden = 256;
    armo_model m;
    if (test_open_random_model(dir, &s, "medium", &m)) return;
    armo_err e;
    const int lens[] = {1, 7, 128, 1000, 333, 64};
    const int nseq = 6;
    int32_t cu[7], gpos[6];
    cu[0] = 0;
    for (int i = 0; i < nseq; i++) cu[i + 1] = cu[i] + lens[i];
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cu[nseq]);
    uint64_t x = 99;
    for (int i = 0; i < cu[nseq]; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)s.vocab);
    }
    for (int i = 0; i < nseq; i++) gpos[i] = lens[i] > 3 ? lens[i] - 3 : 0;
    armo_backend_opts o = {.threads = 0, .max_batch_tokens = 4096, .max_seqs = 64, .quiet = 1};
    armo_backend *gpu = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(gpu != NULL, "medium: cuda backend: %s", e.msg);
    armo_backend *cpu = armo_backend_open(&m, "cpu", &o, &e);
    CHECK(cpu != NULL, "medium: cpu backend: %s", e.msg);
    if (gpu && cpu) {
        g_gate_tol = MEDIUM_GATE_TOL;
        run_both("medium", gpu, cpu, ids, cu, nseq, gpos, nseq);
        run_both("medium (one by one)", gpu, cpu, ids, cu, nseq, gpos, 1);
        test_shared("medium shared", gpu, cpu, s.vocab, 1);
        g_gate_tol = VEC_TOL;
    }
    armo_backend_close(gpu);
    armo_backend_close(cpu);
    armo_model_close(&m);
    free(ids);
}

/* Scores a prefix-shared batch on both backends and compares the heads of
 * the segments that have one. */
static void shared_both(const char *what, armo_backend *gpu, armo_backend *cpu,
                        const int32_t *ids, const int32_t *cu, int nseq, const int32_t *gpos,
                        const int32_t *prefix_of) {
    armo_result rg[8], rc[8];
    armo_err e;
    int ok = cpu->score(cpu, ids, cu, nseq, gpos, prefix_of, rc, &e) == 0;
    CHECK(ok, "%s: cpu: %s", what, e.msg);
    if (ok) {
        ok = gpu->score(gpu, ids, cu, nseq, gpos, prefix_of, rg, &e) == 0;
        CHECK(ok, "%s: cuda: %s", what, e.msg);
    }
    for (int s = 0; ok && s < nseq; s++) {
        CHECK((rg[s].n_tokens == 0) == (rc[s].n_tokens == 0), "%s seq %d: head on one backend "
              "only (cuda %d tokens, cpu %d)", what, s, rg[s].n_tokens, rc[s].n_tokens);
        char name[96];
        snprintf(name, sizeof name, "%s, seg %d", what, s);
        if (rc[s].n_tokens) compare(name, &rg[s], &rc[s], 1);
    }
}

/* max_batch_tokens 64.  A 60-token prefix with three 1-token continuations
 * is 63 tokens but 3 * 61 = 183 rows of the expanded attention layout (what
 * the CPU backend builds).  The CUDA backend attends a shared prefix in
 * place (prefix_of), so it sets no cap on expanded rows (max_expanded_rows
 * 0: the scheduler never unshares a group for it) and scores such a batch
 * within its 64 tokens, equal to the CPU; until issue 20 it held 2 x 64
 * expanded rows and refused this batch. */
static void test_no_expansion_cap(void) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tiny-armorm", ARMO_MODELS_DIR);
    armo_model m;
    armo_err e;
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    armo_backend_opts o = {.threads = 0, .max_batch_tokens = 64, .max_seqs = 8, .quiet = 1};
    armo_backend *gpu = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(gpu != NULL, "expansion cap: cuda backend: %s", e.msg);
    armo_backend *cpu = armo_backend_open(&m, "cpu", &o, &e);
    CHECK(cpu != NULL, "expansion cap: cpu backend: %s", e.msg);
    if (gpu && cpu) {
        CHECK(gpu->max_expanded_rows == 0, "cuda max_expanded_rows %lld, expected 0 (no cap)",
              (long long)gpu->max_expanded_rows);
        int32_t ids[64];
        uint64_t x = 5;
        for (int i = 0; i < 64; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ids[i] = (int32_t)((x >> 33) % (uint64_t)m.cfg.vocab_size);
        }
        /* [prefix 60] + continuations of 1, 1, 1 token (gating rows in the
         * prefix and in a continuation): 183 expanded rows in 63 tokens */
        int32_t cu[5] = {0, 60, 61, 62, 63}, pre[4] = {-1, 0, 0, 0}, gpos[4] = {-1, 30, 60, 59};
        shared_both("183 expanded rows in 63 tokens", gpu, cpu, ids, cu, 4, gpos, pre);
        /* and the plain and smaller shared batches around it */
        int32_t cu2[3] = {0, 40, 64}, gpos2[2] = {10, 20};
        run_both("after the large shared batch", gpu, cpu, ids, cu2, 2, gpos2, 2);
        int32_t cu3[4] = {0, 60, 62, 64}, pre3[3] = {-1, 0, 0}, gpos3[3] = {-1, 30, 61};
        shared_both("shared, 124 expanded rows", gpu, cpu, ids, cu3, 3, gpos3, pre3);
    }
    armo_backend_close(gpu);
    armo_backend_close(cpu);
    armo_model_close(&m);
}

/* Models the CUDA backend does not take are refused at open with its
 * message, before any device allocation (host memory: LeakSanitizer in
 * emu_engine; device memory: the free figure does not move). */
static void test_open_refusals(void) {
    static const struct {
        const char *name;
        int hidden, head_dim, intermediate;
        const char *message;
    } cases[3] = {
        {"head_dim 32", 64, 32, 128, "supports head_dim 64 and 128 (this model: 32)"},
        {"hidden 100", 100, 64, 128, "hidden and intermediate sizes that are multiples of 8"},
        {"intermediate 100", 64, 64, 100, "hidden and intermediate sizes that are multiples of 8"},
    };
    for (int i = 0; i < 3; i++) {
        char dir[2048];
        snprintf(dir, sizeof dir, "%s/tmp_engine_refused_%d", ARMO_BINARY_DIR, i);
        armo_random_spec s = armo_random_spec_armorm(1, 77 + (uint64_t)i);
        s.hidden = cases[i].hidden;
        s.heads = 2;
        s.kv_heads = 1;
        s.head_dim = cases[i].head_dim;
        s.intermediate = cases[i].intermediate;
        s.vocab = 256;
        s.gating_hidden = 32;
        armo_model m;
        if (test_open_random_model(dir, &s, cases[i].name, &m)) continue;
        armo_err e;
        size_t free0 = 0, free1 = 0, total = 0;
        CHECK(armo_cuda_accel.mem_info(&free0, &total, &e) == 0, "mem_info: %s", e.msg);
        armo_backend_opts o = {.threads = 0, .max_batch_tokens = 256, .max_seqs = 8, .quiet = 1};
        e.msg[0] = 0;
        armo_backend *gpu = armo_backend_open(&m, "cuda", &o, &e);
        CHECK(gpu == NULL, "%s: the cuda backend must refuse to open", cases[i].name);
        CHECK(test_contains(e.msg, cases[i].message), "%s: message '%s', expected '%s'",
              cases[i].name, e.msg, cases[i].message);
        CHECK(armo_cuda_accel.mem_info(&free1, &total, &e) == 0, "mem_info: %s", e.msg);
        CHECK(free1 == free0, "%s: the refused open left %lld bytes of device memory allocated",
              cases[i].name, (long long)free0 - (long long)free1);
        printf("%-28s refused: %s\n", cases[i].name, e.msg);
        armo_backend_close(gpu);
        /* the CPU backend takes the same model */
        armo_backend *cpu = armo_backend_open(&m, "cpu", &o, &e);
        CHECK(cpu != NULL, "%s: cpu backend: %s", cases[i].name, e.msg);
        armo_backend_close(cpu);
        armo_model_close(&m);
    }
}

/* F32 copy of a BF16 weight (exact); the caller frees it. */
static float *f32_copy(armo_weight *w) {
    const size_t n = (size_t)(w->rows * w->cols);
    float *f = malloc(n * sizeof *f);
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) f[i] = armo_load_f32(w->data, w->dtype, i);
    return f;
}

/* Backbone weights in another dtype than BF16 go through the upload's
 * conversion (to bf16 on the host): F32 copies of BF16 tensors (exact) must
 * give the BF16 run's results bit for bit.  That open shows the load
 * progress (quiet 0). */
static void test_f32_weights(void) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tiny-armorm", ARMO_MODELS_DIR);
    armo_model m;
    armo_err e;
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    const int lens[3] = {1, 23, 40};
    int32_t cu[4] = {0}, gpos[3] = {0, 5, 37}, ids[64];
    for (int i = 0; i < 3; i++) cu[i + 1] = cu[i] + lens[i];
    uint64_t x = 11;
    for (int i = 0; i < cu[3]; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)m.cfg.vocab_size);
    }
    armo_backend_opts o = {.threads = 0, .max_batch_tokens = 64, .max_seqs = 8, .quiet = 1};
    armo_result bf[3], fp[3];
    memset(bf, 0, sizeof bf);
    memset(fp, 0xAB, sizeof fp);
    armo_backend *gpu = armo_backend_open(&m, "cuda", &o, &e);
    CHECK(gpu != NULL, "bf16 weights: cuda backend: %s", e.msg);
    int ok = gpu && gpu->score(gpu, ids, cu, 3, gpos, NULL, bf, &e) == 0;
    CHECK(ok, "bf16 weights: score: %s", e.msg);
    armo_backend_close(gpu);

    /* the embedding (a plain upload), layer 0's wq (first part of the fused
     * QKV), layer 1's wup (second part of gate|up) and the final norm */
    armo_weight *ws[4] = {&m.embed, &m.layers[0].wq, &m.layers[m.cfg.num_layers - 1].wup,
                          &m.final_norm};
    armo_weight saved[4];
    float *copies[4] = {NULL};
    int made = 1;
    for (int i = 0; i < 4; i++) {
        saved[i] = *ws[i];
        CHECK(ws[i]->dtype == ARMO_DT_BF16, "%s is not BF16 in the fixture", ws[i]->name);
        copies[i] = f32_copy(ws[i]);
        if (!copies[i]) made = 0;
    }
    CHECK(made, "out of host memory for the F32 copies");
    if (ok && made) {
        for (int i = 0; i < 4; i++) {
            ws[i]->dtype = ARMO_DT_F32;
            ws[i]->data = copies[i];
        }
        o.quiet = 0; /* the load progress lines on stderr */
        gpu = armo_backend_open(&m, "cuda", &o, &e);
        CHECK(gpu != NULL, "f32 weights: cuda backend: %s", e.msg);
        const int ok2 = gpu && gpu->score(gpu, ids, cu, 3, gpos, NULL, fp, &e) == 0;
        CHECK(ok2, "f32 weights: score: %s", e.msg);
        armo_backend_close(gpu);
        for (int s = 0; ok2 && s < 3; s++) {
            CHECK(bf[s].n_tokens == lens[s] && fp[s].n_tokens == lens[s],
                  "f32 weights seq %d: %d / %d tokens, expected %d", s, bf[s].n_tokens,
                  fp[s].n_tokens, lens[s]);
            CHECK(memcmp(&bf[s], &fp[s], sizeof bf[s]) == 0,
                  "f32 weights seq %d: score %.9g, bf16 weights %.9g: results differ", s,
                  fp[s].score, bf[s].score);
            printf("%-28s seq %d (%2d tokens): score %.9g, bf16 weights %.9g\n", "f32 weights",
                   s, lens[s], fp[s].score, bf[s].score);
        }
    }
    for (int i = 0; i < 4; i++) {
        *ws[i] = saved[i];
        free(copies[i]);
    }
    armo_model_close(&m);
}

int main(void) {
    if (armo_cuda_device_count() <= 0) {
        printf("test_engine: no CUDA device: skipped\n");
        return 77;
    }
    armo_backend_register_cuda(&armo_cuda_accel);
    glob_t g;
    char pat[2048];
    snprintf(pat, sizeof pat, "%s/tests/fixtures/*.golden.json", ARMO_SOURCE_DIR);
    CHECK(glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0, "no golden fixtures under %s", pat);
    for (size_t i = 0; i < g.gl_pathc; i++) test_fixture(g.gl_pathv[i]);
    globfree(&g);
    test_medium();
    test_no_expansion_cap();
    test_open_refusals();
    test_f32_weights();
    test_accel_reports();
    return test_finish("test_engine");
}
