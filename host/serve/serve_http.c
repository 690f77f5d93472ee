/* serve_http.c — routes, limits, suspend / resume and draining on
 * libmicrohttpd (see serve_http.h). */
#include "host/serve/serve_http.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/progress.h"

struct armo_server {
    armo_server_opts o;
    armo_serve_api *api;
    armo_serve_queue *q;
    const armo_backend *backend;
    armo_serve_metrics metrics;
    struct MHD_Daemon *d;
    int port;
    atomic_int draining;
    atomic_llong in_flight;      /* requests received and not yet completed */
    atomic_llong queued;         /* of those, the ones queued or being scored */
};

enum { ST_READING = 0, ST_QUEUED, ST_DONE, ST_FULL };

typedef struct {
    armo_server *srv;
    struct MHD_Connection *conn;
    int route;                   /* ARMO_M_* */
    int reject;                  /* a status decided before the body was read (0: none) */
    char reject_msg[256];
    char *body;
    size_t len, cap;
    armo_api_call call;
    int has_call;
    atomic_int state;
    double t0;
} conn_ctx;

/* ---- answering ----------------------------------------------------------------- */

/* Queues the response (taking body, malloc'ed) and counts it. */
static enum MHD_Result respond(conn_ctx *x, int status, char *body, const char *type) {
    armo_server *s = x->srv;
    if (!body) {
        status = 500;
        body = strdup("{\"error\":\"out of memory\"}");
    }
    size_t n = body ? strlen(body) : 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                           : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    char ra[16];
    snprintf(ra, sizeof ra, "%d", s->o.retry_after_s);
    int ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES;
    if (status == 503) ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra) == MHD_YES;
    if (status == 401)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer") == MHD_YES;
    if (atomic_load(&s->draining))
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    /* a header that cannot be added (out of memory): the connection is closed */
    enum MHD_Result rc = ok ? MHD_queue_response(x->conn, (unsigned)status, r) : MHD_NO;
    MHD_destroy_response(r);
    armo_serve_metrics_request(&s->metrics, x->route, status, armo_now() - x->t0);
    return rc;
}

static enum MHD_Result respond_error(conn_ctx *x, int status, const char *msg) {
    return respond(x, status, armo_api_error_body(msg), "application/json");
}

static char *models_body(armo_server *s) {
    const armo_scoring *sc = s->api->scoring;
    json_t *o = json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:i, s:s}]}", "object", "list", "data",
                          "id", s->api->model_name, "object", "model", "created",
                          (json_int_t)time(NULL), "owned_by", "armo", "max_model_len",
                          sc->max_length, "architecture", sc->model->cfg.arch_name);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

