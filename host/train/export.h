/* export.h — `armo train export`: a head directory (regression, debias,
 * gating) plus a backbone checkpoint into an ArmoRM checkpoint directory that
 * armo score (and the reference modeling code) loads:
 *
 *   config.json    the backbone's config with architectures
 *                  ["LlamaForRewardModelWithGating"], num_objectives,
 *                  gating_hidden_dim, gating_n_hidden, gating_temperature and
 *                  objective_names (the head's label columns)
 *   head.safetensors  regression_layer.weight [K, H], gating.layers.{i}.weight /
 *                  .bias, gating.logit_scale [1], reward_transform_matrix [K, K],
 *                  all F32 (as the reference keeps its head)
 *   the backbone   linked: its shard files symlinked when they name every tensor
 *                  "model.…" and hold no head tensor; otherwise (or copy)
 *                  backbone.safetensors, the backbone's tensors under "model."
 *                  names in their own dtypes (lm_head and any head dropped)
 *   model.safetensors.index.json   every tensor to its file
 *   tokenizer.json, tokenizer_config.json, special_tokens_map.json,
 *   generation_config.json        copied when the backbone has them */
#ifndef ARMO_TRAIN_EXPORT_H
#define ARMO_TRAIN_EXPORT_H

#include <stdio.h>

#include "base/errors.h"

typedef struct {
    const char *head_dir;
    const char *backbone;        /* checkpoint directory (any architecture armo loads) */
    const char *out_dir;         /* created; must not hold a checkpoint already */
    int copy;                    /* copy the backbone's tensors even when they could be linked */
} armo_export_opts;

int armo_train_export(const armo_export_opts *o, FILE *report, armo_err *e);

#endif
