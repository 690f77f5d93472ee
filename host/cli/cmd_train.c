/* cmd_train.c — `armo train STAGE`: the ArmoRM head's training stages on an
 * `armo embed` directory, each writing its piece into a head directory
 * (host/train/: regression.h, debias.h).  This file parses options only. */
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

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    long v;
    if (armo_parse_long("train", opt, s, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* One option of a stage (c from its table, v its value) into the stage's
 * options: 0, or -1 after saying why on stderr. */
typedef int (*stage_option_fn)(int c, const char *v, void *stage_opts);

/* The option loop every stage shares (armo_getopt: "armo train STAGE:
 * unknown option ..."): 0 to go on, 1 after --help, 2 on a bad argument
 * (said why). */
static int parse_stage(int argc, char **argv, const char *cmd, const struct option *opts,
                       stage_option_fn fn, void *stage_opts) {
    int c;
    armo_getopt_begin();
    while ((c = armo_getopt(argc, argv, cmd, opts)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c == ARMO_OPT_BAD) return 2;
        if (c == ARMO_OPT_ARG) {
            fprintf(stderr, "armo %s: unexpected argument '%s' (see armo train --help)\n", cmd,
                    optarg);
            return 2;
        }
        if (fn(c, optarg, stage_opts)) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "armo %s: unexpected argument '%s' (see armo train --help)\n", cmd,
                argv[optind]);
        return 2;
    }
    return 0;
}

/* A stage's end: its error (exit 2) or success (0). */
static int stage_done(const char *cmd, int rc, const armo_err *e) {
    if (!rc) return 0;
    fprintf(stderr, "armo %s: %s\n", cmd, e->msg);
    return 2;
}

/* The options every stage names by a letter (the tables below). */
enum { OPT_EMBEDDINGS = 'e', OPT_OUT = 'o', OPT_SEED = 's', OPT_VAL_FRAC = 'v' };

typedef struct {
    armo_regression_opts o;
    const char *alphas;
} regression_args;

static int regression_option(int c, const char *v, void *p) {
    regression_args *a = p;
    switch (c) {
    case OPT_EMBEDDINGS: a->o.embeddings = v; return 0;
    case OPT_OUT: a->o.out_dir = v; return 0;
    case 'k': a->o.objectives = v; return 0;
    case 'a': a->alphas = v; return 0;
    case OPT_SEED: return parse_u64("--seed", v, &a->o.seed);
    default: return parse_frac("--val-frac", v, 1e-9, 1 - 1e-9, &a->o.val_frac);
    }
}

static int run_regression(int argc, char **argv) {
    static const struct option opts[] = {
        {"embeddings", required_argument, 0, OPT_EMBEDDINGS},
        {"output", required_argument, 0, OPT_OUT},
        {"objectives", required_argument, 0, 'k'}, {"alphas", required_argument, 0, 'a'},
        {"seed", required_argument, 0, OPT_SEED},  {"val-frac", required_argument, 0, OPT_VAL_FRAC},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    static const char cmd[] = "train regression";
    regression_args a = {.o = {.val_frac = 0.2}, .alphas = k_default_alphas};
    armo_err e;
    int rc = parse_stage(argc, argv, cmd, opts, regression_option, &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (!a.o.embeddings || !a.o.out_dir) {
        fprintf(stderr, "armo %s: --embeddings and --output are required\n", cmd);
        return 2;
    }
    return stage_done(cmd,
                      armo_parse_grid(a.alphas, a.o.alphas, ARMO_RIDGE_MAX_ALPHAS, &a.o.nalpha,
                                      &e) ||
                          armo_train_regression(&a.o, stdout, &e),
                      &e);
}

typedef struct {
    armo_debias_opts o;
    const char *penalties;
} debias_args;

static int debias_option(int c, const char *v, void *p) {
    debias_args *a = p;
    switch (c) {
    case OPT_EMBEDDINGS: a->o.embeddings = v; return 0;
    case OPT_OUT: a->o.head_dir = v; return 0;
    case 'V': a->o.verbosity = v; return 0;
    case 'p': a->penalties = v; return 0;
    default: return parse_frac("--threshold", v, -1, 1, &a->o.threshold);
    }
}

static int run_debias(int argc, char **argv) {
    static const struct option opts[] = {
        {"embeddings", required_argument, 0, OPT_EMBEDDINGS},
        {"head", required_argument, 0, OPT_OUT},
        {"verbosity", required_argument, 0, 'V'},  {"threshold", required_argument, 0, 't'},
        {"penalties", required_argument, 0, 'p'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    static const char cmd[] = "train debias";
    debias_args a = {.o = {.verbosity = "helpsteer-verbosity", .threshold = 0.03}};
    armo_err e;
    int rc = parse_stage(argc, argv, cmd, opts, debias_option, &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (!a.o.embeddings || !a.o.head_dir) {
        fprintf(stderr, "armo %s: --embeddings and --head are required\n", cmd);
        return 2;
    }
    if (a.penalties) {
        if (armo_parse_grid(a.penalties, a.o.penalties, ARMO_DEBIAS_MAX_PENALTIES, &a.o.npen, &e))
            return stage_done(cmd, -1, &e);
    } else {
        armo_debias_default_penalties(a.o.penalties, &a.o.npen);
    }
    return stage_done(cmd, armo_train_debias(&a.o, stdout, &e), &e);
}

static int gating_option(int c, const char *v, void *p) {
    armo_gating_opts *o = p;
    switch (c) {
    case 'P': o->pairs = v; return 0;
    case OPT_OUT: o->head_dir = v; return 0;
    case 'I': o->init = v; return 0;
    case 'S': return parse_int("--steps", v, 1, 1 << 30, &o->steps);
    case 'B': return parse_int("--batch", v, 1, 1 << 24, &o->batch);
    case 'G': return parse_int("--hidden-dim", v, 1, 1 << 20, &o->hidden_dim);
    case 'N': return parse_int("--n-hidden", v, 0, 7, &o->n_hidden);
    case 'E': return parse_int("--eval-every", v, 1, 1 << 30, &o->eval_every);
    case 'l': return parse_frac("--lr", v, 0, 10, &o->lr);
    case 'w': return parse_frac("--weight-decay", v, 0, 10, &o->weight_decay);
    case 'D': return parse_frac("--dropout", v, 0, 0.99, &o->dropout);
    case 'T': return parse_frac("--temperature", v, 1e-6, 1e6, &o->temperature);
    case OPT_VAL_FRAC: return parse_frac("--val-frac", v, 1e-9, 1 - 1e-9, &o->val_frac);
    case OPT_SEED: return parse_u64("--seed", v, &o->seed);
    default: o->quiet = 1; return 0; /* --quiet */
    }
}

static int run_gating(int argc, char **argv) {
    static const struct option opts[] = {
        {"pairs", required_argument, 0, 'P'},       {"head", required_argument, 0, OPT_OUT},
        {"steps", required_argument, 0, 'S'},       {"batch", required_argument, 0, 'B'},
        {"lr", required_argument, 0, 'l'},          {"weight-decay", required_argument, 0, 'w'},
        {"hidden-dim", required_argument, 0, 'G'},  {"n-hidden", required_argument, 0, 'N'},
        {"dropout", required_argument, 0, 'D'},     {"temperature", required_argument, 0, 'T'},
        {"seed", required_argument, 0, OPT_SEED},   {"val-frac", required_argument, 0, OPT_VAL_FRAC},
        {"eval-every", required_argument, 0, 'E'},  {"init", required_argument, 0, 'I'},
        {"quiet", no_argument, 0, 'q'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    static const char cmd[] = "train gating";
    armo_gating_opts o;
    armo_gating_defaults(&o);
    armo_err e;
    int rc = parse_stage(argc, argv, cmd, opts, gating_option, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (!o.pairs || !o.head_dir) {
        fprintf(stderr, "armo %s: --pairs and --head are required\n", cmd);
        return 2;
    }
    return stage_done(cmd, armo_train_gating(&o, stdout, NULL, &e), &e);
}

static int export_option(int c, const char *v, void *p) {
    armo_export_opts *o = p;
    switch (c) {
    case 'H': o->head_dir = v; return 0;
    case 'b': o->backbone = v; return 0;
    case OPT_OUT: o->out_dir = v; return 0;
    default: o->copy = 1; return 0; /* --copy */
    }
}

static int run_export(int argc, char **argv) {
    static const struct option opts[] = {
        {"head", required_argument, 0, 'H'}, {"backbone", required_argument, 0, 'b'},
        {"output", required_argument, 0, OPT_OUT}, {"copy", no_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    static const char cmd[] = "train export";
    armo_export_opts o = {0};
    armo_err e;
    int rc = parse_stage(argc, argv, cmd, opts, export_option, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (!o.head_dir || !o.backbone || !o.out_dir) {
        fprintf(stderr, "armo %s: --head, --backbone and --output are required\n", cmd);
        return 2;
    }
    return stage_done(cmd, armo_train_export(&o, stdout, &e), &e);
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
