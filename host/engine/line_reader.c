/* line_reader.c — the lines of an input file descriptor for armo score
 * (see line_reader.h): read(2) into a growing buffer, blank lines skipped
 * as records, a rank's round-robin share, and a cancel flag polled every
 * 100 ms so that a signal ends a wait on a slow pipe. */
#include "host/engine/line_reader.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_set(const atomic_int *flag) { return flag && atomic_load(flag) != 0; }

void armo_line_reader_init(armo_line_reader *r, int fd) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
}

void armo_line_reader_free(armo_line_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = r->pos = r->end = 0;
}

/* Waits until fd has input (or its end) — in steps of 100 ms, so that
 * r->cancel is seen.  0: go read; -2: cancelled. */
static int wait_input(armo_line_reader *r) {
    if (!r->cancel) return 0;
    for (;;) {
        if (is_set(r->cancel)) return -2;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int n = poll(&p, 1, 100);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return 0; /* not pollable: a plain read */
    }
}

int armo_line_next(armo_line_reader *r, const char **line, size_t *len) {
    size_t scan = r->pos;
    for (;;) {
        char *nl = r->end > scan ? memchr(r->buf + scan, '\n', r->end - scan) : NULL;
        if (nl || (r->eof && r->end > r->pos)) {
            size_t n = nl ? (size_t)(nl + 1 - (r->buf + r->pos)) : r->end - r->pos;
            *line = r->buf + r->pos;
            *len = n;
            r->pos += n;
            r->line_no++;
            r->bytes += (int64_t)n;
            return 1;
        }
        if (r->eof) return 0;
        scan = r->end;
        if (r->pos > 0) { /* keep the partial line at the start of the buffer */
            memmove(r->buf, r->buf + r->pos, r->end - r->pos);
            r->end -= r->pos;
            scan -= r->pos;
            r->pos = 0;
        }
        if (r->end == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : (size_t)1 << 16;
            char *b = realloc(r->buf, cap);
            if (!b) {
                r->err = ENOMEM;
                return -1;
            }
            r->buf = b;
            r->cap = cap;
        }
        int w = wait_input(r);
        if (w) return w;
        ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            r->err = errno;
            return -1;
        }
        if (k == 0) r->eof = 1;
        r->end += (size_t)k;
    }
}

int armo_line_next_record(armo_line_reader *r, const char **line, size_t *len) {
    for (;;) {
        int rc = armo_line_next(r, line, len);
        if (rc != 1) return rc;
        size_t k = 0;
        while (k < *len && ((*line)[k] == ' ' || (*line)[k] == '\t' || (*line)[k] == '\r' ||
                            (*line)[k] == '\n'))
            k++;
        if (k == *len) continue; /* a blank line: not a record */
        int64_t idx = r->records_seen++;
        if (r->shard_world <= 1 || idx % r->shard_world == r->shard_rank) return 1;
    }
}

void armo_line_reader_shard(armo_line_reader *r, int64_t rank, int64_t world) {
    r->shard_rank = rank;
    r->shard_world = world;
}
