/* commands.h — the armo CLI's subcommands, one file each (host/cli/cmd_*.c).
 * Each takes the arguments after its name (argv[0] is the subcommand) and
 * returns the process exit status. */
#ifndef ARMO_COMMANDS_H
#define ARMO_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_serve(int argc, char **argv); /* built with libmicrohttpd only (ARMO_HAVE_SERVE) */

#endif
