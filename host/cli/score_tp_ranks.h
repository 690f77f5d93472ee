/* score_tp_ranks.h — `armo score --tp N --tp-across-ranks`: tensor-parallel
 * groups spread over the processes of one launch (mpirun, or srun
 * --mpi=pmix), one GPU each, the way TP usually runs under a launcher.
 *
 * N consecutive launcher ranks form a group (8 ranks, --tp 2: 4 groups of
 * 2).  Group g = rank / N is data-parallel shard g of world / N (shard.h's
 * split by record index); its TP rank 0 (the leader) writes the group's
 * part file (OUT.part-g-of-G; OUT itself when G = 1), the other ranks run
 * the same batches and write nothing.  Lives in the CLI because it glues
 * three rooms that must not know each other: the launcher's ranks
 * (host/dist, with MPI), the scheduler (host/engine) and the CUDA backend
 * (host/cuda, reached through backend_open.h).
 *
 * Bootstrap: MPI_Init (only in this mode: armo links MPI where it was
 * built with it, mpi_bcast.h says why), MPI_Comm_split by group, the
 * leader's NCCL unique id broadcast in the group, ncclCommInitRank on each
 * rank's device: --devices D, else the node-local rank
 * (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID) modulo the
 * visible devices.
 *
 * Keeping the ranks in step: every rank of a group must pack the very same
 * batches, or their collectives pair different tensors (or wait forever).
 * Same input and options give the same records; what could still differ
 * is settled over MPI before it matters: --resume (the leader checks its
 * part; the others skip the records it holds), the batch budget (each
 * rank's GPU memory check; the group takes the smallest), and every batch's
 * outcome: after each score call the ranks max-reduce (failed, lost, the
 * lowered budget of an out-of-memory batch, a SIGINT / SIGTERM seen: then
 * every rank stops after this batch).  All ranks scored it, or all
 * refused it (a bad batch, or all out of memory: the smallest budget is
 * then every rank's, so they re-pack alike): the run goes on.  Ranks that
 * disagree (one out of memory, a device lost), or a peer that does not
 * come back within ARMO_TP_PEER_TIMEOUT_S seconds (default 600: it may be
 * blocked in a collective whose partner failed) end the whole job with
 * MPI_Abort and a message naming the rank: mpirun / srun stop every
 * process, the parts hold whole lines, and the same command with --resume
 * completes them.  A failure while setting up (a model that does not load,
 * a budget, a device) is agreed on before the NCCL bootstrap, so that all
 * ranks exit 2 with it; one after the bootstrap on one rank only aborts. */
#ifndef ARMO_CLI_SCORE_TP_RANKS_H
#define ARMO_CLI_SCORE_TP_RANKS_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/errors.h"
#include "host/cli/cli_backend.h"
#include "host/dist/launch_env.h"
#include "host/engine/backend.h"
#include "weights/model.h"

typedef struct {
    int tp;                      /* ranks per group */
    int tp_rank;                 /* this process's rank in its group (0: the leader) */
    int group, groups;           /* its data-parallel shard of `groups` */
    int launch_rank, launch_world;
    int device;                  /* its GPU (an ordinal among the visible ones) */
    void *mpi;                   /* its group's communicator (mpi_bcast.h) */
    int mpi_up;                  /* this process initialised MPI */
    atomic_int *signal;          /* set by this process's SIGINT / SIGTERM handler */
    atomic_int *group_stop;      /* the scheduler's stop flag: set by the group's agreement */
} armo_tp_ranks;

/* From the launcher's rank d (rank R of W): checks W % tp == 0, starts
 * MPI (its world must be the launch's: R % tp and W % tp agree with it),
 * splits the group.  Fills t; -1 with e saying why (exit 2). */
int armo_tp_ranks_start(armo_tp_ranks *t, int tp, const armo_dist_rank *d, armo_err *e);

/* v[0..n) of the leader to every rank of the group. */
int armo_tp_ranks_share(armo_tp_ranks *t, int64_t *v, int n, armo_err *e);

/* 1 when any rank of the group passes failed != 0 (each learns it), else
 * 0; -1 when MPI failed. */
int armo_tp_ranks_any(armo_tp_ranks *t, int failed, armo_err *e);

/* The group's backend: every rank plans it (cli_backend.h: kind, budget,
 * the GPU fit check), the group agrees on the smallest budget, the leader
 * makes the NCCL id and sends it, each rank joins on its device and opens
 * its shards, and the group agrees that all opened.  The backend returned
 * checks each batch's outcome with the peers (see above).  NULL with e
 * set: every rank of the group gets a NULL (exit 2), or the job is
 * aborted. */
armo_backend *armo_tp_ranks_open(armo_tp_ranks *t, const armo_model *m,
                                 const armo_cli_backend_args *a, int max_length,
                                 armo_backend_opts *bo, int64_t *budget, armo_err *e);

/* A rank that fails between armo_tp_ranks_start and armo_tp_ranks_open
 * (the model, the tokenizer) says so to its peers, which are waiting in
 * armo_tp_ranks_open's first agreement: all exit 2 instead of waiting. */
void armo_tp_ranks_setup_failed(armo_tp_ranks *t);

/* SIGINT / SIGTERM: `signal` is what this process's handler sets; the
 * scheduler is given `group_stop` instead, which every rank of the group
 * sets in the same batch's agreement once any rank has seen a signal (the
 * agreed signal number, copied into `signal` too), so that all stop after
 * the same batch instead of one leaving the others in a collective. */
void armo_tp_ranks_set_stop(armo_tp_ranks *t, atomic_int *signal, atomic_int *group_stop);

/* Frees the group and finalises MPI (after the backend is closed). */
void armo_tp_ranks_end(armo_tp_ranks *t);

#endif
