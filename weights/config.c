/* config.c — config.json -> armo_config (see config.h).
 *
 * Reads both spellings transformers has used: the classic top-level
 * rope_theta / rope_scaling / torch_dtype and transformers 5's
 * rope_parameters / dtype.  Integer keys must be JSON integers, float keys
 * numbers; every error names the file and the key. */
#include "weights/config.h"

#include <jansson.h>
#include <string.h>

static const char *const k_objectives[ARMO_NUM_NAMED_OBJECTIVES] = {
    "helpsteer-helpfulness",
    "helpsteer-correctness",
    "helpsteer-coherence",
    "helpsteer-complexity",
    "helpsteer-verbosity",
    "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness",
    "ultrafeedback-honesty",
    "ultrafeedback-helpfulness",
    "beavertails-is_safe",
    "prometheus-score",
    "argilla-overall_quality",
    "argilla-judge_lm",
    "code-complexity",
    "code-style",
    "code-explanation",
    "code-instruction-following",
    "code-readability",
};

const char *armo_objective_name(int i) {
    return (i >= 0 && i < ARMO_NUM_NAMED_OBJECTIVES) ? k_objectives[i] : NULL;
}

/* An integer key: absent (or null when null_ok) -> *out = def, or an error
 * when required.  Range [lo, hi] checked. */
static int get_int(json_t *obj, const char *path, const char *key, int required, long long def,
                   long long lo, long long hi, int *out, armo_err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return armo_err_set(e, "%s: required key \"%s\" is missing", path, key);
        *out = (int)def;
        return 0;
    }
    if (!json_is_integer(v))
        return armo_err_set(e, "%s: key \"%s\" must be an integer", path, key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return armo_err_set(e, "%s: key \"%s\" = %lld is out of range [%lld, %lld]", path, key, x,
                            lo, hi);
    *out = (int)x;
    return 0;
}

static int get_num(json_t *obj, const char *path, const char *key, int required, double def,
                   double lo, double hi, double *out, armo_err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return armo_err_set(e, "%s: required key \"%s\" is missing", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return armo_err_set(e, "%s: key \"%s\" must be a number", path, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return armo_err_set(e, "%s: key \"%s\" = %g is out of range [%g, %g]", path, key, x, lo,
                            hi);
    *out = x;
    return 0;
}

static int get_bool(json_t *obj, const char *path, const char *key, int def, int *out,
                    armo_err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return armo_err_set(e, "%s: key \"%s\" must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

static void get_str(json_t *obj, const char *key, char *dst, size_t len) {
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v)) snprintf(dst, len, "%s", json_string_value(v));
}

/* rope_scaling (classic) or rope_parameters (transformers 5): null, type
 * "default", or type "llama3" with its four parameters. */
static int parse_rope(json_t *root, const char *path, armo_config *c, armo_err *e) {
    const char *key = "rope_scaling";
    json_t *rs = json_object_get(root, key);
    json_t *rp = json_object_get(root, "rope_parameters");
    if ((!rs || json_is_null(rs)) && json_is_object(rp)) {
        rs = rp;
        key = "rope_parameters";
        if (get_num(rp, path, "rope_theta", 0, c->rope_theta, 1.0, 1e12, &c->rope_theta, e))
            return -1;
    }
    c->rope_type = ARMO_ROPE_DEFAULT;
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs))
        return armo_err_set(e, "%s: key \"%s\" must be an object or null", path, key);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    const char *type = json_is_string(t) ? json_string_value(t) : "default";
    if (!strcmp(type, "default")) return 0;
    if (strcmp(type, "llama3") != 0)
        return armo_err_set(e,
                            "%s: %s type \"%s\" is not supported (armo knows the default RoPE "
                            "and \"llama3\" scaling)",
                            path, key, type);
    c->rope_type = ARMO_ROPE_LLAMA3;
    char sub[600];
    snprintf(sub, sizeof sub, "%s (%s)", path, key);
    if (get_num(rs, sub, "factor", 1, 0, 1e-6, 1e6, &c->rope_factor, e) ||
        get_num(rs, sub, "low_freq_factor", 1, 0, 1e-6, 1e6, &c->rope_low_freq_factor, e) ||
        get_num(rs, sub, "high_freq_factor", 1, 0, 1e-6, 1e6, &c->rope_high_freq_factor, e) ||
        get_int(rs, sub, "original_max_position_embeddings", 1, 0, 1, 1 << 30,
                &c->rope_original_max_pos, e))
        return -1;
    if (c->rope_high_freq_factor <= c->rope_low_freq_factor)
        return armo_err_set(e, "%s: high_freq_factor (%g) must exceed low_freq_factor (%g)", sub,
                            c->rope_high_freq_factor, c->rope_low_freq_factor);
    return 0;
}

