/* mpi_bcast_check.c — host/dist/mpi_bcast.h under mpirun -np 2 (ctest
 * dist_mpi_bcast, built where MPI is found): rank 0's 128 bytes (the size
 * of an ncclUniqueId) reach every rank; 3 MB from the last rank too; a root
 * outside the world is refused with a message.  Each rank exits 1 on a
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
    if (armo_mpi_finalize(&e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    char name[64];
    snprintf(name, sizeof name, "mpi_bcast_check rank %d of %d", rank, world);
    return test_finish(name);
}
