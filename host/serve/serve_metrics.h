/* serve_metrics.h — what `armo serve` counts, and its Prometheus text
 * (GET /metrics): requests by endpoint and status, request latency
 * (histogram), and from the queue the records, sequences, tokens (scored
 * and computed), queue depth, batches and their sizes (histogram), engine
 * busy time; the backend's device memory when it reports it, and the
 * process's resident memory. */
#ifndef ARMO_SERVE_METRICS_H
#define ARMO_SERVE_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "host/engine/backend.h"
#include "host/serve/serve_queue.h"

enum { ARMO_M_SCORE = 0, ARMO_M_GET_REWARD, ARMO_M_CLASSIFY, ARMO_M_HEALTH, ARMO_M_MODELS,
       ARMO_M_METRICS, ARMO_M_OTHER, ARMO_M_ENDPOINTS };
#define ARMO_M_CODES 10
#define ARMO_M_LAT_BUCKETS 14

typedef struct {
    pthread_mutex_t mu;
    int64_t requests[ARMO_M_ENDPOINTS][ARMO_M_CODES];
    int64_t lat_le[ARMO_M_LAT_BUCKETS];  /* cumulative; the last is +Inf */
    double lat_sum;
    int64_t lat_count;
    int64_t rejected_full;               /* 503: queue full */
} armo_serve_metrics;

/* Returns 0, or an errno value when the mutex cannot be created. */
int armo_serve_metrics_init(armo_serve_metrics *m);
void armo_serve_metrics_free(armo_serve_metrics *m);
/* One answered request: its endpoint (ARMO_M_*), HTTP status and latency. */
void armo_serve_metrics_request(armo_serve_metrics *m, int endpoint, int status, double seconds);
/* The Prometheus text exposition (malloc'ed), or NULL when out of memory. */
char *armo_serve_metrics_text(armo_serve_metrics *m, armo_serve_queue *q, const armo_backend *b,
                              int64_t in_flight);

#endif
