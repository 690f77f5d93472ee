/* test_train_gating.c — `armo train gating`:
 *   1. step for step against PyTorch (tools/gen_train_golden.py: the
 *      reference GatingNetwork, BCE-with-logits, AdamW + CosineAnnealingLR,
 *      the same init loaded with --init, the same batches, no dropout): the
 *      loss of each of 50 steps within 1e-5;
 *   2. a planted gating function: 20 000 pairs whose preference follows a
 *      planted network (one hidden layer, written here, independent of
 *      host/train/gating_net.c) with Bradley–Terry noise; the trained
 *      network's validation accuracy is within 1 point of the planted one's
 *      on the same split;
 *   3. pairs of the wrong kind and a head without debias fail with a message. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "host/train/embed_store.h"
#include "host/train/split.h"
#include "tests/util/test_util.h"
#include "weights/st_writer.h"

static char g_tmp[512];

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_pytorch_loop(void) {
    char cmd[4096], p[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s/gh && cp -r %s/tests/data/train/gating-head %s/gh && %s "
             "train gating --pairs %s/tests/data/train/gating-pairs --head %s/gh --init "
             "%s/tests/data/train/gating-init.safetensors --steps 50 --batch 32 --lr 1e-2 "
             "--hidden-dim 16 --n-hidden 3 --dropout 0 --seed 3 --eval-every 10 > %s/g.out",
             g_tmp, ARMO_SOURCE_DIR, g_tmp, ARMO_EXE, ARMO_SOURCE_DIR, g_tmp, ARMO_SOURCE_DIR,
             g_tmp);
    CHECK(sh(cmd) == 0, "armo train gating (golden loop)");
    snprintf(p, sizeof p, "%s/tests/data/train/gating.golden.json", ARMO_SOURCE_DIR);
    json_error_t je;
    json_t *g = json_load_file(p, 0, &je);
    snprintf(p, sizeof p, "%s/gh/gating.json", g_tmp);
    json_t *m = json_load_file(p, 0, &je);
    CHECK(g && m, "golden / output json");
    if (!g || !m) return;
    json_t *gl = json_object_get(g, "losses"), *ml = json_object_get(m, "losses");
    CHECK(json_array_size(gl) == 50 && json_array_size(ml) == 50, "50 losses");
    double worst = 0;
    for (size_t t = 0; t < json_array_size(gl) && t < json_array_size(ml); t++)
        worst = fmax(worst, fabs(json_number_value(json_array_get(gl, t)) -
                                 json_number_value(json_array_get(ml, t))));
    CHECK(worst <= 1e-5, "loss differs from PyTorch by up to %g", worst);
    printf("golden loop: worst loss difference from PyTorch over 50 steps %.3g\n", worst);
    json_t *ev = json_object_get(m, "evals");
    CHECK(json_array_size(ev) == 5, "an evaluation every 10 steps");
    double acc = json_number_value(json_object_get(json_array_get(ev, 4), "val_acc"));
    CHECK(fabs(acc - json_number_value(json_object_get(g, "val_acc"))) < 1e-6,
          "final validation accuracy %g vs PyTorch %g", acc,
          json_number_value(json_object_get(g, "val_acc")));
    json_decref(g);
    json_decref(m);
}

/* ---- the planted case ---------------------------------------------------- */

#define PN 20000
#define PH 6
#define PK 4
#define PG 16

static uint64_t g_ctr;
static double uni(void) { return armo_split_u(2024, g_ctr++); }
static double gauss(void) {
    double u1 = uni(), u2 = uni();
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(2 * M_PI * u2);
}

/* The planted gating network: H -> G (ReLU) -> K, softmax (temperature 1). */
static double planted_score(const double *w1, const double *b1, const double *w2,
                            const double *b2, const float *x, const double *d) {
    double h[PG], z[PK], mx = -1e300, sum = 0, s = 0;
    for (int j = 0; j < PG; j++) {
        h[j] = b1[j];
        for (int i = 0; i < PH; i++) h[j] += w1[j * PH + i] * x[i];
        h[j] = h[j] > 0 ? h[j] : 0;
    }
    for (int k = 0; k < PK; k++) {
        z[k] = b2[k];
        for (int j = 0; j < PG; j++) z[k] += w2[k * PG + j] * h[j];
        mx = fmax(mx, z[k]);
    }
    for (int k = 0; k < PK; k++) sum += exp(z[k] - mx);
    for (int k = 0; k < PK; k++) s += exp(z[k] - mx) / sum * d[k];
    return s;
}

/* Writes the planted pairs and their head (W random, T = I); returns the
 * planted network's validation accuracy under split.h (seed 5, 0.2). */
