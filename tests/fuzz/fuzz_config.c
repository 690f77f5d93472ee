/* fuzz_config.c — libFuzzer harness for config.json parsing
 * (weights/config.c: armo_config_load).
 *
 * armo_config_load takes a path (jansson reads the file), so the input is
 * written to a memfd and loaded as /proc/self/fd/N: the input is the whole
 * config.json.
 *
 * Invariants (config.h's promises): a failure leaves a non-empty message
 * naming the file; a success gives a known architecture, positive
 * dimensions, heads a multiple of kv heads, an even head_dim in [2, 1024]
 * whether given or derived (hidden = heads * head_dim unless head_dim was
 * given, which the harness cannot see, so only evenness and range are
 * checked), a known RoPE type with
 * high_freq_factor > low_freq_factor for llama3, bos within the vocabulary,
 * at most ARMO_MAX_EOS eos ids, head sizes within the fixed array limits
 * (num_labels in 1..ARMO_MAX_LABELS also when it comes from id2label),
 * and NUL-terminated strings. */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_util.h"
#include "weights/config.h"

static fuzz_memfile g_file;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_memfile_open(&g_file, "config.json");
    return 0;
}

static void check_config(const armo_config *c) {
    FUZZ_CHECK(c->arch == ARMO_ARCH_ARMORM || c->arch == ARMO_ARCH_SEQCLS ||
                   c->arch == ARMO_ARCH_BACKBONE,
               "arch %d", (int)c->arch);
    FUZZ_CHECK(memchr(c->arch_name, 0, sizeof c->arch_name) &&
                   memchr(c->model_type, 0, sizeof c->model_type) &&
                   memchr(c->torch_dtype, 0, sizeof c->torch_dtype),
               "unterminated string field");
    FUZZ_CHECK(c->hidden_size > 0 && c->num_layers > 0 && c->num_heads > 0 &&
                   c->num_kv_heads > 0 && c->intermediate_size > 0 && c->vocab_size > 0 &&
                   c->max_position_embeddings > 0,
               "a non-positive dimension");
    FUZZ_CHECK(c->num_heads % c->num_kv_heads == 0, "heads %d kv %d", c->num_heads,
               c->num_kv_heads);
    FUZZ_CHECK(c->head_dim >= 2 && c->head_dim <= 1024 && c->head_dim % 2 == 0, "head_dim %d",
               c->head_dim);
    FUZZ_CHECK(c->rms_norm_eps >= 0 && c->rms_norm_eps <= 1, "eps %g", c->rms_norm_eps);
    FUZZ_CHECK(c->rope_theta >= 1, "rope_theta %g", c->rope_theta);
    FUZZ_CHECK(c->rope_type == ARMO_ROPE_DEFAULT || c->rope_type == ARMO_ROPE_LLAMA3,
               "rope type %d", (int)c->rope_type);
    if (c->rope_type == ARMO_ROPE_LLAMA3)
        FUZZ_CHECK(c->rope_factor > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor &&
                       c->rope_original_max_pos > 0,
                   "llama3 rope parameters");
    FUZZ_CHECK(c->bos_token_id == -1 || (c->bos_token_id >= 0 && c->bos_token_id < c->vocab_size),
               "bos %d, vocab %d", c->bos_token_id, c->vocab_size);
    FUZZ_CHECK(c->pad_token_id >= -1, "pad %d", c->pad_token_id);
    FUZZ_CHECK(c->n_eos >= 0 && c->n_eos <= ARMO_MAX_EOS, "n_eos %d", c->n_eos);
    if (c->arch == ARMO_ARCH_ARMORM)
        FUZZ_CHECK(c->num_objectives >= 1 && c->num_objectives <= ARMO_MAX_OBJECTIVES &&
                       c->gating_hidden_dim >= 1 && c->gating_n_hidden >= 0 &&
                       c->gating_n_hidden + 1 <= ARMO_MAX_GATING_LAYERS &&
                       c->gating_temperature > 0,
                   "ArmoRM head: %d objectives, %d hidden of %d, T %g", c->num_objectives,
                   c->gating_n_hidden, c->gating_hidden_dim, c->gating_temperature);
    else if (c->arch == ARMO_ARCH_SEQCLS) /* a bare backbone has no head */
        FUZZ_CHECK(c->num_labels >= 1 && c->num_labels <= ARMO_MAX_LABELS, "num_labels %d",
                   c->num_labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_memfile_set(&g_file, data, size);
    armo_config c;
    armo_err e = {{0}};
    if (armo_config_load(g_file.path, &c, &e) == 0) {
        check_config(&c);
    } else {
        FUZZ_CHECK(e.msg[0] != 0, "failure without a message");
        FUZZ_CHECK(strstr(e.msg, g_file.path) != NULL, "message does not name the file: %s",
                   e.msg);
    }
    return 0;
}
