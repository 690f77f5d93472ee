/* cmd_score.c — `armo score`: JSONL records in, interpretable JSONL out.
 *
 * The command line around the pipeline: options, the input and output
 * files, the model, the backend.  The scheduler (host/engine/scheduler.h)
 * streams the records; score_job.h turns each line into token sequences on
 * worker threads and each scored record into its output line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/cli/cli_args.h"
#include "host/cli/cli_backend.h"
#include "host/cli/commands.h"
#include "host/cli/score_tp_ranks.h"
#include "host/cli/version.h"
#include "host/dist/launch_env.h"
#include "host/dist/shard.h"
#include "host/engine/backend_open.h"
#include "host/engine/tp_split.h"
#include "host/engine/device_memory.h"
#include "host/engine/scheduler.h"
#include "host/report/report_data.h"
#include "host/report/report_html.h"
#include "host/scoring/score_job.h"
#include "host/text/tokenizer.h"
#include "weights/model.h"
#include "weights/weight_scan.h"

/* --help's part on the output file, interruption and --resume (README:
 * "Output files, interruption and --resume"). */
#define OUTPUT_HELP \
    "2 also: the output is the input file or another armo's (locked), or --resume\n" \
    "finds lines that are not this input's.\n" \
    "Interrupted (SIGINT / SIGTERM): the batch in flight finishes, its lines are\n" \
    "written, the output is synced and a summary printed; exit 130 (SIGINT) or 143\n" \
    "(SIGTERM): rerun with --resume.  A second signal exits at once (128 + its\n" \
    "number; the lines written stay whole).  A signal before scoring starts (while\n" \
    "the model loads) ends armo at once, nothing written.\n\n" \
    "Output: batches are packed in input order and a record's line is written, whole,\n" \
    "with one write(2), as soon as it and every earlier record are done: lines and\n" \
    "progress come batch by batch, and a kill at any moment leaves whole lines for a\n" \
    "prefix of the input (but for a SIGKILL inside a write: --resume drops that torn\n" \
    "line).  The file is synced (fsync) at the end and on SIGINT / SIGTERM, not per\n" \
    "line.  --output F is refused (exit 2, F untouched) when F is the input file\n" \
    "(through another path or a hard link too; pipes excepted) or when another\n" \
    "process holds its write lock (fcntl, held for the run: a second armo on F; the\n" \
    "message names its pid); F is emptied only once the model is loaded.\n" \
    "--resume keeps F's whole lines, drops a torn tail (a last line without its\n" \
    "newline, or that is not a JSON object), checks line i against input record i by\n" \
    "its echoed \"id\" (records without one: by count; a mismatch, or more lines than\n" \
    "records: exit 2 naming the line, F untouched), skips those records and appends\n" \
    "the rest: the final file equals an uninterrupted run's byte for byte, and so does\n" \
    "the exit status (errors among the kept lines count).\n"

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo score --model DIR [options]\n\n"
        "Scores JSONL records with an ArmoRM (LlamaForRewardModelWithGating) or a Llama-3\n"
        "sequence-classification reward model, writing one JSON line per input record,\n"
        "in input order.\n\n"
        "Input records (one JSON object per line; \"id\" optional, echoed back as written):\n"
        "  {\"messages\":[{\"role\":\"user\",\"content\":\"...\"},{\"role\":\"assistant\",...}]}\n"
        "  {\"prompt\":\"...\", \"response\":\"...\"}\n"
        "  {\"prompt\":\"...\" | \"messages\":[...], \"chosen\":\"...\", \"rejected\":\"...\"}   a pair\n"
        "  {\"prompt\":\"...\" | \"messages\":[...], \"responses\":[\"...\", ...]}          best-of-N\n"
        "  {\"input_ids\":[...]}     already templated and tokenized (cut at the first pad id)\n"
        "Roles: system, user, assistant, ipython, tool.  Text records are rendered with the\n"
        "model's chat template, recognised by content: Llama-3-Instruct or Llama-3.1-Instruct\n"
        "(its dated system header), exactly as apply_chat_template renders it by default.\n"
        "A model with another template, none, or no tokenizer is refused at load (exit 2)\n"
        "unless --input-ids-only is given.\n\n"
        "Output: {\"id\", \"score\", \"rewards\":{objective:value}, \"gating\":{...},\n"
        "\"coefficients\":{...}, \"tokens\"} (score = sum of rewards x coefficients); pairs give\n"
        "\"chosen\", \"rejected\", \"margin\", \"preferred\" and \"explanation\" (the objectives whose\n"
        "coefficient-weighted reward difference moved the margin most); best-of-N gives\n"
        "\"responses\", \"ranking\" (best first) and \"best\".  A bad record gives\n"
        "{\"id\", \"error\"} and the run goes on.\n\n"
        "Options:\n"
        "  --model DIR             Hugging Face checkpoint directory (required)\n"
        "  --input F|-             input JSONL (default -: standard input)\n"
        "  --output F|-            output JSONL (default -: standard output); a file is\n"
        "                          locked for the run and replaced (see Output below)\n"
        "  --resume                continue an interrupted run: keep the whole lines that\n"
        "                          --output F already holds (a torn last line dropped),\n"
        "                          check them against the first input records, score\n"
        "                          the rest and append (needs --output F; a missing F\n"
        "                          starts from scratch)\n"
        "  --device auto|cuda|cpu  backend (default auto: CUDA when a GPU is visible)\n"
        "  --devices 0,1,...       CUDA: data parallel over these devices (numbers among\n"
        "                          the visible ones; default: every visible GPU), one\n"
        "                          model replica and worker per device pulling batches\n"
        "                          from one queue; output stays in input order\n"
        "  --workers N             CPU: data parallel over N workers, --threads split\n"
        "                          between them (default 1)\n"
        "  --tp N                  tensor parallel over N shards (attention by heads, MLP\n"
        "                          by columns); N must divide the KV-head count.  CUDA:\n"
        "                          each worker is a group of N devices (NCCL); CPU: the\n"
        "                          same arithmetic, shard by shard (a check, not faster)\n"
        "  --tp-across-ranks       with --tp N under mpirun (or srun --mpi=pmix): N\n"
        "                          consecutive launcher ranks form one TP group, one GPU\n"
        "                          each (--devices D, else the node-local rank modulo the\n"
        "                          visible GPUs), NCCL bootstrapped over MPI; the world\n"
        "                          must be a multiple of N.  Group g = rank / N scores\n"
        "                          share g of world / N (as --rank g --world world/N);\n"
        "                          its TP rank 0 writes the part OUT.part-g-of-G (OUT when\n"
        "                          G = 1), the others write nothing.  Ranks that fall out\n"
        "                          of step (one out of memory, a device lost, a peer gone\n"
        "                          ARMO_TP_PEER_TIMEOUT_S seconds, default 600) end the\n"
        "                          job; rerun it with --resume.  Needs --input FILE,\n"
        "                          --output FILE and --device cuda / auto\n"
        "  --max-batch-tokens N    token budget of one packed batch (default 16384 on\n"
        "                          CUDA, 2048 on the CPU); a longer sequence (up to\n"
        "                          --max-length) is scored alone.  A cap, not an\n"
        "                          allocation: the CUDA backend allocates activations\n"
        "                          for the batches it is sent.  With --device cuda it\n"
        "                          is checked against the GPU's free memory before any\n"
        "                          weight is uploaded: a budget that does not fit is\n"
        "                          refused (exit 2) with the numbers (the default is\n"
        "                          lowered to what fits instead); `armo inspect\n"
        "                          --max-batch-tokens N` prints what N needs\n"
        "  --max-length N          longest sequence scored, in tokens (default: the\n"
        "                          model's max_position_embeddings)\n"
        "  --truncate none|left    over-long sequences: none (default) makes them a\n"
        "                          per-record error; left drops the oldest tokens after\n"
        "                          <|begin_of_text|>, keeping the final turn and the\n"
        "                          gating pattern before it (error if even those do not fit)\n"
        "  --special-as-text       encode special-token strings found inside message\n"
        "                          content (e.g. a literal \"<|eot_id|>\") as plain text;\n"
        "                          by default they become special tokens, as Hugging\n"
        "                          Face's apply_chat_template does\n"
        "  --input-ids-only        the input holds only input_ids records: do not refuse a\n"
        "                          model whose chat template armo does not render (or\n"
        "                          that has none, or no tokenizer); a text record then\n"
        "                          fails alone, with the reason\n"
        "  --no-share-prefix       score every response of a pair / best-of-N record in\n"
        "                          full; by default their common prompt prefix is run\n"
        "                          through the model once and each response attends to\n"
        "                          it (same results, fewer tokens computed)\n"
        "  --explain K             objectives listed in a pair's explanation (default 3)\n"
        "  --threads N             tokenizer and CPU-backend threads (default: all cores)\n"
        "  --window N              records read ahead and prepared together (default\n"
        "                          2048; bounds memory on any input size); from a pipe,\n"
        "                          the records that have arrived, so a slow producer's\n"
        "                          records are scored as they come\n"
        "  --check-weights         before scoring, scan every tensor for NaN / Inf (an\n"
        "                          8B checkpoint: its 16 GB at memory speed); by default\n"
        "                          only the norm weights and the head are scanned\n"
        "  --allow-nonfinite-weights  score a checkpoint whose scanned weights hold NaN /\n"
        "                          Inf (refused by default, exit 2, naming the tensor);\n"
        "                          a record reached by one is then an error naming what\n"
        "                          went non-finite (hidden state, reward, gating, ...)\n"
        "  --rank R --world W      score only rank R's share of the records (record i\n"
        "                          when i %% W == R) into OUT.part-RRRRR-of-WWWWW beside\n"
        "                          --output OUT; `armo merge --output OUT` joins the\n"
        "                          parts.  Default: from the launcher (srun's\n"
        "                          SLURM_PROCID / SLURM_STEP_NUM_TASKS, a job array's\n"
        "                          SLURM_ARRAY_TASK_*, mpirun's OMPI_COMM_WORLD_RANK /\n"
        "                          SIZE, PMI_RANK / PMI_SIZE); a world of 1 writes OUT\n"
        "                          itself (--rank 0 --world 1: the whole input, whatever\n"
        "                          the launcher).  Needs --input FILE and --output FILE;\n"
        "                          --resume completes a rank's part.  A rank exits 0\n"
        "                          when records failed (mpirun ends every rank when one\n"
        "                          exits non-zero): armo merge's exit status is the run's\n"
        "  --report FILE           at the end of the run, write `armo report`'s HTML page\n"
        "                          of the output (needs --output FILE; an --input file\n"
        "                          adds the conversations); a page that cannot be written\n"
        "                          is an error (exit 2)\n"
        "  --quiet                 no progress on stderr\n"
        "  --version               armo's version and build flags\n"
        "  -h, --help              this text\n"
        "Options take their value as --opt VALUE or --opt=VALUE.\n\n"
        "Progress goes to stderr (a live line on a terminal, a line every 10 s otherwise).\n"
        "A batch whose activations the GPU cannot allocate mid-run (the free memory\n"
        "shrank, or the allocation failed) lowers the batch budget to what fits, with a\n"
        "one-line note, and the run goes on; a sequence the GPU cannot hold even alone\n"
        "is a per-record error with the numbers.\n"
        "Exit status: 0 every record scored, 1 some records failed (see their \"error\"),\n"
        "2 bad arguments, the model could not be loaded, its text records cannot be\n"
        "templated (see --input-ids-only), it does not fit on the GPU, or its weights hold\n"
        "NaN / Inf (see --allow-nonfinite-weights).\n"
        OUTPUT_HELP);
}

