/* cuda_backend.h — the CUDA backend: the whole model through kernels/ on
 * packed variable-length batches (DESIGN §4).  Built into armo_cuda only
 * when nvcc is present; an executable linked with it registers it once at
 * start-up with armo_backend_register_cuda(&armo_cuda_accel) and then opens
 * it through armo_backend_open like any backend.  Includes no CUDA header. */
#ifndef ARMO_CUDA_BACKEND_H
#define ARMO_CUDA_BACKEND_H

#include "host/engine/backend_open.h"

/* open: uploads the weights (fused QKV and gate|up, backbone bf16, head f32)
 * to the device through pinned staging buffers, with a progress line;
 * activations are allocated with the first batch and grown when a larger
 * one arrives, never past o->max_batch_tokens tokens / o->max_seqs
 * sequences (the ceiling; device_memory.h has the sizes); a batch the
 * device cannot hold fails with the numbers.  The environment variable
 * ARMO_CUDA_DEVICE picks the device.
 * device_count: 0 when no driver or device.  gemm_ceiling / mem_info:
 * gemm_ceiling.c. */
extern const armo_accel armo_cuda_accel;

armo_backend *armo_cuda_backend_create(const armo_model *m, const armo_backend_opts *o,
                                       armo_err *e);

/* Tensor parallel: rank `rank` of `tp` (tp_split.h's shards of the
 * weights), its partial o_proj / down_proj sums all-reduced over nccl
 * (nccl_comm.h); o->device (has_device) is its device.  tp <= 1: the whole
 * model (armo_cuda_backend_create). */
struct armo_nccl_group;
armo_backend *armo_cuda_backend_create_rank(const armo_model *m, const armo_backend_opts *o,
                                            int tp, int rank, struct armo_nccl_group *nccl,
                                            armo_err *e);

/* A tensor-parallel group as one backend (tp_group.c): tp ranks on devices
 * dev[0..tp), one host thread per rank, NCCL communicators from
 * ncclCommInitAll.  Each score call runs the batch on every rank; the
 * results are rank 0's.  o->tp is ignored (tp is the count). */
#define ARMO_MAX_TP 64
armo_backend *armo_cuda_tp_group_open(const armo_model *m, const armo_backend_opts *o,
                                      const int *dev, int tp, armo_err *e);
int armo_cuda_device_count(void);

/* A tensor-parallel group spread over processes (backend_open.h's
 * tp_unique_id / open_tp_peer): rank 0's NCCL unique id, and this
 * process's rank `rank` of tp on device o->device (has_device; else
 * ARMO_CUDA_DEVICE or 0), its communicator from ncclCommInitRank (blocks
 * until the tp ranks have joined), owned by the backend: destroyed at
 * close, aborted when the device failed. */
int armo_cuda_tp_unique_id(unsigned char id[ARMO_TP_ID_BYTES], armo_err *e);
armo_backend *armo_cuda_tp_peer_open(const armo_model *m, const armo_backend_opts *o,
                                     const unsigned char id[ARMO_TP_ID_BYTES], int tp, int rank,
                                     armo_err *e);

/* CUDA graphs (environment ARMO_CUDA_GRAPHS=1 at open, off by default): a
 * batch of at most 2048 tokens is padded to its shape bucket and its
 * forward pass replayed from a graph captured once per bucket (no speed-up
 * measured yet).  Returns the graph launches of backend b (a CUDA backend)
 * so far, and its captures in *captures (may be NULL). */
int64_t armo_cuda_graph_stats(const armo_backend *b, int64_t *captures);

#endif
