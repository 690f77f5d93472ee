/* cmd_embed.c — `armo embed`: the backbone's head input rows (h_last,
 * h_prompt) of every record, through armo score's pipeline (the scheduler's
 * batching and prompt-prefix sharing), into safetensors shards for
 * `armo train` (host/train/embed_store.h describes the directory). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include "host/train/embed_job.h"

typedef struct {
    const char *model, *input, *output, *labels, *device;
    long threads, max_batch, max_length, shard_rows, window;
    int truncate_left, no_share, quiet;
} embed_args;

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo embed --model DIR --input F --output OUT [options]\n\n"
        "Runs the backbone over each JSONL record (armo score's record kinds: one\n"
        "conversation, or a chosen / rejected pair) and writes the final-norm hidden\n"
        "state at the last token (h_last) and at the gating position (h_prompt), fp32,\n"
        "with the record's \"labels\" ({\"name\": number | null}) as columns (NaN where\n"
        "missing).  The model: an ArmoRM, a Llama-3 sequence-classification RM's\n"
        "backbone is not read; LlamaModel / LlamaForCausalLM (lm_head ignored) are.\n\n"
        "OUT (a directory, created):\n"
        "  embeddings-NNNNN.safetensors  h_last, h_prompt F32 [n, S, H] (S: 1, or 2 for\n"
        "                                pairs: chosen, rejected), labels F32 [n, L],\n"
        "                                line I64 [n] (the record's input line)\n"
        "  embeddings.json               hidden size, sequence and label names, rows, shards\n"
        "  records.jsonl                 per input record: {\"id\", \"line\", \"row\", \"tokens\"}\n"
        "                                or {\"id\", \"line\", \"error\"}\n\n"
        "options:\n"
        "  --model DIR             checkpoint directory (with tokenizer.json for text)\n"
        "  --input F               JSONL records ('-': standard input)\n"
        "  --output OUT            the embeddings directory\n"
        "  --labels A,B,...        label columns (default: the keys of the first embedded\n"
        "                          record's \"labels\"; a record with another key fails)\n"
        "  --device D              auto (default: CUDA when a GPU is visible, for an ArmoRM;\n"
        "                          a bare backbone runs on the CPU), cuda or cpu; CUDA rows\n"
        "                          are its bf16 activations, the CPU's fp32\n"
        "  --threads N             CPU threads (default: all cores)\n"
        "  --max-batch-tokens N    tokens per packed batch (default %d on the CPU, %d on CUDA)\n"
        "  --max-length N          longest sequence (default: max_position_embeddings)\n"
        "  --truncate left         drop the oldest tokens of a longer sequence\n"
        "  --shard-rows N          records per shard (default: about 512 MiB a shard)\n"
        "  --no-share-prefix       run a pair's shared prompt twice (same results)\n"
        "  --quiet                 no progress on stderr\n"
        "  -h, --help              this text\n\n"
        "Prints a summary line to stderr.  Exit status: 0 every record embedded, 1 some\n"
        "failed (see records.jsonl), 2 bad arguments or the model could not be loaded.\n",
        ARMO_DEFAULT_BATCH_TOKENS_CPU, ARMO_DEFAULT_BATCH_TOKENS_CUDA);
}

static int parse_args(int argc, char **argv, embed_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},    {"labels", required_argument, 0, 'l'},
        {"device", required_argument, 0, 'd'},    {"threads", required_argument, 0, 't'},
        {"max-batch-tokens", required_argument, 0, 'b'},
        {"max-length", required_argument, 0, 'L'}, {"truncate", required_argument, 0, 'T'},
        {"shard-rows", required_argument, 0, 's'}, {"no-share-prefix", no_argument, 0, 'n'},
        {"quiet", no_argument, 0, 'q'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'i': a->input = optarg; break;
        case 'o': a->output = optarg; break;
        case 'l': a->labels = optarg; break;
        case 'd': a->device = optarg; break;
        case 't': if (armo_parse_long("embed", "--threads", optarg, 0, 1024, &a->threads)) return -1; break;
        case 'b': if (armo_parse_long("embed", "--max-batch-tokens", optarg, 1, 1 << 24, &a->max_batch)) return -1; break;
        case 'L': if (armo_parse_long("embed", "--max-length", optarg, 1, 1 << 24, &a->max_length)) return -1; break;
        case 's': if (armo_parse_long("embed", "--shard-rows", optarg, 1, 1 << 30, &a->shard_rows)) return -1; break;
        case 'T':
            if (strcmp(optarg, "left") && strcmp(optarg, "none")) {
                fprintf(stderr, "armo embed: --truncate expects left or none, got '%s'\n", optarg);
                return -1;
            }
            a->truncate_left = !strcmp(optarg, "left");
            break;
        case 'n': a->no_share = 1; break;
        case 'q': a->quiet = 1; break;
        case 'h': usage(stdout); return 1;
        default: return -1;
        }
    }
    if (optind < argc || !a->model || !a->input || !a->output) {
        fprintf(stderr, "armo embed: --model, --input and --output are required%s\n",
                optind < argc ? " (and no positional arguments)" : "");
        return -1;
    }
    return 0;
}

/* Runs the scheduler over the input into ctx; the exit status. */
static int run(const embed_args *a, armo_backend *b, armo_embed_ctx *ctx, int64_t budget) {
    int in_fd = strcmp(a->input, "-") ? open(a->input, O_RDONLY | O_CLOEXEC) : 0;
    if (in_fd < 0) return fprintf(stderr, "armo embed: cannot open %s\n", a->input), 2;
    char path[4200];
    snprintf(path, sizeof path, "%s/records.jsonl", a->output);
    int out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out_fd < 0) {
        if (in_fd) close(in_fd);
        return fprintf(stderr, "armo embed: cannot create %s\n", path), 2;
    }
    struct stat st;
    int64_t in_size = fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
    armo_line_reader rd;
    armo_line_reader_init(&rd, in_fd);
    armo_job_ops ops = armo_embed_job_ops(ctx);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    armo_sched_opts so = {.max_batch_tokens = budget,
                          .max_batch_seqs = ARMO_DEFAULT_MAX_SEQS, .window = 1024,
                          .threads = a->threads > 0 ? (int)a->threads : (int)(ncpu > 0 ? ncpu : 1),
                          .quiet = a->quiet, .share_prefix = !a->no_share,
                          .in_name = a->input, .out_name = path};
    armo_sched_stats stats;
    armo_err e;
    int rc = 0;
    if (armo_schedule(&rd, in_size, out_fd, b, &ops, &so, &stats, &e)) {
        fprintf(stderr, "armo embed: %s\n", ctx->err.msg[0] ? ctx->err.msg : e.msg);
        rc = 2;
    } else if (armo_embed_ctx_finish(ctx, &e)) {
        fprintf(stderr, "armo embed: %s\n", e.msg);
        rc = 2;
    } else {
        double s = stats.seconds > 0 ? stats.seconds : 1e-9;
        fprintf(stderr, "armo embed: %lld records embedded (%lld errors) from %s into %s: %lld "
                        "sequences, %lld tokens (%lld computed) in %.2f s, %.1f sequences/s\n",
                (long long)ctx->writer.rows, (long long)ctx->errors, a->input, a->output,
                (long long)stats.sequences, (long long)stats.tokens,
                (long long)stats.tokens_computed, stats.seconds, (double)stats.sequences / s);
        rc = ctx->errors ? 1 : 0;
    }
    armo_line_reader_free(&rd);
    if (in_fd) close(in_fd);
    if (close(out_fd)) rc = 2;
    return rc;
}

