/* backend_open.c — backend selection and the device figures (see
 * backend_open.h). */
#include "host/engine/backend_open.h"

#include <string.h>

#include "host/engine/cpu_backend.h"

static const armo_accel *g_cuda;

void armo_backend_register_cuda(const armo_accel *accel) { g_cuda = accel; }

static int cuda_visible(void) { return g_cuda && g_cuda->device_count() > 0; }

const char *armo_backend_resolve(const char *device, armo_err *e) {
    if (!device || !strcmp(device, "auto")) return cuda_visible() ? "cuda" : "cpu";
    if (!strcmp(device, "cpu")) return "cpu";
    if (!strcmp(device, "cuda")) {
        if (!g_cuda) {
            armo_err_set(e, "--device cuda: this armo was built without the CUDA backend "
                            "(nvcc was not found at build time)");
            return NULL;
        }
        if (!cuda_visible()) {
            armo_err_set(e, "--device cuda: no CUDA device is visible (check nvidia-smi and "
                            "CUDA_VISIBLE_DEVICES), or use --device cpu");
            return NULL;
        }
        return "cuda";
    }
    armo_err_set(e, "unknown device '%s' (expected auto, cuda or cpu)", device);
    return NULL;
}

armo_backend *armo_backend_open(const armo_model *m, const char *device,
                                const armo_backend_opts *o, armo_err *e) {
    const char *kind = armo_backend_resolve(device, e);
    if (!kind) return NULL;
    return !strcmp(kind, "cuda") ? g_cuda->open(m, o, e) : armo_cpu_backend_open(m, o, e);
}

int armo_backend_gemm_ceiling(const char *kind, int threads, int cuda_size, armo_gemm_ceiling *c,
                              armo_err *e) {
    memset(c, 0, sizeof *c);
    if (strcmp(kind, "cuda")) {
        c->what = "cpu_gemm (BLAS sgemm), bf16-valued weight in fp32, best of 3";
        return armo_cpu_gemm_ceiling(threads, &c->n, &c->in, &c->out, &c->tflops, e);
    }
    if (!g_cuda) return armo_err_set(e, "GEMM ceiling: no CUDA backend in this armo");
    if (cuda_size < 0 || cuda_size % 8 != 0)
        return armo_err_set(e, "GEMM ceiling: size %d is not a positive multiple of 8", cuda_size);
    c->n = c->in = c->out = cuda_size ? cuda_size : 8192;
    c->what = "armo_gemm_bf16 (cuBLASLt) bf16 x bf16 -> bf16, fp32 accumulate, 20 launches";
    return g_cuda->gemm_ceiling(c->n, c->in, c->out, 20, &c->tflops, e);
}

int armo_backend_mem_info(const char *kind, size_t *free_bytes, size_t *total_bytes,
                          armo_err *e) {
    if (strcmp(kind, "cuda") || !g_cuda)
        return armo_err_set(e, "device memory: the %s backend has no device memory", kind);
    return g_cuda->mem_info(free_bytes, total_bytes, e);
}

size_t armo_backend_cpu_weight_bytes(const armo_model *m) { return armo_cpu_weight_bytes(m); }
