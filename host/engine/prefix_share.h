/* prefix_share.h — prompt-prefix sharing for pairs and best-of-N.
 *
 * A batch may hold a prefix segment (the shared prompt, tokenized once) and
 * continuation segments (each response) that extend it: prefix_of[s] = p
 * says that segment s continues segment p.  The decoder's GEMMs, norms and
 * MLP then run once per unique token; only attention needs the prefix's keys
 * and values next to each continuation's own.
 *
 * The CPU backend does that with one trick, built here on the host: an
 * *expanded* packed layout in which every continuation appears as the full
 * sequence [prefix rows ; own rows] (and a standalone segment as itself).
 * Per layer: gather q, k, v rows into the expanded layout, run the ordinary
 * causal varlen attention on it, gather the output rows back.  The prefix's
 * own query rows are attended once per continuation (identical results; the
 * first copy is kept).  The CUDA backend no longer expands (issue 20): its
 * attention kernels take prefix_of and let a continuation's rows attend the
 * prefix's keys where they are; it still uses pos, full_len, is_prefix and
 * the expansion's size checks from here.  RoPE positions of a continuation
 * start at its prefix's length, so every row sees exactly what it would see
 * in the unshared sequence. */
#ifndef ARMO_PREFIX_SHARE_H
#define ARMO_PREFIX_SHARE_H

#include <stdint.h>

#include "base/errors.h"

typedef struct {
    int n_unique;                /* tokens of the packed batch (cu_seqlens[nseg]) */
    int n_exp;                   /* rows of the expanded layout */
    int nseq_exp;                /* sequences in the expanded layout */
    int max_len_exp;             /* longest expanded sequence */
    int identity;                /* 1: no segment has a prefix; the layouts coincide */
    int32_t *exp_rows;           /* [n_exp]: unique row feeding expanded row e */
    int32_t *back_rows;          /* [n_unique]: expanded row holding unique row u's output */
    int32_t *cu_exp;             /* [nseq_exp + 1] */
    int32_t *pos;                /* [n_unique]: RoPE position of each unique row */
    int32_t *full_len;           /* [nseg]: length of the whole sequence a segment ends */
    int32_t *is_prefix;          /* [nseg]: 1 if some segment continues it (it gets no head) */
} armo_expansion;

/* Builds the layouts for nseg segments (cu_seqlens[nseg+1]).  prefix_of may
 * be NULL (no sharing).  Rules, each checked: prefix_of[s] is -1 or an
 * earlier segment p whose own prefix_of is -1 (one level); continuations are
 * non-empty. */
int armo_expansion_build(armo_expansion *x, const int32_t *cu_seqlens, int nseg,
                         const int32_t *prefix_of, armo_err *e);
void armo_expansion_free(armo_expansion *x);

/* The unique row of position `pos_in_full` (0-based in the whole sequence
 * prefix + own) of segment s. */
int32_t armo_expansion_row(const int32_t *cu_seqlens, const int32_t *prefix_of, int s,
                           int pos_in_full);

#endif
