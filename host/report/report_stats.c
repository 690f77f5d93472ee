/* report_stats.c — the statistics the report draws: histograms over a
 * value range, five-number summaries, and the grouping key of error
 * messages. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/report/report_data.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void armo_hist_fill(armo_hist *h, const double *v, int64_t n, int nbins) {
    memset(h, 0, sizeof *h);
    if (nbins > ARMO_REPORT_BINS) nbins = ARMO_REPORT_BINS;
    h->nbins = nbins;
    if (n <= 0) return;
    h->lo = h->hi = v[0];
    for (int64_t i = 1; i < n; i++) {
        if (v[i] < h->lo) h->lo = v[i];
        if (v[i] > h->hi) h->hi = v[i];
    }
    double w = (h->hi - h->lo) / nbins;
    for (int64_t i = 0; i < n; i++) {
        int b = w > 0 ? (int)((v[i] - h->lo) / w) : 0;
        if (b >= nbins) b = nbins - 1; /* the maximum closes the last bin */
        if (b < 0) b = 0;
        h->counts[b]++;
    }
}

/* The q-quantile of sorted v by linear interpolation (numpy's default). */
static double quantile(const double *v, int64_t n, double q) {
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)floor(pos);
    if (i >= n - 1) return v[n - 1];
    double f = pos - (double)i;
    return v[i] + f * (v[i + 1] - v[i]);
}

void armo_box_fill(armo_box *b, double *v, int64_t n) {
    memset(b, 0, sizeof *b);
    b->n = n;
    if (n <= 0) return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    b->mean = s / (double)n;
    b->min = v[0];
    b->max = v[n - 1];
    b->q1 = quantile(v, n, 0.25);
    b->median = quantile(v, n, 0.5);
    b->q3 = quantile(v, n, 0.75);
}

json_t *armo_hist_json(const armo_hist *h) {
    json_t *c = json_array();
    for (int i = 0; i < h->nbins; i++) json_array_append_new(c, json_integer(h->counts[i]));
    return json_pack("{s:f,s:f,s:o}", "lo", h->lo, "hi", h->hi, "counts", c);
}

json_t *armo_box_json(const armo_box *b) {
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)b->n, "min", b->min, "q1",
                     b->q1, "median", b->median, "q3", b->q3, "max", b->max, "mean", b->mean);
}

const char *armo_report_error_key(const char *msg) {
    if (strncmp(msg, "line ", 5)) return msg;
    const char *p = msg + 5;
    if (!isdigit((unsigned char)*p)) return msg;
    while (isdigit((unsigned char)*p)) p++;
    if (!strncmp(p, ": ", 2)) return p + 2;
    if (strncmp(p, " (id ", 5)) return msg;
    const char *end = strstr(p, "): ");
    return end ? end + 3 : msg;
}
