/* record_split.h — the records of a JSON text, each as its own bytes: what
 * the in-process API (armo_api.h) hands the scoring code, so that a record
 * is read exactly as `armo score` reads the same record on a line of its
 * own ("id" echoed byte for byte). */
#ifndef ARMO_RECORD_SPLIT_H
#define ARMO_RECORD_SPLIT_H

#include <stddef.h>

#include "base/errors.h"

typedef struct {
    size_t off, len;             /* the record's text: json[off, off + len) */
} armo_span;

/* Splits json[0..len): one JSON object -> one span, *is_array = 0; an array
 * -> one span per element (of any JSON type: a non-object becomes that
 * record's error when it is scored), *is_array = 1.  The whole text must be
 * valid JSON (checked with jansson first).  *spans is malloc'ed (NULL for
 * an empty array).  Returns 0, or -1 with e naming the line and column of
 * the syntax error, or saying that the text is neither an object nor an
 * array. */
int armo_split_records(const char *json, size_t len, armo_span **spans, size_t *n,
                       int *is_array, armo_err *e);

#endif
