/* report_lines.c — batches of JSON lines parsed on threads (see
 * report_lines.h). */
#include "host/report/report_lines.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int armo_json_lines_init(armo_json_lines *b, FILE *f, int batch, int threads) {
    memset(b, 0, sizeof *b);
    b->f = f;
    if (threads <= 0) { /* the cores this process may run on (taskset, cgroups) */
        cpu_set_t set;
        long c = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                             : sysconf(_SC_NPROCESSORS_ONLN);
        threads = c < 1 ? 1 : c > 16 ? 16 : (int)c;
    }
    b->threads = threads;
    b->max = batch;
    b->v = calloc((size_t)batch, sizeof *b->v);
    b->text = calloc((size_t)batch, sizeof *b->text);
    b->len = calloc((size_t)batch, sizeof *b->len);
    b->cap = calloc((size_t)batch, sizeof *b->cap);
    if (!b->v || !b->text || !b->len || !b->cap) {
        armo_json_lines_free(b);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void drop_parsed(armo_json_lines *b) {
    for (int i = 0; i < b->n; i++) {
        json_decref(b->v[i].json);
        b->v[i].json = NULL;
    }
    b->n = 0;
}

typedef struct {
    armo_json_lines *b;
    int from, to;
} slice;

static void *parse_slice(void *arg) {
    slice *s = arg;
    for (int i = s->from; i < s->to; i++) {
        armo_json_line *l = &s->b->v[i];
        if (l->blank) continue;
        json_error_t je;
        l->json = json_loadb(s->b->text[i], s->b->len[i], 0, &je);
        if (!l->json) snprintf(l->err, sizeof l->err, "%s", je.text);
    }
    return NULL;
}

static int is_blank(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return !*s;
}

int armo_json_lines_next(armo_json_lines *b) {
    drop_parsed(b);
    while (b->n < b->max) {
        ssize_t len = getline(&b->text[b->n], &b->cap[b->n], b->f);
        if (len < 0) break;
        armo_json_line *l = &b->v[b->n];
        l->line_no = ++b->line_no;
        l->blank = is_blank(b->text[b->n]);
        l->err[0] = 0;
        b->len[b->n++] = (size_t)len;
    }
    if (ferror(b->f)) return -1;
    int t = b->threads < b->n / 16 ? b->threads : 1; /* small batches: no threads */
    pthread_t tid[16];
    slice sl[16];
    int started = 0;
    for (int k = 0; k < t; k++) {
        sl[k] = (slice){b, b->n * k / t, b->n * (k + 1) / t};
        if (k > 0 && pthread_create(&tid[k], NULL, parse_slice, &sl[k]) == 0) started |= 1 << k;
        else if (k > 0) parse_slice(&sl[k]); /* no thread: parse here */
    }
    if (t > 0) parse_slice(&sl[0]);
    for (int k = 1; k < t; k++)
        if (started & (1 << k)) pthread_join(tid[k], NULL);
    return b->n;
}

void armo_json_lines_free(armo_json_lines *b) {
    if (b->v) drop_parsed(b);
    for (int i = 0; b->text && i < b->max; i++) free(b->text[i]);
    free(b->v);
    free(b->text);
    free(b->len);
    free(b->cap);
    memset(b, 0, sizeof *b);
}
