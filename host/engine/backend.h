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
#include <string.h>

#include "base/errors.h"
#include "weights/config.h"

/* The first quantity of a sequence's head that is not finite (NaN or ±Inf),
 * in the order the head computes them: the backbone's hidden state at the
 * rows the head reads (the last token; ArmoRM: then the gating token), then
 * rewards, gating, coefficients, score (single-head RM: the labels). */
typedef enum {
    ARMO_NF_NONE = 0,            /* every value finite */
    ARMO_NF_HIDDEN_LAST,         /* h_last[index]: the final-norm output at last_pos */
    ARMO_NF_HIDDEN_GATING,       /* h_prompt[index]: the same at gating_pos (ArmoRM) */
    ARMO_NF_REWARD,              /* rewards[index] */
    ARMO_NF_GATING,              /* gating[index] */
    ARMO_NF_COEFFICIENT,         /* coefficients[index] */
    ARMO_NF_SCORE,               /* score (index -1) */
    ARMO_NF_LABEL,               /* labels[index] (single-head RM) */
} armo_nonfinite_what;

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
    /* Filled by every backend (armo_result_check_finite): a result whose
     * nonfinite is not ARMO_NF_NONE must not be reported as a score. */
    armo_nonfinite_what nonfinite;
    int nonfinite_index;         /* element of that quantity (hidden dimension, objective,
                                  * label); -1 for the score */
    float nonfinite_value;       /* the offending value: NaN, +Inf or -Inf */
} armo_result;

/* 1 if f is NaN or ±Inf, by its bits (immune to -ffast-math). */
static inline int armo_nonfinite_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x7f800000u) == 0x7f800000u;
}

/* Index of the first NaN / ±Inf of v[0..n), or -1. */
static inline int armo_first_nonfinite(const float *v, int n) {
    for (int i = 0; i < n; i++)
        if (armo_nonfinite_f32(v[i])) return i;
    return -1;
}

/* Sets r->nonfinite / _index / _value from the head's inputs (h_last, and
 * h_gating for ArmoRM, NULL otherwise; `hidden` floats each) and r's own
 * outputs, which must be filled already: the first non-finite value in the
 * order of armo_nonfinite_what. */
static inline void armo_result_check_finite(armo_result *r, const float *h_last,
                                            const float *h_gating, int hidden) {
    struct { armo_nonfinite_what what; const float *v; int n; } q[] = {
        {ARMO_NF_HIDDEN_LAST, h_last, h_last ? hidden : 0},
        {ARMO_NF_HIDDEN_GATING, h_gating, h_gating ? hidden : 0},
        {ARMO_NF_REWARD, r->rewards, r->n_objectives},
        {ARMO_NF_GATING, r->gating, r->n_objectives},
        {ARMO_NF_COEFFICIENT, r->coefficients, r->n_objectives},
        {ARMO_NF_SCORE, &r->score, r->n_objectives > 0},
        {ARMO_NF_LABEL, r->labels, r->n_labels},
    };
    r->nonfinite = ARMO_NF_NONE;
    r->nonfinite_index = 0;
    r->nonfinite_value = 0.0f;
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        int i = q[k].n > 0 ? armo_first_nonfinite(q[k].v, q[k].n) : -1;
        if (i < 0) continue;
        r->nonfinite = q[k].what;
        r->nonfinite_index = q[k].what == ARMO_NF_SCORE ? -1 : i;
        r->nonfinite_value = q[k].v[i];
        return;
    }
}

typedef struct {
    int threads;                 /* CPU threads (<= 0: all cores) */
    int64_t max_batch_tokens;    /* largest packed batch the caller will send: a ceiling
                                  * (CUDA allocates for the batches actually sent) */
    int max_seqs;                /* most sequences in one batch */
    int quiet;                   /* no load progress on stderr */
    /* CUDA: has_device = 1 opens device `device` (an ordinal among the
     * visible devices, CUDA_VISIBLE_DEVICES honoured); 0: ARMO_CUDA_DEVICE
     * or device 0.  Several backends on several devices make the workers of
     * data parallel (scheduler.h). */
    int has_device, device;
    /* Tensor parallel: tp ranks (<= 1: none).  The CPU backend runs the
     * sharded arithmetic itself (cpu_backend.h, armo_cpu_set_tp). */
    int tp;
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
    int64_t max_batch_tokens_now; /* set by a backend that could not allocate a batch's
                                  * activations mid-run (the device out of memory): the
                                  * most tokens a batch may hold from now on, which the
                                  * scheduler re-packs under; 0: no such limit */
    void *impl;
    /* Set (to why) when the backend can take no more work: a sticky device
     * failure.  The scheduler then hands its batch to another worker and
     * gives it no more; NULL while it is healthy. */
    const char *lost;
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
    /* Optional: the forward passes replayed from a captured CUDA graph so
     * far (ARMO_CUDA_GRAPHS=1), and the captures in *captures (may be
     * NULL); for armo bench, which says whether graphs ran. */
    int64_t (*graph_stats)(const armo_backend *b, int64_t *captures);
    /* `armo embed`'s hook: while the caller sets hidden_out (non-NULL) around
     * a score call, hidden_out[s] (NULL: none wanted) receives segment s's
     * head input rows in fp32: the final-norm output at the last token, then
     * at gating_pos[s] (2 * hidden_size floats; the second row zero for a
     * single-head RM).  Only a backend that sets returns_hidden honours it
     * (the CPU backend); callers check the flag. */
    float *const *hidden_out;
    int returns_hidden;
};

static inline void armo_backend_close(armo_backend *b) {
    if (b) b->destroy(b);
}

#endif
