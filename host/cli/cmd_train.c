/* cmd_train.c — `armo train SUBCOMMAND`: the ArmoRM head's training stages
 * on an `armo embed` directory (host/train/). */
#include <stdio.h>
#include <string.h>

#include "host/cli/commands.h"

int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "armo train: not yet\n");
    return 2;
}
