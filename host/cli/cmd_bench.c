/* cmd_bench.c — `armo bench`: throughput of the whole engine on synthetic
 * workloads, with no download and no input file (DESIGN §6).
 *
 * It writes an ArmoRM-shaped checkpoint with random weights (full ArmoRM
 * widths by default, fewer layers; any dims by flags) into a temporary
 * directory, opens it with the chosen backend, generates token-id workloads
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
 * Face runs exactly the same sequences. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/engine/backend_open.h"
#include "host/text/chat_template.h"
#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/text/positions.h"
#include "base/progress.h"
#include "weights/random_model.h"
#include "host/engine/scheduler.h"
#include "host/text/tokenizer.h"
#include "weights/dtype.h"
#include "weights/model.h"

/* Llama-3 ids the chat template places around the content (DESIGN §3):
 * <|begin_of_text|>, <|start_header_id|>user<|end_header_id|>\n\n, and after
 * the gating pattern (<|eot_id|><|start_header_id|>assistant<|end_header_id|>
 * \n\n, ARMO_LLAMA3_GATING_PATTERN) the response and a final <|eot_id|>. */
#define TOK_BOS 128000
#define TOK_START_HEADER 128006
#define TOK_USER 882
#define TOK_END_HEADER 128007
#define TOK_NL2 271
#define TOK_EOT 128009
#define CONTENT_VOCAB 128000 /* content ids: ordinary (non-special) tokens */
#define PREFIX_TOKENS 5      /* BOS + user header */
#define TEMPLATE_TOKENS 11   /* PREFIX_TOKENS + gating pattern (5) + final eot */

/* ---- deterministic random numbers ----------------------------------------------- */

