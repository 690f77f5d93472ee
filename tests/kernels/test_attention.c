/* test_attention.c — the attention variants (flash, simple, pipelined) against
 * cpu_attention_rows on packed ragged batches with fresh random q, k, v:
 *   nh 32 / nkv 8 (GQA 4), hd 128, lengths 1, 7, 128, 1000, 8192;
 *   nh 16 / nkv 16 (GQA 1), hd 128, lengths 1, 7, 64, 65, 1000;
 *   nh 32 / nkv 8, hd 64, lengths 1, 7, 63, 200, 1000;
 *   nh 8 / nkv 8, hd 64, lengths 3, 129;
 *   nh 4 / nkv 2, hd 16 and nh 4 / nkv 1, hd 32 (the tiny test models' shapes);
 *   nh 4 / nkv 2, hd 48 through armo_attention_bf16 (falls back to simple);
 *   many short sequences sharing 64-token tiles, empty sequences included
 *   (the flash kernel tiles the packed axis: block-diagonal causal mask). 
 * Rows checked: every row of sequences up to 256 tokens, and for longer ones
 * the first and last rows, the rows around the 64-row tile edges and random
 * rows (the CPU reference is O(len) per row).  The whole output is also
 * checked for NaN: the buffer is poisoned, so an unwritten row shows.
 * The first variant is armo_attention_bf16 (the flash kernel by default;
 * ARMO_ATTN=simple / pipelined check the switch), the second the simple
 * kernel, the third the pipelined one (cp.async double-buffered K/V tiles;
 * head dims 16, 32, 64, 128: every case the flash kernel takes).  On the
 * emulator the pipelined kernel's copies land only at their
 * cp.async.wait_group (shim/kernels/cp_async.cuh), so a read before the
 * wait fails these comparisons, and its racecheck schedules must agree to
 * the bit.
 * ARMO_GPU_TEST_QUICK=1 (for compute-sanitizer runs) drops the 8192-token
 * sequence from the first batch.  Built against the CPU emulator
 * (GPU_TEST_EMULATED) it runs smaller cases of the same kinds.
 *
 * armo_attention_ex_bf16 (issue 20), every variant, every row checked:
 *   - q, k, v read in place from one fused [n, q | k | v] buffer (the QKV
 *     GEMM's output layout) with its row stride;
 *   - prefix_of: continuations attend their prefix's keys where they are;
 *     the reference is cpu_attention_rows on the expanded layout
 *     (prefix_share.h: each continuation as [prefix ; own rows]), the
 *     layout the engine used to build;
 *   - non-finite values: one sequence's V rows hold NaN and Inf and one K
 *     row Inf, packed into the same 64-key tiles as clean sequences, and a
 *     clean sequence's last V row is NaN (a key every earlier row of it
 *     masks, causally): every row the CPU reference keeps finite must come
 *     out finite and equal to it, and every row it makes non-finite must be
 *     non-finite. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "host/engine/prefix_share.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"

typedef cudaError_t (*attn_fn)(uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *,
                               const int32_t *, int, int, int, int, int, int, cudaStream_t);

static int pick_rows(const int *lens, int nseq, int32_t *rows, gpu_rng *rng) {
    int m = 0, start = 0;
    for (int s = 0; s < nseq; s++) {
        const int len = lens[s];
        if (len <= 256) {
            for (int i = 0; i < len; i++) rows[m++] = start + i;
        } else {
            const int fixed[] = {0, 1, 2, 62, 63, 64, 65, 127, 128, len / 2, len - 65, len - 64,
                                 len - 2, len - 1};
            for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) rows[m++] = start + fixed[f];
            for (int r = 0; r < 10; r++)
                rows[m++] = start + (int)((gpu_rng_uniform(rng, 0.5f) + 0.5f) * (float)(len - 1));
        }
        start += len;
    }
    return m;
}

static void run_case(const int *lens, int nseq, int nh, int nkv, int hd, uint64_t seed) {
    int n = 0, max_len = 0;
    int32_t *cu = gpu_host_alloc((size_t)(nseq + 1) * sizeof *cu);
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) {
        n += lens[s];
        cu[s + 1] = n;
        if (lens[s] > max_len) max_len = lens[s];
    }
    gpu_rng rng;
    gpu_rng_seed(&rng, seed);
    const size_t qc = (size_t)n * nh * hd, kc = (size_t)n * nkv * hd;
    uint16_t *q = gpu_host_alloc(qc * 2), *k = gpu_host_alloc(kc * 2), *v = gpu_host_alloc(kc * 2);
    float *qf = gpu_host_alloc(qc * 4), *kf = gpu_host_alloc(kc * 4), *vf = gpu_host_alloc(kc * 4);
    gpu_fill_bf16(&rng, q, qf, qc, 2.0f);
    gpu_fill_bf16(&rng, k, kf, kc, 2.0f);
    gpu_fill_bf16(&rng, v, vf, kc, 1.0f);

    int32_t *rows = gpu_host_alloc((size_t)n * sizeof *rows);
    const int m = pick_rows(lens, nseq, rows, &rng);
    const size_t row_width = (size_t)nh * hd;
    float *ref = gpu_host_alloc((size_t)m * row_width * 4);
    cpu_attention_rows(ref, qf, kf, vf, cu, nseq, nh, nkv, hd, rows, m);

    uint16_t *d_q = gpu_upload(q, qc * 2), *d_k = gpu_upload(k, kc * 2), *d_v = gpu_upload(v, kc * 2);
    int32_t *d_cu = gpu_upload(cu, (size_t)(nseq + 1) * sizeof *cu);
    uint16_t *d_out = gpu_alloc(qc * 2);
    float *got = gpu_host_alloc((size_t)m * row_width * 4);

    /* variant 0 goes through the dispatcher: the flash kernel, unless
     * ARMO_ATTN=simple / pipelined or a head_dim the flash kernel does not
     * take; variant 2, the pipelined kernel, where it takes the head_dim */
    const int tiled = armo_attention_flash_supports(hd);
    const int envv = armo_attention_env_variant();
    const attn_fn fns[3] = {armo_attention_bf16, armo_attention_simple_bf16,
                            armo_attention_pipelined_bf16};
    const char *names[3] = {!tiled || envv == ARMO_ATTN_SIMPLE ? "disp->simple"
                            : envv == ARMO_ATTN_PIPELINED      ? "disp->pipel"
                                                               : "flash",
                            "simple", "pipelined"};
    for (int variant = 0; variant < (tiled ? 3 : 2); variant++) {
        GPU_CHECK(cudaMemset(d_out, 0xFF, qc * 2));
        GPU_CHECK(fns[variant](d_out, d_q, d_k, d_v, d_cu, nseq, n, max_len, nh, nkv, hd, 0));
        float *out = gpu_download_bf16_as_f32(d_out, qc);
        size_t nan_all = 0;
        for (size_t i = 0; i < qc; i++) nan_all += !(out[i] == out[i]);
        for (int r = 0; r < m; r++)
            for (size_t c = 0; c < row_width; c++)
                got[(size_t)r * row_width + c] = out[(size_t)rows[r] * row_width + c];
        size_t nan = 0;
        const double err = gpu_rel_err(got, ref, (size_t)m * row_width, &nan);
        /* worst single row, to point at a failing tile */
        double worst = 0.0;
        int worst_row = -1;
        for (int r = 0; r < m; r++) {
            size_t rn = 0;
            const double e = gpu_rel_err(got + (size_t)r * row_width, ref + (size_t)r * row_width,
                                         row_width, &rn);
            if (e > worst || rn) {
                worst = rn ? 1e30 : e;
                worst_row = rows[r];
            }
        }
        CHECK(nan_all == 0, "%s nh %d nkv %d hd %d: %zu NaN / unwritten elements", names[variant],
              nh, nkv, hd, nan_all);
        CHECK(err <= 1e-2, "%s nh %d nkv %d hd %d: rel err %.3g over %d rows (worst row %d: %.3g)",
              names[variant], nh, nkv, hd, err, m, worst_row, worst);
        printf("attention %-12s nh %2d nkv %2d hd %3d n %5d rows %4d: rel err %.3g (worst row %d: %.3g)\n",
               names[variant], nh, nkv, hd, n, m, err, worst_row, worst);
        free(out);
    }
    gpu_free(d_q); gpu_free(d_k); gpu_free(d_v); gpu_free(d_cu); gpu_free(d_out);
    free(cu); free(q); free(k); free(v); free(qf); free(kf); free(vf); free(rows); free(ref);
    free(got);
}

