/* mpi_bcast.c — MPI start-up and a checked byte broadcast (see
 * mpi_bcast.h).  Compiled only into armo_mpi, where MPI was found. */
#include "host/dist/mpi_bcast.h"

#include <limits.h>
#include <mpi.h>

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
        if (mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided),
                      "MPI_Init_thread", e))
            return -1;
        g_initialised_here = 1;
        if (provided < MPI_THREAD_FUNNELED)
            return armo_err_set(e, "MPI provides thread level %d, below MPI_THREAD_FUNNELED",
                                provided);
    }
    if (mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN),
                  "MPI_Comm_set_errhandler", e) ||
        mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, rank), "MPI_Comm_rank", e) ||
        mpi_check(MPI_Comm_size(MPI_COMM_WORLD, world), "MPI_Comm_size", e))
        return -1;
    return 0;
}

int armo_mpi_bcast(void *buf, size_t len, int root, armo_err *e) {
    int world = 0;
    if (mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &world), "MPI_Comm_size", e)) return -1;
    if (root < 0 || root >= world)
        return armo_err_set(e, "broadcast from rank %d: the world has ranks 0 to %d", root,
                            world - 1);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < (size_t)INT_MAX ? len - off : (size_t)INT_MAX;
        if (mpi_check(MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD),
                      "MPI_Bcast", e))
            return -1;
        off += n;
    }
    return 0;
}

int armo_mpi_finalize(armo_err *e) {
    if (!g_initialised_here) return 0;
    g_initialised_here = 0;
    return mpi_check(MPI_Finalize(), "MPI_Finalize", e);
}