/* ---- command line -------------------------------------------------------------- */

typedef struct {
    const char *model_dir, *in_path, *out_path, *device;
    long max_batch, threads, window;
    const char *devices;         /* --devices: CUDA data parallel (NULL: every visible GPU) */
    long workers, tp;            /* --workers (CPU data parallel), --tp (tensor parallel) */
    armo_scoring_opts scoring;
    int quiet, share_prefix;
    int check_weights, allow_nonfinite; /* NaN / Inf weights: full scan; score anyway */
    int resume;                  /* --resume: keep and check what --output holds, append */
    long rank, world;            /* --rank / --world (-1: not given) */
    armo_dist_rank dist;         /* this process's share (host/dist/launch_env.h) */
    int tp_across;               /* --tp-across-ranks: TP groups over the launch's ranks */
    armo_tp_ranks tpr;           /* then this process's group (score_tp_ranks.h) */
    char part_path[4096];        /* world > 1: the part file out_path then names */
    const char *report;          /* --report FILE: armo report's page of the output */
} score_args;

/* The options: one entry each (getopt_long; --opt VALUE or --opt=VALUE),
 * handled by parse_option. */
enum {
    OPT_MODEL = ARMO_OPT_FIRST, OPT_INPUT, OPT_OUTPUT, OPT_RESUME, OPT_DEVICE, OPT_MAX_BATCH,
    OPT_MAX_LENGTH, OPT_TRUNCATE, OPT_SPECIAL_AS_TEXT, OPT_INPUT_IDS_ONLY, OPT_NO_SHARE_PREFIX,
    OPT_EXPLAIN, OPT_THREADS, OPT_WINDOW, OPT_CHECK_WEIGHTS, OPT_ALLOW_NONFINITE, OPT_QUIET,
    OPT_RANK, OPT_WORLD, OPT_REPORT, OPT_DEVICES, OPT_WORKERS, OPT_TP, OPT_TP_ACROSS,
};
static const struct option k_opts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"input", required_argument, NULL, OPT_INPUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"max-batch-tokens", required_argument, NULL, OPT_MAX_BATCH},
    {"max-length", required_argument, NULL, OPT_MAX_LENGTH},
    {"truncate", required_argument, NULL, OPT_TRUNCATE},
    {"special-as-text", no_argument, NULL, OPT_SPECIAL_AS_TEXT},
    {"input-ids-only", no_argument, NULL, OPT_INPUT_IDS_ONLY},
    {"no-share-prefix", no_argument, NULL, OPT_NO_SHARE_PREFIX},
    {"explain", required_argument, NULL, OPT_EXPLAIN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"check-weights", no_argument, NULL, OPT_CHECK_WEIGHTS},
    {"allow-nonfinite-weights", no_argument, NULL, OPT_ALLOW_NONFINITE},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"rank", required_argument, NULL, OPT_RANK},
    {"world", required_argument, NULL, OPT_WORLD},
    {"report", required_argument, NULL, OPT_REPORT},
    {"devices", required_argument, NULL, OPT_DEVICES},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"tp", required_argument, NULL, OPT_TP},
    {"tp-across-ranks", no_argument, NULL, OPT_TP_ACROSS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0, 0, 0, 0},
};

