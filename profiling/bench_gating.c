/* bench_gating.c — how long `armo train gating` takes at the reference's
 * shape (hidden 4096, 19 objectives, gating 1024 x 3, batch 1024) on this
 * machine: writes synthetic pairs and a head directory (random regression
 * weights, T = I) under a temporary directory, trains --steps steps (default
 * 20) and extrapolates the time per step to the reference's 2000 steps.
 *
 *   bench_gating [--steps N] [--batch N] [--hidden N] [--pairs N] [--dir D]
 *
 * Prints one line per report of the training, then
 *   "gating bench: S steps x B pairs, hidden H: X ms/step -> 2000 steps ~ Y s". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/progress.h"
#include "host/train/embed_store.h"
#include "host/train/gating.h"
#include "host/train/split.h"
#include "weights/st_writer.h"

static int make_data(const char *dir, int n, int H, int K) {
    char pairs[600], head[600], p[700];
    snprintf(pairs, sizeof pairs, "%s/pairs", dir);
    snprintf(head, sizeof head, "%s/head", dir);
    snprintf(p, sizeof p, "mkdir -p %s", head);
    if (system(p)) return -1;
    const char *seqs[2] = {"chosen", "rejected"};
    armo_embed_writer w;
    armo_err e;
    if (armo_embed_writer_open(&w, pairs, H, 2, seqs, 0, NULL, n, &e)) return -1;
    float *row = malloc(sizeof(float) * 4 * (size_t)H);
    uint64_t c = 0;
    for (int i = 0; row && i < n; i++) {
        for (int j = 0; j < 4 * H; j++) row[j] = (float)(2 * armo_split_u(9, c++) - 1);
        memcpy(row + 3 * H, row + H, sizeof(float) * H); /* one prompt */
        const float *rows[2] = {row, row + 2 * H};
        if (armo_embed_writer_add(&w, rows, NULL, i + 1, &e)) return -1;
    }
    int rc = !row || armo_embed_writer_finish(&w, "synthetic", "synthetic", &e);
    armo_embed_writer_free(&w);
    float *W = malloc(sizeof(float) * (size_t)K * H), *T = calloc((size_t)K * K, sizeof(float));
    for (int i = 0; W && i < K * H; i++) W[i] = (float)(armo_split_u(10, (uint64_t)i) - 0.5) * 0.1f;
    for (int i = 0; T && i < K; i++) T[i * K + i] = 1;
    st_write_tensor tw = {"regression_layer.weight", ARMO_DT_F32, 2, {K, H}, W};
    st_write_tensor tt = {"reward_transform_matrix", ARMO_DT_F32, 2, {K, K}, T};
    snprintf(p, sizeof p, "%s/regression.safetensors", head);
    rc |= !W || !T || st_write_file(p, &tw, 1, &e);
    snprintf(p, sizeof p, "%s/debias.safetensors", head);
    rc |= st_write_file(p, &tt, 1, &e);
    snprintf(p, sizeof p, "%s/regression.json", head);
    FILE *f = fopen(p, "w");
    if (f) {
        fprintf(f, "{\"hidden_size\":%d,\"objectives\":[", H);
        for (int k = 0; k < K; k++) fprintf(f, "%s\"o%d\"", k ? "," : "", k);
        fprintf(f, "]}\n");
        rc |= fclose(f) != 0;
    }
    free(row);
    free(W);
    free(T);
    return rc || !f ? -1 : 0;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"steps", required_argument, 0, 's'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"hidden", required_argument, 0, 'H'},
                                         {"pairs", required_argument, 0, 'n'},
                                         {"dir", required_argument, 0, 'd'},
                                         {0, 0, 0, 0}};
    int steps = 20, batch = 1024, H = 4096, n = 2048, c;
    const char *dir = "/tmp/armo-bench-gating";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': steps = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'H': H = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'd': dir = optarg; break;
        default: return 2;
        }
    }
    if (steps < 1 || batch < 1 || H < 1 || n < 10) return 2;
    if (make_data(dir, n, H, 19)) {
        fprintf(stderr, "bench_gating: cannot write the data under %s\n", dir);
        return 1;
    }
    armo_gating_opts o;
    armo_gating_defaults(&o);
    char pairs[600], head[600];
    snprintf(pairs, sizeof pairs, "%s/pairs", dir);
    snprintf(head, sizeof head, "%s/head", dir);
    o.pairs = pairs, o.head_dir = head, o.steps = steps, o.batch = batch;
    o.eval_every = steps;
    armo_err e;
    double t0 = armo_now();
    clock_t c0 = clock();
    if (armo_train_gating(&o, stdout, NULL, &e)) {
        fprintf(stderr, "bench_gating: %s\n", e.msg);
        return 1;
    }
    double s = armo_now() - t0, per = s / steps;
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    /* forward + backward GEMM flops of one step: 3 x 2 x B x (H G + (nh-1) G G + G K) */
    double flop = 6.0 * batch * ((double)H * o.hidden_dim +
                                 (o.n_hidden - 1.0) * o.hidden_dim * o.hidden_dim + o.hidden_dim * 19.0);
    printf("gating bench: %d steps x %d pairs, hidden %d, gating %d x %d, dropout %g: %.1f ms/step "
           "wall, %.1f CPU-ms/step (incl. load and one validation; %.1f GFLOP/step, %.1f GFLOP/s "
           "wall) -> 2000 steps ~ %.0f s (%.1f min) wall at this machine's load\n",
           steps, batch, H, o.n_hidden, o.hidden_dim, o.dropout, 1e3 * per, 1e3 * cpu / steps,
           flop / 1e9, flop / per / 1e9, 2000 * per, 2000 * per / 60);
    return 0;
}
