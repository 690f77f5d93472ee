/* temp_dir.h — a temporary directory that goes away on any exit of armo:
 * removed by the caller on a normal or failed run, and by a handler of
 * SIGINT / SIGTERM / SIGHUP when one ends the run (the handler removes the
 * registered files and the directory, then re-raises the signal, so the
 * process ends by it: exit 130 / 143 / 129 in a shell).  A signal ignored
 * when the directory is created (nohup, a background job) stays ignored.
 * `armo bench` puts its random checkpoint (GBs at full width) in one.  One
 * at a time. */
#ifndef ARMO_CLI_TEMP_DIR_H
#define ARMO_CLI_TEMP_DIR_H

#include <stddef.h>

/* Creates "<parent>/<prefix>XXXXXX" (mkdtemp) into path and installs the
 * signal handlers; files, up to 8 names inside it, are what it will hold
 * (removed with it; names only, no subdirectories).  0, or -1 with errno
 * set (the handlers restored). */
int armo_temp_dir_create(const char *parent, const char *prefix, const char *const *files,
                         int nfiles, char *path, size_t len);

/* Removes the files and the directory (keep = 0) or leaves them (keep = 1),
 * and restores the signal handlers.  0, or -1 when something could not be
 * removed (errno set; the first failure is what counts). */
int armo_temp_dir_finish(int keep);

#endif