static int parse_eos(json_t *root, const char *path, armo_config *c, armo_err *e) {
    json_t *v = json_object_get(root, "eos_token_id");
    c->n_eos = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        c->eos_token_ids[c->n_eos++] = (int)json_integer_value(v);
        return 0;
    }
    if (!json_is_array(v))
        return armo_err_set(e, "%s: key \"eos_token_id\" must be an integer or a list", path);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x))
            return armo_err_set(e, "%s: eos_token_id[%zu] must be an integer", path, i);
        if (c->n_eos < ARMO_MAX_EOS) c->eos_token_ids[c->n_eos++] = (int)json_integer_value(x);
    }
    return 0;
}

/* "objective_names": absent, or num_objectives distinct strings (< 64 bytes). */
static int parse_objective_names(json_t *root, const char *path, armo_config *c, armo_err *e) {
    json_t *a = json_object_get(root, "objective_names");
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a) || (int)json_array_size(a) != c->num_objectives)
        return armo_err_set(e, "%s: \"objective_names\" must be a list of num_objectives (%d) "
                            "names", path, c->num_objectives);
    for (int i = 0; i < c->num_objectives; i++) {
        const char *s = json_string_value(json_array_get(a, (size_t)i));
        if (!s || !s[0] || strlen(s) >= sizeof c->objective_names[i])
            return armo_err_set(e, "%s: objective_names[%d] must be a non-empty string of at most "
                                "%zu bytes", path, i, sizeof c->objective_names[i] - 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->objective_names[j], s))
                return armo_err_set(e, "%s: objective_names[%d] \"%s\" repeats "
                                    "objective_names[%d]", path, i, s, j);
        snprintf(c->objective_names[i], sizeof c->objective_names[i], "%s", s);
    }
    c->n_objective_names = c->num_objectives;
    return 0;
}

static int parse_arch(json_t *root, const char *path, armo_config *c, armo_err *e) {
    json_t *a = json_object_get(root, "architectures");
    if (!json_is_array(a) || json_array_size(a) == 0 || !json_is_string(json_array_get(a, 0)))
        return armo_err_set(e,
                            "%s: \"architectures\" must be a non-empty list naming the model "
                            "class (LlamaForRewardModelWithGating or "
                            "LlamaForSequenceClassification)",
                            path);
    const char *name = json_string_value(json_array_get(a, 0));
    snprintf(c->arch_name, sizeof c->arch_name, "%s", name);
    if (!strcmp(name, "LlamaForRewardModelWithGating"))
        c->arch = ARMO_ARCH_ARMORM;
    else if (!strcmp(name, "LlamaForSequenceClassification"))
        c->arch = ARMO_ARCH_SEQCLS;
    else if (!strcmp(name, "LlamaModel") || !strcmp(name, "LlamaForCausalLM"))
        c->arch = ARMO_ARCH_BACKBONE;
    else
        return armo_err_set(e,
                            "%s: architecture \"%s\" is not supported (armo runs "
                            "LlamaForRewardModelWithGating and LlamaForSequenceClassification, "
                            "and embeds with LlamaModel / LlamaForCausalLM)",
                            path, name);
    return 0;
}

