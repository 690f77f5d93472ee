/* model.h — the tensor map: a checkpoint directory bound to the model
 * description (config + typed views of every weight the forward reads).
 *
 * armo_model_open reads config.json, opens the safetensors checkpoint, and
 * looks up every tensor the architecture needs, checking its shape against
 * the config and its dtype (BF16 / F16 / F32).  A missing tensor or a shape
 * that disagrees with the config is an error naming both.  Weights stay in
 * the mmap: backends convert or upload them as they see fit. */
#ifndef ARMO_MODEL_H
#define ARMO_MODEL_H

#include <stdint.h>

#include "base/errors.h"
#include "weights/config.h"
#include "weights/head_params.h"
#include "weights/safetensors.h"

/* A typed 2-D (or 1-D: cols == 1... see below) view of one tensor.
 * Matrices are [rows, cols] row-major as stored (Linear weights: [out, in]).
 * Vectors have rows == n and cols == 1. */
typedef struct {
    const char *name;            /* points at the st_tensor's name */
    armo_dtype dtype;
    const void *data;
    int64_t rows, cols;
} armo_weight;

typedef struct {
    armo_weight attn_norm;       /* input_layernorm [H] */
    armo_weight wq, wk, wv, wo;  /* [nh*hd, H], [nkv*hd, H], [nkv*hd, H], [H, nh*hd] */
    armo_weight mlp_norm;        /* post_attention_layernorm [H] */
    armo_weight wgate, wup;      /* [I, H] */
    armo_weight wdown;           /* [H, I] */
} armo_layer_weights;

typedef struct {
    armo_config cfg;
    st_checkpoint ck;
    char dir[4096];
    /* the backbone's tensor-name prefix: "model." (every head architecture
     * and LlamaForCausalLM), "" for a bare LlamaModel saved on its own */
    char prefix[8];

    armo_weight embed;           /* [vocab, H] */
    armo_weight final_norm;      /* [H] */
    armo_layer_weights *layers;  /* cfg.num_layers */

    /* ArmoRM head */
    armo_weight regression;      /* [K, H] */
    int gating_nlayers;          /* gating_n_hidden + 1 */
    armo_weight gating_w[ARMO_MAX_GATING_LAYERS];
    armo_weight gating_b[ARMO_MAX_GATING_LAYERS];
    armo_weight logit_scale;     /* [1] */
    armo_weight transform;       /* [K, K] */

    /* sequence classification head */
    armo_weight score;           /* [num_labels, H] */
} armo_model;

int armo_model_open(const char *dir, armo_model *m, armo_err *e);
void armo_model_close(armo_model *m);

/* The ArmoRM head's sizes and scalars as this checkpoint holds them:
 * hidden, k, nlayers, dims, temperature and logit_scale (read from its
 * tensor), each checked against what a backend indexes by (K and the gating
 * depth within armo's limits, each gating layer's input the previous one's
 * output, the last one K wide, regression [K, H], transform [K, K], T > 0).
 * The weight pointers are left NULL: each backend sets them to its own fp32
 * copies of regression, gating_w/b and transform.  Errors name the tensor. */
int armo_model_head_params(const armo_model *m, armo_head_params *h, armo_err *e);

/* Parameter count and bytes of the tensors the forward uses. */
int64_t armo_model_param_count(const armo_model *m);

#endif
