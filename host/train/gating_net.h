/* gating_net.h — the gating MLP's parameters, forward, backward and AdamW
 * step on a batch (gating.h describes the network and the loss).  All
 * parameters live in one float vector (layer 0 weight, bias, layer 1 …,
 * logit_scale last) so that the optimizer is one loop; products go
 * through cblas_sgemm. */
#ifndef ARMO_TRAIN_GATING_NET_H
#define ARMO_TRAIN_GATING_NET_H

#include <stdint.h>

#include "base/errors.h"

#define ARMO_GNET_MAX_LAYERS 8

typedef struct {
    int nl;                      /* layers: n_hidden + 1 */
    int dims[ARMO_GNET_MAX_LAYERS + 1]; /* dims[0] = H, ..., dims[nl] = K */
    float temperature, dropout;
    float keep_scale;            /* the last forward's dropout scale (1: none) */
    int64_t np;                  /* parameters */
    float *theta, *grad, *m, *v; /* [np] each */
    int64_t w_off[ARMO_GNET_MAX_LAYERS], b_off[ARMO_GNET_MAX_LAYERS];
    int adam_t;
    /* batch buffers, for up to cap rows */
    int cap;
    float *act[ARMO_GNET_MAX_LAYERS + 1]; /* act[0] = input, act[l] = hidden l, act[nl] = logits */
    float *dact, *dtmp, *gate, *score;
} armo_gnet;

int armo_gnet_init(armo_gnet *n, int H, int G, int n_hidden, int K, float temperature,
                   float dropout, int cap, armo_err *e);
void armo_gnet_free(armo_gnet *n);
/* PyTorch's default Linear init from split.h's stream (seed), logit_scale 1. */
void armo_gnet_random(armo_gnet *n, uint64_t seed);
float *armo_gnet_w(armo_gnet *n, int l);
float *armo_gnet_b(armo_gnet *n, int l);
float *armo_gnet_logit_scale(armo_gnet *n);

/* Forward on rows x[B, H] (row-major): n->gate [B, K] and, with d [B, K],
 * n->score[b] = gate_b · d_b.  drop_seed: 0 = no dropout (evaluation),
 * else dropout masks from that stream. */
void armo_gnet_forward(armo_gnet *n, const float *x, int B, const float *d, uint64_t drop_seed);
/* After a forward with d: the mean Bradley–Terry loss softplus(−score), its
 * gradient into n->grad. */
double armo_gnet_backward(armo_gnet *n, int B, const float *d);
/* One AdamW update of theta with n->grad at learning rate lr. */
void armo_gnet_adamw(armo_gnet *n, double lr, double weight_decay);

#endif
