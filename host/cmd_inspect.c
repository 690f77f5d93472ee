/* cmd_inspect.c — placeholder, replaced by the foundation work. */
#include <stdio.h>

#include "host/commands.h"

int cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "armo inspect: not built yet\n");
    return 2;
}
