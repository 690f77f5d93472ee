/* test_device_memory.c — the CUDA backend's device memory as arithmetic
 * (host/engine/device_memory.h) against sums done by hand for a small
 * config, buffer by buffer; the fit decision `armo score --device cuda`
 * makes before uploading anything (fits / lower the default budget /
 * refuse) at its boundaries, and its message's numbers; the figures of an
 * 8B-shaped ArmoRM printed for the record. */
#include <stdio.h>
#include <string.h>

#include "host/engine/device_memory.h"
#include "tests/util/test_util.h"

/* hidden 64, 2 layers, 4 heads (2 KV) of 16, intermediate 128, vocab 100;
 * ArmoRM head: 3 objectives, gating 64 -> 8 -> 3 */
static armo_config small(armo_arch arch) {
    armo_config c;
    memset(&c, 0, sizeof c);
    c.arch = arch;
    c.hidden_size = 64;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.intermediate_size = 128;
    c.vocab_size = 100;
    c.max_position_embeddings = 131072;
    c.num_objectives = 3;
    c.gating_hidden_dim = 8;
    c.gating_n_hidden = 1;
    c.num_labels = 2;
    return c;
}

static void test_weights(void) {
    /* bf16: embed 100*64 = 6400; per layer attn_norm 64 + qkv (64+2*32)*64 =
     * 8192 + o 64*64 = 4096 + mlp_norm 64 + gate|up 2*128*64 = 16384 + down
     * 64*128 = 8192 -> 36992, x2 = 73984; final norm 64: 80448 values,
     * 160896 bytes.  fp32 ArmoRM: RoPE 16/2 = 8, regression 3*64 = 192,
     * transform 9, gating 8*64 + 8 = 520 and 3*8 + 3 = 27: 756 values, 3024
     * bytes.  fp32 single head: 8 + 2*64 = 136 values, 544 bytes. */
    armo_config a = small(ARMO_ARCH_ARMORM), s = small(ARMO_ARCH_SEQCLS);
    CHECK(armo_dev_weight_bytes(&a) == 160896 + 3024, "ArmoRM weights %zu, expected 163920",
          armo_dev_weight_bytes(&a));
    CHECK(armo_dev_weight_bytes(&s) == 160896 + 544, "seqcls weights %zu, expected 161440",
          armo_dev_weight_bytes(&s));
}

