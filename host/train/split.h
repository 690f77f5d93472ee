/* split.h — the seeded train / validation split of armo train.
 *
 * Row i (0-based, over every row of the embeddings, before any row is
 * dropped for a missing label) is a validation row when
 * u_i < val_frac, u_i = (splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15) >> 11) * 2^-53:
 * one line of integer arithmetic that the Python golden generators
 * (tools/gen_train_golden.py) repeat exactly, and a split that does not
 * move when rows are appended. */
#ifndef ARMO_TRAIN_SPLIT_H
#define ARMO_TRAIN_SPLIT_H

#include <stdint.h>

static inline uint64_t armo_splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1) from (seed, i). */
static inline double armo_split_u(uint64_t seed, uint64_t i) {
    return (double)(armo_splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15ull) >> 11) *
           (1.0 / 9007199254740992.0);
}

static inline int armo_split_is_val(uint64_t seed, uint64_t i, double val_frac) {
    return armo_split_u(seed, i) < val_frac;
}

#endif
