/* test_data_parallel.c — `armo score --workers N` (data parallel on the CPU
 * backend: N workers, each with its own backend replica, pulling packed
 * batches from one queue) against the independent reference, a one-worker
 * run of the same input.
 *
 * The input is a shuffled mix (seeded) of every record kind — messages,
 * prompt/response, pairs, best-of-N (sharing a prompt prefix), input_ids —
 * of very different lengths, with bad records among them; a small token
 * budget and window give many batches and windows.  Checked:
 * - 2 and 3 workers write the one-worker output byte for byte;
 * - a worker made to fail mid-run (ARMO_TEST_FAIL_WORKER=IDX:AFTER, the
 *   documented test hook) is reported by name on stderr, its batch goes to
 *   the others, and the output is still byte-identical (nothing lost,
 *   nothing duplicated);
 * - when the only worker fails, every record still gets exactly one line, in
 *   order: the ones scored before equal the reference, the rest are
 *   per-record errors naming the worker (exit status 1);
 * - 2 workers stopped by SIGTERM mid-run, then --resume (2 workers): the
 *   file equals the one-worker run's byte for byte (wherever the signal
 *   lands, even after the end);
 * - --devices without a usable CUDA device is a clear error (exit 2). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/util/test_util.h"

static char g_tmp[512];

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

static const char *g_words[] = {"alpha", "beta",   "reward", "model", "score", "the",
                                 "of",    "token",  "GPU",    "why",   "how",   "safe",
                                 "code",  "return", "x",      "=",     "1",     "?"};

/* A text of n random words (n >= 1) appended to b. */
static void words(char *b, size_t cap, int n) {
    for (int i = 0; i < n; i++) {
        size_t l = strlen(b);
        snprintf(b + l, cap - l, "%s%s", i ? " " : "",
                 g_words[rnd() % (sizeof g_words / sizeof g_words[0])]);
    }
}

/* Record i of the input (one line, '\n' included) into b. */
static void record(char *b, size_t cap, int i) {
    char p[2048] = "", r1[2048] = "", r2[2048] = "", r3[2048] = "";
    const int len = rnd() % 4 == 0 ? 60 + (int)(rnd() % 120) : 1 + (int)(rnd() % 20);
    words(p, sizeof p, len);
    words(r1, sizeof r1, 1 + (int)(rnd() % 30));
    words(r2, sizeof r2, 1 + (int)(rnd() % 30));
    words(r3, sizeof r3, 1 + (int)(rnd() % 5));
    switch (rnd() % 7) {
    case 0:
        snprintf(b, cap, "{\"id\":%d,\"prompt\":\"%s\",\"response\":\"%s\"}\n", i, p, r1);
        break;
    case 1:
        snprintf(b, cap,
                 "{\"id\":\"m%d\",\"messages\":[{\"role\":\"system\",\"content\":\"%s\"},"
                 "{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\","
                 "\"content\":\"%s\"}]}\n",
                 i, r3, p, r1);
        break;
    case 2:
        snprintf(b, cap, "{\"id\":\"pair%d\",\"prompt\":\"%s\",\"chosen\":\"%s\",\"rejected\":\"%s\"}\n",
                 i, p, r1, r2);
        break;
    case 3:
        snprintf(b, cap,
                 "{\"id\":\"bon%d\",\"prompt\":\"%s\",\"responses\":[\"%s\",\"%s\",\"%s\"]}\n", i,
                 p, r1, r2, r3);
        break;
    case 4: { /* pre-tokenized, ending in the gating pattern and a response */
        size_t l = (size_t)snprintf(b, cap, "{\"id\":\"ids%d\",\"input_ids\":[128000", i);
        for (int k = 0; k < len; k++) l += (size_t)snprintf(b + l, cap - l, ",%u", 100 + rnd() % 5000);
        snprintf(b + l, cap - l, ",128009,128006,78191,128007,271,%u,128009]}\n", 100 + rnd() % 500);
        break;
    }
    case 5: /* a bad record: the run goes on */
        snprintf(b, cap, "%s\n",
                 rnd() % 2 ? "{\"id\":\"bad\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
                           : "{\"id\":\"broken\",");
        break;
    default:
        snprintf(b, cap, "{\"id\":%d,\"prompt\":\"%s\",\"response\":\"%s %s\"}\n", i, r3, r1, p);
    }
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b) {
        *n = fread(b, 1, (size_t)sz, f);
        b[*n] = 0;
    }
    fclose(f);
    return b;
}

