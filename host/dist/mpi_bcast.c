/* mpi_bcast.c — MPI start-up and a checked byte broadcast (see
 * mpi_bcast.h).  Compiled only into armo_mpi, where MPI was found. */
#include "host/dist/mpi_bcast.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int g_initialised_here;

/* -1 with e set when rc is not MPI_SUCCESS. */
static int mpi_check(int rc, const char *call, armo_err *e) {
    if (rc == MPI_SUCCESS) return 0;
    char s[MPI_MAX_ERROR_STRING];
    int n = 0, rank = -1, init = 0;
    if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS) n = 0;
    s[n < MPI_MAX_ERROR_STRING ? n : MPI_MAX_ERROR_STRING - 1] = 0;
    if (MPI_Initialized(&init) == MPI_SUCCESS && init &&
        MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS)
        rank = -1;
    return armo_err_set(e, "%s failed on MPI rank %d: %s (error %d)", call, rank,
                        n ? s : "no message", rc);
}

int armo_mpi_init(int *argc, char ***argv, int *rank, int *world, armo_err *e) {
    int init = 0;
    if (mpi_check(MPI_Initialized(&init), "MPI_Initialized", e)) return -1;
    if (!init) {
        int provided = 0;
        if (mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided),
                      "MPI_Init_thread", e))
            return -1;
        g_initialised_here = 1;
        if (provided < MPI_THREAD_SERIALIZED)
            return armo_err_set(e, "MPI provides thread level %d, below MPI_THREAD_SERIALIZED",
                                provided);
    }
    if (mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN),
                  "MPI_Comm_set_errhandler", e) ||
        mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, rank), "MPI_Comm_rank", e) ||
        mpi_check(MPI_Comm_size(MPI_COMM_WORLD, world), "MPI_Comm_size", e))
        return -1;
    return 0;
}

/* buf[0..len) from root to every rank of comm, in pieces of at most INT_MAX. */
static int bcast_on(MPI_Comm comm, const char *what, void *buf, size_t len, int root,
                    armo_err *e) {
    int size = 0;
    if (mpi_check(MPI_Comm_size(comm, &size), "MPI_Comm_size", e)) return -1;
    if (root < 0 || root >= size)
        return armo_err_set(e, "broadcast from rank %d: the %s has ranks 0 to %d", root, what,
                            size - 1);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < (size_t)INT_MAX ? len - off : (size_t)INT_MAX;
        if (mpi_check(MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, comm), "MPI_Bcast", e))
            return -1;
        off += n;
    }
    return 0;
}

int armo_mpi_bcast(void *buf, size_t len, int root, armo_err *e) {
    return bcast_on(MPI_COMM_WORLD, "world", buf, len, root, e);
}

void armo_mpi_abort(int code) {
    int init = 0;
    if (MPI_Initialized(&init) == MPI_SUCCESS && init) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* not reached when MPI is up (MPI_Abort does not return) */
}

struct armo_mpi_group {
    MPI_Comm comm;
};

int armo_mpi_group_split(int color, int key, armo_mpi_group **g, int *rank, int *size,
                         armo_err *e) {
    *g = calloc(1, sizeof **g);
    if (!*g) return armo_err_set(e, "out of host memory");
    (*g)->comm = MPI_COMM_NULL;
    if (mpi_check(MPI_Comm_split(MPI_COMM_WORLD, color, key, &(*g)->comm), "MPI_Comm_split", e) ||
        mpi_check(MPI_Comm_rank((*g)->comm, rank), "MPI_Comm_rank", e) ||
        mpi_check(MPI_Comm_size((*g)->comm, size), "MPI_Comm_size", e)) {
        armo_mpi_group_free(*g);
        *g = NULL;
        return -1;
    }
    return 0;
}

void armo_mpi_group_free(armo_mpi_group *g) {
    if (!g) return;
    armo_err e;
    if (g->comm != MPI_COMM_NULL && mpi_check(MPI_Comm_free(&g->comm), "MPI_Comm_free", &e))
        fprintf(stderr, "armo: %s\n", e.msg);
    free(g);
}

int armo_mpi_group_bcast(armo_mpi_group *g, void *buf, size_t len, int root, armo_err *e) {
    return bcast_on(g->comm, "TP group", buf, len, root, e);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int armo_mpi_group_max_i64(armo_mpi_group *g, int64_t *v, int n, double timeout_s, armo_err *e) {
    int64_t in[16];
    if (n < 1 || n > 16) return armo_err_set(e, "max-reduce of %d values: 1 to 16", n);
    for (int i = 0; i < n; i++) in[i] = v[i];
    MPI_Request req;
    if (mpi_check(MPI_Iallreduce(in, v, n, MPI_INT64_T, MPI_MAX, g->comm, &req),
                  "MPI_Iallreduce", e))
        return -1;
    const double until = now_s() + timeout_s;
    for (long spins = 0;; spins++) {
        int done = 0;
        if (mpi_check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test", e)) return -1;
        if (done) return 0;
        if (timeout_s > 0 && now_s() > until) return 1;
        if (spins > 1000) { /* past the first millisecond or so: poll every 0.2 ms */
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
        }
    }
}

int armo_mpi_finalize(armo_err *e) {
    if (!g_initialised_here) return 0;
    g_initialised_here = 0;
    return mpi_check(MPI_Finalize(), "MPI_Finalize", e);
}
