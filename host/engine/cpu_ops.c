/* cpu_ops.c — the CPU reference operators (see cpu_ops.h).
 *
 * Plain C11, fp32 math, written to be obviously correct first and reasonably
 * fast second: they are the oracle of every CUDA kernel and of the golden
 * tests, and they run tiny checkpoints end to end.  Shapes and conventions
 * follow Hugging Face transformers' Llama (rotate-half RoPE, the "llama3"
 * frequency rescaling, RMSNorm as x * rsqrt(mean(x^2) + eps) * w) and the
 * ArmoRM head of LlamaForRewardModelWithGating.
 *
 * Every result of cpu_matmul depends only on its own row and token (fixed
 * summation order), so the thread count never changes a bit of the output.
 * The operators are void (the header fixes that), so where scratch memory is
 * needed they either avoid the heap (attention recomputes scores instead of
 * storing them) or fall back to a slower path that needs none (matmul). */
#include "host/engine/cpu_ops.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights/dtype.h"

/* ---- dot product ---------------------------------------------------------
 * Four independent fp32 partial sums (lane q takes the elements j with
 * j % 4 == q) combined as (s0 + s1) + (s2 + s3): more accurate than one
 * serial sum, and it lets the compiler use SIMD without -ffast-math.  Every
 * dot product in this file, including each output of the matmul
 * micro-kernel, uses exactly this order, so results never depend on blocking
 * or threading. */
static inline float lanes_sum(const float s[4]) { return (s[0] + s[1]) + (s[2] + s[3]); }

static float dot_f32(const float *a, const float *b, int64_t len) {
    float s[4] = {0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 4 <= len; j += 4)
        for (int q = 0; q < 4; q++) s[q] += a[j + q] * b[j + q];
    for (int q = 0; j < len; j++, q++) s[q] += a[j] * b[j];
    return lanes_sum(s);
}

/* Micro-kernel: 2 tokens x 4 weight rows (8 outputs, one SIMD register of
 * partial sums each), each output summed exactly as dot_f32 sums it. */
static void dot_2x4(const float *x0, const float *x1, const float *w, int64_t cols, float *y0,
                    float *y1) {
    float s[2][4][4] = {{{0}}};
    const float *w0 = w, *w1 = w + cols, *w2 = w + 2 * cols, *w3 = w + 3 * cols;
    int64_t j = 0;
    for (; j + 4 <= cols; j += 4)
        for (int q = 0; q < 4; q++) {
            float a = x0[j + q], b = x1[j + q];
            s[0][0][q] += a * w0[j + q];
            s[0][1][q] += a * w1[j + q];
            s[0][2][q] += a * w2[j + q];
            s[0][3][q] += a * w3[j + q];
            s[1][0][q] += b * w0[j + q];
            s[1][1][q] += b * w1[j + q];
            s[1][2][q] += b * w2[j + q];
            s[1][3][q] += b * w3[j + q];
        }
    for (int q = 0; j < cols; j++, q++) {
        float a = x0[j], b = x1[j];
        s[0][0][q] += a * w0[j];
        s[0][1][q] += a * w1[j];
        s[0][2][q] += a * w2[j];
        s[0][3][q] += a * w3[j];
        s[1][0][q] += b * w0[j];
        s[1][1][q] += b * w1[j];
        s[1][2][q] += b * w2[j];
        s[1][3][q] += b * w3[j];
    }
    for (int r = 0; r < 4; r++) {
        y0[r] = lanes_sum(s[0][r]);
        y1[r] = lanes_sum(s[1][r]);
    }
}

static double dot_f64(const float *a, const float *b, int64_t len) {
    double s = 0.0;
    for (int64_t j = 0; j < len; j++) s += (double)a[j] * (double)b[j];
    return s;
}

static const void *weight_row(const armo_weight *w, int64_t r) {
    return (const char *)w->data + (size_t)r * (size_t)w->cols * armo_dtype_size(w->dtype);
}

/* Safetensors does not require tensor data to be aligned for its element
 * type (a BF16 tensor may start at an odd byte), so weights are read only
 * through these two helpers: aligned data is converted in place, misaligned
 * data is first copied into an aligned bounce buffer. */
