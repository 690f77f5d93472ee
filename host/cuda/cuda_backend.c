/* cuda_backend.c — the CUDA backend (see cuda_backend.h).
 *
 * Forward for a packed batch of n tokens in nseq sequences, residual stream
 * x in bf16:
 *   x = embed(ids); xn = rmsnorm(x, attn_norm[0])
 *   per layer: qkv = xn·Wqkvᵀ (fused); RoPE on q and k in place inside qkv;
 *              attention reading q, k, v in place (strided);
 *              x += attn·Woᵀ, xn = rmsnorm(x) (fused add+norm);
 *              gu = xn·Wguᵀ (fused gate|up); x += swiglu(gu)·Wdownᵀ,
 *              xn = rmsnorm(x, next layer's attn_norm)
 * The last layer runs attention for every token (its keys and values are
 * needed) but the output projection, the MLP and the final norm only for the
 * rows that feed the head (the last token and the gating token of each
 * sequence): one launch gathers their attention and residual rows, and the
 * final norm writes the head's fp32 input rows directly.  The head reads
 * those rows in fp32 with fp32 weights.
 * With prompt-prefix sharing (prefix_share.h) every step runs once per
 * unique token, attention included: a continuation's query rows attend the
 * prefix's keys and values where they are (armo_attention_ex_bf16's
 * prefix_of), so no row is duplicated.
 * Every CUDA call is checked; errors carry file:line.  A kernel that fails
 * while it runs (an illegal address) is only seen at the next
 * synchronisation: the batch then fails with a message that says so, and
 * ARMO_CUDA_SYNC=1 (debugging; read at backend creation) synchronises the
 * stream after every kernel and GEMM, naming the one that failed and its
 * layer.  Every host -> device copy is enqueued on the backend's stream (a
 * plain cudaMemcpy runs on the legacy stream, which a non-blocking stream is
 * not ordered after).
 *
 * Profiling support (marked "bench/profiling hook" below): NVTX ranges
 * (header-only NVTX3; free when no tool is attached) around each score call,
 * its phases and each layer, named "armo.score", "armo.upload",
 * "armo.embed", "armo.layer N", "armo.head", "armo.download"; and optional
 * per-phase cudaEvent timing for `armo bench` (backend.h's set_timing). */
#include "host/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvtx3/nvToolsExt.h>

#include "base/progress.h"
#include "host/cuda/gemm_ceiling.h"
#include "host/cuda/nccl_comm.h"
#include "host/engine/batch_check.h"
#include "host/engine/device_memory.h"
#include "host/engine/prefix_share.h"
#include "host/engine/tp_split.h"
#include "kernels/armo_kernels.h"
#include "kernels/cuda_check.h"
#include "weights/rope_table.h"

typedef struct {
    uint16_t *attn_norm, *wqkv, *wo, *mlp_norm, *wgu, *wdown;
} dev_layer;

/* One captured forward pass: the bucket it was captured for and the graph. */
#define GRAPH_CACHE 8
#define GRAPH_MAX_TOKENS 2048 /* "small" batches: above this launch overhead is noise */
typedef struct {
    int n, nseq, m, shared;
    cudaGraphExec_t exec;
} graph_entry;

typedef struct {
    armo_config cfg;             /* a TP rank's: its heads and intermediate columns */
    int device;
    /* tensor parallel (tp > 1): this engine is rank `rank` of a group whose
     * partial o_proj / down_proj sums are all-reduced over nccl */
    int tp, rank;
    armo_nccl_group *nccl;
    int own_nccl;                /* a rank of a group across processes: nccl is this
                                  * backend's, destroyed with it (aborted after a failure) */
    cudaStream_t stream;
    armo_gemm *gemm;
    uint16_t *embed, *final_norm;
    dev_layer *layers;
    float *inv_freq;
    armo_head_params head;       /* device pointers; sizes checked at create */
    float *seqcls_w;
    void **allocs;               /* every cudaMalloc, freed at destroy */
    int nallocs, cap_allocs;

    size_t weight_bytes;         /* every dalloc (weights, RoPE table) */

    /* activations: allocated for the largest batch sent so far (none before
     * the first), grown between batches up to the ceiling (see ensure_capacity) */
    int64_t max_tokens;          /* ceiling: the largest batch a caller may send */
    int max_seqs;
    armo_batch_shape cap;        /* what the buffers hold now */
    void *act[ARMO_ACT_COUNT];   /* device buffers, device_memory.h's list */
    size_t act_bytes;
    int64_t grows;
    uint16_t *x, *xn, *qkv, *attn, *o, *gu, *act_swiglu;
    int32_t *d_ids, *d_pos, *d_cu, *d_rows, *d_prefix_of;
    float *h_rows_f32, *rewards, *gating, *coefs, *score, *scratch;
    /* pinned host mirrors */
    int32_t *p_ids, *p_pos, *p_cu, *p_rows, *p_prefix_of;
    int32_t *head_seg;           /* head index -> segment (host) */
    float *p_out;
    size_t out_floats;
    /* bench/profiling hook: per-phase timing (off unless set_timing) */
    int timing;
    cudaEvent_t phase_ev[6];     /* before upload, after upload/embed/layers/head/download */
    armo_phase_times phase;
    /* debugging: ARMO_CUDA_SYNC=1 synchronises after every launch */
    int sync_each;
    int layer;                   /* the layer being enqueued, -1 outside the layers */
    /* CUDA graphs (ARMO_CUDA_GRAPHS=1, read at creation): see graph_bucket */
    int use_graphs;
    graph_entry graphs[GRAPH_CACHE];
    int ngraphs;
    int64_t graph_captures, graph_launches;
    /* set when work failed while running: such errors are sticky (the CUDA
     * context refuses all later work), so later batches fail at once, saying why */
    char failed[200];
} engine;

static void mark_failed(engine *g, cudaError_t st) {
    if (!g->failed[0]) snprintf(g->failed, sizeof g->failed, "%s", cudaGetErrorString(st));
}

/* With ARMO_CUDA_SYNC=1: waits for the kernel (or GEMM) just enqueued and
 * names it and its layer if it failed while running. */
static int sync_check(engine *g, const char *what, armo_err *e) {
    const cudaError_t st = cudaStreamSynchronize(g->stream);
    if (st == cudaSuccess) return 0;
    mark_failed(g, st);
    if (g->layer >= 0)
        return armo_err_set(e, "%s failed while running (layer %d; ARMO_CUDA_SYNC=1): %s", what,
                            g->layer, cudaGetErrorString(st));
    return armo_err_set(e, "%s failed while running (ARMO_CUDA_SYNC=1): %s", what,
                        cudaGetErrorString(st));
}

/* A kernel launcher of armo_kernels.h: fn(args), checked at launch and, with
 * ARMO_CUDA_SYNC=1, once it has run. */