static void put_bits(uint16_t *b, float *f, size_t i, uint16_t bits, float val) {
    b[i] = bits;
    f[i] = val;
}

/* One case of armo_attention_ex_bf16: lens[nseq], prefix_of[nseq] or NULL;
 * poison: non-finite values as described at the top (sequence 1 poisoned,
 * the last V row of sequence 2 NaN). */
static void run_ex_case(const char *what, const int *lens, int nseq, const int32_t *prefix_of,
                        int nh, int nkv, int hd, int poison, uint64_t seed) {
    int32_t *cu = gpu_host_alloc((size_t)(nseq + 1) * sizeof *cu);
    int n = 0, max_len = 0;
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) {
        n += lens[s];
        cu[s + 1] = n;
        if (lens[s] > max_len) max_len = lens[s];
    }
    const int qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
    gpu_rng rng;
    gpu_rng_seed(&rng, seed);
    const size_t qc = (size_t)n * qd, kc = (size_t)n * kvd;
    uint16_t *q = gpu_host_alloc(qc * 2), *k = gpu_host_alloc(kc * 2), *v = gpu_host_alloc(kc * 2);
    float *qf = gpu_host_alloc(qc * 4), *kf = gpu_host_alloc(kc * 4), *vf = gpu_host_alloc(kc * 4);
    gpu_fill_bf16(&rng, q, qf, qc, 2.0f);
    gpu_fill_bf16(&rng, k, kf, kc, 2.0f);
    gpu_fill_bf16(&rng, v, vf, kc, 1.0f);
    if (poison) {
        const int b = cu[1]; /* sequence 1: lens[1] >= 8 */
        for (int c = 0; c < kvd; c++) {
            put_bits(v, vf, (size_t)(b + 3) * kvd + c, 0x7fc0, NAN);
            if (c % 3 == 0) put_bits(v, vf, (size_t)(b + 5) * kvd + c, 0x7f80, INFINITY);
            put_bits(k, kf, (size_t)(b + 6) * kvd + c, 0x7f80, INFINITY);
        }
        const int last2 = cu[3] - 1; /* the last token of sequence 2 */
        for (int c = 0; c < kvd; c += 7) put_bits(v, vf, (size_t)last2 * kvd + c, 0x7fc0, NAN);
    }
    /* the fused layout */
    uint16_t *qkv = gpu_host_alloc((size_t)n * stride * 2);
    for (int t = 0; t < n; t++) {
        memcpy(qkv + (size_t)t * stride, q + (size_t)t * qd, (size_t)qd * 2);
        memcpy(qkv + (size_t)t * stride + qd, k + (size_t)t * kvd, (size_t)kvd * 2);
        memcpy(qkv + (size_t)t * stride + qd + kvd, v + (size_t)t * kvd, (size_t)kvd * 2);
    }
    /* the reference on the expanded layout */
    armo_expansion x;
    armo_err err;
    CHECK(armo_expansion_build(&x, cu, nseq, prefix_of, &err) == 0, "%s: expansion: %s", what,
          err.msg);
    const size_t qe = (size_t)x.n_exp * qd, ke = (size_t)x.n_exp * kvd;
    float *qx = gpu_host_alloc(qe * 4 + 4), *kx = gpu_host_alloc(ke * 4 + 4),
          *vx = gpu_host_alloc(ke * 4 + 4);
    for (int r = 0; r < x.n_exp; r++) {
        const int u = x.exp_rows[r];
        memcpy(qx + (size_t)r * qd, qf + (size_t)u * qd, (size_t)qd * 4);
        memcpy(kx + (size_t)r * kvd, kf + (size_t)u * kvd, (size_t)kvd * 4);
        memcpy(vx + (size_t)r * kvd, vf + (size_t)u * kvd, (size_t)kvd * 4);
    }
    float *ref = gpu_host_alloc(qc * 4 + 4);
    cpu_attention_rows(ref, qx, kx, vx, x.cu_exp, x.nseq_exp, nh, nkv, hd, x.back_rows, n);

    uint16_t *d_qkv = gpu_upload(qkv, (size_t)n * stride * 2);
    int32_t *d_cu = gpu_upload(cu, (size_t)(nseq + 1) * sizeof *cu);
    int32_t *d_pre = prefix_of ? gpu_upload(prefix_of, (size_t)nseq * sizeof *prefix_of) : NULL;
    uint16_t *d_out = gpu_alloc(qc * 2 + 2);
    const armo_attn_args a = {.out = d_out, .q = d_qkv, .k = d_qkv + qd, .v = d_qkv + qd + kvd,
                              .q_stride = stride, .kv_stride = stride, .cu_seqlens = d_cu,
                              .prefix_of = d_pre, .nseq = nseq, .n = n, .max_seqlen = max_len,
                              .nh = nh, .nkv = nkv, .hd = hd};
    const int variants[3] = {ARMO_ATTN_FLASH, ARMO_ATTN_SIMPLE, ARMO_ATTN_PIPELINED};
    const char *const vnames[3] = {"flash", "simple", "pipelined"};
    for (int vi = 0; vi < 3; vi++) {
        const char *vname = vnames[vi];
        GPU_CHECK(cudaMemset(d_out, 0xFF, qc * 2));
        GPU_CHECK(armo_attention_ex_bf16(&a, variants[vi], 0));
        float *out = gpu_download_bf16_as_f32(d_out, qc);
        int finite_rows = 0, bad_rows = 0, wrong_status = 0, worst_row = -1;
        double worst = 0.0, num = 0.0, den = 0.0;
        for (int r = 0; r < n; r++) {
            const float *o = out + (size_t)r * qd, *rf = ref + (size_t)r * qd;
            int ref_ok = 1, got_ok = 1;
            for (int c = 0; c < qd; c++) {
                ref_ok &= isfinite(rf[c]) != 0;
                got_ok &= isfinite(o[c]) != 0;
            }
            if (ref_ok != got_ok) {
                if (!wrong_status++)
                    fprintf(stderr, "%s %s: row %d is %s, the reference's is %s\n", what, vname,
                            r, got_ok ? "finite" : "non-finite", ref_ok ? "finite" : "non-finite");
                continue;
            }
            if (!ref_ok) {
                bad_rows++;
                continue;
            }
            finite_rows++;
            double rn = 0.0, rd = 0.0;
            for (int c = 0; c < qd; c++) {
                const double d = (double)o[c] - rf[c];
                rn += d * d;
                rd += (double)rf[c] * rf[c];
            }
            num += rn;
            den += rd;
            if (sqrt(rn / (rd + 1e-30)) > worst) worst = sqrt(rn / (rd + 1e-30)), worst_row = r;
        }
        const double e = sqrt(num / (den + 1e-30));
        CHECK(wrong_status == 0, "%s %s: %d rows finite where the reference is not, or the "
                                 "other way round", what, vname, wrong_status);
        CHECK(e <= 1e-2, "%s %s: rel err %.3g over %d finite rows (worst row %d: %.3g)", what,
              vname, e, finite_rows, worst_row, worst);
        CHECK(!poison || (bad_rows > 0 && finite_rows > 0), "%s %s: %d finite, %d non-finite rows",
              what, vname, finite_rows, bad_rows);
        printf("attention ex %-9s %-28s nh %2d nkv %2d hd %3d n %4d: rel err %.3g, %d finite rows, "
               "%d non-finite as the reference\n", vname, what, nh, nkv, hd, n, e, finite_rows,
               bad_rows);
        free(out);
    }
    gpu_free(d_qkv); gpu_free(d_cu); gpu_free(d_out);
    if (d_pre) gpu_free(d_pre);
    armo_expansion_free(&x);
    free(cu); free(q); free(k); free(v); free(qf); free(kf); free(vf); free(qkv);
    free(qx); free(kx); free(vx); free(ref);
}