/* One option c with its value v (optarg) into a; 0, or -1 after saying why
 * on stderr. */
static int parse_option(int c, const char *v, score_args *a) {
    long n = 0;
    switch (c) {
    case OPT_MODEL: a->model_dir = v; return 0;
    case OPT_INPUT: a->in_path = v; return 0;
    case OPT_OUTPUT: a->out_path = v; return 0;
    case OPT_RESUME: a->resume = 1; return 0;
    case OPT_DEVICE: a->device = v; return 0;
    case OPT_SPECIAL_AS_TEXT: a->scoring.tok_flags |= ARMO_TOK_SPECIAL_AS_TEXT; return 0;
    case OPT_INPUT_IDS_ONLY: a->scoring.input_ids_only = 1; return 0;
    case OPT_NO_SHARE_PREFIX: a->share_prefix = 0; return 0;
    case OPT_CHECK_WEIGHTS: a->check_weights = 1; return 0;
    case OPT_ALLOW_NONFINITE: a->allow_nonfinite = 1; return 0;
    case OPT_QUIET: a->quiet = 1; return 0;
    case OPT_REPORT: a->report = v; return 0;
    case OPT_DEVICES: a->devices = v; return 0;
    case OPT_TP_ACROSS: a->tp_across = 1; return 0;
    case OPT_RANK:
        return armo_parse_long("score", "--rank", v, 0, ARMO_DIST_MAX_WORLD - 1, &a->rank);
    case OPT_WORLD:
        return armo_parse_long("score", "--world", v, 1, ARMO_DIST_MAX_WORLD, &a->world);
    case OPT_WORKERS: return armo_parse_long("score", "--workers", v, 1, 256, &a->workers);
    case OPT_TP: return armo_parse_long("score", "--tp", v, 1, 64, &a->tp);
    case OPT_MAX_BATCH:
        return armo_parse_long("score", "--max-batch-tokens", v, 1, INT_MAX, &a->max_batch);
    case OPT_MAX_LENGTH:
        if (armo_parse_long("score", "--max-length", v, 1, INT_MAX, &n)) return -1;
        a->scoring.max_length = (int)n;
        return 0;
    case OPT_EXPLAIN:
        if (armo_parse_long("score", "--explain", v, 0, 64, &n)) return -1;
        a->scoring.explain = (int)n;
        return 0;
    case OPT_THREADS: return armo_parse_long("score", "--threads", v, 0, 1024, &a->threads);
    case OPT_WINDOW: return armo_parse_long("score", "--window", v, 1, 1 << 24, &a->window);
    case OPT_TRUNCATE:
        if (!strcmp(v, "none")) a->scoring.truncate = ARMO_TRUNCATE_NONE;
        else if (!strcmp(v, "left")) a->scoring.truncate = ARMO_TRUNCATE_LEFT;
        else {
            fprintf(stderr, "armo score: --truncate expects none or left, got '%s'\n", v);
            return -1;
        }
        return 0;
    case ARMO_OPT_ARG:
        fprintf(stderr, "armo score: unexpected argument '%s' (the input is --input FILE)\n\n",
                v);
        usage(stderr);
        return -1;
    default: /* ARMO_OPT_BAD: armo_getopt said why */
        usage(stderr);
        return -1;
    }
}

