/* armo_api.c — the stable C API of libarmo (see armo_api.h): a model and
 * its backend opened once, records scored in memory through the same code
 * as `armo score` (score_job.h's callbacks, the scheduler's
 * armo_score_jobs), results returned as JSON text. */
#include "host/api/armo_api.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/api/record_split.h"
#include "host/engine/backend_open.h"
#include "host/engine/device_memory.h"
#include "host/engine/scheduler.h"
#include "host/scoring/score_job.h"
#include "host/scoring/score_output.h"
#include "weights/model.h"
#include "weights/weight_scan.h"
#ifdef ARMO_HAVE_CUDA
#include "host/cuda/cuda_backend.h"
#endif

struct armo_handle {
    armo_model model;
    armo_scoring scoring;
    armo_backend *backend;
    armo_backend_opts bo;
    int64_t budget;              /* token budget of one packed batch */
    int threads;
    pthread_mutex_t lock;        /* one scoring call at a time */
};

static _Thread_local char g_last_error[ARMO_ERR_LEN];

static void set_error(const char *msg) { snprintf(g_last_error, sizeof g_last_error, "%s", msg); }

const char *armo_api_last_error(void) { return g_last_error; }

int armo_api_version(void) { return ARMO_API_VERSION; }

void armo_api_free(char *text) { free(text); }

/* CUDA, when libarmo was built with it: registered once, as main.c does. */
#ifdef ARMO_HAVE_CUDA
static void register_cuda(void) { armo_backend_register_cuda(&armo_cuda_accel); }
#endif

static void register_backends(void) {
#ifdef ARMO_HAVE_CUDA
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_cuda);
#endif
}

/* NaN / Inf in the norm weights or the head (what `armo score` scans by
 * default): refused, as `armo score` refuses it. */
static int check_weights(const armo_model *m, int threads, armo_err *e) {
    armo_weight_scan ws;
    if (armo_weights_scan(m, ARMO_SCAN_HEAD_NORMS, threads, &ws, e)) return -1;
    if (!ws.bad_tensors) return 0;
    char msg[ARMO_ERR_LEN - 200];
    armo_weight_scan_message(&ws, msg, sizeof msg);
    return armo_err_set(e, "%s holds non-finite weights: %s; refused (every score they reach "
                           "would be NaN/Inf)", m->dir, msg);
}

/* The backend, with `armo score`'s budget policy: the default budget per
 * device, on CUDA checked against the free memory first (lowered to what
 * fits when it is the default, refused when it was asked for). */
static int open_backend(armo_handle *h, const char *device, long long max_batch, armo_err *e) {
    const char *kind = armo_backend_resolve(device, e);
    if (!kind) return -1;
    const int cuda = !strcmp(kind, "cuda");
    h->budget = max_batch > 0 ? max_batch
                : cuda        ? ARMO_DEFAULT_BATCH_TOKENS_CUDA
                              : ARMO_DEFAULT_BATCH_TOKENS_CPU;
    if (cuda) {
        size_t free_b = 0, total_b = 0;
        if (armo_backend_mem_info("cuda", &free_b, &total_b, e)) return -1;
        armo_fit f;
        armo_dev_fit(&h->model.cfg, h->budget, ARMO_DEFAULT_MAX_SEQS, 1, free_b, total_b, &f);
        if (f.kind != ARMO_FIT_OK) {
            char msg[ARMO_ERR_LEN - 128];
            armo_dev_fit_message(&f, msg, sizeof msg);
            if (f.kind == ARMO_FIT_NONE)
                return armo_err_set(e, "the model does not fit on the GPU: %s", msg);
            if (max_batch > 0)
                return armo_err_set(e, "max_batch_tokens %lld does not fit on the GPU: %s",
                                    max_batch, msg);
            h->budget = f.fit_tokens;
        }
    }
    const int max_length = h->scoring.max_length;
    h->bo = (armo_backend_opts){.threads = h->threads, .quiet = 1,
                                .max_seqs = ARMO_DEFAULT_MAX_SEQS};
    h->bo.max_batch_tokens = h->budget > max_length ? h->budget : max_length;
    h->backend = armo_backend_open(&h->model, kind, &h->bo, e);
    return h->backend ? 0 : -1;
}

armo_handle *armo_api_open(const char *model_dir, const char *device, int threads,
                           long long max_batch_tokens) {
    armo_err e = {{0}};
    g_last_error[0] = 0;
    if (!model_dir) {
        set_error("armo_api_open: no model directory given");
        return NULL;
    }
    if (!device) device = "auto";
    if (strcmp(device, "auto") && strcmp(device, "cuda") && strcmp(device, "cpu")) {
        snprintf(e.msg, sizeof e.msg, "device must be auto, cuda or cpu, not '%.100s'", device);
        set_error(e.msg);
        return NULL;
    }
    register_backends();
    armo_handle *h = calloc(1, sizeof *h);
    if (!h) {
        set_error("out of memory");
        return NULL;
    }
    h->threads = threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int model_open = 0, scoring_open = 0;
    armo_scoring_opts so = {.explain = 3};
    if (armo_model_open(model_dir, &h->model, &e)) goto fail;
    model_open = 1;
    if (h->model.cfg.arch == ARMO_ARCH_BACKBONE) {
        armo_err_set(&e, "%s is a bare backbone (%s) with no reward head: nothing to score",
                     model_dir, h->model.cfg.arch_name);
        goto fail;
    }
    if (check_weights(&h->model, h->threads, &e)) goto fail;
    if (armo_scoring_init(&h->scoring, &h->model, &so, &e)) goto fail;
    scoring_open = 1;
    if (open_backend(h, device, max_batch_tokens, &e)) goto fail;
    if (pthread_mutex_init(&h->lock, NULL)) {
        armo_err_set(&e, "cannot create a mutex");
        goto fail;
    }
    return h;
fail:
    set_error(e.msg);
    armo_backend_close(h->backend);
    if (scoring_open) armo_scoring_free(&h->scoring);
    if (model_open) armo_model_close(&h->model);
    free(h);
    return NULL;
}

