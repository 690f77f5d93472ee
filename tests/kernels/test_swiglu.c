/* test_swiglu.c — armo_swiglu_bf16 against cpu_swiglu on the fused gate|up
 * layout ([n, 2I], rows [gate | up]) at intermediate 14336, n 1136 (lengths
 * 1 + 7 + 128 + 1000), plus odd sizes (I 5, n 3: the scalar path), and n 2341
 * at 14336: n * I/2 pairs need 65548 blocks of 256, over the launcher's clamp
 * of 65536, so the grid-stride loop runs a second lap (the last 3072 pairs
 * are written on it: left undone they stay poisoned NaN). */
#include <stdlib.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"

static void run_case(int n, int inter, uint64_t seed) {
    const size_t in_count = (size_t)n * 2 * inter, out_count = (size_t)n * inter;
    gpu_rng rng;
    gpu_rng_seed(&rng, seed);
    uint16_t *gu = gpu_host_alloc(in_count * 2);
    float *guf = gpu_host_alloc(in_count * 4);
    gpu_fill_bf16(&rng, gu, guf, in_count, 6.0f);
    float *gate = gpu_host_alloc(out_count * 4), *up = gpu_host_alloc(out_count * 4);
    float *ref = gpu_host_alloc(out_count * 4);
    for (int r = 0; r < n; r++)
        for (int c = 0; c < inter; c++) {
            gate[(size_t)r * inter + c] = guf[(size_t)r * 2 * inter + c];
            up[(size_t)r * inter + c] = guf[(size_t)r * 2 * inter + inter + c];
        }
    cpu_swiglu(ref, gate, up, (int64_t)out_count);

    uint16_t *d_gu = gpu_upload(gu, in_count * 2);
    uint16_t *d_out = gpu_alloc_poisoned(out_count * 2);
    GPU_CHECK(armo_swiglu_bf16(d_out, d_gu, n, inter, 0));
    float *out = gpu_download_bf16_as_f32(d_out, out_count);
    size_t nan = 0;
    const double err = gpu_rel_err(out, ref, out_count, &nan);
    CHECK(nan == 0 && err <= 1e-2, "swiglu n %d I %d: rel err %.3g, %zu NaN", n, inter, err, nan);
    printf("swiglu n %d I %d: rel err %.3g\n", n, inter, err);
    gpu_free(d_gu); gpu_free(d_out);
    free(gu); free(guf); free(gate); free(up); free(ref); free(out);
}

int main(void) {
    gpu_test_require_device();
    run_case(1 + 7 + 128 + 1000, 14336, 51);
    run_case(3, 5, 52);
    run_case(1, 14336, 53);
    run_case(2341, 14336, 54); /* grid clamped at 65536 blocks: a second lap */
    return test_finish("gpu_test_swiglu");
}
