/* mpi_bcast_check.c — host/dist/mpi_bcast.h under mpirun -np 2 (ctest
 * dist_mpi_bcast, built where MPI is found): rank 0's 128 bytes (the size
 * of an ncclUniqueId) reach every rank; 3 MB from the last rank too; a root
 * outside the world is refused with a message; a group split off the world
 * (pairs of ranks) broadcasts and max-reduces among its own ranks only.  Each rank exits 1 on a
 * failure (mpirun then fails). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/dist/mpi_bcast.h"
#include "tests/util/test_util.h"

int main(int argc, char **argv) {
    int rank = -1, world = 0;
    armo_err e;
    if (armo_mpi_init(&argc, &argv, &rank, &world, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    CHECK(world >= 2, "run it with mpirun -np 2 or more (world %d)", world);
    unsigned char id[128];
    for (int i = 0; i < 128; i++) id[i] = rank == 0 ? (unsigned char)(i * 37 + 11) : 0;
    CHECK(armo_mpi_bcast(id, sizeof id, 0, &e) == 0, "bcast of 128 bytes: %s", e.msg);
    int bad = 0;
    for (int i = 0; i < 128; i++) bad += id[i] != (unsigned char)(i * 37 + 11);
    CHECK(bad == 0, "rank %d: %d of the 128 bytes differ from rank 0's", rank, bad);

    size_t n = (size_t)3 << 20;
    unsigned char *big = malloc(n);
    CHECK(big != NULL, "out of memory");
    if (big) {
        for (size_t i = 0; i < n; i++) big[i] = rank == world - 1 ? (unsigned char)(i % 251) : 0;
        CHECK(armo_mpi_bcast(big, n, world - 1, &e) == 0, "bcast of 3 MB: %s", e.msg);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += big[i] != (unsigned char)(i % 251);
        CHECK(diff == 0, "rank %d: %zu of the 3 MB differ from rank %d's", rank, diff, world - 1);
        free(big);
    }
    CHECK(armo_mpi_bcast(id, sizeof id, world, &e) == -1 &&
              test_contains(e.msg, "the world has ranks 0 to"), "a root outside the world: %s",
          e.msg);
    /* a group split off the world: ranks {0, 1}, {2, 3}, ... ordered by
     * world rank; its broadcast and max-reduce stay inside it */
    armo_mpi_group *g = NULL;
    int grank = -1, gsize = 0;
    CHECK(armo_mpi_group_split(rank / 2, rank, &g, &grank, &gsize, &e) == 0, "split: %s", e.msg);
    if (g) {
        const int first = rank / 2 * 2, last = first + 1 < world ? first + 1 : first;
        CHECK(grank == rank - first && gsize == last - first + 1, "rank %d: group rank %d of %d",
              rank, grank, gsize);
        int64_t v[3] = {0, 0, grank == 0 ? 1000 + rank : 0}; /* the leader's value */
        CHECK(armo_mpi_group_bcast(g, &v[2], sizeof v[2], 0, &e) == 0, "group bcast: %s", e.msg);
        CHECK(v[2] == 1000 + first, "rank %d: the group's broadcast gave %lld", rank,
              (long long)v[2]);
        v[0] = rank, v[1] = -rank, v[2] = grank == 0 ? 5 : 3;
        CHECK(armo_mpi_group_max_i64(g, v, 3, 30, &e) == 0, "group max: %s", e.msg);
        CHECK(v[0] == last && v[1] == -first && v[2] == 5,
              "rank %d: group max {%lld, %lld, %lld}, want {%d, %d, 5}", rank, (long long)v[0],
              (long long)v[1], (long long)v[2], last, -first);
        armo_mpi_group_free(g);
    }
    if (armo_mpi_finalize(&e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    char name[64];
    snprintf(name, sizeof name, "mpi_bcast_check rank %d of %d", rank, world);
    return test_finish(name);
}
