/* test_train_golden.c — `armo train regression` and `armo train debias`
 * against independent references (tools/gen_train_golden.py):
 *   - regression on tests/data/train/ridge-emb equals scikit-learn's
 *     Ridge(fit_intercept=False): the same penalty per objective, the
 *     validation MSE of every grid penalty and the refit weights to 1e-6
 *     relative, the split's row counts; the report lists each objective;
 *   - debias on tests/data/train/debias-{head,ref} equals the recipe in NumPy
 *     + scipy.stats.spearmanr (penalties and transform matrix), for the default
 *     verbosity objective / threshold and for --verbosity b --threshold 0.1;
 *   - bad options and a missing verbosity objective fail with a message. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "host/train/head_dir.h"
#include "tests/util/test_util.h"

static char g_tmp[512];

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK(j != NULL, "%s: %s", path, je.text);
    return j;
}

static void test_regression(void) {
    char cmd[4096], p[1024], buf[8192];
    snprintf(cmd, sizeof cmd, "%s train regression --embeddings %s/tests/data/train/ridge-emb "
             "--output %s/head --seed 7 --val-frac 0.2 > %s/reg.out", ARMO_EXE, ARMO_SOURCE_DIR,
             g_tmp, g_tmp);
    CHECK(sh(cmd) == 0, "armo train regression");
    snprintf(p, sizeof p, "%s/reg.out", g_tmp);
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "few-rows") && test_contains(buf, "val_mse"), "report: %s", buf);
    snprintf(p, sizeof p, "%s/tests/data/train/ridge.golden.json", ARMO_SOURCE_DIR);
    json_t *g = load_json(p);
    snprintf(p, sizeof p, "%s/head/regression.json", g_tmp);
    json_t *r = load_json(p);
    armo_head_dir h;
    armo_err e;
    snprintf(p, sizeof p, "%s/head", g_tmp);
    int rc = armo_head_dir_load(&h, p, 0, &e);
    CHECK(rc == 0, "head: %s", e.msg);
    if (!g || !r || rc) return;
    json_t *fits = json_object_get(g, "fits"), *mine = json_object_get(r, "fits");
    const int H = (int)json_integer_value(json_object_get(g, "hidden"));
    CHECK(h.k == (int)json_array_size(fits) && h.hidden == H, "K %d H %d", h.k, h.hidden);
    for (int k = 0; k < h.k && k < (int)json_array_size(fits); k++) {
        json_t *f = json_array_get(fits, (size_t)k), *m = json_array_get(mine, (size_t)k);
        const char *name = json_string_value(json_object_get(f, "objective"));
        CHECK(!strcmp(h.names[k], name), "objective %d: %s vs %s", k, h.names[k], name);
        double ga = json_number_value(json_object_get(f, "alpha"));
        double ma = json_number_value(json_object_get(m, "alpha"));
        CHECK(ga == ma, "%s: penalty %g, scikit-learn %g", name, ma, ga);
        CHECK(json_integer_value(json_object_get(f, "n_train")) ==
                      json_integer_value(json_object_get(m, "n_train")) &&
                  json_integer_value(json_object_get(f, "n_val")) ==
                      json_integer_value(json_object_get(m, "n_val")),
              "%s: split sizes", name);
        json_t *gm = json_object_get(f, "val_mse"), *mm = json_object_get(m, "val_mse");
        for (size_t a = 0; a < json_array_size(gm); a++) {
            double x = json_number_value(json_array_get(mm, a)), y = json_number_value(json_array_get(gm, a));
            CHECK(test_close(x, y, 1e-6, 0), "%s: val_mse[%zu] %.10g vs %.10g", name, a, x, y);
        }
        json_t *gw = json_object_get(f, "weight");
        double num = 0, den = 0, amax = 0;
        for (int j = 0; j < H; j++) amax = fmax(amax, fabs(json_number_value(json_array_get(gw, (size_t)j))));
        for (int j = 0; j < H; j++) {
            double y = json_number_value(json_array_get(gw, (size_t)j)), x = h.regression[k * H + j];
            num += (x - y) * (x - y), den += y * y;
            CHECK(fabs(x - y) <= 1e-6 * fmax(fabs(y), 1e-2 * amax), "%s w[%d] %.9g vs %.9g", name, j, x, y);
        }
        CHECK(sqrt(num / den) <= 1e-6, "%s: weights rel err %g", name, sqrt(num / den));
    }
    armo_head_dir_free(&h);
    json_decref(g);
    json_decref(r);
}

static void debias_case(json_t *c, const char *extra) {
    char cmd[4096], p[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s/dh && cp -r %s/tests/data/train/debias-head %s/dh && %s "
             "train debias --embeddings %s/tests/data/train/debias-ref --head %s/dh %s > "
             "%s/deb.out", g_tmp, ARMO_SOURCE_DIR, g_tmp, ARMO_EXE, ARMO_SOURCE_DIR, g_tmp, extra,
             g_tmp);
    CHECK(sh(cmd) == 0, "armo train debias %s", extra);
    armo_head_dir h;
    armo_err e;
    snprintf(p, sizeof p, "%s/dh", g_tmp);
    int rc = armo_head_dir_load(&h, p, 1, &e);
    CHECK(rc == 0, "debias head: %s", e.msg);
    if (rc) return;
    json_t *T = json_object_get(c, "transform");
    int bad = 0;
    for (int i = 0; i < h.k; i++)
        for (int j = 0; j < h.k; j++) {
            double y = json_number_value(json_array_get(json_array_get(T, (size_t)i), (size_t)j));
            if (fabs(h.transform[i * h.k + j] - y) > 1e-7) bad++;
        }
    CHECK(bad == 0, "%s: %d transform entries differ from NumPy/SciPy", extra, bad);
    snprintf(p, sizeof p, "%s/dh/debias.json", g_tmp);
    json_t *d = load_json(p);
    json_t *gp = json_object_get(c, "penalty"), *mp = json_object_get(d, "penalty");
    for (int j = 0; j < h.k; j++)
        CHECK(fabs(json_number_value(json_array_get(gp, (size_t)j)) -
                   json_number_value(json_array_get(mp, (size_t)j))) < 1e-12,
              "%s: penalty %d", extra, j);
    json_decref(d);
    armo_head_dir_free(&h);
}

static void test_debias(void) {
    char p[1024], cmd[4096], buf[4096];
    snprintf(p, sizeof p, "%s/tests/data/train/debias.golden.json", ARMO_SOURCE_DIR);
    json_t *g = load_json(p);
    if (!g) return;
    json_t *cases = json_object_get(g, "cases");
    debias_case(json_array_get(cases, 0), "");
    debias_case(json_array_get(cases, 1), "--verbosity b --threshold 0.1");
    snprintf(cmd, sizeof cmd, "%s train debias --embeddings %s/tests/data/train/debias-ref --head "
             "%s/dh --verbosity nope 2> %s/err.txt", ARMO_EXE, ARMO_SOURCE_DIR, g_tmp, g_tmp);
    CHECK(sh(cmd) == 2, "unknown verbosity objective fails");
    snprintf(p, sizeof p, "%s/err.txt", g_tmp);
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "'nope' is not one of the head's 6 objectives"), "msg: %s", buf);
    snprintf(cmd, sizeof cmd, "%s train regression --embeddings x --output y --alphas 1,-2 2> "
             "%s/err.txt", ARMO_EXE, g_tmp);
    CHECK(sh(cmd) == 2, "bad grid fails");
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "'-2' is not a non-negative number"), "msg: %s", buf);
    json_decref(g);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_train_golden.tmp", ARMO_BINARY_DIR);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", g_tmp, g_tmp);
    CHECK(sh(cmd) == 0, "tmp dir");
    test_regression();
    test_debias();
    return test_finish("test_train_golden");
}