#define KERNEL(g, e, fn, args)                                                              \
    do {                                                                                    \
        ARMO_CUDA_TRY(e, fn args);                                                          \
        if ((g)->sync_each && sync_check((g), #fn, (e))) return -1;                         \
    } while (0)

/* The cuBLASLt GEMM layer, the same way. */
#define GEMM(g, e, what, y, x, w, n, in, out)                                               \
    do {                                                                                    \
        if (armo_gemm_bf16((g)->gemm, (y), (x), (w), (n), (in), (out), (g)->stream, (e)))   \
            return -1;                                                                      \
        if ((g)->sync_each && sync_check((g), "armo_gemm_bf16 (" what ")", (e))) return -1; \
    } while (0)

/* Tensor parallel: the rank's partial sum in buf ([rows, hidden] bf16)
 * all-reduced over the group, on the rank's stream. */
#define ALLREDUCE(g, e, what, buf, rows)                                                    \
    do {                                                                                    \
        if ((g)->tp > 1 &&                                                                  \
            armo_nccl_allreduce_bf16((g)->nccl, (g)->rank, (buf),                           \
                                     (size_t)(rows) * (size_t)(g)->cfg.hidden_size,          \
                                     (g)->stream, (e)))                                     \
            return armo_err_prefix((e), "TP rank %d, all-reduce after %s", (g)->rank, what); \
        if ((g)->sync_each && (g)->tp > 1 && sync_check((g), "ncclAllReduce (" what ")", (e))) \
            return -1;                                                                      \
    } while (0)

/* bench/profiling hook: records phase mark i when timing is on */
#define PHASE_MARK(g, i)                                                                    \
    do {                                                                                    \
        if ((g)->timing) ARMO_CUDA_TRY(e, cudaEventRecord((g)->phase_ev[i], (g)->stream));   \
    } while (0)

static int dalloc(engine *g, void **p, size_t bytes, const char *what, armo_err *e) {
    if (g->nallocs == g->cap_allocs) {
        int cap = g->cap_allocs ? 2 * g->cap_allocs : 256;
        void **a = realloc(g->allocs, (size_t)cap * sizeof *a);
        if (!a) return armo_err_set(e, "out of host memory");
        g->allocs = a;
        g->cap_allocs = cap;
    }
    cudaError_t st = cudaMalloc(p, bytes ? bytes : 16);
    if (st != cudaSuccess)
        return armo_err_set(e, "cudaMalloc of %.1f MiB (%zu bytes) for %s failed: %s (the "
                               "weights need a GPU with more free memory)",
                            (double)bytes / 1048576.0, bytes, what, cudaGetErrorString(st));
    g->allocs[g->nallocs++] = *p;
    g->weight_bytes += bytes;
    return 0;
}

/* ---- weight upload through two pinned staging buffers ----------------------- */

typedef struct {
    void *buf[2];
    cudaEvent_t ev[2];
    int cur;
    size_t size;                 /* bytes per buffer */
    double done, total, t0, last;
    int quiet;
    cudaStream_t stream;
} stager;

static int stage_init(stager *s, cudaStream_t stream, double total, int quiet, armo_err *e) {
    memset(s, 0, sizeof *s);
    s->size = (size_t)32 << 20;
    s->stream = stream;
    s->total = total;
    s->quiet = quiet;
    s->t0 = s->last = armo_now();
    for (int i = 0; i < 2; i++) {
        ARMO_CUDA_TRY(e, cudaMallocHost(&s->buf[i], s->size));
        ARMO_CUDA_TRY(e, cudaEventCreateWithFlags(&s->ev[i], cudaEventDisableTiming));
    }
    return 0;
}

static void stage_free(stager *s) {
    for (int i = 0; i < 2; i++) {
        if (s->ev[i]) cudaEventSynchronize(s->ev[i]), cudaEventDestroy(s->ev[i]);
        if (s->buf[i]) cudaFreeHost(s->buf[i]);
    }
}

static void stage_progress(stager *s, int final) {
    if (s->quiet) return;
    double now = armo_now();
    if (!final && now - s->last < 1.0) return;
    s->last = now;
    double gib = 1024.0 * 1024.0 * 1024.0;
    fprintf(stderr, "armo: %s weights to the GPU: %.2f / %.2f GiB (%.2f GiB/s)\n",
            final ? "loaded" : "loading", s->done / gib, s->total / gib,
            s->done / gib / (now - s->t0 + 1e-9));
}

/* Copies w (BF16/F16/F32) to dst on the device as bf16 (to_f32 = 0) or fp32. */
static int stage(stager *s, void *dst, const armo_weight *w, int to_f32, armo_err *e) {
    size_t n = (size_t)(w->rows * w->cols), esz = to_f32 ? 4 : 2;
    size_t per = s->size / esz, off = 0;
    while (off < n) {
        size_t cnt = n - off < per ? n - off : per;
        ARMO_CUDA_TRY(e, cudaEventSynchronize(s->ev[s->cur]));
        if (to_f32) {
            float *b = s->buf[s->cur];
            for (size_t i = 0; i < cnt; i++) b[i] = armo_load_f32(w->data, w->dtype, off + i);
        } else if (w->dtype == ARMO_DT_BF16) {
            memcpy(s->buf[s->cur], (const uint16_t *)w->data + off, cnt * 2);
        } else {
            uint16_t *b = s->buf[s->cur];
            for (size_t i = 0; i < cnt; i++)
                b[i] = armo_f32_to_bf16(armo_load_f32(w->data, w->dtype, off + i));
        }
        ARMO_CUDA_TRY(e, cudaMemcpyAsync((char *)dst + off * esz, s->buf[s->cur], cnt * esz,
                                         cudaMemcpyHostToDevice, s->stream));
        ARMO_CUDA_TRY(e, cudaEventRecord(s->ev[s->cur], s->stream));
        s->cur ^= 1;
        off += cnt;
        s->done += (double)(cnt * esz);
        stage_progress(s, 0);
    }
    return 0;
}

/* A device bf16 copy of one weight (or of several concatenated along rows:
 * the fused QKV and gate|up layouts are plain row concatenations). */
static int upload_cat(engine *g, stager *s, uint16_t **dst, const armo_weight *const *ws, int nw,
                      armo_err *e) {
    size_t total = 0;
    for (int i = 0; i < nw; i++) total += (size_t)(ws[i]->rows * ws[i]->cols);
    if (dalloc(g, (void **)dst, total * 2, ws[0]->name, e)) return -1;
    size_t off = 0;
    for (int i = 0; i < nw; i++) {
        if (stage(s, *dst + off, ws[i], 0, e))
            return armo_err_prefix(e, "uploading %s", ws[i]->name);
        off += (size_t)(ws[i]->rows * ws[i]->cols);
    }
    return 0;
}

static int upload_f32(engine *g, stager *s, float **dst, const armo_weight *w, armo_err *e) {
    if (dalloc(g, (void **)dst, (size_t)(w->rows * w->cols) * 4, w->name, e)) return -1;
    return stage(s, *dst, w, 1, e);
}

/* The ArmoRM head's weights as fp32 device arrays, into g->head (whose sizes
 * create() took from armo_model_head_params). */
static int upload_head(engine *g, stager *s, const armo_model *m, armo_err *e) {
    armo_head_params *h = &g->head;
    float *p;
    if (upload_f32(g, s, &p, &m->regression, e)) return -1;
    h->regression = p;
    for (int l = 0; l < h->nlayers; l++) {
        if (upload_f32(g, s, &p, &m->gating_w[l], e)) return -1;
        h->gw[l] = p;
        if (upload_f32(g, s, &p, &m->gating_b[l], e)) return -1;
        h->gb[l] = p;
    }
    if (upload_f32(g, s, &p, &m->transform, e)) return -1;
    h->transform = p;
    return 0;
}

static double weight_bytes(const armo_model *m) {
    double b = 2.0 * (double)armo_model_param_count(m);
    return b; /* bf16 estimate for the progress line (the head goes as f32) */
}

/* Rank g->rank's column shard of w (tp_split.h), through a host copy. */
static int upload_columns(engine *g, stager *s, uint16_t **dst, const armo_weight *w,
                          armo_err *e) {
    const size_t bytes = (size_t)(w->rows * w->cols / g->tp) * armo_dtype_size(w->dtype);
    void *host = malloc(bytes ? bytes : 1);
    if (!host) return armo_err_set(e, "out of host memory for a shard of %s", w->name);
    const armo_weight shard = armo_tp_column_shard(w, g->rank, g->tp, host);
    const armo_weight *one[1] = {&shard};
    /* stage() copies into its pinned buffers before it returns */
    int rc = upload_cat(g, s, dst, one, 1, e);
    free(host);
    return rc;
}

/* One decoder layer's weights: whole, or (tp > 1) rank g->rank's shards:
 * q/k/v and gate/up rows, o_proj and down_proj columns (tp_split.h). */
static int upload_layer(engine *g, stager *s, const armo_layer_weights *L, dev_layer *D,
                        armo_err *e) {
    const int tp = g->tp > 1 ? g->tp : 1, r = g->tp > 1 ? g->rank : 0;
    const armo_weight wq = armo_tp_rows(&L->wq, r, tp), wk = armo_tp_rows(&L->wk, r, tp),
                      wv = armo_tp_rows(&L->wv, r, tp), wg = armo_tp_rows(&L->wgate, r, tp),
                      wu = armo_tp_rows(&L->wup, r, tp);
    const armo_weight *qkv[3] = {&wq, &wk, &wv}, *gu[2] = {&wg, &wu};
    const armo_weight *an[1] = {&L->attn_norm}, *mn[1] = {&L->mlp_norm};
    const armo_weight *wo[1] = {&L->wo}, *wd[1] = {&L->wdown};
    if (upload_cat(g, s, &D->attn_norm, an, 1, e) || upload_cat(g, s, &D->wqkv, qkv, 3, e) ||
        upload_cat(g, s, &D->mlp_norm, mn, 1, e) || upload_cat(g, s, &D->wgu, gu, 2, e))
        return -1;
    if (tp == 1)
        return upload_cat(g, s, &D->wo, wo, 1, e) || upload_cat(g, s, &D->wdown, wd, 1, e) ? -1
                                                                                           : 0;
    return upload_columns(g, s, &D->wo, &L->wo, e) || upload_columns(g, s, &D->wdown, &L->wdown, e)
               ? -1
               : 0;
}

static int upload_weights(engine *g, const armo_model *m, int quiet, armo_err *e) {
    const armo_config *c = &m->cfg;
    stager s;
    if (stage_init(&s, g->stream, weight_bytes(m), quiet, e)) {
        stage_free(&s);
        return -1;
    }
    int rc = 0;
    const armo_weight *one[1];
#define UP1(dst, w) (one[0] = (w), upload_cat(g, &s, (dst), one, 1, e))
    rc = UP1(&g->embed, &m->embed);
    g->layers = calloc((size_t)c->num_layers, sizeof *g->layers);
    if (!g->layers) rc = armo_err_set(e, "out of host memory");
    for (int i = 0; !rc && i < c->num_layers; i++)
        rc = upload_layer(g, &s, &m->layers[i], &g->layers[i], e);
    if (!rc) rc = UP1(&g->final_norm, &m->final_norm);
#undef UP1
    if (!rc && c->arch == ARMO_ARCH_ARMORM) {
        rc = upload_head(g, &s, m, e);
    } else if (!rc) {
        rc = upload_f32(g, &s, &g->seqcls_w, &m->score, e);
    }
    if (!rc) {
        cudaError_t st = cudaStreamSynchronize(g->stream);
        if (st != cudaSuccess)
            rc = armo_err_set(e, "%s:%d: weight upload failed: %s", __FILE__, __LINE__,
                              cudaGetErrorString(st));
        stage_progress(&s, 1);
    }
    stage_free(&s);
    return rc ? -1 : 0;
}

/* ---- activations: sized for the batches actually sent ------------------------
 *
 * Nothing is allocated for activations at creation: the first batch
 * allocates buffers for itself (rounded up), and a larger batch later frees
 * them and allocates larger ones (between batches; the stream is idle), so
 * that a model with 131072 positions scoring 500-token records holds
 * activations for 500-token batches, not for its maximum length.  Sizes
 * come from device_memory.h, which armo inspect and armo score's fit check
 * use too. */

static void act_bind(engine *g) {
    void **a = g->act;
    g->x = a[ARMO_ACT_X], g->xn = a[ARMO_ACT_XN], g->qkv = a[ARMO_ACT_QKV];
    g->attn = a[ARMO_ACT_ATTN], g->o = a[ARMO_ACT_O], g->gu = a[ARMO_ACT_GU];
    g->act_swiglu = a[ARMO_ACT_SWIGLU];
    g->d_ids = a[ARMO_ACT_IDS], g->d_pos = a[ARMO_ACT_POS], g->d_cu = a[ARMO_ACT_CU];
    g->d_rows = a[ARMO_ACT_ROWS], g->d_prefix_of = a[ARMO_ACT_PREFIX_OF];
    g->h_rows_f32 = a[ARMO_ACT_HEAD_IN], g->rewards = a[ARMO_ACT_HEAD_OUT];
    g->scratch = a[ARMO_ACT_HEAD_SCRATCH];
    const armo_config *c = &g->cfg;
    const size_t S = (size_t)g->cap.seqs,
                 K = (size_t)(c->arch == ARMO_ARCH_ARMORM ? c->num_objectives : c->num_labels);
    g->out_floats = S * (3 * K + 1);
    g->gating = g->rewards ? g->rewards + S * K : NULL;
    g->coefs = g->rewards ? g->gating + S * K : NULL;
    g->score = g->rewards ? g->coefs + S * K : NULL;
}

/* Drops every captured graph (they hold the activation buffers' addresses). */
static void graphs_drop(engine *g) {
    for (int i = 0; i < g->ngraphs; i++) cudaGraphExecDestroy(g->graphs[i].exec);
    g->ngraphs = 0;
}

/* Frees every activation buffer and host mirror (the stream must be idle). */
static void act_free(engine *g) {
    graphs_drop(g);
    for (int i = 0; i < ARMO_ACT_COUNT; i++) {
        if (g->act[i]) cudaFree(g->act[i]);
        g->act[i] = NULL;
    }
    int32_t **pinned[] = {&g->p_ids, &g->p_pos, &g->p_cu, &g->p_rows, &g->p_prefix_of};
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        if (*pinned[i]) cudaFreeHost(*pinned[i]);
        *pinned[i] = NULL;
    }
    if (g->p_out) cudaFreeHost(g->p_out);
    g->p_out = NULL;
    free(g->head_seg);
    g->head_seg = NULL;
    g->act_bytes = 0;
    g->cap = (armo_batch_shape){0, 0, 0};
    act_bind(g);
}

static int pinned(void *p, size_t bytes, armo_err *e) {
    ARMO_CUDA_TRY(e, cudaMallocHost((void **)p, bytes ? bytes : 16));
    return 0;
}

/* Allocates the buffers of shape s (nothing held before: act_free first). */
static int act_alloc(engine *g, armo_batch_shape s, armo_err *e) {
    for (int b = 0; b < ARMO_ACT_COUNT; b++) {
        const char *name;
        const size_t bytes = armo_dev_activation_buffer(&g->cfg, s, (armo_act_buffer)b, &name);
        if (!bytes) continue;
        const cudaError_t st = cudaMalloc(&g->act[b], bytes);
        if (st != cudaSuccess) {
            g->act[b] = NULL;
            return armo_err_set(e, "cudaMalloc of %.1f MiB (%zu bytes) for the activations' %s "
                                   "failed: %s", (double)bytes / 1048576.0, bytes, name,
                                cudaGetErrorString(st));
        }
        g->act_bytes += bytes;
    }
    g->cap = s;
    act_bind(g);
    const size_t T = (size_t)s.tokens, S = (size_t)s.seqs, E = (size_t)s.exp_rows;
    if (pinned(&g->p_ids, T * 4, e) || pinned(&g->p_pos, T * 4, e) ||
        pinned(&g->p_cu, (S + 1) * 4, e) || pinned(&g->p_rows, 2 * S * 4, e) ||
        pinned(&g->p_out, g->out_floats * 4, e))
        return -1;
    if (E && pinned(&g->p_prefix_of, S * 4, e)) return -1;
    g->head_seg = malloc(S * sizeof *g->head_seg);
    if (!g->head_seg) return armo_err_set(e, "out of host memory");
    return 0;
}

/* cur grown to hold need: rounded up to quantum, at least 1.5 x cur (so
 * that slowly growing batches reallocate a few times, not every time), at
 * most limit. */
static int64_t grow_to(int64_t cur, int64_t need, int64_t quantum, int64_t limit) {
    if (need <= cur) return cur;
    int64_t t = (need + quantum - 1) / quantum * quantum;
    if (t < cur + cur / 2) t = cur + cur / 2;
    if (t > limit) t = limit > need ? limit : need;
    return t;
}

/* *limit (0: none) lowered to v when v is a positive, smaller limit. */
static void lower_limit(int64_t *limit, int64_t v) {
    if (v > 0 && (*limit == 0 || v < *limit)) *limit = v;
}

/* Makes the buffers hold a batch of n tokens in nseq sequences (n_exp
 * expanded rows; 0: unshared).  Checks the device's free memory first: a
 * batch that cannot be held fails with the numbers and the buffers stay as
 * they were.  Either way (too little free memory, or the allocation refused
 * after all) *limit (backend.h: max_batch_tokens_now) is lowered to the
 * batch size that should fit from now on (what the free memory holds; the
 * buffers held before; half the batch), below n, and the scheduler re-packs
 * its batches under it; a sequence that alone does not fit is a per-record
 * error with the numbers. */
static int ensure_capacity(engine *g, int64_t n, int nseq, int64_t n_exp, int64_t *limit,
                           armo_err *e) {
    const armo_batch_shape cur = g->cap;
    if (n <= cur.tokens && nseq <= cur.seqs && n_exp <= cur.exp_rows) return 0;
    armo_batch_shape want = {grow_to(cur.tokens, n, 256, g->max_tokens),
                             grow_to(cur.seqs, nseq, 16, g->max_seqs),
                             grow_to(cur.exp_rows, n_exp, 256, 2 * g->max_tokens)};
    size_t free_b = 0, total_b = 0;
    ARMO_CUDA_TRY(e, cudaMemGetInfo(&free_b, &total_b));
    /* what this backend holds is freed first; keep a reserve for the runtime */
    const size_t reserve = ARMO_DEV_WORKSPACE_BYTES - ARMO_DEV_GEMM_WORKSPACE_BYTES;
    const size_t avail = free_b + g->act_bytes > reserve ? free_b + g->act_bytes - reserve : 0;
    size_t need = armo_dev_activation_bytes(&g->cfg, want);
    if (need > avail) { /* no room to grow ahead: exactly this batch */
        want = (armo_batch_shape){n, nseq, n_exp};
        need = armo_dev_activation_bytes(&g->cfg, want);
    }
    if (need > avail) {
        char b1[32], b2[32], b3[32], b4[32], b5[32];
        const int64_t fit =
            armo_dev_max_tokens(&g->cfg, avail, g->max_seqs, n_exp > 0, g->max_tokens);
        lower_limit(limit, fit < n ? fit : 0);
        return armo_err_set(e, "a batch of %lld tokens (%d sequence%s%s) needs %s of activations "
                               "on the GPU, more than the %s available (%s free + %s this "
                               "backend holds, less a %s reserve): batches of up to %lld tokens "
                               "fit (lower --max-batch-tokens or --max-length, or use --truncate "
                               "left)",
                            (long long)n, nseq, nseq == 1 ? "" : "s",
                            n_exp > 0 ? ", prefix-shared" : "",
                            armo_dev_human((double)need, b1, sizeof b1),
                            armo_dev_human((double)avail, b2, sizeof b2),
                            armo_dev_human((double)free_b, b3, sizeof b3),
                            armo_dev_human((double)g->act_bytes, b4, sizeof b4),
                            armo_dev_human((double)reserve, b5, sizeof b5), (long long)fit);
    }
    ARMO_CUDA_TRY(e, cudaStreamSynchronize(g->stream));
    act_free(g);
    if (act_alloc(g, want, e) == 0) {
        g->grows++;
        return 0;
    }
    /* the device refused after all: back to the buffers held before, and
     * batches no larger than them (or than half this one) from now on */
    act_free(g);
    armo_err keep;
    if (cur.tokens > 0 && act_alloc(g, cur, &keep)) act_free(g);
    const int64_t held = g->cap.tokens < n ? g->cap.tokens : 0;
    lower_limit(limit, held > 0 ? held : n / 2);
    return armo_err_prefix(e, "growing the activation buffers from %lld to %lld tokens",
                           (long long)cur.tokens, (long long)want.tokens);
}

/* ---- forward -------------------------------------------------------------------- */

/* RoPE and attention of one layer, both in place on the fused [n, q | k | v]
 * QKV output (row stride (nh + 2 nkv) hd); with prefix sharing the
 * continuations' rows attend their prefix's keys too (d_prefix_of). */
static int attention(engine *g, int n, int nseq, int max_len, const armo_expansion *x,
                     armo_err *e) {
    const armo_config *c = &g->cfg;
    const int nh = c->num_heads, nkv = c->num_kv_heads, hd = c->head_dim;
    const int qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
    cudaStream_t st = g->stream;
    KERNEL(g, e, armo_rope_strided_bf16, (g->qkv, stride, g->qkv + qd, stride, n, nh, nkv, hd,
                                          g->d_pos, g->inv_freq, st));
    const armo_attn_args a = {.out = g->attn,
                              .q = g->qkv,
                              .k = g->qkv + qd,
                              .v = g->qkv + qd + kvd,
                              .q_stride = stride,
                              .kv_stride = stride,
                              .cu_seqlens = g->d_cu,
                              .prefix_of = x->identity ? NULL : g->d_prefix_of,
                              .nseq = nseq,
                              .n = n,
                              .max_seqlen = max_len,
                              .nh = nh,
                              .nkv = nkv,
                              .hd = hd};
    KERNEL(g, e, armo_attention_ex_bf16, (&a, ARMO_ATTN_AUTO, st));
    return 0;
}

static int forward(engine *g, int n, int nseq, int max_len, int m, const armo_expansion *x,
                   armo_err *e) {
    const armo_config *c = &g->cfg;
    const int H = c->hidden_size, nh = c->num_heads, nkv = c->num_kv_heads, hd = c->head_dim,
              I = c->intermediate_size, qd = nh * hd, qkvd = (nh + 2 * nkv) * hd;
    const float eps = (float)c->rms_norm_eps;
    cudaStream_t st = g->stream;
    nvtxRangePushA("armo.embed");
    KERNEL(g, e, armo_embed_bf16, (g->x, g->embed, g->d_ids, n, H, c->vocab_size, st));
    KERNEL(g, e, armo_rmsnorm_bf16, (g->xn, g->x, g->layers[0].attn_norm, n, H, eps, st));
    nvtxRangePop();
    PHASE_MARK(g, 2);
    for (int l = 0; l < c->num_layers; l++) {
        const dev_layer *D = &g->layers[l];
        int last = l == c->num_layers - 1;
        char range[32]; /* NVTX range per layer (unbalanced pops on error: see cuda_score) */
        snprintf(range, sizeof range, "armo.layer %d", l);
        nvtxRangePushA(range);
        g->layer = l;
        GEMM(g, e, "qkv", g->qkv, g->xn, D->wqkv, n, H, qkvd);
        if (attention(g, n, nseq, max_len, x, e)) return -1;
        int rows = n;
        /* residual, normed rows, attention rows, o-projection output */
        uint16_t *res = g->x, *nrm = g->xn, *att = g->attn, *proj = g->o;
        if (last) { /* only the head's rows from here on: gather them first,
                     * attention rows into o and residual rows into xn (both
                     * free now), in one launch */
            KERNEL(g, e, armo_gather_rows2_bf16, (g->o, g->attn, qd, g->xn, g->x, H, g->d_rows, m,
                                                  st));
            att = g->o, res = g->xn, proj = nrm = g->x;
            rows = m;
        }
        GEMM(g, e, "o", proj, att, D->wo, rows, qd, H);
        ALLREDUCE(g, e, "o_proj", proj, rows);
        KERNEL(g, e, armo_add_rmsnorm_bf16, (res, proj, nrm, D->mlp_norm, rows, H, eps, st));
        GEMM(g, e, "gate|up", g->gu, nrm, D->wgu, rows, H, 2 * I);
        KERNEL(g, e, armo_swiglu_bf16, (g->act_swiglu, g->gu, rows, I, st));
        GEMM(g, e, "down", g->o, g->act_swiglu, D->wdown, rows, I, H);
        ALLREDUCE(g, e, "down_proj", g->o, rows);
        if (last) /* the final norm writes the head's fp32 input rows */
            KERNEL(g, e, armo_add_rmsnorm_f32_bf16,
                   (res, g->o, g->h_rows_f32, g->final_norm, rows, H, eps, st));
        else
            KERNEL(g, e, armo_add_rmsnorm_bf16,
                   (res, g->o, g->xn, g->layers[l + 1].attn_norm, rows, H, eps, st));
        nvtxRangePop();
    }
    g->layer = -1;
    PHASE_MARK(g, 3);
    nvtxRangePushA("armo.head");
    /* h_rows_f32 rows [0, nhead) are h_last, [nhead, 2 nhead) h_prompt (ArmoRM) */
    int nhead = c->arch == ARMO_ARCH_ARMORM ? m / 2 : m;
    if (c->arch == ARMO_ARCH_ARMORM) {
        KERNEL(g, e, armo_gated_head_f32, (&g->head, g->h_rows_f32,
                                             g->h_rows_f32 + (size_t)nhead * H, nhead, g->rewards,
                                             g->gating, g->coefs, g->score, g->scratch, st));
    } else {
        KERNEL(g, e, armo_seqcls_head_f32, (g->seqcls_w, c->num_labels, H, g->h_rows_f32, nhead,
                                              g->rewards, st));
    }
    nvtxRangePop();
    PHASE_MARK(g, 4);
    return 0;
}

/* ---- CUDA graphs for small batches (ARMO_CUDA_GRAPHS=1) ---------------------
 *
 * A small batch pays a launch per kernel and GEMM, about 9 per layer.  With
 * graphs on, a batch of at most GRAPH_MAX_TOKENS tokens is padded to its
 * shape bucket (tokens to a power of two, at least 64; sequences to a power
 * of two above the count, the first extra one holding the padding tokens
 * and the rest empty; head rows to a power of two, the extra ones reading
 * row 0), and the whole forward pass is captured once per bucket and then
 * replayed with cudaGraphLaunch: the batch's own ids, positions, cu_seqlens
 * and head rows are uploaded into the same buffers before each launch.  The
 * padding sequence is a sequence of its own, so no real row sees it; its
 * head rows are never read.  Graphs hold buffer addresses: they are dropped
 * whenever the activation buffers are reallocated.  Off with timing or
 * ARMO_CUDA_SYNC=1 (a capture cannot synchronise). */

static int pow2_at_least(int64_t v, int64_t lo) {
    int64_t p = lo;
    while (p < v) p *= 2;
    return (int)p;
}

/* The bucket of a batch (1) or 0 when it runs without a graph. */
static int graph_bucket(const engine *g, int64_t n, int nseq, int nhead, int64_t *nb, int *nseqb,
                        int *nheadb) {
    /* not under tensor parallel: the all-reduces are not captured (untested) */
    if (!g->use_graphs || g->timing || g->sync_each || g->tp > 1 || n > GRAPH_MAX_TOKENS)
        return 0;
    *nb = pow2_at_least(n, 64);
    *nseqb = pow2_at_least(nseq + 1, 2);
    *nheadb = pow2_at_least(nhead, 1);
    return *nb <= g->max_tokens && *nseqb <= g->max_seqs;
}

/* The forward pass of bucket (n, nseq, m, shared): replayed from its graph,
 * captured first if this bucket has none yet. */
static int forward_graph(engine *g, int n, int nseq, int m, const armo_expansion *x,
                         armo_err *e) {
    const int shared = !x->identity;
    graph_entry *ge = NULL;
    for (int i = 0; i < g->ngraphs; i++)
        if (g->graphs[i].n == n && g->graphs[i].nseq == nseq && g->graphs[i].m == m &&
            g->graphs[i].shared == shared)
            ge = &g->graphs[i];
    if (!ge) {
        if (g->ngraphs == GRAPH_CACHE) { /* the oldest goes */
            ARMO_CUDA_TRY(e, cudaGraphExecDestroy(g->graphs[0].exec));
            memmove(&g->graphs[0], &g->graphs[1], (GRAPH_CACHE - 1) * sizeof g->graphs[0]);
            g->ngraphs--;
        }
        cudaGraph_t graph = NULL;
        ARMO_CUDA_TRY(e, cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal));
        /* max_len only bounds-checks (>= 0): n covers every sequence */
        const int frc = forward(g, n, nseq, n, m, x, e);
        const cudaError_t end = cudaStreamEndCapture(g->stream, &graph);
        if (frc) {
            if (end == cudaSuccess && graph) cudaGraphDestroy(graph);
            return armo_err_prefix(e, "capturing a CUDA graph (ARMO_CUDA_GRAPHS=1)");
        }
        ARMO_CUDA_TRY(e, end);
        cudaGraphExec_t exec = NULL;
        const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        ARMO_CUDA_TRY(e, inst);
        ge = &g->graphs[g->ngraphs++];
        *ge = (graph_entry){n, nseq, m, shared, exec};
        g->graph_captures++;
    }
    ARMO_CUDA_TRY(e, cudaGraphLaunch(ge->exec, g->stream));
    g->graph_launches++;
    return 0;
}

