/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader
 * (weights/safetensors.c: st_open_file's header parsing and, in the second
 * mode, st_open_dir's shard index).
 *
 * The reader only takes paths (it mmaps the file), so the input is written
 * to a memfd and opened as /proc/self/fd/N: every byte of the input is the
 * file, header length field included.  An input that starts with "#index\n"
 * is instead a small sharded checkpoint:
 *
 *   #index\n<model.safetensors.index.json>[\n#shard NAME\n<shard bytes>]...
 *
 * written into a private temporary directory (shard files only under plain
 * names the harness itself accepts, so fuzz data never writes outside it; the
 * index may name anything) and opened with st_open_dir.  The files are
 * removed after each input.
 *
 * Invariants (safetensors.h's promises): a failure leaves a non-empty
 * message (naming the file in file mode) and a zeroed checkpoint; a success
 * gives tensors sorted by unique name, each with a known dtype, at most
 * ST_MAX_DIMS non-negative dims whose product is numel, nbytes = numel *
 * dtype size, data wholly inside its shard's data section (checked with
 * pointers, since the mapping is not ASan memory), no two non-empty tensors
 * of one shard overlapping, and st_find finding each.  Every tensor byte is
 * read, and st_shape_str is run on short buffers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_util.h"
#include "weights/safetensors.h"

static fuzz_memfile g_file;
static char g_dir[256];

static void remove_dir(void) {
    if (g_dir[0]) rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_memfile_open(&g_file, "fuzz.safetensors");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/armo_fuzz_st_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return 0;
}

static int is_zeroed(const st_checkpoint *ck) {
    return !ck->files && !ck->nfiles && !ck->tensors && !ck->ntensors;
}

static void check_open(const st_checkpoint *ck) {
    FUZZ_CHECK(ck->nfiles >= 1 && ck->files, "opened with %d files", ck->nfiles);
    FUZZ_CHECK(ck->ntensors >= 0 && (ck->ntensors == 0 || ck->tensors), "ntensors %d",
               ck->ntensors);
    volatile unsigned sum = 0;
    for (int i = 0; i < ck->ntensors; i++) {
        const st_tensor *t = &ck->tensors[i];
        FUZZ_CHECK(t->name != NULL, "tensor %d has no name", i);
        if (i > 0)
            FUZZ_CHECK(strcmp(ck->tensors[i - 1].name, t->name) < 0,
                       "tensors not sorted / unique: \"%.80s\" then \"%.80s\"",
                       ck->tensors[i - 1].name, t->name);
        FUZZ_CHECK(st_find(ck, t->name) == t, "st_find misses \"%.80s\"", t->name);
        FUZZ_CHECK(t->shard >= 0 && t->shard < ck->nfiles, "shard %d", t->shard);
        size_t es = armo_dtype_size(t->dtype);
        FUZZ_CHECK(es > 0, "tensor \"%.80s\": dtype %d has no size", t->name, (int)t->dtype);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "ndim %d", t->ndim);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0, "dim %d = %lld", d, (long long)t->shape[d]);
            FUZZ_CHECK(!__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel),
                       "numel overflows");
        }
        FUZZ_CHECK(numel == (uint64_t)t->numel, "numel %lld, shape product %llu",
                   (long long)t->numel, (unsigned long long)numel);
        FUZZ_CHECK((uint64_t)t->nbytes == numel * es, "nbytes %zu != %llu * %zu", t->nbytes,
                   (unsigned long long)numel, es);
        const st_file *f = &ck->files[t->shard];
        FUZZ_CHECK(f->map && f->size >= 8, "shard %d not mapped", t->shard);
        const unsigned char *base = f->map;
        uint64_t hlen = 0;
        for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | base[k];
        FUZZ_CHECK(hlen <= f->size - 8, "header length %llu past a %zu-byte file",
                   (unsigned long long)hlen, f->size);
        const unsigned char *data = t->data, *lo = base + 8 + hlen, *hi = base + f->size;
        FUZZ_CHECK(data >= lo && data <= hi && t->nbytes <= (size_t)(hi - data),
                   "tensor \"%.80s\" [%td, +%zu) outside the data section [%td, %td)", t->name,
                   data - base, t->nbytes, lo - base, hi - base);
        for (size_t k = 0; k < t->nbytes; k++) sum += data[k];
        for (int j = 0; j < i; j++) { /* no overlap between non-empty tensors of a shard */
            const st_tensor *u = &ck->tensors[j];
            if (u->shard != t->shard || !u->nbytes || !t->nbytes) continue;
            const unsigned char *ud = u->data;
            FUZZ_CHECK(ud + u->nbytes <= data || data + t->nbytes <= ud,
                       "tensors \"%.80s\" and \"%.80s\" overlap", u->name, t->name);
        }
        char small[6], big[200];
        st_shape_str(t, small, sizeof small);
        FUZZ_CHECK(strlen(small) < sizeof small, "st_shape_str overran");
        st_shape_str(t, big, sizeof big);
        FUZZ_CHECK(big[0] == '[', "st_shape_str gave '%s'", big);
    }
    (void)sum;
}

