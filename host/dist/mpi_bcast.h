/* mpi_bcast.h — the little of MPI that armo needs: start it, learn rank and
 * world, broadcast bytes from one rank to all (what a tensor-parallel group
 * spread over processes needs to bootstrap NCCL: rank 0's ncclUniqueId, 128
 * bytes, sent to every rank of the group before ncclCommInitRank).
 *
 * Built only where MPI is found at build time (libopenmpi-dev: CMake's
 * FindMPI), into a library of its own, armo_mpi (ARMO_HAVE_MPI=1 for what
 * links it); armo_core and the armo binary do not link it, so that a build
 * without MPI and the binary that srun / mpirun / job arrays launch need no
 * MPI (host/dist/merge.h says why the data-parallel path needs none).  A
 * program that links armo_mpi depends on libmpi at run time.
 *
 * Every MPI call is checked: MPI_COMM_WORLD's error handler is set to
 * MPI_ERRORS_RETURN at init, and a failed call becomes -1 with e naming
 * the call, the rank and MPI's own error string.  Single-threaded use
 * (MPI_THREAD_FUNNELED: call from the thread that initialised). */
#ifndef ARMO_DIST_MPI_BCAST_H
#define ARMO_DIST_MPI_BCAST_H

#include <stddef.h>

#include "base/errors.h"

/* MPI_Init_thread (funneled) unless already initialised; *rank, *world of
 * MPI_COMM_WORLD. */
int armo_mpi_init(int *argc, char ***argv, int *rank, int *world, armo_err *e);

/* buf[0..len) of rank root to every rank (each passes its own buf and the
 * same len and root); any length (sent in pieces of at most INT_MAX). */
int armo_mpi_bcast(void *buf, size_t len, int root, armo_err *e);

/* MPI_Finalize, when this process initialised MPI. */
int armo_mpi_finalize(armo_err *e);

#endif
