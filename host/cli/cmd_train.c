/* cmd_train.c — `armo train STAGE`: the ArmoRM head's training stages on an
 * `armo embed` directory, each writing its piece into a head directory
 * (host/train/: regression.h, debias.h).  This file parses options only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/train/debias.h"
#include "host/train/regression.h"

static const char k_default_alphas[] = "1e-4,1e-3,1e-2,1e-1,1,10,100,1000,10000";

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo train STAGE [options]\n\n"
        "Trains an ArmoRM head on embeddings written by armo embed, one stage at a time,\n"
        "each stage writing its tensors into the head directory HEAD:\n\n"
        "  armo train regression --embeddings RATINGS --output HEAD [--objectives A,B,...]\n"
        "                        [--alphas LIST] [--seed N] [--val-frac F]\n"
        "      per objective (label column), ridge without intercept on its labelled rows;\n"
        "      the penalty from LIST (default %s) by validation MSE on\n"
        "      the seeded split (default seed 0, val-frac 0.2), refit on every labelled row;\n"
        "      writes HEAD/regression.safetensors (regression_layer.weight [K, H]) and\n"
        "      HEAD/regression.json; prints each objective's rows, penalty and MSE\n\n"
        "  armo train debias --embeddings REF --head HEAD [--verbosity NAME]\n"
        "                    [--threshold T] [--penalties LIST]\n"
        "      the reward transform matrix: per objective the smallest penalty p on LIST\n"
        "      (default 0,.01,.025,.05,.075,.1,.125,.15,.2,.25,...,.95) with\n"
        "      Spearman(r_j - p r_v, r_v) <= T (default 0.03) on REF's h_last, else 1;\n"
        "      the verbosity objective (default helpsteer-verbosity) zeroed; writes\n"
        "      HEAD/debias.safetensors (reward_transform_matrix [K, K]), HEAD/debias.json\n",
        k_default_alphas);
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-') {
        fprintf(stderr, "armo train: %s expects a non-negative integer, got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_frac(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "armo train: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int run_regression(int argc, char **argv) {
    static const struct option opts[] = {
        {"embeddings", required_argument, 0, 'e'}, {"output", required_argument, 0, 'o'},
        {"objectives", required_argument, 0, 'k'}, {"alphas", required_argument, 0, 'a'},
        {"seed", required_argument, 0, 's'},       {"val-frac", required_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    armo_regression_opts o = {.val_frac = 0.2};
    const char *alphas = k_default_alphas;
    armo_err e;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': o.embeddings = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 'k': o.objectives = optarg; break;
        case 'a': alphas = optarg; break;
        case 's': if (parse_u64("--seed", optarg, &o.seed)) return 2; break;
        case 'v': if (parse_frac("--val-frac", optarg, 1e-9, 1 - 1e-9, &o.val_frac)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    if (!o.embeddings || !o.out_dir || optind < argc) {
        fprintf(stderr, "armo train regression: --embeddings and --output are required\n");
        return 2;
    }
    if (armo_parse_grid(alphas, o.alphas, ARMO_RIDGE_MAX_ALPHAS, &o.nalpha, &e) ||
        armo_train_regression(&o, stdout, &e)) {
        fprintf(stderr, "armo train regression: %s\n", e.msg);
        return 2;
    }
    return 0;
}

static int run_debias(int argc, char **argv) {
    static const struct option opts[] = {
        {"embeddings", required_argument, 0, 'e'}, {"head", required_argument, 0, 'o'},
        {"verbosity", required_argument, 0, 'V'},  {"threshold", required_argument, 0, 't'},
        {"penalties", required_argument, 0, 'p'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    armo_debias_opts o = {.verbosity = "helpsteer-verbosity", .threshold = 0.03};
    const char *pen = NULL;
    armo_err e;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': o.embeddings = optarg; break;
        case 'o': o.head_dir = optarg; break;
        case 'V': o.verbosity = optarg; break;
        case 't': if (parse_frac("--threshold", optarg, -1, 1, &o.threshold)) return 2; break;
        case 'p': pen = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    if (!o.embeddings || !o.head_dir || optind < argc) {
        fprintf(stderr, "armo train debias: --embeddings and --head are required\n");
        return 2;
    }
    if (pen ? armo_parse_grid(pen, o.penalties, ARMO_DEBIAS_MAX_PENALTIES, &o.npen, &e) : 0) {
        fprintf(stderr, "armo train debias: %s\n", e.msg);
        return 2;
    }
    if (!pen) armo_debias_default_penalties(o.penalties, &o.npen);
    if (armo_train_debias(&o, stdout, &e)) {
        fprintf(stderr, "armo train debias: %s\n", e.msg);
        return 2;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "regression")) return run_regression(argc - 1, argv + 1);
    if (!strcmp(argv[1], "debias")) return run_debias(argc - 1, argv + 1);
    fprintf(stderr, "armo train: unknown stage '%s' (regression, debias)\n\n", argv[1]);
    usage(stderr);
    return 2;
}
