/* test_cpu_ops.c — every CPU reference operator against a naive double-precision
 * reference written here, on small random inputs.
 *
 * The references are deliberately the most literal loops of the formulas in
 * DESIGN §2 / transformers (no blocking, no shared helpers with cpu_ops.c), so
 * that a mistake in the optimised fp32 code cannot be mirrored here.  Shapes
 * cover what the engine meets: GQA ratios 1, 2 and 4, ragged packed sequences
 * (lengths 1, 3, 17), head_dim 16 and 128, BF16 / F16 / F32 weights, and row
 * counts that are not multiples of the matmul block. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"
#include "weights/rope_table.h"

/* ---- deterministic random numbers (xorshift64*) ---- */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* [0, 1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static float srand_f(float scale) { return (float)((urand() * 2.0 - 1.0) * scale); }
static float *rand_vec(size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = srand_f(scale);
    return v;
}

/* A weight of dtype dt holding vals rounded to dt; ref gets the exact values
 * the weight stores (so the reference sees the same numbers). */
static armo_weight make_weight(armo_dtype dt, int64_t rows, int64_t cols, const float *vals,
                               double *ref, void **storage) {
    size_t n = (size_t)(rows * cols);
    void *data = malloc(n * armo_dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        if (dt == ARMO_DT_F32) {
            ((float *)data)[i] = vals[i];
            ref[i] = vals[i];
        } else if (dt == ARMO_DT_BF16) {
            uint16_t h = armo_f32_to_bf16(vals[i]);
            ((uint16_t *)data)[i] = h;
            /* bf16 is the top half of an fp32: decode it by hand, not via dtype.h */
            uint32_t u = (uint32_t)h << 16;
            float f;
            memcpy(&f, &u, 4);
            ref[i] = f;
        } else { /* F16: encode by hand (round to nearest even; normal range) */
            double v = vals[i];
            uint16_t sign = v < 0 ? 0x8000 : 0;
            double a = fabs(v);
            uint16_t h;
            if (a < 6.103515625e-05) { /* subnormal: units of 2^-24 */
                double q = nearbyint(a / 5.9604644775390625e-08);
                h = (uint16_t)(sign | (uint16_t)q);
                ref[i] = (sign ? -1 : 1) * q * 5.9604644775390625e-08;
            } else {
                int e;
                double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
                double q = nearbyint(m * 2048.0); /* 11 significant bits */
                if (q == 2048.0) { q = 1024.0; e++; }
                h = (uint16_t)(sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)((int)q - 1024));
                ref[i] = (sign ? -1 : 1) * ldexp(q, e - 11);
            }
            ((uint16_t *)data)[i] = h;
        }
    }
    *storage = data;
    return (armo_weight){"test", dt, data, rows, cols};
}

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

/* ---- embedding and matmul ---- */

static void test_embed_matmul(void) {
    const armo_dtype dts[3] = {ARMO_DT_BF16, ARMO_DT_F16, ARMO_DT_F32};
    for (int di = 0; di < 3; di++) {
        armo_dtype dt = dts[di];
        /* embedding: 11 x 24 table */
        {
            int V = 11, H = 24;
            float *vals = rand_vec((size_t)V * H, 2.0f);
            double *ref = malloc(sizeof(double) * V * H);
            void *st;
            armo_weight w = make_weight(dt, V, H, vals, ref, &st);
            int32_t ids[5] = {3, 0, 10, 3, 7};
            float out[5 * 24];
            cpu_embed(out, &w, ids, 5);
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < H; j++)
                    CHECK(out[i * H + j] == (float)ref[ids[i] * H + j], "embed %s [%d,%d]",
                          armo_dtype_name(dt), i, j);
            free(st);
            free(ref);
            free(vals);
        }
        /* matmul: two shapes, one below and one above the threading threshold */
        const int shapes[2][3] = {{5, 37, 67}, {4, 301, 1003}}; /* n, rows(out), cols(in) */
        for (int si = 0; si < 2; si++) {
            int n = shapes[si][0], rows = shapes[si][1], cols = shapes[si][2];
            float *vals = rand_vec((size_t)rows * cols, 1.0f);
            double *wref = malloc(sizeof(double) * rows * cols);
            void *st;
            armo_weight w = make_weight(dt, rows, cols, vals, wref, &st);
            float *x = rand_vec((size_t)n * cols, 1.0f);
            float *y1 = malloc(sizeof(float) * n * rows), *y3 = malloc(sizeof(float) * n * rows);
            cpu_matmul(y1, x, &w, n, 1);
            cpu_matmul(y3, x, &w, n, 3);
            CHECK(memcmp(y1, y3, sizeof(float) * n * rows) == 0,
                  "matmul %s %dx%dx%d: nthreads 1 and 3 differ", armo_dtype_name(dt), n, rows,
                  cols);
            int bad = 0;
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double s = 0, mag = 0;
                    for (int j = 0; j < cols; j++) {
                        s += (double)x[t * cols + j] * wref[(size_t)r * cols + j];
                        mag += fabs((double)x[t * cols + j] * wref[(size_t)r * cols + j]);
                    }
                    /* fp32 accumulation: error well under 1e-6 of the magnitude sum */
                    if (!(fabs(y1[t * rows + r] - s) <= 1e-6 * mag + 1e-30)) bad++;
                }
            CHECK(bad == 0, "matmul %s %dx%dx%d: %d outputs off the double reference",
                  armo_dtype_name(dt), n, rows, cols, bad);
            free(y1);
            free(y3);
            free(x);
            free(st);
            free(wref);
            free(vals);
        }
    }
}