static void convert_row(float *dst, const void *src, armo_dtype dt, size_t n) {
    const size_t es = armo_dtype_size(dt);
    if (es == 0 || (uintptr_t)src % es == 0) {
        armo_convert_to_f32(dst, src, dt, n);
        return;
    }
    union {
        uint32_t align;
        unsigned char bytes[4096];
    } bounce;
    const size_t per = sizeof bounce.bytes / es;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        memcpy(bounce.bytes, (const char *)src + i * es, m * es);
        armo_convert_to_f32(dst + i, bounce.bytes, dt, m);
    }
}

static float load_elem(const void *src, armo_dtype dt, size_t i) {
    if (dt == ARMO_DT_F32) {
        float f;
        memcpy(&f, (const char *)src + i * 4, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)src + i * 2, 2);
    return dt == ARMO_DT_BF16 ? armo_bf16_to_f32(h) : dt == ARMO_DT_F16 ? armo_f16_to_f32(h) : 0.0f;
}

/* The same on a typed weight row converted element by element (the matmul's
 * path when it cannot get scratch memory). */
static float dot_typed(const float *a, const void *w, armo_dtype dt, int64_t len) {
    float s[4] = {0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 4 <= len; j += 4)
        for (int q = 0; q < 4; q++) s[q] += a[j + q] * load_elem(w, dt, (size_t)(j + q));
    for (int q = 0; j < len; j++, q++) s[q] += a[j] * load_elem(w, dt, (size_t)j);
    return lanes_sum(s);
}

/* ---- embedding ---------------------------------------------------------- */

void cpu_embed(float *out, const armo_weight *embed, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        convert_row(out + (size_t)i * (size_t)embed->cols, weight_row(embed, ids[i]),
                    embed->dtype, (size_t)embed->cols);
}

/* ---- matmul -------------------------------------------------------------
 * Each worker owns a contiguous range of output rows.  It converts a block of
 * weight rows to fp32 once and reuses the block for all n tokens, so the
 * conversion costs O(rows*cols) however large the batch is; a 2-token x
 * 4-row micro-kernel then reuses every loaded x and w value several times. */

#define MATMUL_BLOCK_ROWS 8

typedef struct {
    float *y;
    const float *x;
    const armo_weight *w;
    int n;
    int64_t row_begin, row_end;
} matmul_job;

static void *matmul_worker(void *arg) {
    const matmul_job *job = arg;
    const armo_weight *w = job->w;
    const int64_t cols = w->cols, rows = w->rows;
    const int n = job->n;
    /* fp32 weights are used in place when aligned, else converted like the rest */
    const int is_f32 = w->dtype == ARMO_DT_F32 && (uintptr_t)w->data % sizeof(float) == 0;
    float *block = NULL;
    if (!is_f32) block = malloc((size_t)MATMUL_BLOCK_ROWS * (size_t)cols * sizeof(float));
    for (int64_t r0 = job->row_begin; r0 < job->row_end; r0 += MATMUL_BLOCK_ROWS) {
        int64_t nb = job->row_end - r0;
        if (nb > MATMUL_BLOCK_ROWS) nb = MATMUL_BLOCK_ROWS;
        if (!is_f32 && !block) { /* out of memory for the block: convert element-wise */
            for (int t = 0; t < n; t++)
                for (int64_t r = 0; r < nb; r++)
                    job->y[(size_t)t * rows + r0 + r] = dot_typed(
                        job->x + (size_t)t * cols, weight_row(w, r0 + r), w->dtype, cols);
            continue;
        }
        const float *wb = (const float *)weight_row(w, r0);
        if (!is_f32) {
            convert_row(block, weight_row(w, r0), w->dtype, (size_t)(nb * cols));
            wb = block;
        }
        int t = 0;
        for (; t + 2 <= n; t += 2) {
            const float *x0 = job->x + (size_t)t * cols, *x1 = x0 + cols;
            float *y0 = job->y + (size_t)t * rows + r0, *y1 = y0 + rows;
            int64_t r = 0;
            for (; r + 4 <= nb; r += 4) dot_2x4(x0, x1, wb + (size_t)r * cols, cols, y0 + r, y1 + r);
            for (; r < nb; r++) {
                y0[r] = dot_f32(x0, wb + (size_t)r * cols, cols);
                y1[r] = dot_f32(x1, wb + (size_t)r * cols, cols);
            }
        }
        for (; t < n; t++)
            for (int64_t r = 0; r < nb; r++)
                job->y[(size_t)t * rows + r0 + r] =
                    dot_f32(job->x + (size_t)t * cols, wb + (size_t)r * cols, cols);
    }
    free(block);
    return NULL;
}

