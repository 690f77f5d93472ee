/* progress.h — progress on stderr for long scoring runs: records/s, tokens/s
 * and an ETA (when the input's size is known).  On a terminal a live line
 * redrawn in place at most 5 times a second; otherwise (logs, Slurm) one
 * plain line every `interval` seconds.  Never writes to stdout. */
#ifndef ARMO_PROGRESS_H
#define ARMO_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *out;
    int tty;
    int quiet;
    double interval;             /* seconds between non-tty lines */
    double start, last;
    int64_t bytes_total;         /* input size, or -1 when unknown (a pipe) */
    int64_t records, tokens, errors, bytes_read;
} armo_progress;

double armo_now(void);           /* monotonic seconds */

void armo_progress_init(armo_progress *p, int64_t bytes_total, int quiet);
/* Counts are cumulative totals. */
void armo_progress_update(armo_progress *p, int64_t records, int64_t tokens, int64_t errors,
                          int64_t bytes_read);
/* Final summary line. */
void armo_progress_finish(armo_progress *p);

#endif
