/* random_model.c — see random_model.h. */
#include "weights/random_model.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "weights/st_writer.h"

armo_random_spec armo_random_spec_armorm(int layers, uint64_t seed) {
    armo_random_spec s = {
        .arch = ARMO_ARCH_ARMORM, .hidden = 4096, .layers = layers, .heads = 32, .kv_heads = 8,
        .head_dim = 128, .intermediate = 14336, .vocab = 128257, .objectives = 19,
        .gating_hidden = 1024, .gating_n_hidden = 3, .labels = 1, .rope_theta = 500000.0,
        .llama3_rope = 0, .max_positions = 8192, .seed = seed,
    };
    return s;
}

static uint64_t next_u64(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform with standard deviation std, centred on mean */
static float rnd(uint64_t *s, float mean, float std) {
    double u = (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); /* [0,1) */
    return mean + (float)((2.0 * u - 1.0) * 1.7320508 * std);
}

typedef struct {
    st_write_tensor *t;
    int n, cap;
    char **names;
    void **bufs;
} tensor_list;

static int add(tensor_list *l, uint64_t *seed, const char *name, armo_dtype dt, int64_t rows,
               int64_t cols, float mean, float std, armo_err *e) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        st_write_tensor *t = realloc(l->t, (size_t)cap * sizeof *t);
        char **nm = realloc(l->names, (size_t)cap * sizeof *nm);
        void **b = realloc(l->bufs, (size_t)cap * sizeof *b);
        if (t) l->t = t;
        if (nm) l->names = nm;
        if (b) l->bufs = b;
        if (!t || !nm || !b) return armo_err_set(e, "out of memory");
        l->cap = cap;
    }
    int64_t numel = rows * (cols ? cols : 1);
    void *buf = malloc((size_t)numel * armo_dtype_size(dt));
    char *nm = strdup(name);
    if (!buf || !nm) {
        free(buf);
        free(nm);
        return armo_err_set(e, "out of memory allocating %s", name);
    }
    for (int64_t i = 0; i < numel; i++) {
        float v = rnd(seed, mean, std);
        if (dt == ARMO_DT_BF16)
            ((uint16_t *)buf)[i] = armo_f32_to_bf16(v);
        else
            ((float *)buf)[i] = v;
    }
    st_write_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = dt;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = buf;
    l->names[l->n] = nm;
    l->bufs[l->n] = buf;
    l->n++;
    return 0;
}

static int write_config(const char *path, const armo_random_spec *s, armo_err *e) {
    json_t *c = json_object();
    json_object_set_new(c, "architectures",
                        json_pack("[s]", s->arch == ARMO_ARCH_ARMORM
                                             ? "LlamaForRewardModelWithGating"
                                             : "LlamaForSequenceClassification"));
    json_object_set_new(c, "model_type", json_string("llama"));
    json_object_set_new(c, "hidden_size", json_integer(s->hidden));
    json_object_set_new(c, "num_hidden_layers", json_integer(s->layers));
    json_object_set_new(c, "num_attention_heads", json_integer(s->heads));
    json_object_set_new(c, "num_key_value_heads", json_integer(s->kv_heads));
    json_object_set_new(c, "head_dim", json_integer(s->head_dim));
    json_object_set_new(c, "intermediate_size", json_integer(s->intermediate));
    json_object_set_new(c, "vocab_size", json_integer(s->vocab));
    json_object_set_new(c, "max_position_embeddings", json_integer(s->max_positions));
    json_object_set_new(c, "rms_norm_eps", json_real(1e-5));
    json_object_set_new(c, "rope_theta", json_real(s->rope_theta));
    if (s->llama3_rope)
        json_object_set_new(c, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor",
                                      8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                                      "original_max_position_embeddings", 8192));
    else
        json_object_set_new(c, "rope_scaling", json_null());
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "attention_bias", json_false());
    json_object_set_new(c, "mlp_bias", json_false());
    json_object_set_new(c, "tie_word_embeddings", json_false());
    json_object_set_new(c, "torch_dtype", json_string("bfloat16"));
    if (s->vocab > 128009) {
        json_object_set_new(c, "bos_token_id", json_integer(128000));
        json_object_set_new(c, "eos_token_id", json_integer(128009));
    }
    if (s->vocab > 128256) json_object_set_new(c, "pad_token_id", json_integer(128256));
    if (s->arch == ARMO_ARCH_ARMORM) {
        json_object_set_new(c, "num_objectives", json_integer(s->objectives));
        json_object_set_new(c, "gating_temperature", json_real(10.0));
        json_object_set_new(c, "gating_hidden_dim", json_integer(s->gating_hidden));
        json_object_set_new(c, "gating_n_hidden", json_integer(s->gating_n_hidden));
    } else {
        json_object_set_new(c, "num_labels", json_integer(s->labels));
    }
    int rc = json_dump_file(c, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(c);
    return rc == 0 ? 0 : armo_err_set(e, "%s: cannot write", path);
}

