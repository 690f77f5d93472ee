/* bench_workload.c — armo bench's synthetic workloads and text (see
 * bench_workload.h). */
#include "host/cli/bench_workload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/positions.h"

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

static const char *const k_workload_what[3] = {
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

void bench_workload_free(bench_workload *w) {
    for (int i = 0; i < w->n; i++) free(w->seqs[i].ids);
    free(w->seqs);
    memset(w, 0, sizeof *w);
}

int bench_workload_build(bench_workload *w, char name, int nseq, uint64_t seed) {
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

int bench_workload_write(const bench_workload *w, FILE *f) {
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

const char *bench_workload_what(char name) {
    return name >= 'a' && name <= 'c' ? k_workload_what[name - 'a'] : NULL;
}

/* ---- synthetic text of the workloads' lengths (for the tokenizer timing) ---- */

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

int bench_texts(const bench_workload *w, uint64_t seed, char ***prompts, char ***responses) {
    char **pr = calloc((size_t)w->n, sizeof *pr), **rs = calloc((size_t)w->n, sizeof *rs);
    *prompts = pr;
    *responses = rs;
    if (!pr || !rs) return -1;
    uint64_t rng = seed ^ 0x7a3f1e55ull;
    for (int i = 0; i < w->n; i++) {
        pr[i] = synth_text(&rng, w->seqs[i].prompt_len);
        rs[i] = synth_text(&rng, w->seqs[i].response_len);
        if (!pr[i] || !rs[i]) return -1;
    }
    return 0;
}

void bench_texts_free(int n, char **prompts, char **responses) {
    for (int i = 0; i < n; i++) {
        if (prompts) free(prompts[i]);
        if (responses) free(responses[i]);
    }
    free(prompts);
    free(responses);
}