int cmd_embed(int argc, char **argv) {
    embed_args a = {0};
    int pr = parse_args(argc, argv, &a);
    if (pr) return pr > 0 ? 0 : 2;
    armo_err e;
    armo_model m;
    if (armo_model_open(a.model, &m, &e)) return fprintf(stderr, "armo embed: %s\n", e.msg), 2;
    int rc = 2;
    armo_scoring sc;
    armo_embed_ctx ctx;
    armo_backend *b = NULL;
    int sc_open = 0, ctx_open = 0;
    armo_scoring_opts so = {.max_length = (int)a.max_length,
                            .truncate = a.truncate_left ? ARMO_TRUNCATE_LEFT : ARMO_TRUNCATE_NONE};
    if (m.cfg.arch == ARMO_ARCH_SEQCLS) {
        fprintf(stderr, "armo embed: %s is a %s; embed an ArmoRM or a LlamaModel / "
                        "LlamaForCausalLM backbone\n", a.model, m.cfg.arch_name);
        goto done;
    }
    if (armo_scoring_init(&sc, &m, &so, &e)) goto fail;
    sc_open = 1;
    const int H = m.cfg.hidden_size;
    int64_t rows = a.shard_rows > 0 ? a.shard_rows : (512ll << 20) / (16ll * H);
    if (mkdir(a.output, 0777) && errno != EEXIST) {
        fprintf(stderr, "armo embed: cannot create %s\n", a.output);
        goto done;
    }
    if (armo_embed_ctx_init(&ctx, &sc, a.output, rows, a.labels, &e)) goto fail;
    ctx_open = 1;
    /* a bare backbone has no CUDA forward (backend_open.c) */
    const char *kind = armo_backend_resolve(
        a.device ? a.device : m.cfg.arch == ARMO_ARCH_BACKBONE ? "cpu" : "auto", &e);
    if (!kind) goto fail;
    const int cuda = !strcmp(kind, "cuda");
    int64_t budget = a.max_batch > 0 ? a.max_batch
                     : cuda          ? ARMO_DEFAULT_BATCH_TOKENS_CUDA
                                     : ARMO_DEFAULT_BATCH_TOKENS_CPU;
    armo_backend_opts bo = {.threads = (int)a.threads, .quiet = a.quiet,
                            .max_seqs = ARMO_DEFAULT_MAX_SEQS,
                            .max_batch_tokens = budget > sc.max_length ? budget : sc.max_length};
    b = armo_backend_open(&m, kind, &bo, &e);
    if (!b) goto fail;
    if (!b->returns_hidden) {
        fprintf(stderr, "armo embed: the %s backend does not return hidden rows; use --device "
                        "cpu\n", b->name);
        goto done;
    }
    if (!a.quiet)
        fprintf(stderr, "armo embed: %s (%s) on %s\n", a.model, m.cfg.arch_name, b->device);
    rc = run(&a, b, &ctx, budget);
    goto done;
fail:
    fprintf(stderr, "armo embed: %s\n", e.msg);
done:
    armo_backend_close(b);
    if (ctx_open) armo_embed_ctx_free(&ctx);
    if (sc_open) armo_scoring_free(&sc);
    armo_model_close(&m);
    return rc;
}