/* Safetensors data may start at any byte: the same weights at offsets 1, 2
 * and 3 from an aligned address must give the same bits (and, under the
 * sanitizer build, no misaligned load). */
static void test_misaligned(void) {
    const armo_dtype dts[3] = {ARMO_DT_BF16, ARMO_DT_F16, ARMO_DT_F32};
    const int n = 3, rows = 301, cols = 1003;
    for (int di = 0; di < 3; di++) {
        float *vals = rand_vec((size_t)rows * cols, 1.0f);
        double *ref = malloc(sizeof(double) * rows * cols);
        void *st;
        armo_weight w = make_weight(dts[di], rows, cols, vals, ref, &st);
        size_t bytes = (size_t)rows * cols * armo_dtype_size(dts[di]);
        float *x = rand_vec((size_t)n * cols, 1.0f);
        float *y = malloc(sizeof(float) * n * rows), *y2 = malloc(sizeof(float) * n * rows);
        float *e = malloc(sizeof(float) * 2 * cols), *e2 = malloc(sizeof(float) * 2 * cols);
        int32_t ids[2] = {300, 7};
        cpu_matmul(y, x, &w, n, 1);
        cpu_embed(e, &w, ids, 2);
        unsigned char *raw = malloc(bytes + 8);
        for (int off = 1; off < 4; off++) {
            memcpy(raw + off, st, bytes);
            armo_weight wm = w;
            wm.data = raw + off;
            for (int nt = 1; nt <= 3; nt += 2) {
                cpu_matmul(y2, x, &wm, n, nt);
                CHECK(memcmp(y, y2, sizeof(float) * n * rows) == 0,
                      "matmul %s at byte offset %d, %d threads differs", armo_dtype_name(dts[di]),
                      off, nt);
            }
            cpu_embed(e2, &wm, ids, 2);
            CHECK(memcmp(e, e2, sizeof(float) * 2 * cols) == 0, "embed %s at byte offset %d differs",
                  armo_dtype_name(dts[di]), off);
        }
        free(raw);
        free(e2);
        free(e);
        free(y2);
        free(y);
        free(x);
        free(st);
        free(ref);
        free(vals);
    }
}

/* ---- RMSNorm ---- */

static void ref_rmsnorm(double *out, const double *x, const float *w, int dim, double eps) {
    double ss = 0;
    for (int j = 0; j < dim; j++) ss += x[j] * x[j];
    double inv = 1.0 / sqrt(ss / dim + eps);
    for (int j = 0; j < dim; j++) out[j] = x[j] * inv * w[j];
}

