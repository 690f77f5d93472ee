/* random_model.h — writes a random-weight checkpoint directory in the exact
 * Hugging Face layout (config.json + model.safetensors), from C.
 *
 * For the GPU engine tests (a "medium" model: hidden 1024, head_dim 128, GQA
 * 4:1) and for `armo bench` (ArmoRM-shaped, full width, fewer layers), so
 * neither needs Python or a download.  Weights are scaled so that every part
 * of the forward matters (activations O(1), gating softmax neither uniform
 * nor one-hot); backbone BF16, head F32 as in ArmoRM's checkpoint. */
#ifndef ARMO_RANDOM_MODEL_H
#define ARMO_RANDOM_MODEL_H

#include <stdint.h>

#include "base/errors.h"
#include "weights/config.h"

typedef struct {
    armo_arch arch;
    int hidden, layers, heads, kv_heads, head_dim, intermediate, vocab;
    int objectives, gating_hidden, gating_n_hidden; /* ArmoRM */
    int labels;                                      /* single-head RM */
    double rope_theta;
    int llama3_rope;             /* 1: rope_scaling llama3 (factor 8, 1, 4, 8192) */
    int max_positions;
    uint64_t seed;
} armo_random_spec;

/* A spec with ArmoRM-8B's widths (hidden 4096, 32/8 heads, head_dim 128,
 * intermediate 14336, vocab 128257, 19 objectives, gating 1024 x 3) and the
 * given number of layers. */
armo_random_spec armo_random_spec_armorm(int layers, uint64_t seed);

/* Creates dir if needed and writes config.json and model.safetensors. */
int armo_write_random_model(const char *dir, const armo_random_spec *s, armo_err *e);

#endif
