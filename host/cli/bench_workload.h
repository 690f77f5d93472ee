/* bench_workload.h — the synthetic workloads of `armo bench` (DESIGN §6):
 * token-id sequences in the Llama-3 chat template's layout, with the gating
 * pattern where the template puts it, drawn from fixed length distributions
 * and a seed (so a run is repeatable and Hugging Face can be fed the same
 * sequences), and English-like text of the same lengths for timing the
 * tokenizer.  Internal to host/cli/. */
#ifndef ARMO_BENCH_WORKLOAD_H
#define ARMO_BENCH_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>

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
} bench_workload;

/* What workload 'a', 'b' or 'c' is, in one line (for --help and the JSON). */
const char *bench_workload_what(char name);

/* Builds workload `name` with about `nseq` sequences (b: rounded up to
 * whole pairs, c: to whole groups of 16).  Each workload has its own random
 * stream (seed mixed with its name), so its sequences do not depend on
 * which other workloads run.  Returns 0, or -1 out of memory. */
int bench_workload_build(bench_workload *w, char name, int nseq, uint64_t seed);
void bench_workload_free(bench_workload *w);

/* Writes w as JSONL input_ids records (armo score's format, plus the
 * workload, group and gating position), for profiling/bench_hf.py. */
int bench_workload_write(const bench_workload *w, FILE *f);

/* Synthetic text for each sequence of w: prompts[i] and responses[i] of
 * about its prompt and response lengths in tokens (malloc'ed; free with
 * bench_texts_free).  Returns 0, or -1 out of memory. */
int bench_texts(const bench_workload *w, uint64_t seed, char ***prompts, char ***responses);
void bench_texts_free(int n, char **prompts, char **responses);

#endif