static enum MHD_Result answer_get(conn_ctx *x) {
    armo_server *s = x->srv;
    if (x->route == ARMO_M_HEALTH)
        return atomic_load(&s->draining)
                   ? respond_error(x, 503, "draining: the server is shutting down")
                   : respond(x, 200, strdup("{\"status\":\"ok\"}"), "application/json");
    if (x->route == ARMO_M_MODELS) return respond(x, 200, models_body(s), "application/json");
    return respond(x, 200,
                   armo_serve_metrics_text(&s->metrics, s->q, s->backend,
                                           atomic_load(&s->in_flight)),
                   "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- the scoring routes: prepare, queue (suspended), answer when resumed ------- */

static void on_done(armo_serve_req *r) { /* the engine thread (or submit's) */
    conn_ctx *x = r->user;
    atomic_store(&x->state, ST_DONE);
    atomic_fetch_sub(&x->srv->queued, 1);
    MHD_resume_connection(x->conn);
}

static enum MHD_Result start_scoring(conn_ctx *x) {
    armo_server *s = x->srv;
    armo_endpoint ep = x->route == ARMO_M_SCORE        ? ARMO_EP_SCORE
                       : x->route == ARMO_M_GET_REWARD ? ARMO_EP_GET_REWARD
                                                       : ARMO_EP_CLASSIFY;
    char *resp = NULL;
    int st = armo_api_prepare(s->api, ep, x->body ? x->body : "", x->len, &x->call, &resp);
    free(x->body);
    x->body = NULL;
    if (st) return respond(x, st, resp, "application/json");
    x->has_call = 1;
    armo_serve_req *r = &x->call.req;
    r->t_arrival = armo_now();
    r->deadline = s->o.request_timeout_s > 0 ? x->t0 + s->o.request_timeout_s : 0;
    r->done = on_done;
    r->user = x;
    /* suspended before it is queued, so that the engine's resume always
     * finds it suspended */
    atomic_store(&x->state, ST_QUEUED);
    atomic_fetch_add(&s->queued, 1);
    MHD_suspend_connection(x->conn);
    if (armo_serve_queue_submit(s->q, r)) {
        atomic_store(&x->state, ST_FULL);
        atomic_fetch_sub(&s->queued, 1);
        MHD_resume_connection(x->conn);
    }
    return MHD_YES;
}

static enum MHD_Result finish_scoring(conn_ctx *x) {
    armo_server *s = x->srv;
    if (atomic_load(&x->state) == ST_FULL) {
        armo_api_call_free(s->api, &x->call);
        x->has_call = 0;
        return respond_error(x, 503, "the queue is full: retry later");
    }
    char *resp = NULL;
    int st = armo_api_respond(s->api, &x->call, &resp);
    armo_api_call_free(s->api, &x->call);
    x->has_call = 0;
    return respond(x, st, resp, "application/json");
}

/* ---- routing and limits, on the request's first call --------------------------- */

static int route_of(const char *url, const char *method, int *post) {
    static const struct { const char *path; int route, post; } k[] = {
        {"/score", ARMO_M_SCORE, 1},         {"/get_reward", ARMO_M_GET_REWARD, 1},
        {"/classify", ARMO_M_CLASSIFY, 1},   {"/v1/classify", ARMO_M_CLASSIFY, 1},
        {"/health", ARMO_M_HEALTH, 0},       {"/v1/models", ARMO_M_MODELS, 0},
        {"/metrics", ARMO_M_METRICS, 0},
    };
    (void)method;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(url, k[i].path)) {
            *post = k[i].post;
            return k[i].route;
        }
    return -1;
}

/* Constant-time comparison of the presented key with the server's. */
static int key_ok(const char *given, const char *want) {
    size_t n = strlen(want), m = given ? strlen(given) : 0;
    unsigned char d = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) d |= (unsigned char)(want[i] ^ (i < m ? given[i] : 0));
    return d == 0;
}

static void first_call(conn_ctx *x, const char *url, const char *method) {
    armo_server *s = x->srv;
    int post = 0, route = route_of(url, method, &post);
    x->route = route < 0 ? ARMO_M_OTHER : route;
    if (route < 0) {
        x->reject = 404;
        snprintf(x->reject_msg, sizeof x->reject_msg, "no such route: %.100s (POST /score, "
                 "/get_reward, /classify; GET /health, /v1/models, /metrics)", url);
        return;
    }
    if (strcmp(method, post ? "POST" : "GET")) {
        x->reject = 405;
        snprintf(x->reject_msg, sizeof x->reject_msg, "%.60s takes %s, not %.20s", url,
                 post ? "POST" : "GET", method);
        return;
    }
    if (s->o.api_key && route != ARMO_M_HEALTH) {
        const char *auth = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth || strncmp(auth, "Bearer ", 7) || !key_ok(auth + 7, s->o.api_key)) {
            x->reject = 401;
            snprintf(x->reject_msg, sizeof x->reject_msg, "%s: send \"Authorization: Bearer "
                     "<key>\" with the server's --api-key", auth ? "wrong API key" : "no API key");
            return;
        }
    }
    if (atomic_load(&s->draining) && post) {
        x->reject = 503;
        snprintf(x->reject_msg, sizeof x->reject_msg, "draining: the server is shutting down");
        return;
    }
    const char *cl = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->o.max_body_bytes) {
        x->reject = 413;
        snprintf(x->reject_msg, sizeof x->reject_msg, "the body has %.20s bytes, more than "
                 "--max-body-bytes %zu", cl, s->o.max_body_bytes);
    }
}