static void test_activations(void) {
    armo_config c = small(ARMO_ARCH_ARMORM);
    /* T 100, S 4, no sharing: R = max(100, 8) = 100.  x, xn 100*64*2 =
     * 12800 each; qkv 100*128*2 = 25600 (RoPE and attention work in place:
     * no split q, k, v since issue 20); attn 12800; o 100*max(64, 64)*2 =
     * 12800; gate|up 100*256*2 = 51200; swiglu 25600; ids, positions 400
     * each; cu 5*4 = 20; head rows 8*4 = 32; head inputs 2*4*64*4 = 2048;
     * head outputs 4*(3*3+1)*4 = 160; scratch 2*4*max(8, 3)*4 = 256.
     * Sum 156916. */
    size_t got = armo_dev_activation_bytes(&c, (armo_batch_shape){100, 4, 0});
    CHECK(got == 156916, "T100 S4: %zu bytes, expected 156916", got);
    /* + sharing (E 200): attention's prefix_of, 4*4 = 16 bytes (no expanded
     * layout any more) */
    got = armo_dev_activation_bytes(&c, (armo_batch_shape){100, 4, 200});
    CHECK(got == 156916 + 16, "T100 S4 E200: %zu bytes, expected 156932", got);
    /* T 10, S 8: the head's rows set R = 16.  x, xn 2048 each; qkv 2560;
     * attn, o 2048 each; gate|up 8192; swiglu 4096; ids, positions 40 each;
     * cu 36; rows 64; head inputs 4096; head outputs 320; scratch 512.
     * Sum 28148. */
    got = armo_dev_activation_bytes(&c, (armo_batch_shape){10, 8, 0});
    CHECK(got == 28148, "T10 S8: %zu bytes, expected 28148", got);
    /* single head: no scratch, head outputs S*(3*2+1)*4 = 112 */
    armo_config s = small(ARMO_ARCH_SEQCLS);
    got = armo_dev_activation_bytes(&s, (armo_batch_shape){100, 4, 0});
    CHECK(got == 156916 - 256 - 160 + 112, "seqcls T100 S4: %zu bytes, expected 156612", got);
    CHECK(armo_dev_activation_bytes(&c, (armo_batch_shape){0, 0, 0}) == 0,
          "an empty shape allocates nothing");

    /* a budget: {n, min(max_seqs, n), 2n with sharing} */
    armo_batch_shape b = armo_dev_budget_shape(100, 4, 1);
    CHECK(b.tokens == 100 && b.seqs == 4 && b.exp_rows == 200, "budget shape %lld %lld %lld",
          (long long)b.tokens, (long long)b.seqs, (long long)b.exp_rows);
    b = armo_dev_budget_shape(3, 1024, 0);
    CHECK(b.tokens == 3 && b.seqs == 3 && b.exp_rows == 0, "budget shape %lld %lld %lld",
          (long long)b.tokens, (long long)b.seqs, (long long)b.exp_rows);
    armo_dev_need n;
    armo_dev_need_for(&c, 100, 4, 1, &n);
    CHECK(n.weights == 163920 && n.workspace == ((size_t)128 << 20) &&
              n.activations == 156932 && n.total == 163920 + ((size_t)128 << 20) + 156932,
          "need for 100 tokens: weights %zu workspace %zu activations %zu total %zu", n.weights,
          n.workspace, n.activations, n.total);
    /* per token at R = T: x, xn 256; qkv 256; attn 128; o 128; gate|up
     * 512; swiglu 256; ids, positions 8 = 1544; sharing adds nothing per
     * token (its prefix_of is per sequence).  Per sequence: cu 4, rows 8,
     * head inputs 512, outputs 40, scratch 64 = 628. */
    CHECK(n.per_token == 1544.0 && n.per_token_shared == 0.0 && n.per_seq == 628.0,
          "rates: %g per token (%g shared), %g per sequence; expected 1544 (0), 628",
          n.per_token, n.per_token_shared, n.per_seq);
    armo_dev_need_for(&c, 100, 4, 0, &n);
    CHECK(n.per_token == 1544.0 && n.activations == 156916, "unshared: %g per token, %zu",
          n.per_token, n.activations);
}

