/* score_tp_ranks.c — tensor-parallel groups across the processes of a
 * launch (see score_tp_ranks.h): MPI start-up and group split, the NCCL
 * bootstrap, and the backend wrapper that keeps a group's ranks in step
 * batch by batch.  Without MPI at build time every entry refuses the mode. */
#include "host/cli/score_tp_ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/backend_open.h"

#ifdef ARMO_HAVE_MPI
#include "host/dist/mpi_bcast.h"

/* The node-local rank from the launcher (-1: none says). */
static int local_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                                       "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long n = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && n >= 0) return (int)n;
    }
    return -1;
}

int armo_tp_ranks_start(armo_tp_ranks *t, int tp, const armo_dist_rank *d, armo_err *e) {
    memset(t, 0, sizeof *t);
    t->tp = tp;
    t->launch_rank = d->rank;
    t->launch_world = d->world;
    if (tp < 2) return armo_err_set(e, "--tp-across-ranks needs --tp N with N >= 2");
    if (d->world % tp)
        return armo_err_set(e, "--tp %d --tp-across-ranks: the launch has %d ranks (%s), not a "
                               "multiple of %d: every group needs %d ranks", tp, d->world,
                            d->source, tp, tp);
    int mrank = -1, mworld = 0;
    if (armo_mpi_init(NULL, NULL, &mrank, &mworld, e))
        return armo_err_prefix(e, "--tp-across-ranks starts MPI");
    t->mpi_up = 1;
    /* a job array multiplies the launch: the MPI world is one array task's */
    if (mworld % tp || d->rank % tp != mrank % tp || d->world % mworld)
        return armo_err_set(e, "--tp-across-ranks: MPI rank %d of %d does not match the launch's "
                               "rank %d of %d (%s): run every rank of the groups under one "
                               "mpirun / srun --mpi=pmix", mrank, mworld, d->rank, d->world,
                            d->source);
    t->tp_rank = d->rank % tp;
    t->group = d->rank / tp;
    t->groups = d->world / tp;
    int grank = -1, gsize = 0;
    armo_mpi_group *g = NULL;
    if (armo_mpi_group_split(mrank / tp, mrank % tp, &g, &grank, &gsize, e)) return -1;
    t->mpi = g;
    if (gsize != tp || grank != t->tp_rank)
        return armo_err_set(e, "--tp-across-ranks: MPI's group holds %d ranks (this one: %d), "
                               "expected %d (%d)", gsize, grank, tp, t->tp_rank);
    return 0;
}

int armo_tp_ranks_share(armo_tp_ranks *t, int64_t *v, int n, armo_err *e) {
    return armo_mpi_group_bcast(t->mpi, v, (size_t)n * sizeof *v, 0, e);
}

int armo_tp_ranks_any(armo_tp_ranks *t, int failed, armo_err *e) {
    int64_t v = failed != 0;
    if (armo_mpi_group_max_i64(t->mpi, &v, 1, 0, e)) return -1;
    return v != 0;
}

void armo_tp_ranks_set_stop(armo_tp_ranks *t, atomic_int *signal, atomic_int *group_stop) {
    t->signal = signal;
    t->group_stop = group_stop;
}

void armo_tp_ranks_end(armo_tp_ranks *t) {
    armo_mpi_group_free(t->mpi);
    t->mpi = NULL;
    armo_err e;
    if (t->mpi_up && armo_mpi_finalize(&e)) fprintf(stderr, "armo score: %s\n", e.msg);
    t->mpi_up = 0;
}

/* ---- the backend of one rank, kept in step with its group --------------------- */

typedef struct {
    armo_backend *in;            /* the CUDA rank (backend_open.h's open_tp_peer) */
    armo_tp_ranks *t;
    double timeout_s;            /* ARMO_TP_PEER_TIMEOUT_S */
    double grace_s;              /* ARMO_TP_WATCHDOG_GRACE_MS: after this rank failed */
    long calls;
    long fail_call;              /* ARMO_TEST_FAIL_TP_RANK's call (-1: none) */
} peer;

