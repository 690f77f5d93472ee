/* cmd_bench.c — `armo bench`: throughput of the whole engine on synthetic
 * workloads, with no download and no input file (DESIGN §6).
 *
 * It writes an ArmoRM-shaped checkpoint with random weights (full ArmoRM
 * widths by default on CUDA, a small shape on the CPU, fewer layers; any
 * dims by flags) into a temporary directory removed on any exit, signals
 * included (temp_dir.h), opens it with the chosen backend, generates token-id workloads
 * from fixed length distributions and a seed, packs them the way `armo
 * score` does (length-sorted windows, greedy packs under a token budget; a
 * sequence longer than the budget goes alone) and times the backend on them.
 * It reports tokens/s, sequences/s, model FLOP/s and MFU against a GEMM
 * ceiling measured in the same run, per-phase times on CUDA, the real
 * tokenizer's speed on synthetic text of the same lengths, and GPU memory.
 *
 * Why token ids and not JSONL: the point is the engine's speed; the
 * tokenizer is timed on its own (workload a) so that both costs are seen
 * separately.  The workloads can be written out (--workload-out) as JSONL
 * input_ids records, which profiling/bench_hf.py reads so that Hugging
 * Face runs exactly the same sequences.
 *
 * This file holds the options, the run's stages and the report; the
 * workloads are bench_workload.c, the measurements bench_run.c. */
#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/progress.h"
#include "host/cli/bench_dp.h"
#include "host/cli/bench_run.h"
#include "host/cli/bench_workload.h"
#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/cli/temp_dir.h"
#include "host/cli/version.h"
#include "host/engine/backend_open.h"
#include "weights/model.h"
#include "weights/random_model.h"