void armo_api_close(armo_handle *h) {
    if (!h) return;
    armo_backend_close(h->backend);
    armo_scoring_free(&h->scoring);
    armo_model_close(&h->model);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* ---- scoring ------------------------------------------------------------------ */

/* The results as they come (in order): "[" line "," line ... "]", each
 * line without its '\n'. */
typedef struct {
    FILE *f;
    int64_t written;
} results_text;

static int emit_result(void *ctx, const char *line, size_t len, int64_t line_no, armo_err *e) {
    results_text *r = ctx;
    if (len && line[len - 1] == '\n') len--;
    if ((r->written && fputc(',', r->f) == EOF) || fwrite(line, 1, len, r->f) != len)
        return armo_err_set(e, "out of memory keeping the result of record %lld",
                            (long long)line_no);
    r->written++;
    return 0;
}

/* Records scored together (`armo score`'s default --window): bounds the
 * memory of a call with many records. */
#define API_WINDOW 2048

/* jobs[0..n) for the records json[spans[k]]: their text copied, numbered
 * from first + 1.  Returns 0, -1 when memory runs out (nothing kept). */
static int fill_jobs(armo_job *jobs, const char *json, const armo_span *spans, size_t n,
                     size_t first) {
    memset(jobs, 0, n * sizeof *jobs);
    for (size_t k = 0; k < n; k++) {
        jobs[k].line = malloc(spans[k].len + 1);
        if (!jobs[k].line) {
            for (size_t q = 0; q < k; q++) free(jobs[q].line);
            return -1;
        }
        memcpy(jobs[k].line, json + spans[k].off, spans[k].len);
        jobs[k].line[spans[k].len] = 0;
        jobs[k].line_len = spans[k].len;
        jobs[k].line_no = (int64_t)(first + k) + 1;
    }
    return 0;
}

/* The records json[spans[0..n)] scored window by window, their results to r. */
static int score_spans(armo_handle *h, const char *json, const armo_span *spans, size_t n,
                       results_text *r, armo_err *e) {
    size_t cap = n < API_WINDOW ? n : API_WINDOW;
    armo_job *jobs = malloc((cap ? cap : 1) * sizeof *jobs);
    if (!jobs) return armo_err_set(e, "out of memory");
    armo_job_ops ops = armo_scoring_job_ops(&h->scoring);
    armo_sched_opts so = {.max_batch_tokens = h->budget, .max_batch_seqs = h->bo.max_seqs,
                          .threads = h->threads, .quiet = 1, .share_prefix = 1};
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < n; at += cap) {
        size_t k = n - at < cap ? n - at : cap;
        if (fill_jobs(jobs, json, spans + at, k, at)) {
            rc = armo_err_set(e, "out of memory");
            break;
        }
        armo_sched_stats st; /* the jobs are cleared by armo_score_jobs */
        rc = armo_score_jobs(jobs, (int)k, h->backend, &ops, &so, emit_result, r, &st, e);
    }
    free(jobs);
    return rc;
}

/* Scores the records of json (h locked); the results text or NULL (e). */
static char *score_locked(armo_handle *h, const char *json, size_t len, armo_err *e) {
    armo_span *spans = NULL;
    size_t n = 0;
    int is_array = 0;
    if (armo_split_records(json, len, &spans, &n, &is_array, e)) return NULL;
    char *buf = NULL;
    size_t blen = 0;
    results_text r = {.f = open_memstream(&buf, &blen)};
    if (!r.f) {
        free(spans);
        armo_err_set(e, "out of memory");
        return NULL;
    }
    int rc = is_array && fputc('[', r.f) == EOF ? armo_err_set(e, "out of memory") : 0;
    if (rc == 0) rc = score_spans(h, json, spans, n, &r, e);
    free(spans);
    if (rc == 0 && is_array && fputc(']', r.f) == EOF) rc = armo_err_set(e, "out of memory");
    if (fclose(r.f) != 0 && rc == 0) rc = armo_err_set(e, "out of memory");
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *armo_api_score(armo_handle *h, const char *json, size_t len) {
    g_last_error[0] = 0;
    if (!h || !json) {
        set_error("armo_api_score: no handle or no records given");
        return NULL;
    }
    armo_err e = {{0}};
    pthread_mutex_lock(&h->lock);
    char *out = score_locked(h, json, len, &e);
    pthread_mutex_unlock(&h->lock);
    if (!out) set_error(e.msg);
    return out;
}

/* ---- what was opened ------------------------------------------------------------ */

char *armo_api_info(armo_handle *h) {
    g_last_error[0] = 0;
    if (!h) {
        set_error("armo_api_info: no handle given");
        return NULL;
    }
    const armo_config *cfg = &h->model.cfg;
    json_t *names = json_array();
    const int k = cfg->arch == ARMO_ARCH_ARMORM ? cfg->num_objectives : 0;
    for (int i = 0; names && i < k; i++) {
        char buf[32];
        json_array_append_new(names, json_string(armo_objective_label(cfg, i, k, buf, sizeof buf)));
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o*, s:i, s:I, s:i, s:i}", "model", h->model.dir,
                          "arch", cfg->arch_name, "device", h->backend->name, "device_name",
                          h->backend->device, "objectives", names, "num_labels", cfg->num_labels,
                          "max_batch_tokens", (json_int_t)h->budget, "max_length",
                          h->scoring.max_length, "threads", h->threads);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) set_error("out of memory");
    return text;
}
