/* prefix_share.c — the expanded attention layout (see prefix_share.h). */
#include "host/engine/prefix_share.h"

#include <stdlib.h>
#include <string.h>

void armo_expansion_free(armo_expansion *x) {
    free(x->exp_rows);
    free(x->back_rows);
    free(x->cu_exp);
    free(x->pos);
    free(x->full_len);
    free(x->is_prefix);
    memset(x, 0, sizeof *x);
}

int32_t armo_expansion_row(const int32_t *cu, const int32_t *prefix_of, int s, int pos_in_full) {
    int p = prefix_of ? prefix_of[s] : -1;
    if (p < 0) return cu[s] + pos_in_full;
    int plen = cu[p + 1] - cu[p];
    return pos_in_full < plen ? cu[p] + pos_in_full : cu[s] + pos_in_full - plen;
}

int armo_expansion_build(armo_expansion *x, const int32_t *cu, int nseg, const int32_t *prefix_of,
                         armo_err *e) {
    memset(x, 0, sizeof *x);
    int n = cu[nseg];
    x->n_unique = n;
    x->pos = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    x->full_len = malloc(sizeof(int32_t) * (size_t)(nseg ? nseg : 1));
    x->is_prefix = calloc((size_t)(nseg ? nseg : 1), sizeof(int32_t));
    if (!x->pos || !x->full_len || !x->is_prefix) goto oom;
    int any = 0;
    for (int s = 0; s < nseg; s++) {
        int p = prefix_of ? prefix_of[s] : -1;
        if (p < -1 || p >= s || (p >= 0 && prefix_of[p] != -1)) {
            armo_err_set(e, "segment %d: prefix_of = %d must be -1 or an earlier segment without "
                            "a prefix of its own", s, p);
            armo_expansion_free(x);
            return -1;
        }
        if (p >= 0 && cu[s + 1] == cu[s]) {
            armo_err_set(e, "segment %d continues segment %d but has no tokens of its own", s, p);
            armo_expansion_free(x);
            return -1;
        }
        int plen = p >= 0 ? cu[p + 1] - cu[p] : 0;
        x->full_len[s] = plen + cu[s + 1] - cu[s];
        for (int i = cu[s]; i < cu[s + 1]; i++) x->pos[i] = plen + i - cu[s];
        if (p >= 0) {
            x->is_prefix[p] = 1;
            any = 1;
        }
    }
    x->identity = !any;
    /* expanded sequences: every segment that is not a prefix, at full length */
    int nexp = 0, rows = 0;
    for (int s = 0; s < nseg; s++)
        if (!x->is_prefix[s]) nexp++, rows += x->full_len[s];
    x->nseq_exp = nexp;
    x->n_exp = rows;
    x->exp_rows = malloc(sizeof(int32_t) * (size_t)(rows ? rows : 1));
    x->back_rows = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    x->cu_exp = malloc(sizeof(int32_t) * (size_t)(nexp + 1));
    if (!x->exp_rows || !x->back_rows || !x->cu_exp) goto oom;
    for (int u = 0; u < n; u++) x->back_rows[u] = -1;
    int r = 0, q = 0;
    x->cu_exp[0] = 0;
    for (int s = 0; s < nseg; s++) {
        if (x->is_prefix[s]) continue;
        for (int i = 0; i < x->full_len[s]; i++, r++) {
            int32_t u = armo_expansion_row(cu, prefix_of, s, i);
            x->exp_rows[r] = u;
            if (x->back_rows[u] < 0) x->back_rows[u] = r; /* first copy wins */
        }
        x->cu_exp[++q] = r;
        if (x->full_len[s] > x->max_len_exp) x->max_len_exp = x->full_len[s];
    }
    return 0;
oom:
    armo_expansion_free(x);
    return armo_err_set(e, "out of memory building the prefix-sharing layout");
}