/* Fills a; returns 0, 1 when --help or --version was printed, -1 on a bad
 * argument (after saying why on stderr). */
static int parse_args(int argc, char **argv, score_args *a) {
    int c;
    armo_getopt_begin();
    while ((c = armo_getopt(argc, argv, "score", k_opts)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c == 'V') {
            armo_print_version(stdout);
            return 1;
        }
        if (parse_option(c, optarg, a)) return -1;
    }
    if (optind < argc) return parse_option(ARMO_OPT_ARG, argv[optind], a);
    if (!a->model_dir) {
        fprintf(stderr, "armo score: --model DIR is required\n\n");
        usage(stderr);
        return -1;
    }
    if (strcmp(a->device, "auto") && strcmp(a->device, "cuda") && strcmp(a->device, "cpu")) {
        fprintf(stderr, "armo score: --device expects auto, cuda or cpu, got '%s'\n", a->device);
        return -1;
    }
    if (a->resume && !strcmp(a->out_path, "-")) {
        fprintf(stderr, "armo score: --resume needs --output FILE (the file an interrupted run "
                        "wrote), not the standard output\n");
        return -1;
    }
    if (a->report && !strcmp(a->out_path, "-")) {
        fprintf(stderr, "armo score: --report needs --output FILE (the report reads it back)\n");
        return -1;
    }
    if (a->report && (!strcmp(a->report, a->out_path) || !strcmp(a->report, a->in_path))) {
        fprintf(stderr, "armo score: --report %s would overwrite the %s\n", a->report,
                !strcmp(a->report, a->out_path) ? "output" : "input");
        return -1;
    }
    return 0;
}

/* --tp-across-ranks: MPI, this process's TP group and its rank in it
 * (score_tp_ranks.h); the records and the part are the group's: a->dist
 * becomes the group's share (group g of G), the leader writes the part
 * (OUT when G = 1), the other ranks /dev/null. */
