/* test_output_safety.c — `armo score`'s output file on preemptible nodes,
 * run as a user (and a scheduler killing jobs) runs it, on the CPU:
 *
 *  - an output that is the input (same path, a hard link, a symlink, stdout
 *    opened on it) is refused, exit 2, the input untouched;
 *  - a second armo on an output that a first one is writing is refused at
 *    once (the lock), naming the first one's pid, the file untouched;
 *  - SIGTERM / SIGINT: the batch in flight finishes, exit 143 / 130, the
 *    summary printed, the file whole lines and a prefix of the
 *    uninterrupted run's; a second signal exits at once (even when armo is
 *    stuck writing to a full pipe);
 *  - --resume after a torn last line (no '\n', or not JSON), an empty or a
 *    complete file gives the uninterrupted run's file byte for byte (and
 *    its exit status); a file from another input, or longer than the
 *    input, is refused naming the line, untouched;
 *  - the kill / resume loop: >= 20 kills (SIGKILL and SIGTERM alternating)
 *    at random moments (a seeded generator, delays covering a whole run),
 *    resuming each time; every kill leaves a byte prefix of the
 *    uninterrupted output, and the final file equals it byte for byte;
 *  - output flows: with records fed slowly through a pipe, the first line
 *    comes out before the input is closed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/util/test_util.h"

#define N_SMALL 40
#define N_BIG 400
#define MIN_KILLS 20

static char g_tmp[512], g_model[512];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

static void path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", g_tmp, name);
}

/* ---- files ---------------------------------------------------------------------- */

typedef struct {
    char *d;
    size_t n;
} buf_t;

static buf_t slurp(const char *p) {
    buf_t b = {NULL, 0};
    FILE *f = fopen(p, "rb");
    if (!f) return b;
    size_t cap = 1 << 16;
    b.d = malloc(cap);
    for (;;) {
        if (b.n == cap) b.d = realloc(b.d, cap *= 2);
        size_t k = fread(b.d + b.n, 1, cap - b.n, f);
        if (k == 0) break;
        b.n += k;
    }
    fclose(f);
    return b;
}

static void spit(const char *p, const char *d, size_t n) {
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL, "cannot write %s: %s", p, strerror(errno));
    if (!f) return;
    fwrite(d, 1, n, f);
    fclose(f);
}

static int same(buf_t a, buf_t b) { return a.n == b.n && (a.n == 0 || !memcmp(a.d, b.d, a.n)); }

/* b is a byte prefix of ref; whole: it also ends at a line's end. */
static int prefix_of(buf_t b, buf_t ref, int whole) {
    if (b.n > ref.n || (b.n && memcmp(b.d, ref.d, b.n))) return 0;
    return !whole || b.n == 0 || b.d[b.n - 1] == '\n';
}

static size_t count_lines(buf_t b) {
    size_t k = 0;
    for (size_t i = 0; i < b.n; i++) k += b.d[i] == '\n';
    return k;
}

/* Offset just after the k-th '\n' of b (b.n if there are fewer). */
static size_t after_line(buf_t b, size_t k) {
    for (size_t i = 0; i < b.n; i++)
        if (b.d[i] == '\n' && --k == 0) return i + 1;
    return b.n;
}

/* n records of every kind (ids of several JSON types, some records without
 * one, errors, an invalid line, blank lines), words from a fixed list. */
static void write_records(const char *p, int n, unsigned seed) {
    static const char *w[] = {"the", "cat", "sat", "on", "a", "mat", "while", "an", "owl",
                              "flew", "over", "rivers", "and", "hills", "under", "bright",
                              "stars", "near", "old", "towns", "quietly", "again"};
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL, "cannot write %s", p);
    if (!f) return;
    unsigned s = seed;