/* The test hook ARMO_TEST_FAIL_TP_RANK=R:K: TP rank R's K-th score call
 * (0-based) fails on that rank alone, before any collective, as an
 * out-of-memory batch on one GPU would. */
static long fail_hook(int tp_rank) {
    const char *v = getenv("ARMO_TEST_FAIL_TP_RANK");
    int r = -1;
    long k = -1;
    if (v && sscanf(v, "%d:%ld", &r, &k) == 2 && r == tp_rank && k >= 0) return k;
    return -1;
}

/* Ends the job: the group cannot go on (message on stderr first). */
static void abort_job(const peer *p, const char *why) {
    fprintf(stderr, "\narmo score: TP rank %d of group %d (launcher rank %d of %d): %s; the group "
                    "cannot go on: ending the job (MPI_Abort); its parts hold whole lines: rerun "
                    "the same command with --resume\n", p->t->tp_rank, p->t->group,
            p->t->launch_rank, p->t->launch_world, why);
    fflush(stderr);
    armo_mpi_abort(2);
}

static int peer_score(armo_backend *b, const int32_t *ids, const int32_t *cu, int nseq,
                      const int32_t *gpos, const int32_t *prefix_of, armo_result *out,
                      armo_err *e) {
    peer *p = b->impl;
    int rc;
    if (p->calls++ == p->fail_call) {
        rc = armo_err_set(e, "made to fail by ARMO_TEST_FAIL_TP_RANK (test hook)");
    } else {
        p->in->hidden_out = b->hidden_out;
        p->in->max_batch_tokens_now = b->max_batch_tokens_now;
        rc = p->in->score(p->in, ids, cu, nseq, gpos, prefix_of, out, e);
        p->in->hidden_out = NULL;
    }
    const int64_t limit = p->in->max_batch_tokens_now;
    /* max-reduced: any failed, -(all failed), any lost, -(smallest budget),
     * a signal seen */
    int64_t v[5] = {rc != 0, -(int64_t)(rc != 0), p->in->lost != NULL,
                    -(limit > 0 ? limit : INT64_MAX),
                    p->t->signal ? atomic_load(p->t->signal) : 0};
    armo_err me;
    /* a rank that failed the batch waits for its peers only a grace period:
     * peers refusing the same batch come back at once, and one still out is
     * blocked in a collective waiting for this rank (it would never come) */
    const double wait_s = rc && p->grace_s < p->timeout_s ? p->grace_s : p->timeout_s;
    int st = armo_mpi_group_max_i64(p->t->mpi, v, 5, wait_s, &me);
    char why[ARMO_ERR_LEN + 200];
    if (st) {
        if (st > 0 && rc)
            snprintf(why, sizeof why, "this rank failed a batch of %d sequences (%s) and its "
                     "peers were not back within %.1f s (ARMO_TP_WATCHDOG_GRACE_MS): they wait "
                     "in a collective for this rank", nseq, e->msg, wait_s);
        else if (st > 0)
            snprintf(why, sizeof why, "its peers did not finish a batch of %d sequences within "
                     "%.0f s (ARMO_TP_PEER_TIMEOUT_S)", nseq, wait_s);
        else
            snprintf(why, sizeof why, "agreeing on a batch's outcome: %s", me.msg);
        abort_job(p, why);
    }
    if (v[4] > 0) { /* a rank saw SIGINT / SIGTERM: all stop after this batch */
        if (p->t->signal && !atomic_load(p->t->signal)) atomic_store(p->t->signal, (int)v[4]);
        if (p->t->group_stop) atomic_store(p->t->group_stop, (int)v[4]);
    }
    if (!v[0]) return 0;                  /* every rank scored it */
    if (v[2] || -v[1] == 0) {             /* a device lost, or the ranks disagree */
        snprintf(why, sizeof why, "the group's ranks disagree on a batch of %d sequences (this "
                 "rank %s%s%s)", nseq, rc ? "failed it: " : "scored it",
                 rc ? e->msg : "", p->in->lost ? "; its device is lost" : "");
        abort_job(p, why);
    }
    /* every rank refused it: the same smallest budget everywhere, so that
     * the scheduler re-packs alike on each */
    b->max_batch_tokens_now = -v[3] == INT64_MAX ? 0 : -v[3];
    return rc;
}

