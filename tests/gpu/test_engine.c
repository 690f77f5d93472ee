/* test_engine.c — the CUDA backend end to end against the CPU backend
 * (DESIGN §5, oracle 4), label gpu; exits 77 when no CUDA device is found.
 *
 * Models: every bundled tiny fixture (the golden cases' token ids, all
 * packed in one batch, and the same cases split over small batches), and a
 * "medium" random model written at test time (hidden 1024, 4 layers,
 * head_dim 128, GQA 4:1) scored on a ragged batch with lengths 1, 7, 128,
 * 1000, 333 and 64.  The CUDA backend runs bf16 activations and the CPU
 * backend fp32, so the bound is a bf16 one: per sequence
 * |score_cuda - score_cpu| <= 3e-2 * max(1, |score_cpu|) and
 * ‖v_cuda − v_cpu‖ / ‖v_cpu‖ <= 3e-2 for the rewards, gating weights and
 * coefficients; every value finite.  Prompt-prefix sharing: the medium
 * model's batch is also scored as one shared prefix plus continuations, on
 * both backends, and compared likewise. */
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test_util.h"
#include "host/backend.h"
#include "host/cuda/cuda_backend.h"
#include "host/random_model.h"

#define SCORE_TOL 3e-2
#define VEC_TOL 3e-2

static double rel_l2(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void compare(const char *what, const armo_result *gpu, const armo_result *cpu, int n) {
    for (int s = 0; s < n; s++) {
        const armo_result *g = &gpu[s], *c = &cpu[s];
        CHECK(isfinite(g->score), "%s seq %d: score not finite", what, s);
        CHECK(fabs(g->score - c->score) <= SCORE_TOL * fmax(1.0, fabs(c->score)),
              "%s seq %d: score cuda %.6f cpu %.6f", what, s, g->score, c->score);
        CHECK(g->n_tokens == c->n_tokens, "%s seq %d tokens", what, s);
        if (c->n_objectives) {
            int k = c->n_objectives;
            double er = rel_l2(g->rewards, c->rewards, k), eg = rel_l2(g->gating, c->gating, k),
                   ec = rel_l2(g->coefficients, c->coefficients, k);
            CHECK(er <= VEC_TOL && eg <= VEC_TOL && ec <= VEC_TOL,
                  "%s seq %d: rel err rewards %.3g gating %.3g coefficients %.3g", what, s, er, eg,
                  ec);
        }
        for (int l = 0; l < c->n_labels; l++)
            CHECK(fabs(g->labels[l] - c->labels[l]) <= SCORE_TOL * fmax(1.0, fabs(c->labels[l])),
                  "%s seq %d label %d", what, s, l);
    }
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
    }
    armo_backend_close(gpu);
    armo_backend_close(cpu);
    armo_model_close(&m);
    free(ids);
    free(cu);
    free(gpos);
    json_decref(root);
}

/* Segments: [standalone 100], [prefix 300], 3 continuations (1, 57, 200
 * tokens) of it; the gating rows lie inside the prefix. */
static void test_shared(armo_backend *gpu, armo_backend *cpu, int vocab) {
    const int lens[5] = {100, 300, 1, 57, 200};
    int32_t cu[6], pre[5] = {-1, -1, 1, 1, 1}, gpos[5] = {90, -1, 250, 299, 120};
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
    int ok = cpu->score(cpu, ids, cu, 5, gpos, pre, rc, &e) == 0;
    CHECK(ok, "shared: cpu: %s", e.msg);
    if (ok) {
        ok = gpu->score(gpu, ids, cu, 5, gpos, pre, rg, &e) == 0;
        CHECK(ok, "shared: cuda: %s", e.msg);
    }
    if (ok) {
        CHECK(rg[1].n_tokens == 0 && rc[1].n_tokens == 0, "prefix segment has no head");
        compare("shared standalone", &rg[0], &rc[0], 1);
        compare("shared continuations", &rg[2], &rc[2], 3);
    }
    free(ids);
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
    armo_err e;
    int rc = armo_write_random_model(dir, &s, &e);
    CHECK(rc == 0, "medium model: %s", e.msg);
    if (rc) return;
    armo_model m;
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
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
        run_both("medium", gpu, cpu, ids, cu, nseq, gpos, nseq);
        run_both("medium (one by one)", gpu, cpu, ids, cu, nseq, gpos, 1);
        test_shared(gpu, cpu, s.vocab);
    }
    armo_backend_close(gpu);
    armo_backend_close(cpu);
    armo_model_close(&m);
    free(ids);
}

int main(void) {
    if (armo_cuda_device_count() <= 0) {
        printf("test_engine: no CUDA device: skipped\n");
        return 77;
    }
    armo_backend_register_cuda(armo_cuda_backend_create, armo_cuda_device_count);
    glob_t g;
    char pat[2048];
    snprintf(pat, sizeof pat, "%s/tests/fixtures/*.golden.json", ARMO_SOURCE_DIR);
    CHECK(glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0, "no golden fixtures under %s", pat);
    for (size_t i = 0; i < g.gl_pathc; i++) test_fixture(g.gl_pathv[i]);
    globfree(&g);
    test_medium();
    return test_finish("test_engine");
}
