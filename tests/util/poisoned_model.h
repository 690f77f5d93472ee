/* poisoned_model.h — test helpers that write a modified copy of a bundled
 * checkpoint: the copy itself (tokenizer files linked, the rest copied) and
 * one element of one tensor overwritten in place (BF16, F16 or F32), for the
 * tests of non-finite weights (tests/engine/test_nonfinite.c,
 * tests/cli/test_nonfinite_cli.c).  Header-only, like test_util.h, so that
 * each test stays one source file. */
#ifndef ARMO_TEST_POISONED_MODEL_H
#define ARMO_TEST_POISONED_MODEL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weights/dtype.h"
#include "weights/safetensors.h"

/* dst/<name> <- src/<name>: tokenizer files as symlinks, the rest copied. */
static int test_copy_model(const char *src, const char *dst) {
    mkdir(dst, 0755);
    DIR *d = opendir(src);
    if (!d) return -1;
    struct dirent *de;
    int rc = 0;
    char buf[1 << 16];
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char from[2400], to[2400]; /* dir (< 2048) + "/" + d_name (< 256) */
        snprintf(from, sizeof from, "%s/%s", src, de->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, de->d_name);
        struct stat sb;
        if (stat(from, &sb) || !S_ISREG(sb.st_mode)) continue;
        unlink(to);
        if (!strncmp(de->d_name, "tokenizer", 9)) {
            rc = symlink(from, to);
            continue;
        }
        FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
        size_t n;
        if (!in || !out) rc = -1;
        while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, out) != n) rc = -1;
        if (in) fclose(in);
        if (out && fclose(out)) rc = -1;
    }
    closedir(d);
    return rc;
}

/* Overwrites element `index` of tensor `name` in checkpoint dir with v. */
static int test_poison_tensor(const char *dir, const char *name, int64_t index, float v) {
    st_checkpoint ck;
    armo_err e;
    if (st_open_dir(&ck, dir, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    const st_tensor *t = st_find(&ck, name);
    if (!t || index < 0 || index >= t->numel) {
        fprintf(stderr, "%s: no tensor %s or index %lld outside it\n", dir, name, (long long)index);
        st_close(&ck);
        return -1;
    }
    const armo_dtype dt = t->dtype;
    const size_t es = armo_dtype_size(dt);
    const long off = (long)((const char *)t->data - (const char *)ck.files[t->shard].map) +
                     (long)(index * (int64_t)es);
    char path[2048];
    snprintf(path, sizeof path, "%s", ck.files[t->shard].path);
    st_close(&ck);
    unsigned char bytes[4];
    if (dt == ARMO_DT_BF16) {
        uint16_t h = armo_f32_to_bf16(v);
        memcpy(bytes, &h, 2);
    } else if (dt == ARMO_DT_F16) {
        uint16_t h = v != v ? 0x7e00u : v > 0 ? 0x7c00u : 0xfc00u;
        memcpy(bytes, &h, 2);
    } else if (dt == ARMO_DT_F32) {
        memcpy(bytes, &v, 4);
    } else {
        return -1;
    }
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    int rc = fseek(f, off, SEEK_SET) == 0 && fwrite(bytes, 1, es, f) == es ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

#endif