static void peer_destroy(armo_backend *b) {
    if (!b) return;
    peer *p = b->impl;
    if (p) armo_backend_close(p->in);
    free(p);
    free(b);
}

static int peer_set_timing(armo_backend *b, int on, armo_err *e) {
    peer *p = b->impl;
    return p->in->set_timing ? p->in->set_timing(p->in, on, e) : 0;
}

static void peer_get_timing(const armo_backend *b, armo_phase_times *out) {
    const peer *p = b->impl;
    if (p->in->get_timing) p->in->get_timing(p->in, out);
    else memset(out, 0, sizeof *out);
}

static void peer_get_memory(const armo_backend *b, armo_backend_memory *out) {
    const peer *p = b->impl;
    if (p->in->get_memory) p->in->get_memory(p->in, out);
    else memset(out, 0, sizeof *out);
}

static armo_backend *peer_wrap(armo_tp_ranks *t, armo_backend *in, armo_err *e) {
    armo_backend *b = calloc(1, sizeof *b);
    peer *p = calloc(1, sizeof *p);
    if (!b || !p) {
        free(b);
        free(p);
        armo_err_set(e, "out of host memory");
        return NULL;
    }
    const char *v = getenv("ARMO_TP_PEER_TIMEOUT_S");
    p->timeout_s = v && atof(v) > 0 ? atof(v) : 600;
    const char *g = getenv("ARMO_TP_WATCHDOG_GRACE_MS");
    p->grace_s = g && atof(g) > 0 ? atof(g) / 1000.0 : 10.0;
    p->in = in;
    p->t = t;
    p->fail_call = fail_hook(t->tp_rank);
    b->impl = p;
    b->name = in->name;
    snprintf(b->device, sizeof b->device, "%.80s, group %d", in->device, t->group);
    b->max_expanded_rows = in->max_expanded_rows;
    b->returns_hidden = in->returns_hidden;
    b->score = peer_score;
    b->destroy = peer_destroy;
    b->set_timing = peer_set_timing;
    b->get_timing = peer_get_timing;
    b->get_memory = peer_get_memory;
    return b;
}

/* This process's device: --devices D, else the node-local rank modulo the
 * visible devices. */
static int pick_device(armo_tp_ranks *t, const char *devices, armo_err *e) {
    const int visible = armo_backend_device_count("cuda");
    if (visible < 1) return armo_err_set(e, "no CUDA device is visible to this rank");
    if (devices && *devices) {
        char *end;
        long d = strtol(devices, &end, 10);
        if (*end || d < 0 || d >= visible)
            return armo_err_set(e, "--devices %s with --tp-across-ranks: one device per rank, "
                                   "among the %d visible", devices, visible);
        t->device = (int)d;
        return 0;
    }
    const int local = local_rank();
    t->device = (local >= 0 ? local : t->launch_rank) % visible;
    return 0;
}

/* The set-up agreement: v = {failed, -budget}, max-reduced over the group
 * (armo_tp_ranks_open and armo_tp_ranks_setup_failed make the same call). */
static int setup_agree(armo_tp_ranks *t, int64_t v[2], armo_err *e) {
    return armo_mpi_group_max_i64(t->mpi, v, 2, 0, e);
}

void armo_tp_ranks_setup_failed(armo_tp_ranks *t) {
    int64_t v[2] = {1, INT64_MIN};
    armo_err e;
    if (t->mpi && setup_agree(t, v, &e)) fprintf(stderr, "armo score: %s\n", e.msg);
}

