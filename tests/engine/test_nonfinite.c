/* test_nonfinite.c — the per-sequence non-finite status of armo_result
 * (backend.h) as the CPU backend fills it (issue 16, item 1).
 *
 * Poisoned copies of the bundled tiny models are written at test time (the
 * fixture's files copied, one element of one tensor overwritten in place):
 * NaN in the regression layer (-> reward), in the last gating bias (->
 * gating), in the reward transform (-> coefficient), +Inf in the final norm
 * (-> backbone hidden state at the last token, dimension 3), NaN in one
 * embedding row (-> only the sequences holding that token: the others stay
 * finite); the sharded fixture (a tensor in another shard); the single-head
 * RM (score weight -> label; final norm -> hidden state).  Each is scored
 * as a plain batch of three sequences (clean; the poisoned token after the
 * gating position; before it) and as a shared-prefix batch (prefix,
 * clean continuation, continuation with the poisoned token), and every
 * sequence's status is checked: which quantity, which element, NaN or Inf.
 * The embedding case is also scored as a batch whose poisoned sequence
 * starts on a 64-token boundary after two clean ones, so that no attention
 * tile of the CUDA flash kernel holds both (see tests/cuda/test_nonfinite.c
 * on the leak between sequences that share one).  Also
 * armo_result_check_finite's order on hand-made rows (the gating row, the
 * score, the labels).
 *
 * tests/cuda/test_nonfinite.c includes this file (ARMO_NONFINITE_NO_MAIN) to
 * run the same cases on the CUDA backend. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/engine/backend_open.h"
#include "tests/util/poisoned_model.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"
#include "weights/model.h"
#include "weights/safetensors.h"

/* ---- poisoned copies of a bundled model ---------------------------------------- */

typedef struct {
    const char *tensor;          /* NULL: none */
    int64_t index;               /* < 0: row -(index+1) of the embedding, column 0 */
    float value;
} nf_poison_spec;

/* dst: a copy of the bundled model `fixture` with p applied; 0 / -1. */
static int nf_make_model(const char *fixture, const char *dst, const nf_poison_spec *p) {
    char src[2048];
    snprintf(src, sizeof src, "%s/%s", ARMO_MODELS_DIR, fixture);
    if (test_copy_model(src, dst)) return -1;
    if (!p->tensor) return 0;
    int64_t index = p->index;
    if (index < 0) { /* an embedding row: its hidden size from the config */
        armo_model m;
        armo_err e;
        if (armo_model_open(src, &m, &e)) return -1;
        index = (-index - 1) * (int64_t)m.cfg.hidden_size;
        armo_model_close(&m);
    }
    return test_poison_tensor(dst, p->tensor, index, p->value);
}

/* ---- the batches ----------------------------------------------------------------- */

/* the golden case "single_turn" of the tiny fixtures: 25 tokens, gating at 12 */
static const int32_t NF_IDS[25] = {128000, 128006, 882, 128007, 271, 3923, 374, 279, 6864,
                                   315, 9822, 30, 128009, 128006, 78191, 128007, 271, 791,
                                   6864, 315, 9822, 374, 12366, 13, 128009};
#define NF_LEN 25
#define NF_GPOS 12
#define NF_TOKEN 51313 /* the poisoned embedding row */

/* Plain batch: [clean, NF_TOKEN at 20 (after the gating position), NF_TOKEN
 * at 5 (before it)]; shared batch: [prefix 0..13, clean continuation,
 * continuation with NF_TOKEN at 20].  0 / -1 (message on stderr). */
