/* nccl_comm.c — a tensor-parallel group's NCCL communicators (see
 * nccl_comm.h). */
#include "host/cuda/nccl_comm.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ARMO_HAVE_NCCL
#include <nccl.h>

#include "kernels/cuda_check.h"

struct armo_nccl_group {
    int n;                       /* communicators held here */
    int first;                   /* the rank of comm[0] (a joined group: its one rank) */
    ncclComm_t *comm;            /* [n] */
    atomic_int aborted;          /* armo_nccl_group_abort ran: comm[] are gone */
};

armo_nccl_group *armo_nccl_group_create(const int *dev, int n, armo_err *e) {
    armo_nccl_group *g = calloc(1, sizeof *g);
    if (g) g->comm = calloc((size_t)(n > 0 ? n : 1), sizeof *g->comm);
    if (!g || !g->comm) {
        if (g) free(g);
        armo_err_set(e, "out of host memory for %d NCCL communicators", n);
        return NULL;
    }
    g->n = n;
    ARMO_NCCL_TRY_GOTO(e, fail, ncclCommInitAll(g->comm, n, dev));
    return g;
fail:
    free(g->comm);
    free(g);
    return NULL;
}

int armo_nccl_unique_id(unsigned char id[ARMO_NCCL_ID_BYTES], armo_err *e) {
    ncclUniqueId u;
    _Static_assert(sizeof u == ARMO_NCCL_ID_BYTES, "ncclUniqueId is not 128 bytes");
    ARMO_NCCL_TRY(e, ncclGetUniqueId(&u));
    memcpy(id, &u, sizeof u);
    return 0;
}

armo_nccl_group *armo_nccl_group_join(const unsigned char id[ARMO_NCCL_ID_BYTES], int n,
                                      int rank, int dev, armo_err *e) {
    if (n < 1 || rank < 0 || rank >= n) {
        armo_err_set(e, "NCCL: rank %d of a group of %d", rank, n);
        return NULL;
    }
    armo_nccl_group *g = calloc(1, sizeof *g);
    if (g) g->comm = calloc(1, sizeof *g->comm);
    if (!g || !g->comm) {
        if (g) free(g);
        armo_err_set(e, "out of host memory for an NCCL communicator");
        return NULL;
    }
    g->n = 1;
    g->first = rank;
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ARMO_CUDA_TRY_GOTO(e, fail, cudaSetDevice(dev));
    ARMO_NCCL_TRY_GOTO(e, fail, ncclCommInitRank(&g->comm[0], n, u, rank));
    return g;
fail:
    armo_err_prefix(e, "TP rank %d of %d (device %d) joining its group", rank, n, dev);
    free(g->comm);
    free(g);
    return NULL;
}

int armo_nccl_group_async_error(armo_nccl_group *g, armo_err *e) {
    if (atomic_load(&g->aborted))
        return armo_err_set(e, "the TP group's communicators were aborted");
    for (int r = 0; r < g->n; r++) {
        ncclResult_t async = ncclSuccess;
        ARMO_NCCL_TRY(e, ncclCommGetAsyncError(g->comm[r], &async));
        if (async != ncclSuccess)
            return armo_err_set(e, "NCCL reports an asynchronous error on TP rank %d: %s",
                                g->first + r, ncclGetErrorString(async));
    }
    return 0;
}

void armo_nccl_group_abort(armo_nccl_group *g) {
    if (!g || atomic_exchange(&g->aborted, 1)) return;
    for (int r = 0; r < g->n; r++) {
        ncclResult_t st = ncclCommAbort(g->comm[r]);
        if (st != ncclSuccess)
            fprintf(stderr, "armo: ncclCommAbort of TP rank %d failed: %s\n", g->first + r,
                    ncclGetErrorString(st));
    }
}

void armo_nccl_group_destroy(armo_nccl_group *g, int abort) {
    if (!g) return;
    for (int r = 0; r < g->n && !atomic_load(&g->aborted); r++) {
        if (!g->comm[r]) continue;
        ncclResult_t st = abort ? ncclCommAbort(g->comm[r]) : ncclCommDestroy(g->comm[r]);
        if (st != ncclSuccess)
            fprintf(stderr, "armo: %s of TP rank %d failed: %s\n",
                    abort ? "ncclCommAbort" : "ncclCommDestroy", g->first + r,
                    ncclGetErrorString(st));
    }
    free(g->comm);
    free(g);
}

int armo_nccl_allreduce_bf16(armo_nccl_group *g, int rank, void *buf, size_t count,
                             cudaStream_t stream, armo_err *e) {
    if (!g || rank < g->first || rank >= g->first + g->n)
        return armo_err_set(e, "NCCL all-reduce: rank %d is not held here", rank);
    if (atomic_load(&g->aborted))
        return armo_err_set(e, "NCCL all-reduce: the TP group's communicators were aborted (a "
                               "rank failed while its peers waited)");
    ARMO_NCCL_TRY(e, ncclAllReduce(buf, buf, count, ncclBfloat16, ncclSum,
                                   g->comm[rank - g->first], stream));
    return 0;
}

const char *armo_nccl_version(char *buf, size_t len) {
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess) snprintf(buf, len, "NCCL (version unknown)");
    else snprintf(buf, len, "NCCL %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    return buf;
}

#else /* built without NCCL */

static const char k_no_nccl[] =
    "this armo was built without NCCL (nccl.h / libnccl were not found under the CUDA "
    "installation): no tensor parallel on CUDA; install NCCL (e.g. the PyPI wheel "
    "nvidia-nccl-cu13) and rebuild, or use --device cpu";

armo_nccl_group *armo_nccl_group_create(const int *dev, int n, armo_err *e) {
    (void)dev;
    (void)n;
    armo_err_set(e, "%s", k_no_nccl);
    return NULL;
}

int armo_nccl_unique_id(unsigned char id[ARMO_NCCL_ID_BYTES], armo_err *e) {
    (void)id;
    return armo_err_set(e, "%s", k_no_nccl);
}

armo_nccl_group *armo_nccl_group_join(const unsigned char id[ARMO_NCCL_ID_BYTES], int n,
                                      int rank, int dev, armo_err *e) {
    (void)id, (void)n, (void)rank, (void)dev;
    armo_err_set(e, "%s", k_no_nccl);
    return NULL;
}

void armo_nccl_group_destroy(armo_nccl_group *g, int abort) {
    (void)g;
    (void)abort;
}

int armo_nccl_group_async_error(armo_nccl_group *g, armo_err *e) {
    (void)g;
    return armo_err_set(e, "%s", k_no_nccl);
}

void armo_nccl_group_abort(armo_nccl_group *g) { (void)g; }

int armo_nccl_allreduce_bf16(armo_nccl_group *g, int rank, void *buf, size_t count,
                             cudaStream_t stream, armo_err *e) {
    (void)g, (void)rank, (void)buf, (void)count, (void)stream;
    return armo_err_set(e, "%s", k_no_nccl);
}

const char *armo_nccl_version(char *buf, size_t len) {
    snprintf(buf, len, "no NCCL");
    return buf;
}

#endif
