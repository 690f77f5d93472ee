/* merge.c — armo merge: part files -> one output in input order, checked
 * for completeness (see merge.h). */
#include "host/dist/merge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/dist/launch_env.h"
#include "host/dist/shard.h"
#include "host/engine/scheduler.h"
#include "host/scoring/score_job.h"

typedef struct {
    char *path;                  /* the part of rank i (owned) */
    int fd;
    armo_line_reader lr;
    int64_t lines;               /* whole lines returned */
} part;

typedef struct {
    int world;
    part *p;                     /* [world] */
    int in_fd;
    armo_line_reader in;
    char *tmp;                   /* the temporary output (owned) */
    int out_fd;
    char *buf;                   /* output buffer */
    size_t n, cap;
} merge_state;

/* ---- the parts ------------------------------------------------------------------ */

/* Puts path as its rank's part, checking its name and world size. */
static int place_part(merge_state *m, const char *path, armo_err *e) {
    int r, w;
    size_t bl;
    if (!armo_part_parse(path, &r, &w, &bl))
        return armo_err_set(e, "%s is not named as a part file (OUT.part-RRRRR-of-WWWWW)", path);
    if (!m->world) {
        m->world = w;
        m->p = calloc((size_t)w, sizeof *m->p);
        if (!m->p) return armo_err_set(e, "out of memory");
        for (int i = 0; i < w; i++) m->p[i].fd = -1;
    } else if (w != m->world) {
        return armo_err_set(e, "the parts are of two different runs: %s is of a world of %d "
                               "ranks, %s of %d (remove the stale parts, or name the parts to "
                               "merge)", path, w, m->p[0].path ? m->p[0].path : "another part",
                            m->world);
    }
    if (m->p[r].path)
        return armo_err_set(e, "rank %d's part is given twice (%s and %s)", r, m->p[r].path, path);
    m->p[r].path = strdup(path);
    return m->p[r].path ? 0 : armo_err_set(e, "out of memory");
}

/* The parts of out beside it: out.part-RRRRR-of-WWWWW in out's folder. */
static int find_parts(merge_state *m, const char *out, armo_err *e) {
    const char *slash = strrchr(out, '/');
    size_t dl = slash ? (size_t)(slash - out) : 0;
    const char *base = slash ? slash + 1 : out;
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(dl ? dl : 1) : 1, slash ? out : ".");
    DIR *d = opendir(dir);
    if (!d) return armo_err_set(e, "cannot list %s to find the parts of %s: %s", dir, out,
                                strerror(errno));
    int rc = 0, found = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        int r, w;
        size_t bl;
        if (!armo_part_parse(de->d_name, &r, &w, &bl) || bl != strlen(base) ||
            strncmp(de->d_name, base, bl))
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof path, "%.*s%s", (int)(slash ? slash + 1 - out : 0), out,
                 de->d_name);
        rc = place_part(m, path, e);
        found++;
    }
    closedir(d);
    if (rc == 0 && !found)
        return armo_err_set(e, "no part files of %s (%s.part-RRRRR-of-WWWWW) in %s: did the "
                               "ranks run with --output %s?", out, out, dir, out);
    return rc;
}

