/* cli_args.h — argument helpers shared by the armo subcommands: integer
 * values, and getopt_long with armo's messages. */
#ifndef ARMO_CLI_ARGS_H
#define ARMO_CLI_ARGS_H

#include <getopt.h>

/* Parses s as a decimal integer in [lo, hi] into *out; on failure prints
 * "armo CMD: OPT expects an integer in [lo, hi], got 's'" to stderr and
 * returns -1. */
int armo_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);

/* The value armo_getopt returns for a positional argument (in optarg). */
#define ARMO_OPT_ARG 1
/* The value armo_getopt returns for a bad option, after printing why. */
#define ARMO_OPT_BAD '?'
/* The values a command's long options return: ARMO_OPT_FIRST and on (a
 * command's `enum { OPT_X = ARMO_OPT_FIRST, ... }`), or 'h' for --help. */
#define ARMO_OPT_FIRST 256

/* Starts a new parse of a command's arguments (getopt's state reset). */
void armo_getopt_begin(void);

/* getopt_long over argv (argv[0]: the subcommand) with the command's long
 * options opts (ending in a zero entry) and -h: `--opt value` and
 * `--opt=value` both work; a long option must be spelled in full (no
 * abbreviations, so that a new option never makes an old spelling
 * ambiguous).  Returns the option's val (optarg: its value), ARMO_OPT_ARG
 * for a positional argument (optarg: it; arguments after "--" are left at
 * argv[optind..] when the loop ends), -1 at the end, ARMO_OPT_BAD after
 * printing "armo CMD: unknown option '--x'", "... option '--x' needs a
 * value" or "... option '--x' takes no value" to stderr. */
int armo_getopt(int argc, char **argv, const char *cmd, const struct option *opts);

#endif
