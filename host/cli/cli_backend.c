/* cli_backend.c — see cli_backend.h (moved out of cmd_score.c so that
 * `armo serve` opens its backend the same way). */
#include "host/cli/cli_backend.h"

#include <stdio.h>
#include <string.h>

#include "host/engine/backend_open.h"
#include "host/engine/device_memory.h"

/* The GPU's free memory against what the run's budget needs, before any
 * weight is uploaded (device_memory.h).  Every message has the numbers. */
static int check_fit(const armo_model *m, const armo_cli_backend_args *a, int64_t *budget,
                     armo_err *e) {
    size_t free_b = 0, total_b = 0;
    if (armo_backend_mem_info("cuda", &free_b, &total_b, e)) return -1;
    armo_fit f;
    armo_dev_fit(&m->cfg, *budget, ARMO_DEFAULT_MAX_SEQS, a->share_prefix, free_b, total_b, &f);
    if (f.kind == ARMO_FIT_OK) return 0;
    char msg[ARMO_ERR_LEN - 128];
    armo_dev_fit_message(&f, msg, sizeof msg);
    if (f.kind == ARMO_FIT_NONE)
        return armo_err_set(e, "the model does not fit on the GPU: %s (or use --device cpu)", msg);
    if (a->max_batch > 0)
        return armo_err_set(e, "--max-batch-tokens %lld does not fit on the GPU: %s",
                            (long long)*budget, msg);
    if (!a->quiet)
        fprintf(stderr, "armo: the default --max-batch-tokens does not fit: %s; using %lld\n", msg,
                (long long)f.fit_tokens);
    *budget = f.fit_tokens;
    return 0;
}

armo_backend *armo_cli_open_backend(const armo_model *m, const armo_cli_backend_args *a,
                                    int max_length, armo_backend_opts *bo, int64_t *budget,
                                    armo_err *e) {
    const char *kind = armo_backend_resolve(a->device, e);
    if (!kind) return NULL;
    const int cuda = !strcmp(kind, "cuda");
    *budget = a->max_batch > 0 ? a->max_batch
              : cuda           ? ARMO_DEFAULT_BATCH_TOKENS_CUDA
                               : ARMO_DEFAULT_BATCH_TOKENS_CPU;
    if (cuda && check_fit(m, a, budget, e)) return NULL;
    *bo = (armo_backend_opts){.threads = (int)a->threads, .quiet = a->quiet,
                              .max_seqs = ARMO_DEFAULT_MAX_SEQS};
    bo->max_batch_tokens = *budget > max_length ? *budget : max_length;
    return armo_backend_open(m, kind, bo, e);
}
