/* test_train_e2e.c — the whole recipe on the bundled tiny backbone:
 * armo embed (ratings, pairs) → train regression → train debias → train
 * gating → train export → armo score, twice: from the tiny ArmoRM (its
 * backbone copied: its shards hold a head) and from the same backbone saved
 * as a LlamaForCausalLM with only "model." tensors (its shard symlinked).
 * Each pair's armo score equals the exported head's formula, computed here
 * from the exported tensors and the embeddings (rewards W·h_last, r @ T, the
 * gating MLP on h_prompt, softmax(z/T)·logit_scale, Σ gate·r'), and the
 * output names the trained objectives. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "host/train/embed_store.h"
#include "tests/util/backbone_copy.h"
#include "tests/util/test_util.h"
#include "weights/safetensors.h"
#include "weights/st_writer.h"

#define NREC 60

static char g_tmp[512];

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *const k_words[] = {"river", "stone", "quiet", "light", "garden", "numbers",
                                      "yes", "because", "careful", "answer", "simple", "green"};

/* a response of n words from a seed */
static void words(char *buf, size_t len, int n, int seed) {
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "%s%s", i ? " " : "", k_words[(seed * 7 + i * 5) % 12]);
    }
}

static int write_inputs(const char *ratings, const char *pairs) {
    FILE *r = fopen(ratings, "w"), *p = fopen(pairs, "w");
    if (!r || !p) return -1;
    char a[512], b[512];
    for (int i = 0; i < NREC; i++) {
        int n = 1 + i % 9;
        words(a, sizeof a, n, i);
        fprintf(r, "{\"id\":\"r%d\",\"prompt\":\"Question %d: tell me about %s.\",\"response\":"
                   "\"%s\",\"labels\":{\"helpfulness\":%g,\"helpsteer-verbosity\":%g,"
                   "\"honesty\":%s}}\n",
                i, i, k_words[i % 12], a, (double)((i * 37) % 11) / 3.0, n / 3.0,
                i % 4 ? "2.5" : "null");
        words(b, sizeof b, 1 + (i * 3) % 7, i + 3);
        fprintf(p, "{\"id\":\"p%d\",\"prompt\":\"Question %d: tell me about %s.\",\"chosen\":"
                   "\"%s\",\"rejected\":\"%s\"}\n", i, i, k_words[(i + 5) % 12], a, b);
    }
    return fclose(r) | fclose(p);
}

/* the exported head's score for one sequence, from its tensors (double) */
static double head_score(const st_checkpoint *ck, const float *hl, const float *hp, int H,
                         double temp) {
    const st_tensor *W = st_find(ck, "regression_layer.weight"),
                    *T = st_find(ck, "reward_transform_matrix"), *ls = st_find(ck, "gating.logit_scale");
    if (!W || !T || !ls) return NAN;
    const int K = (int)W->shape[0];
    double r[64], rt[64], act[2][256], z[64];
    const float *w = W->data, *t = T->data;
    for (int k = 0; k < K; k++) {
        r[k] = 0;
        for (int j = 0; j < H; j++) r[k] += (double)w[k * H + j] * hl[j];
    }
    for (int k = 0; k < K; k++) {
        rt[k] = 0;
        for (int i = 0; i < K; i++) rt[k] += r[i] * t[i * K + k];
    }
    int din = H, cur = 0;
    for (int j = 0; j < H; j++) act[0][j] = hp[j];
    char name[64];
    for (int l = 0;; l++) {
        snprintf(name, sizeof name, "gating.layers.%d.weight", l);
        const st_tensor *gw = st_find(ck, name);
        if (!gw) break;
        snprintf(name, sizeof name, "gating.layers.%d.bias", l);
        const st_tensor *gb = st_find(ck, name);
        snprintf(name, sizeof name, "gating.layers.%d.weight", l + 1);
        const int last = st_find(ck, name) == NULL, dout = (int)gw->shape[0];
        const float *wf = gw->data, *bf = gb->data;
        for (int o = 0; o < dout; o++) {
            double s = bf[o];
            for (int i = 0; i < din; i++) s += (double)wf[o * din + i] * act[cur][i];
            act[1 - cur][o] = last ? s : (s > 0 ? s : 0);
        }
        cur = 1 - cur;
        din = dout;
    }
    double mx = -1e300, sum = 0, score = 0;
    for (int k = 0; k < K; k++) mx = fmax(mx, (z[k] = act[cur][k] / temp));
    for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
    for (int k = 0; k < K; k++) score += exp(z[k] - mx) / sum * *(const float *)ls->data * rt[k];
    return score;
}