int armo_write_random_model(const char *dir, const armo_random_spec *s, armo_err *e) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return armo_err_set(e, "%s: cannot create directory: %s", dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (write_config(path, s, e)) return -1;

    uint64_t seed = s->seed;
    tensor_list l = {0};
    int rc = 0;
    const int64_t H = s->hidden, q = (int64_t)s->heads * s->head_dim,
                  kv = (int64_t)s->kv_heads * s->head_dim, I = s->intermediate;
    const float sH = 1.0f / sqrtf((float)H), sQ = 1.0f / sqrtf((float)q),
                sI = 1.0f / sqrtf((float)I);
    char n[128];
    rc |= add(&l, &seed, "model.embed_tokens.weight", ARMO_DT_BF16, s->vocab, H, 0, 1.0f, e);
    for (int i = 0; !rc && i < s->layers; i++) {
#define T(suffix, r, c, mean, std)                                              \
    snprintf(n, sizeof n, "model.layers.%d.%s", i, suffix);                     \
    rc |= add(&l, &seed, n, ARMO_DT_BF16, r, c, mean, std, e);
        T("input_layernorm.weight", H, 0, 1.0f, 0.1f);
        T("self_attn.q_proj.weight", q, H, 0, 2.0f * sH);
        T("self_attn.k_proj.weight", kv, H, 0, 2.0f * sH);
        T("self_attn.v_proj.weight", kv, H, 0, sH);
        T("self_attn.o_proj.weight", H, q, 0, 0.5f * sQ);
        T("post_attention_layernorm.weight", H, 0, 1.0f, 0.1f);
        T("mlp.gate_proj.weight", I, H, 0, sH);
        T("mlp.up_proj.weight", I, H, 0, sH);
        T("mlp.down_proj.weight", H, I, 0, 0.5f * sI);
#undef T
    }
    if (!rc) rc |= add(&l, &seed, "model.norm.weight", ARMO_DT_BF16,
                       H, 0, 1.0f, 0.1f, e);
    if (!rc && s->arch == ARMO_ARCH_ARMORM) {
        const int64_t K = s->objectives, G = s->gating_hidden;
        rc |= add(&l, &seed, "regression_layer.weight", ARMO_DT_F32, K, H, 0, sH, e);
        int nl = s->gating_n_hidden + 1;
        for (int g = 0; !rc && g < nl; g++) {
            int64_t in = g == 0 ? H : G, out = g == nl - 1 ? K : G;
            snprintf(n, sizeof n, "gating.layers.%d.weight", g);
            /* the last layer is scaled so that z / T has a spread of ~1.5 */
            rc |= add(&l, &seed, n, ARMO_DT_F32, out, in, 0,
                      (g == nl - 1 ? 15.0f : 1.6f) / sqrtf((float)in), e);
            snprintf(n, sizeof n, "gating.layers.%d.bias", g);
            rc |= add(&l, &seed, n, ARMO_DT_F32, out, 0, 0, 0.3f, e);
        }
        if (!rc) rc |= add(&l, &seed, "gating.logit_scale", ARMO_DT_F32, 1, 0, 1.7f, 0.0f, e);
        if (!rc) {
            rc |= add(&l, &seed, "reward_transform_matrix", ARMO_DT_F32, K, K, 0, 0.2f, e);
            if (!rc) { /* identity plus noise, as a trained transform looks */
                float *m = l.bufs[l.n - 1];
                for (int64_t j = 0; j < K; j++) m[j * K + j] += 1.0f;
            }
        }
    } else if (!rc) {
        rc |= add(&l, &seed, "score.weight", ARMO_DT_F32, s->labels, H, 0, sH, e);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = st_write_file(path, l.t, l.n, e);
    }
    for (int i = 0; i < l.n; i++) {
        free(l.names[i]);
        free(l.bufs[i]);
    }
    free(l.t);
    free(l.names);
    free(l.bufs);
    return rc ? -1 : 0;
}
