/* cmd_inspect.c — `armo inspect --model DIR`: what a checkpoint is and what
 * it will cost on a GPU, without running it.
 *
 * Opening the model runs every check of the loader (config keys, safetensors
 * headers, shapes), so inspect doubles as a validator: a corrupted shard or a
 * config that disagrees with the tensors is reported here with the same
 * message scoring would give. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/cli/version.h"
#include "host/engine/backend_open.h"
#include "host/engine/device_memory.h"
#include "host/text/chat_template.h"
#include "weights/model.h"
#include "weights/weight_scan.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: armo inspect --model DIR [--max-batch-tokens N] [--check-weights]\n\n"
            "Loads a Hugging Face checkpoint directory (config.json + safetensors shards)\n"
            "with every check scoring applies, and prints its architecture, key config\n"
            "values, tensor and parameter counts, bytes per dtype, the host memory the\n"
            "CPU backend adds (its fp32 copy of the layer matrices) and the GPU memory the\n"
            "CUDA backend needs for it: the weights, the workspace, the activations per\n"
            "token and per sequence, and the total for a batch of the default 16384\n"
            "tokens and of N (the most `armo score --max-batch-tokens N` can make it\n"
            "allocate, with prompt-prefix sharing; it allocates for the batches it is\n"
            "sent).  When a CUDA device is visible, also whether that fits in its free\n"
            "memory and how many tokens per batch do.  Exit status 0 if the checkpoint is\n"
            "usable, 1 if not (the error names the file and tensor), 2 for bad arguments.\n\n"
            "Also reports the chat template text records are rendered with: Llama-3-Instruct,\n"
            "Llama-3.1-Instruct, or unsupported (another template, none, or no tokenizer:\n"
            "exit status 2, as `armo score` refuses such a model unless --input-ids-only).\n\n"
            "  --model DIR              checkpoint directory\n"
            "  --max-batch-tokens N     also print what a batch of N tokens needs\n"
            "  --check-weights          scan every tensor of every shard for NaN / Inf\n"
            "                           (multithreaded, at memory speed; the time is\n"
            "                           printed) and name the first ones found: exit\n"
            "                           status 2 when any is, as `armo score` refuses such\n"
            "                           a checkpoint\n"
            "  --version                armo's version and build flags\n"
            "  -h, --help               this text\n"
            "Options take their value as --opt VALUE or --opt=VALUE.\n");
}

/* The GPU memory the CUDA backend needs (device_memory.h), for the default
 * budget and for --max-batch-tokens N, and whether it fits in the free
 * memory of a visible device. */
static void print_gpu_memory(const armo_config *c, long n) {
    char b1[32], b2[32], b3[32];
    const int64_t dflt = ARMO_DEFAULT_BATCH_TOKENS_CUDA;
    armo_dev_need d;
    armo_dev_need_for(c, dflt, ARMO_DEFAULT_MAX_SEQS, 1, &d);
    printf("gpu memory     weights %s (backbone bf16, head f32), workspace %s\n",
           armo_dev_human((double)d.weights, b1, sizeof b1),
           armo_dev_human((double)d.workspace, b2, sizeof b2));
    printf("               activations %s per token (%s of it for prompt-prefix sharing), "
           "%s per sequence\n",
           armo_dev_human(d.per_token, b1, sizeof b1),
           armo_dev_human(d.per_token_shared, b2, sizeof b2),
           armo_dev_human(d.per_seq, b3, sizeof b3));
    printf("batch %-8lld activations %s, total %s (the default --max-batch-tokens)\n",
           (long long)dflt, armo_dev_human((double)d.activations, b1, sizeof b1),
           armo_dev_human((double)d.total, b2, sizeof b2));
    if (n > 0) {
        armo_dev_need_for(c, n, ARMO_DEFAULT_MAX_SEQS, 1, &d);
        printf("batch %-8ld activations %s, total %s (--max-batch-tokens %ld)\n", n,
               armo_dev_human((double)d.activations, b1, sizeof b1),
               armo_dev_human((double)d.total, b2, sizeof b2), n);
    }
    const int64_t asked = n > 0 ? n : dflt;
    armo_err e;
    const char *kind = armo_backend_resolve("auto", &e);
    size_t free_b = 0, total_b = 0;
    if (!kind || strcmp(kind, "cuda")) {
        printf("gpu fit        not checked: no CUDA device visible\n");
        return;
    }
    if (armo_backend_mem_info("cuda", &free_b, &total_b, &e)) {
        printf("gpu fit        not checked: %s\n", e.msg);
        return;
    }
    armo_fit f;
    armo_dev_fit(c, asked, ARMO_DEFAULT_MAX_SEQS, 1, free_b, total_b, &f);
    if (f.kind == ARMO_FIT_OK) {
        printf("gpu fit        yes: a %lld-token batch needs %s, the GPU has %s free of %s "
               "(batches of up to %lld tokens fit)\n",
               (long long)asked, armo_dev_human((double)f.need.total, b1, sizeof b1),
               armo_dev_human((double)free_b, b2, sizeof b2),
               armo_dev_human((double)total_b, b3, sizeof b3), (long long)f.fit_tokens);
    } else {
        char msg[512];
        printf("gpu fit        no: %s\n", armo_dev_fit_message(&f, msg, sizeof msg));
    }
}

