/* batch_check.c — the packed-batch check both backends run (see
 * batch_check.h). */
#include "host/engine/batch_check.h"

#include <string.h>

static int check_layout(const int32_t *ids, const int32_t *cu_seqlens, int nseq, armo_err *e) {
    if (nseq < 0) return armo_err_set(e, "negative sequence count %d", nseq);
    if (nseq > 0 && (!ids || !cu_seqlens))
        return armo_err_set(e, "no token ids or cu_seqlens given for %d sequences", nseq);
    if (nseq > 0 && cu_seqlens[0] != 0)
        return armo_err_set(e, "cu_seqlens[0] is %d, must be 0", cu_seqlens[0]);
    for (int s = 0; s < nseq; s++)
        if (cu_seqlens[s + 1] <= cu_seqlens[s])
            return armo_err_set(e, "sequence %d is empty (cu_seqlens %d..%d)", s, cu_seqlens[s],
                                cu_seqlens[s + 1]);
    return 0;
}

static int check_sequences(const armo_config *cfg, const int32_t *ids, const int32_t *cu_seqlens,
                           int nseq, const int32_t *gating_pos, const armo_expansion *x,
                           armo_err *e) {
    /* ArmoRM's gating network, and armo embed on a bare backbone, read the
     * gating row */
    const int armorm = cfg->arch == ARMO_ARCH_ARMORM || cfg->arch == ARMO_ARCH_BACKBONE;
    if (armorm && nseq > 0 && !gating_pos)
        return armo_err_set(e, "%s needs a gating position per sequence (gating_pos is NULL)",
                            cfg->arch == ARMO_ARCH_ARMORM ? "ArmoRM" : "a backbone's embedding");
    for (int s = 0; s < nseq; s++) {
        const int64_t len = x->full_len[s]; /* the whole sequence, shared prefix included */
        if (cfg->max_position_embeddings > 0 && len > cfg->max_position_embeddings)
            return armo_err_set(e,
                                "sequence %d has %lld tokens, more than max_position_embeddings "
                                "%d; truncate or split it",
                                s, (long long)len, cfg->max_position_embeddings);
        for (int32_t i = cu_seqlens[s]; i < cu_seqlens[s + 1]; i++)
            if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
                return armo_err_set(e, "sequence %d: token %d (position %d) is outside the "
                                       "vocabulary [0, %d)",
                                    s, ids[i], x->pos[i], cfg->vocab_size);
        if (armorm && !x->is_prefix[s] && (gating_pos[s] < 0 || gating_pos[s] >= len))
            return armo_err_set(e, "sequence %d: gating position %d is outside [0, %lld); the "
                                   "gating token pattern must occur in the sequence",
                                s, gating_pos[s], (long long)len);
    }
    return 0;
}

int armo_batch_check(const armo_config *cfg, const int32_t *ids, const int32_t *cu_seqlens,
                     int nseq, const int32_t *gating_pos, const int32_t *prefix_of,
                     armo_expansion *x, armo_err *e) {
    memset(x, 0, sizeof *x);
    if (check_layout(ids, cu_seqlens, nseq, e)) return -1;
    if (nseq == 0) return 0;
    if (armo_expansion_build(x, cu_seqlens, nseq, prefix_of, e)) return -1;
    if (check_sequences(cfg, ids, cu_seqlens, nseq, gating_pos, x, e)) {
        armo_expansion_free(x);
        return -1;
    }
    return 0;
}