static int nf_score(armo_backend *b, int armorm, armo_result plain[3], armo_result shared[3]) {
    int32_t ids[3 * NF_LEN], cu[4] = {0, NF_LEN, 2 * NF_LEN, 3 * NF_LEN};
    int32_t gpos[3] = {NF_GPOS, NF_GPOS, NF_GPOS};
    for (int s = 0; s < 3; s++) memcpy(ids + s * NF_LEN, NF_IDS, sizeof NF_IDS);
    ids[NF_LEN + 20] = NF_TOKEN;
    ids[2 * NF_LEN + 5] = NF_TOKEN;
    armo_err e;
    if (b->score(b, ids, cu, 3, armorm ? gpos : NULL, NULL, plain, &e)) {
        fprintf(stderr, "%s plain batch: %s\n", b->name, e.msg);
        return -1;
    }
    const int P = 13, C = NF_LEN - P;
    int32_t sids[13 + 2 * 12], scu[4] = {0, P, P + C, P + 2 * C}, pre[3] = {-1, 0, 0};
    memcpy(sids, NF_IDS, sizeof(int32_t) * P);
    memcpy(sids + P, NF_IDS + P, sizeof(int32_t) * C);
    memcpy(sids + P + C, NF_IDS + P, sizeof(int32_t) * C);
    sids[P + C + (20 - P)] = NF_TOKEN;
    int32_t sgpos[3] = {-1, NF_GPOS, NF_GPOS};
    if (b->score(b, sids, scu, 3, armorm ? sgpos : NULL, pre, shared, &e)) {
        fprintf(stderr, "%s shared batch: %s\n", b->name, e.msg);
        return -1;
    }
    return 0;
}

/* [clean 25 tokens, clean 39, NF_TOKEN at 20 of 25 starting at token 64]:
 * the poisoned sequence shares no 64-token tile with the clean ones. */
static int nf_score_aligned(armo_backend *b, int armorm, armo_result r[3]) {
    int32_t ids[64 + NF_LEN], cu[4] = {0, NF_LEN, 64, 64 + NF_LEN};
    int32_t gpos[3] = {NF_GPOS, NF_GPOS, NF_GPOS};
    memcpy(ids, NF_IDS, sizeof NF_IDS);
    memcpy(ids + NF_LEN, NF_IDS, sizeof NF_IDS);
    for (int i = 2 * NF_LEN; i < 64; i++) ids[i] = NF_IDS[i - 2 * NF_LEN];
    memcpy(ids + 64, NF_IDS, sizeof NF_IDS);
    ids[64 + 20] = NF_TOKEN;
    armo_err e;
    if (b->score(b, ids, cu, 3, armorm ? gpos : NULL, NULL, r, &e)) {
        fprintf(stderr, "%s aligned batch: %s\n", b->name, e.msg);
        return -1;
    }
    return 0;
}

/* ---- the cases ------------------------------------------------------------------- */

#define NF_ANY -100              /* index not checked */
#define NF_NONE ARMO_NF_NONE
#define NF_HL ARMO_NF_HIDDEN_LAST

typedef struct {
    const char *name, *fixture;
    nf_poison_spec poison;
    armo_nonfinite_what plain[3], shared[3]; /* shared[0]: the prefix (no head) */
    int index;                   /* expected nonfinite_index of the affected sequences */
    int inf;                     /* 1: the value is ±Inf, 0: NaN, -1: not checked */
    int cross_seq;               /* the NaN is in some sequences' activations only */
} nf_case;

/* Set by the CUDA test: a clean sequence of a cross_seq case that comes
 * out non-finite from a batch it shares with a poisoned one is counted in
 * g_nf_leaks and reported, not failed (the flash attention leak). */
static int g_nf_tolerate_leak, g_nf_leaks;