#define MATMUL_MAX_THREADS 256

void cpu_matmul(float *y, const float *x, const armo_weight *w, int n, int nthreads) {
    const int64_t rows = w->rows;
    if (n <= 0 || rows <= 0) return;
    if (nthreads > MATMUL_MAX_THREADS) nthreads = MATMUL_MAX_THREADS;
    /* Threads only pay off when there is work to split: below ~1M multiply-adds
     * the create/join overhead dominates. */
    if ((double)n * (double)rows * (double)w->cols < 1e6) nthreads = 1;
    if (nthreads > rows) nthreads = (int)rows;
    if (nthreads <= 1) {
        matmul_job job = {y, x, w, n, 0, rows};
        matmul_worker(&job);
        return;
    }
    matmul_job jobs[MATMUL_MAX_THREADS];
    pthread_t tids[MATMUL_MAX_THREADS];
    int started[MATMUL_MAX_THREADS];
    /* Whole blocks per thread so that every thread converts complete blocks. */
    int64_t nblocks = (rows + MATMUL_BLOCK_ROWS - 1) / MATMUL_BLOCK_ROWS;
    for (int t = 0; t < nthreads; t++) {
        int64_t b0 = nblocks * t / nthreads, b1 = nblocks * (t + 1) / nthreads;
        int64_t r0 = b0 * MATMUL_BLOCK_ROWS, r1 = b1 * MATMUL_BLOCK_ROWS;
        if (r1 > rows) r1 = rows;
        if (r0 > rows) r0 = rows;
        jobs[t] = (matmul_job){y, x, w, n, r0, r1};
    }
    for (int t = 1; t < nthreads; t++) {
        int rc = pthread_create(&tids[t], NULL, matmul_worker, &jobs[t]);
        started[t] = rc == 0;
        if (rc != 0) /* no thread: do its share on this one instead */
            fprintf(stderr, "%s:%d: pthread_create failed (%s); computing inline\n", __FILE__,
                    __LINE__, strerror(rc));
    }
    matmul_worker(&jobs[0]);
    for (int t = 1; t < nthreads; t++) {
        if (started[t]) {
            int rc = pthread_join(tids[t], NULL);
            if (rc != 0)
                fprintf(stderr, "%s:%d: pthread_join failed (%s)\n", __FILE__, __LINE__,
                        strerror(rc));
        } else {
            matmul_worker(&jobs[t]);
        }
    }
}

/* ---- RMSNorm ------------------------------------------------------------
 * Statistics in double (cheap, and closer to the exact value than the fp32
 * reference's own rounding); the normalisation itself in fp32 in the
 * reference's order: (x * rsqrt(var + eps)) * w. */

static void rmsnorm_row(float *out, const float *x, const float *w, int dim, float eps) {
    double ss = 0.0;
    for (int j = 0; j < dim; j++) ss += (double)x[j] * (double)x[j];
    float var = (float)(ss / dim);
    float inv = (float)(1.0 / sqrt((double)(var + eps)));
    for (int j = 0; j < dim; j++) out[j] = (x[j] * inv) * w[j];
}

void cpu_rmsnorm(float *out, const float *x, const float *w, int n, int dim, float eps) {
    for (int i = 0; i < n; i++)
        rmsnorm_row(out + (size_t)i * dim, x + (size_t)i * dim, w, dim, eps);
}

void cpu_add_rmsnorm(float *residual, const float *delta, float *out, const float *w, int n,
                     int dim, float eps) {
    for (int i = 0; i < n; i++) {
        float *r = residual + (size_t)i * dim;
        const float *d = delta + (size_t)i * dim;
        for (int j = 0; j < dim; j++) r[j] += d[j];
        rmsnorm_row(out + (size_t)i * dim, r, w, dim, eps);
    }
}

