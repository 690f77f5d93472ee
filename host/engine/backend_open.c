/* backend_open.c — backend selection and the device figures (see
 * backend_open.h). */
#include "host/engine/backend_open.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (!strcmp(kind, "cuda") && m->cfg.arch == ARMO_ARCH_BACKBONE) {
        armo_err_set(e, "%s: a bare backbone (%s) runs on the CPU backend only (armo embed "
                        "--device cpu)", m->dir, m->cfg.arch_name);
        return NULL;
    }
    return !strcmp(kind, "cuda") ? g_cuda->open(m, o, e) : armo_cpu_backend_open(m, o, e);
}

/* the CUDA backend's cross-process TP, or why there is none */
static int tp_peer_check(const char *kind, armo_err *e) {
    if (strcmp(kind, "cuda"))
        return armo_err_set(e, "a tensor-parallel group across processes needs the CUDA backend "
                               "(the CPU backend's --tp runs inside one process)");
    if (!g_cuda || !g_cuda->tp_unique_id || !g_cuda->open_tp_peer)
        return armo_err_set(e, "this armo's CUDA backend has no tensor parallel across processes");
    return 0;
}

int armo_backend_tp_unique_id(const char *kind, unsigned char id[ARMO_TP_ID_BYTES], armo_err *e) {
    if (tp_peer_check(kind, e)) return -1;
    return g_cuda->tp_unique_id(id, e);
}

armo_backend *armo_backend_open_tp_peer(const armo_model *m, const char *kind,
                                        const armo_backend_opts *o,
                                        const unsigned char id[ARMO_TP_ID_BYTES], int tp,
                                        int rank, armo_err *e) {
    if (tp_peer_check(kind, e)) return NULL;
    return g_cuda->open_tp_peer(m, o, id, tp, rank, e);
}

int armo_backend_device_count(const char *kind) {
    return !strcmp(kind, "cuda") && g_cuda ? g_cuda->device_count() : 0;
}

/* "0,2,3" -> dev[0..*n), each < visible, none twice. */
static int parse_devices(const char *list, int visible, int *dev, int cap, int *n, armo_err *e) {
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    char note[160];
    snprintf(note, sizeof note, "%d visible%s%.100s", visible,
             vis ? " with CUDA_VISIBLE_DEVICES=" : "", vis ? vis : "");
    *n = 0;
    for (const char *p = list; *p;) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || (*end && *end != ','))
            return armo_err_set(e, "--devices expects a comma-separated list of device numbers "
                                   "(0,1,...), got '%s'", list);
        if (d < 0 || d >= visible)
            return armo_err_set(e, "--devices: device %ld is not visible (%s: devices 0..%d)", d,
                                note, visible - 1);
        for (int i = 0; i < *n; i++)
            if (dev[i] == d) return armo_err_set(e, "--devices: device %ld is named twice", d);
        if (*n == cap) return armo_err_set(e, "--devices: more than %d devices", cap);
        dev[(*n)++] = (int)d;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) return armo_err_set(e, "--devices: no device named");
    return 0;
}

void armo_backend_close_workers(armo_backend **b, int n) {
    for (int i = 0; b && i < n; i++) armo_backend_close(b[i]);
    free(b);
}

int armo_backend_cuda_devices(const char *devices, int tp, int *dev, int cap, int *n,
                              armo_err *e) {
    *n = 0;
    if (!g_cuda) return armo_err_set(e, "no CUDA backend in this armo");
    const int visible = g_cuda->device_count();
    if (devices && *devices) {
        if (parse_devices(devices, visible, dev, cap, n, e)) return -1;
    } else {
        for (*n = 0; *n < visible && *n < cap; (*n)++) dev[*n] = *n;
    }
    if (tp > 1 && *n % tp)
        return armo_err_set(e, "--tp %d does not divide the %d device%s used (--devices, or "
                               "every visible GPU): each data-parallel worker is a group of "
                               "%d devices", tp, *n, *n == 1 ? "" : "s", tp);
    if (tp > 1 && !g_cuda->open_tp)
        return armo_err_set(e, "--tp: this CUDA backend has no tensor parallel");
    return 0;
}

int armo_backend_open_workers(const armo_model *m, const char *kind, const char *devices,
                              int workers, const armo_backend_opts *o, armo_backend ***out,
                              int *nout, armo_err *e) {
    enum { MAX_WORKERS = 256 };
    int dev[MAX_WORKERS], n = 0;
    const int cuda = !strcmp(kind, "cuda");
    int tp = 1;
    *out = NULL;
    *nout = 0;
    if (cuda) {
        if (armo_backend_cuda_devices(devices, o->tp, dev, MAX_WORKERS, &n, e)) return -1;
        tp = o->tp > 1 ? o->tp : 1;
        n /= tp; /* one worker per group of tp devices */
        if (workers > 0 && workers != n)
            return armo_err_set(e, "--workers %d: on CUDA there is one worker per device (or per "
                                   "--tp group of devices): %d; use --devices", workers, n);
    } else {
        if (devices && *devices)
            return armo_err_set(e, "--devices names CUDA devices; the CPU backend takes "
                                   "--workers N");
        n = workers > 0 ? workers : 1;
        if (n > MAX_WORKERS) return armo_err_set(e, "--workers: at most %d", MAX_WORKERS);
    }
    armo_backend **b = calloc((size_t)n, sizeof *b);
    if (!b) return armo_err_set(e, "out of memory");
    int threads = o->threads;
    if (threads <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? (int)ncpu : 1;
    }
    for (int i = 0; i < n; i++) {
        armo_backend_opts oi = *o;
        if (cuda && tp > 1) { /* worker i: a TP group on devices dev[i*tp .. (i+1)*tp) */
            b[i] = g_cuda->open_tp(m, &oi, dev + i * tp, tp, e);
        } else if (cuda) {
            oi.has_device = 1;
            oi.device = dev[i];
            b[i] = g_cuda->open(m, &oi, e);
        } else {
            /* worker i gets its share of the threads (the first ones one more) */
            oi.threads = threads / n + (i < threads % n);
            if (oi.threads < 1) oi.threads = 1;
            b[i] = armo_cpu_backend_open(m, &oi, e);
        }
        if (!b[i]) {
            if (cuda) armo_err_prefix(e, "worker %d (CUDA device %d)", i, dev[i * tp]);
            else if (n > 1) armo_err_prefix(e, "worker %d (cpu)", i);
            armo_backend_close_workers(b, i);
            return -1;
        }
    }
    *out = b;
    *nout = n;
    return 0;
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

int armo_backend_mem_info_device(int dev, size_t *free_bytes, size_t *total_bytes,
                                 armo_err *e) {
    if (!g_cuda) return armo_err_set(e, "device memory: no CUDA backend in this armo");
    return g_cuda->mem_info_device(dev, free_bytes, total_bytes, e);
}

size_t armo_backend_cpu_weight_bytes(const armo_model *m) { return armo_cpu_weight_bytes(m); }