/* ---- the command ----------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo bench [options]\n\n"
        "Measures armo's scoring throughput on synthetic workloads.  Unless --model is\n"
        "given it writes an ArmoRM-shaped checkpoint with random weights (on CUDA hidden\n"
        "4096, 32/8 heads, head_dim 128, intermediate 14336; on the CPU a small shape,\n"
        "hidden 256, 2/1 heads x 128, intermediate 896, so that the defaults finish in\n"
        "seconds and hold ~150 MB; vocab 128257, 19 objectives, gating 1024 x 3;\n"
        "backbone BF16, head F32) into a fresh temporary directory under --workdir,\n"
        "removed at any exit (done, failed, or ended by SIGINT / SIGTERM / SIGHUP,\n"
        "which then end armo as they would have: exit 130 / 143 / 129) unless --keep.\n"
        "Nothing is downloaded.\n\n"
        "Workloads (token ids in the Llama-3 chat template's layout, with the gating\n"
        "pattern where the template puts it; deterministic for a given --seed):\n"
        "  a  %s\n"
        "  b  %s\n"
        "  c  %s\n"
        "Sequences go through armo score's packing step (scheduler.c): a pair's or\n"
        "group's common prompt prefix computed once (prompt-prefix sharing), units\n"
        "sorted by length in windows of --window groups and packed greedily under\n"
        "--max-batch-tokens.\n\n"
        "Reported per workload: sequences, tokens, batches, seconds, tokens/s,\n"
        "sequences/s (tokens counted as scored, whole sequences), TFLOP/s and MFU of\n"
        "the work that ran (shared prefixes counted once).  Model FLOPs of n tokens:\n"
        "2*P*n + 2*L*nh*hd*n*(n+1), P = backbone matmul parameters (L layers of\n"
        "H*(nh+2*nkv)*hd + nh*hd*H + 3*H*I); head and embedding left out.  MFU is\n"
        "against a GEMM ceiling measured in the same run: on CUDA armo_gemm_bf16 at\n"
        "NxNxN (--ceiling, default 8192), on the CPU the backend's BLAS GEMM with a\n"
        "1024x1024 fp32 weight on 2048 rows.\n"
        "On CUDA also: GPU time per phase (upload, embed, layers, head, download;\n"
        "cudaEvents; --no-phase-times leaves them out) and device memory\n"
        "(cudaMemGetInfo).  With --tokenizer, workload a\n"
        "also times the real tokenizer + chat template on synthetic English text of\n"
        "the same prompt / response lengths (--threads workers).  4 x --warmup groups\n"
        "are scored once untimed before each run.\n\n"
        "Options:\n"
        "  --device auto|cuda|cpu  backend (default auto: CUDA when a GPU is visible)\n"
        "  --workload a|b|c|all    which workloads (default a)\n"
        "  --sequences N           sequences per workload (b rounds up to pairs, c to\n"
        "                          groups of 16; default 512 on CUDA, 16 on the CPU)\n"
        "  --layers N              decoder layers (default 32 on CUDA, 2 on the CPU)\n"
        "  --hidden N              hidden size (default 4096 on CUDA; 256 on the CPU\n"
        "                          unless a dimension below is given); when given without\n"
        "                          them, heads = max(1, N/128), kv heads = max(1,\n"
        "                          heads/4), head_dim 128, intermediate = 3.5 N\n"
        "  --heads N --kv-heads N --head-dim N --intermediate N   explicit dims\n"
        "  --vocab N               vocabulary (default and minimum 128257)\n"
        "  --model DIR             bench this checkpoint instead of random weights\n"
        "  --tokenizer DIR         a directory with tokenizer.json (+ tokenizer_config\n"
        "                          .json) to time the tokenizer (workload a); default: none\n"
        "  --max-batch-tokens N    token budget of a packed batch (default 16384 on\n"
        "                          CUDA, 4096 on the CPU; raised to the longest sequence)\n"
        "  --max-seqs N            most sequences per batch (default 1024)\n"
        "  --ceiling N             CUDA GEMM ceiling shape NxNxN, a multiple of 8\n"
        "                          (default 8192; smaller for a quick plumbing run)\n"
        "  --window N              groups (records) sorted together (default 2048)\n"
        "  --warmup N              untimed warm-up: 4N groups before each run (default 1 on\n"
        "                          CUDA, 0 on the CPU)\n"
        "  --threads N             CPU threads (backend and tokenizer; default: all)\n"
        "  --seed N                workload and weight seed (default 1)\n"
        "  --workdir DIR           where the random checkpoint goes (default $TMPDIR,\n"
        "                          else /tmp)\n"
        "  --keep                  keep the random checkpoint (its path is printed)\n"
        "  --json FILE             also write the results as one JSON line to FILE\n"
        "  --workload-out FILE     write the workloads as JSONL input_ids records\n"
        "                          (for profiling/bench_hf.py or `armo score`)\n"
        "  --no-share-prefix       run b and c only without prompt-prefix sharing (by\n"
        "                          default they run with it, row \"b+s\" / \"c+s\", and\n"
        "                          again without, and the speed-up is printed)\n"
        "  --data-parallel         also time the first workload through armo score's\n"
        "                          data-parallel worker pool: on the CPU a direct run, 1\n"
        "                          worker (the pool's overhead as a ratio) and 2 workers\n"
        "                          sharing the threads; on CUDA 1, 2, 4, ... visible devices\n"
        "                          (each against N x one device), then --tp 2, 4 (against\n"
        "                          one device)\n"
        "  --no-phase-times        no per-phase GPU timing: the events between phases\n"
        "                          keep CUDA graphs (ARMO_CUDA_GRAPHS=1) from being used,\n"
        "                          so measure graphs with this (and time them against a\n"
        "                          run without ARMO_CUDA_GRAPHS)\n"
        "  --quiet                 no progress on stderr\n\n"
        "Exit status: 0 done, 1 a run failed or produced non-finite scores, 2 bad\n"
        "arguments.\n",
        bench_workload_what('a'), bench_workload_what('b'), bench_workload_what('c'));
}

typedef struct {
    long sequences, layers, hidden, heads, kv_heads, head_dim, intermediate, vocab;
    long max_batch, max_seqs, window, warmup, threads, seed, ceiling;
    const char *device, *workloads, *model_dir, *tokenizer, *workdir, *json_path, *wl_out;
    int keep, quiet, no_share, data_parallel, no_phase_times;
} bench_args;

/* The options (getopt_long: --opt VALUE or --opt=VALUE); the integer ones
 * have their field and range in k_ints. */