/* ---- RoPE ---------------------------------------------------------------
 * Frequencies step by step in fp32, as transformers computes them:
 *   inv_freq = 1 / (theta ** (arange(0, hd, 2).float() / hd))
 * and for rope_type "llama3" (_compute_llama3_parameters):
 *   wavelen = 2π / inv_freq
 *   wavelen > orig_max / low_freq_factor   -> inv_freq / factor
 *   wavelen < orig_max / high_freq_factor  -> inv_freq
 *   otherwise smooth = (orig_max / wavelen - low) / (high - low),
 *             (1 - smooth) * inv_freq / factor + smooth * inv_freq. */

void cpu_rope_apply(float *x, int n, int nheads, int head_dim, const int32_t *pos,
                    const float *inv_freq) {
    const int half = head_dim / 2;
    for (int i = 0; i < n; i++) {
        float *row = x + (size_t)i * (size_t)nheads * (size_t)head_dim;
        for (int j = 0; j < half; j++) {
            float angle = (float)pos[i] * inv_freq[j];
            float c = cosf(angle), s = sinf(angle);
            for (int h = 0; h < nheads; h++) {
                float *xh = row + (size_t)h * head_dim;
                float x1 = xh[j], x2 = xh[j + half];
                xh[j] = x1 * c - x2 * s;
                xh[j + half] = x2 * c + x1 * s;
            }
        }
    }
}

/* ---- attention ----------------------------------------------------------
 * One query row of one head: two passes over its keys (max, then exp-sum and
 * weighted V sum), recomputing q·k in the second pass so that no scratch
 * buffer is needed.  The output row itself accumulates the V sum. */

static void attend_row(float *o, const float *qh, const float *k, const float *v, int64_t key0,
                       int64_t key1, int kv_stride, int kv_off, int hd, float scale) {
    float m = -INFINITY;
    for (int64_t j = key0; j <= key1; j++) {
        float s = dot_f32(qh, k + (size_t)j * kv_stride + kv_off, hd) * scale;
        if (s > m) m = s;
    }
    for (int d = 0; d < hd; d++) o[d] = 0.0f;
    float l = 0.0f;
    for (int64_t j = key0; j <= key1; j++) {
        float s = dot_f32(qh, k + (size_t)j * kv_stride + kv_off, hd) * scale;
        float p = expf(s - m);
        l += p;
        const float *vj = v + (size_t)j * kv_stride + kv_off;
        for (int d = 0; d < hd; d++) o[d] += p * vj[d];
    }
    float inv_l = 1.0f / l;
    for (int d = 0; d < hd; d++) o[d] *= inv_l;
}