armo_backend *armo_tp_ranks_open(armo_tp_ranks *t, const armo_model *m,
                                 const armo_cli_backend_args *a, int max_length,
                                 armo_backend_opts *bo, int64_t *budget, armo_err *e) {
    /* plan on every rank, then agree: failed anywhere, and the smallest budget */
    const char *kind = NULL;
    int failed = pick_device(t, a->devices, e) ||
                 !(kind = armo_cli_plan_backend(m, a, t->device, max_length, bo, budget, e));
    int64_t v[2] = {failed, failed ? INT64_MIN : -*budget};
    armo_err me;
    if (setup_agree(t, v, &me)) {
        *e = me;
        return NULL;
    }
    if (failed) return NULL;
    if (v[0]) {
        armo_err_set(e, "another rank of TP group %d could not set up its backend (its message "
                        "says why)", t->group);
        return NULL;
    }
    *budget = -v[1];
    bo->max_batch_tokens = *budget > max_length ? *budget : max_length;
    bo->has_device = 1;
    bo->device = t->device;
    bo->tp = t->tp;
    /* the leader's NCCL id (or its failure) to every rank */
    unsigned char id[ARMO_TP_ID_BYTES + 1] = {0};
    if (t->tp_rank == 0 && armo_backend_tp_unique_id(kind, id + 1, e)) id[0] = 1;
    if (armo_mpi_group_bcast(t->mpi, id, sizeof id, 0, &me)) {
        *e = me;
        return NULL;
    }
    if (id[0]) {
        if (t->tp_rank) armo_err_set(e, "TP group %d's leader could not make the NCCL id", t->group);
        return NULL;
    }
    armo_backend *in = armo_backend_open_tp_peer(m, kind, bo, id + 1, t->tp, t->tp_rank, e);
    /* past the bootstrap: a rank that failed may leave peers in a collective */
    int any = armo_tp_ranks_any(t, in == NULL, &me);
    if (any != 0) {
        armo_backend_close(in);
        if (any < 0) *e = me;
        else if (in) armo_err_set(e, "another rank of TP group %d could not open its backend "
                                     "(its message says why)", t->group);
        return NULL;
    }
    armo_backend *b = peer_wrap(t, in, e);
    if (!b) {
        armo_backend_close(in);
        abort_job(&(peer){.t = t}, e->msg);
    }
    return b;
}

#else /* built without MPI */

static const char k_no_mpi[] =
    "--tp-across-ranks: this armo was built without MPI (CMake found no MPI: install "
    "libopenmpi-dev and rebuild); --tp N alone runs a group inside one process";

int armo_tp_ranks_start(armo_tp_ranks *t, int tp, const armo_dist_rank *d, armo_err *e) {
    memset(t, 0, sizeof *t);
    (void)tp, (void)d;
    return armo_err_set(e, "%s", k_no_mpi);
}

int armo_tp_ranks_share(armo_tp_ranks *t, int64_t *v, int n, armo_err *e) {
    (void)t, (void)v, (void)n;
    return armo_err_set(e, "%s", k_no_mpi);
}

int armo_tp_ranks_any(armo_tp_ranks *t, int failed, armo_err *e) {
    (void)t, (void)failed;
    return armo_err_set(e, "%s", k_no_mpi);
}

armo_backend *armo_tp_ranks_open(armo_tp_ranks *t, const armo_model *m,
                                 const armo_cli_backend_args *a, int max_length,
                                 armo_backend_opts *bo, int64_t *budget, armo_err *e) {
    (void)t, (void)m, (void)a, (void)max_length, (void)bo, (void)budget;
    armo_err_set(e, "%s", k_no_mpi);
    return NULL;
}

void armo_tp_ranks_setup_failed(armo_tp_ranks *t) { (void)t; }

void armo_tp_ranks_set_stop(armo_tp_ranks *t, atomic_int *signal, atomic_int *group_stop) {
    (void)t, (void)signal, (void)group_stop;
}

void armo_tp_ranks_end(armo_tp_ranks *t) { (void)t; }

#endif
