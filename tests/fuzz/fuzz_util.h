/* fuzz_util.h — what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * FUZZ_CHECK: an invariant of the code under test; on failure it prints the
 * condition and a message to stderr and calls abort(), which libFuzzer
 * reports as a crash and saves the input (harnesses print nothing else, so
 * a passing run is silent).
 *
 * fuzz_memfile_*: the safetensors and config.json readers take a path, not a
 * buffer (they mmap / fopen it), so the harnesses hand them the fuzz input as
 * an in-memory file: one memfd per process, rewritten for every input, named
 * by its /proc/self/fd/N path.  No disk I/O and nothing to clean up.
 *
 * fuzz_tokenizer: the Llama-3 tokenizer, loaded once per process from
 * $ARMO_FUZZ_TOKENIZER_DIR, else from ARMO_FUZZ_TOKENIZER_DIR as compiled in
 * by cmake/fuzz.cmake (the build's extracted models/_data/llama3-tokenizer).
 * It stays loaded for the whole run (still reachable at exit, so
 * LeakSanitizer does not count it). */
#ifndef ARMO_FUZZ_UTIL_H
#define ARMO_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/text/tokenizer.h"

#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FUZZ INVARIANT %s:%d: %s: ", __FILE__, __LINE__,    \
                    #cond);                                                      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

typedef struct {
    int fd;
    char path[64];
} fuzz_memfile;

static inline void fuzz_memfile_open(fuzz_memfile *m, const char *name) {
    m->fd = memfd_create(name, MFD_CLOEXEC);
    if (m->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(m->path, sizeof m->path, "/proc/self/fd/%d", m->fd);
}

/* Replaces the file's contents with data[0..n). */
static inline void fuzz_memfile_set(fuzz_memfile *m, const uint8_t *data, size_t n) {
    if (ftruncate(m->fd, 0) != 0 || ftruncate(m->fd, (off_t)n) != 0) {
        perror("ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(m->fd, data + done, n - done, (off_t)done);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)w;
    }
}

#ifndef ARMO_FUZZ_TOKENIZER_DIR
#define ARMO_FUZZ_TOKENIZER_DIR ""
#endif

static inline armo_tokenizer *fuzz_tokenizer(void) {
    const char *dir = getenv("ARMO_FUZZ_TOKENIZER_DIR");
    if (!dir || !*dir) dir = ARMO_FUZZ_TOKENIZER_DIR;
    armo_err e = {{0}};
    armo_tokenizer *tok = armo_tokenizer_load(dir, &e);
    if (!tok) {
        fprintf(stderr, "fuzz: cannot load the Llama-3 tokenizer from '%s' (set "
                        "ARMO_FUZZ_TOKENIZER_DIR to a directory with tokenizer.json): %s\n",
                dir, e.msg);
        exit(1);
    }
    return tok;
}

/* Appends the bytes of ids[0..n) (the tokenizer's decode) to a malloc'ed
 * buffer; every id must be known.  *len receives the length. */
static inline char *fuzz_decode(const armo_tokenizer *tok, const int32_t *ids, size_t n,
                                size_t *len) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        const char *b = armo_tokenizer_id_bytes(tok, ids[i], &l);
        FUZZ_CHECK(b != NULL, "id %d (position %zu) has no bytes", ids[i], i);
        total += l;
    }
    char *out = malloc(total + 1);
    FUZZ_CHECK(out != NULL, "out of memory decoding %zu ids", n);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        const char *b = armo_tokenizer_id_bytes(tok, ids[i], &l);
        memcpy(out + o, b, l);
        o += l;
    }
    out[o] = 0;
    *len = o;
    return out;
}

#endif
