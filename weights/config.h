/* config.h — a checkpoint's config.json as the engine needs it.
 *
 * Every key of DESIGN §2 is read and checked: dimensions positive and
 * consistent (hidden = heads * head_dim unless head_dim is given, heads a
 * multiple of kv heads), hidden_act "silu", no attention / MLP bias,
 * rope_scaling null or of type "llama3".  Three kinds of architecture are
 * known: LlamaForRewardModelWithGating (ArmoRM), LlamaForSequenceClassification
 * (one linear score head), and a bare backbone (LlamaModel, or
 * LlamaForCausalLM with its lm_head ignored) that `armo embed` reads hidden
 * states from but nothing scores.  Anything else is a clear error at load. */
#ifndef ARMO_CONFIG_H
#define ARMO_CONFIG_H

#include "base/errors.h"

#ifdef __cplusplus
extern "C" { /* also read by the .cu files (through head_params.h) */
#endif

typedef enum {
    ARMO_ARCH_ARMORM = 1,        /* LlamaForRewardModelWithGating */
    ARMO_ARCH_SEQCLS = 2,        /* LlamaForSequenceClassification */
    ARMO_ARCH_BACKBONE = 3,      /* LlamaModel / LlamaForCausalLM: no head (armo embed) */
} armo_arch;

typedef enum {
    ARMO_ROPE_DEFAULT = 0,
    ARMO_ROPE_LLAMA3 = 1,
} armo_rope_type;

#define ARMO_MAX_EOS 8
/* Limits of the fixed-size head arrays (armo_result, armo_head_params),
 * checked here at load so that no later stage meets a larger model. */
#define ARMO_MAX_OBJECTIVES 64
#define ARMO_MAX_LABELS 16
#define ARMO_MAX_GATING_LAYERS 8     /* gating_n_hidden + 1 */

typedef struct {
    armo_arch arch;
    char arch_name[64];
    char model_type[32];
    char torch_dtype[16];

    int hidden_size;
    int num_layers;
    int num_heads;
    int num_kv_heads;
    int head_dim;
    int intermediate_size;
    int vocab_size;
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    int tie_word_embeddings;

    armo_rope_type rope_type;
    double rope_factor;             /* llama3 only */
    double rope_low_freq_factor;
    double rope_high_freq_factor;
    int rope_original_max_pos;

    int bos_token_id;               /* -1 if absent */
    int pad_token_id;               /* -1 if absent or null */
    int eos_token_ids[ARMO_MAX_EOS];
    int n_eos;

    /* ArmoRM head */
    int num_objectives;
    int gating_hidden_dim;
    int gating_n_hidden;
    double gating_temperature;
    /* "objective_names" (armo train export writes it; the released ArmoRM has
     * none): the names armo score reports; n_objective_names 0 when absent */
    int n_objective_names;
    char objective_names[ARMO_MAX_OBJECTIVES][64];

    /* sequence classification head */
    int num_labels;
} armo_config;

/* Parses PATH (a config.json).  Errors name the file and the key. */
int armo_config_load(const char *path, armo_config *cfg, armo_err *e);

/* The 19 ArmoRM objective names in order (DESIGN §2); NULL past the end. */
const char *armo_objective_name(int i);
#define ARMO_NUM_NAMED_OBJECTIVES 19

#ifdef __cplusplus
}
#endif

#endif
