/* serve_metrics.c — counters and the Prometheus text (see serve_metrics.h). */
#include "host/serve/serve_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int k_codes[ARMO_M_CODES] = {200, 400, 401, 404, 405, 413, 500, 503, 504, 0};
static const char *const k_endpoints[ARMO_M_ENDPOINTS] = {
    "/score", "/get_reward", "/classify", "/health", "/v1/models", "/metrics", "other"};
static const double k_lat[ARMO_M_LAT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                  1, 2.5, 5, 10, 30, 60, 1e300};

int armo_serve_metrics_init(armo_serve_metrics *m) {
    memset(m, 0, sizeof *m);
    return pthread_mutex_init(&m->mu, NULL);
}

void armo_serve_metrics_free(armo_serve_metrics *m) { pthread_mutex_destroy(&m->mu); }

void armo_serve_metrics_request(armo_serve_metrics *m, int endpoint, int status, double seconds) {
    int c = ARMO_M_CODES - 1; /* 0: any other status */
    for (int i = 0; i < ARMO_M_CODES - 1; i++)
        if (k_codes[i] == status) c = i;
    if (endpoint < 0 || endpoint >= ARMO_M_ENDPOINTS) endpoint = ARMO_M_OTHER;
    pthread_mutex_lock(&m->mu);
    m->requests[endpoint][c]++;
    if (status == 503) m->rejected_full++;
    for (int b = 0; b < ARMO_M_LAT_BUCKETS; b++)
        if (seconds <= k_lat[b]) m->lat_le[b]++;
    m->lat_sum += seconds;
    m->lat_count++;
    pthread_mutex_unlock(&m->mu);
}

static void le(FILE *f, double bound) {
    if (bound > 1e299) fprintf(f, "+Inf");
    else fprintf(f, "%g", bound);
}

static void write_queue(FILE *f, const armo_serve_queue_stats *q) {
    fprintf(f, "# HELP armo_records_total Records (jobs) scored.\n# TYPE armo_records_total counter\n"
               "armo_records_total %lld\n", (long long)q->records);
    fprintf(f, "# HELP armo_sequences_total Sequences scored.\n# TYPE armo_sequences_total counter\n"
               "armo_sequences_total %lld\n", (long long)q->sequences);
    fprintf(f, "# HELP armo_tokens_total Tokens of the sequences scored.\n"
               "# TYPE armo_tokens_total counter\narmo_tokens_total %lld\n", (long long)q->tokens);
    fprintf(f, "# HELP armo_tokens_computed_total Tokens run through the model (shared prompt "
               "prefixes once).\n# TYPE armo_tokens_computed_total counter\n"
               "armo_tokens_computed_total %lld\n", (long long)q->tokens_computed);
    fprintf(f, "# HELP armo_queue_depth Jobs waiting in the batching queue.\n"
               "# TYPE armo_queue_depth gauge\narmo_queue_depth %lld\n", (long long)q->queued_jobs);
    fprintf(f, "# HELP armo_queue_tokens Tokens waiting in the batching queue.\n"
               "# TYPE armo_queue_tokens gauge\narmo_queue_tokens %lld\n",
            (long long)q->queued_tokens);
    fprintf(f, "# HELP armo_batches_total Packed batches sent to the backend.\n"
               "# TYPE armo_batches_total counter\narmo_batches_total %lld\n", (long long)q->batches);
    fprintf(f, "# HELP armo_request_timeouts_total Queued jobs dropped past their request's "
               "deadline.\n# TYPE armo_request_timeouts_total counter\n"
               "armo_request_timeouts_total %lld\n", (long long)q->timeouts);
    fprintf(f, "# HELP armo_engine_busy_seconds_total Engine time spent scoring.\n"
               "# TYPE armo_engine_busy_seconds_total counter\n"
               "armo_engine_busy_seconds_total %.6f\n", q->busy_seconds);
    fprintf(f, "# HELP armo_batch_tokens Tokens computed per engine cycle (one or more packed "
               "batches).\n# TYPE armo_batch_tokens histogram\n");
    int64_t count = 0;
    for (int b = 0; b < ARMO_SERVE_BATCH_BUCKETS; b++) {
        fprintf(f, "armo_batch_tokens_bucket{le=\"");
        le(f, q->batch_tokens_bounds[b]);
        fprintf(f, "\"} %lld\n", (long long)q->batch_tokens_le[b]);
        count = q->batch_tokens_le[b];
    }
    fprintf(f, "armo_batch_tokens_sum %.0f\narmo_batch_tokens_count %lld\n", q->batch_tokens_sum,
            (long long)count);
}