static void test_rmsnorm(void) {
    const int n = 6, dim = 100;
    const float eps = 1e-5f;
    float *x = rand_vec((size_t)n * dim, 3.0f), *w = rand_vec(dim, 1.5f);
    double *xr = malloc(sizeof(double) * n * dim), *ref = malloc(sizeof(double) * n * dim);
    for (int i = 0; i < n * dim; i++) xr[i] = x[i];
    for (int i = 0; i < dim; i++) x[i] = xr[i] = 1e-4f * (float)(i % 7); /* tiny row: eps matters */
    for (int i = 0; i < n; i++) ref_rmsnorm(ref + i * dim, xr + i * dim, w, dim, eps);
    float *out = malloc(sizeof(float) * n * dim);
    cpu_rmsnorm(out, x, w, n, dim, eps);
    CHECK(max_abs_diff(out, ref, (size_t)n * dim) < 2e-5, "rmsnorm off by %g",
          max_abs_diff(out, ref, (size_t)n * dim));
    cpu_rmsnorm(x, x, w, n, dim, eps); /* in place */
    CHECK(memcmp(out, x, sizeof(float) * n * dim) == 0, "in-place rmsnorm differs");

    /* fused residual add: residual += delta; out = rmsnorm(residual) */
    float *res = rand_vec((size_t)n * dim, 2.0f), *delta = rand_vec((size_t)n * dim, 2.0f);
    for (int i = 0; i < n * dim; i++) xr[i] = (double)res[i] + (double)delta[i];
    for (int i = 0; i < n; i++) ref_rmsnorm(ref + i * dim, xr + i * dim, w, dim, eps);
    cpu_add_rmsnorm(res, delta, out, w, n, dim, eps);
    CHECK(max_abs_diff(res, xr, (size_t)n * dim) < 1e-6, "add_rmsnorm residual wrong");
    CHECK(max_abs_diff(out, ref, (size_t)n * dim) < 2e-5, "add_rmsnorm output off by %g",
          max_abs_diff(out, ref, (size_t)n * dim));
    free(res);
    free(delta);
    free(out);
    free(ref);
    free(xr);
    free(w);
    free(x);
}

/* ---- RoPE ---- */

/* transformers' _compute_llama3_parameters, in double. */
static double ref_llama3(double inv, double factor, double low, double high, double old_ctx) {
    double wavelen = 2 * M_PI / inv;
    double low_wl = old_ctx / low, high_wl = old_ctx / high;
    if (wavelen > low_wl) return inv / factor;
    if (wavelen < high_wl) return inv;
    double smooth = (old_ctx / wavelen - low) / (high - low);
    return (1 - smooth) * inv / factor + smooth * inv;
}

