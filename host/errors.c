/* errors.c — armo_err helpers (see errors.h). */
#include "host/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int armo_err_set(armo_err *e, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int armo_err_prefix(armo_err *e, const char *fmt, ...) {
    if (!e) return -1;
    char prefix[ARMO_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[ARMO_ERR_LEN];
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
    return -1;
}
