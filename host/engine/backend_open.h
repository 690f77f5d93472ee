/* backend_open.h — which backend a --device names, and opening it.
 *
 * The CPU backend is always there.  The CUDA backend lives in the armo_cuda
 * library; an executable linked with it registers it at start-up
 * (armo_backend_register_cuda), so that armo_core never depends on CUDA and
 * every caller reaches CUDA through this one route: the backend interface
 * (backend.h) and, for `armo bench`, the device figures below. */
#ifndef ARMO_BACKEND_OPEN_H
#define ARMO_BACKEND_OPEN_H

#include <stddef.h>

#include "base/errors.h"
#include "host/engine/backend.h"
#include "weights/model.h"

/* the bytes of a tensor-parallel group's id (NCCL's unique id) */
#define ARMO_TP_ID_BYTES 128

/* What an accelerator backend registers. */
typedef struct {
    const char *name;            /* "cuda" */
    armo_backend *(*open)(const armo_model *m, const armo_backend_opts *o, armo_err *e);
    /* A tensor-parallel group of tp ranks on devices dev[0..tp) as one
     * backend (NULL: none). */
    armo_backend *(*open_tp)(const armo_model *m, const armo_backend_opts *o, const int *dev,
                             int tp, armo_err *e);
    /* One rank of a tensor-parallel group whose other ranks are other
     * processes (NULL: none): unique_id makes the group's id (rank 0 calls
     * it and sends the bytes to the others), open_tp_peer joins the group
     * as rank `rank` of tp on device o->device and opens the rank's shards.
     * Blocks until all tp ranks have joined. */
    int (*tp_unique_id)(unsigned char id[ARMO_TP_ID_BYTES], armo_err *e);
    armo_backend *(*open_tp_peer)(const armo_model *m, const armo_backend_opts *o,
                                  const unsigned char id[ARMO_TP_ID_BYTES], int tp, int rank,
                                  armo_err *e);
    int (*device_count)(void);   /* devices visible (0: no driver or device) */
    /* The measured bf16 GEMM ceiling: Y[n, out] = X[n, in] · Wᵀ timed over
     * reps launches on random data, in TFLOP/s (the denominator of MFU). */
    int (*gemm_ceiling)(int n, int in, int out, int reps, double *tflops, armo_err *e);
    int (*mem_info)(size_t *free_bytes, size_t *total_bytes, armo_err *e);
    /* the same for device dev */
    int (*mem_info_device)(int dev, size_t *free_bytes, size_t *total_bytes, armo_err *e);
} armo_accel;

/* Registers the CUDA backend (once, at start-up; accel must outlive its use). */
void armo_backend_register_cuda(const armo_accel *accel);

/* The backend `device` names: "cpu", "cuda", or "auto" (CUDA when registered
 * and a device is visible, else the CPU).  Returns "cpu" or "cuda", or NULL
 * with e saying why the named device cannot be used. */
const char *armo_backend_resolve(const char *device, armo_err *e);

/* Opens the backend armo_backend_resolve(device) names for model m. */
armo_backend *armo_backend_open(const armo_model *m, const char *device,
                                const armo_backend_opts *o, armo_err *e);

/* A tensor-parallel group spread over processes, on a resolved kind (only
 * "cuda" has one): the group's id, made by its rank 0 (the caller sends it
 * to the other ranks), and this process's rank of the group (armo_accel's
 * tp_unique_id / open_tp_peer).  An error for the CPU backend, or a CUDA
 * backend built without NCCL. */
int armo_backend_tp_unique_id(const char *kind, unsigned char id[ARMO_TP_ID_BYTES], armo_err *e);
armo_backend *armo_backend_open_tp_peer(const armo_model *m, const char *kind,
                                        const armo_backend_opts *o,
                                        const unsigned char id[ARMO_TP_ID_BYTES], int tp,
                                        int rank, armo_err *e);

/* Devices a resolved kind has: the visible CUDA devices for "cuda"
 * (CUDA_VISIBLE_DEVICES honoured), 0 for "cpu". */
int armo_backend_device_count(const char *kind);

/* The backends of a data-parallel run (scheduler.h's armo_schedule_workers),
 * one per worker, for a resolved kind ("cpu" / "cuda"):
 * - cuda: one per device of `devices`, a comma-separated list of ordinals
 *   among the visible devices (CUDA_VISIBLE_DEVICES honoured); NULL or
 *   empty: every visible device.  A device that is not visible, or one
 *   named twice, is an error naming it.  `workers` must be 0 (or equal
 *   the worker count).  With o->tp > 1 each worker is a tensor-parallel
 *   group of o->tp consecutive devices of the list (8 GPUs, --tp 2: 4
 *   workers of 2); tp must divide the device count.
 * - cpu: `workers` (<= 0: 1) replicas, the CPU threads (o->threads, <= 0:
 *   all cores) split between them (at least 1 each); `devices` must be NULL.
 * o->tp is passed to each.  On success *out holds *nout backends (free
 * with armo_backend_close_workers); on failure none is left open. */
int armo_backend_open_workers(const armo_model *m, const char *kind, const char *devices,
                              int workers, const armo_backend_opts *o, armo_backend ***out,
                              int *nout, armo_err *e);
void armo_backend_close_workers(armo_backend **b, int n);

/* The bf16 GEMM ceiling of the device a resolved kind ("cpu" / "cuda") runs
 * on, measured now, for MFU: on CUDA the engine's cuBLASLt GEMM at
 * cuda_size^3 (0: 8192; a multiple of 8), on the CPU the CPU backend's matmul with a bf16 weight
 * (threads as the backend's).  Measure it before loading a model: it
 * allocates its own buffers. */
typedef struct {
    double tflops;
    int n, in, out;              /* the timed shape */
    const char *what;            /* how it was measured, for the report */
} armo_gemm_ceiling;
int armo_backend_gemm_ceiling(const char *kind, int threads, int cuda_size, armo_gemm_ceiling *c,
                              armo_err *e);

/* The host memory the CPU backend adds to the mapped checkpoint for model m:
 * its fp32 copy of every layer matrix (armo inspect reports it). */
size_t armo_backend_cpu_weight_bytes(const armo_model *m);

/* Device memory of the accelerator a kind runs on; an error for "cpu". */
int armo_backend_mem_info(const char *kind, size_t *free_bytes, size_t *total_bytes,
                          armo_err *e);

/* The same for CUDA device dev. */
int armo_backend_mem_info_device(int dev, size_t *free_bytes, size_t *total_bytes, armo_err *e);

/* The CUDA devices armo_backend_open_workers would use for `devices` (NULL
 * or "": every visible one) and tp, in dev[0..*n) (cap entries at most),
 * with the same checks and messages. */
int armo_backend_cuda_devices(const char *devices, int tp, int *dev, int cap, int *n,
                              armo_err *e);

#endif
