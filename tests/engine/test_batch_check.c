/* test_batch_check.c — armo_batch_check, the packed-batch check both
 * backends run before computing anything (host/engine/batch_check.h).
 *
 * A hand-made config (vocab 100, 16 positions, ArmoRM or single head) and
 * small batches: a valid one with its expansion, the empty batch, then each
 * refusal with the sequence it must name — the layout (cu_seqlens[0],
 * empty segments) before anything derived from it, prefix_of, ids outside
 * the vocabulary, a sequence longer than max_position_embeddings counted
 * with its shared prefix, gating positions (required for ArmoRM, ignored for
 * a prefix segment and for a single-head RM).  The CPU backend's golden
 * tests and the emulated CUDA engine test reach the same function through
 * each backend's score call. */
#include <stdint.h>
#include <string.h>

#include "host/engine/batch_check.h"
#include "tests/util/test_util.h"

static armo_config config(armo_arch arch) {
    armo_config c;
    memset(&c, 0, sizeof c);
    c.arch = arch;
    c.vocab_size = 100;
    c.max_position_embeddings = 16;
    return c;
}

/* Runs the check; returns its status and leaves the message in msg. */
static int run(const armo_config *c, const int32_t *ids, const int32_t *cu, int nseq,
               const int32_t *gpos, const int32_t *prefix_of, armo_expansion *x, char *msg) {
    armo_err e;
    e.msg[0] = 0;
    int rc = armo_batch_check(c, ids, cu, nseq, gpos, prefix_of, x, &e);
    strcpy(msg, e.msg);
    return rc;
}

static void test_valid(void) {
    armo_config c = config(ARMO_ARCH_ARMORM);
    const int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int32_t cu[4] = {0, 4, 6, 9};
    const int32_t gpos[3] = {0, 1, 2};   /* shared: segment 2 continues 0, 7 long */
    const int32_t prefix_of[3] = {-1, -1, 0};
    armo_expansion x;
    char msg[ARMO_ERR_LEN];
    CHECK(run(&c, ids, cu, 3, gpos, NULL, &x, msg) == 0 && x.identity && x.full_len[2] == 3,
          "valid unshared batch: %s", msg);
    armo_expansion_free(&x);
    CHECK(run(&c, ids, cu, 3, gpos, prefix_of, &x, msg) == 0 && !x.identity &&
              x.full_len[2] == 7 && x.is_prefix[0] && x.pos[6] == 4,
          "valid shared batch: %s", msg);
    armo_expansion_free(&x);
    CHECK(run(&c, NULL, NULL, 0, NULL, NULL, &x, msg) == 0 && x.n_unique == 0 && !x.pos,
          "the empty batch is valid and builds nothing: %s", msg);
    armo_expansion_free(&x);
}

static void test_refusals(void) {
    armo_config c = config(ARMO_ARCH_ARMORM);
    int32_t ids[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    armo_expansion x;
    char msg[ARMO_ERR_LEN];
    const int32_t gpos[3] = {0, 0, 0};
    const int32_t cu_bad0[3] = {1, 4, 6};
    CHECK(run(&c, ids, cu_bad0, 2, gpos, NULL, &x, msg) < 0 && test_contains(msg, "cu_seqlens[0]"),
          "cu_seqlens[0] != 0: '%s'", msg);
    const int32_t cu_empty[4] = {0, 4, 4, 6};
    CHECK(run(&c, ids, cu_empty, 3, gpos, NULL, &x, msg) < 0 &&
              test_contains(msg, "sequence 1 is empty"),
          "empty segment: '%s'", msg);
    CHECK(run(&c, ids, cu_empty, -1, gpos, NULL, &x, msg) < 0 && test_contains(msg, "negative"),
          "negative count: '%s'", msg);
    CHECK(run(&c, NULL, cu_empty, 1, gpos, NULL, &x, msg) < 0 && test_contains(msg, "no token ids"),
          "no ids: '%s'", msg);
    const int32_t cu[3] = {0, 4, 6};
    const int32_t bad_prefix[2] = {1, -1}; /* a later segment as prefix */
    CHECK(run(&c, ids, cu, 2, gpos, bad_prefix, &x, msg) < 0 && test_contains(msg, "prefix_of"),
          "prefix_of pointing forward: '%s'", msg);
    ids[5] = 100;
    CHECK(run(&c, ids, cu, 2, gpos, NULL, &x, msg) < 0 &&
              test_contains(msg, "sequence 1: token 100 (position 1)"),
          "id == vocab_size: '%s'", msg);
    ids[5] = -1;
    CHECK(run(&c, ids, cu, 2, gpos, NULL, &x, msg) < 0 &&
              test_contains(msg, "sequence 1: token -1"),
          "negative id: '%s'", msg);
    ids[5] = 6;
    /* 10 + 7 tokens: each fits alone, but the continuation is 17 long with its prefix */
    const int32_t cu_long[3] = {0, 10, 17};
    const int32_t prefix_long[2] = {-1, 0};
    const int32_t gpos_long[2] = {0, 3};
    CHECK(run(&c, ids, cu_long, 2, gpos_long, NULL, &x, msg) == 0, "17 tokens in two: %s", msg);
    armo_expansion_free(&x);
    CHECK(run(&c, ids, cu_long, 2, gpos_long, prefix_long, &x, msg) < 0 &&
              test_contains(msg, "sequence 1 has 17 tokens"),
          "the prefix counts toward the length: '%s'", msg);
    const int32_t gpos_out[2] = {0, 2};
    CHECK(run(&c, ids, cu, 2, gpos_out, NULL, &x, msg) < 0 &&
              test_contains(msg, "sequence 1: gating position 2"),
          "gating position == length: '%s'", msg);
    CHECK(run(&c, ids, cu, 2, NULL, NULL, &x, msg) < 0 && test_contains(msg, "gating_pos is NULL"),
          "ArmoRM without gating positions: '%s'", msg);
    /* a prefix segment gets no head: its gating position is not read */
    const int32_t gpos_prefix[2] = {-7, 5};
    const int32_t prefix_ok[2] = {-1, 0};
    CHECK(run(&c, ids, cu, 2, gpos_prefix, prefix_ok, &x, msg) == 0,
          "a prefix segment's gating position is ignored: %s", msg);
    armo_expansion_free(&x);
    armo_config s = config(ARMO_ARCH_SEQCLS);
    CHECK(run(&s, ids, cu, 2, NULL, NULL, &x, msg) == 0, "single head needs no gating: %s", msg);
    armo_expansion_free(&x);
}

int main(void) {
    test_valid();
    test_refusals();
    return test_finish("test_batch_check");
}