#define RND() (s = s * 1103515245u + 12345u, (s >> 16) & 0x7fff)
#define TEXT(lo, hi)                                                      \
    do {                                                                  \
        int k_ = (int)(lo) + (int)(RND() % (unsigned)((hi) - (lo) + 1));  \
        fputc('"', f);                                                    \
        for (int j_ = 0; j_ < k_; j_++)                                   \
            fprintf(f, "%s%s", j_ ? " " : "", w[RND() % (sizeof w / sizeof *w)]); \
        fputc('"', f);                                                    \
    } while (0)
    for (int i = 0; i < n; i++) {
        switch (i % 8) {
        case 0: fprintf(f, "{\"id\":%d,\"prompt\":", i); TEXT(3, 40); fputs(",\"response\":", f); TEXT(3, 60); fputs("}\n", f); break;
        case 1: fprintf(f, "{\"id\":\"r %d\",\"prompt\":", i); TEXT(3, 30); fputs(",\"chosen\":", f); TEXT(3, 30); fputs(",\"rejected\":", f); TEXT(3, 30); fputs("}\n", f); break;
        case 2: fputs("{\"messages\":[{\"role\":\"user\",\"content\":", f); TEXT(3, 50); fputs("},{\"role\":\"assistant\",\"content\":", f); TEXT(3, 50); fputs("}]}\n", f); break;
        case 3: fprintf(f, "{\"id\":[%d, {\"k\": \"v\"}],\"prompt\":", i); TEXT(3, 20); fputs(",\"responses\":[", f); TEXT(3, 20); fputc(',', f); TEXT(3, 20); fputc(',', f); TEXT(3, 20); fputs("]}\n", f); break;
        case 4: fprintf(f, "{\"id\":%d,\"messages\":[{\"role\":\"user\",\"content\":\"no assistant\"}]}\n", i); break;
        case 5: fprintf(f, "{\"id\":\"bad %d\",\"messages\":[\n", i); break; /* invalid JSON */
        case 6: fputs("\n", f); fprintf(f, "  {\"prompt\":\"x\",\"response\":"); TEXT(1, 30); fputs("}\n", f); break;
        default: fprintf(f, "{\"id\":%d.5,\"prompt\":", i); TEXT(50, 120); fputs(",\"response\":", f); TEXT(50, 120); fputs("}\n", f); break;
        }
    }
#undef TEXT
#undef RND
    fclose(f);
}

/* ---- running armo ---------------------------------------------------------------- */

/* Starts `armo score --model tiny --device cpu --threads 1 EXTRA...`, its
 * stdin / stdout from in_fd / out_fd (-1: /dev/null), stderr into err. */