static void test_fit(void) {
    armo_config c = small(ARMO_ARCH_ARMORM);
    const size_t fixed = 163920 + ((size_t)128 << 20);
    const size_t act512 = armo_dev_activation_bytes(&c, armo_dev_budget_shape(512, 4, 1));
    armo_fit f;
    char msg[1024];

    /* exactly enough for the budget: fits */
    armo_dev_fit(&c, 1000, 4, 1, fixed + armo_dev_activation_bytes(&c, armo_dev_budget_shape(1000, 4, 1)),
                 (size_t)80 << 30, &f);
    CHECK(f.kind == ARMO_FIT_OK, "an exact fit: kind %d", f.kind);
    CHECK(f.fit_tokens == 768, "fit_tokens %lld, expected 1000 rounded down to 768",
          (long long)f.fit_tokens);

    /* room for 512 tokens: the 1000-token budget does not fit, 512 does */
    armo_dev_fit(&c, 1000, 4, 1, fixed + act512, (size_t)80 << 30, &f);
    CHECK(f.kind == ARMO_FIT_LOWER && f.fit_tokens == 512, "room for 512: kind %d fit %lld",
          f.kind, (long long)f.fit_tokens);
    armo_dev_fit_message(&f, msg, sizeof msg);
    printf("lower: %s\n", msg);
    CHECK(test_contains(msg, "a 1000-token batch needs") && test_contains(msg, "free of 80.00 GiB") &&
              test_contains(msg, "--max-batch-tokens 512 would fit"),
          "message: %s", msg);
    /* one byte less: 511 tokens, rounded down to 256 */
    armo_dev_fit(&c, 1000, 4, 1, fixed + act512 - 1, (size_t)80 << 30, &f);
    CHECK(f.kind == ARMO_FIT_LOWER && f.fit_tokens == 256, "room for 511: kind %d fit %lld",
          f.kind, (long long)f.fit_tokens);

    /* room for 100 tokens: below the minimal 128-token batch -> refused */
    armo_dev_fit(&c, 1000, 4, 1,
                 fixed + armo_dev_activation_bytes(&c, armo_dev_budget_shape(100, 4, 1)),
                 (size_t)40 << 30, &f);
    CHECK(f.kind == ARMO_FIT_NONE && f.fit_tokens == 100, "room for 100: kind %d fit %lld",
          f.kind, (long long)f.fit_tokens);
    armo_dev_fit_message(&f, msg, sizeof msg);
    printf("none: %s\n", msg);
    CHECK(test_contains(msg, "even a minimal 128-token batch needs") &&
              test_contains(msg, "--max-batch-tokens 100 would fit, below"),
          "message: %s", msg);
    /* the minimal batch is never above the budget asked */
    CHECK(f.minimal.activations == armo_dev_activation_bytes(&c, armo_dev_budget_shape(128, 4, 1)),
          "minimal batch: %zu", f.minimal.activations);
    armo_dev_fit(&c, 64, 4, 1, fixed, (size_t)40 << 30, &f);
    CHECK(f.minimal.activations == f.need.activations, "a 64-token budget is its own minimum");

    /* not even the weights */
    armo_dev_fit(&c, 16384, 1024, 1, 100000, (size_t)40 << 30, &f);
    CHECK(f.kind == ARMO_FIT_NONE && f.fit_tokens == 0, "no room: kind %d fit %lld", f.kind,
          (long long)f.fit_tokens);
    armo_dev_fit_message(&f, msg, sizeof msg);
    printf("weights: %s\n", msg);
    CHECK(test_contains(msg, "no --max-batch-tokens fits: the weights and workspace alone need "
                             "128.16 MiB") &&
              test_contains(msg, "97.66 KiB free"),
          "message: %s", msg);
}

/* ArmoRM-Llama3-8B's shapes, with Llama-3.1's 131072 positions. */
static void test_8b(void) {
    armo_config c;
    memset(&c, 0, sizeof c);
    c.arch = ARMO_ARCH_ARMORM;
    c.hidden_size = 4096;
    c.num_layers = 32;
    c.num_heads = 32;
    c.num_kv_heads = 8;
    c.head_dim = 128;
    c.intermediate_size = 14336;
    c.vocab_size = 128256;
    c.num_objectives = 19;
    c.gating_hidden_dim = 1024;
    c.gating_n_hidden = 3;
    armo_dev_need d, big;
    armo_dev_need_for(&c, 16384, 1024, 1, &d);
    armo_dev_need_for(&c, 131072, 1024, 1, &big);
    const double gib = 1024.0 * 1024.0 * 1024.0;
    printf("8B: weights %.2f GiB, %.0f bytes per token (%.0f for sharing), 16384 tokens: "
           "activations %.2f GiB total %.2f GiB; 131072: activations %.2f GiB total %.2f GiB\n",
           d.weights / gib, d.per_token, d.per_token_shared, d.activations / gib, d.total / gib,
           big.activations / gib, big.total / gib);
    /* 7.5 B parameters in bf16: 15.04 GB */
    CHECK(d.weights > (size_t)(14.0 * gib) && d.weights < (size_t)(14.1 * gib), "8B weights %zu",
          d.weights);
    /* 30.17 GiB since issue 20 (no split q, k, v, no expanded layout; was > 36) */
    CHECK(big.total > (size_t)(30 * gib), "8B at 131072 tokens: %zu", big.total);
}

int main(void) {
    test_weights();
    test_activations();
    test_fit();
    test_8b();
    return test_finish("test_device_memory");
}
