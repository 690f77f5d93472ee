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
#include "host/train/export.h"
#include "host/train/gating.h"
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
        "      HEAD/debias.safetensors (reward_transform_matrix [K, K]), HEAD/debias.json\n\n"
        "  armo train gating --pairs PAIRS --head HEAD [--steps N] [--batch N] [--lr F]\n"
        "                    [--weight-decay F] [--hidden-dim N] [--n-hidden N]\n"
        "                    [--dropout F] [--temperature F] [--seed N] [--val-frac F]\n"
        "                    [--eval-every N] [--init FILE] [--quiet]\n"
        "      the gating MLP (defaults: 2000 steps of 1024 pairs, lr 1e-3 on a cosine,\n"
        "      AdamW without weight decay, 3 x 1024, dropout 0.2, temperature 10) on\n"
        "      PAIRS's h_prompt, Bradley-Terry loss on the debiased rewards; prints the\n"
        "      loss and validation accuracy every --eval-every steps (default 100);\n"
        "      writes HEAD/gating.safetensors and HEAD/gating.json\n\n"
        "  armo train export --head HEAD --backbone DIR --output OUT [--copy]\n"
        "      an ArmoRM checkpoint armo score loads: config.json (the backbone's, with\n"
        "      the ArmoRM keys and objective_names), head.safetensors (F32 head\n"
        "      tensors), the backbone's shards symlinked (or its tensors copied under\n"
        "      \"model.\" names when they cannot be linked, or with --copy), the index\n"
        "      and the tokenizer files\n",
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

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    long v;
    if (armo_parse_long("train", opt, s, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

static int run_gating(int argc, char **argv) {
    static const struct option opts[] = {
        {"pairs", required_argument, 0, 'P'},       {"head", required_argument, 0, 'o'},
        {"steps", required_argument, 0, 'S'},       {"batch", required_argument, 0, 'B'},
        {"lr", required_argument, 0, 'l'},          {"weight-decay", required_argument, 0, 'w'},
        {"hidden-dim", required_argument, 0, 'G'},  {"n-hidden", required_argument, 0, 'N'},
        {"dropout", required_argument, 0, 'D'},     {"temperature", required_argument, 0, 'T'},
        {"seed", required_argument, 0, 's'},        {"val-frac", required_argument, 0, 'v'},
        {"eval-every", required_argument, 0, 'E'},  {"init", required_argument, 0, 'I'},
        {"quiet", no_argument, 0, 'q'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    armo_gating_opts o;
    armo_gating_defaults(&o);
    armo_err e;
    int c, bad = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'P': o.pairs = optarg; break;
        case 'o': o.head_dir = optarg; break;
        case 'I': o.init = optarg; break;
        case 'S': bad = parse_int("--steps", optarg, 1, 1 << 30, &o.steps); break;
        case 'B': bad = parse_int("--batch", optarg, 1, 1 << 24, &o.batch); break;
        case 'G': bad = parse_int("--hidden-dim", optarg, 1, 1 << 20, &o.hidden_dim); break;
        case 'N': bad = parse_int("--n-hidden", optarg, 0, 7, &o.n_hidden); break;
        case 'E': bad = parse_int("--eval-every", optarg, 1, 1 << 30, &o.eval_every); break;
        case 'l': bad = parse_frac("--lr", optarg, 0, 10, &o.lr); break;
        case 'w': bad = parse_frac("--weight-decay", optarg, 0, 10, &o.weight_decay); break;
        case 'D': bad = parse_frac("--dropout", optarg, 0, 0.99, &o.dropout); break;
        case 'T': bad = parse_frac("--temperature", optarg, 1e-6, 1e6, &o.temperature); break;
        case 'v': bad = parse_frac("--val-frac", optarg, 1e-9, 1 - 1e-9, &o.val_frac); break;
        case 's': bad = parse_u64("--seed", optarg, &o.seed); break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    if (bad) return 2;
    if (!o.pairs || !o.head_dir || optind < argc) {
        fprintf(stderr, "armo train gating: --pairs and --head are required\n");
        return 2;
    }
    if (armo_train_gating(&o, stdout, NULL, &e)) {
        fprintf(stderr, "armo train gating: %s\n", e.msg);
        return 2;
    }
    return 0;
}

static int run_export(int argc, char **argv) {
    static const struct option opts[] = {
        {"head", required_argument, 0, 'H'}, {"backbone", required_argument, 0, 'b'},
        {"output", required_argument, 0, 'o'}, {"copy", no_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    armo_export_opts o = {0};
    armo_err e;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H': o.head_dir = optarg; break;
        case 'b': o.backbone = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 'c': o.copy = 1; break;
        case 'h': usage(stdout); return 0;
        default: return 2;
        }
    }
    if (!o.head_dir || !o.backbone || !o.out_dir || optind < argc) {
        fprintf(stderr, "armo train export: --head, --backbone and --output are required\n");
        return 2;
    }
    if (armo_train_export(&o, stdout, &e)) {
        fprintf(stderr, "armo train export: %s\n", e.msg);
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
    if (!strcmp(argv[1], "gating")) return run_gating(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return run_export(argc - 1, argv + 1);
    fprintf(stderr, "armo train: unknown stage '%s' (regression, debias, gating, export)\n\n",
            argv[1]);
    usage(stderr);
    return 2;
}