/* Runs armo score on in.jsonl with `env` and `extra`; output in out_NAME,
 * stderr in err_NAME.  Returns the exit status. */
static int run(const char *name, const char *env, const char *extra) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s %s score --model %s/tiny-armorm --device cpu --max-batch-tokens 96 --window 9 "
             "%s --input %s/in.jsonl --output %s/out_%s 2> %s/err_%s",
             env, ARMO_EXE, ARMO_MODELS_DIR, extra, g_tmp, g_tmp, name, g_tmp, name);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *output(const char *name, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/out_%s", g_tmp, name);
    return slurp(p, n);
}

static char *errors(const char *name) {
    char p[1024];
    size_t n;
    snprintf(p, sizeof p, "%s/err_%s", g_tmp, name);
    return slurp(p, &n);
}

/* Runs and compares with the reference byte for byte. */
static void same_as_ref(const char *name, const char *env, const char *extra, const char *ref,
                        size_t nref, int ref_rc, const char *stderr_needle) {
    int rc = run(name, env, extra);
    size_t n;
    char *out = output(name, &n);
    CHECK(rc == ref_rc, "%s: exit status %d, one worker's %d", name, rc, ref_rc);
    CHECK(out && n == nref && !memcmp(out, ref, n),
          "%s: output differs from the one-worker run (%zu vs %zu bytes)", name, n, nref);
    if (stderr_needle) {
        char *err = errors(name);
        CHECK(test_contains(err, stderr_needle), "%s: stderr lacks '%s': %s", name, stderr_needle,
              err ? err : "");
        free(err);
    }
    free(out);
}

/* The only worker fails after `after` batches: one line per record, in
 * order; each equals the reference or is an error naming the worker. */
static void all_workers_fail(const char *ref, size_t nref, int nrec) {
    int rc = run("fail_all", "ARMO_TEST_FAIL_WORKER=0:3", "--workers 1 --threads 1");
    CHECK(rc == 1, "only worker failed: exit status %d, expected 1", rc);
    size_t n;
    char *out = output("fail_all", &n);
    CHECK(out != NULL, "only worker failed: no output");
    if (!out) return;
    int lines = 0, same = 0, orphaned = 0;
    const char *a = out, *r = ref;
    while (*a && r < ref + nref) {
        const char *ea = strchr(a, '\n'), *er = strchr(r, '\n');
        if (!ea || !er) break;
        lines++;
        size_t la = (size_t)(ea - a), lr = (size_t)(er - r);
        if (la == lr && !memcmp(a, r, la)) same++;
        else if (memmem(a, la, "no worker is left", 17) && memmem(a, la, "worker 0 (cpu", 13))
            orphaned++;
        else
            CHECK(0, "only worker failed: line %d is neither the reference nor an error naming "
                     "the worker: %.*s", lines, (int)la, a);
        a = ea + 1;
        r = er + 1;
    }
    CHECK(lines == nrec && !*a, "only worker failed: %d lines for %d records", lines, nrec);
    CHECK(same > 0 && orphaned > 0, "only worker failed: %d scored, %d orphaned", same, orphaned);
    char *err = errors("fail_all");
    CHECK(test_contains(err, "worker 0 (cpu") && test_contains(err, "ARMO_TEST_FAIL_WORKER"),
          "only worker failed: stderr does not name it: %s", err ? err : "");
    free(err);
    free(out);
}

/* SIGTERM to a 2-worker run after a second, then --resume: equal to a
 * one-worker run of the same input (in5.jsonl). */
