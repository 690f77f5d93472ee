/* records_batch.c — tokenizes a batch of parsed records on worker threads.
 *
 * Workers pull record indices from one atomic counter (records differ a lot
 * in length, so static slices would leave threads idle); each writes only
 * its own out[i], and the tokenizer is shared read-only, so no other
 * synchronisation is needed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/text/records.h"

typedef struct {
    const armo_tokenizer *tok;
    const armo_record *recs;
    size_t n;
    unsigned flags;
    armo_record_tokens *out;
    atomic_size_t next;
} batch_job;

void armo_record_tokens_free(armo_record_tokens *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_seqs; i++) armo_ids_free(&t->seqs[i]);
    free(t->seqs);
    free(t->error);
    memset(t, 0, sizeof *t);
}

static void encode_one(batch_job *j, size_t i) {
    const armo_record *r = &j->recs[i];
    armo_record_tokens *o = &j->out[i];
    armo_err e;
    size_t ns = armo_record_n_sequences(r);
    o->seqs = calloc(ns, sizeof *o->seqs);
    if (!o->seqs) {
        o->error = strdup("out of memory");
        return;
    }
    o->n_seqs = ns;
    for (size_t k = 0; k < ns; k++) {
        if (armo_record_encode(j->tok, r, k, j->flags, &o->seqs[k], &e)) {
            for (size_t q = 0; q < ns; q++) armo_ids_free(&o->seqs[q]);
            free(o->seqs);
            o->seqs = NULL;
            o->n_seqs = 0;
            o->error = strdup(e.msg);
            return;
        }
    }
    size_t common = o->seqs[0].n;
    for (size_t k = 1; k < ns; k++) {
        size_t q = 0;
        while (q < common && q < o->seqs[k].n && o->seqs[k].ids[q] == o->seqs[0].ids[q]) q++;
        common = q;
    }
    o->shared_prefix = common;
}

static void *worker(void *arg) {
    batch_job *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        encode_one(j, i);
    }
    return NULL;
}

int armo_encode_records(const armo_tokenizer *tok, const armo_record *recs, size_t n,
                        int n_threads, unsigned flags, armo_record_tokens *out, armo_err *e) {
    memset(out, 0, n * sizeof *out);
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if ((size_t)n_threads > n) n_threads = n ? (int)n : 1;
    batch_job job = {tok, recs, n, flags, out, 0};
    if (n_threads == 1) {
        worker(&job);
        return 0;
    }
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    if (!th) return armo_err_set(e, "out of memory for %d tokenizer threads", n_threads);
    int started = 0;
    for (; started < n_threads; started++) {
        int err = pthread_create(&th[started], NULL, worker, &job);
        if (err) break; /* fewer threads: the started ones (or this one) drain the queue */
    }
    if (started == 0) worker(&job);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    return 0;
}
