/* test_launch_env.c — rank and world size from a launcher's environment
 * (host/dist/launch_env.h) over tables of variables as srun, sbatch
 * arrays, mpirun and hydra set them (values measured on Slurm 22.05 and
 * OpenMPI 4.1 where the machine has them), --rank / --world, the errors;
 * and the part file names (host/dist/shard.h). */
#include <string.h>

#include "host/dist/launch_env.h"
#include "host/dist/shard.h"
#include "tests/util/test_util.h"

static const char *const *g_env; /* NAME, VALUE, ..., NULL */

static const char *fake_getenv(const char *name) {
    for (const char *const *p = g_env; p && *p; p += 2)
        if (!strcmp(p[0], name)) return p[1];
    return NULL;
}

/* The env gives rank/world (want_rank < 0: an error containing msg). */
static void expect(const char *what, const char *const *env, int want_rank, int want_world,
                   const char *msg) {
    g_env = env;
    armo_dist_rank d = {0};
    armo_err e = {{0}};
    int rc = armo_dist_rank_from_env(fake_getenv, &d, &e);
    if (want_rank < 0) {
        CHECK(rc == -1 && test_contains(e.msg, msg), "%s: expected an error with '%s', got rc %d "
              "'%s'", what, msg, rc, e.msg);
        return;
    }
    CHECK(rc == 0 && d.rank == want_rank && d.world == want_world,
          "%s: expected %d/%d, got rc %d %d/%d (%s)", what, want_rank, want_world, rc, d.rank,
          d.world, e.msg);
    if (msg) CHECK(test_contains(d.source, msg), "%s: source '%s' lacks '%s'", what, d.source, msg);
}

static void test_env(void) {
    expect("nothing", (const char *[]){NULL}, 0, 1, NULL);
    /* srun -n 2, task 1 (a job step) */
    expect("srun", (const char *[]){"SLURM_STEP_ID", "0", "SLURM_PROCID", "1",
                                    "SLURM_STEP_NUM_TASKS", "2", "SLURM_NTASKS", "2", NULL},
           1, 2, "SLURM_PROCID/SLURM_STEP_NUM_TASKS");
    expect("srun, old Slurm", (const char *[]){"SLURM_STEPID", "3", "SLURM_PROCID", "2",
                                               "SLURM_NTASKS", "4", NULL}, 2, 4, "SLURM_NTASKS");
    /* a batch script itself: SLURM_NTASKS is the allocation's, no step */
    expect("batch script", (const char *[]){"SLURM_JOB_ID", "7", "SLURM_PROCID", "0",
                                            "SLURM_NTASKS", "4", NULL}, 0, 1, NULL);
    /* sbatch --array=0-3, task 2, run directly in the batch script */
    expect("array", (const char *[]){"SLURM_ARRAY_TASK_ID", "2", "SLURM_ARRAY_TASK_MIN", "0",
                                     "SLURM_ARRAY_TASK_MAX", "3", "SLURM_ARRAY_TASK_STEP", "1",
                                     "SLURM_ARRAY_TASK_COUNT", "4", "SLURM_PROCID", "0",
                                     "SLURM_NTASKS", "2", NULL}, 2, 4, "array task 2 of 4");
    /* --array=10-20:5, task 15, no COUNT (old Slurm) */
    expect("array step", (const char *[]){"SLURM_ARRAY_TASK_ID", "15", "SLURM_ARRAY_TASK_MIN",
                                          "10", "SLURM_ARRAY_TASK_MAX", "20",
                                          "SLURM_ARRAY_TASK_STEP", "5", NULL}, 1, 3, NULL);
    /* --array=0-1 with srun -n 3 inside: array task 1, step task 2 -> 1*3+2 of 6 */
    expect("array x srun", (const char *[]){"SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_MIN",
                                            "0", "SLURM_ARRAY_TASK_MAX", "1",
                                            "SLURM_ARRAY_TASK_COUNT", "2", "SLURM_STEP_ID", "0",
                                            "SLURM_PROCID", "2", "SLURM_STEP_NUM_TASKS", "3",
                                            NULL}, 5, 6, "x SLURM_PROCID");
    /* mpirun -np 4 inside a Slurm allocation: OpenMPI's variables win */
    expect("mpirun", (const char *[]){"OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "4",
                                      "PMIX_RANK", "3", "SLURM_STEP_ID", "0", "SLURM_PROCID",
                                      "0", "SLURM_STEP_NUM_TASKS", "1", NULL}, 3, 4,
           "OMPI_COMM_WORLD_RANK");
    expect("hydra", (const char *[]){"PMI_RANK", "1", "PMI_SIZE", "2", NULL}, 1, 2, "PMI_RANK");
    /* errors */
    expect("rank >= size", (const char *[]){"OMPI_COMM_WORLD_RANK", "4", "OMPI_COMM_WORLD_SIZE",
                                            "4", NULL}, -1, 0, "must be below the world size");
    expect("size alone", (const char *[]){"PMI_SIZE", "4", NULL}, -1, 0,
           "PMI_SIZE is set but PMI_RANK is not");
    expect("not a number", (const char *[]){"OMPI_COMM_WORLD_RANK", "x1",
                                            "OMPI_COMM_WORLD_SIZE", "4", NULL}, -1, 0,
           "OMPI_COMM_WORLD_RANK='x1' is not a non-negative integer");
    expect("pmix alone", (const char *[]){"PMIX_RANK", "1", NULL}, -1, 0,
           "PMIX_RANK=1 is set but no world size");
    expect("array irregular", (const char *[]){"SLURM_ARRAY_TASK_ID", "4",
                                               "SLURM_ARRAY_TASK_MIN", "1",
                                               "SLURM_ARRAY_TASK_MAX", "5",
                                               "SLURM_ARRAY_TASK_COUNT", "3", NULL}, -1, 0,
           "not a regular range");
    expect("array no count", (const char *[]){"SLURM_ARRAY_TASK_ID", "4", NULL}, -1, 0,
           "neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX");
}