static void test_rope(void) {
    /* default frequencies theta^(-2i/hd) */
    armo_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.head_dim = 128;
    cfg.rope_theta = 500000.0;
    float inv[64];
    armo_rope_inv_freq(&cfg, inv);
    for (int i = 0; i < 64; i++)
        CHECK(test_close(inv[i], pow(500000.0, -2.0 * i / 128), 1e-6, 0), "inv_freq[%d]", i);

    /* llama3 scaling (Llama-3.1: factor 8, low 1, high 4, original 8192).
     * Hand-checked points: i = 0 has wavelen 2π (< 2048: unchanged); i = 63 has
     * wavelen ~ 2π·500000^(126/128) >> 8192 (divided by 8); the test also
     * requires that some frequencies fall in the smoothed band. */
    cfg.rope_type = ARMO_ROPE_LLAMA3;
    cfg.rope_factor = 8;
    cfg.rope_low_freq_factor = 1;
    cfg.rope_high_freq_factor = 4;
    cfg.rope_original_max_pos = 8192;
    cfg.max_position_embeddings = 131072;
    armo_rope_inv_freq(&cfg, inv);
    CHECK(test_close(inv[0], 1.0, 1e-7, 0), "llama3 inv_freq[0] = %g, want 1", inv[0]);
    CHECK(test_close(inv[63], pow(500000.0, -126.0 / 128) / 8, 1e-6, 0),
          "llama3 inv_freq[63] = %g", inv[63]);
    int n_low = 0, n_mid = 0, n_high = 0;
    for (int i = 0; i < 64; i++) {
        double base = pow(500000.0, -2.0 * i / 128);
        double wl = 2 * M_PI / base;
        if (wl > 8192) n_low++;
        else if (wl < 2048) n_high++;
        else n_mid++;
        double want = ref_llama3(base, 8, 1, 4, 8192);
        CHECK(test_close(inv[i], want, 2e-6, 0), "llama3 inv_freq[%d] = %.9g, want %.9g", i,
              inv[i], want);
    }
    CHECK(n_low > 0 && n_mid > 0 && n_high > 0, "llama3 bands %d/%d/%d not all covered", n_low,
          n_mid, n_high);
    /* the mid band once more, with the smooth factor spelled out for these
     * parameters: smooth = (8192 / wavelen - 1) / (4 - 1) */
    for (int i = 0; i < 64; i++) {
        double base = pow(500000.0, -2.0 * i / 128), wl = 2 * M_PI / base;
        if (wl >= 2048 && wl <= 8192) {
            double smooth = (8192.0 / wl - 1.0) / (4.0 - 1.0);
            double want = (1 - smooth) * base / 8 + smooth * base;
            CHECK(test_close(inv[i], want, 2e-6, 0), "llama3 mid-band inv_freq[%d]", i);
            CHECK(inv[i] < base && inv[i] > base / 8, "mid-band inv_freq[%d] not in between", i);
        }
    }
    /* The same frequencies as transformers 5.24 computes them in fp32
     * (ROPE_INIT_FUNCTIONS["llama3"] on this config, printed as hex floats):
     * i = 30 is in the smoothed band (wavelen 2948), i = 35 just past it
     * (wavelen 8219, divided by 8).  Allow 2 ulp for libm's powf. */
    {
        const struct {
            int i;
            double v;
        } hf[] = {{0, 0x1.0000000000000p+0},   {10, 0x1.078d400000000p-3},
                  {20, 0x1.0f53860000000p-6},  {30, 0x1.67a23a0000000p-10},
                  {35, 0x1.90d10c0000000p-14}, {40, 0x1.1f91f00000000p-15},
                  {45, 0x1.9ca3ea0000000p-17}, {50, 0x1.280d960000000p-18},
                  {63, 0x1.4985fe0000000p-22}};
        for (size_t t = 0; t < sizeof hf / sizeof hf[0]; t++)
            CHECK(test_close(inv[hf[t].i], hf[t].v, 2.5e-7, 0),
                  "llama3 inv_freq[%d] = %a, transformers gives %a", hf[t].i, inv[hf[t].i],
                  hf[t].v);
    }
    /* a different parameter set (small model): head_dim 16, theta 10000, orig 64 */
    armo_config c2;
    memset(&c2, 0, sizeof c2);
    c2.head_dim = 16;
    c2.rope_theta = 10000;
    c2.rope_type = ARMO_ROPE_LLAMA3;
    c2.rope_factor = 4;
    c2.rope_low_freq_factor = 1;
    c2.rope_high_freq_factor = 2;
    c2.rope_original_max_pos = 64;
    float inv2[8];
    armo_rope_inv_freq(&c2, inv2);
    for (int i = 0; i < 8; i++) {
        double want = ref_llama3(pow(10000.0, -2.0 * i / 16), 4, 1, 2, 64);
        CHECK(test_close(inv2[i], want, 2e-6, 0), "llama3 (hd 16) inv_freq[%d] = %.9g, want %.9g",
              i, inv2[i], want);
    }

    /* rotate-half application on packed sequences, positions restart per sequence */
    const int hds[2] = {16, 128};
    for (int hi = 0; hi < 2; hi++) {
        int hd = hds[hi], nheads = 3, n = 1 + 3 + 17;
        int32_t pos[21];
        int lens[3] = {1, 3, 17}, t = 0;
        for (int s = 0; s < 3; s++)
            for (int p = 0; p < lens[s]; p++) pos[t++] = p * 37; /* large angles too */
        armo_config c;
        memset(&c, 0, sizeof c);
        c.head_dim = hd;
        c.rope_theta = 10000;
        float invf[64];
        armo_rope_inv_freq(&c, invf);
        size_t cnt = (size_t)n * nheads * hd;
        float *x = rand_vec(cnt, 1.0f);
        double *ref = malloc(sizeof(double) * cnt);
        for (int i = 0; i < n; i++)
            for (int h = 0; h < nheads; h++)
                for (int j = 0; j < hd; j++) {
                    const float *xh = x + ((size_t)i * nheads + h) * hd;
                    int jj = j % (hd / 2);
                    double ang = (double)pos[i] * (double)invf[jj];
                    double rot = j < hd / 2 ? -(double)xh[j + hd / 2] : (double)xh[j - hd / 2];
                    ref[((size_t)i * nheads + h) * hd + j] = xh[j] * cos(ang) + rot * sin(ang);
                }
        cpu_rope_apply(x, n, nheads, hd, pos, invf);
        /* angles up to ~600 rad: fp32 argument rounding allows ~3e-5 */
        CHECK(max_abs_diff(x, ref, cnt) < 1e-4, "rope hd %d off by %g", hd,
              max_abs_diff(x, ref, cnt));
        free(ref);
        free(x);
    }
}

/* ---- attention ---- */

