/* report_lines.h — JSON lines read in batches and parsed on threads: the
 * scores file of `armo report` is mostly parsing (jansson), which the cores
 * share; the lines are handed back in file order. */
#ifndef ARMO_REPORT_LINES_H
#define ARMO_REPORT_LINES_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t line_no; /* 1-based line of the file */
    int blank;       /* only white space: not parsed */
    json_t *json;    /* the parsed line (owned by the batch), or NULL */
    char err[160];   /* why json is NULL */
} armo_json_line;

typedef struct {
    FILE *f;
    int threads;
    armo_json_line *v;
    char **text;
    size_t *len, *cap;
    int n, max;
    int64_t line_no;
} armo_json_lines;

/* threads <= 0: the cores this process may use (at most 16). */
int armo_json_lines_init(armo_json_lines *b, FILE *f, int batch, int threads);

/* The next batch (b->v[0..b->n)), parsed; 0 at the end of the file, -1 on
 * a read error or no memory (errno set). */
int armo_json_lines_next(armo_json_lines *b);

void armo_json_lines_free(armo_json_lines *b);

#endif
