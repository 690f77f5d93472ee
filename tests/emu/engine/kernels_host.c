/* kernels_host.c — host (CPU) implementations of every launcher of
 * kernels/armo_kernels.h that host/cuda/cuda_backend.c calls, with the same
 * semantics and the same bf16 rounding points as the CUDA kernels (bf16
 * storage between steps, fp32 math inside a step, the flash kernel's bf16 P
 * in P·V).  Linked with cuda_fake.c (device memory = host malloc) so that the
 * engine's host code — buffer sizes, row indices, the last-layer gather,
 * prefix-sharing layouts, head output layout — runs on a machine without a
 * GPU, under AddressSanitizer, through tests/cuda/test_engine.c itself.
 * This checks the engine's orchestration, not the kernels' CUDA code (the
 * per-kernel GPU tests and tests/emu/attention do that). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "weights/dtype.h"

static float bf(uint16_t h) { return armo_bf16_to_f32(h); }
static uint16_t rb(float f) { return armo_f32_to_bf16(f); }

cudaError_t armo_embed_bf16(uint16_t *out, const uint16_t *table, const int32_t *ids, int n,
                            int hidden, int vocab, cudaStream_t stream) {
    (void)stream;
    if (n < 0 || hidden <= 0 || vocab <= 0) return cudaErrorInvalidValue;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab)
            memset(out + (size_t)i * hidden, 0, (size_t)hidden * 2);
        else
            memcpy(out + (size_t)i * hidden, table + (size_t)ids[i] * hidden, (size_t)hidden * 2);
    }
    return cudaSuccess;
}

cudaError_t armo_rmsnorm_bf16(uint16_t *out, const uint16_t *x, const uint16_t *w, int n, int dim,
                              float eps, cudaStream_t stream) {
    (void)stream;
    if (n < 0 || dim <= 0 || !(eps >= 0.0f)) return cudaErrorInvalidValue;
    for (int i = 0; i < n; i++) {
        const uint16_t *xr = x + (size_t)i * dim;
        float ss = 0.0f;
        for (int c = 0; c < dim; c++) ss += bf(xr[c]) * bf(xr[c]);
        const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
        for (int c = 0; c < dim; c++) out[(size_t)i * dim + c] = rb(bf(xr[c]) * inv * bf(w[c]));
    }
    return cudaSuccess;
}

cudaError_t armo_add_rmsnorm_bf16(uint16_t *residual, const uint16_t *delta, uint16_t *out,
                                  const uint16_t *w, int n, int dim, float eps,
                                  cudaStream_t stream) {
    if (n < 0 || dim <= 0 || !(eps >= 0.0f)) return cudaErrorInvalidValue;
    for (size_t i = 0; i < (size_t)n * dim; i++) residual[i] = rb(bf(residual[i]) + bf(delta[i]));
    return armo_rmsnorm_bf16(out, residual, w, n, dim, eps, stream);
}

cudaError_t armo_rope_bf16(uint16_t *q, uint16_t *k, int n, int nh, int nkv, int head_dim,
                           const int32_t *pos, const float *inv_freq, cudaStream_t stream) {
    (void)stream;
    if (n < 0 || nh < 0 || nkv < 0 || head_dim <= 0 || head_dim % 2) return cudaErrorInvalidValue;
    const int half = head_dim / 2;
    for (int t = 0; t < n; t++)
        for (int head = 0; head < nh + nkv; head++) {
            uint16_t *x = head < nh ? q + ((size_t)t * nh + head) * head_dim
                                    : k + ((size_t)t * nkv + (head - nh)) * head_dim;
            for (int j = 0; j < half; j++) {
                const float a = (float)pos[t] * inv_freq[j], s = sinf(a), c = cosf(a);
                const float x1 = bf(x[j]), x2 = bf(x[j + half]);
                x[j] = rb(x1 * c - x2 * s);
                x[j + half] = rb(x2 * c + x1 * s);
            }
        }
    return cudaSuccess;
}

/* the flash kernel's numerics: fp32 scores, P rounded to bf16 for P·V, the
 * normaliser summed from the unrounded P */
cudaError_t armo_attention_bf16(uint16_t *out, const uint16_t *q, const uint16_t *k,
                                const uint16_t *v, const int32_t *cu_seqlens, int nseq, int n,
                                int max_seqlen, int nh, int nkv, int hd, cudaStream_t stream) {
    (void)stream;
    if (nseq < 0 || n < 0 || max_seqlen < 0 || nh <= 0 || nkv <= 0 || nh % nkv || hd <= 0)
        return cudaErrorInvalidValue;
    if (nseq > 0 && cu_seqlens[nseq] != n) return cudaErrorInvalidValue; /* caller's contract */
    const float scale = 1.0f / sqrtf((float)hd);
    float *p = malloc(sizeof(float) * (size_t)(max_seqlen > 0 ? max_seqlen : 1));
    float *acc = malloc(sizeof(float) * (size_t)hd);
    if (!p || !acc) abort();
    for (int s = 0; s < nseq; s++) {
        const int start = cu_seqlens[s], end = cu_seqlens[s + 1];
        if (end - start > max_seqlen) abort(); /* max_seqlen must bound every sequence */
        for (int t = start; t < end; t++)
            for (int h = 0; h < nh; h++) {
                const int kvh = h / (nh / nkv);
                const uint16_t *qr = q + ((size_t)t * nh + h) * hd;
                float mx = -INFINITY;
                for (int j = start; j <= t; j++) {
                    const uint16_t *kr = k + ((size_t)j * nkv + kvh) * hd;
                    float d = 0.0f;
                    for (int c = 0; c < hd; c++) d += bf(qr[c]) * bf(kr[c]);
                    p[j - start] = d * scale;
                    if (p[j - start] > mx) mx = p[j - start];
                }
                float l = 0.0f;
                for (int c = 0; c < hd; c++) acc[c] = 0.0f;
                for (int j = start; j <= t; j++) {
                    const float e = expf(p[j - start] - mx), eb = bf(rb(e));
                    l += e;
                    const uint16_t *vr = v + ((size_t)j * nkv + kvh) * hd;
                    for (int c = 0; c < hd; c++) acc[c] += eb * bf(vr[c]);
                }
                for (int c = 0; c < hd; c++) out[((size_t)t * nh + h) * hd + c] = rb(acc[c] / l);
            }
    }
    free(p);
    free(acc);
    return cudaSuccess;
}