/* Opens every part; a missing rank or one still being written is an error. */
static int open_parts(merge_state *m, armo_err *e) {
    for (int r = 0; r < m->world; r++) {
        part *p = &m->p[r];
        if (!p->path) {
            char name[4096];
            armo_part_name("OUT", r, m->world, name, sizeof name, NULL);
            return armo_err_set(e, "rank %d's part is missing (%s, from the --output OUT the "
                                   "ranks wrote): rank %d of %d never ran or its part was "
                                   "removed; run it (armo score ... --rank %d --world %d)",
                                r, name, r, m->world, r, m->world);
        }
        p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
        if (p->fd < 0)
            return armo_err_set(e, "cannot open rank %d's part %s: %s", r, p->path,
                                strerror(errno));
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        if (fcntl(p->fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
            return armo_err_set(e, "rank %d's part %s is being written by process %ld (a rank "
                                   "still running): merge once every rank has finished", r,
                                p->path, (long)fl.l_pid);
        armo_line_reader_init(&p->lr, p->fd);
    }
    return 0;
}

/* ---- the output ----------------------------------------------------------------- */

static int flush_out(merge_state *m, armo_err *e) {
    size_t off = 0;
    while (off < m->n) {
        ssize_t k = write(m->out_fd, m->buf + off, m->n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return armo_err_set(e, "writing %s failed: %s", m->tmp, strerror(errno));
        off += (size_t)k;
    }
    m->n = 0;
    return 0;
}

static int put_line(merge_state *m, const char *l, size_t n, armo_err *e) {
    if (m->n + n > m->cap && flush_out(m, e)) return -1;
    if (n > m->cap) {
        char *b = realloc(m->buf, n);
        if (!b) return armo_err_set(e, "out of memory");
        m->buf = b;
        m->cap = n;
    }
    memcpy(m->buf + m->n, l, n);
    m->n += n;
    return 0;
}

/* The temporary file beside out; out must not be the input. */
static int open_out(merge_state *m, const char *out, const char *input, armo_err *e) {
    struct stat so, si;
    if (input && stat(out, &so) == 0 && stat(input, &si) == 0 && so.st_dev == si.st_dev &&
        so.st_ino == si.st_ino)
        return armo_err_set(e, "--output %s is the input %s: refusing to replace the input",
                            out, input);
    int fd = open(out, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { /* an armo score writing OUT itself: its lock */
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        int locked = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        close(fd);
        if (locked)
            return armo_err_set(e, "--output %s is being written by process %ld (an armo "
                                   "score?): refusing to replace it", out, (long)fl.l_pid);
    }
    size_t len = strlen(out) + 40;
    m->tmp = malloc(len);
    m->cap = (size_t)1 << 20;
    m->buf = malloc(m->cap);
    if (!m->tmp || !m->buf) return armo_err_set(e, "out of memory");
    snprintf(m->tmp, len, "%s.merging-%ld", out, (long)getpid());
    m->out_fd = open(m->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (m->out_fd < 0) {
        int err = errno;
        free(m->tmp);
        m->tmp = NULL;
        return armo_err_set(e, "cannot create %s.merging-%ld: %s", out, (long)getpid(),
                            strerror(err));
    }
    return 0;
}

/* Flush, fsync, rename over out. */
static int finish_out(merge_state *m, const char *out, armo_err *e) {
    if (flush_out(m, e)) return -1;
    if (fsync(m->out_fd) != 0)
        return armo_err_set(e, "syncing %s failed: %s", m->tmp, strerror(errno));
    int rc = close(m->out_fd);
    m->out_fd = -1;
    if (rc != 0) return armo_err_set(e, "writing %s failed: %s", m->tmp, strerror(errno));
    if (rename(m->tmp, out) != 0)
        return armo_err_set(e, "renaming %s to %s failed: %s", m->tmp, out, strerror(errno));
    free(m->tmp);
    m->tmp = NULL;
    return 0;
}

/* ---- the interleave ------------------------------------------------------------- */

/* Part p has ended at record i: every other part must have ended with it
 * (a round-robin split), and the input too. */
static int check_end(merge_state *m, int p, int64_t i, armo_err *e) {
    for (int q = 0; q < m->world; q++) {
        const char *l;
        size_t n;
        if (q == p || armo_line_next(&m->p[q].lr, &l, &n) == 0) continue;
        /* q has a line of a later record than i (q > p: of this round; q < p: of
         * the next), so record i exists and rank p is the one short of it */
        return armo_err_set(e, "record %lld (0-based; line %lld of rank %d's part) is missing: "
                               "rank %d's part %s ends after %lld lines while rank %d's part "
                               "%s has more: rank %d did not finish; rerun it with --resume",
                            (long long)i, (long long)m->p[p].lines + 1, p, p, m->p[p].path,
                            (long long)m->p[p].lines, q, m->p[q].path, p);
    }
    if (m->in_fd >= 0) {
        const char *l;
        size_t n;
        int r = armo_line_next_record(&m->in, &l, &n);
        if (r < 0) return armo_err_set(e, "reading the input failed: %s", strerror(m->in.err));
        if (r > 0)
            return armo_err_set(e, "input record %lld (line %lld) has no output line: it belongs "
                                   "to rank %d, whose part %s ends after %lld lines: rank %d did "
                                   "not finish; rerun it with --resume", (long long)i,
                                (long long)m->in.line_no, p, m->p[p].path,
                                (long long)m->p[p].lines, p);
    }
    return 0;
}

/* Checks output line l[0..n) (with its '\n') of part p, record i, against
 * the input. */
static int check_line(merge_state *m, int p, int64_t i, const char *l, size_t n, int *is_err,
                      armo_err *e) {
    const part *pp = &m->p[p];
    if (l[n - 1] != '\n')
        return armo_err_set(e, "line %lld of rank %d's part %s is torn (no newline: the rank was "
                               "killed while writing it): rerun rank %d with --resume, which "
                               "drops it", (long long)pp->lines + 1, p, pp->path, p);
    if (!armo_output_line_valid(l, n - 1, is_err))
        return armo_err_set(e, "line %lld of rank %d's part %s is not a JSON object: not a part "
                               "armo score wrote (or it was edited)", (long long)pp->lines + 1,
                            p, pp->path);
    if (m->in_fd < 0) return 0;
    const char *il;
    size_t iln;
    int r = armo_line_next_record(&m->in, &il, &iln);
    if (r < 0) return armo_err_set(e, "reading the input failed: %s", strerror(m->in.err));
    if (r == 0)
        return armo_err_set(e, "line %lld of rank %d's part %s would be record %lld but the "
                               "input has only %lld records: the parts are not of this input",
                            (long long)pp->lines + 1, p, pp->path, (long long)i, (long long)i);
    char why[300];
    if (!armo_output_line_matches(il, iln, l, n - 1, why, sizeof why))
        return armo_err_set(e, "line %lld of rank %d's part %s %s (input record %lld, line "
                               "%lld): the parts are not of this input (or of a run with "
                               "another world size)", (long long)pp->lines + 1, p, pp->path,
                            why, (long long)i, (long long)m->in.line_no);
    return 0;
}

static int interleave(merge_state *m, armo_merge_stats *st, armo_err *e) {
    for (int64_t i = 0;; i++) {
        int p = armo_shard_rank_of(i, m->world);
        part *pp = &m->p[p];
        const char *l;
        size_t n;
        int r = armo_line_next(&pp->lr, &l, &n);
        if (r < 0)
            return armo_err_set(e, "reading %s failed: %s", pp->path, strerror(pp->lr.err));
        if (r == 0) return check_end(m, p, i, e);
        int is_err = 0;
        if (check_line(m, p, i, l, n, &is_err, e) || put_line(m, l, n, e)) return -1;
        pp->lines++;
        st->records++;
        st->errors += is_err;
    }
}

static void state_free(merge_state *m) {
    for (int r = 0; r < m->world; r++) {
        if (m->p[r].fd >= 0) {
            close(m->p[r].fd);
            armo_line_reader_free(&m->p[r].lr);
        }
        free(m->p[r].path);
    }
    free(m->p);
    if (m->in_fd >= 0) {
        close(m->in_fd);
        armo_line_reader_free(&m->in);
    }
    if (m->out_fd >= 0) close(m->out_fd);
    if (m->tmp) unlink(m->tmp);
    free(m->tmp);
    free(m->buf);
}

int armo_merge(const armo_merge_opts *o, armo_merge_stats *st, armo_err *e) {
    merge_state m = {.in_fd = -1, .out_fd = -1};
    memset(st, 0, sizeof *st);
    int rc = 0;
    if (o->parts) {
        for (int i = 0; rc == 0 && i < o->nparts; i++) rc = place_part(&m, o->parts[i], e);
        if (rc == 0 && !o->nparts) rc = armo_err_set(e, "no part files given");
    } else {
        rc = find_parts(&m, o->out, e);
    }
    for (int i = 0; rc == 0 && i < m.world; i++)
        if (m.p[i].path && !strcmp(m.p[i].path, o->out))
            rc = armo_err_set(e, "--output %s is one of the parts", o->out);
    if (rc == 0) rc = open_parts(&m, e);
    if (rc == 0 && o->input) {
        m.in_fd = open(o->input, O_RDONLY | O_CLOEXEC);
        if (m.in_fd < 0) rc = armo_err_set(e, "cannot open the input %s: %s", o->input,
                                           strerror(errno));
        else armo_line_reader_init(&m.in, m.in_fd);
    }
    if (rc == 0) rc = open_out(&m, o->out, o->input, e);
    if (rc == 0) rc = interleave(&m, st, e);
    if (rc == 0) rc = finish_out(&m, o->out, e);
    st->world = m.world;
    state_free(&m);
    return rc;
}
