/* line_reader.h — the lines of armo score's input (scheduler.h reads its
 * records through it; cmd_score.c takes the first ones itself for --resume).
 * Internal to host/engine/ and its callers. */
#ifndef ARMO_LINE_READER_H
#define ARMO_LINE_READER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The lines of an input file descriptor, read with read(2) into a buffer
 * of its own, so that a caller can take the first records itself (--resume
 * checks them against what is already written) and hand the rest to
 * armo_schedule. */
typedef struct {
    int fd;
    char *buf;
    size_t cap, pos, end;        /* unread bytes: buf[pos..end) */
    int eof;
    int err;                     /* errno of a failed read */
    int64_t line_no;             /* 1-based number of the last line returned */
    int64_t bytes;               /* bytes of the lines returned */
    atomic_int *cancel;          /* when set, a read waiting for input gives up */
    /* a rank's share (host/dist): record i (0-based, blank lines not
     * counted) is returned only when i % shard_world == shard_rank;
     * shard_world <= 1: every record.  Set with armo_line_reader_shard. */
    int64_t shard_rank, shard_world, records_seen;
} armo_line_reader;

void armo_line_reader_init(armo_line_reader *r, int fd);
void armo_line_reader_free(armo_line_reader *r);
/* The next line, its '\n' included when it has one (the last line of the
 * input may not), in *line / *len: valid until the next call, not
 * NUL-terminated.  Returns 1, 0 at the end of the input, -1 on a read error
 * (r->err), -2 when r->cancel was set while waiting for input. */
int armo_line_next(armo_line_reader *r, const char **line, size_t *len);
/* The next record: the next line that is not blank (spaces, tabs, CR
 * only); blank lines are skipped but counted in line_no and bytes.  Returns
 * as armo_line_next. */
int armo_line_next_record(armo_line_reader *r, const char **line, size_t *len);
/* From now on armo_line_next_record returns only the records of rank
 * `rank` of `world` (round-robin by record index, see host/dist/shard.h),
 * counting from the first record of the input. */
void armo_line_reader_shard(armo_line_reader *r, int64_t rank, int64_t world);

#endif