static void stop_and_resume(void) {
    char cmd[4096];
    const char *common = "--device cpu --quiet --max-batch-tokens 96 --workers 2 --threads 2";
    snprintf(cmd, sizeof cmd,
             "%s score --model %s/tiny-armorm --device cpu --quiet --max-batch-tokens 96 "
             "--threads 1 --input %s/in5.jsonl --output %s/out_ref5 2> /dev/null",
             ARMO_EXE, ARMO_MODELS_DIR, g_tmp, g_tmp);
    int ref_st = system(cmd);
    size_t nref;
    char *ref = output("ref5", &nref);
    CHECK(WIFEXITED(ref_st) && WEXITSTATUS(ref_st) == 1 && ref && nref > 0,
          "one-worker run of in5.jsonl failed");
    if (!ref) return;
    snprintf(cmd, sizeof cmd,
             "(rm -f %s/out_resume; %s score --model %s/tiny-armorm %s --input %s/in5.jsonl "
             "--output %s/out_resume 2> %s/err_resume & pid=$!; sleep 1; kill -TERM $pid; "
             "wait $pid; echo $? > %s/rc_resume) 2> /dev/null",
             g_tmp, ARMO_EXE, ARMO_MODELS_DIR, common, g_tmp, g_tmp, g_tmp, g_tmp);
    int st = system(cmd);
    char rc1[64], path[1024];
    snprintf(path, sizeof path, "%s/rc_resume", g_tmp);
    test_read_file(path, rc1, sizeof rc1);
    CHECK(st == 0 && (atoi(rc1) == 143 || atoi(rc1) == 1),
          "stopped run: exit status %s (expected 143, or 1 when it ended first)", rc1);
    snprintf(cmd, sizeof cmd,
             "%s score --model %s/tiny-armorm %s --input %s/in5.jsonl --output %s/out_resume "
             "--resume 2>> %s/err_resume",
             ARMO_EXE, ARMO_MODELS_DIR, common, g_tmp, g_tmp, g_tmp);
    st = system(cmd);
    size_t n;
    char *out = output("resume", &n);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "--resume: exit status %d",
          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(out && n == nref && !memcmp(out, ref, n),
          "stopped + resumed (2 workers): output differs from the reference (%zu vs %zu bytes)", n,
          nref);
    free(out);
    free(ref);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_data_parallel.tmp", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    enum { NREC = 120 };
    char path[1024];
    snprintf(path, sizeof path, "%s/in.jsonl", g_tmp);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return test_finish("test_data_parallel");
    static char line[1 << 15];
    for (int i = 0; i < NREC; i++) {
        record(line, sizeof line, i);
        fputs(line, f);
    }
    fclose(f);

    const int ref_rc = run("ref", "", "--workers 1 --threads 1");
    size_t nref;
    char *ref = output("ref", &nref);
    CHECK(ref_rc == 1 && ref && nref > 0, "reference run: exit %d (expected 1: bad records)",
          ref_rc);
    if (!ref) return test_finish("test_data_parallel");

    same_as_ref("w2", "", "--workers 2 --threads 2", ref, nref, ref_rc, NULL);
    same_as_ref("w3", "", "--workers 3 --threads 3", ref, nref, ref_rc, NULL);
    same_as_ref("w3_1thread", "", "--workers 3 --threads 1", ref, nref, ref_rc, NULL);
    /* worker 1 of 3 fails when it takes its third batch; worker 0 of 2 at once */
    same_as_ref("w3_fail1", "ARMO_TEST_FAIL_WORKER=1:2", "--workers 3 --threads 3", ref, nref,
                ref_rc, "worker 1 (cpu");
    same_as_ref("w2_fail0", "ARMO_TEST_FAIL_WORKER=0:0", "--workers 2 --threads 2", ref, nref,
                ref_rc, "its batch goes back to the queue (1 worker left)");
    all_workers_fail(ref, nref, NREC);

    /* the input 5 times over, for a run long enough to stop mid-way */
    char path5[1024];
    snprintf(path5, sizeof path5, "%s/in5.jsonl", g_tmp);
    size_t nin;
    char *in = slurp(path, &nin);
    f = fopen(path5, "wb");
    for (int k = 0; in && f && k < 5; k++) fwrite(in, 1, nin, f);
    if (f) fclose(f);
    free(in);
    stop_and_resume();

    /* --devices names GPUs: none here (or no CUDA in this build) -> exit 2 */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "CUDA_VISIBLE_DEVICES= %s score --model %s/tiny-armorm --devices 0 --quiet "
             "< /dev/null > /dev/null 2> %s/err_devices",
             ARMO_EXE, ARMO_MODELS_DIR, g_tmp);
    int st = system(cmd);
    char *err = errors("devices");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2 && test_contains(err, "cuda"),
          "--devices without a GPU: status %d, stderr: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
          err ? err : "");
    free(err);
    free(ref);
    return test_finish("test_data_parallel");
}
