/* cli_backend.c — see cli_backend.h (moved out of cmd_score.c so that
 * `armo serve` opens its backend the same way; `armo score` opens one per
 * data-parallel worker through the same budget and fit check). */
#include "host/cli/cli_backend.h"

#include <stdio.h>
#include <string.h>

#include "host/engine/backend_open.h"
#include "host/engine/device_memory.h"
#include "host/engine/tp_split.h"

/* a's limit is tighter than b's: nothing fits, or a smaller budget */
static int tighter(const armo_fit *a, const armo_fit *b) {
    if (b->kind == ARMO_FIT_NONE) return 0;
    return a->kind == ARMO_FIT_NONE || a->fit_tokens < b->fit_tokens;
}

/* Each GPU's free memory against what the run's budget needs, before any
 * weight is uploaded (device_memory.h); with --tp, what one rank holds (its
 * shards, embedding and head whole).  With workers (armo score) every GPU
 * they use (--devices, or every visible one) is asked and the one with the
 * least room decides, the budget being one for all; a single backend asks
 * `device` (-1: the current device, the one armo serve opens).  Every
 * message has the numbers and names the GPU. */
static int check_fit(const armo_model *m, const armo_cli_backend_args *a, int workers,
                     int device, int64_t *budget, armo_err *e) {
    enum { MAX_DEVICES = 256 };
    int dev[MAX_DEVICES], ndev = 1;
    dev[0] = device; /* -1: the current device */
    if (workers &&
        armo_backend_cuda_devices(a->devices, (int)a->tp, dev, MAX_DEVICES, &ndev, e))
        return -1;
    armo_config rank = m->cfg;
    armo_err ignored;
    if (a->tp > 1 && armo_tp_check(&m->cfg, (int)a->tp, &ignored) == 0) {
        rank.num_heads /= (int)a->tp;
        rank.num_kv_heads /= (int)a->tp;
        rank.intermediate_size /= (int)a->tp;
    }
    armo_fit f = {.kind = ARMO_FIT_OK};
    char where[32] = "the GPU";
    for (int i = 0; i < ndev; i++) {
        size_t free_b = 0, total_b = 0;
        armo_fit fi;
        if (dev[i] < 0 ? armo_backend_mem_info("cuda", &free_b, &total_b, e)
                       : armo_backend_mem_info_device(dev[i], &free_b, &total_b, e))
            return -1;
        armo_dev_fit(&rank, *budget, ARMO_DEFAULT_MAX_SEQS, a->share_prefix, free_b, total_b, &fi);
        if (fi.kind == ARMO_FIT_OK || (f.kind != ARMO_FIT_OK && !tighter(&fi, &f))) continue;
        f = fi;
        if (dev[i] >= 0) snprintf(where, sizeof where, "GPU %d", dev[i]);
    }
    if (f.kind == ARMO_FIT_OK) return 0;
    char msg[ARMO_ERR_LEN - 128];
    armo_dev_fit_message(&f, msg, sizeof msg);
    if (f.kind == ARMO_FIT_NONE)
        return armo_err_set(e, "the model does not fit on %s: %s (or use --device cpu)", where,
                            msg);
    if (a->max_batch > 0)
        return armo_err_set(e, "--max-batch-tokens %lld does not fit on %s: %s",
                            (long long)*budget, where, msg);
    if (!a->quiet)
        fprintf(stderr, "armo: the default --max-batch-tokens does not fit on %s: %s; using "
                        "%lld\n", where, msg, (long long)f.fit_tokens);
    *budget = f.fit_tokens;
    return 0;
}

/* The backend kind, the batch budget (checked against the GPU) and the
 * options every backend of the run is opened with; NULL with e set. */
static const char *plan_backend(const armo_model *m, const armo_cli_backend_args *a,
                                int workers, int device, int max_length, armo_backend_opts *bo,
                                int64_t *budget, armo_err *e) {
    /* --devices names GPUs: without --device, it asks for CUDA */
    const char *kind = armo_backend_resolve(
        a->devices && !strcmp(a->device, "auto") ? "cuda" : a->device, e);
    if (!kind) return NULL;
    const int cuda = !strcmp(kind, "cuda");
    *budget = a->max_batch > 0 ? a->max_batch
              : cuda           ? ARMO_DEFAULT_BATCH_TOKENS_CUDA
                               : ARMO_DEFAULT_BATCH_TOKENS_CPU;
    if (cuda && check_fit(m, a, workers, device, budget, e)) return NULL;
    *bo = (armo_backend_opts){.threads = (int)a->threads, .quiet = a->quiet,
                              .max_seqs = ARMO_DEFAULT_MAX_SEQS,
                              .tp = a->tp > 1 ? (int)a->tp : 1};
    bo->max_batch_tokens = *budget > max_length ? *budget : max_length;
    return kind;
}

const char *armo_cli_plan_backend(const armo_model *m, const armo_cli_backend_args *a,
                                  int device, int max_length, armo_backend_opts *bo,
                                  int64_t *budget, armo_err *e) {
    return plan_backend(m, a, 0, device, max_length, bo, budget, e);
}

armo_backend *armo_cli_open_backend(const armo_model *m, const armo_cli_backend_args *a,
                                    int max_length, armo_backend_opts *bo, int64_t *budget,
                                    armo_err *e) {
    const char *kind = plan_backend(m, a, 0, -1, max_length, bo, budget, e);
    return kind ? armo_backend_open(m, kind, bo, e) : NULL;
}

armo_backend **armo_cli_open_backends(const armo_model *m, const armo_cli_backend_args *a,
                                      int max_length, armo_backend_opts *bo, int64_t *budget,
                                      int *nb, armo_err *e) {
    const char *kind = plan_backend(m, a, 1, -1, max_length, bo, budget, e);
    armo_backend **b = NULL;
    if (!kind || armo_backend_open_workers(m, kind, a->devices, (int)a->workers, bo, &b, nb, e))
        return NULL;
    return b;
}
