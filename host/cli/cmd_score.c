/* cmd_score.c — `armo score`: JSONL records in, interpretable JSONL out.
 *
 * The command line around the pipeline: options, the input and output
 * files, the model, the backend.  The scheduler (host/engine/scheduler.h)
 * streams the records; score_job.h turns each line into token sequences on
 * worker threads and each scored record into its output line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/engine/backend_open.h"
#include "host/engine/device_memory.h"
#include "host/engine/scheduler.h"
#include "host/scoring/score_job.h"
#include "host/text/tokenizer.h"
#include "weights/model.h"

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
        "  --output F|-            output JSONL (default -: standard output)\n"
        "  --device auto|cuda|cpu  backend (default auto: CUDA when a GPU is visible)\n"
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
        "  --window N              records read ahead and length-sorted together\n"
        "                          (default 2048; bounds memory on any input size)\n"
        "  --quiet                 no progress on stderr\n"
        "  -h, --help              this text\n\n"
        "Progress goes to stderr (a live line on a terminal, a line every 10 s otherwise).\n"
        "A sequence the GPU cannot hold (its batch's activations exceed the free memory)\n"
        "is a per-record error with the numbers.\n"
        "Exit status: 0 every record scored, 1 some records failed (see their \"error\"),\n"
        "2 bad arguments, the model could not be loaded, its text records cannot be\n"
        "templated (see --input-ids-only), or it does not fit on the GPU.\n");
}

/* ---- command line -------------------------------------------------------------- */

typedef struct {
    const char *model_dir, *in_path, *out_path, *device;
    long max_batch, threads, window;
    armo_scoring_opts scoring;
    int quiet, share_prefix;
} score_args;

/* Fills a; returns 0, 1 when --help was printed, -1 on a bad argument
 * (after saying why on stderr). */
static int parse_args(int argc, char **argv, score_args *a) {
    long max_length = 0, explain = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(o, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(o, "--no-share-prefix")) {
            a->share_prefix = 0;
        } else if (!strcmp(o, "--input-ids-only")) {
            a->scoring.input_ids_only = 1;
        } else if (!strcmp(o, "--special-as-text")) {
            a->scoring.tok_flags |= ARMO_TOK_SPECIAL_AS_TEXT;
        } else if (!v) {
            fprintf(stderr, "armo score: unknown option or missing value: '%s'\n\n", o);
            usage(stderr);
            return -1;
        } else {
            i++;
            if (!strcmp(o, "--model")) a->model_dir = v;
            else if (!strcmp(o, "--input")) a->in_path = v;
            else if (!strcmp(o, "--output")) a->out_path = v;
            else if (!strcmp(o, "--device")) a->device = v;
            else if (!strcmp(o, "--max-batch-tokens")) {
                if (armo_parse_long("score", o, v, 1, INT_MAX, &a->max_batch)) return -1;
            } else if (!strcmp(o, "--max-length")) {
                if (armo_parse_long("score", o, v, 1, INT_MAX, &max_length)) return -1;
                a->scoring.max_length = (int)max_length;
            } else if (!strcmp(o, "--explain")) {
                if (armo_parse_long("score", o, v, 0, 64, &explain)) return -1;
                a->scoring.explain = (int)explain;
            } else if (!strcmp(o, "--threads")) {
                if (armo_parse_long("score", o, v, 0, 1024, &a->threads)) return -1;
            } else if (!strcmp(o, "--window")) {
                if (armo_parse_long("score", o, v, 1, 1 << 24, &a->window)) return -1;
            } else if (!strcmp(o, "--truncate")) {
                if (!strcmp(v, "none")) a->scoring.truncate = ARMO_TRUNCATE_NONE;
                else if (!strcmp(v, "left")) a->scoring.truncate = ARMO_TRUNCATE_LEFT;
                else {
                    fprintf(stderr, "armo score: --truncate expects none or left, got '%s'\n", v);
                    return -1;
                }
            } else {
                fprintf(stderr, "armo score: unknown option '%s'\n\n", o);
                usage(stderr);
                return -1;
            }
        }
    }
    if (!a->model_dir) {
        fprintf(stderr, "armo score: --model DIR is required\n\n");
        usage(stderr);
        return -1;
    }
    if (strcmp(a->device, "auto") && strcmp(a->device, "cuda") && strcmp(a->device, "cpu")) {
        fprintf(stderr, "armo score: --device expects auto, cuda or cpu, got '%s'\n", a->device);
        return -1;
    }
    return 0;
}

/* The GPU's free memory against what the run's budget needs, before any
 * weight is uploaded (device_memory.h): not even the weights and a minimal
 * batch fit -> refused; an explicit --max-batch-tokens that does not fit ->
 * refused; the default budget that does not fit -> lowered to what fits,
 * with a note.  Every message has the numbers. */
