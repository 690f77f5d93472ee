/* cli_args.c — see cli_args.h. */
#include "host/cli/cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void armo_getopt_begin(void) {
    optind = 0; /* glibc: 0 re-initialises the scan */
    opterr = 0; /* armo's messages, not getopt's */
}

/* The argument element that held option `name` (just parsed): argv[optind
 * - 1], or argv[optind - 2] when the value came as the next element. */
static const char *option_element(char **argv, int has_value) {
    if (has_value && optind >= 2 && optarg == argv[optind - 1]) return argv[optind - 2];
    return argv[optind - 1];
}

/* "--name" or "--name=..." spells name in full. */
static int spelled_in_full(const char *el, const char *name) {
    size_t n = strlen(name);
    return el && !strncmp(el, "--", 2) && !strncmp(el + 2, name, n) &&
           (el[2 + n] == 0 || el[2 + n] == '=');
}

int armo_getopt(int argc, char **argv, const char *cmd, const struct option *opts) {
    int li = -1;
    optarg = NULL;
    int c = getopt_long(argc, argv, "-:h", opts, &li);
    if (c == -1 || c == ARMO_OPT_ARG) return c;
    const char *el = optind >= 1 && optind <= argc ? argv[optind - 1] : "?";
    if (c == ':') {
        fprintf(stderr, "armo %s: option '%s' needs a value (see armo %s --help)\n", cmd, el,
                cmd);
        return ARMO_OPT_BAD;
    }
    if (c == '?') {
        const char *eq = strchr(el, '=');
        if (strncmp(el, "--", 2))
            fprintf(stderr, "armo %s: unknown option '-%c' (see armo %s --help)\n", cmd,
                    optopt ? optopt : '?', cmd);
        else if (optopt && eq) /* a known long option without a value, given one */
            fprintf(stderr, "armo %s: option '%.*s' takes no value (see armo %s --help)\n", cmd,
                    (int)(eq - el), el, cmd);
        else
            fprintf(stderr, "armo %s: unknown option '%s' (see armo %s --help)\n", cmd, el, cmd);
        return ARMO_OPT_BAD;
    }
    if (li >= 0) {
        const char *opt = option_element(argv, opts[li].has_arg != no_argument && optarg);
        if (!spelled_in_full(opt, opts[li].name)) {
            fprintf(stderr, "armo %s: unknown option '%s' (options are spelled in full; see armo "
                            "%s --help)\n", cmd, opt, cmd);
            return ARMO_OPT_BAD;
        }
    }
    return c;
}
