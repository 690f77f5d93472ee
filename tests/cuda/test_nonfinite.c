/* test_nonfinite.c — the per-sequence non-finite status of armo_result
 * (backend.h) as the CUDA backend fills it (issue 16, item 1), label gpu;
 * exits 77 when no CUDA device is found.  The ctest emu_nonfinite runs it
 * on the CPU emulator of the CUDA path.
 *
 * The cases are tests/engine/test_nonfinite.c's, included here: poisoned
 * copies of the bundled tiny models (NaN in the regression layer, the last
 * gating bias, the reward transform, one embedding row; +Inf in the final
 * norm; the sharded fixture; the single-head RM), each scored as a plain
 * and a shared-prefix batch.  Every sequence's status must be the expected
 * one (which quantity: the backbone hidden state — the head's input rows,
 * downloaded from the device — rewards, gating, coefficients, labels; the
 * element; NaN or Inf), and where it names an element of the hidden state
 * or a reward, the same element as the CPU backend's.
 *
 * A clean sequence packed next to one whose activations went non-finite
 * (the embedding-row case: both share 64-key tiles of the flash attention
 * kernel) must stay clean: the kernel keeps non-finite V rows of keys a row
 * does not attend out of its P·V (issue 20; it used to leak 0 * NaN and was
 * tolerated here as a known issue).  The "aligned" batch, with the poisoned
 * sequence on its own tiles, must give each sequence its own status too. */
#define ARMO_NONFINITE_NO_MAIN
#include "tests/engine/test_nonfinite.c"

#include "host/cuda/cuda_backend.h"

int main(void) {
    if (armo_cuda_device_count() <= 0) {
        printf("test_nonfinite: no CUDA device: skipped\n");
        return 77;
    }
    armo_backend_register_cuda(&armo_cuda_accel);
    g_nf_tolerate_leak = 0; /* no leak tolerated: every status must be the CPU's */
    for (int i = 0; i < NF_NCASES; i++) {
        const nf_case *c = &NF_CASES[i];
        armo_result g[6], r[6];
        if (nf_run_case("cuda", c, g) || nf_run_case("cpu", c, r)) continue;
        for (int s = 0; s < 6; s++) {
            CHECK(g[s].nonfinite == r[s].nonfinite, "%s, result %d: cuda %d, cpu %d", c->name, s,
                  (int)g[s].nonfinite, (int)r[s].nonfinite);
            const int named = g[s].nonfinite == ARMO_NF_HIDDEN_LAST ||
                              g[s].nonfinite == ARMO_NF_HIDDEN_GATING ||
                              g[s].nonfinite == ARMO_NF_REWARD;
            if (named && c->index != NF_ANY)
                CHECK(g[s].nonfinite_index == r[s].nonfinite_index,
                      "%s, result %d: cuda names element %d, cpu %d", c->name, s,
                      g[s].nonfinite_index, r[s].nonfinite_index);
        }
        printf("%-24s cuda and cpu agree on the status of each sequence\n", c->name);
    }
    CHECK(g_nf_leaks == 0, "%d clean sequence(s) made non-finite by a poisoned neighbour",
          g_nf_leaks);
    return test_finish("test_nonfinite (cuda)");
}