int64_t armo_cuda_graph_stats(const armo_backend *b, int64_t *captures) {
    const engine *g = b->impl;
    if (captures) *captures = g->graph_captures;
    return g->graph_launches;
}

/* armo embed's hook (backend.h hidden_out): head h's input rows from the
 * downloaded h_rows (h_last rows, then ArmoRM's h_prompt rows). */
static void put_hidden(float *dst, const float *h_rows, int h, int nhead, int H, int armorm) {
    memcpy(dst, h_rows + (size_t)h * H, (size_t)H * 4);
    if (armorm)
        memcpy(dst + H, h_rows + (size_t)(nhead + h) * H, (size_t)H * 4);
    else
        memset(dst + H, 0, (size_t)H * 4);
}

/* bench/profiling hook: the batch's phase times (its events, recorded and
 * synchronised) added to g->phase. */
static int add_phase_times(engine *g, armo_err *e) {
    float ms[5];
    for (int i = 0; i < 5; i++)
        ARMO_CUDA_TRY(e, cudaEventElapsedTime(&ms[i], g->phase_ev[i], g->phase_ev[i + 1]));
    g->phase.upload_ms += ms[0];
    g->phase.embed_ms += ms[1];
    g->phase.layers_ms += ms[2];
    g->phase.head_ms += ms[3];
    g->phase.download_ms += ms[4];
    g->phase.calls++;
    return 0;
}

