/* test_score_signals.c — what armo score does with signals and --quiet
 * that a batch job depends on:
 *   - a SIGTERM that was ignored when armo started (a parent's `trap ''
 *     TERM`, a background job's SIGINT) stays ignored: the run goes on and
 *     scores every record (exit 0), where a caught SIGTERM would have
 *     stopped it after the batch in flight (exit 143; checked too, as the
 *     control);
 *   - --quiet hides progress, not failures: the "N of M records failed"
 *     summary is still on stderr.
 * The input comes from a pipe that a shell feeds record by record: the
 * first record's line in the output proves that armo is running (its
 * handlers set) before the signal is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/util/test_util.h"

static char g_tmp[512];

static const char k_rec[] =
    "{\"id\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},"
    "{\"role\":\"assistant\",\"content\":\"4\"}]}";

/* armo score reading a pipe: record "a", wait (30 s at most) until its line
 * is written, SIGTERM to armo, record "b", end of input.  `trap` is the
 * shell's disposition of SIGTERM for armo ("" or "trap '' TERM;").  Returns
 * armo's exit status; its output in out_TAG, stderr in err_TAG. */
static int run_term(const char *tag, const char *trap) {
    char rec_a[256], rec_b[256], cmd[8192];
    snprintf(rec_a, sizeof rec_a, k_rec, "a");
    snprintf(rec_b, sizeof rec_b, k_rec, "b");
    snprintf(cmd, sizeof cmd,
             "cd %s || exit 1; rm -f out_%s rc_%s fifo_%s; mkfifo fifo_%s || exit 1; "
             "( %s exec %s score --model %s/tiny-armorm --device cpu --input fifo_%s "
             "--output out_%s 2> err_%s ) & pid=$!; "
             "exec 3> fifo_%s; printf '%%s\\n' '%s' >&3; "
             "i=0; while [ $i -lt 300 ] && ! grep -q '\"a\"' out_%s 2>/dev/null; do "
             "sleep 0.1; i=$((i+1)); done; "
             "kill -TERM $pid; sleep 0.5; (printf '%%s\\n' '%s' >&3) 2>/dev/null; exec 3>&-; "
             "wait $pid; echo $? > rc_%s",
             g_tmp, tag, tag, tag, tag, trap, ARMO_EXE, ARMO_MODELS_DIR, tag, tag, tag, tag, rec_a,
             tag, rec_b, tag);
    int st = system(cmd);
    CHECK(st == 0, "%s: the shell pipeline failed (%d)", tag, st);
    char path[1024], rc[32] = "";
    snprintf(path, sizeof path, "%s/rc_%s", g_tmp, tag);
    test_read_file(path, rc, sizeof rc);
    return rc[0] ? atoi(rc) : -1;
}

static int count_lines(const char *tag) {
    char path[1024], buf[8192];
    snprintf(path, sizeof path, "%s/out_%s", g_tmp, tag);
    test_read_file(path, buf, sizeof buf);
    int n = 0;
    for (const char *p = buf; *p; p++) n += *p == '\n';
    return n;
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "%s/test_score_signals.tmp", ARMO_BINARY_DIR);
    mkdir(g_tmp, 0755);

    /* control: a caught SIGTERM stops the run after "a" */
    int rc = run_term("caught", "");
    CHECK(rc == 143, "SIGTERM caught: exit status %d, expected 143 (interrupted)", rc);
    CHECK(count_lines("caught") == 1, "SIGTERM caught: %d output lines, expected 1",
          count_lines("caught"));

    /* an ignored SIGTERM stays ignored: "b" is scored too, exit 0 */
    rc = run_term("ignored", "trap '' TERM;");
    CHECK(rc == 0, "SIGTERM ignored by the parent: exit status %d, expected 0 (armo must not "
                   "catch a signal ignored at its start)", rc);
    CHECK(count_lines("ignored") == 2, "SIGTERM ignored: %d output lines, expected 2",
          count_lines("ignored"));

    /* --quiet: no progress, but the failure summary */
    char cmd[4096], path[1024], err[8192];
    snprintf(cmd, sizeof cmd,
             "cd %s && printf '%%s\\n' '{\"id\":\"x\",\"prompt\":\"hi\"}' '{\"id\":\"y\","
             "\"prompt\":\"hi\",\"response\":\"ok\"}' | %s score --model %s/tiny-armorm "
             "--device cpu --quiet --output out_quiet 2> err_quiet",
             g_tmp, ARMO_EXE, ARMO_MODELS_DIR);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "--quiet with a bad record: exit status %d",
          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    snprintf(path, sizeof path, "%s/err_quiet", g_tmp);
    test_read_file(path, err, sizeof err);
    CHECK(test_contains(err, "1 of 2 records failed"),
          "--quiet hid the failure summary; stderr:\n%s", err);
    CHECK(!test_contains(err, "rec/s"), "--quiet printed progress; stderr:\n%s", err);
    return test_finish("test_score_signals");
}
