/* cmd_inspect.c — `armo inspect --model DIR`: what a checkpoint is and what
 * it will cost on a GPU, without running it.
 *
 * Opening the model runs every check of the loader (config keys, safetensors
 * headers, shapes), so inspect doubles as a validator: a corrupted shard or a
 * config that disagrees with the tensors is reported here with the same
 * message scoring would give. */
#include <stdio.h>
#include <string.h>

#include "host/cli/commands.h"
#include "weights/model.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: armo inspect --model DIR\n\n"
            "Loads a Hugging Face checkpoint directory (config.json + safetensors shards)\n"
            "with every check scoring applies, and prints its architecture, key config\n"
            "values, tensor and parameter counts, bytes per dtype and the GPU memory the\n"
            "CUDA backend needs for it.  Exit status 0 if the checkpoint is usable, 1 if\n"
            "not (the error names the file and tensor), 2 for bad arguments.\n\n"
            "  --model DIR   checkpoint directory\n"
            "  -h, --help    this text\n");
}

static const char *human(double bytes, char *buf, size_t len) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

/* Bytes per token of the CUDA backend's activations for one layer in flight
 * (bf16): residual, normed input, fused QKV, attention output, fused gate|up
 * and the SwiGLU product, plus fp32 head inputs — a planning estimate. */
static double activation_bytes_per_token(const armo_config *c) {
    double qkv = (double)(c->num_heads + 2 * c->num_kv_heads) * c->head_dim;
    double attn = (double)c->num_heads * c->head_dim;
    return 2.0 * (3.0 * c->hidden_size + qkv + attn + 3.0 * c->intermediate_size);
}

int cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "armo inspect: unexpected argument '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "armo inspect: --model DIR is required\n\n");
        usage(stderr);
        return 2;
    }
    armo_model m;
    armo_err err;
    if (armo_model_open(dir, &m, &err)) {
        fprintf(stderr, "armo inspect: %s\n", err.msg);
        return 1;
    }
    const armo_config *c = &m.cfg;
    char b1[32], b2[32], b3[32], b4[32];
    printf("model          %s\n", dir);
    if (c->arch == ARMO_ARCH_ARMORM)
        printf("architecture   %s (ArmoRM: %d objectives, gating MLP %d->%d x%d->%d, T=%g)\n",
               c->arch_name, c->num_objectives, c->hidden_size, c->gating_hidden_dim,
               c->gating_n_hidden, c->num_objectives, c->gating_temperature);
    else
        printf("architecture   %s (single linear head, %d label%s)\n", c->arch_name,
               c->num_labels, c->num_labels == 1 ? "" : "s");
    printf("backbone       %d layers, hidden %d, heads %d (KV %d, head_dim %d, GQA %d:1), "
           "intermediate %d\n",
           c->num_layers, c->hidden_size, c->num_heads, c->num_kv_heads, c->head_dim,
           c->num_heads / c->num_kv_heads, c->intermediate_size);
    printf("vocab          %d (bos %d, pad %d)\n", c->vocab_size, c->bos_token_id, c->pad_token_id);
    if (c->rope_type == ARMO_ROPE_LLAMA3)
        printf("rope           theta %g, llama3 scaling (factor %g, low %g, high %g, original max "
               "%d)\n",
               c->rope_theta, c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor,
               c->rope_original_max_pos);
    else
        printf("rope           theta %g, no scaling\n", c->rope_theta);
    printf("positions      max %d, rms_norm_eps %g, config dtype %s\n",
           c->max_position_embeddings, c->rms_norm_eps, c->torch_dtype);

    /* everything in the files, whether the forward reads it or not */
    size_t by_dtype[ARMO_DT_COUNT] = {0};
    int n_by_dtype[ARMO_DT_COUNT] = {0};
    size_t total = 0;
    for (int i = 0; i < m.ck.ntensors; i++) {
        by_dtype[m.ck.tensors[i].dtype] += m.ck.tensors[i].nbytes;
        n_by_dtype[m.ck.tensors[i].dtype]++;
        total += m.ck.tensors[i].nbytes;
    }
    int64_t params = armo_model_param_count(&m);
    printf("tensors        %d in %d file%s, %s\n", m.ck.ntensors, m.ck.nfiles,
           m.ck.nfiles == 1 ? "" : "s", human((double)total, b1, sizeof b1));
    printf("parameters     %lld used by the forward (%.3f B)\n", (long long)params,
           (double)params / 1e9);
    for (int d = 1; d < ARMO_DT_COUNT; d++)
        if (n_by_dtype[d])
            printf("  %-12s %d tensors, %s\n", armo_dtype_name((armo_dtype)d), n_by_dtype[d],
                   human((double)by_dtype[d], b1, sizeof b1));

    /* GPU: backbone in bf16, head kept in f32 */
    int64_t head = 0;
    if (c->arch == ARMO_ARCH_ARMORM) {
        head = m.regression.rows * m.regression.cols + 1 + m.transform.rows * m.transform.cols;
        for (int l = 0; l < m.gating_nlayers; l++)
            head += m.gating_w[l].rows * m.gating_w[l].cols + m.gating_b[l].rows;
    } else {
        head = m.score.rows * m.score.cols;
    }
    double weights = 2.0 * (double)(params - head) + 4.0 * (double)head;
    double act = activation_bytes_per_token(c);
    const int budget = 16384;
    printf("gpu memory     weights %s (backbone bf16, head f32); activations ~%s per token, "
           "%s at a %d-token batch; total ~%s\n",
           human(weights, b1, sizeof b1), human(act, b2, sizeof b2),
           human(act * budget, b3, sizeof b3), budget,
           human(weights + act * budget + 64.0 * 1024 * 1024, b4, sizeof b4));
    armo_model_close(&m);
    return 0;
}
