/* progress.c — see progress.h. */
#include "base/progress.h"

#include <time.h>
#include <unistd.h>

double armo_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void armo_progress_init(armo_progress *p, int64_t bytes_total, int quiet) {
    p->out = stderr;
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
    p->interval = 10.0;
    p->start = p->last = armo_now();
    p->bytes_total = bytes_total;
    p->records = p->tokens = p->errors = p->bytes_read = 0;
}

static void fmt_eta(double s, char *buf, size_t len) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, len, "--");
        return;
    }
    int h = (int)(s / 3600), m = (int)(s / 60) % 60, sec = (int)s % 60;
    if (h)
        snprintf(buf, len, "%dh%02dm", h, m);
    else
        snprintf(buf, len, "%dm%02ds", m, sec);
}

static void print_line(armo_progress *p, double now, int final) {
    double el = now - p->start;
    if (el <= 0) el = 1e-9;
    double rps = (double)p->records / el, tps = (double)p->tokens / el;
    char eta[32] = "";
    double frac = -1;
    if (p->bytes_total > 0 && p->bytes_read > 0) {
        frac = (double)p->bytes_read / (double)p->bytes_total;
        if (frac > 1) frac = 1;
        fmt_eta(frac > 0 ? el / frac - el : -1, eta, sizeof eta);
    }
    if (p->tty && !final) {
        char bar[31] = "";
        if (frac >= 0) {
            int fill = (int)(frac * 30);
            for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
            bar[30] = 0;
        }
        fprintf(p->out, "\r[%s] %lld records (%lld errors)  %.1f rec/s  %.0f tok/s  ETA %s   ",
                bar, (long long)p->records, (long long)p->errors, rps, tps, frac >= 0 ? eta : "--");
    } else {
        if (p->tty) fputc('\r', p->out);
        fprintf(p->out, "armo: %s%lld records (%lld errors), %lld tokens in %.1f s: %.1f rec/s, "
                        "%.0f tok/s",
                final ? "done: " : "", (long long)p->records, (long long)p->errors,
                (long long)p->tokens, el, rps, tps);
        if (!final && frac >= 0) fprintf(p->out, ", %.0f%%, ETA %s", 100 * frac, eta);
        fputc('\n', p->out);
    }
    fflush(p->out);
}

void armo_progress_update(armo_progress *p, int64_t records, int64_t tokens, int64_t errors,
                          int64_t bytes_read) {
    p->records = records;
    p->tokens = tokens;
    p->errors = errors;
    p->bytes_read = bytes_read;
    if (p->quiet) return;
    double now = armo_now();
    if (now - p->last < (p->tty ? 0.2 : p->interval)) return;
    p->last = now;
    print_line(p, now, 0);
}

void armo_progress_finish(armo_progress *p) {
    if (!p->quiet) print_line(p, armo_now(), 1);
}