static int check_fit(const armo_model *m, const score_args *a, int64_t *budget, armo_err *e) {
    size_t free_b = 0, total_b = 0;
    if (armo_backend_mem_info("cuda", &free_b, &total_b, e)) return -1;
    armo_fit f;
    armo_dev_fit(&m->cfg, *budget, ARMO_DEFAULT_MAX_SEQS, a->share_prefix, free_b, total_b, &f);
    if (f.kind == ARMO_FIT_OK) return 0;
    char msg[ARMO_ERR_LEN - 128];
    armo_dev_fit_message(&f, msg, sizeof msg);
    if (f.kind == ARMO_FIT_NONE)
        return armo_err_set(e, "the model does not fit on the GPU: %s (or use --device cpu)", msg);
    if (a->max_batch > 0)
        return armo_err_set(e, "--max-batch-tokens %lld does not fit on the GPU: %s",
                            (long long)*budget, msg);
    if (!a->quiet)
        fprintf(stderr, "armo: the default --max-batch-tokens does not fit: %s; using %lld\n", msg,
                (long long)f.fit_tokens);
    *budget = f.fit_tokens;
    return 0;
}

/* The backend for the run.  *budget: the token budget of a packed batch
 * (--max-batch-tokens, default 16384 on CUDA, 2048 on the CPU); a sequence
 * longer than it (up to --max-length) is sent alone, so the backend's
 * ceiling is max(budget, max_length) — a ceiling, not an allocation: the
 * CUDA backend allocates for the batches it is sent. */
static armo_backend *open_backend(const armo_model *m, const score_args *a, int max_length,
                                  armo_backend_opts *bo, int64_t *budget, armo_err *e) {
    const char *kind = armo_backend_resolve(a->device, e);
    if (!kind) return NULL;
    const int cuda = !strcmp(kind, "cuda");
    *budget = a->max_batch > 0 ? a->max_batch
              : cuda           ? ARMO_DEFAULT_BATCH_TOKENS_CUDA
                               : ARMO_DEFAULT_BATCH_TOKENS_CPU;
    if (cuda && check_fit(m, a, budget, e)) return NULL;
    *bo = (armo_backend_opts){.threads = (int)a->threads, .quiet = a->quiet,
                              .max_seqs = ARMO_DEFAULT_MAX_SEQS};
    bo->max_batch_tokens = *budget > max_length ? *budget : max_length;
    return armo_backend_open(m, kind, bo, e);
}

/* Scores in -> out through the scheduler; the exit status. */
static int run(FILE *in, int64_t in_size, FILE *out, armo_backend *b, armo_scoring *sc,
               const armo_backend_opts *bo, int64_t budget, const score_args *a) {
    armo_job_ops ops = armo_scoring_job_ops(sc);
    armo_sched_opts so = {.max_batch_tokens = budget,
                          .max_batch_seqs = bo->max_seqs,
                          .window = (int)a->window,
                          .threads = a->threads > 0 ? (int)a->threads
                                                    : (int)sysconf(_SC_NPROCESSORS_ONLN),
                          .quiet = a->quiet,
                          .share_prefix = a->share_prefix};
    armo_sched_stats st;
    armo_err e;
    if (armo_schedule(in, in_size, out, b, &ops, &so, &st, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        return 2;
    }
    if (!a->quiet && st.tokens_computed < st.tokens)
        fprintf(stderr, "armo: prompt-prefix sharing ran %lld of the %lld tokens scored through "
                        "the model\n", (long long)st.tokens_computed, (long long)st.tokens);
    if (st.errors && !a->quiet)
        fprintf(stderr, "armo score: %lld of %lld records failed (see their \"error\" field)\n",
                (long long)st.errors, (long long)st.records);
    return st.errors ? 1 : 0;
}

int cmd_score(int argc, char **argv) {
    score_args a = {.in_path = "-", .out_path = "-", .device = "auto", .window = 2048,
                    .share_prefix = 1, .scoring = {.explain = 3}};
    int pa = parse_args(argc, argv, &a);
    if (pa) return pa > 0 ? 0 : 2;

    FILE *in = stdin, *out = stdout;
    int64_t in_size = -1;
    if (strcmp(a.in_path, "-")) {
        in = fopen(a.in_path, "rb");
        if (!in) {
            fprintf(stderr, "armo score: cannot open input %s: %s\n", a.in_path, strerror(errno));
            return 2;
        }
        struct stat sb;
        if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) in_size = sb.st_size;
    }

    int rc = 2;
    armo_err e;
    armo_model model;
    armo_scoring sc;
    armo_backend *backend = NULL;
    int model_open = 0, scoring_open = 0;
    if (armo_model_open(a.model_dir, &model, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    model_open = 1;
    if (armo_scoring_init(&sc, &model, &a.scoring, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    scoring_open = 1;
    armo_backend_opts bo;
    int64_t budget = 0;
    backend = open_backend(&model, &a, sc.max_length, &bo, &budget, &e);
    if (!backend) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    if (!a.quiet)
        fprintf(stderr, "armo: %s on %s, %s, batches of up to %lld tokens (a longer sequence "
                        "alone, up to %d)\n", a.model_dir, backend->device, model.cfg.arch_name,
                (long long)budget, sc.max_length);
    if (strcmp(a.out_path, "-")) {
        out = fopen(a.out_path, "wb");
        if (!out) {
            fprintf(stderr, "armo score: cannot create output %s: %s\n", a.out_path,
                    strerror(errno));
            out = stdout;
            goto done;
        }
    }
    rc = run(in, in_size, out, backend, &sc, &bo, budget, &a);
done:
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "armo score: writing %s failed: %s\n", a.out_path, strerror(errno));
        rc = 2;
    }
    if (in != stdin) fclose(in);
    armo_backend_close(backend);
    if (scoring_open) armo_scoring_free(&sc);
    if (model_open) armo_model_close(&model);
    return rc;
}