/* --check-weights: every tensor scanned for NaN / Inf (weight_scan.h); 0
 * when none holds any, 2 (the tensors named on stderr) when some do, 1
 * when the scan itself failed. */
static int report_weight_scan(const armo_model *m) {
    armo_weight_scan ws;
    armo_err e;
    char b1[32];
    if (armo_weights_scan(m, ARMO_SCAN_ALL, 0, &ws, &e)) {
        fprintf(stderr, "armo inspect: scanning the weights: %s\n", e.msg);
        return 1;
    }
    char rate[48] = "";
    if (ws.seconds > 0)
        snprintf(rate, sizeof rate, ", %.1f GB/s", (double)ws.bytes / ws.seconds / 1e9);
    printf("weights scan   %lld tensors, %s in %.3f s (%d thread%s%s)%s: ", (long long)ws.tensors,
           armo_dev_human((double)ws.bytes, b1, sizeof b1), ws.seconds, ws.threads,
           ws.threads == 1 ? "" : "s", rate, ws.skipped ? " (non-float tensors skipped)" : "");
    if (!ws.bad_tensors) {
        printf("no NaN or Inf\n");
        return 0;
    }
    char msg[ARMO_ERR_LEN];
    armo_weight_scan_message(&ws, msg, sizeof msg);
    printf("%lld tensor%s with NaN/Inf\n", (long long)ws.bad_tensors,
           ws.bad_tensors == 1 ? "" : "s");
    fprintf(stderr, "armo inspect: %s holds non-finite weights: %s\n", m->dir, msg);
    return 2;
}

/* The chat template of dir's tokenizer, as `armo score` sees it: 0 when text
 * records can be templated, 2 (with the reason on stderr) when not. */
static int report_chat_template(const char *dir) {
    armo_err e;
    armo_tokenizer *tok = armo_tokenizer_load(dir, &e);
    if (!tok) {
        printf("chat template  unsupported chat template (no usable tokenizer)\n");
        fprintf(stderr, "armo inspect: %s\n", e.msg);
        return 2;
    }
    armo_chat_kind k = armo_chat_kind_of(tok);
    const char *path = armo_tokenizer_chat_template_path(tok);
    int rc = armo_chat_check(tok, &e) ? 2 : 0;
    printf("chat template  %s (%s)\n", rc ? "unsupported chat template" : armo_chat_kind_name(k),
           path ? path : "no chat_template in tokenizer_config.json or chat_template.jinja");
    if (rc) fprintf(stderr, "armo inspect: %s\n", e.msg);
    armo_tokenizer_free(tok);
    return rc;
}

static const struct option k_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"max-batch-tokens", required_argument, NULL, 'b'},
    {"check-weights", no_argument, NULL, 'w'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0, 0, 0, 0},
};

int cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    long max_batch = 0;
    int check_weights = 0, opt;
    armo_getopt_begin();
    while ((opt = armo_getopt(argc, argv, "inspect", k_opts)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return 0;
        case 'V': armo_print_version(stdout); return 0;
        case 'w': check_weights = 1; break;
        case 'm': dir = optarg; break;
        case 'b':
            if (armo_parse_long("inspect", "--max-batch-tokens", optarg, 1, INT_MAX, &max_batch))
                return 2;
            break;
        case ARMO_OPT_ARG:
            fprintf(stderr, "armo inspect: unexpected argument '%s'\n\n", optarg);
            usage(stderr);
            return 2;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "armo inspect: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
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
    char b1[32];
    printf("model          %s\n", dir);
    if (c->arch == ARMO_ARCH_ARMORM)
        printf("architecture   %s (ArmoRM: %d objectives, gating MLP %d->%d x%d->%d, T=%g)\n",
               c->arch_name, c->num_objectives, c->hidden_size, c->gating_hidden_dim,
               c->gating_n_hidden, c->num_objectives, c->gating_temperature);
    else if (c->arch == ARMO_ARCH_BACKBONE)
        printf("architecture   %s (backbone only, tensors under \"%s\": no reward head; "
               "armo embed)\n", c->arch_name, m.prefix);
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
           m.ck.nfiles == 1 ? "" : "s", armo_dev_human((double)total, b1, sizeof b1));
    printf("parameters     %lld used by the forward (%.3f B)\n", (long long)params,
           (double)params / 1e9);
    for (int d = 1; d < ARMO_DT_COUNT; d++)
        if (n_by_dtype[d])
            printf("  %-12s %d tensors, %s\n", armo_dtype_name((armo_dtype)d), n_by_dtype[d],
                   armo_dev_human((double)by_dtype[d], b1, sizeof b1));

    size_t cpu_bytes = armo_backend_cpu_weight_bytes(&m);
    printf("cpu memory     %s of fp32 layer matrices converted once at load (--device cpu; "
           "the checkpoint's mmap besides)\n",
           armo_dev_human((double)cpu_bytes, b1, sizeof b1));
    print_gpu_memory(c, max_batch);
    int rc = report_chat_template(dir);
    if (check_weights) {
        int wrc = report_weight_scan(&m);
        if (wrc > rc) rc = wrc;
    }
    armo_model_close(&m);
    return rc;
}
