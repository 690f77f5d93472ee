/* merge.h — the ranks' part files back into one output in input order
 * (armo merge).
 *
 * Why part files and a merge rather than a gather at rank 0 over MPI: data
 * parallel scoring needs no MPI (armo starts it only for `armo score
 * --tp-across-ranks`, TP groups across processes; the same armo runs under
 * srun, mpirun, a job array whose tasks need not even run at the same
 * time, or by hand with --rank / --world); each rank writes its part with armo score's
 * output safety (a lock, whole lines, fsync, --resume), so a rank that
 * dies costs only its own records: a rerun of it with --resume completes
 * its part, where a gather would lose the run (MPI aborts every rank when
 * one dies) or need checkpointing of its own.  The price: a shared file
 * system for the parts (usual on clusters) and this merge, which reads
 * each byte once.
 *
 * Checks, each failure naming the part, its line and the record: the
 * parts are of one world size W, ranks 0..W-1 each exactly once, none
 * still being written (its lock held: a rank still running); every line
 * whole (no torn last line) and a JSON object; the line counts those of a
 * round-robin split (shard.h) of one input, so a rank that stopped early
 * is found; with the input given, exactly one line per input record, each
 * line's "id" the record's.  Without the input, a run whose last ranks
 * all stopped exactly one record short of the end cannot be told from a
 * shorter input: give the input.
 *
 * The merged file is written beside OUT under a temporary name, synced
 * and renamed over OUT: OUT is either the old file or the whole merge,
 * never a part of it.  The parts are left as they are. */
#ifndef ARMO_DIST_MERGE_H
#define ARMO_DIST_MERGE_H

#include <stdint.h>

#include "base/errors.h"

typedef struct {
    const char *out;             /* the merged output file */
    const char *const *parts;    /* the part files, in any order; NULL: OUT.part-* beside OUT */
    int nparts;
    const char *input;           /* the input JSONL the ranks scored; NULL: not checked */
} armo_merge_opts;

typedef struct {
    int world;                   /* the parts' world size */
    int64_t records, errors;     /* lines merged; error lines ({"error":...}) among them */
} armo_merge_stats;

/* Merges; 0, or -1 with e naming what is missing or wrong (OUT untouched). */
int armo_merge(const armo_merge_opts *o, armo_merge_stats *st, armo_err *e);

#endif
