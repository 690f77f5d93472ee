/* test_head.c — row gather (bf16 and fp32) and the reward heads against the
 * CPU reference: ArmoRM gated head (H 4096, gating 1024 x 3 hidden layers,
 * K 19, T 10) via cpu_armo_head, and the single head (labels 1 and 3) via
 * cpu_seqcls_head.  The head inputs are gathered from a bf16 hidden-state
 * buffer [n, 4096] at the last and the prompt rows of each sequence, as the
 * engine does.  fp32 weights on both sides, so the tolerance is tight. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"

static float *random_f32(gpu_rng *rng, size_t count, float scale) {
    float *p = gpu_host_alloc(count * 4);
    for (size_t i = 0; i < count; i++) p[i] = gpu_rng_uniform(rng, scale);
    return p;
}

static void check_close(const char *what, const float *out, const float *ref, size_t count,
                        double tol) {
    size_t nan = 0;
    const double err = gpu_rel_err(out, ref, count, &nan);
    CHECK(nan == 0 && err <= tol, "%s: rel err %.3g (tolerance %.1g), %zu NaN", what, err, tol, nan);
    printf("%-22s rel err %.3g\n", what, err);
}

int main(void) {
    gpu_test_require_device();
    const int H = 4096, G = 1024, K = 19, nlayers = 4;
    const int lens[] = {1, 7, 128, 1000, 300, 64, 5, 2};
    const int nseq = (int)(sizeof lens / sizeof lens[0]);
    int n = 0;
    for (int s = 0; s < nseq; s++) n += lens[s];
    gpu_rng rng;
    gpu_rng_seed(&rng, 61);

    /* hidden states and the rows to gather */
    uint16_t *hid = gpu_host_alloc((size_t)n * H * 2);
    float *hidf = gpu_host_alloc((size_t)n * H * 4);
    gpu_fill_bf16(&rng, hid, hidf, (size_t)n * H, 2.0f);
    int32_t *rows = gpu_host_alloc(2 * (size_t)nseq * sizeof *rows); /* last rows, then prompt rows */
    for (int s = 0, start = 0; s < nseq; start += lens[s], s++) {
        rows[s] = start + lens[s] - 1;
        rows[nseq + s] = start + lens[s] / 2;
    }
    float *h_ref = gpu_host_alloc(2 * (size_t)nseq * H * 4);
    for (int r = 0; r < 2 * nseq; r++) memcpy(h_ref + (size_t)r * H, hidf + (size_t)rows[r] * H, (size_t)H * 4);

    uint16_t *d_hid = gpu_upload(hid, (size_t)n * H * 2);
    int32_t *d_rows = gpu_upload(rows, 2 * (size_t)nseq * sizeof *rows);
    float *d_h = gpu_alloc_poisoned(2 * (size_t)nseq * H * 4);
    uint16_t *d_hb = gpu_alloc_poisoned(2 * (size_t)nseq * H * 2);
    GPU_CHECK(armo_gather_rows_f32(d_h, d_hid, d_rows, 2 * nseq, H, 0));
    GPU_CHECK(armo_gather_rows_bf16(d_hb, d_hid, d_rows, 2 * nseq, H, 0));
    float *h_got = gpu_host_alloc(2 * (size_t)nseq * H * 4);
    gpu_download(h_got, d_h, 2 * (size_t)nseq * H * 4);
    float *hb_got = gpu_download_bf16_as_f32(d_hb, 2 * (size_t)nseq * H);
    size_t nan = 0;
    CHECK(gpu_rel_err(h_got, h_ref, 2 * (size_t)nseq * H, &nan) == 0.0 && nan == 0,
          "gather_rows_f32 must be an exact copy");
    CHECK(gpu_rel_err(hb_got, h_ref, 2 * (size_t)nseq * H, &nan) == 0.0 && nan == 0,
          "gather_rows_bf16 must be an exact copy");
    /* the two-source gather (the engine's last layer): the same rows of the
     * hidden states (width H) and of its first H/2 columns read as a
     * narrower [n, H/2]... matrix: a second source of another width */
    {
        uint16_t *d_a = gpu_alloc_poisoned(2 * (size_t)nseq * H * 2);
        uint16_t *d_b = gpu_alloc_poisoned(2 * (size_t)nseq * (H / 2) * 2);
        GPU_CHECK(armo_gather_rows2_bf16(d_a, d_hid, H, d_b, d_hid, H / 2, d_rows, 2 * nseq, 0));
        float *ga = gpu_download_bf16_as_f32(d_a, 2 * (size_t)nseq * H);
        float *gb = gpu_download_bf16_as_f32(d_b, 2 * (size_t)nseq * (H / 2));
        CHECK(gpu_rel_err(ga, h_ref, 2 * (size_t)nseq * H, &nan) == 0.0 && nan == 0,
              "gather_rows2_bf16 (first source) must be an exact copy");
        size_t bad = 0;
        for (int r = 0; r < 2 * nseq; r++)
            for (int c = 0; c < H / 2; c++)
                bad += gb[(size_t)r * (H / 2) + c] != hidf[(size_t)rows[r] * (H / 2) + c];
        CHECK(bad == 0, "gather_rows2_bf16 (second source, width %d): %zu elements differ", H / 2,
              bad);
        gpu_free(d_a);
        gpu_free(d_b);
        free(ga);
        free(gb);
    }

    /* ArmoRM head weights */
    armo_head_params hw;
    memset(&hw, 0, sizeof hw);
    hw.hidden = H;
    hw.k = K;
    hw.nlayers = nlayers;
    hw.dims[0] = H;
    hw.dims[1] = hw.dims[2] = hw.dims[3] = G;
    hw.dims[4] = K;
    hw.temperature = 10.0f;
    hw.logit_scale = 3.7f;
    float *regression = random_f32(&rng, (size_t)K * H, 0.03f);
    hw.regression = regression;
    float *gw[4], *gb[4];
    for (int l = 0; l < nlayers; l++) {
        gw[l] = random_f32(&rng, (size_t)hw.dims[l + 1] * hw.dims[l], 1.7f / sqrtf((float)hw.dims[l]));
        gb[l] = random_f32(&rng, (size_t)hw.dims[l + 1], 0.1f);
        hw.gw[l] = gw[l];
        hw.gb[l] = gb[l];
    }
    float *transform = random_f32(&rng, (size_t)K * K, 1.0f);
    hw.transform = transform;

    float *rewards = gpu_host_alloc((size_t)nseq * K * 4), *gating = gpu_host_alloc((size_t)nseq * K * 4);
    float *coeff = gpu_host_alloc((size_t)nseq * K * 4), *score = gpu_host_alloc((size_t)nseq * 4);
    cpu_armo_head(&hw, h_ref, h_ref + (size_t)nseq * H, nseq, rewards, gating, coeff, score);

    armo_head_params dw = hw; /* the same sizes, with device copies of the weights */
    dw.regression = gpu_upload(regression, (size_t)K * H * 4);
    for (int l = 0; l < nlayers; l++) {
        dw.gw[l] = gpu_upload(gw[l], (size_t)hw.dims[l + 1] * hw.dims[l] * 4);
        dw.gb[l] = gpu_upload(gb[l], (size_t)hw.dims[l + 1] * 4);
    }
    dw.transform = gpu_upload(transform, (size_t)K * K * 4);
    float *d_scratch = gpu_alloc(armo_head_scratch_floats(&dw, nseq) * 4);
    float *d_rewards = gpu_alloc_poisoned((size_t)nseq * K * 4), *d_gating = gpu_alloc_poisoned((size_t)nseq * K * 4);
    float *d_coeff = gpu_alloc_poisoned((size_t)nseq * K * 4), *d_score = gpu_alloc_poisoned((size_t)nseq * 4);
    GPU_CHECK(armo_gated_head_f32(&dw, d_h, d_h + (size_t)nseq * H, nseq, d_rewards, d_gating, d_coeff,
                            d_score, d_scratch, 0));
    float *o_rewards = gpu_host_alloc((size_t)nseq * K * 4), *o_gating = gpu_host_alloc((size_t)nseq * K * 4);
    float *o_coeff = gpu_host_alloc((size_t)nseq * K * 4), *o_score = gpu_host_alloc((size_t)nseq * 4);
    gpu_download(o_rewards, d_rewards, (size_t)nseq * K * 4);
    gpu_download(o_gating, d_gating, (size_t)nseq * K * 4);
    gpu_download(o_coeff, d_coeff, (size_t)nseq * K * 4);
    gpu_download(o_score, d_score, (size_t)nseq * 4);
    check_close("armo rewards", o_rewards, rewards, (size_t)nseq * K, 1e-3);
    check_close("armo gating", o_gating, gating, (size_t)nseq * K, 1e-3);
    check_close("armo coefficients", o_coeff, coeff, (size_t)nseq * K, 1e-3);
    check_close("armo score", o_score, score, (size_t)nseq, 1e-3);
    double gsum = 0.0;
    for (int i = 0; i < K; i++) gsum += o_gating[i];
    CHECK(test_close(gsum, hw.logit_scale, 1e-4, 1.0), "gate sums to %.6g, expected logit_scale %.6g",
          gsum, (double)hw.logit_scale);

    /* single head, labels 1 and 3 */
    for (int labels = 1; labels <= 3; labels += 2) {
        float *w = random_f32(&rng, (size_t)labels * H, 0.03f);
        float *ref = gpu_host_alloc((size_t)nseq * labels * 4), *got = gpu_host_alloc((size_t)nseq * labels * 4);
        cpu_seqcls_head(w, labels, H, h_ref, nseq, ref);
        float *d_w = gpu_upload(w, (size_t)labels * H * 4);
        float *d_s = gpu_alloc_poisoned((size_t)nseq * labels * 4);
        GPU_CHECK(armo_seqcls_head_f32(d_w, labels, H, d_h, nseq, d_s, 0));
        gpu_download(got, d_s, (size_t)nseq * labels * 4);
        check_close(labels == 1 ? "seqcls labels 1" : "seqcls labels 3", got, ref, (size_t)nseq * labels, 1e-3);
        gpu_free(d_w); gpu_free(d_s);
        free(w); free(ref); free(got);
    }

    gpu_free(d_hid); gpu_free(d_rows); gpu_free(d_h); gpu_free(d_hb); gpu_free(d_scratch);
    gpu_free(d_rewards); gpu_free(d_gating); gpu_free(d_coeff); gpu_free(d_score);
    gpu_free((void *)dw.regression); gpu_free((void *)dw.transform);
    for (int l = 0; l < nlayers; l++) {
        gpu_free((void *)dw.gw[l]);
        gpu_free((void *)dw.gb[l]);
        free(gw[l]);
        free(gb[l]);
    }
    free(hid); free(hidf); free(rows); free(h_ref); free(h_got); free(hb_got); free(regression);
    free(transform); free(rewards); free(gating); free(coeff); free(score);
    free(o_rewards); free(o_gating); free(o_coeff); free(o_score);
    return test_finish("gpu_test_head");
}
