/* bench_tokenizer.c — armo tokenizer throughput, single thread (a benchmark,
 * never a test).
 *
 *   bench_tokenizer [--model DIR] [--corpus FILE.jsonl[.xz]] [--passes N] [--skip-long]
 *                   [--threads N]
 *
 * Reads {"text": …} lines (default: the golden corpus
 * tests/data/tokenizer/corpus.jsonl.xz), encodes every text N times (default
 * 5) with special tokens recognised, and prints one line per pass plus a
 * summary "armo tokens=… bytes=… best_s=… tokens_per_s=…" that
 * profiling/bench_tokenizer.py parses.  The first pass runs with a cold
 * piece cache; the best pass is reported.  --threads N (default 1) shares
 * the texts round-robin among N pthreads encoding concurrently on the one
 * tokenizer, to measure scaling (wall-clock time of each pass). */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const armo_tokenizer *tok;
    char **texts;
    size_t *lens, n;
    int index, n_threads, failed;
    size_t tokens;
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    armo_ids ids = {0};
    armo_err e;
    w->tokens = 0;
    for (size_t i = (size_t)w->index; i < w->n; i += (size_t)w->n_threads) {
        ids.n = 0;
        if (armo_tokenizer_encode(w->tok, w->texts[i], w->lens[i], 0, &ids, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            w->failed = 1;
            break;
        }
        w->tokens += ids.n;
    }
    armo_ids_free(&ids);
    return NULL;
}

int main(int argc, char **argv) {
    const char *model = ARMO_MODELS_DIR "/_data/llama3-tokenizer";
    const char *corpus = ARMO_SOURCE_DIR "/tests/data/tokenizer/corpus.jsonl.xz";
    int passes = 5, skip_long = 0, n_threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--corpus") && i + 1 < argc) corpus = argv[++i];
        else if (!strcmp(argv[i], "--passes") && i + 1 < argc) passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--skip-long")) skip_long = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--model DIR] [--corpus FILE.jsonl[.xz]] [--passes N] "
                            "[--skip-long] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    if (passes < 1) passes = 1;
    if (n_threads < 1 || n_threads > 256) n_threads = 1;
    char cmd[4200];
    size_t cl = strlen(corpus);
    if (cl > 3 && !strcmp(corpus + cl - 3, ".xz")) snprintf(cmd, sizeof cmd, "xz -dc '%s'", corpus);
    else snprintf(cmd, sizeof cmd, "cat '%s'", corpus);
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("popen");
        return 1;
    }
    char **texts = NULL;
    size_t *lens = NULL, n = 0, cap = 0, total_bytes = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, p)) > 0) {
        json_t *j = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, NULL);
        if (!j) continue;
        const char *name = json_string_value(json_object_get(j, "name"));
        json_t *t = json_object_get(j, "text");
        if (json_is_string(t) && !(skip_long && name && !strncmp(name, "long", 4))) {
            if (n == cap) {
                cap = cap ? 2 * cap : 512;
                texts = realloc(texts, cap * sizeof *texts);
                lens = realloc(lens, cap * sizeof *lens);
                if (!texts || !lens) return 1;
            }
            lens[n] = json_string_length(t);
            texts[n] = malloc(lens[n] + 1);
            memcpy(texts[n], json_string_value(t), lens[n] + 1);
            total_bytes += lens[n];
            n++;
        }
        json_decref(j);
    }
    free(line);
    pclose(p);
    if (!n) {
        fprintf(stderr, "no texts read from %s\n", corpus);
        return 1;
    }
    armo_err e;
    double t0 = now_s();
    armo_tokenizer *tok = armo_tokenizer_load(model, &e);
    if (!tok) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    printf("load: %.3f s; corpus: %zu texts, %zu bytes\n", now_s() - t0, n, total_bytes);
    double best = 1e30;
    size_t tokens = 0;
    worker_arg *wa = calloc((size_t)n_threads, sizeof *wa);
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    if (!wa || !th) return 1;
    for (int pass = 0; pass < passes; pass++) {
        double a = now_s();
        for (int k = 0; k < n_threads; k++) {
            wa[k] = (worker_arg){tok, texts, lens, n, k, n_threads, 0, 0};
            if (n_threads > 1 && pthread_create(&th[k], NULL, worker, &wa[k])) {
                fprintf(stderr, "pthread_create failed\n");
                return 1;
            }
        }
        if (n_threads == 1) worker(&wa[0]);
        tokens = 0;
        for (int k = 0; k < n_threads; k++) {
            if (n_threads > 1) pthread_join(th[k], NULL);
            if (wa[k].failed) return 1;
            tokens += wa[k].tokens;
        }
        double dt = now_s() - a;
        if (dt < best) best = dt;
        printf("pass %d%s: %.4f s, %.0f tokens/s, %.2f MB/s (%d thread%s)\n", pass,
               pass ? "" : " (cold cache)", dt, (double)tokens / dt, (double)total_bytes / dt / 1e6,
               n_threads, n_threads > 1 ? "s" : "");
    }
    free(wa);
    free(th);
    printf("armo tokens=%zu bytes=%zu best_s=%.6f tokens_per_s=%.0f\n", tokens, total_bytes, best,
           (double)tokens / best);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    armo_tokenizer_free(tok);
    return 0;
}
