/* nccl_comm.h — the communicators of a tensor-parallel group, and the one
 * collective armo needs: a sum all-reduce of a bf16 activation on the
 * rank's stream (after o_proj and after down_proj, tp_split.h).  Two ways
 * to make one: every rank inside this process (ncclCommInitAll over the
 * group's devices, one communicator per rank), or this process's one rank
 * of a group whose other ranks are other processes (rank 0's
 * ncclGetUniqueId, sent to the others by the caller — over MPI, host/cli —
 * then ncclCommInitRank on each).  Every NCCL call is checked and a failure
 * names the call.
 *
 * Built with NCCL where the CUDA installation has it (CMake:
 * ARMO_HAVE_NCCL); without it every function fails, saying that this armo
 * has no tensor parallel on CUDA.  In the emulator the same code runs
 * against a fake NCCL (tests/emu/cuda/nccl_fake.cpp: ranks are host
 * threads, partial sums added in rank order as the CPU backend adds them). */
#ifndef ARMO_NCCL_COMM_H
#define ARMO_NCCL_COMM_H

#include <stddef.h>

#include <cuda_runtime_api.h>

#include "base/errors.h"

typedef struct armo_nccl_group armo_nccl_group;

/* Communicators for ranks 0..n-1 on devices dev[0..n) (n >= 1). */
armo_nccl_group *armo_nccl_group_create(const int *dev, int n, armo_err *e);

/* A group spread over processes: rank 0 makes the id (ncclGetUniqueId,
 * ARMO_NCCL_ID_BYTES opaque bytes), every rank gets it, then each joins as
 * rank `rank` of n on device dev (ncclCommInitRank: returns when all n
 * have joined).  The joined group holds that one rank's communicator. */
#define ARMO_NCCL_ID_BYTES 128
int armo_nccl_unique_id(unsigned char id[ARMO_NCCL_ID_BYTES], armo_err *e);
armo_nccl_group *armo_nccl_group_join(const unsigned char id[ARMO_NCCL_ID_BYTES], int n,
                                      int rank, int dev, armo_err *e);
/* Destroys the communicators (ncclCommDestroy, or ncclCommAbort when
 * `abort`: after a failure, when a peer may never arrive). */
void armo_nccl_group_destroy(armo_nccl_group *g, int abort);

/* ncclCommGetAsyncError of each communicator held: 0 when none reports an
 * error, else -1 with e naming the rank and NCCL's error. */
int armo_nccl_group_async_error(armo_nccl_group *g, armo_err *e);

/* ncclCommAbort of every communicator held, now, from any thread (a
 * watchdog's: peers blocked in a collective whose partner failed return
 * with an error); later all-reduces fail at once, and destroy frees what
 * is left without calling NCCL again. */
void armo_nccl_group_abort(armo_nccl_group *g);

/* In place: buf (count bf16 values on rank's device) = the sum over the
 * ranks, enqueued on stream.  Each rank's thread calls it for its rank (a
 * joined group: its one rank). */
int armo_nccl_allreduce_bf16(armo_nccl_group *g, int rank, void *buf, size_t count,
                             cudaStream_t stream, armo_err *e);

/* The NCCL version linked ("NCCL 2.28.9"), or why there is none. */
const char *armo_nccl_version(char *buf, size_t len);

#endif
