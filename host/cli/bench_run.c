/* bench_run.c — armo bench's measurements (see bench_run.h). */
#include "host/cli/bench_run.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "host/engine/scheduler.h"
#include "host/text/chat_template.h"
#include "host/text/tokenizer.h"

/* ---- a workload through armo score's packing, timed ---- */

/* Scores groups [g0, g1) of w through the scheduler's packing step
 * (armo_score_groups: units in input order under the token budget, a group's
 * common prompt prefix computed once when share), in windows of po->window
 * groups, as `armo score` does.  seqs[] borrow the workload's ids. */
static int score_range(armo_backend **b, int nb, const bench_workload *w, armo_seq *seqs,
                       armo_seq_group *groups, int g0, int g1, const bench_pack_opts *po, int share,
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
        /* nb > 0: through the data-parallel workers; else directly */
        if (nb > 0 ? armo_score_groups_workers(b, nb, groups + g, ge - g, &so, st, e)
                   : armo_score_groups(b[0], groups + g, ge - g, &so, st, e))
            return -1;
        for (int i = g * per; i < ge * per; i++)
            if (seqs[i].error)
                return armo_err_set(e, "sequence %d: %s", i, seqs[i].error);
    }
    return 0;
}

static int run_workload(armo_backend **bs, int nb, const bench_workload *w,
                        const bench_pack_opts *o, int share, bench_run_result *r, armo_err *e) {
    armo_backend *b = bs[0];
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
        rc = score_range(bs, nb, w, seqs, groups, 0, gw, o, share, &st, e);
    }
    /* per-phase GPU time, where the backend has it (not through the workers) */
    int timing = nb == 0 && o->phase_times && b->set_timing != NULL;
    if (!rc && timing) rc = b->set_timing(b, 1, e);
    int64_t replays0 = 0, captures0 = 0, replays1 = 0, captures1 = 0;
    r->has_graphs = nb == 0 && b->graph_stats != NULL;
    if (r->has_graphs) replays0 = b->graph_stats(b, &captures0);
    if (!rc) {
        memset(&st, 0, sizeof st);
        double t0 = armo_now();
        rc = score_range(bs, nb, w, seqs, groups, 0, w->groups, o, share, &st, e);
        r->seconds = armo_now() - t0;
        if (r->has_graphs) replays1 = b->graph_stats(b, &captures1);
        r->graph_replays = replays1 - replays0;
        r->graph_captures = captures1 - captures0;
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

int bench_run_workload(armo_backend *b, const bench_workload *w, const bench_pack_opts *o,
                       int share, bench_run_result *r, armo_err *e) {
    return run_workload(&b, 0, w, o, share, r, e);
}

int bench_run_workload_workers(armo_backend **b, int nb, const bench_workload *w,
                               const bench_pack_opts *o, int share, bench_run_result *r,
                               armo_err *e) {
    return run_workload(b, nb, w, o, share, r, e);
}

/* ---- the tokenizer on synthetic text of the same lengths ---- */

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

int bench_time_tokenizer(const char *dir, const bench_workload *w, int threads, uint64_t seed,
                         bench_tok_result *r, armo_err *e) {
    memset(r, 0, sizeof *r);
    armo_tokenizer *tok = armo_tokenizer_load(dir, e);
    if (!tok) return -1;
    if (armo_chat_check(tok, e)) {
        armo_tokenizer_free(tok);
        return -1;
    }
    char **pr, **rs;
    int rc = bench_texts(w, seed, &pr, &rs) ? armo_err_set(e, "out of memory") : 0;
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
    bench_texts_free(w->n, pr, rs);
    armo_tokenizer_free(tok);
    return rc;
}

/* ---- model FLOPs ---- */

/* Matmul parameters of the backbone: per layer H·(nh+2nkv)·hd (QKV) +
 * nh·hd·H (o) + 3·H·I (gate, up, down). */
double bench_matmul_params(const armo_config *c) {
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
double bench_seq_flops(const armo_config *c, double P, int n) {
    return 2.0 * P * n + 2.0 * c->num_layers * (double)c->num_heads * c->head_dim * n * (n + 1.0);
}