/* Appends upload data to the body, or marks it too large (and drops it). */
static void take_upload(conn_ctx *x, const char *data, size_t n) {
    if (x->reject) return;
    size_t max = x->srv->o.max_body_bytes;
    if (x->len + n > max) {
        x->reject = 413;
        snprintf(x->reject_msg, sizeof x->reject_msg, "the body is larger than --max-body-bytes "
                 "%zu", max);
        free(x->body);
        x->body = NULL;
        x->len = x->cap = 0;
        return;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1) cap *= 2;
        char *b = realloc(x->body, cap);
        if (!b) {
            x->reject = 500;
            snprintf(x->reject_msg, sizeof x->reject_msg, "out of memory reading the body");
            return;
        }
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    x->body[x->len] = 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
    (void)version;
    armo_server *s = cls;
    conn_ctx *x = *con_cls;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x) return MHD_NO;
        x->srv = s;
        x->conn = conn;
        x->t0 = armo_now();
        atomic_init(&x->state, ST_READING);
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = x;
        first_call(x, url, method);
        /* refused before its body: answered at once (the connection then closes) */
        if (x->reject) return respond_error(x, x->reject, x->reject_msg);
        return MHD_YES;
    }
    if (*upload_size) {
        take_upload(x, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    int st = atomic_load(&x->state);
    if (st == ST_DONE || st == ST_FULL) return finish_scoring(x);
    if (st == ST_QUEUED) return MHD_YES; /* resumed spuriously: still waiting */
    if (x->reject) return respond_error(x, x->reject, x->reject_msg);
    if (x->route == ARMO_M_HEALTH || x->route == ARMO_M_MODELS || x->route == ARMO_M_METRICS)
        return answer_get(x);
    return start_scoring(x);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    armo_server *s = cls;
    conn_ctx *x = *con_cls;
    if (!x) return;
    if (x->has_call) armo_api_call_free(s->api, &x->call);
    free(x->body);
    free(x);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    fprintf(stderr, "armo serve: libmicrohttpd: %s\n", msg);
}

/* ---- start and stop ---------------------------------------------------------------- */

armo_server *armo_server_start(const armo_server_opts *o, armo_serve_api *api,
                               armo_serve_queue *q, const armo_backend *b, armo_err *e) {
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gr = getaddrinfo(o->host, port, &hints, &ai);
    if (gr) {
        armo_err_set(e, "cannot resolve --host %s: %s", o->host, gai_strerror(gr));
        return NULL;
    }
    armo_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        armo_err_set(e, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->api = api;
    s->q = q;
    s->backend = b;
    if (armo_serve_metrics_init(&s->metrics)) {
        freeaddrinfo(ai);
        free(s);
        armo_err_set(e, "cannot create the metrics' mutex");
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->http_threads > 0 ? o->http_threads : 1),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        armo_err_set(e, "cannot listen on %s:%d (in use, or not an address of this machine?)",
                     o->host, o->port);
        armo_serve_metrics_free(&s->metrics);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return s;
}

int armo_server_port(const armo_server *s) { return s->port; }

int64_t armo_server_drain(armo_server *s, double max_wait_s) {
    atomic_store(&s->draining, 1);
    MHD_socket ls = MHD_quiesce_daemon(s->d); /* no new connections */
    if (ls != MHD_INVALID_SOCKET) close(ls);
    /* wait while requests are queued or being scored; once none is, the
     * rest (answers being sent, bodies still arriving: one that completes
     * is queued and waited for) get a 2 s grace.  A client that left in the
     * middle of its body is not waited for: MHD may not see it go until its
     * connection times out (conn_timeout_s). */
    double until = armo_now() + max_wait_s, grace_until = 0;
    while (atomic_load(&s->in_flight) > 0 && armo_now() < until) {
        if (atomic_load(&s->queued) > 0) {
            grace_until = 0;
        } else if (grace_until == 0) {
            grace_until = armo_now() + 2.0;
        } else if (armo_now() > grace_until) {
            break;
        }
        struct timespec t = {0, 20 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    return atomic_load(&s->queued);
}

void armo_server_stop(armo_server *s) {
    if (!s) return;
    MHD_stop_daemon(s->d);
    armo_serve_metrics_free(&s->metrics);
    free(s);
}
