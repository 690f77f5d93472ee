/* errors.h — the one error convention of armo's host code.
 *
 * Functions that can fail return 0 on success and -1 on failure, and fill an
 * armo_err with a message that says what went wrong and where (file, tensor,
 * line, record).  Messages are built with armo_err_set and may be prefixed by
 * callers with armo_err_prefix to add context ("loading DIR: ...").
 * No global state, so every thread can carry its own armo_err. */
#ifndef ARMO_ERRORS_H
#define ARMO_ERRORS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" { /* also used from the .cu files */
#endif

#define ARMO_ERR_LEN 1024

typedef struct {
    char msg[ARMO_ERR_LEN];
} armo_err;

#if defined(__GNUC__)
#define ARMO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ARMO_PRINTF(a, b)
#endif

/* Sets the message (printf-style) and returns -1, so that callers can write
 * `return armo_err_set(e, "...")`.  e may be NULL. */
int armo_err_set(armo_err *e, const char *fmt, ...) ARMO_PRINTF(2, 3);

/* Puts "prefix: " in front of the current message; returns -1. */
int armo_err_prefix(armo_err *e, const char *fmt, ...) ARMO_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif

#endif
