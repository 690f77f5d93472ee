/* cli_args.h — argument helpers shared by the armo subcommands. */
#ifndef ARMO_CLI_ARGS_H
#define ARMO_CLI_ARGS_H

/* Parses s as a decimal integer in [lo, hi] into *out; on failure prints
 * "armo CMD: OPT expects an integer in [lo, hi], got 's'" to stderr and
 * returns -1. */
int armo_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);

#endif
