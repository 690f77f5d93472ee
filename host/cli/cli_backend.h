/* cli_backend.h — the backend of a scoring command (`armo score`, `armo
 * serve`): --device resolved, the GPU's free memory checked against the
 * token budget before any weight is uploaded, the backend opened. */
#ifndef ARMO_CLI_BACKEND_H
#define ARMO_CLI_BACKEND_H

#include <stdint.h>

#include "host/engine/backend.h"
#include "weights/model.h"

typedef struct {
    const char *device;          /* auto | cuda | cpu */
    long max_batch;              /* --max-batch-tokens; <= 0: the backend's default */
    long threads;                /* CPU threads (<= 0: all cores) */
    int quiet;
    int share_prefix;
} armo_cli_backend_args;

/* The backend for the run.  *budget: the token budget of a packed batch
 * (--max-batch-tokens, default 16384 on CUDA, 2048 on the CPU); a sequence
 * longer than it (up to max_length) is sent alone, so the backend's ceiling
 * is max(budget, max_length) — a ceiling, not an allocation: the CUDA
 * backend allocates for the batches it is sent.  On CUDA the GPU's free
 * memory is checked first (device_memory.h): not even the weights and a
 * minimal batch fit -> refused; an explicit budget that does not fit ->
 * refused; the default budget that does not fit -> lowered to what fits,
 * with a note.  NULL with e set on failure. */
armo_backend *armo_cli_open_backend(const armo_model *m, const armo_cli_backend_args *a,
                                    int max_length, armo_backend_opts *bo, int64_t *budget,
                                    armo_err *e);

#endif