enum {
    OPT_SEQUENCES = ARMO_OPT_FIRST, OPT_LAYERS, OPT_HIDDEN, OPT_HEADS, OPT_KV_HEADS,
    OPT_HEAD_DIM, OPT_INTERMEDIATE, OPT_VOCAB, OPT_MAX_BATCH, OPT_MAX_SEQS, OPT_WINDOW,
    OPT_WARMUP, OPT_THREADS, OPT_SEED, OPT_CEILING, /* the integers: k_ints, in this order */
    OPT_DEVICE, OPT_WORKLOAD, OPT_MODEL, OPT_TOKENIZER, OPT_WORKDIR, OPT_JSON, OPT_WORKLOAD_OUT,
    OPT_KEEP, OPT_QUIET, OPT_NO_SHARE_PREFIX, OPT_DATA_PARALLEL, OPT_NO_PHASE_TIMES,
};
static const struct option k_opts[] = {
    {"sequences", required_argument, NULL, OPT_SEQUENCES},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"heads", required_argument, NULL, OPT_HEADS},
    {"kv-heads", required_argument, NULL, OPT_KV_HEADS},
    {"head-dim", required_argument, NULL, OPT_HEAD_DIM},
    {"intermediate", required_argument, NULL, OPT_INTERMEDIATE},
    {"vocab", required_argument, NULL, OPT_VOCAB},
    {"max-batch-tokens", required_argument, NULL, OPT_MAX_BATCH},
    {"max-seqs", required_argument, NULL, OPT_MAX_SEQS},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"ceiling", required_argument, NULL, OPT_CEILING},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"workload", required_argument, NULL, OPT_WORKLOAD},
    {"model", required_argument, NULL, OPT_MODEL},
    {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
    {"workdir", required_argument, NULL, OPT_WORKDIR},
    {"json", required_argument, NULL, OPT_JSON},
    {"workload-out", required_argument, NULL, OPT_WORKLOAD_OUT},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"no-share-prefix", no_argument, NULL, OPT_NO_SHARE_PREFIX},
    {"data-parallel", no_argument, NULL, OPT_DATA_PARALLEL},
    {"no-phase-times", no_argument, NULL, OPT_NO_PHASE_TIMES},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0, 0, 0, 0},
};
static const struct {
    size_t field; /* offsetof(bench_args, ...) */
    long lo, hi;
} k_ints[] = {
    [OPT_SEQUENCES - OPT_SEQUENCES] = {offsetof(bench_args, sequences), 1, 10000000},
    [OPT_LAYERS - OPT_SEQUENCES] = {offsetof(bench_args, layers), 1, 1024},
    [OPT_HIDDEN - OPT_SEQUENCES] = {offsetof(bench_args, hidden), 8, 65536},
    [OPT_HEADS - OPT_SEQUENCES] = {offsetof(bench_args, heads), 1, 1024},
    [OPT_KV_HEADS - OPT_SEQUENCES] = {offsetof(bench_args, kv_heads), 1, 1024},
    [OPT_HEAD_DIM - OPT_SEQUENCES] = {offsetof(bench_args, head_dim), 2, 1024},
    [OPT_INTERMEDIATE - OPT_SEQUENCES] = {offsetof(bench_args, intermediate), 8, 1 << 20},
    [OPT_VOCAB - OPT_SEQUENCES] = {offsetof(bench_args, vocab), 128257, 1 << 24},
    [OPT_MAX_BATCH - OPT_SEQUENCES] = {offsetof(bench_args, max_batch), 1, INT_MAX},
    [OPT_MAX_SEQS - OPT_SEQUENCES] = {offsetof(bench_args, max_seqs), 1, 65535},
    [OPT_WINDOW - OPT_SEQUENCES] = {offsetof(bench_args, window), 1, 1 << 24},
    [OPT_WARMUP - OPT_SEQUENCES] = {offsetof(bench_args, warmup), 0, 1000},
    [OPT_THREADS - OPT_SEQUENCES] = {offsetof(bench_args, threads), 0, 1024},
    [OPT_SEED - OPT_SEQUENCES] = {offsetof(bench_args, seed), 0, LONG_MAX},
    [OPT_CEILING - OPT_SEQUENCES] = {offsetof(bench_args, ceiling), 8, 65536},
};

/* One option c (from k_opts) with its value v into a: 0, 1 when --help or
 * --version was printed, -1 after saying why on stderr. */
static int parse_option(int c, const char *v, bench_args *a) {
    if (c >= OPT_SEQUENCES && c <= OPT_CEILING) {
        const int k = c - OPT_SEQUENCES;
        char name[40];
        snprintf(name, sizeof name, "--%s", k_opts[k].name);
        return armo_parse_long("bench", name, v, k_ints[k].lo, k_ints[k].hi,
                               (long *)((char *)a + k_ints[k].field));
    }
    switch (c) {
    case 'h': usage(stdout); return 1;
    case 'V': armo_print_version(stdout); return 1;
    case OPT_DEVICE: a->device = v; return 0;
    case OPT_WORKLOAD: a->workloads = v; return 0;
    case OPT_MODEL: a->model_dir = v; return 0;
    case OPT_TOKENIZER: a->tokenizer = v; return 0;
    case OPT_WORKDIR: a->workdir = v; return 0;
    case OPT_JSON: a->json_path = v; return 0;
    case OPT_WORKLOAD_OUT: a->wl_out = v; return 0;
    case OPT_KEEP: a->keep = 1; return 0;
    case OPT_QUIET: a->quiet = 1; return 0;
    case OPT_NO_SHARE_PREFIX: a->no_share = 1; return 0;
    case OPT_DATA_PARALLEL: a->data_parallel = 1; return 0;
    case OPT_NO_PHASE_TIMES: a->no_phase_times = 1; return 0;
    case ARMO_OPT_ARG:
        fprintf(stderr, "armo bench: unexpected argument '%s'\n\n", v);
        usage(stderr);
        return -1;
    default: /* ARMO_OPT_BAD: armo_getopt said why */
        usage(stderr);
        return -1;
    }
}