static uint64_t rng_u64(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { /* [0, 1) */
    return (double)(rng_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}
static double rng_normal(uint64_t *s) { /* Box-Muller, one value per call */
    double u1 = rng_unit(s), u2 = rng_unit(s);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}
static int rng_lognormal(uint64_t *s, double mu, double sigma, int lo, int hi) {
    double v = exp(mu + sigma * rng_normal(s));
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return (int)lround(v);
}
static int rng_int(uint64_t *s, int lo, int hi) { /* uniform in [lo, hi] */
    return lo + (int)(rng_unit(s) * (double)(hi - lo + 1));
}

/* ---- workloads ----------------------------------------------------------------------- */

typedef struct {
    int32_t *ids;
    int len, gpos;
    int prompt_len, response_len; /* content tokens (for the tokenizer timing) */
} bench_seq;

typedef struct {
    char name;                   /* 'a', 'b', 'c' */
    const char *what;
    bench_seq *seqs;
    int n, groups, max_len;
    int64_t tokens;
} workload;

static const char *k_workload_what[3] = {
    "single conversations: length clip(exp(N(6.4, 0.75)), 128, 4096) tokens (mean ~800), "
    "prompt share U[0.2, 0.8) of the content",
    "pairs sharing a prompt: prompt content clip(exp(N(5.8, 0.8)), 32, 2048), each response "
    "clip(exp(N(5.5, 0.8)), 16, 2048) tokens; run with prompt-prefix sharing and again without",
    "best-of-16: a 512-token templated prompt, 16 responses of U[128, 512] tokens each; run "
    "with prompt-prefix sharing and again without",
};

/* One templated sequence: BOS, user header, prompt (shared ids if given),
 * gating pattern, response, eot. */
static int make_seq(bench_seq *q, uint64_t *rng, const int32_t *prompt, int plen, int rlen) {
    q->len = TEMPLATE_TOKENS + plen + rlen;
    q->ids = malloc((size_t)q->len * sizeof *q->ids);
    if (!q->ids) return -1;
    int32_t *p = q->ids;
    *p++ = TOK_BOS;
    *p++ = TOK_START_HEADER;
    *p++ = TOK_USER;
    *p++ = TOK_END_HEADER;
    *p++ = TOK_NL2;
    for (int i = 0; i < plen; i++) *p++ = prompt ? prompt[i] : (int32_t)(rng_u64(rng) % CONTENT_VOCAB);
    q->gpos = (int)(p - q->ids);
    for (int i = 0; i < 5; i++) *p++ = ARMO_LLAMA3_GATING_PATTERN[i];
    for (int i = 0; i < rlen; i++) *p++ = (int32_t)(rng_u64(rng) % CONTENT_VOCAB);
    *p++ = TOK_EOT;
    q->prompt_len = plen;
    q->response_len = rlen;
    return 0;
}

static void workload_free(workload *w) {
    for (int i = 0; i < w->n; i++) free(w->seqs[i].ids);
    free(w->seqs);
    memset(w, 0, sizeof *w);
}

/* Builds workload `name` with about `nseq` sequences (b: rounded up to
 * whole pairs, c: to whole groups of 16).  Each workload has its own random
 * stream (seed mixed with its name), so its sequences do not depend on
 * which other workloads run. */
static int workload_build(workload *w, char name, int nseq, uint64_t seed) {
    memset(w, 0, sizeof *w);
    w->name = name;
    w->what = k_workload_what[name - 'a'];
    uint64_t rng = seed ^ (0x51ed270b27f6a2b1ull * (uint64_t)name);
    int per = name == 'a' ? 1 : name == 'b' ? 2 : 16;
    w->groups = (nseq + per - 1) / per;
    w->n = w->groups * per;
    w->seqs = calloc((size_t)w->n, sizeof *w->seqs);
    if (!w->seqs) return -1;
    int32_t *prompt = NULL;
    for (int g = 0; g < w->groups; g++) {
        bench_seq *q = &w->seqs[g * per];
        if (name == 'a') {
            int len = rng_lognormal(&rng, 6.4, 0.75, 128, 4096);
            int content = len - TEMPLATE_TOKENS;
            int plen = (int)(content * (0.2 + 0.6 * rng_unit(&rng)));
            if (plen < 1) plen = 1;
            if (make_seq(q, &rng, NULL, plen, content - plen)) return -1;
            continue;
        }
        int plen = name == 'b' ? rng_lognormal(&rng, 5.8, 0.8, 32, 2048)
                               : 512 - PREFIX_TOKENS - 5; /* prefix through the pattern: 512 */
        int32_t *np = realloc(prompt, (size_t)plen * sizeof *np);
        if (!np) {
            free(prompt);
            return -1;
        }
        prompt = np;
        for (int i = 0; i < plen; i++) prompt[i] = (int32_t)(rng_u64(&rng) % CONTENT_VOCAB);
        for (int r = 0; r < per; r++) {
            int rlen = name == 'b' ? rng_lognormal(&rng, 5.5, 0.8, 16, 2048)
                                   : rng_int(&rng, 128, 512) - 1; /* + eot: 128..512 */
            if (make_seq(&q[r], &rng, prompt, plen, rlen)) {
                free(prompt);
                return -1;
            }
        }
    }
    free(prompt);
    for (int i = 0; i < w->n; i++) {
        w->tokens += w->seqs[i].len;
        if (w->seqs[i].len > w->max_len) w->max_len = w->seqs[i].len;
    }
    return 0;
}

/* JSONL input_ids records (armo score's format, plus the workload and group),
 * for profiling/bench_hf.py. */
static int workload_write(const workload *w, FILE *f) {
    int per = w->n / (w->groups ? w->groups : 1);
    for (int i = 0; i < w->n; i++) {
        const bench_seq *q = &w->seqs[i];
        if (fprintf(f, "{\"id\":\"%c%d\",\"workload\":\"%c\",\"group\":%d,\"gating_pos\":%d,"
                       "\"input_ids\":[", w->name, i, w->name, i / per, q->gpos) < 0)
            return -1;
        for (int k = 0; k < q->len; k++)
            if (fprintf(f, k ? ",%d" : "%d", q->ids[k]) < 0) return -1;
        if (fputs("]}\n", f) < 0) return -1;
    }
    return 0;
}

/* ---- the real tokenizer on synthetic text of the same lengths (workload a) ------------- */

static const char *const k_words[] = {
    " the", " model", " reads", " each", " conversation", " once", " and", " scores",
    " final", " answer", " while", " network", " looks", " at", " prompt", " to",
    " decide", " which", " objectives", " matter", " most", " for", " this", " kind",
    " of", " request", " such", " as", " code", " style", " safety", " honesty",
    " a", " careful", " reviewer", " would", " check", " every", " number", " against",
    " an", " independent", " reference", " before", " trusting", " faster", " engine",
    " with", " millions", " rows", " preference", " data", ".", ",", " is", " it",
};

/* About `tokens` tokens of English-like text: mostly common words (one
 * token each), one word in five a pseudo-word of random syllables (several
 * tokens, and misses in the tokenizer's piece cache, as rare words do),
 * with punctuation, numbers and line breaks. */
static char *synth_text(uint64_t *rng, int tokens) {
    static const char *const syl[] = {"ka", "lo", "mi", "ren", "tos", "vu", "qua", "zel",
                                      "bri", "sto", "ne", "gha", "pli", "dor", "xi", "um"};
    int words = tokens * 3 / 4 + 1;
    size_t cap = (size_t)words * 20 + 16, n = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    for (int i = 0; i < words; i++) {
        uint64_t r = rng_u64(rng);
        if (r % 5 == 0) {
            s[n++] = ' ';
            int k = 1 + (int)((r >> 8) % 4);
            for (int j = 0; j < k; j++) {
                const char *y = syl[(r >> (12 + 4 * j)) % 16];
                size_t l = strlen(y);
                memcpy(s + n, y, l);
                n += l;
            }
        } else if (r % 23 == 1) {
            n += (size_t)sprintf(s + n, " %u", (unsigned)((r >> 8) % 100000));
        } else {
            const char *w = k_words[(r >> 8) % (sizeof k_words / sizeof k_words[0])];
            size_t l = strlen(w);
            memcpy(s + n, w, l);
            n += l;
        }
        if (r % 41 == 2) s[n++] = '\n';
    }
    s[n] = 0;
    return s;
}

typedef struct {
    const armo_tokenizer *tok;
    char **prompts, **responses;
    int n, nthreads, t;
    int64_t tokens;
    int failed;
} tok_job;

static void *tok_worker(void *arg) {
    tok_job *j = arg;
    armo_ids ids = {0};
    armo_err e;
    for (int i = j->t; i < j->n; i += j->nthreads) {
        ids.n = 0;
        armo_message m = {"user", 4, j->prompts[i], strlen(j->prompts[i])};
        if (armo_chat_encode_response(j->tok, &m, 1, j->responses[i], strlen(j->responses[i]), 0,
                                      &ids, &e)) {
            j->failed = 1;
            break;
        }
        j->tokens += (int64_t)ids.n;
    }
    armo_ids_free(&ids);
    return NULL;
}

typedef struct {
    int ran, passes;
    int64_t tokens, tokens_one_pass;
    double seconds;
    int threads;
} tok_result;

static int time_tokenizer(const char *dir, const workload *w, int threads, uint64_t seed,
                          tok_result *r, armo_err *e) {
    memset(r, 0, sizeof *r);
    armo_tokenizer *tok = armo_tokenizer_load(dir, e);
    if (!tok) return -1;
    if (armo_chat_check(tok, e)) {
        armo_tokenizer_free(tok);
        return -1;
    }
    char **pr = calloc((size_t)w->n, sizeof *pr), **rs = calloc((size_t)w->n, sizeof *rs);
    int rc = pr && rs ? 0 : armo_err_set(e, "out of memory");
    uint64_t rng = seed ^ 0x7a3f1e55ull;
    for (int i = 0; !rc && i < w->n; i++) {
        pr[i] = synth_text(&rng, w->seqs[i].prompt_len);
        rs[i] = synth_text(&rng, w->seqs[i].response_len);
        if (!pr[i] || !rs[i]) rc = armo_err_set(e, "out of memory");
    }
    if (!rc) {
        if (threads < 1) threads = 1;
        if (threads > 256) threads = 256;
        tok_job jobs[256];
        pthread_t tids[256];
        int started[256] = {0};
        double t0 = armo_now();
        /* whole passes over the texts until 0.25 s have passed (at most 1000) */
        for (int pass = 0; !rc && pass < 1000 && (pass == 0 || armo_now() - t0 < 0.25); pass++) {
            for (int t = 0; t < threads; t++) {
                jobs[t] = (tok_job){.tok = tok, .prompts = pr, .responses = rs, .n = w->n,
                                    .nthreads = threads, .t = t};
                started[t] = pthread_create(&tids[t], NULL, tok_worker, &jobs[t]) == 0;
                if (!started[t]) tok_worker(&jobs[t]);
            }
            for (int t = 0; t < threads; t++) {
                if (started[t]) pthread_join(tids[t], NULL);
                r->tokens += jobs[t].tokens;
                if (jobs[t].failed) rc = armo_err_set(e, "tokenizing the synthetic text failed");
            }
            if (pass == 0) r->tokens_one_pass = r->tokens;
            r->passes = pass + 1;
        }
        r->seconds = armo_now() - t0;
        r->threads = threads;
        r->ran = !rc;
    }
    for (int i = 0; i < w->n; i++) {
        if (pr) free(pr[i]);
        if (rs) free(rs[i]);
    }
    free(pr);
    free(rs);
    armo_tokenizer_free(tok);
    return rc;
}

/* ---- packing and timing ----------------------------------------------------------------- */

typedef struct {
    int64_t max_batch_tokens;
    int max_seqs, window, warmup;
} pack_opts;

typedef struct {
    int64_t tokens_scored;       /* tokens of the sequences scored */
    int64_t tokens_computed;     /* tokens run through the model (shared prefixes once) */
    int64_t batches, nonfinite;
    double seconds;
    int has_phases;
    armo_phase_times phases;
    double score_sum;            /* a checksum of the scores (sanity, not a reference) */
} run_result;

/* Scores groups [g0, g1) of w through the scheduler's packing step
 * (armo_score_groups: length-sorted units under the token budget, a group's
 * common prompt prefix computed once when share), in windows of po->window
 * groups, as `armo score` does.  seqs[] borrow the workload's ids. */
static int score_range(armo_backend *b, const workload *w, armo_seq *seqs,
                       armo_seq_group *groups, int g0, int g1, const pack_opts *po, int share,
                       armo_sched_stats *st, armo_err *e) {
    armo_sched_opts so = {.max_batch_tokens = po->max_batch_tokens,
                          .max_batch_seqs = po->max_seqs,
                          .share_prefix = share};
    int per = w->n / w->groups;
    for (int g = g0; g < g1; g += po->window) {
        int ge = g + po->window < g1 ? g + po->window : g1;
        for (int i = g * per; i < ge * per; i++) {
            free(seqs[i].error);
            seqs[i].error = NULL;
        }
        if (armo_score_groups(b, groups + g, ge - g, &so, st, e)) return -1;
        for (int i = g * per; i < ge * per; i++)
            if (seqs[i].error)
                return armo_err_set(e, "sequence %d: %s", i, seqs[i].error);
    }
    return 0;
}

static int run_workload(armo_backend *b, const workload *w, const pack_opts *o, int share,
                        run_result *r, armo_err *e) {
    memset(r, 0, sizeof *r);
    int per = w->n / w->groups;
    armo_seq *seqs = calloc((size_t)w->n, sizeof *seqs);
    armo_seq **ptrs = malloc((size_t)w->n * sizeof *ptrs);
    armo_seq_group *groups = malloc((size_t)w->groups * sizeof *groups);
    int rc = 0;
    if (!seqs || !ptrs || !groups) rc = armo_err_set(e, "out of memory");
    for (int i = 0; !rc && i < w->n; i++) {
        seqs[i].ids = w->seqs[i].ids; /* borrowed: never freed here */
        seqs[i].len = w->seqs[i].len;
        seqs[i].gating_pos = w->seqs[i].gpos;
        ptrs[i] = &seqs[i];
    }
    for (int g = 0; !rc && g < w->groups; g++) groups[g] = (armo_seq_group){ptrs + g * per, per};
    /* warm-up (cuBLASLt heuristics, lazy module loading): a few groups, not timed */
    armo_sched_stats st = {0};
    if (!rc && o->warmup > 0) {
        int gw = 4 * o->warmup < w->groups ? 4 * o->warmup : w->groups;
        rc = score_range(b, w, seqs, groups, 0, gw, o, share, &st, e);
    }
    int timing = b->set_timing != NULL; /* per-phase GPU time, where the backend has it */
    if (!rc && timing) rc = b->set_timing(b, 1, e);
    if (!rc) {
        memset(&st, 0, sizeof st);
        double t0 = armo_now();
        rc = score_range(b, w, seqs, groups, 0, w->groups, o, share, &st, e);
        r->seconds = armo_now() - t0;
        r->tokens_scored = st.tokens;
        r->tokens_computed = st.tokens_computed;
        r->batches = st.batches;
        for (int i = 0; !rc && i < w->n; i++) {
            if (!isfinite(seqs[i].result.score)) r->nonfinite++;
            else r->score_sum += seqs[i].result.score;
        }
    }
    if (timing) {
        b->get_timing(b, &r->phases);
        r->has_phases = 1;
        armo_err ignored;
        b->set_timing(b, 0, &ignored);
    }
    for (int i = 0; seqs && i < w->n; i++) free(seqs[i].error);
    free(seqs);
    free(ptrs);
    free(groups);
    return rc;
}

/* ---- FLOPs and the GEMM ceiling --------------------------------------------------------- */

/* Matmul parameters of the backbone: per layer H·(nh+2nkv)·hd (QKV) +
 * nh·hd·H (o) + 3·H·I (gate, up, down). */
static double matmul_params(const armo_config *c) {
    double H = c->hidden_size, hd = c->head_dim, I = c->intermediate_size;
    double per = H * (c->num_heads + 2.0 * c->num_kv_heads) * hd + c->num_heads * hd * H +
                 3.0 * H * I;
    return per * c->num_layers;
}

/* Model FLOPs of one sequence of n tokens: 2·P·n (every token through every
 * matmul) + causal attention 2·L·nh·hd·n·(n+1) (QKᵀ and PV: 4·nh·hd FLOPs
 * per (query, key) pair, keys 0..i for query i, per layer).  The head
 * (~13 MFLOP per sequence at ArmoRM widths) and the embedding gather are
 * left out; armo's last layer skips the o/MLP work of rows that do not feed
 * the head, which this nominal count does not credit. */
static double seq_flops(const armo_config *c, double P, int n) {
    return 2.0 * P * n + 2.0 * c->num_layers * (double)c->num_heads * c->head_dim * n * (n + 1.0);
}

/* ---- the command ----------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo bench [options]\n\n"
        "Measures armo's scoring throughput on synthetic workloads.  Unless --model is\n"
        "given it writes an ArmoRM-shaped checkpoint with random weights (hidden 4096,\n"
        "32/8 heads, head_dim 128, intermediate 14336, vocab 128257, 19 objectives,\n"
        "gating 1024 x 3; backbone BF16, head F32) into a temporary directory under\n"
        "--workdir, removed at exit unless --keep.  Nothing is downloaded.\n\n"
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
        "8192x8192x8192, on the CPU cpu_matmul with a bf16 1024x1024 weight on 256 rows.\n"
        "On CUDA also: GPU time per phase (upload, embed, layers, head, download;\n"
        "cudaEvents) and device memory (cudaMemGetInfo).  With --tokenizer, workload a\n"
        "also times the real tokenizer + chat template on synthetic English text of\n"
        "the same prompt / response lengths (--threads workers).  4 x --warmup groups\n"
        "are scored once untimed before each run.\n\n"
        "Options:\n"
        "  --device auto|cuda|cpu  backend (default auto: CUDA when a GPU is visible)\n"
        "  --workload a|b|c|all    which workloads (default a)\n"
        "  --sequences N           sequences per workload (b rounds up to pairs, c to\n"
        "                          groups of 16; default 512 on CUDA, 16 on the CPU)\n"
        "  --layers N              decoder layers (default 32 on CUDA, 2 on the CPU)\n"
        "  --hidden N              hidden size (default 4096); when given without\n"
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
        "  --window N              groups (records) sorted together (default 2048)\n"
        "  --warmup N              untimed warm-up: 4N groups before each run (default 1 on\n"
        "                          CUDA, 0 on the CPU)\n"
        "  --threads N             CPU threads (backend and tokenizer; default: all)\n"
        "  --seed N                workload and weight seed (default 1)\n"
        "  --workdir DIR           where the random checkpoint goes (default /tmp)\n"
        "  --keep                  keep the random checkpoint (its path is printed)\n"
        "  --json FILE             also write the results as one JSON line to FILE\n"
        "  --workload-out FILE     write the workloads as JSONL input_ids records\n"
        "                          (for profiling/bench_hf.py or `armo score`)\n"
        "  --no-share-prefix       run b and c only without prompt-prefix sharing (by\n"
        "                          default they run with it, row \"b+s\" / \"c+s\", and\n"
        "                          again without, and the speed-up is printed)\n"
        "  --quiet                 no progress on stderr\n\n"
        "Exit status: 0 done, 1 a run failed or produced non-finite scores, 2 bad\n"
        "arguments.\n",
        k_workload_what[0], k_workload_what[1], k_workload_what[2]);
}

static void remove_model_dir(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

typedef struct {
    long sequences, layers, hidden, heads, kv_heads, head_dim, intermediate, vocab;
    long max_batch, max_seqs, window, warmup, threads, seed;
    const char *device, *workloads, *model_dir, *tokenizer, *workdir, *json_path, *wl_out;
    int keep, quiet, no_share;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(o, "--keep")) {
            a->keep = 1;
            continue;
        }
        if (!strcmp(o, "--quiet")) {
            a->quiet = 1;
            continue;
        }
        if (!strcmp(o, "--no-share-prefix")) {
            a->no_share = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "armo bench: unknown option or missing value: '%s'\n\n", o);
            usage(stderr);
            return -1;
        }
        i++;
        struct {
            const char *name;
            long *dst, lo, hi;
        } ints[] = {
            {"--sequences", &a->sequences, 1, 10000000}, {"--layers", &a->layers, 1, 1024},
            {"--hidden", &a->hidden, 8, 65536},          {"--heads", &a->heads, 1, 1024},
            {"--kv-heads", &a->kv_heads, 1, 1024},       {"--head-dim", &a->head_dim, 2, 1024},
            {"--intermediate", &a->intermediate, 8, 1 << 20},
            {"--vocab", &a->vocab, 128257, 1 << 24},
            {"--max-batch-tokens", &a->max_batch, 1, INT_MAX},
            {"--max-seqs", &a->max_seqs, 1, 65535},      {"--window", &a->window, 1, 1 << 24},
            {"--warmup", &a->warmup, 0, 1000},           {"--threads", &a->threads, 0, 1024},
            {"--seed", &a->seed, 0, LONG_MAX},
        };
        int matched = 0;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
            if (!strcmp(o, ints[k].name)) {
                if (armo_parse_long("bench", o, v, ints[k].lo, ints[k].hi, ints[k].dst)) return -1;
                matched = 1;
            }
        if (matched) continue;
        if (!strcmp(o, "--device")) a->device = v;
        else if (!strcmp(o, "--workload")) a->workloads = v;
        else if (!strcmp(o, "--model")) a->model_dir = v;
        else if (!strcmp(o, "--tokenizer")) a->tokenizer = v;
        else if (!strcmp(o, "--workdir")) a->workdir = v;
        else if (!strcmp(o, "--json")) a->json_path = v;
        else if (!strcmp(o, "--workload-out")) a->wl_out = v;
        else {
            fprintf(stderr, "armo bench: unknown option '%s'\n\n", o);
            usage(stderr);
            return -1;
        }
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

static json_t *phases_json(const run_result *r) {
    if (!r->has_phases) return json_null();
    const armo_phase_times *p = &r->phases;
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I}", "upload_s", p->upload_ms / 1e3,
                     "embed_s", p->embed_ms / 1e3, "layers_s", p->layers_ms / 1e3, "head_s",
                     p->head_ms / 1e3, "download_s", p->download_ms / 1e3, "calls",
                     (json_int_t)p->calls);
}

int cmd_bench(int argc, char **argv) {
    bench_args a = {.device = "auto", .workloads = "a", .workdir = "/tmp", .seed = 1,
                    .max_seqs = 1024, .window = 2048, .warmup = -1};
    int pa = parse_args(argc, argv, &a);
    if (pa) return pa > 0 ? 0 : 2;

    armo_err e;
    const char *device = armo_backend_resolve(a.device, &e); /* "cpu" or "cuda" */
    if (!device) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        return 2;
    }
    const int cuda = !strcmp(device, "cuda");
    long threads = a.threads > 0 ? a.threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (a.sequences <= 0) a.sequences = cuda ? 512 : 16;
    if (a.layers <= 0) a.layers = cuda ? 32 : 2;
    if (a.warmup < 0) a.warmup = cuda ? 1 : 0;
    if (a.max_batch <= 0) a.max_batch = cuda ? 16384 : 4096;

    int rc = 1;
    char tmpdir[4200] = "";
    const char *model_dir = a.model_dir;
    armo_model model;
    int model_open = 0;
    armo_backend *b = NULL;
    workload wl[3];
    memset(wl, 0, sizeof wl);
    json_t *out = json_object(), *jw = json_array();
    FILE *wf = NULL;
    double t_write = 0.0, t_load = 0.0;

    /* workloads first: they also size the batches */
    int nwl = 0;
    for (char c = 'a'; c <= 'c'; c++) {
        if (strcmp(a.workloads, "all") && a.workloads[0] != c) continue;
        if (workload_build(&wl[nwl], c, (int)a.sequences, (uint64_t)a.seed)) {
            fprintf(stderr, "armo bench: out of memory building workload %c\n", c);
            goto done;
        }
        nwl++;
    }
    int longest = 0;
    for (int i = 0; i < nwl; i++)
        if (wl[i].max_len > longest) longest = wl[i].max_len;
    if (a.max_batch < longest) a.max_batch = longest;
    if (a.wl_out) {
        wf = fopen(a.wl_out, "wb");
        int bad = !wf;
        for (int i = 0; !bad && i < nwl; i++) bad = workload_write(&wl[i], wf) != 0;
        if (wf && fclose(wf) != 0) bad = 1;
        wf = NULL;
        if (bad) {
            fprintf(stderr, "armo bench: cannot write %s: %s\n", a.wl_out, strerror(errno));
            goto done;
        }
    }

    /* the GEMM ceiling, before the model takes the GPU's memory */
    armo_gemm_ceiling gc;
    if (armo_backend_gemm_ceiling(device, (int)threads, &gc, &e)) {
        fprintf(stderr, "armo bench: GEMM ceiling: %s\n", e.msg);
        goto done;
    }
    const double ceiling = gc.tflops;
    const int cshape[3] = {gc.n, gc.in, gc.out};
    const char *cwhat = gc.what;
    size_t mem_free0 = 0, mem_total = 0, mem_free1 = 0, mem_free2 = 0;
    if (cuda && armo_backend_mem_info(device, &mem_free0, &mem_total, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        goto done;
    }

    /* the model */
    if (!model_dir) {
        armo_random_spec s = armo_random_spec_armorm((int)a.layers, (uint64_t)a.seed);
        if (a.hidden > 0) {
            s.hidden = (int)a.hidden;
            s.heads = (int)(a.hidden / 128 > 0 ? a.hidden / 128 : 1);
            s.kv_heads = s.heads / 4 > 0 ? s.heads / 4 : 1;
            s.intermediate = (int)((a.hidden * 7 / 2 + 7) / 8 * 8);
        }
        if (a.heads > 0) s.heads = (int)a.heads;
        if (a.kv_heads > 0) s.kv_heads = (int)a.kv_heads;
        if (a.head_dim > 0) s.head_dim = (int)a.head_dim;
        if (a.intermediate > 0) s.intermediate = (int)a.intermediate;
        if (a.vocab > 0) s.vocab = (int)a.vocab;
        if (s.heads % s.kv_heads) {
            fprintf(stderr, "armo bench: heads (%d) must be a multiple of kv heads (%d)\n",
                    s.heads, s.kv_heads);
            rc = 2;
            goto done;
        }
        snprintf(tmpdir, sizeof tmpdir, "%s/armo-bench-XXXXXX", a.workdir);
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "armo bench: cannot create a directory under %s: %s\n", a.workdir,
                    strerror(errno));
            tmpdir[0] = 0;
            goto done;
        }
        if (!a.quiet)
            fprintf(stderr, "armo bench: writing a random ArmoRM-shaped model (hidden %d, %d "
                            "layers) to %s\n", s.hidden, s.layers, tmpdir);
        double t0 = armo_now();
        if (armo_write_random_model(tmpdir, &s, &e)) {
            fprintf(stderr, "armo bench: %s\n", e.msg);
            goto done;
        }
        t_write = armo_now() - t0;
        model_dir = tmpdir;
    }
    double t0 = armo_now();
    if (armo_model_open(model_dir, &model, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        goto done;
    }
    model_open = 1;
    if (model.cfg.arch != ARMO_ARCH_ARMORM) {
        fprintf(stderr, "armo bench: %s is not an ArmoRM checkpoint; the workloads need the "
                        "gated head\n", model_dir);
        goto done;
    }
    if (longest > model.cfg.max_position_embeddings) {
        fprintf(stderr, "armo bench: the workloads need %d positions; the model allows %d\n",
                longest, model.cfg.max_position_embeddings);
        goto done;
    }
    armo_backend_opts bo = {.threads = (int)threads, .max_batch_tokens = a.max_batch,
                            .max_seqs = (int)a.max_seqs, .quiet = a.quiet};
    b = armo_backend_open(&model, device, &bo, &e);
    if (!b) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        goto done;
    }
    t_load = armo_now() - t0;
    if (cuda && armo_backend_mem_info(device, &mem_free1, &mem_total, &e)) {
        fprintf(stderr, "armo bench: %s\n", e.msg);
        goto done;
    }

    const armo_config *cfg = &model.cfg;
    double P = matmul_params(cfg);
    printf("armo bench on %s\n", b->device);
    printf("model: %s%s, hidden %d, %d layers, %d/%d heads x %d, intermediate %d, vocab %d; "
           "%.2f M matmul params\n",
           a.model_dir ? a.model_dir : "random ArmoRM-shaped", a.model_dir ? "" : " weights",
           cfg->hidden_size, cfg->num_layers, cfg->num_heads, cfg->num_kv_heads, cfg->head_dim,
           cfg->intermediate_size, cfg->vocab_size, P / 1e6);
    printf("GEMM ceiling: %.3f TFLOP/s (%dx%dx%d, %s)\n", ceiling, cshape[0], cshape[1],
           cshape[2], cwhat);
    printf("packing: length-sorted windows of %ld, batches of <= %ld tokens / %ld sequences\n\n",
           a.window, a.max_batch, a.max_seqs);
    printf("%-3s %7s %10s %8s %9s %11s %9s %9s %7s\n", "wl", "seqs", "tokens", "batches",
           "seconds", "tokens/s", "seqs/s", "TFLOP/s", "MFU");

    pack_opts po = {.max_batch_tokens = a.max_batch, .max_seqs = (int)a.max_seqs,
                    .window = (int)a.window, .warmup = (int)a.warmup};
    int failed = 0;
    for (int i = 0; i < nwl; i++) {
        workload *w = &wl[i];
        run_result r, ru;
        /* b and c: with prompt-prefix sharing (as armo score runs them), then without */
        int grouped = w->name != 'a', share = grouped && !a.no_share;
        if (run_workload(b, w, &po, share, &r, &e) ||
            (share && run_workload(b, w, &po, 0, &ru, &e))) {
            fprintf(stderr, "armo bench: workload %c: %s\n", w->name, e.msg);
            goto done;
        }
        /* model FLOPs as if every sequence ran whole; MFU counts what ran:
         * the GEMMs of the tokens computed plus the attention of every row */
        double flops = 0.0, attn = 0.0;
        for (int k = 0; k < w->n; k++) {
            double f = seq_flops(cfg, P, w->seqs[k].len);
            flops += f;
            attn += f - 2.0 * P * w->seqs[k].len;
        }
        double secs = r.seconds > 0 ? r.seconds : 1e-9;
        double run_flops = 2.0 * P * (double)r.tokens_computed + attn;
        double tps = (double)r.tokens_scored / secs, sps = w->n / secs,
               tflops = run_flops / secs / 1e12;
        double mfu = ceiling > 0 ? tflops / ceiling : 0.0;
        char label[16];
        snprintf(label, sizeof label, "%c%s", w->name, share ? "+s" : "");
        printf("%-3s %7d %10lld %8lld %9.3f %11.1f %9.2f %9.4f %6.1f%%\n", label, w->n,
               (long long)r.tokens_scored, (long long)r.batches, r.seconds, tps, sps, tflops,
               100.0 * mfu);
        json_t *junshared = json_null();
        if (share) {
            double su = ru.seconds > 0 ? ru.seconds : 1e-9;
            double tu = (2.0 * P * (double)ru.tokens_computed + attn) / su / 1e12;
            printf("%-3c %7d %10lld %8lld %9.3f %11.1f %9.2f %9.4f %6.1f%%\n", w->name, w->n,
                   (long long)ru.tokens_scored, (long long)ru.batches, ru.seconds,
                   ru.tokens_scored / su, w->n / su, tu, ceiling > 0 ? 100.0 * tu / ceiling : 0.0);
            printf("    prompt-prefix sharing: %lld of %lld tokens computed; %.2fx the "
                   "unshared throughput\n",
                   (long long)r.tokens_computed, (long long)r.tokens_scored, su / secs);
            junshared = json_pack("{s:f, s:f, s:I, s:I, s:f}", "seconds", ru.seconds,
                                  "tokens_per_s", ru.tokens_scored / su, "tokens_computed",
                                  (json_int_t)ru.tokens_computed, "batches",
                                  (json_int_t)ru.batches, "sharing_speedup", su / secs);
            if (ru.nonfinite) failed = 1;
            /* shared and unshared scoring compute the same function */
            double d = fabs(r.score_sum - ru.score_sum);
            if (d > 1e-2 * (1.0 + fabs(ru.score_sum))) {
                printf("    shared and unshared score sums differ: %.6g vs %.6g\n", r.score_sum,
                       ru.score_sum);
                failed = 1;
            }
        }
        if (r.has_phases) {
            const armo_phase_times *p = &r.phases;
            double tot = p->upload_ms + p->embed_ms + p->layers_ms + p->head_ms + p->download_ms;
            printf("    GPU time per phase: upload %.1f ms, embed %.1f ms, layers %.1f ms, head "
                   "%.1f ms, download %.1f ms (sum %.1f ms of %.1f ms wall)\n",
                   p->upload_ms, p->embed_ms, p->layers_ms, p->head_ms, p->download_ms, tot,
                   r.seconds * 1e3);
        }
        if (r.nonfinite) {
            printf("    %lld non-finite scores\n", (long long)r.nonfinite);
            failed = 1;
        }
        if (r.tokens_scored != w->tokens) {
            printf("    backend reported %lld tokens, the workload has %lld\n",
                   (long long)r.tokens_scored, (long long)w->tokens);
            failed = 1;
        }
        tok_result tr = {0};
        json_t *jt = json_null();
        if (w->name == 'a' && a.tokenizer) {
            if (time_tokenizer(a.tokenizer, w, (int)threads, (uint64_t)a.seed, &tr, &e)) {
                fprintf(stderr, "armo bench: tokenizer: %s\n", e.msg);
                failed = 1;
            } else {
                double ts = tr.seconds > 0 ? tr.seconds : 1e-9;
                printf("    tokenizer + chat template on synthetic text of the same lengths "
                       "(%lld tokens a pass): %lld tokens in %.3f s (%d passes) on %d threads = "
                       "%.0f tokens/s\n",
                       (long long)tr.tokens_one_pass, (long long)tr.tokens, tr.seconds, tr.passes,
                       tr.threads, tr.tokens / ts);
                json_decref(jt);
                jt = json_pack("{s:I, s:I, s:i, s:f, s:i, s:f}", "tokens_per_pass",
                               (json_int_t)tr.tokens_one_pass, "tokens", (json_int_t)tr.tokens,
                               "passes", tr.passes, "seconds", tr.seconds, "threads", tr.threads,
                               "tokens_per_s", tr.tokens / ts);
            }
        }
        char wname[2] = {w->name, 0};
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:f, s:f, "
                              "s:f, s:o, s:o, s:I, s:f}",
                              "workload", wname, "description", w->what,
                              "sequences", w->n, "groups", w->groups, "tokens",
                              (json_int_t)w->tokens, "tokens_scored",
                              (json_int_t)r.tokens_scored, "batches", (json_int_t)r.batches,
                              "max_len", w->max_len, "seconds", r.seconds, "tokens_per_s", tps,
                              "sequences_per_s", sps, "model_flops", flops, "tflops", tflops,
                              "mfu", mfu, "phases", phases_json(&r), "tokenizer", jt,
                              "nonfinite_scores", (json_int_t)r.nonfinite, "score_sum",
                              r.score_sum);
        json_object_set_new(o, "prefix_sharing", json_boolean(share));
        json_object_set_new(o, "tokens_computed", json_integer(r.tokens_computed));
        json_object_set_new(o, "unshared", junshared);
        json_array_append_new(jw, o);
    }
    json_t *jmem = json_null();
    if (cuda) {
        if (armo_backend_mem_info(device, &mem_free2, &mem_total, &e)) {
            fprintf(stderr, "armo bench: %s\n", e.msg);
            goto done;
        }
        double gib = 1024.0 * 1024.0 * 1024.0;
        printf("\nGPU memory: %.2f GiB total; armo holds %.2f GiB after load, %.2f GiB after the "
               "runs (cudaMemGetInfo, relative to before load)\n",
               mem_total / gib, ((double)mem_free0 - mem_free1) / gib,
               ((double)mem_free0 - mem_free2) / gib);
        jmem = json_pack("{s:I, s:I, s:I, s:I}", "total_bytes", (json_int_t)mem_total,
                         "free_before_load_bytes", (json_int_t)mem_free0, "used_after_load_bytes",
                         (json_int_t)((int64_t)mem_free0 - (int64_t)mem_free1),
                         "used_after_runs_bytes",
                         (json_int_t)((int64_t)mem_free0 - (int64_t)mem_free2));
    }
    printf("model written in %.2f s, loaded in %.2f s\n", t_write, t_load);

    json_object_set_new(out, "armo_bench", json_integer(1));
    json_object_set_new(out, "device", json_string(b->device));
    json_object_set_new(out, "backend", json_string(b->name));
    json_object_set_new(out, "model",
                        json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f}", "source",
                                  a.model_dir ? a.model_dir : "random", "hidden",
                                  cfg->hidden_size, "layers", cfg->num_layers, "heads",
                                  cfg->num_heads, "kv_heads", cfg->num_kv_heads, "head_dim",
                                  cfg->head_dim, "intermediate", cfg->intermediate_size, "vocab",
                                  cfg->vocab_size, "matmul_params", P));
    json_object_set_new(out, "seed", json_integer(a.seed));
    json_object_set_new(out, "threads", json_integer(threads));
    json_object_set_new(out, "packing",
                        json_pack("{s:I, s:i, s:i, s:i}", "max_batch_tokens",
                                  (json_int_t)a.max_batch, "max_seqs", (int)a.max_seqs, "window",
                                  (int)a.window, "warmup_batches", (int)a.warmup));
    json_object_set_new(out, "gemm_ceiling",
                        json_pack("{s:f, s:[i,i,i], s:s}", "tflops", ceiling, "shape", cshape[0],
                                  cshape[1], cshape[2], "what", cwhat));
    json_object_set_new(out, "flops_formula",
                        json_string("2*P*n + 2*L*nh*hd*n*(n+1) per sequence of n tokens"));
    json_object_set_new(out, "workloads", jw);
    jw = NULL;
    json_object_set_new(out, "gpu_memory", jmem);
    json_object_set_new(out, "model_write_s", json_real(t_write));
    json_object_set_new(out, "model_load_s", json_real(t_load));
    if (a.json_path) {
        char *line = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        FILE *f = fopen(a.json_path, "wb");
        int bad = !line || !f || fprintf(f, "%s\n", line) < 0;
        if (f && fclose(f) != 0) bad = 1;
        free(line);
        if (bad) {
            fprintf(stderr, "armo bench: cannot write %s: %s\n", a.json_path, strerror(errno));
            goto done;
        }
    }
    rc = failed ? 1 : 0;
done:
    armo_backend_close(b);
    if (model_open) armo_model_close(&model);
    if (tmpdir[0]) {
        if (a.keep) fprintf(stderr, "armo bench: kept the model in %s\n", tmpdir);
        else remove_model_dir(tmpdir);
    }
    for (int i = 0; i < 3; i++) workload_free(&wl[i]);
    json_decref(jw);
    json_decref(out);
    return rc;
}
