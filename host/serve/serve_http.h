/* serve_http.h — `armo serve`'s HTTP server on libmicrohttpd: a thread
 * pool of epoll loops reads requests; a scoring request is parsed and
 * prepared (tokenized) on the thread that read it, its connection is
 * suspended while its jobs wait in the batching queue (serve_queue.h) and
 * resumed by the engine thread as soon as the last of them is scored.
 *
 * Routes: POST /score, /get_reward, /classify (also /v1/classify) —
 * serve_api.h; GET /health, /v1/models, /metrics (serve_metrics.h).
 * Limits: a body over max_body_bytes (by Content-Length, or as it arrives)
 * 413; too many tokens or records in one request 413; invalid JSON or a
 * bad field 400 naming it; the queue full 503 with Retry-After; a request
 * still queued after request_timeout_s 504; idle connections closed after
 * conn_timeout_s (a client too slow to send its request); with api_key,
 * every route but /health needs "Authorization: Bearer <key>" (else 401).
 * Stopping: armo_server_drain stops accepting connections, answers new
 * requests on open ones 503 (Connection: close), and returns once every
 * request in flight is answered; armo_server_stop then closes the rest. */
#ifndef ARMO_SERVE_HTTP_H
#define ARMO_SERVE_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "host/serve/serve_api.h"
#include "host/serve/serve_metrics.h"
#include "host/serve/serve_queue.h"

typedef struct {
    const char *host;            /* address to bind (default 127.0.0.1) */
    int port;                    /* 0: any free port (armo_server_port says which) */
    int http_threads;            /* libmicrohttpd's thread pool */
    int max_connections;
    int conn_timeout_s;          /* idle connection timeout */
    double request_timeout_s;    /* queued longer: 504 */
    size_t max_body_bytes;
    const char *api_key;         /* NULL: none */
    int retry_after_s;           /* Retry-After of a 503 */
} armo_server_opts;

typedef struct armo_server armo_server;

/* Starts listening; the queue (started) and api must outlive the server.
 * NULL with e set on failure (address in use, bad host). */
armo_server *armo_server_start(const armo_server_opts *o, armo_serve_api *api,
                               armo_serve_queue *q, const armo_backend *b, armo_err *e);
int armo_server_port(const armo_server *s);
/* Stops accepting, waits (up to max_wait_s) until the requests queued or
 * being scored are answered, then up to 2 s for the answers to be sent and
 * for bodies still arriving (a request whose body completes is queued and
 * waited for; a client gone mid-body is not).  Returns how many were still
 * queued. */
int64_t armo_server_drain(armo_server *s, double max_wait_s);
void armo_server_stop(armo_server *s);

#endif