static int parse_args(int argc, char **argv, bench_args *a) {
    int c;
    armo_getopt_begin();
    while ((c = armo_getopt(argc, argv, "bench", k_opts)) != -1) {
        int rc = parse_option(c, optarg, a);
        if (rc) return rc;
    }
    if (optind < argc) return parse_option(ARMO_OPT_ARG, argv[optind], a);
    if (a->ceiling % 8 != 0) {
        fprintf(stderr, "armo bench: --ceiling %ld is not a multiple of 8\n", a->ceiling);
        return -1;
    }
    if (strcmp(a->device, "auto") && strcmp(a->device, "cuda") && strcmp(a->device, "cpu")) {
        fprintf(stderr, "armo bench: --device expects auto, cuda or cpu, got '%s'\n", a->device);
        return -1;
    }
    if (strcmp(a->workloads, "a") && strcmp(a->workloads, "b") && strcmp(a->workloads, "c") &&
        strcmp(a->workloads, "all")) {
        fprintf(stderr, "armo bench: --workload expects a, b, c or all, got '%s'\n", a->workloads);
        return -1;
    }
    return 0;
}

static json_t *phases_json(const bench_run_result *r) {
    if (!r->has_phases) return json_null();
    const armo_phase_times *p = &r->phases;
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I}", "upload_s", p->upload_ms / 1e3,
                     "embed_s", p->embed_ms / 1e3, "layers_s", p->layers_ms / 1e3, "head_s",
                     p->head_ms / 1e3, "download_s", p->download_ms / 1e3, "calls",
                     (json_int_t)p->calls);
}

/* One armo bench run: its arguments, what it built and opened, and what
 * must be undone at the end (bench_end). */
typedef struct {
    bench_args a;
    const char *device;          /* the resolved backend: "cpu" or "cuda" */
    int cuda;
    long threads;
    bench_workload wl[3];
    int nwl, longest;
    armo_gemm_ceiling ceiling;
    size_t mem_total, mem_before, mem_loaded, mem_after; /* free device memory, CUDA only */
    char tmpdir[4200];           /* the random checkpoint's directory ("" if none) */
    armo_model model;
    int model_open;
    armo_backend *b;
    double t_write, t_load;
} bench_session;

/* The workloads (they also size the batches: the token budget is raised
 * to the longest sequence), written out when --workload-out asks. */
