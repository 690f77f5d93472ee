/* batch_check.h — the one check of a packed batch that every backend runs
 * before it computes anything, so that bad input gets the same message, with
 * the sequence named, from the CPU and the CUDA backend alike.
 *
 * In order: the packed layout itself (cu_seqlens starts at 0, no empty
 * segment) before anything is derived from it; the prefix-sharing layout
 * (prefix_share.h, which checks prefix_of); then each sequence, at its full
 * length (a shared prefix included): no longer than max_position_embeddings,
 * every id in the vocabulary, and for ArmoRM a gating position inside the
 * sequence for each segment that gets a head. */
#ifndef ARMO_BATCH_CHECK_H
#define ARMO_BATCH_CHECK_H

#include <stdint.h>

#include "base/errors.h"
#include "host/engine/prefix_share.h"
#include "weights/config.h"

/* Checks the batch of backend.h's score call and builds its expansion into
 * x (armo_expansion_free it after use; x is empty and needs no free on
 * failure, or when nseq == 0, which is a valid batch with nothing to do).
 * Returns 0 / -1 with e naming the sequence. */
int armo_batch_check(const armo_config *cfg, const int32_t *ids, const int32_t *cu_seqlens,
                     int nseq, const int32_t *gating_pos, const int32_t *prefix_of,
                     armo_expansion *x, armo_err *e);

#endif
