/* rope_table.h — the RoPE frequency table of a config (DESIGN §2).
 *
 * inv_freq[i] = theta^(-2i/head_dim) for i < head_dim/2, rescaled as
 * transformers' "llama3" rope initialisation does (factor, low/high
 * frequency factors, original context) when the config says so, in the fp32
 * order of operations torch uses.  Both backends apply RoPE from this one
 * table (the CUDA backend uploads it), so the scaling is written once. */
#ifndef ARMO_ROPE_TABLE_H
#define ARMO_ROPE_TABLE_H

#include "weights/config.h"

/* Fills inv_freq[0 .. cfg->head_dim / 2). */
void armo_rope_inv_freq(const armo_config *cfg, float *inv_freq);

#endif
