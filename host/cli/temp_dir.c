/* temp_dir.c — see temp_dir.h.  The paths are formatted once, at creation,
 * into static buffers, so that the handler only calls unlink, rmdir,
 * sigaction and raise (async-signal-safe). */
#include "host/cli/temp_dir.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_FILES = 8, PATH_LEN = 4352 };
static const int k_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIG_CAUGHT ((int)(sizeof k_signals / sizeof k_signals[0]))

static char g_dir[PATH_LEN];
static char g_files[MAX_FILES][PATH_LEN];
static int g_nfiles;
static volatile sig_atomic_t g_active;
static struct sigaction g_old[NSIG_CAUGHT];

/* unlink / rmdir only: safe in a signal handler; -1 at the first failure
 * other than "already gone". */
static int remove_all(void) {
    int rc = 0, en = 0;
    for (int i = 0; i < g_nfiles; i++)
        if (unlink(g_files[i]) != 0 && errno != ENOENT && !rc) {
            rc = -1;
            en = errno;
        }
    if (rmdir(g_dir) != 0 && errno != ENOENT && !rc) {
        rc = -1;
        en = errno;
    }
    if (rc) errno = en;
    return rc;
}

static void on_signal(int sig) {
    int saved = errno;
    if (g_active) {
        g_active = 0;
        remove_all();
    }
    /* end as the signal would have: default action, re-raised */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
    errno = saved;
}

static void restore_handlers(void) {
    for (int i = 0; i < NSIG_CAUGHT; i++) sigaction(k_signals[i], &g_old[i], NULL);
}

int armo_temp_dir_create(const char *parent, const char *prefix, const char *const *files,
                         int nfiles, char *path, size_t len) {
    if (nfiles < 0 || nfiles > MAX_FILES) {
        errno = EINVAL;
        return -1;
    }
    int n = snprintf(g_dir, sizeof g_dir, "%s/%sXXXXXX", parent, prefix);
    int too_long = n < 0 || (size_t)n >= sizeof g_dir || (size_t)n >= len;
    for (int i = 0; i < nfiles && !too_long; i++)
        too_long = (size_t)n + 1 + strlen(files[i]) >= sizeof g_files[0];
    if (too_long) {
        errno = ENAMETOOLONG;
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NSIG_CAUGHT; i++) sigaddset(&sa.sa_mask, k_signals[i]);
    /* a signal ignored when armo started (nohup, a shell's background job)
     * stays ignored */
    for (int i = 0; i < NSIG_CAUGHT; i++) {
        int rc = sigaction(k_signals[i], NULL, &g_old[i]);
        if (rc == 0 && g_old[i].sa_handler != SIG_IGN)
            rc = sigaction(k_signals[i], &sa, NULL);
        if (rc != 0) {
            int en = errno;
            for (int k = 0; k < i; k++) sigaction(k_signals[k], &g_old[k], NULL);
            errno = en;
            return -1;
        }
    }
    /* no signal between the directory's creation and the handler knowing it */
    sigset_t block, old;
    sigemptyset(&block);
    for (int i = 0; i < NSIG_CAUGHT; i++) sigaddset(&block, k_signals[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    if (!mkdtemp(g_dir)) {
        int en = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        restore_handlers();
        errno = en;
        return -1;
    }
    g_nfiles = 0;
    for (int i = 0; i < nfiles; i++) { /* lengths checked above */
        char *f = g_files[g_nfiles++];
        memcpy(f, g_dir, (size_t)n);
        f[n] = '/';
        memcpy(f + n + 1, files[i], strlen(files[i]) + 1);
    }
    g_active = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    memcpy(path, g_dir, (size_t)n + 1);
    return 0;
}

int armo_temp_dir_finish(int keep) {
    int was = g_active;
    g_active = 0;
    int rc = was && !keep ? remove_all() : 0;
    int en = errno;
    if (was) restore_handlers();
    errno = en;
    return rc;
}