static void one_file(const uint8_t *data, size_t size) {
    fuzz_memfile_set(&g_file, data, size);
    st_checkpoint ck;
    armo_err e = {{0}};
    if (st_open_file(&ck, g_file.path, &e) == 0) {
        check_open(&ck);
        st_close(&ck);
        FUZZ_CHECK(is_zeroed(&ck), "st_close left state behind");
    } else {
        FUZZ_CHECK(e.msg[0] != 0, "failure without a message");
        FUZZ_CHECK(strstr(e.msg, g_file.path) != NULL, "message does not name the file: %s",
                   e.msg);
        FUZZ_CHECK(is_zeroed(&ck), "failed open left a non-zeroed checkpoint");
    }
}

/* A shard name the harness is willing to create: [A-Za-z0-9._-]{1,64}, not
 * "." / "..", not the index's own name. */
static int writable_name(const char *s, size_t n) {
    if (n == 0 || n > 64) return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return !(n == 28 && !memcmp(s, "model.safetensors.index.json", 28));
}

static void write_at(const char *name, size_t name_len, const uint8_t *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%.*s", g_dir, (int)name_len, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("open");
        abort();
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w <= 0) {
            perror("write");
            abort();
        }
        done += (size_t)w;
    }
    close(fd);
}

static void clear_dir(void) {
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *ent;
    char path[512];
    while ((ent = readdir(d))) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, ent->d_name);
        unlink(path);
    }
    closedir(d);
}

static const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *needle) {
    size_t n = strlen(needle);
    for (; p + n <= end; p++)
        if (!memcmp(p, needle, n)) return p;
    return NULL;
}

static void sharded(const uint8_t *data, size_t size) {
    static const char sep[] = "\n#shard ";
    const uint8_t *p = data + 7, *end = data + size;
    const uint8_t *next = find(p, end, sep);
    const uint8_t *stop = next ? next : end;
    write_at("model.safetensors.index.json", 28, p, (size_t)(stop - p));
    int shards = 0;
    while (next && shards < 16) {
        const uint8_t *name = next + sizeof sep - 1;
        const uint8_t *nl = memchr(name, '\n', (size_t)(end - name));
        if (!nl) break;
        const uint8_t *body = nl + 1;
        next = find(body, end, sep);
        stop = next ? next : end;
        if (writable_name((const char *)name, (size_t)(nl - name))) {
            write_at((const char *)name, (size_t)(nl - name), body, (size_t)(stop - body));
            shards++;
        }
    }
    st_checkpoint ck;
    armo_err e = {{0}};
    if (st_open_dir(&ck, g_dir, &e) == 0) {
        check_open(&ck);
        st_close(&ck);
    } else {
        FUZZ_CHECK(e.msg[0] != 0, "failure without a message");
        FUZZ_CHECK(is_zeroed(&ck), "failed open left a non-zeroed checkpoint");
    }
    clear_dir();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 7 && !memcmp(data, "#index\n", 7))
        sharded(data, size);
    else
        one_file(data, size);
    return 0;
}