static pid_t spawn(const char *const *extra, int in_fd, int out_fd, const char *err) {
    const char *argv[40] = {ARMO_EXE, "score", "--model", g_model, "--device", "cpu",
                            "--threads", "1"};
    int n = 8;
    for (int i = 0; extra[i] && n < 39; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(in_fd >= 0 ? in_fd : devnull, 0);
        dup2(out_fd >= 0 ? out_fd : devnull, 1);
        int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(e >= 0 ? e : devnull, 2);
        execv(ARMO_EXE, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Exit status as a shell shows it: the code, or 128 + the signal. */
static int wait_status(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

static int run(const char *const *extra, const char *err) {
    return wait_status(spawn(extra, -1, -1, err));
}

static int file_has(const char *p, const char *needle) {
    buf_t b = slurp(p);
    b.d = realloc(b.d, b.n + 1);
    b.d[b.n] = 0;
    int r = strstr(b.d, needle) != NULL;
    free(b.d);
    return r;
}

/* The uninterrupted run's output of input `in` and its exit status. */
static buf_t g_ref_small, g_ref_big;
static int g_ref_small_rc, g_ref_big_rc;
static double g_big_seconds, g_load_seconds;
static char g_small[600], g_big[600];

static void references(void) {
    char out[600];
    path(g_small, sizeof g_small, "small.jsonl");
    path(g_big, sizeof g_big, "big.jsonl");
    write_records(g_small, N_SMALL, 1);
    write_records(g_big, N_BIG, 2);
    path(out, sizeof out, "ref_small.jsonl");
    g_ref_small_rc = run((const char *[]){"--quiet", "--input", g_small, "--output", out, NULL}, NULL);
    g_ref_small = slurp(out);
    path(out, sizeof out, "ref_big.jsonl");
    double t0 = now_s();
    g_ref_big_rc = run((const char *[]){"--quiet", "--input", g_big, "--output", out, NULL}, NULL);
    g_big_seconds = now_s() - t0;
    g_ref_big = slurp(out);
    t0 = now_s(); /* the model's load alone: an empty input */
    run((const char *[]){"--quiet", "--input", "/dev/null", "--output", out, NULL}, NULL);
    g_load_seconds = now_s() - t0;
    CHECK(g_ref_small_rc == 1 && count_lines(g_ref_small) == N_SMALL,
          "reference run: exit %d (1: some records fail), %zu lines for %d records",
          g_ref_small_rc, count_lines(g_ref_small), N_SMALL);
    CHECK(g_ref_big_rc == 1 && count_lines(g_ref_big) == N_BIG, "big reference: exit %d, %zu lines",
          g_ref_big_rc, count_lines(g_ref_big));
    printf("uninterrupted run of %d records: %.2f s (%.2f s of it loading)\n", N_BIG,
           g_big_seconds, g_load_seconds);
}

/* ---- the output is the input --------------------------------------------------- */

static void test_same_file(void) {
    char in[600], link_p[600], sym[600], err[600];
    path(in, sizeof in, "same.jsonl");
    path(link_p, sizeof link_p, "same_hardlink.jsonl");
    path(sym, sizeof sym, "same_symlink.jsonl");
    path(err, sizeof err, "same.err");
    write_records(in, 8, 3);
    buf_t before = slurp(in);
    unlink(link_p);
    unlink(sym);
    CHECK(link(in, link_p) == 0, "link: %s", strerror(errno));
    CHECK(symlink(in, sym) == 0, "symlink: %s", strerror(errno));
    const char *outs[3] = {in, link_p, sym};
    for (int k = 0; k < 3; k++) {
        int rc = run((const char *[]){"--input", in, "--output", outs[k], NULL}, err);
        buf_t after = slurp(in);
        CHECK(rc == 2, "--output %s (the input): exit %d, expected 2", outs[k], rc);
        CHECK(same(before, after), "--output %s emptied or changed the input (%zu -> %zu bytes)",
              outs[k], before.n, after.n);
        CHECK(file_has(err, "same file") && file_has(err, outs[k]),
              "--output %s: the message names the file and says why", outs[k]);
        free(after.d);
    }
    /* standard output opened on the input (without truncating it) */
    int fd = open(in, O_WRONLY | O_CLOEXEC);
    int rc = wait_status(spawn((const char *[]){"--input", in, NULL}, -1, fd, err));
    close(fd);
    buf_t after = slurp(in);
    CHECK(rc == 2 && same(before, after), "stdout on the input: exit %d, input %s", rc,
          same(before, after) ? "intact" : "changed");
    free(after.d);
    free(before.d);
}

/* ---- two runs on one output ------------------------------------------------------ */

static void test_lock(void) {
    char fifo[600], out[600], err[600], err2[600];
    path(fifo, sizeof fifo, "lock.fifo");
    path(out, sizeof out, "lock_out.jsonl");
    path(err, sizeof err, "lock1.err");
    path(err2, sizeof err2, "lock2.err");
    unlink(fifo);
    unlink(out);
    CHECK(mkfifo(fifo, 0644) == 0, "mkfifo: %s", strerror(errno));
    int wfd = open(fifo, O_RDWR | O_CLOEXEC); /* held open: the first run waits for records */
    pid_t first = spawn((const char *[]){"--input", fifo, "--output", out, NULL}, -1, -1, err);
    /* wait until the first run holds the output's lock (old armo: until it exists) */
    int locked = 0;
    for (double t0 = now_s(); now_s() - t0 < 20 && !locked;) {
        int fd = open(out, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            locked = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? 1 : -1;
            close(fd);
            if (locked < 0) {
                locked = 0;
                if (now_s() - t0 > 5) break; /* it exists, unlocked: armo without a lock */
            }
        }
        sleep_s(0.02);
    }
    CHECK(locked, "the first run never locked %s", out);
    double t0 = now_s();
    int rc = run((const char *[]){"--quiet", "--input", g_small, "--output", out, NULL}, err2);
    double dt = now_s() - t0;
    char pid_text[64];
    snprintf(pid_text, sizeof pid_text, "pid %ld", (long)first);
    CHECK(rc == 2, "a second armo on the same output: exit %d, expected 2", rc);
    CHECK(file_has(err2, out) && file_has(err2, pid_text),
          "the refusal names the file and the pid holding it (%s)", pid_text);
    CHECK(dt < 5, "the refusal is immediate (%.1f s)", dt);
    buf_t now = slurp(out);
    CHECK(now.n == 0, "the second run wrote into the first one's output (%zu bytes)", now.n);
    free(now.d);
    rc = run((const char *[]){"--quiet", "--resume", "--input", g_small, "--output", out, NULL},
             err2);
    CHECK(rc == 2, "a second armo with --resume on the same output: exit %d, expected 2", rc);
    /* the first run goes on undisturbed: the records of small.jsonl */
    buf_t in = slurp(g_small);
    for (size_t off = 0; off < in.n;) {
        ssize_t k = write(wfd, in.d + off, in.n - off);
        if (k <= 0) break;
        off += (size_t)k;
    }
    free(in.d);
    close(wfd);
    rc = wait_status(first);
    buf_t got = slurp(out);
    CHECK(rc == g_ref_small_rc && same(got, g_ref_small),
          "the first run's output: exit %d, %zu bytes (reference %zu)", rc, got.n, g_ref_small.n);
    free(got.d);
    unlink(fifo);
}

/* ---- SIGTERM / SIGINT -------------------------------------------------------------- */

/* 1 when pid has exited (not reaped: its status stays for wait_status). */
static int has_exited(pid_t pid) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Waits until p holds at least `lines` lines or pid exits (max s seconds). */
static void wait_lines(const char *p, size_t lines, pid_t pid, double s) {
    for (double t0 = now_s(); now_s() - t0 < s;) {
        buf_t b = slurp(p);
        size_t k = count_lines(b);
        free(b.d);
        if (k >= lines || has_exited(pid)) return;
        sleep_s(0.01);
    }
}

static void test_signals(void) {
    char out[600], err[600];
    path(out, sizeof out, "sig_out.jsonl");
    path(err, sizeof err, "sig.err");
    const int sigs[2] = {SIGTERM, SIGINT};
    for (int k = 0; k < 2; k++) {
        const char *name = sigs[k] == SIGINT ? "SIGINT" : "SIGTERM";
        unlink(out);
        pid_t pid = spawn((const char *[]){"--input", g_big, "--output", out, NULL}, -1, -1, err);
        wait_lines(out, 30, pid, 60);
        kill(pid, sigs[k]);
        int rc = wait_status(pid);
        buf_t got = slurp(out);
        size_t lines = count_lines(got);
        CHECK(rc == 128 + sigs[k], "%s: exit %d, expected %d", name, rc, 128 + sigs[k]);
        CHECK(prefix_of(got, g_ref_big, 1),
              "after %s the output is not whole lines of the uninterrupted output (%zu bytes)",
              name, got.n);
        CHECK(lines >= 30 && lines < N_BIG, "%zu lines written before %s", lines, name);
        char want[64], n[64];
        snprintf(want, sizeof want, "interrupted by %s", name);
        snprintf(n, sizeof n, "first %zu records", lines);
        CHECK(file_has(err, want) && file_has(err, "--resume") && file_has(err, "armo: done:"),
              "the summary names %s and --resume, and the progress summary is printed", name);
        CHECK(file_has(err, n), "the summary says how many records the file holds (%s)", n);
        free(got.d);
    }
    /* a second signal exits at once: armo stuck writing to a full pipe that
     * nobody reads cannot finish its batch, the second SIGTERM ends it */
    int p[2];
    if (pipe2(p, O_CLOEXEC)) {
        CHECK(0, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = spawn((const char *[]){"--input", g_big, NULL}, -1, p[1], err);
    close(p[1]);
    int queued = 0, last = -1; /* the pipe is full when what it holds stops growing */
    for (double t0 = now_s(), t_last = t0; now_s() - t0 < 60 && !has_exited(pid); sleep_s(0.02)) {
        if (ioctl(p[0], FIONREAD, &queued) != 0) break;
        if (queued != last) last = queued, t_last = now_s();
        else if (queued > 0 && now_s() - t_last > 0.3) break;
    }
    kill(pid, SIGTERM);
    sleep_s(0.3);
    int stuck = !has_exited(pid);
    CHECK(stuck, "armo blocked writing its output ended on the first SIGTERM");
    double t0 = now_s();
    kill(pid, SIGTERM);
    int rc = wait_status(pid);
    CHECK(rc == 143 && now_s() - t0 < 5, "a second SIGTERM: exit %d after %.1f s, expected 143 "
          "at once", rc, now_s() - t0);
    CHECK(file_has(err, "second signal"), "a second signal says it exits now");
    char buf[1 << 17];
    size_t n = 0;
    for (ssize_t k; n < sizeof buf && (k = read(p[0], buf + n, sizeof buf - n)) > 0;) n += (size_t)k;
    close(p[0]);
    CHECK(n > 0 && n <= g_ref_big.n && !memcmp(buf, g_ref_big.d, n),
          "what reached the pipe (%zu bytes) is a prefix of the uninterrupted output", n);
}

/* ---- --resume -------------------------------------------------------------------- */

static void test_resume(void) {
    char out[600], err[600];
    path(out, sizeof out, "resume_out.jsonl");
    path(err, sizeof err, "resume.err");
    const char *const args[] = {"--quiet", "--resume", "--input", g_small, "--output", out, NULL};
    buf_t r = g_ref_small;
    size_t half = after_line(r, N_SMALL / 2), next = after_line(r, N_SMALL / 2 + 1);
    typedef struct {
        const char *what;
        char *d;
        size_t n;
    } resume_case;
    resume_case cases[6];
    int nc = 0;
    char *t;
    /* a torn last line (no '\n') */
    cases[nc++] = (resume_case){"a torn last line", r.d, half + (next - half) / 2};
    /* a last line cut but ending in '\n' (not JSON) */
    t = malloc(next + 1);
    memcpy(t, r.d, half + (next - half) / 2);
    t[half + (next - half) / 2] = '\n';
    cases[nc++] = (resume_case){"a last line that is not JSON", t, half + (next - half) / 2 + 1};
    /* the same, then a torn fragment */
    t = malloc(next + 8);
    memcpy(t, r.d, half + 5);
    memcpy(t + half + 5, "\n{\"id", 5);
    cases[nc++] = (resume_case){"a broken line and a torn one", t, half + 10};
    cases[nc++] = (resume_case){"an empty file", r.d, 0};
    cases[nc++] = (resume_case){"a complete file", r.d, r.n};
    cases[nc++] = (resume_case){"a missing file", NULL, 0};
    for (int c = 0; c < nc; c++) {
        unlink(out);
        if (cases[c].d) spit(out, cases[c].d, cases[c].n);
        int rc = run(args, err);
        buf_t got = slurp(out);
        CHECK(rc == g_ref_small_rc && same(got, r),
              "--resume after %s: exit %d (expected %d), %zu bytes (expected the %zu of the "
              "uninterrupted run%s)", cases[c].what, rc, g_ref_small_rc, got.n, r.n,
              got.n == r.n ? ", different bytes" : "");
        free(got.d);
    }
    free(cases[1].d);
    free(cases[2].d);
    /* refused, the file untouched: a line missing in the middle (ids shift),
     * more lines than records, standard output */
    size_t l3 = after_line(r, 3), l4 = after_line(r, 4);
    t = malloc(r.n);
    memcpy(t, r.d, l3);
    memcpy(t + l3, r.d + l4, r.n - l4);
    size_t tn = r.n - (l4 - l3);
    spit(out, t, tn);
    int rc = run(args, err);
    buf_t got = slurp(out);
    CHECK(rc == 2 && got.n == tn && !memcmp(got.d, t, tn),
          "--resume on another input's output: exit %d, file %s", rc,
          got.n == tn ? "untouched" : "changed");
    CHECK(file_has(err, "line 4 of") && file_has(err, "has id"),
          "the mismatch names the line and the ids");
    free(got.d);
    free(t);
    t = malloc(r.n + after_line(r, 1));
    memcpy(t, r.d, r.n);
    memcpy(t + r.n, r.d, after_line(r, 1));
    tn = r.n + after_line(r, 1);
    spit(out, t, tn);
    rc = run(args, err);
    got = slurp(out);
    CHECK(rc == 2 && got.n == tn, "--resume on an output longer than the input: exit %d", rc);
    CHECK(file_has(err, "more lines than"), "the refusal says the output is longer");
    free(got.d);
    free(t);
    rc = run((const char *[]){"--quiet", "--resume", "--input", g_small, NULL}, err);
    CHECK(rc == 2 && file_has(err, "--output"), "--resume to the standard output: exit %d", rc);
}

/* ---- kills at random moments, resumed --------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double rnd01(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* How long a resumed run lasts when `have` bytes of the output are written:
 * the load, then the rest at the uninterrupted run's pace. */
static double run_estimate(size_t have) {
    double score = g_big_seconds - g_load_seconds;
    if (score < 0.1) score = 0.1;
    return g_load_seconds + score * (1.0 - (double)have / (double)(g_ref_big.n ? g_ref_big.n : 1));
}

static void test_kill_loop(void) {
    char out[600], err[600];
    path(out, sizeof out, "kill_out.jsonl");
    path(err, sizeof err, "kill.err");
    unlink(out);
    const char *const args[] = {"--quiet", "--resume", "--input", g_big, "--output", out, NULL};
    int kills = 0, by_sig[2] = {0, 0}, handled = 0, torn = 0, rounds = 0, runs = 0, ok = 1;
    int grew = 0; /* kills after which the file held more whole lines than before the run */
    double t_start = now_s();
    /* wall-time cap: 30 uninterrupted runs' worth (a slow or sanitized build
     * takes ~30 s a run), at least 120 s, at most 600 s */
    double cap = 30.0 * g_big_seconds;
    cap = cap < 120.0 ? 120.0 : cap > 600.0 ? 600.0 : cap;
    while (kills < MIN_KILLS && ok && runs < 200 && now_s() - t_start < cap) {
        const int sig = kills % 2 ? SIGTERM : SIGKILL;
        /* a moment anywhere in this run, its load included (a little past
         * its end: some runs finish before their kill) */
        buf_t have = slurp(out);
        const double delay = rnd01() * 1.1 * run_estimate(have.n);
        const size_t lines_before = count_lines(have);
        free(have.d);
        pid_t pid = spawn(args, -1, -1, err);
        runs++;
        int st = 0, exited = 0;
        for (double t0 = now_s(); now_s() - t0 < delay;) {
            if (waitpid(pid, &st, WNOHANG) == pid) {
                exited = 1;
                break;
            }
            sleep_s(0.002);
        }
        buf_t got;
        if (exited) { /* the run finished before its kill: a whole file; a new round */
            got = slurp(out);
            int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            CHECK(rc == g_ref_big_rc && same(got, g_ref_big),
                  "round %d, finished after resuming: exit %d, %zu bytes (reference %zu)", rounds,
                  rc, got.n, g_ref_big.n);
            ok = rc == g_ref_big_rc && same(got, g_ref_big);
            free(got.d);
            unlink(out);
            rounds++;
            continue;
        }
        kill(pid, sig);
        int rc = wait_status(pid);
        got = slurp(out);
        if (rc == g_ref_big_rc && same(got, g_ref_big)) { /* the signal came as it finished */
            free(got.d);
            unlink(out);
            rounds++;
            continue;
        }
        kills++;
        by_sig[sig == SIGTERM]++;
        if (sig == SIGTERM && rc == 143) { /* handled: whole lines */
            handled++;
            CHECK(prefix_of(got, g_ref_big, 1), "kill %d (SIGTERM after %.3f s): not whole lines "
                  "of the uninterrupted output", kills, delay);
        } else {
            CHECK(rc == 1000 + sig, "kill %d (%s after %.3f s): exit %d", kills,
                  sig == SIGTERM ? "SIGTERM" : "SIGKILL", delay, rc);
            CHECK(prefix_of(got, g_ref_big, 0), "kill %d (%s after %.3f s): the file is not a "
                  "prefix of the uninterrupted output", kills,
                  sig == SIGTERM ? "SIGTERM" : "SIGKILL", delay);
            torn += got.n && got.d[got.n - 1] != '\n';
        }
        ok = prefix_of(got, g_ref_big, 0);
        grew += count_lines(got) > lines_before;
        free(got.d);
    }
    /* the last resume, to the end */
    int rc = run(args, err);
    buf_t got = slurp(out);
    CHECK(kills >= MIN_KILLS, "%d kills (expected %d)", kills, MIN_KILLS);
    CHECK(rc == g_ref_big_rc && same(got, g_ref_big),
          "after %d kills and resumes: exit %d, %zu bytes; the uninterrupted run: exit %d, %zu "
          "bytes", kills, rc, got.n, g_ref_big_rc, g_ref_big.n);
    printf("kill loop: %d kills (%d SIGKILL, %d SIGTERM of which %d handled), %d of them after "
           "lines were written, %d torn lines, %d runs, %d rounds completed, %.1f s\n", kills,
           by_sig[0], by_sig[1], handled, grew, torn, runs, rounds + 1, now_s() - t_start);
    free(got.d);
}

/* ---- output flows ------------------------------------------------------------------ */

static void test_streaming(void) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
        CHECK(0, "pipe: %s", strerror(errno));
        return;
    }
    char err[600];
    path(err, sizeof err, "stream.err");
    pid_t pid = spawn((const char *[]){"--quiet", NULL}, in[0], out[1], err);
    close(in[0]);
    close(out[1]);
    buf_t src = slurp(g_small);
    size_t three = after_line(src, 3); /* records 1-3 of small.jsonl: no blank line among them */
    CHECK(write(in[1], src.d, three) == (ssize_t)three, "write");
    /* a whole line must come out while the input is still open */
    char got[1 << 16];
    size_t n = 0;
    double t0 = now_s();
    while (!memchr(got, '\n', n) && now_s() - t0 < 20) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t k = read(out[0], got + n, sizeof got - n);
            if (k <= 0) break;
            n += (size_t)k;
        }
    }
    double first = now_s() - t0;
    CHECK(memchr(got, '\n', n) != NULL, "no line came out in %.1f s while the input was open "
          "(3 records sent)", first);
    close(in[1]); /* end of input */
    for (ssize_t k; (k = read(out[0], got + n, sizeof got - n)) > 0;) n += (size_t)k;
    close(out[0]);
    int rc = wait_status(pid);
    size_t ref3 = after_line(g_ref_small, 3);
    CHECK(rc == 0 && n == ref3 && !memcmp(got, g_ref_small.d, ref3),
          "streamed output: exit %d, %zu bytes, expected the reference's first 3 lines (%zu)", rc,
          n, ref3);
    printf("first line through a pipe after %.2f s, the input still open\n", first);
    free(src.d);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp_output_safety", ARMO_BINARY_DIR);
    snprintf(g_model, sizeof g_model, "%s/tiny-armorm", ARMO_MODELS_DIR);
    mkdir(g_tmp, 0755);
    double t0 = now_s();
    references();
    test_same_file();
    test_lock();
    test_signals();
    test_resume();
    test_streaming();
    test_kill_loop();
    printf("total %.1f s\n", now_s() - t0);
    return test_finish("test_output_safety");
}