static int parse(json_t *root, const char *path, armo_config *c, armo_err *e) {
    if (!json_is_object(root)) return armo_err_set(e, "%s: top level must be a JSON object", path);
    if (parse_arch(root, path, c, e)) return -1;
    get_str(root, "model_type", c->model_type, sizeof c->model_type);
    if (c->model_type[0] && strcmp(c->model_type, "llama") != 0)
        return armo_err_set(e, "%s: model_type \"%s\" is not supported (armo runs \"llama\")", path,
                            c->model_type);
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "unspecified");
    get_str(root, "dtype", c->torch_dtype, sizeof c->torch_dtype);
    get_str(root, "torch_dtype", c->torch_dtype, sizeof c->torch_dtype);

    const int big = 1 << 30;
    if (get_int(root, path, "hidden_size", 1, 0, 1, 1 << 20, &c->hidden_size, e) ||
        get_int(root, path, "num_hidden_layers", 1, 0, 1, 4096, &c->num_layers, e) ||
        get_int(root, path, "num_attention_heads", 1, 0, 1, 4096, &c->num_heads, e) ||
        get_int(root, path, "num_key_value_heads", 0, c->num_heads, 1, 4096, &c->num_kv_heads,
                e) ||
        get_int(root, path, "intermediate_size", 1, 0, 1, 1 << 22, &c->intermediate_size, e) ||
        get_int(root, path, "vocab_size", 1, 0, 1, big, &c->vocab_size, e) ||
        get_int(root, path, "max_position_embeddings", 0, 8192, 1, big,
                &c->max_position_embeddings, e) ||
        get_num(root, path, "rms_norm_eps", 0, 1e-6, 0.0, 1.0, &c->rms_norm_eps, e) ||
        get_num(root, path, "rope_theta", 0, 10000.0, 1.0, 1e12, &c->rope_theta, e) ||
        get_bool(root, path, "tie_word_embeddings", 0, &c->tie_word_embeddings, e))
        return -1;
    if (c->num_heads % c->num_kv_heads != 0)
        return armo_err_set(e,
                            "%s: num_attention_heads (%d) must be a multiple of "
                            "num_key_value_heads (%d)",
                            path, c->num_heads, c->num_kv_heads);
    int def_hd = c->hidden_size / c->num_heads;
    if (get_int(root, path, "head_dim", 0, def_hd, 2, 1024, &c->head_dim, e)) return -1;
    if (c->head_dim < 2 || c->head_dim > 1024) /* the default skips get_int's range check */
        return armo_err_set(e, "%s: head_dim (hidden_size %d / num_attention_heads %d = %d) is "
                            "out of range [2, 1024]",
                            path, c->hidden_size, c->num_heads, c->head_dim);
    if (!json_object_get(root, "head_dim") && c->hidden_size % c->num_heads != 0)
        return armo_err_set(e, "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d)",
                            path, c->hidden_size, c->num_heads);
    if (c->head_dim % 2 != 0)
        return armo_err_set(e, "%s: head_dim (%d) must be even for RoPE", path, c->head_dim);
    if (parse_rope(root, path, c, e)) return -1;

    char act[32] = "silu";
    get_str(root, "hidden_act", act, sizeof act);
    if (strcmp(act, "silu") != 0)
        return armo_err_set(e, "%s: hidden_act \"%s\" is not supported (Llama uses \"silu\")", path,
                            act);
    int attn_bias = 0, mlp_bias = 0;
    if (get_bool(root, path, "attention_bias", 0, &attn_bias, e) ||
        get_bool(root, path, "mlp_bias", 0, &mlp_bias, e))
        return -1;
    if (attn_bias || mlp_bias)
        return armo_err_set(e, "%s: %s is true; armo supports Llama without biases", path,
                            attn_bias ? "attention_bias" : "mlp_bias");

    if (get_int(root, path, "bos_token_id", 0, -1, 0, c->vocab_size - 1, &c->bos_token_id, e) ||
        get_int(root, path, "pad_token_id", 0, -1, 0, big, &c->pad_token_id, e) ||
        parse_eos(root, path, c, e))
        return -1;

    if (c->arch == ARMO_ARCH_ARMORM) {
        /* defaults are the reference's config_dict.get defaults */
        if (get_int(root, path, "num_objectives", 0, 19, 1, ARMO_MAX_OBJECTIVES,
                    &c->num_objectives, e) ||
            get_int(root, path, "gating_hidden_dim", 0, 1024, 1, 1 << 20, &c->gating_hidden_dim,
                    e) ||
            get_int(root, path, "gating_n_hidden", 0, 3, 0, ARMO_MAX_GATING_LAYERS - 1,
                    &c->gating_n_hidden, e) ||
            get_num(root, path, "gating_temperature", 0, 10.0, 1e-6, 1e6, &c->gating_temperature,
                    e) ||
            parse_objective_names(root, path, c, e))
            return -1;
    } else if (c->arch == ARMO_ARCH_SEQCLS) {
        /* transformers: num_labels if given, else len(id2label), else 2 */
        json_t *id2label = json_object_get(root, "id2label");
        long long def = json_is_object(id2label) ? (long long)json_object_size(id2label) : 2;
        if (get_int(root, path, "num_labels", 0, def, 1, ARMO_MAX_LABELS, &c->num_labels, e))
            return -1;
        if (c->num_labels < 1 || c->num_labels > ARMO_MAX_LABELS) /* from id2label's size */
            return armo_err_set(e, "%s: \"id2label\" has %d labels (num_labels); armo supports "
                                "1 to %d",
                                path, c->num_labels, ARMO_MAX_LABELS);
    }
    return 0;
}

int armo_config_load(const char *path, armo_config *cfg, armo_err *e) {
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line < 1)
            return armo_err_set(e, "%s: cannot read config (%s)", path, je.text);
        return armo_err_set(e, "%s:%d:%d: config is not valid JSON: %s", path, je.line, je.column,
                            je.text);
    }
    int rc = parse(root, path, cfg, e);
    json_decref(root);
    return rc;
}