cudaError_t armo_swiglu_bf16(uint16_t *out, const uint16_t *gate_up, int n, int inter,
                             cudaStream_t stream) {
    (void)stream;
    if (n < 0 || inter <= 0) return cudaErrorInvalidValue;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < inter; c++) {
            const float g = bf(gate_up[(size_t)i * 2 * inter + c]);
            const float u = bf(gate_up[(size_t)i * 2 * inter + inter + c]);
            out[(size_t)i * inter + c] = rb(g / (1.0f + expf(-g)) * u);
        }
    return cudaSuccess;
}

cudaError_t armo_gather_rows_bf16(uint16_t *out, const uint16_t *x, const int32_t *rows, int m,
                                  int hidden, cudaStream_t stream) {
    (void)stream;
    if (m < 0 || hidden <= 0) return cudaErrorInvalidValue;
    for (int r = 0; r < m; r++) {
        if (rows[r] < 0) abort(); /* the caller owns validity; -1 would be a bug */
        memcpy(out + (size_t)r * hidden, x + (size_t)rows[r] * hidden, (size_t)hidden * 2);
    }
    return cudaSuccess;
}

cudaError_t armo_gather_rows_f32(float *out, const uint16_t *x, const int32_t *rows, int m,
                                 int hidden, cudaStream_t stream) {
    (void)stream;
    if (m < 0 || hidden <= 0) return cudaErrorInvalidValue;
    for (int r = 0; r < m; r++) {
        if (rows[r] < 0) abort();
        for (int c = 0; c < hidden; c++)
            out[(size_t)r * hidden + c] = bf(x[(size_t)rows[r] * hidden + c]);
    }
    return cudaSuccess;
}

size_t armo_head_scratch_floats(const armo_head_params *hw, int nseq) {
    int widest = 0;
    for (int l = 1; l <= hw->nlayers && l <= ARMO_MAX_GATING_LAYERS; l++)
        if (hw->dims[l] > widest) widest = hw->dims[l];
    return (size_t)2 * (size_t)(nseq > 0 ? nseq : 0) * (size_t)widest;
}

cudaError_t armo_gated_head_f32(const armo_head_params *hw, const float *h_last,
                                const float *h_prompt, int nseq, float *rewards, float *gating,
                                float *coefficients, float *score, float *scratch,
                                cudaStream_t stream) {
    (void)stream;
    if (!hw || nseq < 0 || hw->k <= 0 || hw->k > 1024 || hw->nlayers <= 0 ||
        hw->nlayers > ARMO_MAX_GATING_LAYERS || hw->dims[0] != hw->hidden ||
        hw->dims[hw->nlayers] != hw->k)
        return cudaErrorInvalidValue;
    if (nseq > 65535) return cudaErrorInvalidValue;
    /* touch the whole scratch the kernel would use (ASan checks its size) */
    memset(scratch, 0, armo_head_scratch_floats(hw, nseq) * sizeof(float));
    cpu_armo_head(hw, h_last, h_prompt, nseq, rewards, gating, coefficients, score);
    return cudaSuccess;
}

cudaError_t armo_seqcls_head_f32(const float *w, int labels, int hidden, const float *h_last,
                                 int nseq, float *scores, cudaStream_t stream) {
    (void)stream;
    if (labels <= 0 || hidden <= 0 || nseq < 0 || nseq > 65535) return cudaErrorInvalidValue;
    cpu_seqcls_head(w, labels, hidden, h_last, nseq, scores);
    return cudaSuccess;
}

/* ---- GEMM: fp32 accumulation (cpu_matmul), bf16 output ---- */
struct armo_gemm {
    int dummy;
};

int armo_gemm_create(armo_gemm **out, size_t workspace_bytes, armo_err *e) {
    (void)workspace_bytes;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : armo_err_set(e, "out of memory");
}

void armo_gemm_destroy(armo_gemm *g) { free(g); }

int armo_gemm_bf16(armo_gemm *g, uint16_t *y, const uint16_t *x, const uint16_t *w, int n, int in,
                   int out, cudaStream_t stream, armo_err *e) {
    (void)stream;
    if (!g || n < 0 || in <= 0 || out <= 0 || in % 8 || out % 8)
        return armo_err_set(e, "bad GEMM arguments (n %d, in %d, out %d)", n, in, out);
    if (n == 0) return 0;
    float *xf = malloc(sizeof(float) * (size_t)n * in), *yf = malloc(sizeof(float) * (size_t)n * out);
    if (!xf || !yf) abort();
    for (size_t i = 0; i < (size_t)n * in; i++) xf[i] = bf(x[i]);
    armo_weight aw = {"gemm", ARMO_DT_BF16, w, out, in};
    cpu_matmul(yf, xf, &aw, n, 2);
    for (size_t i = 0; i < (size_t)n * out; i++) y[i] = rb(yf[i]);
    free(xf);
    free(yf);
    return 0;
}
