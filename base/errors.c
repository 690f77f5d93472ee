/* errors.c — armo_err helpers (see errors.h). */
#include "base/errors.h"

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
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    size_t plen = strlen(prefix);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    size_t mlen = strnlen(e->msg, sizeof e->msg - 1);
    if (plen + mlen > sizeof e->msg - 1) mlen = sizeof e->msg - 1 - plen; /* cut the tail */
    memmove(e->msg + plen, e->msg, mlen);
    memcpy(e->msg, prefix, plen);
    e->msg[plen + mlen] = 0;
    return -1;
}
