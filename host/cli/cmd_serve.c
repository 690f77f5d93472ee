/* cmd_serve.c — `armo serve`: the model loaded once, scored over HTTP for
 * RL training loops (OpenRLHF's remote reward model), vLLM / SGLang-style
 * clients and armo's own records.
 *
 * The command line around host/serve: options (getopt_long), the model, the
 * scoring of records (score_job.h, as `armo score`), the backend, then the
 * batching queue (serve_queue.h) and the HTTP server (serve_http.h).
 * SIGTERM / SIGINT: stop accepting, finish the requests in flight, exit 0;
 * a second signal exits at once. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/cli/cli_args.h"
#include "host/cli/cli_backend.h"
#include "host/cli/commands.h"
#include "host/engine/device_memory.h"
#include "host/scoring/score_job.h"
#include "host/serve/serve_api.h"
#include "host/serve/serve_http.h"
#include "host/serve/serve_queue.h"
#include "host/text/tokenizer.h"
#include "weights/model.h"
#include "weights/weight_scan.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo serve --model DIR [options]\n\n"
        "Serves a reward model over HTTP, loaded once; every client's records go through one\n"
        "continuous-batching queue (batches packed under --max-batch-tokens, waiting at most\n"
        "--max-wait-ms to fill; a request is answered as soon as its last batch is scored).\n\n"
        "Endpoints:\n"
        "  POST /score        armo score's records: one object or a list -> the same result\n"
        "                     objects armo score writes, in the same order\n"
        "  POST /get_reward   OpenRLHF remote reward model: {\"query\": [templated text, ...]}\n"
        "                     -> {\"rewards\": [...], \"scores\": [...], \"extra_logs\": {...}}\n"
        "  POST /classify     vLLM ({\"input\": text | [text], or \"messages\"}) and SGLang\n"
        "                     ({\"text\": text | [text]}) reward-model shapes (also /v1/classify)\n"
        "  GET  /health, /v1/models, /metrics (Prometheus)\n\n"
        "Options:\n"
        "  --model DIR               Hugging Face checkpoint directory (required)\n"
        "  --host ADDR               address to listen on (default 127.0.0.1; any other\n"
        "                            address is warned about: use --api-key there)\n"
        "  --port N                  port (default 8000; 0: any free port, printed)\n"
        "  --device auto|cuda|cpu    backend (default auto)\n"
        "  --max-batch-tokens N      token budget of one packed batch (default 16384 on\n"
        "                            CUDA, 2048 on the CPU)\n"
        "  --max-wait-ms N           longest a batch waits to fill (default 5)\n"
        "  --max-queue N             records the queue holds; beyond: 503 + Retry-After\n"
        "                            (default 4096; also the most records of one request)\n"
        "  --max-body-bytes N        larger request bodies: 413 (default 67108864)\n"
        "  --max-request-tokens N    a request with more tokens to score: 413 (default\n"
        "                            1048576)\n"
        "  --request-timeout S       a request not scored S seconds after it arrived: 504\n"
        "                            (default 120)\n"
        "  --conn-timeout S          idle connections (slow clients) closed after S seconds\n"
        "                            (default 60)\n"
        "  --max-connections N       open connections at most (default 1024)\n"
        "  --http-threads N          HTTP threads, which also parse and tokenize (default:\n"
        "                            the cores, at most 16)\n"
        "  --threads N               CPU-backend threads (default: all cores)\n"
        "  --api-key KEY             require \"Authorization: Bearer KEY\" (all but /health);\n"
        "                            the environment's ARMO_API_KEY is used when not given\n"
        "  --served-model-name NAME  the name /v1/models lists (default: DIR's last part)\n"
        "  --max-length N, --truncate none|left, --special-as-text, --input-ids-only,\n"
        "  --no-share-prefix, --explain K   as for armo score\n"
        "  --quiet                   no start-up lines\n"
        "  -h, --help                this text\n\n"
        "Stopping: SIGTERM or SIGINT stops accepting connections, answers the requests in\n"
        "flight and exits 0; a second signal exits at once.\n"
        "Exit status: 0 stopped by a signal, 2 bad arguments or the model could not be loaded\n"
        "or the address could not be bound.\n");
}

typedef struct {
    const char *model_dir, *device, *host, *api_key, *name;
    long port, max_batch, max_wait_ms, max_queue, max_request_tokens, request_timeout;
    long conn_timeout, max_connections, http_threads, threads;
    long long max_body;
    armo_scoring_opts scoring;
    int quiet, share_prefix;
} serve_args;

enum { O_HOST = 256, O_PORT, O_DEVICE, O_MAXB, O_WAIT, O_QUEUE, O_BODY, O_REQTOK, O_REQTO,
       O_CONNTO, O_MAXCONN, O_HTTPT, O_THREADS, O_KEY, O_NAME, O_MAXLEN, O_TRUNC, O_SPECIAL,
       O_IDSONLY, O_NOSHARE, O_EXPLAIN, O_QUIET, O_MODEL };

static const struct option k_opts[] = {
    {"model", required_argument, 0, O_MODEL}, {"host", required_argument, 0, O_HOST},
    {"port", required_argument, 0, O_PORT}, {"device", required_argument, 0, O_DEVICE},
    {"max-batch-tokens", required_argument, 0, O_MAXB}, {"max-wait-ms", required_argument, 0, O_WAIT},
    {"max-queue", required_argument, 0, O_QUEUE}, {"max-body-bytes", required_argument, 0, O_BODY},
    {"max-request-tokens", required_argument, 0, O_REQTOK},
    {"request-timeout", required_argument, 0, O_REQTO}, {"conn-timeout", required_argument, 0, O_CONNTO},
    {"max-connections", required_argument, 0, O_MAXCONN},
    {"http-threads", required_argument, 0, O_HTTPT}, {"threads", required_argument, 0, O_THREADS},
    {"api-key", required_argument, 0, O_KEY}, {"served-model-name", required_argument, 0, O_NAME},
    {"max-length", required_argument, 0, O_MAXLEN}, {"truncate", required_argument, 0, O_TRUNC},
    {"special-as-text", no_argument, 0, O_SPECIAL}, {"input-ids-only", no_argument, 0, O_IDSONLY},
    {"no-share-prefix", no_argument, 0, O_NOSHARE}, {"explain", required_argument, 0, O_EXPLAIN},
    {"quiet", no_argument, 0, O_QUIET}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
};

/* An integer option into *out; -1 (said on stderr) when out of [lo, hi]. */
static int num(int c, const char *v, long lo, long hi, long *out) {
    const char *name = "?";
    for (const struct option *o = k_opts; o->name; o++)
        if (o->val == c) name = o->name;
    char opt[64];
    snprintf(opt, sizeof opt, "--%s", name);
    return armo_parse_long("serve", opt, v, lo, hi, out);
}

