/* cli_args.c — see cli_args.h. */
#include "host/cli/cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int armo_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "armo %s: %s expects an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo,
                hi, s);
        return -1;
    }
    *out = v;
    return 0;
}