static void check_scores(const char *ckdir, const char *pairs_in, const char *emb_dir) {
    char cmd[4096], p[1024];
    snprintf(cmd, sizeof cmd, "%s score --model %s --input %s --output %s/scores.jsonl --quiet "
             "--device cpu", ARMO_EXE, ckdir, pairs_in, g_tmp);
    CHECK(sh(cmd) == 0, "armo score %s", ckdir);
    snprintf(p, sizeof p, "%s/head.safetensors", ckdir);
    st_checkpoint ck;
    armo_err e;
    armo_embeddings x;
    int rc = st_open_file(&ck, p, &e);
    CHECK(rc == 0, "%s", e.msg);
    int rc2 = armo_embeddings_load(&x, emb_dir, &e);
    CHECK(rc2 == 0, "%s", e.msg);
    snprintf(p, sizeof p, "%s/scores.jsonl", g_tmp);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL, "scores");
    if (rc || rc2 || !f) return;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, bad = 0, named = 0;
    double worst = 0;
    while (getline(&line, &cap, f) > 0 && n < x.rows) {
        json_t *o = json_loads(line, 0, NULL);
        for (int s = 0; s < 2; s++) {
            json_t *side = json_object_get(o, s ? "rejected" : "chosen");
            double got = json_number_value(json_object_get(side, "score"));
            double want = head_score(&ck, x.h_last + ((size_t)n * 2 + s) * x.hidden,
                                     x.h_prompt + ((size_t)n * 2 + s) * x.hidden, x.hidden, 10.0);
            double err = fabs(got - want) / fmax(fabs(want), 1e-3);
            worst = fmax(worst, err);
            bad += !(err <= 1e-4);
            named += json_object_get(json_object_get(side, "rewards"), "honesty") != NULL;
        }
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    CHECK(n == NREC && bad == 0, "%s: %d pairs, %d scores off the head formula (worst rel err %g)",
          ckdir, n, bad, worst);
    CHECK(named == 2 * NREC, "%s: rewards named by the trained objectives (%d)", ckdir, named);
    printf("%s: %d pairs, worst relative error vs the head formula %.3g\n", ckdir, n, worst);
    armo_embeddings_free(&x);
    st_close(&ck);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_train_e2e.tmp", ARMO_BINARY_DIR);
    char cmd[16384], ratings[700], pairs[700], src[700], bare[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", g_tmp, g_tmp);
    CHECK(sh(cmd) == 0, "tmp dir");
    snprintf(ratings, sizeof ratings, "%s/ratings.jsonl", g_tmp);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", g_tmp);
    snprintf(src, sizeof src, "%s/tiny-armorm", ARMO_MODELS_DIR);
    snprintf(bare, sizeof bare, "%s/bare", g_tmp);
    CHECK(write_inputs(ratings, pairs) == 0, "inputs");
    CHECK(write_backbone_copy(src, bare, "LlamaForCausalLM", 0) == 0, "bare backbone");
    const char *T = g_tmp, *X = ARMO_EXE;
    snprintf(cmd, sizeof cmd,
             "set -e; %s embed --model %s --input %s --output %s/R --quiet --threads 2; "
             "%s embed --model %s --input %s --output %s/P --quiet --threads 2; "
             "%s train regression --embeddings %s/R --output %s/head --alphas 0.01,1,100; "
             "%s train debias --embeddings %s/R --head %s/head; "
             "%s train gating --pairs %s/P --head %s/head --steps 40 --batch 16 --hidden-dim 8 "
             "--n-hidden 2 --eval-every 20; "
             "%s train export --head %s/head --backbone %s --output %s/ck-copied; "
             "%s train export --head %s/head --backbone %s --output %s/ck-linked > %s/export.out",
             X, bare, ratings, T, X, bare, pairs, T, X, T, T, X, T, T, X, T, T, X, T, src, T, X,
             T, bare, T, T);
    CHECK(sh(cmd) == 0, "the recipe's commands");
    char p[1024], buf[4096];
    snprintf(p, sizeof p, "%s/export.out", g_tmp);
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "linked backbone"), "the bare backbone is linked: %s", buf);
    snprintf(cmd, sizeof cmd, "test -L %s/ck-linked/model.safetensors && ! test -e "
             "%s/ck-copied/model.safetensors && test -s %s/ck-copied/backbone.safetensors", T, T, T);
    CHECK(sh(cmd) == 0, "linked / copied layouts");
    snprintf(p, sizeof p, "%s/P", g_tmp);
    char ck[800];
    snprintf(ck, sizeof ck, "%s/ck-copied", g_tmp);
    check_scores(ck, pairs, p);
    snprintf(ck, sizeof ck, "%s/ck-linked", g_tmp);
    check_scores(ck, pairs, p);
    snprintf(cmd, sizeof cmd, "%s train export --head %s/head --backbone %s --output %s/ck-linked "
             "2> /dev/null", X, T, bare, T);
    CHECK(sh(cmd) == 2, "export refuses to overwrite a checkpoint");
    return test_finish("test_train_e2e");
}
