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
    const char *devices;         /* --devices 0,1,...: GPUs of the data-parallel workers
                                    (NULL: every visible one); asks for CUDA under auto */
    long max_batch;              /* --max-batch-tokens; <= 0: the backend's default */
    long threads;                /* CPU threads (<= 0: all cores) */
    long workers;                /* --workers: CPU data-parallel workers (<= 0: one) */
    long tp;                     /* --tp: tensor-parallel shards per worker (<= 1: none) */
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

/* What armo_cli_open_backend does before opening: the kind ("cpu" /
 * "cuda"), *budget (checked against CUDA device `device`, -1: the current
 * one) and *bo; NULL with e set.  For a caller that opens the backend
 * itself (score_tp_ranks.h). */
const char *armo_cli_plan_backend(const armo_model *m, const armo_cli_backend_args *a,
                                  int device, int max_length, armo_backend_opts *bo,
                                  int64_t *budget, armo_err *e);

/* The same for data parallel (`armo score`): one backend per worker
 * (armo_backend_open_workers: a->devices on CUDA, a->workers on the CPU,
 * each a group of a->tp shards when a->tp > 1; the fit check counts what
 * one rank holds), *nb of them, closed with armo_backend_close_workers. */
armo_backend **armo_cli_open_backends(const armo_model *m, const armo_cli_backend_args *a,
                                      int max_length, armo_backend_opts *bo, int64_t *budget,
                                      int *nb, armo_err *e);

#endif
