/* bench_dp.c — armo bench's data-parallel rows (see bench_dp.h).
 *
 * On the CPU: the overhead of armo score's worker pool (scheduler, queue,
 * ordering) as the ratio of a one-worker pool run to a direct run of the
 * same workload, and 2 workers (the threads split between them) against 1.
 * On CUDA: the workload on 1, 2, 4, ... devices (every visible one last),
 * each against N x the one-device throughput, then TP 2 and 4 (where the
 * devices and the KV heads allow) against one device. */
#include "host/cli/bench_dp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/backend_open.h"

static double tok_s(const bench_run_result *r) {
    return (double)r->tokens_scored / (r->seconds > 0 ? r->seconds : 1e-9);
}

static json_t *row(const char *what, int workers, const bench_run_result *r, double ratio) {
    printf("    %-34s %11.1f tokens/s  %6.3fx\n", what, tok_s(r), ratio);
    return json_pack("{s:s, s:i, s:f, s:f, s:f}", "what", what, "workers", workers, "seconds",
                     r->seconds, "tokens_per_s", tok_s(r), "ratio", ratio);
}

/* Workload w through n backends: [b0, the ones opened here on `devices`
 * (CUDA) or n fresh CPU replicas sharing `threads` (b0 unused)]. */
static int run_n(const armo_model *m, const char *kind, armo_backend *b0, int n, int threads,
                 const bench_workload *w, const bench_pack_opts *po, bench_run_result *r,
                 armo_err *e) {
    const int cuda = !strcmp(kind, "cuda");
    armo_backend_opts bo = {.threads = threads, .max_batch_tokens = po->max_batch_tokens,
                            .max_seqs = po->max_seqs, .quiet = 1};
    armo_backend **opened = NULL, **all = malloc((size_t)n * sizeof *all);
    int nopened = 0, rc = -1;
    if (!all) return armo_err_set(e, "out of memory");
    if (n == 1) {
        all[0] = b0;
        rc = bench_run_workload_workers(all, 1, w, po, 0, r, e);
    } else if (cuda) { /* device 0 is b0's; devices 1 .. n-1 opened here */
        char list[1024] = "";
        for (int d = 1; d < n; d++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", d > 1 ? "," : "", d);
        if (armo_backend_open_workers(m, kind, list, 0, &bo, &opened, &nopened, e) == 0) {
            all[0] = b0;
            memcpy(all + 1, opened, (size_t)nopened * sizeof *all);
            rc = bench_run_workload_workers(all, n, w, po, 0, r, e);
        }
    } else if (armo_backend_open_workers(m, kind, NULL, n, &bo, &opened, &nopened, e) == 0) {
        rc = bench_run_workload_workers(opened, nopened, w, po, 0, r, e);
    }
    armo_backend_close_workers(opened, nopened);
    free(all);
    return rc;
}

json_t *bench_dp_report(const armo_model *m, const char *kind, armo_backend *b0, int threads,
                        int visible, const bench_workload *w, const bench_pack_opts *po,
                        int *failed) {
    const int cuda = !strcmp(kind, "cuda");
    armo_err e;
    bench_run_result direct, one, more;
    json_t *rows = json_array();
    printf("\ndata parallel (workload %c through armo score's worker pool, unshared):\n",
           w->name);
    if (bench_run_workload(b0, w, po, 0, &direct, &e) ||
        run_n(m, kind, b0, 1, threads, w, po, &one, &e)) {
        fprintf(stderr, "armo bench: data parallel: %s\n", e.msg);
        *failed = 1;
        return rows;
    }
    json_array_append_new(rows, row("direct (no pool)", 0, &direct, 1.0));
    json_array_append_new(rows, row("pool, 1 worker (vs direct)", 1, &one,
                                    tok_s(&one) / tok_s(&direct)));
    if (!cuda) {
        char what[64];
        snprintf(what, sizeof what, "pool, 2 workers x %d thread%s (vs 1)",
                 threads / 2 > 0 ? threads / 2 : 1, threads / 2 > 1 ? "s" : "");
        if (run_n(m, kind, b0, 2, threads, w, po, &more, &e)) {
            fprintf(stderr, "armo bench: data parallel, 2 workers: %s\n", e.msg);
            *failed = 1;
        } else {
            json_array_append_new(rows, row(what, 2, &more, tok_s(&more) / tok_s(&one)));
        }
        printf("    (on the CPU, workers share the cores: the ratio shows the pool's overhead and\n"
               "    how DP splits cores against one worker's threaded matmuls; device scaling\n"
               "    rows need GPUs)\n");
        return rows;
    }
    if (visible < 2) printf("    one visible GPU: no device-scaling rows\n");
    int counts[32], nc = 0; /* 2, 4, 8, ... below visible, then visible */
    for (int n = 2; n < visible && nc < 31; n *= 2) counts[nc++] = n;
    if (visible >= 2) counts[nc++] = visible;
    for (int i = 0; i < nc; i++) {
        const int n = counts[i];
        char what[64];
        snprintf(what, sizeof what, "%d devices (vs %d x 1 device)", n, n);
        if (run_n(m, kind, b0, n, threads, w, po, &more, &e)) {
            fprintf(stderr, "armo bench: data parallel, %d devices: %s\n", n, e.msg);
            *failed = 1;
            break;
        }
        json_array_append_new(rows, row(what, n, &more, tok_s(&more) / (n * tok_s(&one))));
    }
    /* tensor parallel: TP 2, 4 on devices 0.. against one device (TP 1) */
    for (int tp = 2; tp <= 4 && tp <= visible; tp *= 2) {
        if (m->cfg.num_kv_heads % tp) break;
        armo_backend_opts bo = {.threads = threads, .max_batch_tokens = po->max_batch_tokens,
                                .max_seqs = po->max_seqs, .quiet = 1, .tp = tp};
        armo_backend *g = armo_backend_open(m, kind, &bo, &e);
        char what[64];
        snprintf(what, sizeof what, "TP %d on devices 0..%d (vs TP 1)", tp, tp - 1);
        if (!g || bench_run_workload(g, w, po, 0, &more, &e)) {
            fprintf(stderr, "armo bench: TP %d: %s\n", tp, e.msg);
            armo_backend_close(g);
            *failed = 1;
            break;
        }
        json_array_append_new(rows, row(what, 1, &more, tok_s(&more) / tok_s(&direct)));
        armo_backend_close(g);
    }
    return rows;
}