static void run_ex_cases(void) {
    /* strided only */
    const int lens_a[] = {1, 7, 0, 130, 65};
    run_ex_case("fused qkv", lens_a, 5, NULL, 8, 2, 128, 0, 51);
    /* pairs and best-of-3 sharing prefixes, across 64-key tiles: prefix 0
     * (40) with continuations 1, 2; standalone 3; prefix 4 (70) with
     * continuations 5, 6, 7 (the last crossing a tile edge); empty 8 */
    const int lens_b[] = {40, 9, 30, 5, 70, 1, 66, 20, 0};
    const int32_t pre_b[] = {-1, 0, 0, -1, -1, 4, 4, 4, -1};
    run_ex_case("prefix_of", lens_b, 9, pre_b, 8, 2, 128, 0, 52);
    run_ex_case("prefix_of hd 64", lens_b, 9, pre_b, 4, 1, 64, 0, 53);
    /* non-finite neighbours sharing tiles */
    const int lens_c[] = {5, 9, 70, 3, 40};
    run_ex_case("non-finite neighbour", lens_c, 5, NULL, 8, 2, 128, 1, 54);
    const int32_t pre_c[] = {-1, -1, -1, -1, 2};
    run_ex_case("non-finite, prefix_of", lens_c, 5, pre_c, 4, 2, 64, 1, 55);
}

