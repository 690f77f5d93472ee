/* version.h — what `armo --version` prints.  Defined by a C file the build
 * generates (cmake/version.cmake): the source tree's `git describe --always
 * --dirty` (the project version when not built from a git checkout) and the
 * build's flags. */
#ifndef ARMO_CLI_VERSION_H
#define ARMO_CLI_VERSION_H

#include <stdio.h>

/* "0.1.0 (git <describe>)", or "0.1.0 (not a git checkout)". */
const char *armo_version(void);
/* "build Release, GNU 12.2.0, CUDA off, no sanitizers" and the like. */
const char *armo_build_flags(void);

/* "armo VERSION\nFLAGS\n" on f; 0, or -1 when f could not be written. */
static inline int armo_print_version(FILE *f) {
    return fprintf(f, "armo %s\n%s\n", armo_version(), armo_build_flags()) < 0 ? -1 : 0;
}

#endif