static int build_workloads(bench_session *r) {
    bench_args *a = &r->a;
    for (char c = 'a'; c <= 'c'; c++) {
        if (strcmp(a->workloads, "all") && a->workloads[0] != c) continue;
        if (bench_workload_build(&r->wl[r->nwl], c, (int)a->sequences, (uint64_t)a->seed)) {
            fprintf(stderr, "armo bench: out of memory building workload %c\n", c);
            return -1;
        }
        r->nwl++;
    }
    for (int i = 0; i < r->nwl; i++)
        if (r->wl[i].max_len > r->longest) r->longest = r->wl[i].max_len;
    if (a->max_batch < r->longest) a->max_batch = r->longest;
    if (!a->wl_out) return 0;
    FILE *wf = fopen(a->wl_out, "wb");
    int bad = !wf;
    for (int i = 0; !bad && i < r->nwl; i++) bad = bench_workload_write(&r->wl[i], wf) != 0;
    if (wf && fclose(wf) != 0) bad = 1;
    if (bad) {
        fprintf(stderr, "armo bench: cannot write %s: %s\n", a->wl_out, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes the random ArmoRM-shaped checkpoint into a fresh directory under
 * --workdir.  Returns 0, -1 on failure, 2 for inconsistent dimensions. */
static int write_random_model(bench_session *r) {
    const bench_args *a = &r->a;
    armo_random_spec s = armo_random_spec_armorm((int)a->layers, (uint64_t)a->seed);
    if (a->hidden > 0) {
        s.hidden = (int)a->hidden;
        s.heads = (int)(a->hidden / 128 > 0 ? a->hidden / 128 : 1);
        s.kv_heads = s.heads / 4 > 0 ? s.heads / 4 : 1;
        s.intermediate = (int)((a->hidden * 7 / 2 + 7) / 8 * 8);
    }
    if (a->heads > 0) s.heads = (int)a->heads;
    if (a->kv_heads > 0) s.kv_heads = (int)a->kv_heads;
    if (a->head_dim > 0) s.head_dim = (int)a->head_dim;
    if (a->intermediate > 0) s.intermediate = (int)a->intermediate;
    if (a->vocab > 0) s.vocab = (int)a->vocab;
    if (s.heads % s.kv_heads) {
        fprintf(stderr, "armo bench: heads (%d) must be a multiple of kv heads (%d)\n", s.heads,
                s.kv_heads);
        return 2;
    }
    static const char *const files[] = {"config.json", "model.safetensors"};
    if (armo_temp_dir_create(a->workdir, "armo-bench-", files, 2, r->tmpdir, sizeof r->tmpdir)) {
        fprintf(stderr, "armo bench: cannot create a directory under %s: %s\n", a->workdir,
                strerror(errno));
        r->tmpdir[0] = 0;
        return -1;
    }
    if (a->keep) armo_temp_dir_finish(1); /* --keep: kept whatever ends the run */
    if (!a->quiet)
        fprintf(stderr, "armo bench: writing a random ArmoRM-shaped model (hidden %d, %d "
                        "layers) to %s\n", s.hidden, s.layers, r->tmpdir);
    double t0 = armo_now();
    armo_err e;
    if (armo_write_random_model(r->tmpdir, &s, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        return -1;
    }
    r->t_write = armo_now() - t0;
    return 0;
}

/* The model (--model, or a random one) and the backend on it.  Returns 0,
 * -1 on failure, 2 for bad dimensions. */
static int open_model(bench_session *r) {
    const bench_args *a = &r->a;
    const char *dir = a->model_dir;
    if (!dir) {
        int rc = write_random_model(r);
        if (rc) return rc;
        dir = r->tmpdir;
    }
    armo_err e;
    double t0 = armo_now();
    if (armo_model_open(dir, &r->model, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        return -1;
    }
    r->model_open = 1;
    if (r->model.cfg.arch != ARMO_ARCH_ARMORM) {
        fprintf(stderr, "armo bench: %s is not an ArmoRM checkpoint; the workloads need the "
                        "gated head\n", dir);
        return -1;
    }
    if (r->longest > r->model.cfg.max_position_embeddings) {
        fprintf(stderr, "armo bench: the workloads need %d positions; the model allows %d\n",
                r->longest, r->model.cfg.max_position_embeddings);
        return -1;
    }
    armo_backend_opts bo = {.threads = (int)r->threads, .max_batch_tokens = a->max_batch,
                            .max_seqs = (int)a->max_seqs, .quiet = a->quiet};
    r->b = armo_backend_open(&r->model, r->device, &bo, &e);
    if (!r->b) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        return -1;
    }
    r->t_load = armo_now() - t0;
    return 0;
}

static void print_header(const bench_session *r, double P) {
    const bench_args *a = &r->a;
    const armo_config *cfg = &r->model.cfg;
    const armo_gemm_ceiling *gc = &r->ceiling;
    printf("armo bench on %s\n", r->b->device);
    printf("model: %s%s, hidden %d, %d layers, %d/%d heads x %d, intermediate %d, vocab %d; "
           "%.2f M matmul params\n",
           a->model_dir ? a->model_dir : "random ArmoRM-shaped", a->model_dir ? "" : " weights",
           cfg->hidden_size, cfg->num_layers, cfg->num_heads, cfg->num_kv_heads, cfg->head_dim,
           cfg->intermediate_size, cfg->vocab_size, P / 1e6);
    printf("GEMM ceiling: %.3f TFLOP/s (%dx%dx%d, %s)\n", gc->tflops, gc->n, gc->in, gc->out,
           gc->what);
    printf("packing: length-sorted windows of %ld, batches of <= %ld tokens / %ld sequences\n\n",
           a->window, a->max_batch, a->max_seqs);
    printf("%-3s %7s %10s %8s %9s %11s %9s %9s %7s\n", "wl", "seqs", "tokens", "batches",
           "seconds", "tokens/s", "seqs/s", "TFLOP/s", "MFU");
}

/* The real tokenizer on workload a's lengths (with --tokenizer): its line
 * and JSON (null when not run; *failed set when it failed). */
static json_t *tokenizer_report(const bench_session *r, const bench_workload *w, int *failed) {
    if (w->name != 'a' || !r->a.tokenizer) return json_null();
    bench_tok_result tr;
    armo_err e;
    if (bench_time_tokenizer(r->a.tokenizer, w, (int)r->threads, (uint64_t)r->a.seed, &tr, &e)) {
        fprintf(stderr, "armo bench: tokenizer: %s\n", e.msg);
        *failed = 1;
        return json_null();
    }
    double ts = tr.seconds > 0 ? tr.seconds : 1e-9;
    printf("    tokenizer + chat template on synthetic text of the same lengths (%lld tokens a "
           "pass): %lld tokens in %.3f s (%d passes) on %d threads = %.0f tokens/s\n",
           (long long)tr.tokens_one_pass, (long long)tr.tokens, tr.seconds, tr.passes, tr.threads,
           tr.tokens / ts);
    return json_pack("{s:I, s:I, s:i, s:f, s:i, s:f}", "tokens_per_pass",
                     (json_int_t)tr.tokens_one_pass, "tokens", (json_int_t)tr.tokens, "passes",
                     tr.passes, "seconds", tr.seconds, "threads", tr.threads, "tokens_per_s",
                     tr.tokens / ts);
}

/* The unshared run of b or c beside the shared one: its row, the speed-up,
 * and the check that both computed the same scores. */
static json_t *unshared_report(const bench_session *r, const bench_workload *w,
                               const bench_run_result *rs, const bench_run_result *ru,
                               double P, double attn, int *failed) {
    const double ceiling = r->ceiling.tflops;
    double secs = rs->seconds > 0 ? rs->seconds : 1e-9;
    double su = ru->seconds > 0 ? ru->seconds : 1e-9;
    double tu = (2.0 * P * (double)ru->tokens_computed + attn) / su / 1e12;
    printf("%-3c %7d %10lld %8lld %9.3f %11.1f %9.2f %9.4f %6.1f%%\n", w->name, w->n,
           (long long)ru->tokens_scored, (long long)ru->batches, ru->seconds,
           ru->tokens_scored / su, w->n / su, tu, ceiling > 0 ? 100.0 * tu / ceiling : 0.0);
    printf("    prompt-prefix sharing: %lld of %lld tokens computed; %.2fx the unshared "
           "throughput\n",
           (long long)rs->tokens_computed, (long long)rs->tokens_scored, su / secs);
    if (ru->nonfinite) *failed = 1;
    /* shared and unshared scoring compute the same function */
    double d = fabs(rs->score_sum - ru->score_sum);
    if (d > 1e-2 * (1.0 + fabs(ru->score_sum))) {
        printf("    shared and unshared score sums differ: %.6g vs %.6g\n", rs->score_sum,
               ru->score_sum);
        *failed = 1;
    }
    return json_pack("{s:f, s:f, s:I, s:I, s:f}", "seconds", ru->seconds, "tokens_per_s",
                     ru->tokens_scored / su, "tokens_computed", (json_int_t)ru->tokens_computed,
                     "batches", (json_int_t)ru->batches, "sharing_speedup", su / secs);
}

/* Runs one workload (b and c with prompt-prefix sharing, as armo score runs
 * them, then without), prints its rows and returns its JSON object; NULL
 * when a run failed.  Checks that make the bench exit 1 set *failed. */
static json_t *run_and_report(const bench_session *r, const bench_workload *w, double P,
                              int *failed) {
    const armo_config *cfg = &r->model.cfg;
    const double ceiling = r->ceiling.tflops;
    bench_pack_opts po = {.max_batch_tokens = r->a.max_batch, .max_seqs = (int)r->a.max_seqs,
                          .window = (int)r->a.window, .warmup = (int)r->a.warmup,
                          .phase_times = !r->a.no_phase_times};
    bench_run_result rs, ru;
    int share = w->name != 'a' && !r->a.no_share;
    armo_err e;
    if (bench_run_workload(r->b, w, &po, share, &rs, &e) ||
        (share && bench_run_workload(r->b, w, &po, 0, &ru, &e))) {
        fprintf(stderr, "armo bench: workload %c: %s\n", w->name, e.msg);
        return NULL;
    }
    /* model FLOPs as if every sequence ran whole; MFU counts what ran:
     * the GEMMs of the tokens computed plus the attention of every row */
    double flops = 0.0, attn = 0.0;
    for (int k = 0; k < w->n; k++) {
        double f = bench_seq_flops(cfg, P, w->seqs[k].len);
        flops += f;
        attn += f - 2.0 * P * w->seqs[k].len;
    }
    double secs = rs.seconds > 0 ? rs.seconds : 1e-9;
    double run_flops = 2.0 * P * (double)rs.tokens_computed + attn;
    double tps = (double)rs.tokens_scored / secs, sps = w->n / secs,
           tflops = run_flops / secs / 1e12;
    double mfu = ceiling > 0 ? tflops / ceiling : 0.0;
    char label[16];
    snprintf(label, sizeof label, "%c%s", w->name, share ? "+s" : "");
    printf("%-3s %7d %10lld %8lld %9.3f %11.1f %9.2f %9.4f %6.1f%%\n", label, w->n,
           (long long)rs.tokens_scored, (long long)rs.batches, rs.seconds, tps, sps, tflops,
           100.0 * mfu);
    json_t *junshared = share ? unshared_report(r, w, &rs, &ru, P, attn, failed) : json_null();
    if (rs.has_phases) {
        const armo_phase_times *p = &rs.phases;
        double tot = p->upload_ms + p->embed_ms + p->layers_ms + p->head_ms + p->download_ms;
        printf("    GPU time per phase: upload %.1f ms, embed %.1f ms, layers %.1f ms, head "
               "%.1f ms, download %.1f ms (sum %.1f ms of %.1f ms wall)\n",
               p->upload_ms, p->embed_ms, p->layers_ms, p->head_ms, p->download_ms, tot,
               rs.seconds * 1e3);
    }
    if (rs.has_graphs && (rs.graph_replays > 0 || getenv("ARMO_CUDA_GRAPHS")))
        printf("    CUDA graphs: %lld of %lld batches replayed, %lld captured in the timed run%s\n",
               (long long)rs.graph_replays, (long long)rs.batches, (long long)rs.graph_captures,
               rs.has_phases ? " (phase timing keeps graphs off: --no-phase-times)" : "");
    if (rs.nonfinite) {
        printf("    %lld non-finite scores\n", (long long)rs.nonfinite);
        *failed = 1;
    }
    if (rs.tokens_scored != w->tokens) {
        printf("    backend reported %lld tokens, the workload has %lld\n",
               (long long)rs.tokens_scored, (long long)w->tokens);
        *failed = 1;
    }
    json_t *jt = tokenizer_report(r, w, failed);
    char wname[2] = {w->name, 0};
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:f, s:f, "
                          "s:f, s:o, s:o, s:I, s:f}",
                          "workload", wname, "description", w->what, "sequences", w->n,
                          "groups", w->groups, "tokens", (json_int_t)w->tokens, "tokens_scored",
                          (json_int_t)rs.tokens_scored, "batches", (json_int_t)rs.batches,
                          "max_len", w->max_len, "seconds", rs.seconds, "tokens_per_s", tps,
                          "sequences_per_s", sps, "model_flops", flops, "tflops", tflops, "mfu",
                          mfu, "phases", phases_json(&rs), "tokenizer", jt, "nonfinite_scores",
                          (json_int_t)rs.nonfinite, "score_sum", rs.score_sum);
    json_object_set_new(o, "prefix_sharing", json_boolean(share));
    json_object_set_new(o, "tokens_computed", json_integer(rs.tokens_computed));
    json_object_set_new(o, "cuda_graph_replays",
                        rs.has_graphs ? json_integer(rs.graph_replays) : json_null());
    json_object_set_new(o, "unshared", junshared);
    return o;
}

/* Device memory before load, after load and after the runs (CUDA). */
static json_t *memory_report(const bench_session *r) {
    if (!r->cuda) return json_null();
    double gib = 1024.0 * 1024.0 * 1024.0;
    printf("\nGPU memory: %.2f GiB total; armo holds %.2f GiB after load, %.2f GiB after the "
           "runs (cudaMemGetInfo, relative to before load)\n",
           r->mem_total / gib, ((double)r->mem_before - r->mem_loaded) / gib,
           ((double)r->mem_before - r->mem_after) / gib);
    return json_pack("{s:I, s:I, s:I, s:I}", "total_bytes", (json_int_t)r->mem_total,
                     "free_before_load_bytes", (json_int_t)r->mem_before,
                     "used_after_load_bytes",
                     (json_int_t)((int64_t)r->mem_before - (int64_t)r->mem_loaded),
                     "used_after_runs_bytes",
                     (json_int_t)((int64_t)r->mem_before - (int64_t)r->mem_after));
}

/* The whole run as one JSON object (--json); takes jw and jmem. */
static json_t *summary_json(const bench_session *r, double P, json_t *jw, json_t *jmem) {
    const bench_args *a = &r->a;
    const armo_config *cfg = &r->model.cfg;
    const armo_gemm_ceiling *gc = &r->ceiling;
    json_t *out = json_object();
    json_object_set_new(out, "armo_bench", json_integer(1));
    json_object_set_new(out, "device", json_string(r->b->device));
    json_object_set_new(out, "backend", json_string(r->b->name));
    json_object_set_new(out, "model",
                        json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f}", "source",
                                  a->model_dir ? a->model_dir : "random", "hidden",
                                  cfg->hidden_size, "layers", cfg->num_layers, "heads",
                                  cfg->num_heads, "kv_heads", cfg->num_kv_heads, "head_dim",
                                  cfg->head_dim, "intermediate", cfg->intermediate_size, "vocab",
                                  cfg->vocab_size, "matmul_params", P));
    json_object_set_new(out, "seed", json_integer(a->seed));
    json_object_set_new(out, "threads", json_integer(r->threads));
    json_object_set_new(out, "packing",
                        json_pack("{s:I, s:i, s:i, s:i}", "max_batch_tokens",
                                  (json_int_t)a->max_batch, "max_seqs", (int)a->max_seqs,
                                  "window", (int)a->window, "warmup_batches", (int)a->warmup));
    json_object_set_new(out, "phase_times", json_boolean(!a->no_phase_times));
    const char *graphs = getenv("ARMO_CUDA_GRAPHS");
    json_object_set_new(out, "cuda_graphs_env", graphs ? json_string(graphs) : json_null());
    json_object_set_new(out, "gemm_ceiling",
                        json_pack("{s:f, s:[i,i,i], s:s}", "tflops", gc->tflops, "shape", gc->n,
                                  gc->in, gc->out, "what", gc->what));
    json_object_set_new(out, "flops_formula",
                        json_string("2*P*n + 2*L*nh*hd*n*(n+1) per sequence of n tokens"));
    json_object_set_new(out, "workloads", jw);
    json_object_set_new(out, "gpu_memory", jmem);
    json_object_set_new(out, "model_write_s", json_real(r->t_write));
    json_object_set_new(out, "model_load_s", json_real(r->t_load));
    return out;
}

static int write_json_line(const char *path, json_t *obj) {
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    FILE *f = fopen(path, "wb");
    int bad = !line || !f || fprintf(f, "%s\n", line) < 0;
    if (f && fclose(f) != 0) bad = 1;
    free(line);
    if (bad) fprintf(stderr, "armo bench: cannot write %s: %s\n", path, strerror(errno));
    return bad ? -1 : 0;
}

/* Every workload, the memory report, the JSON: the exit status. */
static int run_all(bench_session *r) {
    armo_err e;
    double P = bench_matmul_params(&r->model.cfg);
    print_header(r, P);
    int failed = 0;
    json_t *jw = json_array();
    for (int i = 0; i < r->nwl; i++) {
        json_t *o = run_and_report(r, &r->wl[i], P, &failed);
        if (!o) {
            json_decref(jw);
            return 1;
        }
        json_array_append_new(jw, o);
    }
    if (r->cuda && armo_backend_mem_info(r->device, &r->mem_after, &r->mem_total, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        json_decref(jw);
        return 1;
    }
    json_t *jdp = json_null();
    if (r->a.data_parallel && r->nwl > 0) {
        bench_pack_opts po = {.max_batch_tokens = r->a.max_batch, .max_seqs = (int)r->a.max_seqs,
                              .window = (int)r->a.window, .warmup = (int)r->a.warmup,
                          .phase_times = !r->a.no_phase_times};
        json_decref(jdp);
        jdp = bench_dp_report(&r->model, r->device, r->b, (int)r->threads,
                              armo_backend_device_count(r->device), &r->wl[0], &po, &failed);
    }
    json_t *jmem = memory_report(r);
    printf("model written in %.2f s, loaded in %.2f s\n", r->t_write, r->t_load);
    json_t *out = summary_json(r, P, jw, jmem);
    json_object_set_new(out, "data_parallel", jdp);
    int bad = r->a.json_path && write_json_line(r->a.json_path, out);
    json_decref(out);
    return bad ? 1 : failed ? 1 : 0;
}

static void bench_end(bench_session *r) {
    armo_backend_close(r->b);
    if (r->model_open) armo_model_close(&r->model);
    if (r->tmpdir[0]) {
        if (r->a.keep) fprintf(stderr, "armo bench: kept the model in %s\n", r->tmpdir);
        if (armo_temp_dir_finish(r->a.keep))
            fprintf(stderr, "armo bench: cannot remove %s: %s\n", r->tmpdir, strerror(errno));
    }
    for (int i = 0; i < 3; i++) bench_workload_free(&r->wl[i]);
}

int cmd_bench(int argc, char **argv) {
    bench_session r;
    memset(&r, 0, sizeof r);
    r.a = (bench_args){.device = "auto", .workloads = "a", .seed = 1,
                       .max_seqs = 1024, .window = 2048, .warmup = -1};
    bench_args *a = &r.a;
    int pa = parse_args(argc, argv, a);
    if (pa) return pa > 0 ? 0 : 2;
    armo_err e;
    r.device = armo_backend_resolve(a->device, &e);
    if (!r.device) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        return 2;
    }
    r.cuda = !strcmp(r.device, "cuda");
    r.threads = a->threads > 0 ? a->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (r.threads < 1) r.threads = 1;
    if (a->sequences <= 0) a->sequences = r.cuda ? 512 : 16;
    if (a->layers <= 0) a->layers = r.cuda ? 32 : 2;
    /* the CPU's default shape: seconds and ~150 MB, not minutes and GBs */
    if (!r.cuda && a->hidden <= 0 && a->heads <= 0 && a->kv_heads <= 0 && a->head_dim <= 0 &&
        a->intermediate <= 0)
        a->hidden = 256;
    if (!a->workdir) {
        const char *t = getenv("TMPDIR");
        a->workdir = t && *t ? t : "/tmp";
    }
    if (a->warmup < 0) a->warmup = r.cuda ? 1 : 0;
    if (a->max_batch <= 0) a->max_batch = r.cuda ? 16384 : 4096;

    int rc = 1;
    if (build_workloads(&r)) goto done;
    /* the GEMM ceiling and free memory, before the model takes the GPU's memory */
    if (armo_backend_gemm_ceiling(r.device, (int)r.threads, (int)a->ceiling, &r.ceiling, &e)) {
        fprintf(stderr, "armo bench: GEMM ceiling: %s\n", e.msg);
        goto done;
    }
    if (r.cuda && armo_backend_mem_info(r.device, &r.mem_before, &r.mem_total, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        goto done;
    }
    int orc = open_model(&r);
    if (orc) {
        rc = orc == 2 ? 2 : 1;
        goto done;
    }
    if (r.cuda && armo_backend_mem_info(r.device, &r.mem_loaded, &r.mem_total, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        goto done;
    }
    rc = run_all(&r);
done:
    bench_end(&r);
    return rc;
}
