/* bench_run.h — what `armo bench` measures: a workload scored through armo
 * score's own packing step (scheduler.h's armo_score_groups) with and
 * without prompt-prefix sharing, timed, with per-phase GPU time where the
 * backend has it; the real tokenizer + chat template on synthetic text of
 * the same lengths; and the model FLOPs that MFU divides.  Internal to
 * host/cli/. */
#ifndef ARMO_BENCH_RUN_H
#define ARMO_BENCH_RUN_H

#include <stdint.h>

#include "base/errors.h"
#include "host/cli/bench_workload.h"
#include "host/engine/backend.h"
#include "weights/config.h"

/* How armo score packs: the token and sequence budgets of a batch, the
 * window of groups sorted together, and 4 x warmup groups scored untimed
 * before each run; phase_times: per-phase GPU time where the backend has it
 * (its events keep CUDA graphs from being used). */
typedef struct {
    int64_t max_batch_tokens;
    int max_seqs, window, warmup;
    int phase_times;
} bench_pack_opts;

/* One timed run of a workload. */
typedef struct {
    int64_t tokens_scored;       /* tokens of the sequences scored */
    int64_t tokens_computed;     /* tokens run through the model (shared prefixes once) */
    int64_t batches, nonfinite;
    double seconds;
    int has_phases;
    armo_phase_times phases;
    int has_graphs;              /* the backend counts CUDA graph replays (graph_stats) */
    int64_t graph_replays, graph_captures; /* during the timed run */
    double score_sum;            /* a checksum of the scores (sanity, not a reference) */
} bench_run_result;

/* Scores workload w on backend b as armo score would (share: a group's
 * common prompt prefix computed once), after an untimed warm-up, and fills
 * r.  A sequence that fails is an error naming it.  Returns 0 / -1. */
int bench_run_workload(armo_backend *b, const bench_workload *w, const bench_pack_opts *o,
                       int share, bench_run_result *r, armo_err *e);

/* The same through the data-parallel workers of armo score (nb backends,
 * one worker each; scheduler.h's armo_score_groups_workers). */
int bench_run_workload_workers(armo_backend **b, int nb, const bench_workload *w,
                               const bench_pack_opts *o, int share, bench_run_result *r,
                               armo_err *e);

/* The tokenizer timing of workload a. */
typedef struct {
    int ran, passes;
    int64_t tokens, tokens_one_pass;
    double seconds;
    int threads;
} bench_tok_result;

/* Times the tokenizer of model directory dir (with the chat template) on
 * synthetic text of w's prompt and response lengths, in whole passes until
 * 0.25 s have passed, on threads threads.  Returns 0 / -1. */
int bench_time_tokenizer(const char *dir, const bench_workload *w, int threads, uint64_t seed,
                         bench_tok_result *r, armo_err *e);

/* Matmul parameters of the backbone: per layer H·(nh+2nkv)·hd (QKV) +
 * nh·hd·H (o) + 3·H·I (gate, up, down). */
double bench_matmul_params(const armo_config *c);

/* Model FLOPs of one sequence of n tokens with P matmul parameters:
 * 2·P·n + causal attention 2·L·nh·hd·n·(n+1). */
double bench_seq_flops(const armo_config *c, double P, int n);

#endif