static void ref_attention(double *out, const float *q, const float *k, const float *v,
                          const int32_t *cu, int nseq, int nh, int nkv, int hd) {
    int n = cu[nseq];
    double *sc = malloc(sizeof(double) * n);
    for (int s = 0; s < nseq; s++)
        for (int i = cu[s]; i < cu[s + 1]; i++)
            for (int h = 0; h < nh; h++) {
                int g = h / (nh / nkv);
                double mx = -INFINITY;
                for (int j = cu[s]; j <= i; j++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++)
                        d += (double)q[((size_t)i * nh + h) * hd + e] *
                             (double)k[((size_t)j * nkv + g) * hd + e];
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                double sum = 0;
                for (int j = cu[s]; j <= i; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int j = cu[s]; j <= i; j++)
                        o += sc[j] / sum * (double)v[((size_t)j * nkv + g) * hd + e];
                    out[((size_t)i * nh + h) * hd + e] = o;
                }
            }
    free(sc);
}

static void test_attention(void) {
    const int32_t cu[4] = {0, 1, 4, 21}; /* lengths 1, 3, 17 */
    const int nseq = 3, n = 21;
    const int ratios[3] = {1, 2, 4}, hds[2] = {16, 128};
    for (int ri = 0; ri < 3; ri++)
        for (int hi = 0; hi < 2; hi++) {
            int nkv = 2, nh = nkv * ratios[ri], hd = hds[hi];
            /* scale 3: peaky softmax so that a wrong mask or head mapping shows */
            float *q = rand_vec((size_t)n * nh * hd, 3.0f);
            float *k = rand_vec((size_t)n * nkv * hd, 1.0f);
            float *v = rand_vec((size_t)n * nkv * hd, 1.0f);
            size_t cnt = (size_t)n * nh * hd;
            float *out = malloc(sizeof(float) * cnt);
            double *ref = malloc(sizeof(double) * cnt);
            cpu_attention(out, q, k, v, cu, nseq, nh, nkv, hd);
            ref_attention(ref, q, k, v, cu, nseq, nh, nkv, hd);
            CHECK(max_abs_diff(out, ref, cnt) < 2e-5, "attention nh %d nkv %d hd %d off by %g", nh,
                  nkv, hd, max_abs_diff(out, ref, cnt));
            /* the first token of each sequence attends to itself only: out = v */
            for (int s = 0; s < nseq; s++)
                for (int h = 0; h < nh; h++) {
                    int g = h / ratios[ri];
                    const float *o = out + ((size_t)cu[s] * nh + h) * hd;
                    const float *vv = v + ((size_t)cu[s] * nkv + g) * hd;
                    CHECK(memcmp(o, vv, sizeof(float) * hd) == 0,
                          "seq %d head %d: first token != its own v", s, h);
                }
            /* sampled rows equal the full computation */
            int32_t rows[5] = {20, 0, 3, 1, 11};
            float *sub = malloc(sizeof(float) * 5 * nh * hd);
            cpu_attention_rows(sub, q, k, v, cu, nseq, nh, nkv, hd, rows, 5);
            for (int r = 0; r < 5; r++)
                CHECK(memcmp(sub + (size_t)r * nh * hd, out + (size_t)rows[r] * nh * hd,
                             sizeof(float) * nh * hd) == 0,
                      "attention_rows row %d differs from attention", rows[r]);
            free(sub);
            free(ref);
            free(out);
            free(v);
            free(k);
            free(q);
        }
}

/* ---- SwiGLU ---- */

