/* test_bench_cli.c — `armo bench --device cpu` end to end, as a user runs it:
 *
 *   armo bench --device cpu --hidden 256 --layers 2 --sequences 16
 *              --json FILE --workload-out WL --workdir DIR --quiet
 *
 * and checks the JSON line against figures recomputed here from the
 * workload file it wrote (an independent count): the token total equals the
 * sum of the written sequences' lengths and the backend's own count, the
 * model FLOPs equal the documented formula over those lengths, throughput,
 * the GEMM ceiling and MFU are positive and finite, no score is non-finite,
 * and the random checkpoint was removed from --workdir.  The written
 * sequences are checked against the documented workload definitions: the
 * chat template's tokens, the gating pattern at gating_pos (its last
 * occurrence), lengths within the stated ranges; a second run over all
 * three workloads (smaller model) checks that pairs and best-of-16 groups
 * share their prompt.  Also: --help exits 0 and bad arguments exit 2. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "host/text/positions.h"
#include "tests/util/test_util.h"

static char g_tmp[512];

static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s bench %s", ARMO_EXE, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *ent;
    int n = 0;
    while ((ent = readdir(d)))
        if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..")) n++;
    closedir(d);
    return n == 0;
}

typedef struct {
    json_t *recs[4096];
    int n;
} wl_file;

static void load_workloads(const char *path, wl_file *w) {
    w->n = 0;
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "workload file %s missing", path);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && w->n < 4096) {
        json_error_t je;
        w->recs[w->n] = json_loads(line, 0, &je);
        CHECK(w->recs[w->n] != NULL, "workload line %d is not JSON: %s", w->n + 1, je.text);
        if (w->recs[w->n]) w->n++;
    }
    free(line);
    fclose(f);
}

static void free_workloads(wl_file *w) {
    for (int i = 0; i < w->n; i++) json_decref(w->recs[i]);
    w->n = 0;
}

static int id_at(json_t *ids, size_t i) { return (int)json_integer_value(json_array_get(ids, i)); }

/* The template around one written sequence; returns its length. */
static int check_sequence(json_t *rec, int k) {
    json_t *ids = json_object_get(rec, "input_ids");
    int n = (int)json_array_size(ids);
    int gpos = (int)json_integer_value(json_object_get(rec, "gating_pos"));
    CHECK(n > 16, "seq %d: %d tokens", k, n);
    if (n <= 16) return n;
    const int head[5] = {128000, 128006, 882, 128007, 271};
    for (int i = 0; i < 5; i++) CHECK(id_at(ids, (size_t)i) == head[i], "seq %d: token %d", k, i);
    CHECK(id_at(ids, (size_t)n - 1) == 128009, "seq %d: does not end with <|eot_id|>", k);
    int32_t *v = malloc(sizeof *v * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = id_at(ids, (size_t)i);
    int found = armo_find_gating_pos(v, n, ARMO_LLAMA3_GATING_PATTERN, 5);
    CHECK(found == gpos && gpos > 5, "seq %d: gating_pos %d, pattern's last occurrence at %d", k,
          gpos, found);
    for (int i = 5; i < n - 1; i++)
        if (i < gpos || i >= gpos + 5) CHECK(v[i] >= 0 && v[i] < 128000, "seq %d: content id %d", k, v[i]);
    free(v);
    return n;
}

static double get_num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void test_default_run(void) {
    char json_path[1024], wl_path[1024], workdir[1024], args[4096];
    snprintf(json_path, sizeof json_path, "%s/bench.json", g_tmp);
    snprintf(wl_path, sizeof wl_path, "%s/workload.jsonl", g_tmp);
    snprintf(workdir, sizeof workdir, "%s/work", g_tmp);
    mkdir(workdir, 0755);
    remove(json_path);
    snprintf(args, sizeof args,
             "--device cpu --hidden 256 --layers 2 --sequences 16 --json %s --workload-out %s "
             "--workdir %s --quiet > %s/stdout.txt",
             json_path, wl_path, workdir, g_tmp);
    int rc = run(args);
    CHECK(rc == 0, "armo bench exited %d", rc);
    CHECK(dir_is_empty(workdir), "the random checkpoint was not removed from %s", workdir);

    wl_file w;
    load_workloads(wl_path, &w);
    CHECK(w.n == 16, "workload file has %d sequences, expected 16", w.n);
    long long tokens = 0;
    double len_sum = 0;
    int lens[4096];
    for (int i = 0; i < w.n; i++) {
        lens[i] = check_sequence(w.recs[i], i);
        tokens += lens[i];
        len_sum += lens[i];
        CHECK(lens[i] >= 128 && lens[i] <= 4096, "seq %d: length %d outside [128, 4096]", i, lens[i]);
        CHECK(!strcmp(json_string_value(json_object_get(w.recs[i], "workload")), "a"), "seq %d", i);
    }
    /* mean of clip(lognormal(6.4, 0.75)) is ~800; 16 draws stay well inside this */
    CHECK(len_sum / 16 > 300 && len_sum / 16 < 2000, "mean length %.1f", len_sum / 16);

    json_error_t je;
    json_t *j = json_load_file(json_path, 0, &je);
    CHECK(j != NULL, "%s: %s", json_path, je.text);
    if (j) {
        CHECK(!strcmp(json_string_value(json_object_get(j, "backend")), "cpu"), "backend");
        json_t *m = json_object_get(j, "model");
        int H = (int)json_integer_value(json_object_get(m, "hidden"));
        int L = (int)json_integer_value(json_object_get(m, "layers"));
        int nh = (int)json_integer_value(json_object_get(m, "heads"));
        int nkv = (int)json_integer_value(json_object_get(m, "kv_heads"));
        int hd = (int)json_integer_value(json_object_get(m, "head_dim"));
        int I = (int)json_integer_value(json_object_get(m, "intermediate"));
        CHECK(H == 256 && L == 2 && nh == 2 && nkv == 1 && hd == 128 && I == 896,
              "model dims %d %d %d %d %d %d", H, L, nh, nkv, hd, I);
        double P = (double)L * ((double)H * (nh + 2 * nkv) * hd + (double)nh * hd * H +
                                3.0 * H * I);
        CHECK(fabs(get_num(m, "matmul_params") - P) < 0.5, "matmul_params %.0f vs %.0f",
              get_num(m, "matmul_params"), P);
        json_t *c = json_object_get(j, "gemm_ceiling");
        CHECK(get_num(c, "tflops") > 0 && isfinite(get_num(c, "tflops")), "ceiling");
        json_t *ws = json_object_get(j, "workloads");
        CHECK(json_array_size(ws) == 1, "workloads: %zu", json_array_size(ws));
        json_t *a = json_array_get(ws, 0);
        CHECK(a && !strcmp(json_string_value(json_object_get(a, "workload")), "a"), "workload a");
        CHECK(json_integer_value(json_object_get(a, "sequences")) == 16, "sequences");
        CHECK(json_integer_value(json_object_get(a, "tokens")) == tokens, "tokens %lld vs %lld",
              (long long)json_integer_value(json_object_get(a, "tokens")), tokens);
        CHECK(json_integer_value(json_object_get(a, "tokens_scored")) == tokens,
              "tokens_scored %lld vs %lld",
              (long long)json_integer_value(json_object_get(a, "tokens_scored")), tokens);
        double flops = 0;
        for (int i = 0; i < w.n; i++)
            flops += 2.0 * P * lens[i] + 2.0 * L * (double)nh * hd * lens[i] * (lens[i] + 1.0);
        CHECK(fabs(get_num(a, "model_flops") - flops) <= 1e-9 * flops, "model_flops %.6g vs %.6g",
              get_num(a, "model_flops"), flops);
        double secs = get_num(a, "seconds"), tps = get_num(a, "tokens_per_s");
        CHECK(secs > 0 && tps > 0 && isfinite(tps), "seconds %g tokens/s %g", secs, tps);
        CHECK(fabs(tps * secs - (double)tokens) <= 1e-6 * tokens, "tokens/s x seconds");
        CHECK(get_num(a, "sequences_per_s") > 0, "sequences/s");
        double mfu = get_num(a, "mfu");
        CHECK(mfu > 0 && mfu < 10 && isfinite(mfu), "mfu %g", mfu);
        CHECK(json_integer_value(json_object_get(a, "batches")) >= 1, "batches");
        CHECK(json_integer_value(json_object_get(a, "nonfinite_scores")) == 0, "non-finite scores");
        CHECK(json_is_null(json_object_get(a, "phases")), "phases on the CPU");
        CHECK(json_is_null(json_object_get(j, "gpu_memory")), "gpu_memory on the CPU");
        json_decref(j);
    }
    free_workloads(&w);
}

/* Pairs share their prompt, best-of-16 groups their 512-token prefix. */
static void test_all_workloads(void) {
    char wl_path[1024], json_path[1024], args[4096];
    snprintf(wl_path, sizeof wl_path, "%s/workload_all.jsonl", g_tmp);
    snprintf(json_path, sizeof json_path, "%s/bench_all.json", g_tmp);
    snprintf(args, sizeof args,
             "--device cpu --hidden 128 --layers 1 --sequences 16 --workload all --json %s "
             "--workload-out %s --workdir %s --quiet > /dev/null",
             json_path, wl_path, g_tmp);
    int rc = run(args);
    CHECK(rc == 0, "armo bench --workload all exited %d", rc);
    wl_file w;
    load_workloads(wl_path, &w);
    CHECK(w.n == 48, "workload file has %d sequences, expected 16 + 16 + 16", w.n);
    int nb = 0, nc = 0;
    for (int i = 0; i < w.n; i++) {
        int len = check_sequence(w.recs[i], i);
        const char *kind = json_string_value(json_object_get(w.recs[i], "workload"));
        int gpos = (int)json_integer_value(json_object_get(w.recs[i], "gating_pos"));
        int group = (int)json_integer_value(json_object_get(w.recs[i], "group"));
        if (kind && !strcmp(kind, "b")) {
            nb++;
            CHECK(group == (nb - 1) / 2, "b seq %d group %d", i, group);
            if ((nb - 1) % 2 == 1) { /* second of a pair: same prompt as the first */
                json_t *prev = w.recs[i - 1];
                CHECK(json_integer_value(json_object_get(prev, "gating_pos")) == gpos,
                      "pair %d: prompt lengths differ", group);
                json_t *x = json_object_get(w.recs[i], "input_ids"),
                       *y = json_object_get(prev, "input_ids");
                for (int k = 0; k < gpos + 5; k++)
                    if (id_at(x, (size_t)k) != id_at(y, (size_t)k)) {
                        CHECK(0, "pair %d: prompts differ at %d", group, k);
                        break;
                    }
            }
        } else if (kind && !strcmp(kind, "c")) {
            nc++;
            CHECK(gpos + 5 == 512, "c seq %d: prefix %d tokens, expected 512", i, gpos + 5);
            int resp = len - 512;
            CHECK(resp >= 128 && resp <= 512, "c seq %d: response %d tokens", i, resp);
            if ((nc - 1) % 16) {
                json_t *x = json_object_get(w.recs[i], "input_ids"),
                       *y = json_object_get(w.recs[i - 1], "input_ids");
                for (int k = 0; k < 512; k++)
                    if (id_at(x, (size_t)k) != id_at(y, (size_t)k)) {
                        CHECK(0, "c seq %d: prefix differs from its group at %d", i, k);
                        break;
                    }
            }
        }
    }
    CHECK(nb == 16 && nc == 16, "b %d, c %d sequences", nb, nc);
    json_error_t je;
    json_t *j = json_load_file(json_path, 0, &je);
    CHECK(j != NULL, "%s: %s", json_path, je.text);
    json_t *ws = json_object_get(j, "workloads");
    CHECK(json_array_size(ws) == 3, "workloads: %zu", json_array_size(ws));
    for (size_t i = 0; i < json_array_size(ws); i++) {
        json_t *o = json_array_get(ws, i);
        CHECK(json_integer_value(json_object_get(o, "tokens")) ==
                  json_integer_value(json_object_get(o, "tokens_scored")),
              "workload %zu tokens", i);
        CHECK(get_num(o, "tokens_per_s") > 0, "workload %zu tokens/s", i);
        /* b and c run with prompt-prefix sharing and again without */
        int grouped = i > 0;
        json_int_t scored = json_integer_value(json_object_get(o, "tokens_scored")),
                   computed = json_integer_value(json_object_get(o, "tokens_computed"));
        CHECK(json_is_true(json_object_get(o, "prefix_sharing")) == grouped,
              "workload %zu prefix_sharing", i);
        if (grouped) {
            json_t *u = json_object_get(o, "unshared");
            CHECK(computed > 0 && computed < scored, "workload %zu: shared run computed %lld of "
                  "%lld tokens", i, (long long)computed, (long long)scored);
            CHECK(json_integer_value(json_object_get(u, "tokens_computed")) == scored,
                  "workload %zu: the unshared run computes every token", i);
            CHECK(get_num(u, "sharing_speedup") > 0, "workload %zu speed-up", i);
        } else {
            CHECK(computed == scored && json_is_null(json_object_get(o, "unshared")),
                  "workload a computes every token once");
        }
    }
    json_decref(j);
    free_workloads(&w);
}

static void test_arguments(void) {
    char args[1024];
    snprintf(args, sizeof args, "--help > %s/help.txt", g_tmp);
    CHECK(run(args) == 0, "--help exit status");
    char p[1024];
    snprintf(p, sizeof p, "%s/help.txt", g_tmp);
    char buf[16384];
    test_read_file(p, buf, sizeof buf);
    CHECK(test_contains(buf, "--workload a|b|c|all") && test_contains(buf, "--sequences") &&
              test_contains(buf, "MFU"),
          "--help text");
    CHECK(run("--workload z 2> /dev/null") == 2, "bad --workload");
    CHECK(run("--device tpu 2> /dev/null") == 2, "bad --device");
    CHECK(run("--sequences 0 2> /dev/null") == 2, "bad --sequences");
    CHECK(run("--frobnicate 1 2> /dev/null") == 2, "unknown option");
}

/* --data-parallel: a direct row, the pool with 1 worker, 2 workers sharing
 * the threads, each with its throughput and ratio. */
static void test_data_parallel_rows(void) {
    char json_path[1024], args[4096];
    snprintf(json_path, sizeof json_path, "%s/bench_dp.json", g_tmp);
    snprintf(args, sizeof args,
             "--device cpu --hidden 64 --heads 1 --kv-heads 1 --head-dim 64 --intermediate 128 "
             "--layers 1 --sequences 8 --threads 2 --data-parallel --json %s --workdir %s "
             "--quiet > /dev/null",
             json_path, g_tmp);
    int rc = run(args);
    CHECK(rc == 0, "armo bench --data-parallel exited %d", rc);
    json_error_t je;
    json_t *j = json_load_file(json_path, 0, &je);
    CHECK(j != NULL, "%s: %s", json_path, je.text);
    json_t *dp = json_object_get(j, "data_parallel");
    CHECK(json_array_size(dp) == 3, "data_parallel rows: %zu, expected 3", json_array_size(dp));
    for (size_t i = 0; i < json_array_size(dp); i++) {
        json_t *o = json_array_get(dp, i);
        CHECK(json_integer_value(json_object_get(o, "workers")) == (json_int_t)i,
              "data_parallel row %zu: workers", i);
        CHECK(get_num(o, "tokens_per_s") > 0 && get_num(o, "ratio") > 0,
              "data_parallel row %zu: tokens/s and ratio", i);
    }
    json_decref(j);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_bench_cli", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    test_arguments();
    test_default_run();
    test_all_workloads();
    test_data_parallel_rows();
    return test_finish("test_bench_cli");
}
