/* main.c — the armo command line: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "host/cli/commands.h"
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
    fprintf(f, "usage: armo <command> [options]\n\n"
               "armo — fast, interpretable scoring with ArmoRM and Llama-3 reward models.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
    fprintf(f, "\n'armo <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
#ifdef ARMO_HAVE_CUDA
    armo_backend_register_cuda(&armo_cuda_accel);
#endif
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "armo: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
