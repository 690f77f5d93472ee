/* random_armorm.h — what the engine tests of tests/cuda/ share: a random
 * ArmoRM written and opened in one step (weights/random_model.h; the test
 * names the model in its failure messages), the small shape most of them
 * use, and the two norms their bf16-vs-fp32 bounds are made of (the
 * relative L2 error of a vector, and a vector's L2 norm: DESIGN §5 bounds
 * an ArmoRM score by ‖rewards‖·‖coefficients‖).  Header only: each test
 * links the library it needs anyway. */
#ifndef ARMO_TEST_RANDOM_ARMORM_H
#define ARMO_TEST_RANDOM_ARMORM_H

#include <math.h>
#include <stdint.h>

#include "tests/util/test_util.h"
#include "weights/model.h"
#include "weights/random_model.h"

/* ‖a − b‖ / ‖b‖ (‖a − b‖ when b is 0) */
static inline double test_rel_l2(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ‖a‖ */
static inline double test_norm2(const float *a, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * a[i];
    return sqrt(s);
}

/* The small ArmoRM of the engine tests: hidden 128, 2 heads (1 KV head) of
 * 64, intermediate 256, vocabulary 512, gating hidden 64. */
static inline armo_random_spec test_small_armorm_spec(int layers, uint64_t seed) {
    armo_random_spec s = armo_random_spec_armorm(layers, seed);
    s.hidden = 128;
    s.heads = 2;
    s.kv_heads = 1;
    s.head_dim = 64;
    s.intermediate = 256;
    s.vocab = 512;
    s.gating_hidden = 64;
    return s;
}

/* Writes the random model s into dir and opens it as *m: 0, or -1 after a
 * failed CHECK naming `what`. */
static inline int test_open_random_model(const char *dir, const armo_random_spec *s,
                                         const char *what, armo_model *m) {
    armo_err e;
    if (armo_write_random_model(dir, s, &e) || armo_model_open(dir, m, &e)) {
        CHECK(0, "%s model: %s", what, e.msg);
        return -1;
    }
    return 0;
}

#endif
