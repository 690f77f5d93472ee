/* test_safetensors.c — the safetensors reader on valid, sharded, malformed
 * and randomly corrupted files.
 *
 * Every file is composed here, byte by byte, from a header string and data
 * bytes (8-byte little-endian header length, header padded with spaces to a
 * multiple of 8 as the safetensors library writes it, data), and written
 * under ARMO_BINARY_DIR/tmp_safetensors/, which is removed at the end.
 * Expected values are hand-written bit patterns (bf16 / f16 constants) and
 * the floats written into the files, never output of the code under test.
 * ST_TEST_VERBOSE=1 prints every expected error message for review. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/util/test_util.h"
#include "weights/safetensors.h"

static char g_root[1024];

/* ---- building files -------------------------------------------------------- */

typedef struct {
    unsigned char *bytes;
    size_t len;
} buf;

/* 8-byte LE header length + header (space-padded to a multiple of 8 when pad)
 * + data. */
static buf compose_raw(uint64_t header_len_field, const char *header, size_t header_bytes,
                       const void *data, size_t data_len) {
    buf b;
    b.len = 8 + header_bytes + data_len;
    b.bytes = malloc(b.len + 1);
    if (!b.bytes) abort();
    for (int i = 0; i < 8; i++) b.bytes[i] = (unsigned char)(header_len_field >> (8 * i));
    memset(b.bytes + 8, ' ', header_bytes);
    memcpy(b.bytes + 8, header, strlen(header) < header_bytes ? strlen(header) : header_bytes);
    if (data_len) memcpy(b.bytes + 8 + header_bytes, data, data_len);
    return b;
}

static buf compose(const char *header, const void *data, size_t data_len) {
    size_t hb = (strlen(header) + 7) / 8 * 8;
    return compose_raw(hb, header, hb, data, data_len);
}

static void mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

/* Writes bytes to ROOT/rel (creating directories); returns the full path in
 * a static rotating buffer. */
