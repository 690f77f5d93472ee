/* test_rope.c — armo_rope_bf16 against cpu_rope_apply, default (theta
 * 500000) and llama3-scaled (factor 8, low 1, high 4, original 8192) tables
 * from armo_rope_inv_freq, on packed q [n, 32*128] and k [n, 8*128] with
 * positions restarting per sequence (lengths 1, 7, 128, 1000, 8192), plus
 * head_dim 64; and armo_rope_strided_bf16 in place in a fused [n, q | k | v]
 * buffer, bit for bit the dense launch's result with v untouched. */
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"
#include "weights/rope_table.h"

static void run_case(int llama3, int nh, int nkv, int hd, uint64_t seed) {
    const int lens[] = {1, 7, 128, 1000, 8192};
    int n = 0;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) n += lens[i];
    int32_t *pos = gpu_host_alloc((size_t)n * sizeof *pos);
    for (size_t s = 0, t = 0; s < sizeof lens / sizeof lens[0]; s++)
        for (int p = 0; p < lens[s]; p++) pos[t++] = p;

    armo_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hidden_size = nh * hd;
    cfg.num_heads = nh;
    cfg.num_kv_heads = nkv;
    cfg.head_dim = hd;
    cfg.rope_theta = 500000.0;
    cfg.max_position_embeddings = llama3 ? 131072 : 8192;
    cfg.rope_type = llama3 ? ARMO_ROPE_LLAMA3 : ARMO_ROPE_DEFAULT;
    cfg.rope_factor = 8.0;
    cfg.rope_low_freq_factor = 1.0;
    cfg.rope_high_freq_factor = 4.0;
    cfg.rope_original_max_pos = 8192;
    float *inv_freq = gpu_host_alloc((size_t)hd / 2 * sizeof *inv_freq);
    armo_rope_inv_freq(&cfg, inv_freq);

    gpu_rng rng;
    gpu_rng_seed(&rng, seed);
    const size_t qc = (size_t)n * nh * hd, kc = (size_t)n * nkv * hd;
    uint16_t *q = gpu_host_alloc(qc * 2), *k = gpu_host_alloc(kc * 2);
    float *qf = gpu_host_alloc(qc * 4), *kf = gpu_host_alloc(kc * 4);
    gpu_fill_bf16(&rng, q, qf, qc, 2.0f);
    gpu_fill_bf16(&rng, k, kf, kc, 2.0f);
    cpu_rope_apply(qf, n, nh, hd, pos, inv_freq);
    cpu_rope_apply(kf, n, nkv, hd, pos, inv_freq);

    uint16_t *d_q = gpu_upload(q, qc * 2), *d_k = gpu_upload(k, kc * 2);
    int32_t *d_pos = gpu_upload(pos, (size_t)n * sizeof *pos);
    float *d_inv = gpu_upload(inv_freq, (size_t)hd / 2 * sizeof *inv_freq);
    GPU_CHECK(armo_rope_bf16(d_q, d_k, n, nh, nkv, hd, d_pos, d_inv, 0));
    float *qo = gpu_download_bf16_as_f32(d_q, qc), *ko = gpu_download_bf16_as_f32(d_k, kc);
    size_t nan_q = 0, nan_k = 0;
    const double eq = gpu_rel_err(qo, qf, qc, &nan_q), ek = gpu_rel_err(ko, kf, kc, &nan_k);
    CHECK(nan_q == 0 && eq <= 1e-2, "rope q (%s, hd %d): rel err %.3g, %zu NaN",
          llama3 ? "llama3" : "default", hd, eq, nan_q);
    CHECK(nan_k == 0 && ek <= 1e-2, "rope k (%s, hd %d): rel err %.3g, %zu NaN",
          llama3 ? "llama3" : "default", hd, ek, nan_k);
    printf("rope %-7s nh %d nkv %d hd %d n %d: rel err q %.3g k %.3g\n",
           llama3 ? "llama3" : "default", nh, nkv, hd, n, eq, ek);

    /* in place in the fused [n, q | k | v] layout: the same values, bit for
     * bit, and the v columns untouched */
    {
        const int qd = nh * hd, kvd = nkv * hd, stride = qd + 2 * kvd;
        uint16_t *qkv = gpu_host_alloc((size_t)n * stride * 2);
        for (int t = 0; t < n; t++) {
            memcpy(qkv + (size_t)t * stride, q + (size_t)t * qd, (size_t)qd * 2);
            memcpy(qkv + (size_t)t * stride + qd, k + (size_t)t * kvd, (size_t)kvd * 2);
            for (int c = 0; c < kvd; c++) qkv[(size_t)t * stride + qd + kvd + c] = (uint16_t)(t + c);
        }
        uint16_t *d_qkv = gpu_upload(qkv, (size_t)n * stride * 2);
        GPU_CHECK(armo_rope_strided_bf16(d_qkv, stride, d_qkv + qd, stride, n, nh, nkv, hd, d_pos,
                                         d_inv, 0));
        uint16_t *got = gpu_host_alloc((size_t)n * stride * 2);
        uint16_t *dq = gpu_host_alloc(qc * 2), *dk = gpu_host_alloc(kc * 2);
        gpu_download(got, d_qkv, (size_t)n * stride * 2);
        gpu_download(dq, d_q, qc * 2);
        gpu_download(dk, d_k, kc * 2);
        size_t bad = 0;
        for (int t = 0; t < n; t++) {
            bad += memcmp(got + (size_t)t * stride, dq + (size_t)t * qd, (size_t)qd * 2) != 0;
            bad += memcmp(got + (size_t)t * stride + qd, dk + (size_t)t * kvd, (size_t)kvd * 2) != 0;
            for (int c = 0; c < kvd; c++)
                bad += got[(size_t)t * stride + qd + kvd + c] != (uint16_t)(t + c);
        }
        CHECK(bad == 0, "rope strided (%s, hd %d): %zu rows or v elements differ from the dense "
                        "launch", llama3 ? "llama3" : "default", hd, bad);
        gpu_free(d_qkv);
        free(qkv); free(got); free(dq); free(dk);
    }

    gpu_free(d_q); gpu_free(d_k); gpu_free(d_pos); gpu_free(d_inv);
    free(pos); free(inv_freq); free(q); free(k); free(qf); free(kf); free(qo); free(ko);
}

int main(void) {
    gpu_test_require_device();
    run_case(0, 32, 8, 128, 31);
    run_case(1, 32, 8, 128, 32);
    run_case(0, 8, 2, 64, 33);
    return test_finish("gpu_test_rope");
}