static void write_memory(FILE *f, const armo_backend *b) {
    if (b && b->get_memory) {
        armo_backend_memory mem;
        b->get_memory(b, &mem);
        fprintf(f, "# HELP armo_device_memory_bytes Device memory the backend holds.\n"
                   "# TYPE armo_device_memory_bytes gauge\n"
                   "armo_device_memory_bytes{kind=\"weights\"} %zu\n"
                   "armo_device_memory_bytes{kind=\"activations\"} %zu\n",
                mem.weight_bytes, mem.activation_bytes);
    }
    long pages = 0, resident = 0;
    FILE *sm = fopen("/proc/self/statm", "r");
    if (sm) {
        if (fscanf(sm, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(sm);
    }
    fprintf(f, "# HELP armo_process_resident_bytes Resident memory of the server process (the "
               "CPU backend's weights included).\n# TYPE armo_process_resident_bytes gauge\n"
               "armo_process_resident_bytes %lld\n",
            (long long)resident * (long long)sysconf(_SC_PAGESIZE));
}

char *armo_serve_metrics_text(armo_serve_metrics *m, armo_serve_queue *q, const armo_backend *b,
                              int64_t in_flight) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    armo_serve_metrics c;
    pthread_mutex_lock(&m->mu);
    memcpy(c.requests, m->requests, sizeof c.requests);
    memcpy(c.lat_le, m->lat_le, sizeof c.lat_le);
    c.lat_sum = m->lat_sum;
    c.lat_count = m->lat_count;
    pthread_mutex_unlock(&m->mu);
    fprintf(f, "# HELP armo_requests_total HTTP requests answered, by endpoint and status.\n"
               "# TYPE armo_requests_total counter\n");
    for (int e = 0; e < ARMO_M_ENDPOINTS; e++)
        for (int s = 0; s < ARMO_M_CODES; s++)
            if (c.requests[e][s]) {
                char code[16];
                if (k_codes[s]) snprintf(code, sizeof code, "%d", k_codes[s]);
                else snprintf(code, sizeof code, "other");
                fprintf(f, "armo_requests_total{endpoint=\"%s\",code=\"%s\"} %lld\n",
                        k_endpoints[e], code, (long long)c.requests[e][s]);
            }
    fprintf(f, "# HELP armo_requests_in_flight Requests received and not yet answered.\n"
               "# TYPE armo_requests_in_flight gauge\narmo_requests_in_flight %lld\n",
            (long long)in_flight);
    fprintf(f, "# HELP armo_request_seconds Request latency, from its headers to its answer.\n"
               "# TYPE armo_request_seconds histogram\n");
    for (int i = 0; i < ARMO_M_LAT_BUCKETS; i++) {
        fprintf(f, "armo_request_seconds_bucket{le=\"");
        le(f, k_lat[i]);
        fprintf(f, "\"} %lld\n", (long long)c.lat_le[i]);
    }
    fprintf(f, "armo_request_seconds_sum %.6f\narmo_request_seconds_count %lld\n", c.lat_sum,
            (long long)c.lat_count);
    armo_serve_queue_stats qs;
    armo_serve_queue_stats_get(q, &qs);
    write_queue(f, &qs);
    write_memory(f, b);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