static const char *write_at(const char *rel, const void *bytes, size_t len) {
    static char paths[4][4096];
    static int which;
    char *path = paths[which++ % 4];
    if (snprintf(path, 4096, "%s/%s", g_root, rel) >= 4096) exit(2);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(bytes, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    return path;
}

static const char *write_buf(const char *rel, buf b) {
    const char *p = write_at(rel, b.bytes, b.len);
    free(b.bytes);
    return p;
}

static const char *write_text(const char *rel, const char *text) {
    return write_at(rel, text, strlen(text));
}

static const char *dir_of(const char *rel) {
    static char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", g_root, rel) >= (int)sizeof path) exit(2);
    mkdirs(path);
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int is_zeroed(const st_checkpoint *ck) {
    return ck->files == NULL && ck->nfiles == 0 && ck->tensors == NULL && ck->ntensors == 0;
}

/* ---- valid single file ---------------------------------------------------- */

static void put_u16(unsigned char *d, size_t off, uint16_t v) {
    d[off] = (unsigned char)v;
    d[off + 1] = (unsigned char)(v >> 8);
}

static void test_valid_file(void) {
    /* a.bf16 BF16 [2,3] @0..12, b.f16 F16 [4] @12..20, c.f32 F32 [2,2] @24..40,
     * d.i64 I64 [3] @40..64, e.scalar F32 [] @64..68, f.empty F32 [0,4] @68..68 */
    unsigned char data[68];
    memset(data, 0xAB, sizeof data); /* padding bytes 20..24 too */
    static const uint16_t bf16_bits[6] = {0x3F80, 0xC020, 0x3E20, 0x4040, 0x42C8, 0xBF00};
    static const float bf16_vals[6] = {1.0f, -2.5f, 0.15625f, 3.0f, 100.0f, -0.5f};
    for (int i = 0; i < 6; i++) put_u16(data, 2 * (size_t)i, bf16_bits[i]);
    static const uint16_t f16_bits[4] = {0x3C00, 0xC000, 0x3800, 0x7BFF};
    static const float f16_vals[4] = {1.0f, -2.0f, 0.5f, 65504.0f};
    for (int i = 0; i < 4; i++) put_u16(data, 12 + 2 * (size_t)i, f16_bits[i]);
    static const float f32_vals[4] = {0.1f, -1e30f, 3.25f, 7.0f};
    memcpy(data + 24, f32_vals, sizeof f32_vals);
    static const int64_t i64_vals[3] = {-1, 1LL << 40, 128256};
    memcpy(data + 40, i64_vals, sizeof i64_vals);
    float scalar = -42.5f;
    memcpy(data + 64, &scalar, 4);

    const char *header =
        "{\"d.i64\": {\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [40, 64]},"
        " \"__metadata__\": {\"format\": \"pt\", \"note\": \"x\"},"
        " \"a.bf16\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 12]},"
        " \"c.f32\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [24, 40]},"
        " \"b.f16\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [12, 20]},"
        " \"f.empty\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [68, 68]},"
        " \"e.scalar\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [64, 68]}}";
    const char *path = write_buf("valid/model.safetensors", compose(header, data, sizeof data));

    st_checkpoint ck;
    armo_err e = {{0}};
    int rc = st_open_file(&ck, path, &e);
    CHECK(rc == 0, "open valid file: %s", e.msg);
    if (rc != 0) return;
    CHECK(ck.nfiles == 1 && ck.ntensors == 6, "nfiles %d ntensors %d", ck.nfiles, ck.ntensors);
    static const char *sorted[6] = {"a.bf16", "b.f16", "c.f32", "d.i64", "e.scalar", "f.empty"};
    for (int i = 0; i < 6 && i < ck.ntensors; i++)
        CHECK(strcmp(ck.tensors[i].name, sorted[i]) == 0, "tensor %d is %s, want %s", i,
              ck.tensors[i].name, sorted[i]);
    CHECK(st_find(&ck, "__metadata__") == NULL, "metadata is not a tensor");
    CHECK(st_find(&ck, "nope") == NULL, "absent name");
    CHECK(st_find(&ck, "a.bf1") == NULL, "prefix of a name is absent");
    char shp[64];

    const st_tensor *t = st_find(&ck, "a.bf16");
    CHECK(t != NULL, "find a.bf16");
    if (t) {
        CHECK(t->dtype == ARMO_DT_BF16 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3,
              "a.bf16 dtype/shape");
        CHECK(t->numel == 6 && t->nbytes == 12 && t->shard == 0, "a.bf16 numel %lld nbytes %zu",
              (long long)t->numel, t->nbytes);
        CHECK(strcmp(st_shape_str(t, shp, sizeof shp), "[2, 3]") == 0, "shape str %s", shp);
        CHECK((const unsigned char *)t->data == (const unsigned char *)ck.files[0].map + 8 +
                                                    (strlen(header) + 7) / 8 * 8,
              "a.bf16 data points at the start of the data section");
        for (int i = 0; i < 6; i++)
            CHECK(armo_load_f32(t->data, t->dtype, (size_t)i) == bf16_vals[i], "bf16[%d] = %g", i,
                  armo_load_f32(t->data, t->dtype, (size_t)i));
    }
    t = st_find(&ck, "b.f16");
    CHECK(t != NULL, "find b.f16");
    if (t) {
        CHECK(t->dtype == ARMO_DT_F16 && t->ndim == 1 && t->shape[0] == 4 && t->nbytes == 8,
              "b.f16 meta");
        for (int i = 0; i < 4; i++)
            CHECK(armo_load_f32(t->data, t->dtype, (size_t)i) == f16_vals[i], "f16[%d] = %g", i,
                  armo_load_f32(t->data, t->dtype, (size_t)i));
    }
    t = st_find(&ck, "c.f32");
    CHECK(t != NULL, "find c.f32");
    if (t) {
        CHECK(t->dtype == ARMO_DT_F32 && t->ndim == 2 && t->numel == 4 && t->nbytes == 16,
              "c.f32 meta");
        for (int i = 0; i < 4; i++)
            CHECK(armo_load_f32(t->data, t->dtype, (size_t)i) == f32_vals[i], "f32[%d]", i);
    }
    t = st_find(&ck, "d.i64");
    CHECK(t != NULL, "find d.i64");
    if (t) {
        CHECK(t->dtype == ARMO_DT_I64 && t->ndim == 1 && t->numel == 3 && t->nbytes == 24,
              "d.i64 meta");
        int64_t got[3];
        memcpy(got, t->data, sizeof got);
        for (int i = 0; i < 3; i++)
            CHECK(got[i] == i64_vals[i], "i64[%d] = %lld", i, (long long)got[i]);
    }
    t = st_find(&ck, "e.scalar");
    CHECK(t != NULL, "find e.scalar");
    if (t) {
        CHECK(t->ndim == 0 && t->numel == 1 && t->nbytes == 4, "scalar ndim %d numel %lld",
              t->ndim, (long long)t->numel);
        CHECK(strcmp(st_shape_str(t, shp, sizeof shp), "[]") == 0, "scalar shape str %s", shp);
        CHECK(armo_load_f32(t->data, t->dtype, 0) == -42.5f, "scalar value");
    }
    t = st_find(&ck, "f.empty");
    CHECK(t != NULL, "find f.empty");
    if (t) {
        CHECK(t->ndim == 2 && t->numel == 0 && t->nbytes == 0, "empty numel %lld nbytes %zu",
              (long long)t->numel, t->nbytes);
        CHECK(strcmp(st_shape_str(t, shp, sizeof shp), "[0, 4]") == 0, "empty shape str %s", shp);
    }
    /* truncating formatter */
    t = st_find(&ck, "a.bf16");
    if (t) {
        char small[4];
        st_shape_str(t, small, sizeof small);
        CHECK(strlen(small) == 3 && strncmp(small, "[2,", 3) == 0, "truncated shape str '%s'",
              small);
    }
    st_close(&ck);
    CHECK(is_zeroed(&ck), "st_close zeroes the checkpoint");
    st_close(&ck); /* twice is safe */

    /* st_open_dir falls back to model.safetensors */
    rc = st_open_dir(&ck, dir_of("valid"), &e);
    CHECK(rc == 0 && ck.ntensors == 6, "open_dir single file: %s", e.msg);
    st_close(&ck);

    /* header "{}" (no tensors) and a header of only __metadata__ are legal */
    rc = st_open_file(&ck, write_buf("valid/empty.safetensors", compose("{}", NULL, 0)), &e);
    CHECK(rc == 0 && ck.ntensors == 0, "empty header: %s", e.msg);
    st_close(&ck);
    rc = st_open_file(&ck,
                      write_buf("valid/meta_only.safetensors",
                                compose("{\"__metadata__\": [1, 2]}", NULL, 0)),
                      &e);
    CHECK(rc == 0 && ck.ntensors == 0, "metadata of any type is ignored: %s", e.msg);
    st_close(&ck);

    /* zeroed struct is safe to close */
    st_checkpoint z;
    memset(&z, 0, sizeof z);
    st_close(&z);
    st_close(NULL);
}

/* ---- valid sharded checkpoint --------------------------------------------- */

static void write_shard(const char *rel, const char *n1, const char *n2, float base) {
    float v[6];
    for (int i = 0; i < 6; i++) v[i] = base + (float)i;
    char header[512];
    snprintf(header, sizeof header,
             "{\"%s\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]},"
             " \"%s\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}}",
             n1, n2);
    write_buf(rel, compose(header, v, sizeof v));
}

static void test_sharded(void) {
    write_shard("sharded/model-00001-of-00002.safetensors", "model.layers.0.w", "model.norm.weight",
                10.0f);
    write_shard("sharded/model-00002-of-00002.safetensors", "model.layers.1.w", "score.weight",
                20.0f);
    write_text("sharded/model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 48}, \"weight_map\": {"
               "\"score.weight\": \"model-00002-of-00002.safetensors\","
               "\"model.layers.0.w\": \"model-00001-of-00002.safetensors\","
               "\"model.layers.1.w\": \"model-00002-of-00002.safetensors\","
               "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
    /* a stale single file beside the index must be ignored */
    write_shard("sharded/model.safetensors", "stale.a", "stale.b", 0.0f);

    st_checkpoint ck;
    armo_err e = {{0}};
    int rc = st_open_dir(&ck, dir_of("sharded"), &e);
    CHECK(rc == 0, "open sharded: %s", e.msg);
    if (rc != 0) return;
    CHECK(ck.nfiles == 2 && ck.ntensors == 4, "nfiles %d ntensors %d", ck.nfiles, ck.ntensors);
    CHECK(st_find(&ck, "stale.a") == NULL, "model.safetensors ignored when an index exists");
    for (int i = 1; i < ck.ntensors; i++)
        CHECK(strcmp(ck.tensors[i - 1].name, ck.tensors[i].name) < 0, "sorted at %d", i);
    static const struct {
        const char *name;
        const char *file;
        float first, last;
    } want[4] = {{"model.layers.0.w", "model-00001-of-00002.safetensors", 10.0f, 13.0f},
                 {"model.norm.weight", "model-00001-of-00002.safetensors", 14.0f, 15.0f},
                 {"model.layers.1.w", "model-00002-of-00002.safetensors", 20.0f, 23.0f},
                 {"score.weight", "model-00002-of-00002.safetensors", 24.0f, 25.0f}};
    for (int i = 0; i < 4; i++) {
        const st_tensor *t = st_find(&ck, want[i].name);
        CHECK(t != NULL, "find %s across shards", want[i].name);
        if (!t) continue;
        CHECK(t->shard >= 0 && t->shard < ck.nfiles, "shard index %d", t->shard);
        CHECK(test_contains(ck.files[t->shard].path, want[i].file), "%s in %s", want[i].name,
              ck.files[t->shard].path);
        CHECK(armo_load_f32(t->data, t->dtype, 0) == want[i].first &&
                  armo_load_f32(t->data, t->dtype, (size_t)t->numel - 1) == want[i].last,
              "%s values", want[i].name);
    }
    st_close(&ck);
    CHECK(is_zeroed(&ck), "closed");
}

/* ---- malformed files ------------------------------------------------------ */

/* Opens path with st_open_file (or st_open_dir when dir), requires failure
 * with every word of `words` ('|'-separated) and `name_in_msg` in the
 * message, and a zeroed checkpoint afterwards. */
static void expect_fail(const char *what, int dir, const char *path, const char *name_in_msg,
                        const char *words) {
    st_checkpoint ck;
    armo_err e = {{0}};
    int rc = dir ? st_open_dir(&ck, path, &e) : st_open_file(&ck, path, &e);
    CHECK(rc == -1, "%s: expected failure, got success", what);
    if (rc == 0) {
        st_close(&ck);
        return;
    }
    if (getenv("ST_TEST_VERBOSE")) printf("%-32s %s\n", what, e.msg);
    CHECK(is_zeroed(&ck), "%s: checkpoint zeroed after failure", what);
    CHECK(test_contains(e.msg, name_in_msg), "%s: message lacks '%s': %s", what, name_in_msg,
          e.msg);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", words);
    for (char *w = strtok(tmp, "|"); w; w = strtok(NULL, "|"))
        CHECK(test_contains(e.msg, w), "%s: message lacks '%s': %s", what, w, e.msg);
    st_close(&ck);
}

/* A one-tensor header {"NAME": ENTRY} over `data_len` zero bytes. */
static const char *one_tensor(const char *rel, const char *name, const char *entry,
                              size_t data_len) {
    char header[1024];
    snprintf(header, sizeof header, "{\"%s\": %s}", name, entry);
    unsigned char *zeros = calloc(1, data_len + 1);
    const char *p = write_buf(rel, compose(header, zeros, data_len));
    free(zeros);
    return p;
}

static void test_malformed_files(void) {
    const char *p;

    p = write_at("bad/short.safetensors", "\x10\x00\x00\x00\x00", 5);
    expect_fail("file < 8 bytes", 0, p, "short.safetensors", "5 bytes|shorter than");

    p = write_at("bad/empty_file.safetensors", "", 0);
    expect_fail("empty file", 0, p, "empty_file.safetensors", "0 bytes|shorter than");

    {
        buf b = compose_raw(100, "{\"a\": 1}", 8, "\0\0\0\0", 4);
        p = write_buf("bad/truncated_header.safetensors", b);
        expect_fail("header length past end of file", 0, p, "truncated_header.safetensors",
                    "header length 100|past the end of the file");
    }
    {
        buf b = compose_raw(1ULL << 62, "{}      ", 8, NULL, 0);
        p = write_buf("bad/absurd_len.safetensors", b);
        expect_fail("header length 2^62", 0, p, "absurd_len.safetensors",
                    "header length 4611686018427387904|exceeds the limit");
    }
    {
        buf b = compose_raw(0, "", 0, "\0\0\0\0", 4);
        p = write_buf("bad/zero_len.safetensors", b);
        expect_fail("header length 0", 0, p, "zero_len.safetensors", "header length is 0");
    }
    p = write_buf("bad/not_json.safetensors", compose("{\"a\": {\"dtype\": ", NULL, 0));
    expect_fail("header not JSON", 0, p, "not_json.safetensors", "not valid JSON|line 1|column");
    p = write_buf("bad/array.safetensors", compose("[1, 2, 3]", NULL, 0));
    expect_fail("header is an array", 0, p, "array.safetensors", "JSON array|not an object");
    p = write_buf("bad/dup.safetensors",
                  compose("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                          " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                          "\0\0\0\0\0\0\0\0", 8));
    expect_fail("duplicate key", 0, p, "dup.safetensors", "not valid JSON|duplicate");
    {
        /* invalid UTF-8 in a key */
        p = write_buf("bad/utf8.safetensors",
                      compose("{\"w\xff\": {\"dtype\": \"F32\", \"shape\": [1], "
                              "\"data_offsets\": [0, 4]}}",
                              "\0\0\0\0", 4));
        expect_fail("invalid UTF-8", 0, p, "utf8.safetensors", "not valid JSON");
    }

    p = one_tensor("bad/entry_not_object.safetensors", "layer.w", "[1, 2]", 0);
    expect_fail("entry not an object", 0, p, "entry_not_object.safetensors",
                "layer.w|not an object");
    p = one_tensor("bad/no_dtype.safetensors", "layer.w", "{\"shape\": [1], \"data_offsets\": [0, 4]}",
                   4);
    expect_fail("missing dtype", 0, p, "no_dtype.safetensors", "layer.w|missing \"dtype\"");
    p = one_tensor("bad/dtype_int.safetensors", "layer.w",
                   "{\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}", 4);
    expect_fail("non-string dtype", 0, p, "dtype_int.safetensors", "layer.w|dtype|not a string");
    p = one_tensor("bad/f7.safetensors", "layer.w",
                   "{\"dtype\": \"F7\", \"shape\": [1], \"data_offsets\": [0, 4]}", 4);
    expect_fail("unknown dtype F7", 0, p, "f7.safetensors", "layer.w|unknown dtype \"F7\"");
    p = one_tensor("bad/neg_dim.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 4]}", 4);
    expect_fail("negative dim", 0, p, "neg_dim.safetensors", "layer.w|dimension 1 is -3|non-negative");
    p = one_tensor("bad/float_dim.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}", 8);
    expect_fail("non-integer dim", 0, p, "float_dim.safetensors", "layer.w|dimension 0|non-negative");
    p = one_tensor("bad/shape_str.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]}", 8);
    expect_fail("shape not array", 0, p, "shape_str.safetensors", "layer.w|\"shape\"|not an array");
    p = one_tensor("bad/many_dims.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}",
                   4);
    expect_fail("9 dims", 0, p, "many_dims.safetensors", "layer.w|9 dimensions");
    p = one_tensor("bad/numel_overflow.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4], "
                   "\"data_offsets\": [0, 4]}",
                   4);
    expect_fail("numel overflow", 0, p, "numel_overflow.safetensors", "layer.w|overflows");
    p = one_tensor("bad/nbytes_overflow.safetensors", "layer.w",
                   "{\"dtype\": \"F64\", \"shape\": [4611686018427387904], "
                   "\"data_offsets\": [0, 8]}",
                   8);
    expect_fail("nbytes overflow", 0, p, "nbytes_overflow.safetensors", "layer.w|byte size|overflows");
    p = one_tensor("bad/past_end.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}", 12);
    expect_fail("offsets past end", 0, p, "past_end.safetensors",
                "layer.w|past the end of the data section|12 bytes");
    p = one_tensor("bad/huge_end.safetensors", "layer.w",
                   "{\"dtype\": \"U8\", \"shape\": [4], "
                   "\"data_offsets\": [9223372036854775800, 9223372036854775804]}",
                   4);
    expect_fail("offsets near INT64_MAX", 0, p, "huge_end.safetensors",
                "layer.w|past the end of the data section");
    p = one_tensor("bad/begin_gt_end.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}", 8);
    expect_fail("begin > end", 0, p, "begin_gt_end.safetensors", "layer.w|begin 8 > end 4");
    p = one_tensor("bad/three_offsets.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}", 8);
    expect_fail("three offsets", 0, p, "three_offsets.safetensors",
                "layer.w|exactly two non-negative integers");
    p = one_tensor("bad/neg_offset.safetensors", "layer.w",
                   "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}", 8);
    expect_fail("negative offset", 0, p, "neg_offset.safetensors",
                "layer.w|exactly two non-negative integers");
    p = one_tensor("bad/no_offsets.safetensors", "layer.w", "{\"dtype\": \"F32\", \"shape\": [1]}",
                   4);
    expect_fail("missing data_offsets", 0, p, "no_offsets.safetensors",
                "layer.w|missing \"data_offsets\"");
    p = one_tensor("bad/size_mismatch.safetensors", "layer.w",
                   "{\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}", 24);
    expect_fail("size != shape x dtype", 0, p, "size_mismatch.safetensors",
                "layer.w|span 24 bytes|[2, 3]|BF16|needs 12 bytes");
    p = write_buf("bad/overlap.safetensors",
                  compose("{\"first.w\": {\"dtype\": \"F32\", \"shape\": [4], "
                          "\"data_offsets\": [0, 16]},"
                          " \"zero.w\": {\"dtype\": \"F32\", \"shape\": [0], "
                          "\"data_offsets\": [8, 8]},"
                          " \"second.w\": {\"dtype\": \"F32\", \"shape\": [2], "
                          "\"data_offsets\": [12, 20]}}",
                          "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24));
    expect_fail("overlapping tensors", 0, p, "overlap.safetensors",
                "overlap|first.w|second.w|[12, 20)");
    /* a long tensor containing a later short one (not adjacent in begin order) */
    p = write_buf("bad/overlap_nested.safetensors",
                  compose("{\"big\": {\"dtype\": \"U8\", \"shape\": [20], "
                          "\"data_offsets\": [0, 20]},"
                          " \"mid\": {\"dtype\": \"U8\", \"shape\": [2], "
                          "\"data_offsets\": [2, 4]},"
                          " \"late\": {\"dtype\": \"U8\", \"shape\": [2], "
                          "\"data_offsets\": [10, 12]}}",
                          "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20));
    expect_fail("nested overlap", 0, p, "overlap_nested.safetensors", "overlap|big|mid");

    /* a directory is not a safetensors file */
    expect_fail("directory as file", 0, dir_of("bad/adir.safetensors"), "adir.safetensors",
                "not a regular file");
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/bad/does_not_exist.safetensors", g_root);
        expect_fail("missing file", 0, path, "does_not_exist.safetensors",
                    "cannot open|No such file");
    }
}

static void test_malformed_dirs(void) {
    const char *d;
    char ipath_words[2048];

    /* missing shard */
    write_shard("shard_missing/model-00001-of-00002.safetensors", "a.w", "b.w", 1.0f);
    write_text("shard_missing/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"model-00001-of-00002.safetensors\","
               "\"b.w\": \"model-00001-of-00002.safetensors\","
               "\"c.w\": \"model-00002-of-00002.safetensors\"}}");
    d = dir_of("shard_missing");
    expect_fail("missing shard", 1, d, "model-00002-of-00002.safetensors",
                "missing shard|model.safetensors.index.json|tensor \"c.w\"");

    /* tensor in index missing from its shard */
    write_shard("tensor_missing/model-00001-of-00001.safetensors", "a.w", "b.w", 1.0f);
    write_text("tensor_missing/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"model-00001-of-00001.safetensors\","
               "\"ghost.w\": \"model-00001-of-00001.safetensors\"}}");
    d = dir_of("tensor_missing");
    expect_fail("tensor missing from shard", 1, d, "model.safetensors.index.json",
                "ghost.w|maps it to model-00001-of-00001.safetensors|has no such tensor");

    /* index maps a tensor to the wrong shard */
    write_shard("wrong_shard/s1.safetensors", "a.w", "b.w", 1.0f);
    write_shard("wrong_shard/s2.safetensors", "c.w", "d.w", 1.0f);
    write_text("wrong_shard/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s2.safetensors\", \"c.w\": \"s2.safetensors\","
               "\"b.w\": \"s1.safetensors\"}}");
    d = dir_of("wrong_shard");
    expect_fail("tensor in another shard", 1, d, "model.safetensors.index.json",
                "a.w|maps it to s2.safetensors|has no such tensor|it is in");

    /* tensor in two shards */
    write_shard("two_shards/s1.safetensors", "a.w", "shared.w", 1.0f);
    write_shard("two_shards/s2.safetensors", "c.w", "shared.w", 2.0f);
    write_text("two_shards/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s1.safetensors\", \"c.w\": \"s2.safetensors\","
               "\"shared.w\": \"s1.safetensors\"}}");
    d = dir_of("two_shards");
    expect_fail("tensor in two shards", 1, d, "shared.w",
                "two shards|s1.safetensors|s2.safetensors");

    /* hostile shard paths */
    write_shard("x.safetensors", "a.w", "b.w", 1.0f); /* the target exists */
    write_text("hostile/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"../x.safetensors\"}}");
    d = dir_of("hostile");
    expect_fail("hostile ../", 1, d, "model.safetensors.index.json",
                "refusing shard name \"../x.safetensors\"|a.w");
    write_text("hostile_abs/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"/etc/passwd\"}}");
    expect_fail("hostile absolute", 1, dir_of("hostile_abs"), "/etc/passwd", "refusing shard name");
    write_text("hostile_dotdot/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"..\"}}");
    expect_fail("hostile ..", 1, dir_of("hostile_dotdot"), "\"..\"", "refusing shard name");

    /* index malformations */
    write_text("idx_not_json/model.safetensors.index.json", "{\"weight_map\": {");
    expect_fail("index not JSON", 1, dir_of("idx_not_json"), "model.safetensors.index.json",
                "line 1|column");
    write_text("idx_no_map/model.safetensors.index.json", "{\"metadata\": {}}");
    expect_fail("index without weight_map", 1, dir_of("idx_no_map"),
                "model.safetensors.index.json", "weight_map");
    write_text("idx_empty_map/model.safetensors.index.json", "{\"weight_map\": {}}");
    expect_fail("index with empty weight_map", 1, dir_of("idx_empty_map"),
                "model.safetensors.index.json", "weight_map|empty");
    write_text("idx_nonstring/model.safetensors.index.json", "{\"weight_map\": {\"a.w\": 3}}");
    expect_fail("index value not a string", 1, dir_of("idx_nonstring"),
                "model.safetensors.index.json", "a.w|not a shard file name");
    write_text("idx_dup/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s.safetensors\", \"a.w\": \"s.safetensors\"}}");
    expect_fail("index duplicate key", 1, dir_of("idx_dup"), "model.safetensors.index.json",
                "duplicate");

    /* a corrupt shard is reported with its own path, and what was already
     * opened is released */
    write_shard("bad_shard/s1.safetensors", "a.w", "b.w", 1.0f);
    write_at("bad_shard/s2.safetensors", "\x01\x02", 2);
    write_text("bad_shard/model.safetensors.index.json",
               "{\"weight_map\": {\"a.w\": \"s1.safetensors\", \"c.w\": \"s2.safetensors\"}}");
    expect_fail("corrupt second shard", 1, dir_of("bad_shard"), "s2.safetensors", "shorter than");

    /* neither index nor model.safetensors */
    d = dir_of("nothing");
    snprintf(ipath_words, sizeof ipath_words, "%s/nothing/model.safetensors.index.json", g_root);
    expect_fail("empty directory", 1, d, ipath_words, "no checkpoint|model.safetensors (single");
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/no_such_dir", g_root);
        expect_fail("missing directory", 1, path, "no_such_dir", "No such file");
    }
}

/* ---- robustness: random corruption ----------------------------------------- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}

/* Opens a corrupted file: it must either open with every invariant the
 * reader promises (tensors inside the mapping, sizes consistent, names sorted
 * and findable, non-empty ranges disjoint) or fail with a message naming it. */
static void fuzz_open(const char *path, const char *stage, int it, int *opened, int *failed) {
    st_checkpoint ck;
    armo_err e;
    memset(&e, 0, sizeof e);
    if (st_open_file(&ck, path, &e) == 0) {
        (*opened)++;
        int ok = ck.nfiles == 1;
        const unsigned char *lo = ck.files[0].map;
        const unsigned char *hi = lo + ck.files[0].size;
        for (int i = 0; i < ck.ntensors && ok; i++) {
            const st_tensor *t = &ck.tensors[i];
            const unsigned char *d = t->data;
            ok = t->name && d >= lo + 8 && d <= hi && t->nbytes <= (size_t)(hi - d) &&
                 t->ndim >= 0 && t->ndim <= ST_MAX_DIMS && t->numel >= 0 &&
                 t->nbytes == (size_t)t->numel * armo_dtype_size(t->dtype) &&
                 (i == 0 || strcmp(ck.tensors[i - 1].name, t->name) < 0) &&
                 st_find(&ck, t->name) == t;
            for (int j = 0; j < i && ok; j++) {
                const st_tensor *u = &ck.tensors[j];
                const unsigned char *ud = u->data;
                if (t->nbytes && u->nbytes) ok = d + t->nbytes <= ud || ud + u->nbytes <= d;
            }
            volatile unsigned sum = 0;
            for (size_t b = 0; ok && b < t->nbytes; b++) sum += d[b];
            (void)sum;
        }
        CHECK(ok, "fuzz %s %d: opened checkpoint violates an invariant", stage, it);
        st_close(&ck);
    } else {
        (*failed)++;
        if (getenv("ST_TEST_VERBOSE")) printf("fuzz %s %d: %s\n", stage, it, e.msg);
        CHECK(e.msg[0] != '\0', "fuzz %s %d: failure without a message", stage, it);
        CHECK(test_contains(e.msg, "f.safetensors"), "fuzz %s %d: no file name: %s", stage, it,
              e.msg);
        CHECK(is_zeroed(&ck), "fuzz %s %d: not zeroed after failure", stage, it);
    }
}

/* Rewrites one or two of the numbers in `header` (outside strings) as
 * interesting values (0, small, negative, near a power of two, past 2^63,
 * reals), keeping the JSON well-formed, so that the semantic checks (shape,
 * offsets, overflow) see hostile values rather than the JSON parser refusing
 * the header. */
static void mutate_numbers(const char *header, char *out, size_t cap) {
    static const char *const interesting[] = {
        "0", "1", "2", "3", "4", "8", "12", "16", "20", "24", "28", "32", "40", "42", "48",
        "-1", "-8", "7", "4294967296", "4294967295", "2147483648", "4611686018427387904",
        "9223372036854775807", "9223372036854775806", "18446744073709551615", "1e3", "2.0",
        "3037000500", "65536"};
    int nnum = 0, in_str = 0;
    for (const char *p = header; *p; p++) {
        if (*p == '"') in_str = !in_str;
        else if (!in_str && *p >= '0' && *p <= '9' && (p == header || p[-1] < '0' || p[-1] > '9'))
            nnum++;
    }
    int pick1 = nnum ? (int)(rng() % (uint64_t)nnum) : -1;
    int pick2 = (nnum && rng() % 2) ? (int)(rng() % (uint64_t)nnum) : -1;
    size_t n = 0;
    int idx = 0;
    in_str = 0;
    for (const char *p = header; *p && n + 32 < cap;) {
        if (*p == '"') in_str = !in_str;
        if (!in_str && *p >= '0' && *p <= '9') {
            const char *q = p;
            while (*q >= '0' && *q <= '9') q++;
            if (idx == pick1 || idx == pick2) {
                const char *v = interesting[rng() % (sizeof interesting / sizeof *interesting)];
                n += (size_t)snprintf(out + n, cap - n, "%s", v);
            } else {
                memcpy(out + n, p, (size_t)(q - p));
                n += (size_t)(q - p);
            }
            idx++;
            p = q;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static void test_fuzz(void) {
    /* base file: a few tensors, contiguous data */
    const char *header =
        "{\"__metadata__\": {\"format\": \"pt\"},"
        " \"w.a\": {\"dtype\": \"BF16\", \"shape\": [2, 4], \"data_offsets\": [0, 16]},"
        " \"w.b\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [16, 28]},"
        " \"w.c\": {\"dtype\": \"I64\", \"shape\": [1, 1], \"data_offsets\": [32, 40]},"
        " \"w.d\": {\"dtype\": \"F16\", \"shape\": [], \"data_offsets\": [40, 42]},"
        " \"w.e\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [42, 42]}}";
    unsigned char data[48];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 37 + 1);
    buf base = compose(header, data, sizeof data);
    size_t hdr_end = 8 + (strlen(header) + 7) / 8 * 8;
    static const char digits_and_syntax[] = "0123456789-[]{},:\" e.";
    unsigned char *work = malloc(base.len + 64);
    int opened = 0, failed = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz/f.safetensors", g_root);
    dir_of("fuzz");

    for (int it = 0; it < 3000; it++) {
        size_t len = base.len;
        memcpy(work, base.bytes, len);
        int mode = (int)(rng() % 4);
        int flips = 1 + (int)(rng() % 6);
        if (mode != 1)
            for (int k = 0; k < flips; k++) {
                /* mostly in the length field and the header, where it matters */
                size_t pos = (rng() % 8 == 0) ? (size_t)(rng() % len) : (size_t)(rng() % hdr_end);
                if (rng() % 2)
                    work[pos] ^= (unsigned char)(1u << (rng() % 8));
                else if (rng() % 2)
                    work[pos] = (unsigned char)digits_and_syntax[rng() % (sizeof digits_and_syntax - 1)];
                else
                    work[pos] = (unsigned char)rng();
            }
        if (mode == 1 || mode == 3) len = (size_t)(rng() % (base.len + 1));
        FILE *f = fopen(path, "wb");
        if (!f || (len && fwrite(work, 1, len, f) != len) || fclose(f) != 0) {
            CHECK(0, "fuzz: cannot write %s", path);
            break;
        }
        fuzz_open(path, "bytes", it, &opened, &failed);
    }
    printf("fuzz bytes: %d opened, %d refused\n", opened, failed);
    CHECK(failed > 1000, "fuzz should mostly produce refusals (%d)", failed);
    CHECK(opened > 10, "fuzz should also produce some valid files (%d)", opened);

    /* stage 2: valid JSON, hostile numbers */
    int opened2 = 0, failed2 = 0;
    char mutated[2048];
    for (int it = 0; it < 1000; it++) {
        mutate_numbers(header, mutated, sizeof mutated);
        buf b = compose(mutated, data, sizeof data);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(b.bytes, 1, b.len, f) != b.len || fclose(f) != 0) {
            CHECK(0, "fuzz: cannot write %s", path);
            free(b.bytes);
            break;
        }
        free(b.bytes);
        fuzz_open(path, "numbers", it, &opened2, &failed2);
    }
    printf("fuzz numbers: %d opened, %d refused\n", opened2, failed2);
    CHECK(failed2 > 300 && opened2 > 10, "numbers fuzz mix: %d opened, %d refused", opened2,
          failed2);
    free(work);
    free(base.bytes);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "%s/tmp_safetensors/%ld", ARMO_BINARY_DIR, (long)getpid());
    remove_tree(g_root);
    mkdirs(g_root);

    test_valid_file();
    test_sharded();
    test_malformed_files();
    test_malformed_dirs();
    test_fuzz();

    remove_tree(g_root);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/tmp_safetensors", ARMO_BINARY_DIR);
    rmdir(parent); /* only if empty: another run may be using it */
    return test_finish("test_safetensors");
}