/* Sequence index of global token row (binary search over cu_seqlens). */
static int seq_of_row(const int32_t *cu_seqlens, int nseq, int64_t row) {
    int lo = 0, hi = nseq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (cu_seqlens[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static void attend_token(float *out_row, const float *q, const float *k, const float *v,
                         int64_t row, int64_t seq_start, int nh, int nkv, int hd) {
    const int group = nh / nkv;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *qrow = q + (size_t)row * (size_t)nh * hd;
    for (int h = 0; h < nh; h++)
        attend_row(out_row + (size_t)h * hd, qrow + (size_t)h * hd, k, v, seq_start, row,
                   nkv * hd, (h / group) * hd, hd, scale);
}

void cpu_attention(float *out, const float *q, const float *k, const float *v,
                   const int32_t *cu_seqlens, int nseq, int nh, int nkv, int hd) {
    for (int s = 0; s < nseq; s++)
        for (int64_t i = cu_seqlens[s]; i < cu_seqlens[s + 1]; i++)
            attend_token(out + (size_t)i * (size_t)nh * hd, q, k, v, i, cu_seqlens[s], nh, nkv,
                         hd);
}

void cpu_attention_rows(float *out, const float *q, const float *k, const float *v,
                        const int32_t *cu_seqlens, int nseq, int nh, int nkv, int hd,
                        const int32_t *rows, int nrows) {
    for (int r = 0; r < nrows; r++) {
        int s = seq_of_row(cu_seqlens, nseq, rows[r]);
        attend_token(out + (size_t)r * (size_t)nh * hd, q, k, v, rows[r], cu_seqlens[s], nh, nkv,
                     hd);
    }
}

/* ---- SwiGLU ------------------------------------------------------------- */

void cpu_swiglu(float *out, const float *gate, const float *up, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        float g = gate[i];
        float silu = g / (1.0f + expf(-g));
        out[i] = silu * up[i];
    }
}

/* ---- heads --------------------------------------------------------------
 * The head is tiny next to the backbone, so its dot products run in double
 * and its small scratch vectors come from the heap; should that allocation
 * fail the outputs are NaN (never silently plausible numbers). */

void cpu_armo_head(const armo_head_params *hw, const float *h_last, const float *h_prompt,
                   int nseq, float *rewards, float *gating, float *coefficients, float *score) {
    const int H = hw->hidden, K = hw->k;
    int maxdim = 0;
    for (int l = 1; l <= hw->nlayers; l++)
        if (hw->dims[l] > maxdim) maxdim = hw->dims[l];
    float *buf_a = malloc((size_t)maxdim * sizeof(float));
    float *buf_b = malloc((size_t)maxdim * sizeof(float));
    double *adjusted = malloc((size_t)K * sizeof(double));
    for (int s = 0; s < nseq; s++) {
        float *rw = rewards + (size_t)s * K, *gt = gating + (size_t)s * K;
        float *cf = coefficients + (size_t)s * K;
        if (!buf_a || !buf_b || !adjusted) {
            fprintf(stderr, "%s:%d: out of memory in the ArmoRM head\n", __FILE__, __LINE__);
            for (int j = 0; j < K; j++) rw[j] = gt[j] = cf[j] = NAN;
            score[s] = NAN;
            continue;
        }
        const float *hl = h_last + (size_t)s * H, *hp = h_prompt + (size_t)s * H;
        /* rewards = W_r · h_last */
        for (int j = 0; j < K; j++) rw[j] = (float)dot_f64(hw->regression + (size_t)j * H, hl, H);
        /* gating MLP on h_prompt, ReLU after every layer but the last */
        const float *in = hp;
        float *outv = buf_a;
        for (int l = 0; l < hw->nlayers; l++) {
            const int din = hw->dims[l], dout = hw->dims[l + 1];
            for (int o = 0; o < dout; o++) {
                double z = dot_f64(hw->gw[l] + (size_t)o * din, in, din) + (double)hw->gb[l][o];
                if (l < hw->nlayers - 1 && z < 0.0) z = 0.0;
                outv[o] = (float)z;
            }
            in = outv;
            outv = outv == buf_a ? buf_b : buf_a;
        }
        /* gate = softmax(z / T) * logit_scale */
        double zmax = -INFINITY;
        for (int j = 0; j < K; j++) {
            double zt = (double)in[j] / (double)hw->temperature;
            if (zt > zmax) zmax = zt;
        }
        double zsum = 0.0;
        for (int j = 0; j < K; j++) zsum += exp((double)in[j] / (double)hw->temperature - zmax);
        for (int j = 0; j < K; j++)
            gt[j] = (float)(exp((double)in[j] / (double)hw->temperature - zmax) / zsum *
                            (double)hw->logit_scale);
        /* adjusted = rewards @ M: adjusted[k] = Σ_j rewards[j] M[j][k];
         * coefficients = gate @ Mᵀ: coef[j] = Σ_k gate[k] M[j][k];
         * score = Σ_k gate[k] adjusted[k] (= Σ_j rewards[j] coef[j]). */
        for (int kk = 0; kk < K; kk++) {
            double a = 0.0;
            for (int j = 0; j < K; j++) a += (double)rw[j] * (double)hw->transform[(size_t)j * K + kk];
            adjusted[kk] = a;
        }
        for (int j = 0; j < K; j++) {
            double c = 0.0;
            for (int kk = 0; kk < K; kk++)
                c += (double)gt[kk] * (double)hw->transform[(size_t)j * K + kk];
            cf[j] = (float)c;
        }
        double sc = 0.0;
        for (int kk = 0; kk < K; kk++) sc += (double)gt[kk] * adjusted[kk];
        score[s] = (float)sc;
    }
    free(adjusted);
    free(buf_b);
    free(buf_a);
}

void cpu_seqcls_head(const float *w, int labels, int hidden, const float *h_last, int nseq,
                     float *scores) {
    for (int s = 0; s < nseq; s++)
        for (int j = 0; j < labels; j++)
            scores[(size_t)s * labels + j] =
                (float)dot_f64(w + (size_t)j * hidden, h_last + (size_t)s * hidden, hidden);
}