static int cuda_score_batch(armo_backend *b, const int32_t *ids, const int32_t *cu, int nseq,
                            const int32_t *gpos, const int32_t *prefix_of, armo_result *out,
                            armo_err *e) {
    engine *g = b->impl;
    const armo_config *c = &g->cfg;
    int armorm = c->arch == ARMO_ARCH_ARMORM;
    /* the ceiling first: a batch larger than the caller said it would send
     * is refused as such, whatever else is wrong with it */
    const int64_t n = nseq > 0 && cu ? cu[nseq] : 0;
    if (n > g->max_tokens || nseq > g->max_seqs)
        return armo_err_set(e,
                            "batch of %lld tokens / %d sequences exceeds the CUDA backend's "
                            "limit (%lld tokens / %d sequences): raise --max-batch-tokens",
                            (long long)n, nseq, (long long)g->max_tokens, g->max_seqs);
    armo_expansion x;
    if (g->failed[0])
        return armo_err_set(e, "the CUDA device failed on an earlier batch (%s); its context "
                               "takes no more work: restart armo", g->failed);
    if (armo_batch_check(c, ids, cu, nseq, gpos, prefix_of, &x, e)) return -1;
    if (nseq == 0) return 0;
    int rc = -1;
    float *h_rows = NULL; /* the head's input rows, downloaded for the finite check */
    /* no cap on x.n_exp: attention reads a shared prefix's keys in place
     * (prefix_of), so a shared batch holds its tokens, never expanded rows */
    /* the current device is per host thread: a caller may have created or
     * used another backend on another device since */
    ARMO_CUDA_TRY_GOTO(e, done, cudaSetDevice(g->device));
    int nhead = 0;
    for (int s = 0; s < nseq; s++) nhead += !x.is_prefix[s];
    /* the shape the device runs: the batch's own, or its graph bucket's
     * (padded: see graph_bucket) */
    int64_t nb = n;
    int nseqb = nseq, nheadb = nhead;
    const int graphed = graph_bucket(g, n, nseq, nhead, &nb, &nseqb, &nheadb);
    if (!graphed) nb = n, nseqb = nseq, nheadb = nhead;
    /* sharing needs prefix_of only (S entries): any E > 0 says so */
    if (ensure_capacity(g, nb, nseqb, x.identity ? 0 : 1, &b->max_batch_tokens_now, e))
        goto done;
    nhead = 0;
    for (int s = 0; s < nseq; s++)
        if (!x.is_prefix[s]) g->head_seg[nhead++] = s;
    for (int h = 0; h < nheadb; h++) {
        const int real = h < nhead;
        const int s = real ? g->head_seg[h] : 0;
        g->p_rows[h] = real ? cu[s + 1] - 1 : 0;
        if (armorm) g->p_rows[nheadb + h] = real ? armo_expansion_row(cu, prefix_of, s, gpos[s]) : 0;
    }
    memcpy(g->p_ids, ids, (size_t)n * 4);
    memcpy(g->p_pos, x.pos, (size_t)n * 4);
    memcpy(g->p_cu, cu, (size_t)(nseq + 1) * 4);
    for (int64_t t = n; t < nb; t++) g->p_ids[t] = 0, g->p_pos[t] = (int32_t)(t - n);
    for (int s = nseq + 1; s <= nseqb; s++) g->p_cu[s] = (int32_t)nb;
    int m = armorm ? 2 * nheadb : nheadb;
    cudaStream_t st = g->stream;
    if (g->timing) ARMO_CUDA_TRY_GOTO(e, done, cudaEventRecord(g->phase_ev[0], g->stream));
    nvtxRangePushA("armo.upload");
    ARMO_CUDA_TRY_GOTO(
        e, done, cudaMemcpyAsync(g->d_ids, g->p_ids, (size_t)nb * 4, cudaMemcpyHostToDevice, st));
    ARMO_CUDA_TRY_GOTO(
        e, done, cudaMemcpyAsync(g->d_pos, g->p_pos, (size_t)nb * 4, cudaMemcpyHostToDevice, st));
    ARMO_CUDA_TRY_GOTO(
        e, done,
        cudaMemcpyAsync(g->d_cu, g->p_cu, (size_t)(nseqb + 1) * 4, cudaMemcpyHostToDevice, st));
    ARMO_CUDA_TRY_GOTO(
        e, done, cudaMemcpyAsync(g->d_rows, g->p_rows, (size_t)m * 4, cudaMemcpyHostToDevice, st));
    if (!x.identity) { /* attention's second key range per sequence */
        memcpy(g->p_prefix_of, prefix_of, (size_t)nseq * 4);
        for (int s = nseq; s < nseqb; s++) g->p_prefix_of[s] = -1;
        ARMO_CUDA_TRY_GOTO(e, done,
                           cudaMemcpyAsync(g->d_prefix_of, g->p_prefix_of, (size_t)nseqb * 4,
                                           cudaMemcpyHostToDevice, st));
    }
    nvtxRangePop();
    if (g->timing) ARMO_CUDA_TRY_GOTO(e, done, cudaEventRecord(g->phase_ev[1], g->stream));
    if (graphed ? forward_graph(g, (int)nb, nseqb, m, &x, e)
                : forward(g, (int)n, nseq, x.max_len_exp, m, &x, e))
        goto done;
    nvtxRangePushA("armo.download");
    ARMO_CUDA_TRY_GOTO(
        e, done,
        cudaMemcpyAsync(g->p_out, g->rewards, g->out_floats * 4, cudaMemcpyDeviceToHost, st));
    /* the head's fp32 input rows too (m rows of H: h_last, then ArmoRM's
     * h_prompt), so that a non-finite hidden state is named as such
     * (backend.h, armo_result_check_finite): 2 rows per sequence, small
     * next to the batch */
    const size_t h_rows_bytes = (size_t)m * (size_t)c->hidden_size * 4;
    h_rows = malloc(h_rows_bytes ? h_rows_bytes : 4);
    if (!h_rows) {
        armo_err_set(e, "out of host memory for the head's input rows (%zu bytes)", h_rows_bytes);
        goto done;
    }
    ARMO_CUDA_TRY_GOTO(
        e, done, cudaMemcpyAsync(h_rows, g->h_rows_f32, h_rows_bytes, cudaMemcpyDeviceToHost, st));
    if (g->timing) ARMO_CUDA_TRY_GOTO(e, done, cudaEventRecord(g->phase_ev[5], g->stream));
    const cudaError_t ran = cudaStreamSynchronize(st);
    if (ran != cudaSuccess) {
        mark_failed(g, ran);
        armo_err_set(e, "a kernel or copy of this batch (%d tokens) failed while running: %s "
                        "(rerun with ARMO_CUDA_SYNC=1 to name the kernel and layer)", (int)n,
                     cudaGetErrorString(ran));
        goto done;
    }
    nvtxRangePop();
    if (g->timing && add_phase_times(g, e)) goto done;
    /* rewards, gating, coefs: each [cap.seqs, K] blocks; score [cap.seqs] */
    int K = armorm ? c->num_objectives : c->num_labels;
    const size_t S = (size_t)g->cap.seqs;
    const float *rw = g->p_out, *gt = rw + S * K, *cf = gt + S * K, *sc = cf + S * K;
    for (int s = 0; s < nseq; s++) memset(&out[s], 0, sizeof out[s]);
    for (int h = 0; h < nhead; h++) {
        int s = g->head_seg[h];
        armo_result *r = &out[s];
        r->n_tokens = x.full_len[s];
        r->last_pos = r->n_tokens - 1;
        if (armorm) {
            r->gating_pos = gpos[s];
            r->n_objectives = K;
            r->score = sc[h];
            memcpy(r->rewards, rw + (size_t)h * K, (size_t)K * 4);
            memcpy(r->gating, gt + (size_t)h * K, (size_t)K * 4);
            memcpy(r->coefficients, cf + (size_t)h * K, (size_t)K * 4);
        } else {
            r->gating_pos = -1;
            r->n_labels = K;
            memcpy(r->labels, rw + (size_t)h * K, (size_t)K * 4);
            r->score = r->labels[0];
        }
        const int H = c->hidden_size;
        armo_result_check_finite(r, h_rows + (size_t)h * H,
                                 armorm ? h_rows + (size_t)(nheadb + h) * H : NULL, H);
        if (b->hidden_out && b->hidden_out[s])
            put_hidden(b->hidden_out[s], h_rows, h, nheadb, H, armorm);
    }
    rc = 0;
done:
    /* a batch that failed half-way may have copies from the pinned mirrors
     * (and kernels) still queued: drain the stream before the next batch
     * refills those buffers (its status is already reported) */
    if (rc) (void)cudaStreamSynchronize(g->stream);
    free(h_rows);
    armo_expansion_free(&x);
    return rc;
}

