/* cmd_tokenize.c — placeholder until the tokenizer lands (issue 3). */
#include <stdio.h>

#include "host/commands.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "armo tokenize: not built yet\n");
    return 2;
}
