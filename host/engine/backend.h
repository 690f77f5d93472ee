/* backend.h — one interface in front of the CPU and CUDA backends.
 *
 * Both compute the same function (DESIGN §4): score packed variable-length
 * sequences and return, per sequence, the head's outputs (armo_result).  The
 * CPU backend is always there; the CUDA one lives in the armo_cuda library
 * and is registered at start-up by executables linked with it (main.c does
 * it under ARMO_HAVE_CUDA), so armo_core itself never depends on CUDA. */
#ifndef ARMO_BACKEND_H
#define ARMO_BACKEND_H

#include <stdint.h>

#include "host/engine/cpu_backend.h"
#include "base/errors.h"
#include "weights/model.h"

typedef struct {
    int threads;                 /* CPU threads (<= 0: all cores) */
    int64_t max_batch_tokens;    /* largest packed batch the caller will send */
    int max_seqs;                /* most sequences in one batch */
    int quiet;                   /* no load progress on stderr */
} armo_backend_opts;

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
     * RMs. */
    int (*score)(armo_backend *b, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                 const int32_t *gating_pos, const int32_t *prefix_of, armo_result *out,
                 armo_err *e);
    void (*destroy)(armo_backend *b);
};

typedef armo_backend *(*armo_backend_factory)(const armo_model *m, const armo_backend_opts *o,
                                              armo_err *e);
/* Registers the CUDA backend's factory (called once at start-up). */
void armo_backend_register_cuda(armo_backend_factory f, int (*device_count)(void));

/* device: "cpu", "cuda" or "auto" (CUDA when registered and a device is
 * present, else CPU). */
armo_backend *armo_backend_open(const armo_model *m, const char *device,
                                const armo_backend_opts *o, armo_err *e);
void armo_backend_close(armo_backend *b);

#endif
