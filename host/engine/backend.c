/* backend.c — backend selection and the CPU backend's adapter (see backend.h). */
#include "host/engine/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static armo_backend_factory g_cuda_factory;
static int (*g_cuda_device_count)(void);

void armo_backend_register_cuda(armo_backend_factory f, int (*device_count)(void)) {
    g_cuda_factory = f;
    g_cuda_device_count = device_count;
}

static int cpu_score(armo_backend *b, const int32_t *ids, const int32_t *cu_seqlens, int nseq,
                     const int32_t *gating_pos, const int32_t *prefix_of, armo_result *out,
                     armo_err *e) {
    for (int s = 0; prefix_of && s < nseq; s++)
        if (prefix_of[s] >= 0)
            return armo_cpu_score_shared((armo_cpu *)b->impl, ids, cu_seqlens, nseq, gating_pos,
                                         prefix_of, out, e);
    return armo_cpu_score((armo_cpu *)b->impl, ids, cu_seqlens, nseq, gating_pos, out, e);
}

static void cpu_destroy(armo_backend *b) {
    armo_cpu_destroy((armo_cpu *)b->impl);
    free(b);
}

static armo_backend *cpu_open(const armo_model *m, const armo_backend_opts *o, armo_err *e) {
    armo_backend *b = calloc(1, sizeof *b);
    if (!b) {
        armo_err_set(e, "out of memory");
        return NULL;
    }
    int threads = o && o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    b->impl = armo_cpu_create(m, threads, e);
    if (!b->impl) {
        free(b);
        return NULL;
    }
    b->name = "cpu";
    snprintf(b->device, sizeof b->device, "CPU (%d thread%s)", threads, threads == 1 ? "" : "s");
    b->score = cpu_score;
    b->destroy = cpu_destroy;
    return b;
}

armo_backend *armo_backend_open(const armo_model *m, const char *device,
                                const armo_backend_opts *o, armo_err *e) {
    if (!device || !strcmp(device, "auto")) {
        if (g_cuda_factory && g_cuda_device_count && g_cuda_device_count() > 0)
            return g_cuda_factory(m, o, e);
        return cpu_open(m, o, e);
    }
    if (!strcmp(device, "cpu")) return cpu_open(m, o, e);
    if (!strcmp(device, "cuda")) {
        if (!g_cuda_factory) {
            armo_err_set(e, "--device cuda: this armo was built without the CUDA backend "
                            "(nvcc was not found at build time)");
            return NULL;
        }
        if (!g_cuda_device_count || g_cuda_device_count() <= 0) {
            armo_err_set(e, "--device cuda: no CUDA device is visible (check nvidia-smi and "
                            "CUDA_VISIBLE_DEVICES), or use --device cpu");
            return NULL;
        }
        return g_cuda_factory(m, o, e);
    }
    armo_err_set(e, "unknown device '%s' (expected auto, cuda or cpu)", device);
    return NULL;
}

void armo_backend_close(armo_backend *b) {
    if (b) b->destroy(b);
}