static void test_flags(void) {
    armo_dist_rank d;
    armo_err e;
    g_env = (const char *[]){"OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2", NULL};
    CHECK(armo_dist_rank_resolve(2, 5, fake_getenv, &d, &e) == 0 && d.rank == 2 && d.world == 5,
          "--rank/--world replace the environment");
    CHECK(armo_dist_rank_resolve(-1, -1, fake_getenv, &d, &e) == 0 && d.rank == 1 &&
              d.world == 2, "no flags: the environment");
    CHECK(armo_dist_rank_resolve(5, 5, fake_getenv, &d, &e) == -1 &&
              test_contains(e.msg, "--rank 5 is not below --world 5"), "%s", e.msg);
    CHECK(armo_dist_rank_resolve(-1, 3, fake_getenv, &d, &e) == -1 &&
              test_contains(e.msg, "--world given alone"), "%s", e.msg);
}

static void test_parts(void) {
    char b[64];
    armo_err e;
    CHECK(armo_part_name("out/s.jsonl", 3, 12, b, sizeof b, &e) == 0 &&
              !strcmp(b, "out/s.jsonl.part-00003-of-00012"), "%s", b);
    CHECK(armo_part_name("a-very-long-output-file-name-indeed.jsonl", 0, 2, b, 40, &e) == -1,
          "a name that does not fit is refused");
    int r, w;
    size_t bl;
    CHECK(armo_part_parse("out/s.jsonl.part-00003-of-00012", &r, &w, &bl) && r == 3 && w == 12 &&
              bl == strlen("out/s.jsonl"), "parse");
    CHECK(!armo_part_parse("s.part-00003-of-00003", &r, &w, &bl), "rank == world is no part");
    CHECK(!armo_part_parse("s.part-0003-of-00012", &r, &w, &bl), "4 digits");
    CHECK(!armo_part_parse(".part-00000-of-00001", &r, &w, &bl), "no OUT before it");
    CHECK(!armo_part_parse("s.part-00000-of-00001.tmp", &r, &w, &bl), "a suffix after it");
    CHECK(armo_shard_rank_of(7, 3) == 1 && armo_shard_rank_of(0, 5) == 0, "round-robin");
}

int main(void) {
    test_env();
    test_flags();
    test_parts();
    return test_finish("test_launch_env");
}
