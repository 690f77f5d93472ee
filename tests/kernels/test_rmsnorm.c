/* test_rmsnorm.c — armo_rmsnorm_bf16 and armo_add_rmsnorm_bf16 (and its
 * fp32-output twin armo_add_rmsnorm_f32_bf16, bit for bit) against
 * cpu_rmsnorm / cpu_add_rmsnorm at hidden 4096 on a ragged packed batch
 * (1 + 7 + 128 + 1000 + 8192 rows) and at an odd width (dim 100, 3 rows). */
#include <stdlib.h>
#include <string.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"

static void run_case(int n, int dim, uint64_t seed) {
    const float eps = 1e-5f;
    const size_t count = (size_t)n * dim;
    gpu_rng rng;
    gpu_rng_seed(&rng, seed);
    uint16_t *x = gpu_host_alloc(count * 2), *delta = gpu_host_alloc(count * 2);
    uint16_t *w = gpu_host_alloc((size_t)dim * 2);
    float *xf = gpu_host_alloc(count * 4), *deltaf = gpu_host_alloc(count * 4);
    float *wf = gpu_host_alloc((size_t)dim * 4), *ref = gpu_host_alloc(count * 4);
    gpu_fill_bf16(&rng, x, xf, count, 2.0f);
    gpu_fill_bf16(&rng, delta, deltaf, count, 1.0f);
    gpu_fill_bf16(&rng, w, wf, (size_t)dim, 1.5f);

    uint16_t *d_x = gpu_upload(x, count * 2), *d_delta = gpu_upload(delta, count * 2);
    uint16_t *d_w = gpu_upload(w, (size_t)dim * 2);
    uint16_t *d_out = gpu_alloc_poisoned(count * 2);
    size_t nan = 0;

    /* plain */
    cpu_rmsnorm(ref, xf, wf, n, dim, eps);
    GPU_CHECK(armo_rmsnorm_bf16(d_out, d_x, d_w, n, dim, eps, 0));
    float *out = gpu_download_bf16_as_f32(d_out, count);
    double err = gpu_rel_err(out, ref, count, &nan);
    CHECK(nan == 0 && err <= 1e-2, "rmsnorm n %d dim %d: rel err %.3g, %zu NaN", n, dim, err, nan);
    printf("rmsnorm      n %5d dim %4d: rel err %.3g\n", n, dim, err);
    free(out);

    /* fused residual add: residual (x) += delta, out = rmsnorm(residual) */
    GPU_CHECK(cudaMemset(d_out, 0xFF, count * 2));
    float *res_ref = gpu_host_alloc(count * 4);
    memcpy(res_ref, xf, count * 4);
    cpu_add_rmsnorm(res_ref, deltaf, ref, wf, n, dim, eps);
    GPU_CHECK(armo_add_rmsnorm_bf16(d_x, d_delta, d_out, d_w, n, dim, eps, 0));
    out = gpu_download_bf16_as_f32(d_out, count);
    float *res = gpu_download_bf16_as_f32(d_x, count);
    err = gpu_rel_err(out, ref, count, &nan);
    CHECK(nan == 0 && err <= 1e-2, "add_rmsnorm out n %d dim %d: rel err %.3g, %zu NaN", n, dim,
          err, nan);
    const double rerr = gpu_rel_err(res, res_ref, count, &nan);
    CHECK(nan == 0 && rerr <= 1e-2, "add_rmsnorm residual: rel err %.3g, %zu NaN", rerr, nan);
    printf("add_rmsnorm  n %5d dim %4d: rel err out %.3g residual %.3g\n", n, dim, err, rerr);

    /* the same with fp32 output (the engine's final norm into the head's
     * rows): bit for bit the bf16 variant's output, widened, from the same
     * residual and delta; the residual written the same way */
    {
        uint16_t *d_x2 = gpu_upload(x, count * 2);
        float *d_out32 = gpu_alloc_poisoned(count * 4);
        GPU_CHECK(armo_add_rmsnorm_f32_bf16(d_x2, d_delta, d_out32, d_w, n, dim, eps, 0));
        float *out32 = gpu_host_alloc(count * 4);
        gpu_download(out32, d_out32, count * 4);
        float *res2 = gpu_download_bf16_as_f32(d_x2, count);
        size_t diff = 0, rdiff = 0;
        for (size_t i = 0; i < count; i++) {
            diff += memcmp(&out32[i], &out[i], 4) != 0;
            rdiff += memcmp(&res2[i], &res[i], 4) != 0;
        }
        CHECK(diff == 0 && rdiff == 0,
              "add_rmsnorm_f32 n %d dim %d: %zu outputs and %zu residuals differ from the bf16 "
              "variant's", n, dim, diff, rdiff);
        gpu_free(d_x2);
        gpu_free(d_out32);
        free(out32);
        free(res2);
    }

    gpu_free(d_x); gpu_free(d_delta); gpu_free(d_w); gpu_free(d_out);
    free(x); free(delta); free(w); free(xf); free(deltaf); free(wf); free(ref); free(res_ref);
    free(out); free(res);
}

int main(void) {
    gpu_test_require_device();
    /* the emulator runs the Llama-3 shape too, on fewer rows */
    run_case(GPU_TEST_EMULATED ? 1 + 7 + 130 + 65 : 1 + 7 + 128 + 1000 + 8192, 4096, 21);
    run_case(3, 100, 22);
    run_case(1, 4096, 23);
    return test_finish(GPU_TEST_EMULATED ? "emu_rmsnorm" : "gpu_test_rmsnorm");
}
