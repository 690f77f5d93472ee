/* positions.c — head row positions (see positions.h). */
#include "host/text/positions.h"

const int32_t ARMO_LLAMA3_GATING_PATTERN[5] = {128009, 128006, 78191, 128007, 271};

int armo_find_gating_pos(const int32_t *ids, int n, const int32_t *pattern, int plen) {
    if (plen <= 0 || n < plen) return -1;
    for (int j = n - plen; j >= 0; j--) {
        int k = 0;
        while (k < plen && ids[j + k] == pattern[k]) k++;
        if (k == plen) return j;
    }
    return -1;
}

int armo_cut_at_pad(const int32_t *ids, int n, int pad_id) {
    if (pad_id < 0) return n;
    for (int i = 0; i < n; i++)
        if (ids[i] == pad_id) return i;
    return n;
}