/* Fills a; 0, 1 when --help was printed, -1 on a bad argument. */
static int parse_args(int argc, char **argv, serve_args *a) {
    long v = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", k_opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'h': usage(stdout); return 1;
        case O_MODEL: a->model_dir = optarg; break;
        case O_HOST: a->host = optarg; break;
        case O_DEVICE: a->device = optarg; break;
        case O_KEY: a->api_key = optarg; break;
        case O_NAME: a->name = optarg; break;
        case O_PORT: bad = num(c, optarg, 0, 65535, &a->port); break;
        case O_MAXB: bad = num(c, optarg, 1, INT_MAX, &a->max_batch); break;
        case O_WAIT: bad = num(c, optarg, 0, 60000, &a->max_wait_ms); break;
        case O_QUEUE: bad = num(c, optarg, 1, 1 << 24, &a->max_queue); break;
        case O_BODY: bad = num(c, optarg, 1, LONG_MAX, &v); a->max_body = v; break;
        case O_REQTOK: bad = num(c, optarg, 1, LONG_MAX, &a->max_request_tokens); break;
        case O_REQTO: bad = num(c, optarg, 0, 86400, &a->request_timeout); break;
        case O_CONNTO: bad = num(c, optarg, 0, 86400, &a->conn_timeout); break;
        case O_MAXCONN: bad = num(c, optarg, 1, 1 << 20, &a->max_connections); break;
        case O_HTTPT: bad = num(c, optarg, 1, 256, &a->http_threads); break;
        case O_THREADS: bad = num(c, optarg, 0, 1024, &a->threads); break;
        case O_MAXLEN: bad = num(c, optarg, 1, INT_MAX, &v); a->scoring.max_length = (int)v; break;
        case O_EXPLAIN: bad = num(c, optarg, 0, 64, &v); a->scoring.explain = (int)v; break;
        case O_SPECIAL: a->scoring.tok_flags |= ARMO_TOK_SPECIAL_AS_TEXT; break;
        case O_IDSONLY: a->scoring.input_ids_only = 1; break;
        case O_NOSHARE: a->share_prefix = 0; break;
        case O_QUIET: a->quiet = 1; break;
        case O_TRUNC:
            if (!strcmp(optarg, "none")) a->scoring.truncate = ARMO_TRUNCATE_NONE;
            else if (!strcmp(optarg, "left")) a->scoring.truncate = ARMO_TRUNCATE_LEFT;
            else {
                fprintf(stderr, "armo serve: --truncate expects none or left, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        default: usage(stderr); return -1; /* getopt_long said what */
        }
        if (bad) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "armo serve: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    if (!a->model_dir) {
        fprintf(stderr, "armo serve: --model DIR is required\n\n");
        usage(stderr);
        return -1;
    }
    if (strcmp(a->device, "auto") && strcmp(a->device, "cuda") && strcmp(a->device, "cpu")) {
        fprintf(stderr, "armo serve: --device expects auto, cuda or cpu, got '%s'\n", a->device);
        return -1;
    }
    return 0;
}