static void test_swiglu(void) {
    const int n = 257;
    float *g = rand_vec(n, 8.0f), *u = rand_vec(n, 2.0f), *out = malloc(sizeof(float) * n);
    double ref[257];
    for (int i = 0; i < n; i++) ref[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    cpu_swiglu(out, g, u, n);
    CHECK(max_abs_diff(out, ref, n) < 1e-5, "swiglu off by %g", max_abs_diff(out, ref, n));
    cpu_swiglu(g, g, u, n); /* out aliases gate */
    CHECK(memcmp(g, out, sizeof(float) * n) == 0, "aliased swiglu differs");
    free(out);
    free(u);
    free(g);
}

/* ---- heads ---- */

static void test_heads(void) {
    enum { H = 48, D1 = 20, D2 = 12, K = 7, NS = 3 };
    armo_head_params hw;
    memset(&hw, 0, sizeof hw);
    hw.hidden = H;
    hw.k = K;
    hw.nlayers = 3;
    hw.dims[0] = H;
    hw.dims[1] = D1;
    hw.dims[2] = D2;
    hw.dims[3] = K;
    hw.temperature = 10.0f;
    hw.logit_scale = 2.5f;
    float *reg = rand_vec((size_t)K * H, 0.5f), *tr = rand_vec((size_t)K * K, 1.0f);
    float *gw[3], *gb[3];
    for (int l = 0; l < 3; l++) {
        gw[l] = rand_vec((size_t)hw.dims[l + 1] * hw.dims[l], 1.0f);
        gb[l] = rand_vec((size_t)hw.dims[l + 1], 0.5f);
        hw.gw[l] = gw[l];
        hw.gb[l] = gb[l];
    }
    hw.regression = reg;
    hw.transform = tr;
    float *hl = rand_vec((size_t)NS * H, 1.0f), *hp = rand_vec((size_t)NS * H, 1.0f);
    float rw[NS * K], gt[NS * K], cf[NS * K], sc[NS];
    cpu_armo_head(&hw, hl, hp, NS, rw, gt, cf, sc);
    for (int s = 0; s < NS; s++) {
        /* reference: straight from the module definitions */
        double r[K], a[H > D1 ? H : D1], b[H > D1 ? H : D1], z[K], g[K];
        for (int j = 0; j < K; j++) {
            r[j] = 0;
            for (int e = 0; e < H; e++) r[j] += (double)reg[j * H + e] * hl[s * H + e];
        }
        for (int e = 0; e < H; e++) a[e] = hp[s * H + e];
        for (int l = 0; l < 3; l++) {
            int din = hw.dims[l], dout = hw.dims[l + 1];
            for (int o = 0; o < dout; o++) {
                double t = gb[l][o];
                for (int e = 0; e < din; e++) t += (double)gw[l][o * din + e] * a[e];
                b[o] = (l < 2 && t < 0) ? 0 : t;
            }
            memcpy(a, b, sizeof(double) * dout);
        }
        double mx = -INFINITY, sum = 0, gsum = 0;
        for (int j = 0; j < K; j++) z[j] = a[j] / 10.0, mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < K; j++) sum += exp(z[j] - mx);
        for (int j = 0; j < K; j++) g[j] = exp(z[j] - mx) / sum * 2.5;
        double score = 0, score2 = 0;
        for (int kk = 0; kk < K; kk++) {
            double adj = 0;
            for (int j = 0; j < K; j++) adj += r[j] * tr[j * K + kk]; /* rewards @ M */
            score += g[kk] * adj;
        }
        for (int j = 0; j < K; j++) {
            double c = 0;
            for (int kk = 0; kk < K; kk++) c += g[kk] * tr[j * K + kk]; /* gate @ Mᵀ */
            CHECK(test_close(rw[s * K + j], r[j], 1e-5, 1e-5), "reward[%d][%d]", s, j);
            CHECK(test_close(gt[s * K + j], g[j], 1e-5, 1e-6), "gating[%d][%d]", s, j);
            CHECK(test_close(cf[s * K + j], c, 1e-5, 1e-5), "coefficient[%d][%d]", s, j);
            score2 += (double)rw[s * K + j] * cf[s * K + j];
            gsum += gt[s * K + j];
        }
        CHECK(test_close(sc[s], score, 1e-5, 1e-5), "score[%d] %g want %g", s, sc[s], score);
        CHECK(test_close(sc[s], score2, 1e-5, 1e-5), "score[%d] %g != Σ rewards·coefficients %g",
              s, sc[s], score2);
        CHECK(test_close(gsum, 2.5, 1e-6, 0), "gating[%d] sums to %g, want logit_scale 2.5", s,
              gsum);
    }
    /* sequence classification head */
    float *sw = rand_vec(2 * H, 1.0f), out[NS * 2];
    cpu_seqcls_head(sw, 2, H, hl, NS, out);
    for (int s = 0; s < NS; s++)
        for (int j = 0; j < 2; j++) {
            double want = 0;
            for (int e = 0; e < H; e++) want += (double)sw[j * H + e] * hl[s * H + e];
            CHECK(test_close(out[s * 2 + j], want, 1e-5, 1e-5), "seqcls[%d][%d]", s, j);
        }
    free(sw);
    free(hp);
    free(hl);
    for (int l = 0; l < 3; l++) {
        free(gw[l]);
        free(gb[l]);
    }
    free(tr);
    free(reg);
}

int main(void) {
    test_embed_matmul();
    test_misaligned();
    test_rmsnorm();
    test_rope();
    test_attention();
    test_swiglu();
    test_heads();
    return test_finish("test_cpu_ops");
}