/* bench/profiling hook: an NVTX range around each score call.  A failed
 * call can leave inner ranges open; popping back to this range's level
 * keeps the thread's range stack balanced (with no tool attached push and
 * pop return a negative value and cost nothing). */
static int cuda_score(armo_backend *b, const int32_t *ids, const int32_t *cu, int nseq,
                      const int32_t *gpos, const int32_t *prefix_of, armo_result *out,
                      armo_err *e) {
    char range[64];
    snprintf(range, sizeof range, "armo.score %d seqs %d tokens", nseq, nseq > 0 ? cu[nseq] : 0);
    int level = nvtxRangePushA(range);
    int rc = cuda_score_batch(b, ids, cu, nseq, gpos, prefix_of, out, e);
    /* a sticky failure: the scheduler moves this worker's batches elsewhere */
    const engine *g = b->impl;
    if (g->failed[0]) b->lost = g->failed;
    if (level < 0) /* no tool, or one that does not track levels */
        nvtxRangePop();
    else
        while (nvtxRangePop() > level) {
        }
    return rc;
}

static void cuda_destroy(armo_backend *b) {
    if (!b) return;
    engine *g = b->impl;
    if (g) {
        if (g->stream) { /* created on g->device, which may not be current any more */
            cudaSetDevice(g->device);
            cudaStreamSynchronize(g->stream);
        }
        act_free(g);
        for (int i = 0; i < g->nallocs; i++) cudaFree(g->allocs[i]);
        free(g->allocs);
        if (g->gemm) armo_gemm_destroy(g->gemm);
        for (int i = 0; i < 6; i++)
            if (g->phase_ev[i]) cudaEventDestroy(g->phase_ev[i]);
        if (g->stream) cudaStreamDestroy(g->stream);
        if (g->own_nccl) armo_nccl_group_destroy(g->nccl, g->failed[0] != 0);
        free(g->layers);
        free(g);
    }
    free(b);
}

