/* test_bench_cleanup.c — `armo bench --device cpu` leaves nothing behind and
 * its defaults are a small CPU run (issue 16, item 7).  Each run gets a
 * private, empty TMPDIR (the default --workdir), checked empty afterwards:
 *   - the defaults: exit 0, the random model is the small CPU shape (hidden
 *     256, 2 layers; from --json), and its directory is gone;
 *   - a run that fails after writing the model (--json into a missing
 *     directory): exit 1, directory gone;
 *   - SIGINT and SIGTERM while the model is being written (as soon as its
 *     directory appears) and while scoring (once model.safetensors is
 *     there, a few hundred ms later; the run, 400 sequences, would take
 *     minutes): armo ends by that signal (a shell's 130 / 143) and the
 *     directory is gone.
 * No timing is asserted: the waits only find a moment inside the run. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/util/test_util.h"

static char g_tmp[512];

/* The number of entries of dir (-1: cannot be read); the first one's name
 * into first. */
static int dir_entries(const char *dir, char *first, size_t len) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int n = 0;
    if (first) first[0] = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            if (!n && first) snprintf(first, len, "%s", e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

/* A fresh, empty g_tmp/<tag>. */
static void fresh_dir(char *dir, size_t len, const char *tag) {
    snprintf(dir, len, "%s/%s", g_tmp, tag);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    CHECK(system(cmd) == 0, "cannot make %s", dir);
}

/* Starts `armo bench ARGS...` with TMPDIR=tmpdir, stdout and stderr into
 * tmpdir/../<tag>.log; its pid. */
static pid_t start_bench(const char *tmpdir, const char *log, char *const extra[]) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    FILE *f = freopen(log, "w", stdout);
    if (!f || dup2(1, 2) < 0) _exit(120);
    setenv("TMPDIR", tmpdir, 1);
    char *argv[32] = {(char *)ARMO_EXE, (char *)"bench", (char *)"--device", (char *)"cpu"};
    int n = 4;
    for (int i = 0; extra[i] && n < 31; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    execv(ARMO_EXE, argv);
    _exit(127);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits (up to 120 s) until tmpdir holds the model's directory, and with
 * want_weights its model.safetensors; 1 when it does, 0 if armo ended or
 * the wait ran out. */
static int wait_for_model(pid_t pid, const char *tmpdir, int want_weights) {
    for (int i = 0; i < 12000; i++) {
        char name[256];
        if (dir_entries(tmpdir, name, sizeof name) == 1) {
            if (!want_weights) return 1;
            char p[1400];
            snprintf(p, sizeof p, "%s/%s/model.safetensors", tmpdir, name);
            if (access(p, F_OK) == 0) return 1;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) return 0;
        sleep_ms(10);
    }
    return 0;
}

static void test_defaults(void) {
    char tmpdir[1024], log[1100], json[1100];
    fresh_dir(tmpdir, sizeof tmpdir, "defaults");
    snprintf(log, sizeof log, "%s/defaults.log", g_tmp);
    snprintf(json, sizeof json, "%s/defaults.json", g_tmp);
    char *extra[] = {(char *)"--json", json, NULL};
    int st;
    pid_t pid = start_bench(tmpdir, log, extra);
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "armo bench --device cpu: status %d (%s)", st,
          log);
    json_error_t je;
    json_t *j = json_load_file(json, 0, &je);
    json_t *m = json_object_get(j, "model");
    CHECK(json_integer_value(json_object_get(m, "hidden")) == 256 &&
              json_integer_value(json_object_get(m, "layers")) == 2,
          "the CPU default shape is hidden 256, 2 layers (%s)", json);
    json_decref(j);
    CHECK(dir_entries(tmpdir, NULL, 0) == 0, "the defaults' run left its model in %s", tmpdir);
}

static void test_failed_run(void) {
    char tmpdir[1024], log[1100], json[1100];
    fresh_dir(tmpdir, sizeof tmpdir, "failed");
    snprintf(log, sizeof log, "%s/failed.log", g_tmp);
    snprintf(json, sizeof json, "%s/no/such/dir/out.json", g_tmp);
    char *extra[] = {(char *)"--sequences", (char *)"2", (char *)"--json", json, NULL};
    int st;
    pid_t pid = start_bench(tmpdir, log, extra);
    waitpid(pid, &st, 0);
    char buf[8192];
    test_read_file(log, buf, sizeof buf);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && test_contains(buf, "No such file"),
          "bench --json into a missing directory: status %d, expected exit 1 naming errno:\n%s",
          st, buf);
    CHECK(dir_entries(tmpdir, NULL, 0) == 0, "the failed run left its model in %s", tmpdir);
}

static void test_signal(int sig, int while_scoring) {
    char tag[64], tmpdir[1024], log[1100];
    snprintf(tag, sizeof tag, "sig%d_%s", sig, while_scoring ? "scoring" : "writing");
    fresh_dir(tmpdir, sizeof tmpdir, tag);
    snprintf(log, sizeof log, "%s/%s.log", g_tmp, tag);
    char *extra[] = {(char *)"--sequences", (char *)"400", NULL};
    pid_t pid = start_bench(tmpdir, log, extra);
    int inside = wait_for_model(pid, tmpdir, while_scoring);
    CHECK(inside, "%s: armo bench ended or never wrote its model (%s)", tag, log);
    if (while_scoring) sleep_ms(300);
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig,
          "%s: armo should end by signal %d (exit %d in a shell), status %d", tag, sig, 128 + sig,
          st);
    char name[256];
    int left = dir_entries(tmpdir, name, sizeof name);
    CHECK(left == 0, "%s: %s holds %s after the signal", tag, tmpdir, left > 0 ? name : "?");
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_bench_cleanup", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);
    test_defaults();
    test_failed_run();
    test_signal(SIGINT, 0);
    test_signal(SIGINT, 1);
    test_signal(SIGTERM, 0);
    test_signal(SIGTERM, 1);
    return test_finish("test_bench_cleanup");
}
