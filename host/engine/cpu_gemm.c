/* cpu_gemm.c — the CPU backend's matrix products through cblas_sgemm in
 * fixed call shapes (see cpu_gemm.h for why the shapes are fixed).
 *
 * Tasks are numbered op by op, then weight block by weight block, then token
 * chunk by token chunk, so a thread that takes consecutive tasks reuses the
 * same block of W while it is still in its cache.  Threads take the next task
 * number from an atomic counter: which thread computes a task never matters,
 * since every task computes the same call whoever runs it.  The last,
 * partial chunk of rows is copied once per call into a zero-padded
 * CPU_GEMM_ROWS-row block, and each thread writes that chunk's outputs into a
 * scratch block of its own before copying the real rows out. */
#include "host/engine/cpu_gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEMM_MAX_THREADS 256
#define GEMM_MAX_OPS 8

typedef struct {
    const float *x;
    int in;
    const cpu_gemm_op *ops;
    int nops;
    int nchunks;                 /* chunks of CPU_GEMM_ROWS rows, the last maybe partial */
    int tail_rows;               /* rows of the last chunk when partial, else 0 */
    const float *xtail;          /* [CPU_GEMM_ROWS, in]: the partial chunk, zero-padded */
    int first_task[GEMM_MAX_OPS + 1];
    atomic_int next;
} gemm_ctx;

typedef struct {
    gemm_ctx *ctx;
    float *ytail;                /* [CPU_GEMM_ROWS, CPU_GEMM_COLS] */
} gemm_worker_arg;

static void run_task(const gemm_ctx *g, int task, float *ytail) {
    int op = 0;
    while (task >= g->first_task[op + 1]) op++;
    const cpu_gemm_op *o = &g->ops[op];
    const int local = task - g->first_task[op];
    const int block = local / g->nchunks, chunk = local % g->nchunks;
    const int col0 = block * CPU_GEMM_COLS;
    const int cols = o->out - col0 < CPU_GEMM_COLS ? o->out - col0 : CPU_GEMM_COLS;
    const float *w = o->w + (size_t)col0 * g->in;
    const size_t row0 = (size_t)chunk * CPU_GEMM_ROWS;
    if (g->tail_rows && chunk == g->nchunks - 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, CPU_GEMM_ROWS, cols, g->in, 1.0f,
                    g->xtail, g->in, w, g->in, 0.0f, ytail, cols);
        for (int r = 0; r < g->tail_rows; r++)
            memcpy(o->y + (row0 + r) * o->out + col0, ytail + (size_t)r * cols,
                   sizeof(float) * cols);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, CPU_GEMM_ROWS, cols, g->in, 1.0f,
                g->x + row0 * g->in, g->in, w, g->in, 0.0f, o->y + row0 * o->out + col0, o->out);
}

static void *gemm_worker(void *arg) {
    gemm_worker_arg *a = arg;
    gemm_ctx *g = a->ctx;
    const int ntasks = g->first_task[g->nops];
    for (;;) {
        int t = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
        if (t >= ntasks) break;
        run_task(g, t, a->ytail);
    }
    return NULL;
}

void cpu_gemm_blas_init(void) { openblas_set_num_threads(1); }

const char *cpu_gemm_blas_name(void) { return openblas_get_config(); }

int cpu_gemm(const float *x, int n, int in, const cpu_gemm_op *ops, int nops, int nthreads,
             armo_err *e) {
    if (n <= 0 || nops <= 0) return 0;
    if (nops > GEMM_MAX_OPS || in <= 0)
        return armo_err_set(e, "cpu_gemm: %d ops of inner size %d (at most %d ops)", nops, in,
                            GEMM_MAX_OPS);
    gemm_ctx g = {.x = x, .in = in, .ops = ops, .nops = nops};
    g.nchunks = (n + CPU_GEMM_ROWS - 1) / CPU_GEMM_ROWS;
    g.tail_rows = n % CPU_GEMM_ROWS;
    g.first_task[0] = 0;
    for (int i = 0; i < nops; i++) {
        const int nblocks = (ops[i].out + CPU_GEMM_COLS - 1) / CPU_GEMM_COLS;
        g.first_task[i + 1] = g.first_task[i] + nblocks * g.nchunks;
    }
    atomic_init(&g.next, 0);
    const int ntasks = g.first_task[nops];
    if (nthreads > GEMM_MAX_THREADS) nthreads = GEMM_MAX_THREADS;
    if (nthreads > ntasks) nthreads = ntasks;
    if (nthreads < 1) nthreads = 1;

    float *xtail = NULL, *ytail = NULL;
    if (g.tail_rows) {
        const size_t full = (size_t)(n - g.tail_rows);
        xtail = calloc((size_t)CPU_GEMM_ROWS * in, sizeof(float));
        ytail = malloc(sizeof(float) * CPU_GEMM_ROWS * CPU_GEMM_COLS * (size_t)nthreads);
        if (!xtail || !ytail) {
            free(xtail);
            free(ytail);
            return armo_err_set(e, "cpu_gemm: out of memory for the padded last %d rows "
                                   "(inner size %d, %d threads)",
                                g.tail_rows, in, nthreads);
        }
        memcpy(xtail, x + full * in, sizeof(float) * g.tail_rows * (size_t)in);
        g.xtail = xtail;
    }
    gemm_worker_arg args[GEMM_MAX_THREADS];
    pthread_t tids[GEMM_MAX_THREADS];
    int started[GEMM_MAX_THREADS] = {0};
    for (int t = 0; t < nthreads; t++)
        args[t] = (gemm_worker_arg){&g, ytail ? ytail + (size_t)t * CPU_GEMM_ROWS * CPU_GEMM_COLS
                                              : NULL};
    for (int t = 1; t < nthreads; t++) {
        int rc = pthread_create(&tids[t], NULL, gemm_worker, &args[t]);
        started[t] = rc == 0;
        if (rc != 0) /* the other threads take its tasks from the counter */
            fprintf(stderr, "%s:%d: pthread_create failed (%s); fewer GEMM threads\n", __FILE__,
                    __LINE__, strerror(rc));
    }
    gemm_worker(&args[0]);
    for (int t = 1; t < nthreads; t++) {
        if (!started[t]) continue;
        int rc = pthread_join(tids[t], NULL);
        if (rc != 0)
            fprintf(stderr, "%s:%d: pthread_join failed (%s)\n", __FILE__, __LINE__, strerror(rc));
    }
    free(ytail);
    free(xtail);
    return 0;
}
