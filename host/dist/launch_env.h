/* launch_env.h — which rank of how many this process is, from the
 * launcher's environment (Slurm, OpenMPI, PMI) or from --rank / --world.
 *
 * Two levels multiply: the tasks of one launch (mpirun's ranks, or srun's
 * tasks of a job step) and the tasks of a Slurm job array (one launch per
 * array task).  rank = array_rank * tasks + task_rank, world = array_count
 * * tasks, so that `sbatch --array=0-3` with `srun -n 2` inside is 8 ranks.
 *
 * Launch level, first found wins:
 *   OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE   (OpenMPI's mpirun)
 *   PMI_RANK / PMI_SIZE                           (MPICH / Intel MPI hydra)
 *   SLURM_PROCID / SLURM_STEP_NUM_TASKS (else SLURM_NTASKS), only inside a
 *     job step (SLURM_STEP_ID set): a batch script itself is not a step,
 *     and its SLURM_NTASKS is the allocation's, not this process's world
 *   PMIX_RANK alone (no size anywhere): an error, pass --rank / --world
 * Array level: SLURM_ARRAY_TASK_ID, with SLURM_ARRAY_TASK_MIN / _MAX /
 *   _STEP / _COUNT: rank (id - min) / step of count; indices that are not
 *   a regular range (--array=1,4,5) are refused: pass --rank / --world.
 * A variable that is set but not a number, or one of a pair without the
 * other, is an error naming it.  --rank / --world replace all of it. */
#ifndef ARMO_DIST_LAUNCH_ENV_H
#define ARMO_DIST_LAUNCH_ENV_H

#include "base/errors.h"

/* the most ranks armo splits a run into (part file names have 5 digits) */
#define ARMO_DIST_MAX_WORLD 99999

typedef struct {
    int rank, world;             /* 0 <= rank < world; world 1: not split */
    char source[200];            /* where they came from, for messages */
} armo_dist_rank;

/* the environment lookup (getenv, or a table in tests) */
typedef const char *(*armo_getenv_fn)(const char *name);

/* getenv, as an armo_getenv_fn */
const char *armo_getenv(const char *name);

/* From the environment through get.  No launcher: rank 0 of 1. */
int armo_dist_rank_from_env(armo_getenv_fn get, armo_dist_rank *d, armo_err *e);

/* --rank / --world when given (either < 0: not given; both or neither),
 * else the environment.  Checks 0 <= rank < world <= ARMO_DIST_MAX_WORLD. */
int armo_dist_rank_resolve(int rank, int world, armo_getenv_fn get, armo_dist_rank *d,
                           armo_err *e);

#endif
