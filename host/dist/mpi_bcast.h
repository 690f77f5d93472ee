/* mpi_bcast.h — the little of MPI that armo needs: start it, learn rank and
 * world, broadcast bytes from one rank to all (what a tensor-parallel group
 * spread over processes needs to bootstrap NCCL: rank 0's ncclUniqueId, 128
 * bytes, sent to every rank of the group before ncclCommInitRank), and,
 * inside such a group (a communicator split off MPI_COMM_WORLD), the
 * agreement its ranks need to stay in step: a max-reduce of a few numbers,
 * with a deadline.
 *
 * Built only where MPI is found at build time (libopenmpi-dev: CMake's
 * FindMPI), into a library of its own, armo_mpi (ARMO_HAVE_MPI=1 for what
 * links it).  armo_core does not link it (libarmo.so, the tests and the
 * Python package need no MPI); the armo CLI does, where it is built, for
 * `armo score --tp N --tp-across-ranks` alone: armo calls MPI_Init only in
 * that mode, so that every other run (srun / mpirun / job-array data
 * parallel, which needs no MPI: host/dist/merge.h says why) behaves as a
 * program without MPI; a build without MPI refuses the mode.  A program
 * that links armo_mpi depends on libmpi at run time.
 *
 * Every MPI call is checked: MPI_COMM_WORLD's error handler is set to
 * MPI_ERRORS_RETURN at init (and inherited by the groups split off it),
 * and a failed call becomes -1 with e naming the call, the rank and MPI's
 * own error string.  MPI_THREAD_SERIALIZED: calls may come from several
 * threads, one at a time (armo score's set-up on the main thread, its
 * per-batch agreement on the scheduler's worker thread). */
#ifndef ARMO_DIST_MPI_BCAST_H
#define ARMO_DIST_MPI_BCAST_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

/* MPI_Init_thread (funneled) unless already initialised; *rank, *world of
 * MPI_COMM_WORLD. */
int armo_mpi_init(int *argc, char ***argv, int *rank, int *world, armo_err *e);

/* buf[0..len) of rank root to every rank (each passes its own buf and the
 * same len and root); any length (sent in pieces of at most INT_MAX). */
int armo_mpi_bcast(void *buf, size_t len, int root, armo_err *e);

/* MPI_Finalize, when this process initialised MPI. */
int armo_mpi_finalize(armo_err *e);

/* MPI_Abort of the whole world with `code` (mpirun / srun end every rank):
 * for a failure that leaves peers blocked where no message can reach them. */
void armo_mpi_abort(int code);

/* A communicator of the ranks of MPI_COMM_WORLD that pass the same color,
 * ordered by key (MPI_Comm_split); *size and *rank in it. */
typedef struct armo_mpi_group armo_mpi_group;
int armo_mpi_group_split(int color, int key, armo_mpi_group **g, int *rank, int *size,
                         armo_err *e);
void armo_mpi_group_free(armo_mpi_group *g);

/* armo_mpi_bcast within the group. */
int armo_mpi_group_bcast(armo_mpi_group *g, void *buf, size_t len, int root, armo_err *e);

/* v[0..n) = the element-wise max over the group's ranks (MPI_Iallreduce,
 * polled).  timeout_s > 0: gives up after that many seconds and returns 1
 * (a peer never arrived; the request is left pending: the caller aborts);
 * else waits as long as it takes.  0 done, -1 e set. */
int armo_mpi_group_max_i64(armo_mpi_group *g, int64_t *v, int n, double timeout_s, armo_err *e);

#endif