int armo_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" status */
        return 0;
    }
    return n;
}

static int create(armo_backend *b, engine *g, const armo_model *m, const armo_backend_opts *o,
                  armo_err *e) {
    const armo_config *c = &m->cfg;
    if (g->tp > 1 && armo_tp_check(c, g->tp, e)) return -1;
    if (c->head_dim != 64 && c->head_dim != 128)
        return armo_err_set(e, "the CUDA backend supports head_dim 64 and 128 (this model: %d); "
                               "use --device cpu",
                            c->head_dim);
    if (c->hidden_size % 8 || c->intermediate_size % 8)
        return armo_err_set(e, "the CUDA backend needs hidden and intermediate sizes that are "
                               "multiples of 8");
    g->cfg = *c;
    if (g->tp > 1) { /* the rank's share: its heads and intermediate columns */
        g->cfg.num_heads /= g->tp;
        g->cfg.num_kv_heads /= g->tp;
        g->cfg.intermediate_size /= g->tp;
        if (g->cfg.intermediate_size % 8)
            return armo_err_set(e, "--tp %d: the CUDA backend needs a per-rank intermediate "
                                   "size that is a multiple of 8 (%d)",
                                g->tp, g->cfg.intermediate_size);
    }
    /* the head's sizes before any upload: a bad head fails in a second */
    if (c->arch == ARMO_ARCH_ARMORM && armo_model_head_params(m, &g->head, e)) return -1;
    const char *dev = getenv("ARMO_CUDA_DEVICE");
    g->device = o && o->has_device ? o->device : dev ? atoi(dev) : 0;
    ARMO_CUDA_TRY(e, cudaSetDevice(g->device));
    struct cudaDeviceProp prop;
    ARMO_CUDA_TRY(e, cudaGetDeviceProperties(&prop, g->device));
    if (g->tp > 1)
        snprintf(b->device, sizeof b->device, "%.80s (device %d, %.0f GiB, TP rank %d of %d)",
                 prop.name, g->device, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
                 g->rank, g->tp);
    else
        snprintf(b->device, sizeof b->device, "%.96s (device %d, %.0f GiB)", prop.name, g->device,
                 (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    ARMO_CUDA_TRY(e, cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    const char *sync = getenv("ARMO_CUDA_SYNC");
    g->sync_each = sync && *sync && strcmp(sync, "0") != 0;
    const char *graphs = getenv("ARMO_CUDA_GRAPHS");
    g->use_graphs = graphs && *graphs && strcmp(graphs, "0") != 0;
    g->layer = -1;
    if (armo_gemm_create(&g->gemm, ARMO_DEV_GEMM_WORKSPACE_BYTES, e)) return -1;
    /* a ceiling, not an allocation: activations come with the first batch */
    g->max_tokens = o && o->max_batch_tokens > 0 ? o->max_batch_tokens
                                                 : ARMO_DEFAULT_BATCH_TOKENS_CUDA;
    g->max_seqs = o && o->max_seqs > 0 ? o->max_seqs : ARMO_DEFAULT_MAX_SEQS;
    /* no cap on a shared batch's expanded rows (backend.h): shared prefixes
     * are attended in place, so a shared batch holds only its tokens */
    b->max_expanded_rows = 0;
    if (upload_weights(g, m, o ? o->quiet : 0, e)) return -1;
    float inv[1024];
    armo_rope_inv_freq(c, inv);
    if (dalloc(g, (void **)&g->inv_freq, (size_t)(c->head_dim / 2) * 4, "rope", e)) return -1;
    ARMO_CUDA_TRY(e, cudaMemcpyAsync(g->inv_freq, inv, (size_t)(c->head_dim / 2) * 4,
                                     cudaMemcpyHostToDevice, g->stream));
    /* inv lives on this stack frame */
    ARMO_CUDA_TRY(e, cudaStreamSynchronize(g->stream));
    return 0;
}

/* ---- bench/profiling hook: per-phase timing (backend.h's set_timing / get_timing) ---- */

static int set_timing(armo_backend *b, int on, armo_err *e) {
    engine *g = b->impl;
    ARMO_CUDA_TRY(e, cudaSetDevice(g->device));
    for (int i = 0; on && i < 6; i++)
        if (!g->phase_ev[i]) ARMO_CUDA_TRY(e, cudaEventCreate(&g->phase_ev[i]));
    memset(&g->phase, 0, sizeof g->phase);
    g->timing = on ? 1 : 0;
    return 0;
}

static void get_timing(const armo_backend *b, armo_phase_times *out) {
    *out = ((const engine *)b->impl)->phase;
}

static void get_memory(const armo_backend *b, armo_backend_memory *out) {
    const engine *g = b->impl;
    *out = (armo_backend_memory){.weight_bytes = g->weight_bytes,
                                 .activation_bytes = g->act_bytes,
                                 .tokens = g->cap.tokens,
                                 .seqs = g->cap.seqs,
                                 .exp_rows = g->cap.exp_rows,
                                 .grows = g->grows};
}

armo_backend *armo_cuda_backend_create_rank(const armo_model *m, const armo_backend_opts *o,
                                            int tp, int rank, armo_nccl_group *nccl,
                                            armo_err *e) {
    armo_backend *b = calloc(1, sizeof *b);
    engine *g = calloc(1, sizeof *g);
    if (!b || !g) {
        free(b);
        free(g);
        armo_err_set(e, "out of host memory");
        return NULL;
    }
    b->impl = g;
    g->tp = tp > 1 ? tp : 1;
    g->rank = tp > 1 ? rank : 0;
    g->nccl = nccl;
    b->name = "cuda";
    b->score = cuda_score;
    b->destroy = cuda_destroy;
    b->set_timing = set_timing;
    b->get_timing = get_timing;
    b->get_memory = get_memory;
    b->graph_stats = armo_cuda_graph_stats;
    b->returns_hidden = 1; /* armo embed: the head's input rows, bf16 activations in fp32 */
    if (create(b, g, m, o, e)) {
        cuda_destroy(b);
        return NULL;
    }
    return b;
}

int armo_cuda_tp_unique_id(unsigned char id[ARMO_TP_ID_BYTES], armo_err *e) {
    _Static_assert(ARMO_TP_ID_BYTES == ARMO_NCCL_ID_BYTES, "a TP group's id is NCCL's");
    return armo_nccl_unique_id(id, e);
}

armo_backend *armo_cuda_tp_peer_open(const armo_model *m, const armo_backend_opts *o,
                                     const unsigned char id[ARMO_TP_ID_BYTES], int tp, int rank,
                                     armo_err *e) {
    const char *env = getenv("ARMO_CUDA_DEVICE");
    const int dev = o && o->has_device ? o->device : env ? atoi(env) : 0;
    armo_nccl_group *nccl = armo_nccl_group_join(id, tp, rank, dev, e);
    if (!nccl) return NULL;
    armo_backend_opts ro = o ? *o : (armo_backend_opts){0};
    ro.has_device = 1;
    ro.device = dev;
    armo_backend *b = armo_cuda_backend_create_rank(m, &ro, tp, rank, nccl, e);
    if (!b) {
        armo_nccl_group_destroy(nccl, 1); /* the peers may be waiting in a collective */
        armo_err_prefix(e, "TP rank %d of %d (device %d)", rank, tp, dev);
        return NULL;
    }
    ((engine *)b->impl)->own_nccl = 1;
    return b;
}
