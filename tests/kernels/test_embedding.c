/* test_embedding.c — armo_embed_bf16 against cpu_embed at the Llama-3 shape
 * (vocab 128257, hidden 4096) on a ragged packed batch (lengths 1, 7, 128,
 * 1000, 8192), ids random plus both ends of the vocabulary; an invalid id
 * must give a zero row, not a fault.  A hidden size that is not a multiple
 * of 8 (100) takes the scalar kernel.  Built against the CPU emulator
 * (GPU_TEST_EMULATED) the vocabulary is 4099 rows and the batch shorter. */
#include <stdlib.h>

#include "host/engine/cpu_ops.h"
#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"
#include "weights/dtype.h"

static void run_case(int vocab, int hidden, const int *lens, int nlens, uint64_t seed) {
    int n = 0;
    for (int i = 0; i < nlens; i++) n += lens[i];

    gpu_rng rng;
    gpu_rng_seed(&rng, seed);
    const size_t table_count = (size_t)vocab * hidden;
    uint16_t *table = gpu_host_alloc(table_count * sizeof *table);
    gpu_fill_bf16(&rng, table, NULL, table_count, 1.0f);
    int32_t *ids = gpu_host_alloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((gpu_rng_uniform(&rng, 0.5f) + 0.5f) * (float)(vocab - 1));
    ids[0] = 0;
    ids[n - 1] = vocab - 1;
    ids[n / 2] = vocab - 1;

    armo_weight w = {"embed", ARMO_DT_BF16, table, vocab, hidden};
    float *ref = gpu_host_alloc((size_t)n * hidden * sizeof *ref);
    cpu_embed(ref, &w, ids, n);

    uint16_t *d_table = gpu_upload(table, table_count * sizeof *table);
    int32_t *d_ids = gpu_upload(ids, (size_t)n * sizeof *ids);
    uint16_t *d_out = gpu_alloc_poisoned((size_t)n * hidden * sizeof *d_out);
    GPU_CHECK(armo_embed_bf16(d_out, d_table, d_ids, n, hidden, vocab, 0));
    float *out = gpu_download_bf16_as_f32(d_out, (size_t)n * hidden);
    size_t nan = 0;
    const double err = gpu_rel_err(out, ref, (size_t)n * hidden, &nan);
    CHECK(nan == 0, "%zu unwritten / NaN elements", nan);
    CHECK(err == 0.0, "embedding gather is a copy: rel err %.3g, expected 0", err);

    /* invalid ids: zero rows */
    int32_t bad_ids[2] = {-1, vocab};
    int32_t *d_bad = gpu_upload(bad_ids, sizeof bad_ids);
    uint16_t *d_bad_out = gpu_alloc_poisoned(2 * (size_t)hidden * sizeof(uint16_t));
    GPU_CHECK(armo_embed_bf16(d_bad_out, d_table, d_bad, 2, hidden, vocab, 0));
    float *bad_out = gpu_download_bf16_as_f32(d_bad_out, 2 * (size_t)hidden);
    int nonzero = 0;
    for (int i = 0; i < 2 * hidden; i++) nonzero += bad_out[i] != 0.0f;
    CHECK(nonzero == 0, "%d elements of the rows of invalid ids are not zero", nonzero);
    CHECK(armo_embed_bf16(d_out, d_table, d_ids, -1, hidden, vocab, 0) == cudaErrorInvalidValue,
          "negative n must be refused");

    printf("embedding: vocab %d, n %d, hidden %d, rel err %.3g\n", vocab, n, hidden, err);
    gpu_free(d_table); gpu_free(d_ids); gpu_free(d_out); gpu_free(d_bad); gpu_free(d_bad_out);
    free(table); free(ids); free(ref); free(out); free(bad_out);
}

int main(void) {
    gpu_test_require_device();
    const int lens[] = {1, 7, 128, 1000, 8192}, lens_emu[] = {1, 7, 0, 130, 65};
    if (GPU_TEST_EMULATED)
        run_case(4099, 4096, lens_emu, 5, 11);
    else
        run_case(128257, 4096, lens, 5, 11);
    run_case(1000, 100, lens_emu, 5, 12); /* scalar kernel */
    return test_finish(GPU_TEST_EMULATED ? "emu_embedding" : "gpu_test_embedding");
}
