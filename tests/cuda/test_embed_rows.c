/* test_embed_rows.c — the CUDA backend's answer to armo embed's hook
 * (backend.h hidden_out): the head's input rows of every sequence, h_last
 * then h_prompt, through the scheduler's packing (armo_score_groups) with a
 * pair's prompt prefix shared and without, against the CPU backend's rows
 * on the bundled tiny ArmoRM (the golden cases' input_ids).  bf16
 * activations: relative Frobenius error <= 3e-2 per sequence.  Label gpu;
 * exits 77 without a CUDA device; the ctest emu_embed_rows runs it on the
 * CPU emulator of the CUDA path. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda/cuda_backend.h"
#include "host/engine/backend_open.h"
#include "host/engine/scheduler.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"
#include "weights/model.h"

#define NSEQ 6

static double rel(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) num += (a[i] - b[i]) * (double)(a[i] - b[i]), den += (double)b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1e-30));
}

/* Scores the golden cases' sequences on backend b (pairs 4+5 as one group),
 * their head input rows into rows[s] (2 H floats). */
static int run(armo_backend *b, json_t *cases, const char *const *names, int share, int H,
               float **rows) {
    armo_seq seqs[NSEQ];
    memset(seqs, 0, sizeof seqs);
    for (int s = 0; s < NSEQ; s++) {
        json_t *c = NULL, *x;
        size_t i;
        json_array_foreach(cases, i, x) {
            if (!strcmp(json_string_value(json_object_get(x, "name")), names[s])) c = x;
        }
        if (!c) return -1;
        json_t *ids = json_object_get(c, "input_ids");
        seqs[s].len = (int)json_array_size(ids);
        seqs[s].ids = malloc(sizeof(int32_t) * (size_t)seqs[s].len);
        for (int k = 0; k < seqs[s].len; k++)
            seqs[s].ids[k] = (int32_t)json_integer_value(json_array_get(ids, (size_t)k));
        seqs[s].gating_pos = (int)json_integer_value(json_object_get(c, "gating_pos"));
        seqs[s].hidden = rows[s];
        for (int k = 0; k < 2 * H; k++) rows[s][k] = NAN;
    }
    armo_seq *p[NSEQ];
    for (int s = 0; s < NSEQ; s++) p[s] = &seqs[s];
    armo_seq_group g[NSEQ - 1] = {{&p[0], 1}, {&p[1], 1}, {&p[2], 1}, {&p[3], 1}, {&p[4], 2}};
    armo_sched_opts o = {.max_batch_tokens = 4096, .max_batch_seqs = 64, .share_prefix = share,
                         .min_shared_prefix = 4};
    armo_sched_stats st;
    memset(&st, 0, sizeof st);
    armo_err e;
    int rc = armo_score_groups(b, g, NSEQ - 1, &o, &st, &e);
    if (rc) fprintf(stderr, "score: %s\n", e.msg);
    for (int s = 0; s < NSEQ; s++) {
        if (seqs[s].error) fprintf(stderr, "seq %d: %s\n", s, seqs[s].error), rc = -1;
        free(seqs[s].ids);
        free(seqs[s].error);
    }
    return rc;
}

int main(void) {
    gpu_test_require_device();
    armo_backend_register_cuda(&armo_cuda_accel);
    char p[1024];
    snprintf(p, sizeof p, "%s/tests/fixtures/tiny-armorm.golden.json", ARMO_SOURCE_DIR);
    json_error_t je;
    json_t *g = json_load_file(p, 0, &je);
    CHECK(g != NULL, "%s", je.text);
    snprintf(p, sizeof p, "%s/tiny-armorm", ARMO_MODELS_DIR);
    armo_model m;
    armo_err e;
    int rc = armo_model_open(p, &m, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (!g || rc) return test_finish("test_embed_rows");
    armo_backend_opts bo = {.threads = 2, .quiet = 1, .max_batch_tokens = 4096, .max_seqs = 64};
    armo_backend *cpu = armo_backend_open(&m, "cpu", &bo, &e);
    armo_backend *cuda = armo_backend_open(&m, "cuda", &bo, &e);
    CHECK(cpu && cuda, "backends: %s", e.msg);
    CHECK(cuda && cuda->returns_hidden, "the CUDA backend returns hidden rows");
    const int H = m.cfg.hidden_size;
    const char *names[NSEQ] = {"single_turn", "multi_turn", "unicode", "random_pattern_mid",
                               "shared_prompt_r0", "shared_prompt_r1"};
    float *ref[NSEQ], *got[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        ref[s] = malloc(sizeof(float) * 2 * H);
        got[s] = malloc(sizeof(float) * 2 * H);
    }
    json_t *cases = json_object_get(g, "cases");
    for (int share = 0; cpu && cuda && share < 2; share++) {
        CHECK(run(cpu, cases, names, share, H, ref) == 0, "cpu run (share %d)", share);
        CHECK(run(cuda, cases, names, share, H, got) == 0, "cuda run (share %d)", share);
        for (int s = 0; s < NSEQ; s++) {
            double el = rel(got[s], ref[s], H), ep = rel(got[s] + H, ref[s] + H, H);
            printf("share %d %-20s h_last %.2e h_prompt %.2e\n", share, names[s], el, ep);
            CHECK(el <= 3e-2 && ep <= 3e-2, "share %d %s: h_last %g h_prompt %g", share,
                  names[s], el, ep);
        }
    }
    for (int s = 0; s < NSEQ; s++) free(ref[s]), free(got[s]);
    armo_backend_close(cpu);
    armo_backend_close(cuda);
    armo_model_close(&m);
    json_decref(g);
    return test_finish("test_embed_rows");
}
