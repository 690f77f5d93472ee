/* shard.h — how a run's records are split between ranks, and the names of
 * the part files the ranks write.
 *
 * The split is round-robin by record index: input record i (0-based,
 * blank lines not counted, as armo score counts them) belongs to rank
 * i % world and is line i / world of that rank's part.  Why not contiguous
 * blocks: a rank needs no record count before it starts (it streams the
 * input as one process does; blocks would need a counting pass and the
 * same count on every rank), and inputs are often grouped (by source, by
 * length, best-of-N blocks together): round-robin spreads the long records
 * over all ranks, where blocks would give one rank all of them.  The cost:
 * merging interleaves the parts instead of concatenating them (armo merge).
 * The line reader applies it (armo_line_reader_shard, host/engine).
 *
 * Part file of rank R of W for --output OUT: OUT.part-RRRRR-of-WWWWW (5
 * digits each), beside OUT. */
#ifndef ARMO_DIST_SHARD_H
#define ARMO_DIST_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

/* the rank that scores input record idx */
static inline int armo_shard_rank_of(int64_t idx, int world) { return (int)(idx % world); }

/* Writes OUT.part-RRRRR-of-WWWWW into buf (len bytes); -1 when it does not
 * fit. */
int armo_part_name(const char *out, int rank, int world, char *buf, size_t len, armo_err *e);

/* Whether path ends in .part-RRRRR-of-WWWWW (0 <= R < W): 1 and *rank,
 * *world, and *base_len (the length of the OUT before it); else 0. */
int armo_part_parse(const char *path, int *rank, int *world, size_t *base_len);

#endif