/* The emulator's cases: the flash kernel at hd 128 / GQA 4:1 over a ragged
 * batch crossing 64-row tiles, with empty, 1-token and odd sequences; every
 * other head_dim it takes once; the simple kernel's fallback (hd 48); many
 * short sequences sharing tiles. */
static void run_emulated_cases(void) {
    const int lens_a[] = {1, 7, 0, 130, 65};
    const int lens_e[] = {1, 7, 70, 5};
    const int lens_f[] = {2, 130};
    const int lens_g[] = {0, 1, 2, 3, 0, 5, 64, 1, 67, 0, 7, 0};
    run_case(lens_a, 5, 8, 2, 128, 41);
    run_case(lens_g, 12, 4, 1, 128, 48);
    run_case(lens_f, 2, 4, 4, 64, 44);
    run_case(lens_e, 4, 4, 2, 16, 45);
    run_case(lens_f, 2, 4, 1, 32, 46);
    run_case(lens_e, 4, 4, 2, 48, 47);
    int lens_h[40];
    for (int i = 0; i < 40; i++) lens_h[i] = (i * 7) % 19 + 1;
    run_case(lens_h, 40, 4, 2, 64, 49);
}

int main(void) {
    gpu_test_require_device();
    if (GPU_TEST_EMULATED) {
        run_emulated_cases();
        run_ex_cases();
        return test_finish("emu_attention");
    }
    const int lens_a[] = {1, 7, 128, 1000, 8192};
    const int lens_b[] = {1, 7, 64, 65, 1000};
    const int lens_c[] = {1, 7, 63, 200, 1000};
    const int lens_d[] = {3, 129};
    const int lens_e[] = {1, 7, 70, 5};
    const int lens_f[] = {2, 130};
    const char *quick = getenv("ARMO_GPU_TEST_QUICK");
    run_case(lens_a, quick && *quick && *quick != '0' ? 4 : 5, 32, 8, 128, 41);
    run_case(lens_b, 5, 16, 16, 128, 42);
    run_case(lens_c, 5, 32, 8, 64, 43);
    run_case(lens_d, 2, 8, 8, 64, 44);
    run_case(lens_e, 4, 4, 2, 16, 45);
    run_case(lens_f, 2, 4, 1, 32, 46);
    run_case(lens_e, 4, 4, 2, 48, 47);
    const int lens_g[] = {0, 1, 2, 3, 0, 5, 64, 1, 130, 0, 7, 0};
    run_case(lens_g, 12, 32, 8, 128, 48);
    int lens_h[300];
    for (int i = 0; i < 300; i++) lens_h[i] = (i * 7) % 19 + 1;
    run_case(lens_h, 300, 8, 2, 64, 49);
    run_ex_cases();
    return test_finish("gpu_test_attention");
}