static double make_planted(const char *pairs_dir, const char *head_dir) {
    double w1[PG * PH], b1[PG], w2[PK * PG], b2[PK];
    float W[PK * PH], T[PK * PK];
    for (int i = 0; i < PG * PH; i++) w1[i] = 3 * (2 * uni() - 1) / sqrt(PH);
    for (int i = 0; i < PG; i++) b1[i] = (2 * uni() - 1) / sqrt(PH);
    for (int i = 0; i < PK * PG; i++) w2[i] = 3 * (2 * uni() - 1) / sqrt(PG);
    for (int i = 0; i < PK; i++) b2[i] = (2 * uni() - 1) / sqrt(PG);
    for (int i = 0; i < PK * PH; i++) W[i] = (float)gauss();
    for (int i = 0; i < PK * PK; i++) T[i] = i % (PK + 1) == 0;
    const char *seqs[2] = {"chosen", "rejected"};
    armo_embed_writer w;
    armo_err e;
    if (armo_embed_writer_open(&w, pairs_dir, PH, 2, seqs, 0, NULL, PN, &e)) return -1;
    int64_t right = 0, nval = 0;
    for (int n = 0; n < PN; n++) {
        float hp[2][2 * PH], hl[2][PH];
        double d[PK];
        for (int i = 0; i < PH; i++) hp[0][PH + i] = hp[1][PH + i] = (float)gauss();
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < PH; i++) hl[s][i] = (float)gauss();
        for (int k = 0; k < PK; k++) {
            d[k] = 0;
            for (int i = 0; i < PH; i++) d[k] += (double)W[k * PH + i] * (hl[0][i] - hl[1][i]);
        }
        double sc = planted_score(w1, b1, w2, b2, hp[0] + PH, d);
        int swap = uni() >= 1.0 / (1.0 + exp(-2.0 * sc)); /* the rejected one won */
        for (int s = 0; s < 2; s++) memcpy(hp[s], hl[swap ? 1 - s : s], sizeof hl[s]);
        if (armo_split_is_val(5, (uint64_t)n, 0.2)) nval++, right += swap ? sc < 0 : sc > 0;
        const float *rows[2] = {hp[0], hp[1]};
        if (armo_embed_writer_add(&w, rows, NULL, n + 1, &e)) return -1;
    }
    int rc = armo_embed_writer_finish(&w, "planted", "planted", &e);
    armo_embed_writer_free(&w);
    char p[1024];
    snprintf(p, sizeof p, "mkdir -p %s", head_dir);
    if (rc || sh(p)) return -1;
    st_write_tensor tw = {"regression_layer.weight", ARMO_DT_F32, 2, {PK, PH}, W};
    st_write_tensor tt = {"reward_transform_matrix", ARMO_DT_F32, 2, {PK, PK}, T};
    snprintf(p, sizeof p, "%s/regression.safetensors", head_dir);
    if (st_write_file(p, &tw, 1, &e)) return -1;
    snprintf(p, sizeof p, "%s/debias.safetensors", head_dir);
    if (st_write_file(p, &tt, 1, &e)) return -1;
    snprintf(p, sizeof p, "%s/regression.json", head_dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "{\"objectives\":[\"p0\",\"p1\",\"p2\",\"p3\"],\"hidden_size\":%d}\n", PH);
    fclose(f);
    return (double)right / (double)nval;
}

static void test_planted(void) {
    char pd[700], hd[700], cmd[4096], p[1024];
    snprintf(pd, sizeof pd, "%s/planted-pairs", g_tmp);
    snprintf(hd, sizeof hd, "%s/planted-head", g_tmp);
    double planted = make_planted(pd, hd);
    CHECK(planted > 0.8, "planted accuracy %g", planted);
    snprintf(cmd, sizeof cmd, "%s train gating --pairs %s --head %s --steps 1500 --batch 256 "
             "--lr 1e-2 --hidden-dim %d --n-hidden 1 --temperature 1 --dropout 0 --seed 5 "
             "--eval-every 500 > %s/planted.out", ARMO_EXE, pd, hd, PG, g_tmp);
    CHECK(sh(cmd) == 0, "armo train gating (planted)");
    snprintf(p, sizeof p, "%s/gating.json", hd);
    json_error_t je;
    json_t *m = json_load_file(p, 0, &je);
    CHECK(m != NULL, "%s: %s", p, je.text);
    if (!m) return;
    json_t *ev = json_object_get(m, "evals");
    double acc = json_number_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1),
                                                   "val_acc"));
    printf("planted: validation accuracy %.4f, planted network %.4f\n", acc, planted);
    CHECK(acc >= planted - 0.01, "trained %.4f vs planted %.4f", acc, planted);
    json_decref(m);
    /* the wrong inputs */
    snprintf(cmd, sizeof cmd, "%s train gating --pairs %s/tests/data/train/ridge-emb --head %s "
             "2> %s/err.txt", ARMO_EXE, ARMO_SOURCE_DIR, hd, g_tmp);
    CHECK(sh(cmd) == 2, "single-sequence embeddings refused");
    char buf[2048];
    snprintf(p, sizeof p, "%s/err.txt", g_tmp);
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "gating trains on pairs"), "msg: %s", buf);
    snprintf(cmd, sizeof cmd, "rm %s/debias.safetensors && %s train gating --pairs %s --head %s "
             "2> %s/err.txt", hd, ARMO_EXE, pd, hd, g_tmp);
    CHECK(sh(cmd) == 2, "a head without debias refused");
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "run armo train debias first"), "msg: %s", buf);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_train_gating.tmp", ARMO_BINARY_DIR);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", g_tmp, g_tmp);
    CHECK(sh(cmd) == 0, "tmp dir");
    test_pytorch_loop();
    test_planted();
    return test_finish("test_train_gating");
}