/* The model name /v1/models lists: --served-model-name, else the
 * directory's last component. */
static const char *model_name(const serve_args *a, char *buf, size_t len) {
    if (a->name) return a->name;
    snprintf(buf, len, "%s", a->model_dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    char *slash = strrchr(buf, '/');
    return slash && slash[1] ? slash + 1 : buf;
}

static int is_loopback(const char *host) {
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost") ||
           !strncmp(host, "127.", 4);
}

/* Serves until SIGTERM / SIGINT, then drains; the exit status. */
static int serve(const serve_args *a, armo_serve_api *api, armo_serve_queue *q,
                 const armo_backend *b, const sigset_t *stop) {
    armo_server_opts so = {.host = a->host, .port = (int)a->port,
                           .http_threads = (int)a->http_threads,
                           .max_connections = (int)a->max_connections,
                           .conn_timeout_s = (int)a->conn_timeout,
                           .request_timeout_s = (double)a->request_timeout,
                           .max_body_bytes = (size_t)a->max_body, .api_key = a->api_key,
                           .retry_after_s = 1};
    armo_err e;
    armo_server *srv = armo_server_start(&so, api, q, b, &e);
    if (!srv) {
        fprintf(stderr, "armo serve: %s\n", e.msg);
        return 2;
    }
    if (!is_loopback(a->host))
        fprintf(stderr, "armo serve: warning: listening on %s, not only on this machine's "
                        "loopback: anyone who reaches it can use the model%s\n", a->host,
                a->api_key ? "" : " (no --api-key)");
    fprintf(stderr, "armo serve: listening on http://%s%s%s:%d\n", strchr(a->host, ':') ? "[" : "",
            a->host, strchr(a->host, ':') ? "]" : "", armo_server_port(srv));
    int sig = 0, err = sigwait(stop, &sig);
    if (err) fprintf(stderr, "armo serve: sigwait failed (%s): stopping\n", strerror(err));
    /* a second signal ends the process at once */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, stop, NULL);
    if (!a->quiet)
        fprintf(stderr, "armo serve: %s: no new connections; finishing the requests in flight\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    armo_serve_queue_flush(q); /* what waits for a batch to fill goes now */
    int64_t left = armo_server_drain(srv, (double)a->request_timeout + 5.0);
    armo_serve_queue_stop(q); /* what is still queued is scored and answered */
    armo_server_stop(srv);
    if (!a->quiet)
        fprintf(stderr, "armo serve: stopped%s\n", left ? " (some requests were cut off)" : "");
    return 0;
}

/* The model's head and norm weights scanned for NaN / Inf, as armo score
 * does by default; found: refused. */
static int weights_ok(const armo_model *m, const serve_args *a) {
    armo_weight_scan ws;
    armo_err e;
    if (armo_weights_scan(m, ARMO_SCAN_HEAD_NORMS, (int)a->threads, &ws, &e)) {
        fprintf(stderr, "armo serve: scanning the weights: %s\n", e.msg);
        return 0;
    }
    if (!ws.bad_tensors) return 1;
    char msg[ARMO_ERR_LEN];
    armo_weight_scan_message(&ws, msg, sizeof msg);
    fprintf(stderr, "armo serve: %s holds non-finite weights: %s; refused\n", m->dir, msg);
    return 0;
}

int cmd_serve(int argc, char **argv) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    serve_args a = {.device = "auto", .host = "127.0.0.1", .port = 8000, .max_wait_ms = 5,
                    .max_queue = 4096, .max_body = 64LL << 20, .max_request_tokens = 1L << 20,
                    .request_timeout = 120, .conn_timeout = 60, .max_connections = 1024,
                    .http_threads = ncpu > 16 ? 16 : ncpu > 0 ? ncpu : 1,
                    .share_prefix = 1, .scoring = {.explain = 3}};
    int pa = parse_args(argc, argv, &a);
    if (pa) return pa > 0 ? 0 : 2;
    if (!a.api_key && getenv("ARMO_API_KEY") && *getenv("ARMO_API_KEY"))
        a.api_key = getenv("ARMO_API_KEY");

    int rc = 2, model_open = 0, scoring_open = 0;
    armo_err e;
    armo_model model;
    armo_scoring sc;
    armo_backend *backend = NULL;
    if (armo_model_open(a.model_dir, &model, &e)) {
        fprintf(stderr, "armo serve: %s\n", e.msg);
        return 2;
    }
    model_open = 1;
    if (!weights_ok(&model, &a)) goto done;
    if (armo_scoring_init(&sc, &model, &a.scoring, &e)) {
        fprintf(stderr, "armo serve: %s\n", e.msg);
        goto done;
    }
    scoring_open = 1;
    armo_backend_opts bo;
    int64_t budget = 0;
    armo_cli_backend_args ba = {.device = a.device, .max_batch = a.max_batch, .threads = a.threads,
                                .quiet = a.quiet, .share_prefix = a.share_prefix};
    backend = armo_cli_open_backend(&model, &ba, sc.max_length, &bo, &budget, &e);
    if (!backend) {
        fprintf(stderr, "armo serve: %s\n", e.msg);
        goto done;
    }
    if (!a.quiet)
        fprintf(stderr, "armo serve: %s on %s, %s, batches of up to %lld tokens, waiting up to "
                        "%ld ms to fill\n", a.model_dir, backend->device, model.cfg.arch_name,
                (long long)budget, a.max_wait_ms);
    /* SIGTERM / SIGINT are taken by sigwait in this thread: blocked in
     * every thread started from here on; SIGPIPE ignored (a client gone) */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    int err = pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (err || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "armo serve: cannot set up the signals: %s\n", strerror(err ? err : errno));
        goto done;
    }
    armo_serve_queue q;
    armo_serve_queue_opts qo = {.max_batch_tokens = budget, .max_batch_seqs = bo.max_seqs,
                                .max_wait_ms = (int)a.max_wait_ms, .max_queue = (int)a.max_queue,
                                .share_prefix = a.share_prefix, .min_shared_prefix = 8};
    if (armo_serve_queue_start(&q, backend, &qo, &e)) {
        fprintf(stderr, "armo serve: %s\n", e.msg);
        goto done;
    }
    char nbuf[512];
    armo_serve_api api = {.scoring = &sc, .ops = armo_scoring_job_ops(&sc),
                          .model_name = model_name(&a, nbuf, sizeof nbuf),
                          .max_request_tokens = a.max_request_tokens,
                          .max_request_records = (int)a.max_queue};
    err = pthread_mutex_init(&api.write_mu, NULL);
    if (err) {
        fprintf(stderr, "armo serve: cannot create a mutex: %s\n", strerror(err));
        armo_serve_queue_stop(&q);
        goto done;
    }
    rc = serve(&a, &api, &q, backend, &stop);
    armo_serve_queue_stop(&q); /* a no-op after serve's drain */
    pthread_mutex_destroy(&api.write_mu);
done:
    armo_backend_close(backend);
    if (scoring_open) armo_scoring_free(&sc);
    if (model_open) armo_model_close(&model);
    return rc;
}
