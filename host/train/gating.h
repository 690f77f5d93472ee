/* gating.h — `armo train gating`: stage 2 of the recipe, the gating MLP of
 * the reference architecture trained on preference pairs.
 *
 * Network (DESIGN §2, the reference GatingNetwork): n_hidden × (Linear →
 * hidden_dim, ReLU, dropout), Linear → K; gate = softmax(z / temperature) ·
 * logit_scale, logit_scale a learned scalar (init 1).  Input: h_prompt of the
 * pair's chosen sequence (the prompt is shared).  For each pair the
 * debiased reward difference d = (W h_last_chosen − W h_last_rejected) @ T
 * (the head directory's regression weights W and transform T — armo trains
 * on r @ T, the rewards the released head scores with), and the
 * Bradley–Terry loss softplus(−gate · d), mean over the batch.
 *
 * Training: AdamW (β 0.9 / 0.999, ε 1e-8, decoupled weight decay), the
 * learning rate on a cosine from lr to 0 over the steps (PyTorch's
 * CosineAnnealingLR stepped after each update), batches drawn with
 * replacement from the training pairs: slot b of step t takes training pair
 * floor(armo_split_u(seed ^ 0xB47C4, t·batch + b) · n_train) (split.h); the
 * split is split.h's rule on the pair rows.  Init: PyTorch's Linear default,
 * U(±1/√fan_in) for weights and biases from armo_split_u(seed ^ 0x1417, ·),
 * or loaded from a safetensors file (--init).  Matrix products: cblas_sgemm.
 *
 * Writes HEAD/gating.safetensors (gating.layers.{i}.weight [out, in],
 * gating.layers.{i}.bias [out], gating.logit_scale [1], F32) and
 * HEAD/gating.json (the hyperparameters, the loss of every step, the
 * validation accuracy at each report). */
#ifndef ARMO_TRAIN_GATING_H
#define ARMO_TRAIN_GATING_H

#include <stdint.h>
#include <stdio.h>

#include "base/errors.h"

typedef struct {
    const char *pairs;           /* embeddings directory of pairs */
    const char *head_dir;        /* regression + debias in; gating out */
    const char *init;            /* initial parameters (safetensors), or NULL */
    int hidden_dim, n_hidden;    /* 1024, 3 */
    double dropout, temperature; /* 0.2, 10 */
    double lr, weight_decay;     /* 1e-3, 0 */
    int steps, batch;            /* 2000, 1024 */
    int eval_every;              /* validation accuracy every N steps (and at the end) */
    uint64_t seed;
    double val_frac;             /* 0.2 */
    int quiet;                   /* no progress lines */
} armo_gating_opts;

void armo_gating_defaults(armo_gating_opts *o);

/* Trains and writes the gating network; progress lines and a summary go
 * to `report`.  *val_acc (may be NULL): the final validation accuracy. */
int armo_train_gating(const armo_gating_opts *o, FILE *report, double *val_acc, armo_err *e);

#endif