static const nf_case NF_CASES[] = {
    {"clean", "tiny-armorm", {NULL, 0, 0}, {NF_NONE, NF_NONE, NF_NONE},
     {NF_NONE, NF_NONE, NF_NONE}, NF_ANY, -1, 0},
    {"regression NaN", "tiny-armorm", {"regression_layer.weight", 7, NAN},
     {ARMO_NF_REWARD, ARMO_NF_REWARD, ARMO_NF_REWARD}, {NF_NONE, ARMO_NF_REWARD, ARMO_NF_REWARD},
     0, 0, 0},
    {"gating bias NaN", "tiny-armorm", {"gating.layers.3.bias", 5, NAN},
     {ARMO_NF_GATING, ARMO_NF_GATING, ARMO_NF_GATING},
     {NF_NONE, ARMO_NF_GATING, ARMO_NF_GATING}, NF_ANY, -1, 0},
    {"transform NaN", "tiny-armorm", {"reward_transform_matrix", 2 * 19 + 3, NAN},
     {ARMO_NF_COEFFICIENT, ARMO_NF_COEFFICIENT, ARMO_NF_COEFFICIENT},
     {NF_NONE, ARMO_NF_COEFFICIENT, ARMO_NF_COEFFICIENT}, NF_ANY, 0, 0},
    {"final norm Inf", "tiny-armorm", {"model.norm.weight", 3, INFINITY},
     {NF_HL, NF_HL, NF_HL}, {NF_NONE, NF_HL, NF_HL}, 3, -1, 0},
    {"embedding row NaN", "tiny-armorm", {"model.embed_tokens.weight", -(NF_TOKEN + 1), NAN},
     {NF_NONE, NF_HL, NF_HL}, {NF_NONE, NF_NONE, NF_HL}, NF_ANY, -1, 1},
    {"sharded regression NaN", "tiny-armorm-sharded", {"regression_layer.weight", 7, NAN},
     {ARMO_NF_REWARD, ARMO_NF_REWARD, ARMO_NF_REWARD}, {NF_NONE, ARMO_NF_REWARD, ARMO_NF_REWARD},
     0, 0, 0},
    {"seqcls clean", "tiny-rm-llama3", {NULL, 0, 0}, {NF_NONE, NF_NONE, NF_NONE},
     {NF_NONE, NF_NONE, NF_NONE}, NF_ANY, -1, 0},
    {"seqcls score NaN", "tiny-rm-llama3", {"score.weight", 9, NAN},
     {ARMO_NF_LABEL, ARMO_NF_LABEL, ARMO_NF_LABEL}, {NF_NONE, ARMO_NF_LABEL, ARMO_NF_LABEL},
     0, 0, 0},
    {"seqcls final norm Inf", "tiny-rm-llama3", {"model.norm.weight", 3, INFINITY},
     {NF_HL, NF_HL, NF_HL}, {NF_NONE, NF_HL, NF_HL}, 3, -1, 0},
};
#define NF_NCASES ((int)(sizeof NF_CASES / sizeof NF_CASES[0]))

/* r's status against what the case expects of it. */
static void nf_check_one(const char *backend, const nf_case *c, const char *batch, int s,
                         const armo_result *r, armo_nonfinite_what want) {
    if (want == NF_NONE && r->nonfinite != NF_NONE && c->cross_seq && g_nf_tolerate_leak &&
        strcmp(batch, "aligned")) {
        printf("KNOWN ISSUE %s, %s, %s batch, sequence %d: a clean sequence comes out "
               "non-finite (status %d) from a batch it shares with a poisoned one\n",
               backend, c->name, batch, s, (int)r->nonfinite);
        g_nf_leaks++;
        return;
    }
    CHECK(r->nonfinite == want, "%s, %s, %s batch, sequence %d: nonfinite %d, expected %d",
          backend, c->name, batch, s, (int)r->nonfinite, (int)want);
    if (want == NF_NONE) {
        if (r->n_tokens > 0) /* a finite result is finite everywhere */
            CHECK(!armo_nonfinite_f32(r->score), "%s, %s, %s batch, sequence %d: score %g with "
                  "no non-finite status", backend, c->name, batch, s, r->score);
        return;
    }
    if (c->index != NF_ANY)
        CHECK(r->nonfinite_index == c->index, "%s, %s, %s batch, sequence %d: index %d, expected "
              "%d", backend, c->name, batch, s, r->nonfinite_index, c->index);
    CHECK(armo_nonfinite_f32(r->nonfinite_value), "%s, %s: the value %g is finite", backend,
          c->name, r->nonfinite_value);
    if (c->inf == 0)
        CHECK(isnan(r->nonfinite_value), "%s, %s, sequence %d: %g, expected NaN", backend,
              c->name, s, r->nonfinite_value);
    if (c->inf == 1)
        CHECK(isinf(r->nonfinite_value), "%s, %s, sequence %d: %g, expected Inf", backend,
              c->name, s, r->nonfinite_value);
}

/* Runs case c on the backend `device` ("cpu" / "cuda"); out (may be NULL)
 * receives the six results.  Returns 0, -1 when the case could not run. */