static int setup_tp_ranks(score_args *a) {
    armo_err e;
    if (a->report || !strcmp(a->out_path, "-") || !strcmp(a->in_path, "-") ||
        !strcmp(a->device, "cpu")) {
        fprintf(stderr, "armo score: --tp-across-ranks needs --input FILE (every rank reads it) "
                        "and --output FILE, runs on CUDA (not --device cpu) and writes no "
                        "--report (run armo report on the output)\n");
        return -1;
    }
    if (armo_tp_ranks_start(&a->tpr, (int)a->tp, &a->dist, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        armo_tp_ranks_end(&a->tpr);
        return -1;
    }
    const armo_tp_ranks *t = &a->tpr;
    snprintf(a->dist.source, sizeof a->dist.source, "TP group %d of %d, launcher rank %d of %d",
             t->group, t->groups, t->launch_rank, t->launch_world);
    a->dist.rank = t->group;
    a->dist.world = t->groups;
    if (t->groups > 1 &&
        armo_part_name(a->out_path, t->group, t->groups, a->part_path, sizeof a->part_path, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        armo_tp_ranks_end(&a->tpr);
        return -1;
    }
    const char *out = t->groups > 1 ? a->part_path : a->out_path;
    if (!a->quiet)
        fprintf(stderr, "armo: TP rank %d of group %d of %d (launcher rank %d of %d): the records "
                        "i of %s with i %% %d == %d%s%s\n", t->tp_rank, t->group, t->groups,
                t->launch_rank, t->launch_world, a->in_path, t->groups, t->group,
                t->tp_rank ? "; the group's TP rank 0 writes " : ", into ", out);
    a->out_path = t->tp_rank ? "/dev/null" : out;
    return 0;
}

/* This process's share of the records (host/dist): --rank / --world or the
 * launcher's environment.  More than one rank: --output OUT becomes this
 * rank's part OUT.part-RRRRR-of-WWWWW (locked, --resume, as OUT would be),
 * and the input reader keeps only the rank's records (open_input's caller
 * calls armo_line_reader_shard). */
static int setup_rank(score_args *a) {
    armo_err e;
    if (armo_dist_rank_resolve((int)a->rank, (int)a->world, armo_getenv, &a->dist, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        return -1;
    }
    if (a->tp_across) return setup_tp_ranks(a);
    const armo_dist_rank *d = &a->dist;
    if (d->world == 1) return 0;
    if (a->report) {
        fprintf(stderr, "armo score: --report is for a whole run: rank %d of %d (%s) writes a "
                        "part; run `armo report` on the output of `armo merge`\n", d->rank,
                d->world, d->source);
        return -1;
    }
    if (!strcmp(a->out_path, "-") || !strcmp(a->in_path, "-")) {
        fprintf(stderr, "armo score: rank %d of %d (%s) needs --input FILE (every rank reads "
                        "it, keeping its share) and --output FILE (each rank writes its part "
                        "beside it), not the standard %s\n", d->rank, d->world, d->source,
                strcmp(a->in_path, "-") ? "output" : "input");
        return -1;
    }
    if (armo_part_name(a->out_path, d->rank, d->world, a->part_path, sizeof a->part_path, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        return -1;
    }
    if (!a->quiet)
        fprintf(stderr, "armo: rank %d of %d (%s): the records i of %s with i %% %d == %d, "
                        "into %s\n", d->rank, d->world, d->source, a->in_path, d->world,
                d->rank, a->part_path);
    a->out_path = a->part_path;
    return 0;
}

/* --report FILE: the page of `armo report` over the finished output. */
static int write_report(const score_args *a) {
    armo_report_opts o;
    armo_report_opts_default(&o);
    o.scores_path = a->out_path;
    o.input_path = strcmp(a->in_path, "-") ? a->in_path : NULL;
    armo_report *r;
    armo_err e;
    if (armo_report_build(&o, &r, &e) == 0) {
        int rc = armo_report_write_html(r, &o, a->report, &e);
        armo_report_free(r);
        if (rc == 0) {
            if (!a->quiet) fprintf(stderr, "armo: report written to %s\n", a->report);
            return 0;
        }
    }
    fprintf(stderr, "armo score: --report %s: %s\n", a->report, e.msg);
    return -1;
}

/* ---- the input and output files: lock, same file, --resume, signals ----------- */

typedef struct {
    int in_fd, out_fd;
    int64_t in_size;             /* -1: not a regular file */
    armo_line_reader reader;     /* the input, read by --resume's check, then the scheduler */
    int out_regular;             /* the output is a regular file (locked, synced) */
    int out_created;             /* this run created it: removed if scoring never starts */
    int started;                 /* output_start ran: the file is this run's */
    int synced;                  /* fsync done */
    int64_t out_size, keep;      /* --resume: the file's size, the bytes of whole lines kept */
    int64_t resumed, resumed_errors; /* --resume: records already written, errors among them */
} score_io;

static const char *out_name(const score_args *a) {
    return strcmp(a->out_path, "-") ? a->out_path : "the standard output";
}

static const char *in_name(const score_args *a) {
    return strcmp(a->in_path, "-") ? a->in_path : "the standard input";
}

static int open_input(const score_args *a, score_io *io) {
    memset(io, 0, sizeof *io);
    io->in_fd = 0;
    io->out_fd = -1;
    io->in_size = -1;
    if (strcmp(a->in_path, "-")) {
        io->in_fd = open(a->in_path, O_RDONLY | O_CLOEXEC);
        if (io->in_fd < 0) {
            fprintf(stderr, "armo score: cannot open input %s: %s\n", a->in_path, strerror(errno));
            return -1;
        }
    }
    struct stat sb;
    if (fstat(io->in_fd, &sb) == 0 && S_ISREG(sb.st_mode)) io->in_size = sb.st_size;
    armo_line_reader_init(&io->reader, io->in_fd);
    return 0;
}

/* A write lock on the whole output file for the run (fcntl: another armo
 * asking for it is refused at once; released when armo exits, killed or
 * not).  No lock support (some network file systems): a warning. */
static int lock_output(const score_args *a, score_io *io) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(io->out_fd, F_SETLK, &fl) == 0) return 0;
    if (errno == EACCES || errno == EAGAIN) {
        struct flock q = fl;
        if (fcntl(io->out_fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK && q.l_pid > 0)
            fprintf(stderr, "armo score: %s is being written by another process (pid %ld, another "
                            "armo score?): refusing to write it too\n", out_name(a), (long)q.l_pid);
        else
            fprintf(stderr, "armo score: %s is locked by another process (another armo score?): "
                            "refusing to write it too\n", out_name(a));
        return -1;
    }
    if (!a->quiet)
        fprintf(stderr, "armo score: warning: cannot lock %s (%s): a second run writing it would "
                        "not be detected\n", out_name(a), strerror(errno));
    return 0;
}

/* Opens (creates) the output without emptying it, refuses the input file
 * itself, and locks it. */
static int open_output(const score_args *a, score_io *io) {
    io->out_fd = 1;
    if (strcmp(a->out_path, "-")) {
        int mode = (a->resume ? O_RDWR : O_WRONLY) | O_APPEND | O_CLOEXEC;
        io->out_fd = open(a->out_path, mode | O_CREAT | O_EXCL, 0666);
        if (io->out_fd >= 0) io->out_created = 1;
        else if (errno == EEXIST) io->out_fd = open(a->out_path, mode);
        if (io->out_fd < 0) {
            fprintf(stderr, "armo score: cannot open output %s: %s\n", a->out_path,
                    strerror(errno));
            return -1;
        }
    }
    struct stat so, si;
    if (fstat(io->out_fd, &so) != 0) {
        fprintf(stderr, "armo score: cannot stat output %s: %s\n", out_name(a), strerror(errno));
        return -1;
    }
    io->out_regular = S_ISREG(so.st_mode);
    io->out_size = so.st_size;
    if (io->out_regular && fstat(io->in_fd, &si) == 0 && S_ISREG(si.st_mode) &&
        si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
        fprintf(stderr, "armo score: %s%s is the input %s (the same file): refusing to "
                        "overwrite the input\n", strcmp(a->out_path, "-") ? "the output " : "",
                out_name(a), in_name(a));
        return -1;
    }
    return io->out_regular ? lock_output(a, io) : 0;
}

/* 1 when the reader's next line is the last one and has no '\n' (or there
 * is none): what precedes it is the end of the file's whole lines. */
static int at_tail(armo_line_reader *r) {
    const char *l;
    size_t n;
    int rc = armo_line_next(r, &l, &n);
    return rc == 0 || (rc == 1 && l[n - 1] != '\n' && armo_line_next(r, &l, &n) == 0);
}

/* --resume: reads what the output holds, line by line against the input's
 * records (by the echoed id), and leaves the input reader after the last
 * record already written.  The torn tail (a last line without '\n', or a
 * last line that is not a JSON object) is dropped later (output_start). */
static int resume_check(const score_args *a, score_io *io) {
    armo_line_reader out;
    armo_line_reader_init(&out, io->out_fd);
    int rc = 0;
    for (;;) {
        const char *ol, *il;
        size_t olen, ilen;
        int r = armo_line_next(&out, &ol, &olen);
        if (r == 0 || (r == 1 && ol[olen - 1] != '\n')) break; /* the end, or a torn tail */
        if (r < 0) {
            fprintf(stderr, "armo score: --resume: reading %s failed: %s\n", a->out_path,
                    strerror(out.err));
            rc = -1;
            break;
        }
        int is_error = 0;
        if (!armo_output_line_valid(ol, olen - 1, &is_error)) {
            if (at_tail(&out)) break; /* the last line, torn */
            fprintf(stderr, "armo score: --resume: line %lld of %s is not a JSON object and is "
                            "not the last line: not a file armo score wrote (or it was edited); "
                            "refusing to append to it\n", (long long)out.line_no, a->out_path);
            rc = -1;
            break;
        }
        r = armo_line_next_record(&io->reader, &il, &ilen);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "armo score: --resume: %s has more lines than %s has records "
                                "(line %lld has no input record): not this input's output; "
                                "refusing to append to it\n", a->out_path, in_name(a),
                        (long long)out.line_no);
            else
                fprintf(stderr, "armo score: --resume: reading %s failed: %s\n", in_name(a),
                        strerror(io->reader.err));
            rc = -1;
            break;
        }
        char why[300];
        if (!armo_output_line_matches(il, ilen, ol, olen - 1, why, sizeof why)) {
            fprintf(stderr, "armo score: --resume: line %lld of %s %s (input line %lld of %s): "
                            "the output is not this input's (or the input changed); refusing "
                            "to append to it\n", (long long)out.line_no, a->out_path, why,
                    (long long)io->reader.line_no, in_name(a));
            rc = -1;
            break;
        }
        io->resumed++;
        io->resumed_errors += is_error;
        io->keep += (int64_t)olen;
    }
    armo_line_reader_free(&out);
    if (rc == 0 && !a->quiet)
        fprintf(stderr, "armo: --resume: %s holds the lines of the first %lld records%s; "
                        "scoring from input line %lld on\n", a->out_path, (long long)io->resumed,
                io->keep < io->out_size ? " (a torn last line dropped)" : "",
                (long long)io->reader.line_no + 1);
    return rc;
}

/* The run is about to score: the output file is emptied, or with --resume
 * cut to its whole, checked lines (standard output: left as it is). */
static int output_start(const score_args *a, score_io *io) {
    io->started = 1;
    if (!strcmp(a->out_path, "-") || !io->out_regular) return 0;
    int64_t keep = a->resume ? io->keep : 0;
    if (keep == io->out_size) return 0;
    if (ftruncate(io->out_fd, (off_t)keep) != 0) {
        fprintf(stderr, "armo score: cannot truncate %s to %lld bytes: %s\n", a->out_path,
                (long long)keep, strerror(errno));
        return -1;
    }
    return 0;
}

/* fsync of an output file this run wrote (once). */
static int io_sync(const score_args *a, score_io *io) {
    if (io->out_fd < 0 || !io->started || !io->out_regular || io->synced) return 0;
    io->synced = 1;
    if (fsync(io->out_fd) == 0) return 0;
    fprintf(stderr, "armo score: syncing %s failed: %s\n", out_name(a), strerror(errno));
    return -1;
}

/* Syncs and closes the output (a file that this run created and never
 * started to write is removed), closes the input.  -1 when the output
 * could not be synced or closed. */
static int io_close(const score_args *a, score_io *io) {
    int rc = io_sync(a, io);
    if (io->out_fd > 2) {
        if (io->out_created && !io->started) unlink(a->out_path);
        if (close(io->out_fd) != 0) {
            fprintf(stderr, "armo score: writing %s failed: %s\n", a->out_path, strerror(errno));
            rc = -1;
        }
    }
    if (io->in_fd > 2) close(io->in_fd);
    armo_line_reader_free(&io->reader);
    return rc;
}

/* SIGINT / SIGTERM while scoring: the first asks the scheduler to stop
 * after the batch in flight; a second exits at once (the lines written are
 * whole: each went out in one write). */
static atomic_int g_stop_signal;
/* --tp-across-ranks: the scheduler's stop flag, set by the group's per-batch
 * agreement once any of its ranks saw a signal (score_tp_ranks.h) */
static atomic_int g_group_stop;

static void on_stop_signal(int sig) {
    if (atomic_load(&g_stop_signal)) {
        static const char msg[] = "\narmo score: second signal: exiting now\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(128 + sig);
    }
    atomic_store(&g_stop_signal, sig);
}

/* Catches SIGINT / SIGTERM for the rest of the run.  A signal that was
 * ignored when armo started (a background job's SIGINT, a parent's choice)
 * stays ignored.  0, or -1 after saying which sigaction failed. */
static int catch_stop_signals(void) {
    static const int sigs[2] = {SIGINT, SIGTERM};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++) {
        int rc = sigaction(sigs[i], NULL, &old);
        if (!rc && old.sa_handler != SIG_IGN) rc = sigaction(sigs[i], &sa, NULL);
        if (rc) {
            fprintf(stderr, "armo score: sigaction(%s) failed: %s\n",
                    sigs[i] == SIGINT ? "SIGINT" : "SIGTERM", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* The summary of a run that a signal stopped; its exit status. */
static int interrupted(const score_args *a, const score_io *io, const armo_sched_stats *st) {
    int sig = atomic_load(&g_stop_signal);
    fprintf(stderr, "armo score: interrupted by %s: %s holds the whole lines of the first %lld "
                    "records of %s (%lld written by this run)%s; %s (exit %d)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", out_name(a),
            (long long)(io->resumed + st->records), in_name(a), (long long)st->records,
            io->out_regular ? ", synced" : "",
            strcmp(a->out_path, "-") ? "rerun with --resume to score the rest"
                                     : "the records after them are not scored",
            128 + sig);
    return 128 + sig;
}

/* Scores io's input -> output through the scheduler; the exit status. */
static int run(score_io *io, armo_backend **b, int nb, armo_scoring *sc,
               const armo_backend_opts *bo, int64_t budget, const score_args *a) {
    armo_job_ops ops = armo_scoring_job_ops(sc);
    armo_sched_opts so = {.max_batch_tokens = budget,
                          .max_batch_seqs = bo->max_seqs,
                          .window = (int)a->window,
                          .threads = a->threads > 0 ? (int)a->threads
                                                    : (int)sysconf(_SC_NPROCESSORS_ONLN),
                          .quiet = a->quiet,
                          .share_prefix = a->share_prefix,
                          .stop = a->tp_across ? &g_group_stop : &g_stop_signal,
                          .in_name = a->in_path,
                          .out_name = a->out_path,
                          .out_line0 = io->resumed};
    armo_sched_stats st;
    armo_err e;
    if (catch_stop_signals()) return 2;
    int failed =
        armo_schedule_workers(&io->reader, io->in_size, io->out_fd, b, nb, &ops, &so, &st, &e);
    if (failed) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        return 2;
    }
    if (st.interrupted) return io_sync(a, io) ? 2 : interrupted(a, io, &st);
    if (!a->quiet && st.tokens_computed < st.tokens)
        fprintf(stderr, "armo: prompt-prefix sharing ran %lld of the %lld tokens scored through "
                        "the model\n", (long long)st.tokens_computed, (long long)st.tokens);
    st.errors += io->resumed_errors; /* --resume: the kept lines count, as in one run */
    st.records += io->resumed;
    if (st.errors) /* not progress: said with --quiet too */
        fprintf(stderr, "armo score: %lld of %lld records failed (see their \"error\" field)\n",
                (long long)st.errors, (long long)st.records);
    /* one rank of several: records that failed do not fail the rank (mpirun
     * ends every rank when one exits non-zero); armo merge's status is the
     * run's */
    return st.errors && a->dist.world == 1 ? 1 : 0;
}

/* NaN / Inf in the weights (weight_scan.h), before tokenizing or uploading:
 * the norm weights and the head by default (a NaN there reaches every
 * score; ~0.3% of the bytes), every tensor with --check-weights.  Found:
 * refused, naming the tensors, unless --allow-nonfinite-weights.  Returns 0
 * to go on, -1 to stop (exit 2). */
static int check_weights(const armo_model *m, const score_args *a) {
    armo_weight_scan ws;
    armo_err e;
    if (armo_weights_scan(m, a->check_weights ? ARMO_SCAN_ALL : ARMO_SCAN_HEAD_NORMS,
                          (int)a->threads, &ws, &e)) {
        fprintf(stderr, "armo score: scanning the weights: %s\n", e.msg);
        return -1;
    }
    if (a->check_weights && !a->quiet)
        fprintf(stderr, "armo: scanned %lld tensors (%.2f GB) for NaN/Inf in %.2f s\n",
                (long long)ws.tensors, (double)ws.bytes / 1e9, ws.seconds);
    if (!ws.bad_tensors) return 0;
    char msg[ARMO_ERR_LEN];
    armo_weight_scan_message(&ws, msg, sizeof msg);
    if (a->allow_nonfinite) {
        fprintf(stderr, "armo score: warning: %s holds non-finite weights: %s; scoring anyway "
                        "(--allow-nonfinite-weights): the records they reach become errors\n",
                m->dir, msg);
        return 0;
    }
    fprintf(stderr, "armo score: %s holds non-finite weights: %s; refused (every score they "
                    "reach would be NaN/Inf; --allow-nonfinite-weights scores anyway)\n",
            m->dir, msg);
    return -1;
}

/* --tp-across-ranks: the group's leader opened (and with --resume checked)
 * the part; the other ranks learn whether it could, and skip the records
 * it already holds, so that every rank packs the same batches.  -1: exit 2. */
static int tp_share_output(score_args *a, score_io *io, int failed) {
    int64_t v[2] = {failed, io->resumed};
    armo_err e;
    if (armo_tp_ranks_share(&a->tpr, v, 2, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        return -1;
    }
    if (v[0]) {
        if (a->tpr.tp_rank)
            fprintf(stderr, "armo score: TP group %d's leader could not open or resume its output "
                            "(its message says why)\n", a->tpr.group);
        return -1;
    }
    for (int64_t i = io->resumed = v[1]; a->tpr.tp_rank && i > 0; i--) {
        const char *l;
        size_t n;
        if (armo_line_next_record(&io->reader, &l, &n) <= 0) {
            fprintf(stderr, "armo score: --resume: %s ended before the %lld records the group's "
                            "leader holds (is it the same file on every node?)\n", in_name(a),
                    (long long)v[1]);
            return -1;
        }
    }
    return 0;
}

int cmd_score(int argc, char **argv) {
    score_args a = {.in_path = "-", .out_path = "-", .device = "auto", .window = 2048,
                    .share_prefix = 1, .scoring = {.explain = 3},
                    .rank = -1, .world = -1};
    int pa = parse_args(argc, argv, &a);
    if (pa) return pa > 0 ? 0 : 2;
    if (setup_rank(&a)) return 2;

    /* the files first: a locked output or the input as output fail at once */
    score_io io;
    if (open_input(&a, &io)) return 2;
    if (a.dist.world > 1) armo_line_reader_shard(&io.reader, a.dist.rank, a.dist.world);
    int io_failed = open_output(&a, &io) ||
                    (a.resume && !(a.tp_across && a.tpr.tp_rank) && resume_check(&a, &io));
    if (a.tp_across && tp_share_output(&a, &io, io_failed)) io_failed = 1;
    if (io_failed) {
        io_close(&a, &io);
        if (a.tp_across) armo_tp_ranks_end(&a.tpr);
        return 2;
    }

    int rc = 2;
    armo_err e;
    armo_model model;
    armo_scoring sc;
    armo_backend **backend = NULL;
    int nbackend = 0;
    int model_open = 0, scoring_open = 0, reached_open = 0;
    if (armo_model_open(a.model_dir, &model, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    model_open = 1;
    if (model.cfg.arch == ARMO_ARCH_BACKBONE) {
        fprintf(stderr, "armo score: %s is a bare backbone (%s) with no reward head: nothing to "
                        "score (armo embed reads its hidden states; armo train builds a head)\n",
                a.model_dir, model.cfg.arch_name);
        goto done;
    }
    if (check_weights(&model, &a)) goto done; /* before the tokenizer and any upload */
    if (armo_scoring_init(&sc, &model, &a.scoring, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    scoring_open = 1;
    armo_backend_opts bo;
    int64_t budget = 0;
    armo_cli_backend_args ba = {.device = a.device, .devices = a.devices,
                                .max_batch = a.max_batch, .threads = a.threads,
                                .workers = a.workers, .tp = a.tp, .quiet = a.quiet,
                                .share_prefix = a.share_prefix};
    if (a.tp_across) {
        reached_open = 1;
        backend = calloc(1, sizeof *backend);
        if (backend && (backend[0] = armo_tp_ranks_open(&a.tpr, &model, &ba, sc.max_length, &bo,
                                                        &budget, &e)) != NULL)
            nbackend = 1;
        else if (!backend) armo_err_set(&e, "out of host memory");
        else free(backend), backend = NULL;
    } else {
        backend = armo_cli_open_backends(&model, &ba, sc.max_length, &bo, &budget, &nbackend, &e);
    }
    if (!backend) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    if (!a.quiet)
        fprintf(stderr, "armo: %s on %s, %s, batches of up to %lld tokens (a longer sequence "
                        "alone, up to %d)\n", a.model_dir, backend[0]->device, model.cfg.arch_name,
                (long long)budget, sc.max_length);
    for (int i = 1; i < nbackend && !a.quiet; i++)
        fprintf(stderr, "armo: worker %d on %s\n", i, backend[i]->device);
    if (!a.quiet && a.tp > 1)
        fprintf(stderr, "armo: tensor parallel over %ld shards per %s\n", a.tp,
                a.tp_across ? "group of processes" : "worker");
    if (output_start(&a, &io)) goto done;
    if (a.tp_across) armo_tp_ranks_set_stop(&a.tpr, &g_stop_signal, &g_group_stop);
    rc = run(&io, backend, nbackend, &sc, &bo, budget, &a);
done:
    if (io_close(&a, &io)) rc = 2;
    if (a.report && (rc == 0 || rc == 1) && write_report(&a)) rc = 2;
    armo_backend_close_workers(backend, nbackend);
    if (scoring_open) armo_scoring_free(&sc);
    if (model_open) armo_model_close(&model);
    if (a.tp_across) {
        if (!reached_open) armo_tp_ranks_setup_failed(&a.tpr); /* the peers wait to hear */
        armo_tp_ranks_end(&a.tpr);
        if (a.tpr.tp_rank && rc == 1) rc = 0; /* the leader's status is the group's */
    }
    return rc;
}
