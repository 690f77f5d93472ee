/* launch_env.c — rank and world size from the launcher's environment (see
 * launch_env.h for the variables and their order). */
#include "host/dist/launch_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads the non-negative integer variable name into *v.  0 when set and
 * valid, 1 when unset (or empty), -1 (e set) when set but not a number. */
static int env_long(armo_getenv_fn get, const char *name, long *v, armo_err *e) {
    const char *s = get(name);
    if (!s || !*s) return 1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || end == s || x < 0 || x > 1000000000L)
        return armo_err_set(e, "the environment variable %s='%s' is not a non-negative integer",
                            name, s);
    *v = x;
    return 0;
}

/* A (rank, size) pair of variables: 0 found, 1 neither set, -1 error. */
static int env_pair(armo_getenv_fn get, const char *rn, const char *sn, long *r, long *s,
                    armo_err *e) {
    int a = env_long(get, rn, r, e);
    if (a < 0) return -1;
    int b = env_long(get, sn, s, e);
    if (b < 0) return -1;
    if (a && b) return 1;
    if (a || b)
        return armo_err_set(e, "%s is set but %s is not: cannot tell this process's rank and "
                               "world size (pass --rank R --world W)", a ? sn : rn, a ? rn : sn);
    if (*s < 1 || *r >= *s)
        return armo_err_set(e, "%s=%ld with %s=%ld: the rank must be below the world size",
                            rn, *r, sn, *s);
    return 0;
}

/* The launch level (mpirun's ranks, srun's tasks): rank/tasks, 0/1 when
 * none; what found them in src. */
static int launch_level(armo_getenv_fn get, long *rank, long *tasks, char *src, size_t n,
                        armo_err *e) {
    static const char *pairs[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                     {"PMI_RANK", "PMI_SIZE"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int rc = env_pair(get, pairs[i][0], pairs[i][1], rank, tasks, e);
        if (rc < 0) return -1;
        if (rc == 0) {
            snprintf(src, n, "%s/%s", pairs[i][0], pairs[i][1]);
            return 0;
        }
    }
    const char *step = get("SLURM_STEP_ID");
    if (!step || !*step) step = get("SLURM_STEPID");
    if (step && *step) {
        const char *sn = get("SLURM_STEP_NUM_TASKS") && *get("SLURM_STEP_NUM_TASKS")
                             ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
        int rc = env_pair(get, "SLURM_PROCID", sn, rank, tasks, e);
        if (rc < 0) return -1;
        if (rc == 0) {
            snprintf(src, n, "SLURM_PROCID/%s", sn);
            return 0;
        }
    }
    long pmix;
    int rc = env_long(get, "PMIX_RANK", &pmix, e);
    if (rc < 0) return -1;
    if (rc == 0)
        return armo_err_set(e, "PMIX_RANK=%ld is set but no world size is (no "
                               "OMPI_COMM_WORLD_SIZE, PMI_SIZE or Slurm step): pass --rank R "
                               "--world W", pmix);
    *rank = 0;
    *tasks = 1;
    src[0] = 0;
    return 0;
}

/* The Slurm job array level: rank/count, 0/1 outside an array. */
static int array_level(armo_getenv_fn get, long *rank, long *count, armo_err *e) {
    long id, min = 0, max = -1, step = 1, cnt = -1;
    int rc = env_long(get, "SLURM_ARRAY_TASK_ID", &id, e);
    if (rc) {
        *rank = 0;
        *count = 1;
        return rc < 0 ? -1 : 0;
    }
    if (env_long(get, "SLURM_ARRAY_TASK_MIN", &min, e) < 0 ||
        env_long(get, "SLURM_ARRAY_TASK_MAX", &max, e) < 0 ||
        env_long(get, "SLURM_ARRAY_TASK_STEP", &step, e) < 0 ||
        env_long(get, "SLURM_ARRAY_TASK_COUNT", &cnt, e) < 0)
        return -1;
    if (max < 0 && cnt < 0)
        return armo_err_set(e, "SLURM_ARRAY_TASK_ID=%ld is set but neither "
                               "SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is: cannot tell "
                               "how many array tasks share the input (pass --rank R --world W)",
                            id);
    if (step < 1) step = 1;
    long regular = max >= 0 ? (max - min) / step + 1 : cnt;
    if (id < min || (id - min) % step || (max >= 0 && (max < min || (max - min) % step)) ||
        (cnt >= 0 && cnt != regular) || (id - min) / step >= regular)
        return armo_err_set(e, "the Slurm array task ids are not a regular range (task %ld; "
                               "min %ld, max %ld, step %ld, count %ld): armo numbers array tasks "
                               "min, min+step, ..., max; use --array=A-B[:S] or pass --rank R "
                               "--world W", id, min, max, step, cnt);
    *rank = (id - min) / step;
    *count = regular;
    return 0;
}

const char *armo_getenv(const char *name) { return getenv(name); }

int armo_dist_rank_from_env(armo_getenv_fn get, armo_dist_rank *d, armo_err *e) {
    long tr = 0, tn = 1, ar = 0, an = 1;
    char src[100];
    if (launch_level(get, &tr, &tn, src, sizeof src, e) || array_level(get, &ar, &an, e))
        return armo_err_prefix(e, "finding this rank from the launcher's environment");
    if (tn * an > ARMO_DIST_MAX_WORLD)
        return armo_err_set(e, "%ld array tasks x %ld tasks each = %ld ranks: more than the "
                               "%d armo splits a run into", an, tn, tn * an, ARMO_DIST_MAX_WORLD);
    d->rank = (int)(ar * tn + tr);
    d->world = (int)(an * tn);
    if (an > 1 && tn > 1)
        snprintf(d->source, sizeof d->source,
                 "Slurm array task %ld of %ld x %s %ld of %ld", ar, an, src, tr, tn);
    else if (an > 1)
        snprintf(d->source, sizeof d->source, "Slurm array task %ld of %ld", ar, an);
    else
        snprintf(d->source, sizeof d->source, "%s", tn > 1 ? src : "");
    return 0;
}

int armo_dist_rank_resolve(int rank, int world, armo_getenv_fn get, armo_dist_rank *d,
                           armo_err *e) {
    if ((rank < 0) != (world < 0))
        return armo_err_set(e, "--rank and --world go together (%s given alone)",
                            rank < 0 ? "--world" : "--rank");
    if (rank < 0) return armo_dist_rank_from_env(get, d, e);
    if (world < 1 || world > ARMO_DIST_MAX_WORLD)
        return armo_err_set(e, "--world %d: expected 1 to %d", world, ARMO_DIST_MAX_WORLD);
    if (rank >= world)
        return armo_err_set(e, "--rank %d is not below --world %d (ranks are 0 to %d)", rank,
                            world, world - 1);
    d->rank = rank;
    d->world = world;
    snprintf(d->source, sizeof d->source, "--rank/--world");
    return 0;
}
