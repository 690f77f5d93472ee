/* backend.h — the one interface in front of the CPU and CUDA backends.
 *
 * Both compute the same function (DESIGN §4): score packed variable-length
 * sequences and return, per sequence, the head's outputs (armo_result).
 * Callers get a backend from backend_open.h (armo_backend_open: the CPU
 * always, CUDA when the executable registered it) and use it only through
 * this struct, so that nothing above the engine compiles against a
 * particular backend. */
#ifndef ARMO_BACKEND_H
#define ARMO_BACKEND_H

#include <stdint.h>

#include "base/errors.h"
#include "weights/config.h"

/* What the head gives for one sequence. */
typedef struct {
    int n_tokens;
    int last_pos;                /* index (in the sequence) of h_last */
    int gating_pos;              /* index of h_prompt; -1 for a single-head RM */
    float score;                 /* ArmoRM score, or label 0's score */
    int n_objectives;            /* ArmoRM: K; else 0 */
    float rewards[ARMO_MAX_OBJECTIVES];
    float gating[ARMO_MAX_OBJECTIVES];
    float coefficients[ARMO_MAX_OBJECTIVES];
    int n_labels;                /* single-head RM: labels; else 0 */
    float labels[ARMO_MAX_LABELS];
} armo_result;

typedef struct {
    int threads;                 /* CPU threads (<= 0: all cores) */
    int64_t max_batch_tokens;    /* largest packed batch the caller will send: a ceiling
                                  * (CUDA allocates for the batches actually sent) */
    int max_seqs;                /* most sequences in one batch */
    int quiet;                   /* no load progress on stderr */
} armo_backend_opts;

/* Time spent in each phase of a backend's score calls, summed over the calls
 * since timing was switched on (CUDA: cudaEvents on the backend's stream;
 * milliseconds of GPU time between consecutive phase marks). */
typedef struct {
    double upload_ms;            /* host -> device copies of ids, positions, cu_seqlens, rows */
    double embed_ms;             /* embedding gather + first RMSNorm */
    double layers_ms;            /* every decoder layer (incl. the final norm) */
    double head_ms;              /* row gather to fp32 + gated / seqcls head */
    double download_ms;          /* device -> host copy of the head outputs */
    int64_t calls;               /* score calls timed */
} armo_phase_times;

/* What a backend holds on its device now (get_memory; CUDA). */
typedef struct {
    size_t weight_bytes;         /* weights and tables, uploaded at open */
    size_t activation_bytes;     /* activation buffers allocated now */
    int64_t tokens, seqs;        /* the batch they hold (0 before the first batch) */
    int64_t exp_rows;            /* expanded attention rows they hold (prefix sharing) */
    int64_t grows;               /* times they were allocated for a larger batch */
} armo_backend_memory;

typedef struct armo_backend armo_backend;
struct armo_backend {
    const char *name;            /* "cpu" or "cuda" */
    char device[128];            /* human description: "CPU (2 threads)", "NVIDIA H100 ..." */
    int64_t max_expanded_rows;   /* most rows of a batch's expanded attention layout under
                                  * prefix sharing (prefix_share.h); 0: no limit */
    void *impl;
    /* Scores nseq packed segments (ids[cu_seqlens[s] .. cu_seqlens[s+1])).
     * prefix_of (NULL: none) enables prompt-prefix sharing: prefix_of[s] = p
     * makes segment s the continuation of segment p (see prefix_share.h);
     * positions, gating_pos[s] and out[s] then refer to the whole sequence
     * p + s.  A segment that others continue gets no head: its out has
     * n_tokens == 0.  gating_pos is ignored (may be NULL) for single-head
     * RMs.  Every backend checks the batch with armo_batch_check first
     * (batch_check.h), so bad input gets the same message from each. */
    int (*score)(armo_backend *b, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                 const int32_t *gating_pos, const int32_t *prefix_of, armo_result *out,
                 armo_err *e);
    void (*destroy)(armo_backend *b);
    /* Optional (NULL where the backend has none): per-phase timing for armo
     * bench.  set_timing(b, 1) resets the sums and starts timing (a few
     * event records per batch), set_timing(b, 0) stops; get_timing reads the
     * sums. */
    int (*set_timing)(armo_backend *b, int on, armo_err *e);
    void (*get_timing)(const armo_backend *b, armo_phase_times *out);
    /* Optional: the device memory the backend holds (device_memory.h
     * computes the same figures from a config). */
    void (*get_memory)(const armo_backend *b, armo_backend_memory *out);
};

static inline void armo_backend_close(armo_backend *b) {
    if (b) b->destroy(b);
}

#endif