static int nf_run_case(const char *device, const nf_case *c, armo_result out[6]) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tmp_nonfinite_%s", ARMO_BINARY_DIR, c->fixture);
    if (nf_make_model(c->fixture, dir, &c->poison)) {
        CHECK(0, "%s: could not write the poisoned model %s", c->name, dir);
        return -1;
    }
    armo_model m;
    armo_err e;
    if (armo_model_open(dir, &m, &e)) {
        CHECK(0, "%s: %s", c->name, e.msg);
        return -1;
    }
    armo_backend_opts o = {.threads = 2, .max_batch_tokens = 256, .max_seqs = 8, .quiet = 1};
    armo_backend *b = armo_backend_open(&m, device, &o, &e);
    CHECK(b != NULL, "%s: %s backend: %s", c->name, device, e.msg);
    armo_result r[6];
    int rc = -1;
    if (b && nf_score(b, m.cfg.arch == ARMO_ARCH_ARMORM, r, r + 3) == 0) {
        for (int s = 0; s < 3; s++) {
            nf_check_one(device, c, "plain", s, &r[s], c->plain[s]);
            nf_check_one(device, c, "shared", s, &r[3 + s], c->shared[s]);
        }
        CHECK(r[3].n_tokens == 0, "%s: the shared prefix has a head", c->name);
        if (out) memcpy(out, r, sizeof r);
        rc = 0;
        armo_result a[3];
        const armo_nonfinite_what want[3] = {NF_NONE, NF_NONE, NF_HL};
        if (c->cross_seq && nf_score_aligned(b, m.cfg.arch == ARMO_ARCH_ARMORM, a) == 0)
            for (int s = 0; s < 3; s++) nf_check_one(device, c, "aligned", s, &a[s], want[s]);
        else if (c->cross_seq)
            CHECK(0, "%s: the aligned batch failed on %s", c->name, device);
    } else {
        CHECK(0, "%s: scoring on %s failed", c->name, device);
    }
    armo_backend_close(b);
    armo_model_close(&m);
    return rc;
}

#ifndef ARMO_NONFINITE_NO_MAIN /* tests/cuda/test_nonfinite.c has its own */
/* armo_result_check_finite on hand-made rows: the order of backend.h. */
static void nf_test_order(void) {
    armo_result r;
    memset(&r, 0, sizeof r);
    float hl[8] = {0}, hg[8] = {0};
    r.n_objectives = 4;
    armo_result_check_finite(&r, hl, hg, 8);
    CHECK(r.nonfinite == ARMO_NF_NONE, "all zero: %d", (int)r.nonfinite);
    hg[4] = NAN;
    r.rewards[1] = INFINITY;
    armo_result_check_finite(&r, hl, hg, 8);
    CHECK(r.nonfinite == ARMO_NF_HIDDEN_GATING && r.nonfinite_index == 4,
          "the gating row before the rewards: %d [%d]", (int)r.nonfinite, r.nonfinite_index);
    hl[7] = -INFINITY;
    armo_result_check_finite(&r, hl, hg, 8);
    CHECK(r.nonfinite == ARMO_NF_HIDDEN_LAST && r.nonfinite_index == 7 &&
              isinf(r.nonfinite_value) && r.nonfinite_value < 0,
          "the last row first: %d [%d] %g", (int)r.nonfinite, r.nonfinite_index,
          r.nonfinite_value);
    armo_result_check_finite(&r, NULL, NULL, 8);
    CHECK(r.nonfinite == ARMO_NF_REWARD && r.nonfinite_index == 1, "no rows: reward [1]: %d [%d]",
          (int)r.nonfinite, r.nonfinite_index);
    r.rewards[1] = 0;
    r.score = NAN;
    armo_result_check_finite(&r, NULL, NULL, 8);
    CHECK(r.nonfinite == ARMO_NF_SCORE && r.nonfinite_index == -1, "score: %d [%d]",
          (int)r.nonfinite, r.nonfinite_index);
    memset(&r, 0, sizeof r);
    r.n_labels = 3;
    r.labels[2] = NAN;
    armo_result_check_finite(&r, hl + 0, NULL, 7); /* hl[0..7) finite */
    CHECK(r.nonfinite == ARMO_NF_LABEL && r.nonfinite_index == 2, "label [2]: %d [%d]",
          (int)r.nonfinite, r.nonfinite_index);
}

int main(void) {
    nf_test_order();
    for (int i = 0; i < NF_NCASES; i++) nf_run_case("cpu", &NF_CASES[i], NULL);
    return test_finish("test_nonfinite");
}
#endif
