/* main.c — the armo command line: dispatches to one subcommand per file,
 * answers --version, and checks that the standard output was written. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/cli/commands.h"
#include "host/cli/version.h"
#include "host/engine/backend_open.h"
#ifdef ARMO_HAVE_CUDA
#include "host/cuda/cuda_backend.h"
#endif

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} k_commands[] = {
    {"score", cmd_score, "score JSONL records: rewards, gating and coefficients per record"},
    {"inspect", cmd_inspect, "describe a checkpoint: architecture, config, tensors, memory"},
    {"tokenize", cmd_tokenize, "tokenize text or JSONL records (debugging)"},
    {"merge", cmd_merge, "join the part files of a run split over ranks (srun, mpirun, arrays)"},
    {"report", cmd_report, "a self-contained HTML report (or summary) of armo score's output"},
    {"bench", cmd_bench, "throughput on synthetic workloads with a random ArmoRM-shaped model"},
    {"embed", cmd_embed, "the backbone's head input rows (h_last, h_prompt) of records, for training"},
    {"train", cmd_train, "train an ArmoRM head: regression, debias, gating, export"},
#ifdef ARMO_HAVE_SERVE
    {"serve", cmd_serve, "serve the model over HTTP: OpenRLHF, vLLM/SGLang /classify, /score"},
#endif
};

static void usage(FILE *f) {
    fprintf(f, "usage: armo <command> [options]\n"
               "       armo --version\n\n"
               "armo — fast, interpretable scoring with ArmoRM and Llama-3 reward models.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
    fprintf(f, "\n'armo <command> --help' describes a command's options; 'armo --version'\n"
               "(or 'armo <command> --version') prints the version (git describe of the\n"
               "source) and the build's flags.  A standard output that cannot be written\n"
               "(a full disk, a closed pipe) makes any command exit 2 with the reason.\n");
}

/* Everything printed on the standard output reached it: flushed and closed
 * without error.  Otherwise a message and exit status 2 (unless the command
 * already failed with a higher one). */
static int finish_stdout(const char *cmd, int rc) {
    /* errno: the failed fflush's, or that of the last write that failed
     * (the stream's error flag set earlier) */
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int en = errno;
    if (!bad && fclose(stdout) != 0) {
        bad = 1;
        en = errno;
    }
    if (!bad) return rc;
    fprintf(stderr, "armo%s%s: writing the standard output failed: %s\n", cmd ? " " : "",
            cmd ? cmd : "", en ? strerror(en) : "write error");
    return rc > 2 ? rc : 2;
}

static int dispatch(int argc, char **argv, const char **cmd) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        armo_print_version(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(argv[1], k_commands[i].name)) {
            *cmd = k_commands[i].name;
            return k_commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "armo: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
#ifdef ARMO_HAVE_CUDA
    armo_backend_register_cuda(&armo_cuda_accel);
#endif
    const char *cmd = NULL;
    int rc = dispatch(argc, argv, &cmd);
    return finish_stdout(cmd, rc);
}
