/* safetensors.c — the defensive safetensors reader (see safetensors.h).
 *
 * A file is opened, fstat'ed and mmap'ed whole (PROT_READ, MAP_PRIVATE); the
 * descriptor is closed at once and tensors point into the mapping.  Nothing
 * read from the file is trusted: the 8-byte header length is checked against
 * the file size and ST_MAX_HEADER_BYTES before jansson sees a byte; every
 * number from the JSON is checked for sign and range, and every size product
 * is computed in uint64_t with explicit overflow checks, so that a data
 * pointer is only formed once [begin, end) is known to lie inside the data
 * section.  Byte ranges are then sorted and checked for overlap.
 *
 * Sharded checkpoints: each distinct file named by the index's weight_map is
 * opened once (shards in strcmp order of their file names); shard names must
 * be plain file names (no '/', not "." or ".."), so a hostile index cannot
 * reach outside the checkpoint directory.  Tensors a shard holds that the
 * weight_map does not mention are kept (the index is checked, not enforced
 * as a filter).  A tensor in two shards, or missing from the shard the index
 * names, is an error.
 *
 * st_open_* start by zeroing *ck (they do not close a checkpoint it held);
 * every failure releases what was opened and leaves the checkpoint zeroed,
 * so st_close is always safe.  Tensor names are sorted with strcmp.  Not defended against: another process
 * truncating a file while it is mapped (SIGBUS on access), as with any mmap.
 *
 * Alignment: tensor data start at 8 + N + begin in the file.  Files written
 * by the safetensors library pad the header to a multiple of 8, so data are
 * aligned; a file that does not is accepted, and its tensors may be
 * misaligned for their element type (readers should memcpy or check). */
#include "weights/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest tensor name quoted in an error message (names come from the file
 * and could fill the whole message otherwise). */
#define NAME_MAX_QUOTED 200
#define Q(name) NAME_MAX_QUOTED, (name)

typedef struct {
    uint64_t begin, end;
    const char *name;
} byte_span;

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* A non-negative JSON integer into *out; 0 on success. */
static int json_nonneg(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0) return -1;
    *out = (uint64_t)x;
    return 0;
}

/* Checks one tensor entry of file `path` and fills *t (not its name, data or
 * shard) and the byte range [*begin, *end) relative to the data section. */
static int parse_entry(const char *path, const char *name, const json_t *entry,
                       uint64_t data_size, st_tensor *t, uint64_t *begin, uint64_t *end,
                       armo_err *e) {
    if (!json_is_object(entry))
        return armo_err_set(e, "%s: tensor \"%.*s\": entry is a JSON %s, not an object with "
                            "dtype, shape and data_offsets (corrupt safetensors header)",
                            path, Q(name), json_kind(entry));

    const json_t *dt = json_object_get(entry, "dtype");
    if (!dt)
        return armo_err_set(e, "%s: tensor \"%.*s\": missing \"dtype\"", path, Q(name));
    if (!json_is_string(dt))
        return armo_err_set(e, "%s: tensor \"%.*s\": \"dtype\" is a JSON %s, not a string",
                            path, Q(name), json_kind(dt));
    t->dtype = armo_dtype_from_name(json_string_value(dt));
    if (t->dtype == ARMO_DT_INVALID)
        return armo_err_set(e, "%s: tensor \"%.*s\": unknown dtype \"%.32s\" (known: BOOL, U8, "
                            "I8, F8_E4M3, F8_E5M2, I16, U16, F16, BF16, I32, U32, F32, F64, "
                            "I64, U64)",
                            path, Q(name), json_string_value(dt));
    uint64_t elem_size = armo_dtype_size(t->dtype);

    const json_t *shape = json_object_get(entry, "shape");
    if (!shape)
        return armo_err_set(e, "%s: tensor \"%.*s\": missing \"shape\"", path, Q(name));
    if (!json_is_array(shape))
        return armo_err_set(e, "%s: tensor \"%.*s\": \"shape\" is a JSON %s, not an array of "
                            "non-negative integers",
                            path, Q(name), json_kind(shape));
    size_t ndim = json_array_size(shape);
    if (ndim > ST_MAX_DIMS)
        return armo_err_set(e, "%s: tensor \"%.*s\": shape has %zu dimensions, more than the "
                            "supported %d",
                            path, Q(name), ndim, ST_MAX_DIMS);
    t->ndim = (int)ndim;
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        const json_t *d = json_array_get(shape, i);
        uint64_t dim;
        if (json_nonneg(d, &dim) != 0) {
            if (json_is_integer(d))
                return armo_err_set(e, "%s: tensor \"%.*s\": shape dimension %zu is %lld; "
                                    "dimensions must be non-negative integers",
                                    path, Q(name), i, (long long)json_integer_value(d));
            return armo_err_set(e, "%s: tensor \"%.*s\": shape dimension %zu is a JSON %s; "
                                "dimensions must be non-negative integers",
                                path, Q(name), i, json_kind(d));
        }
        t->shape[i] = (int64_t)dim;
        if (__builtin_mul_overflow(numel, dim, &numel) || numel > (uint64_t)INT64_MAX)
            return armo_err_set(e, "%s: tensor \"%.*s\": the element count of its shape "
                                "overflows 64 bits (corrupt header)",
                                path, Q(name));
    }
    t->numel = (int64_t)numel;
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, elem_size, &nbytes) || nbytes > (uint64_t)SIZE_MAX)
        return armo_err_set(e, "%s: tensor \"%.*s\": its byte size (%llu elements of %s) "
                            "overflows 64 bits (corrupt header)",
                            path, Q(name), (unsigned long long)numel, armo_dtype_name(t->dtype));
    t->nbytes = (size_t)nbytes;

    const json_t *off = json_object_get(entry, "data_offsets");
    if (!off)
        return armo_err_set(e, "%s: tensor \"%.*s\": missing \"data_offsets\"", path, Q(name));
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        json_nonneg(json_array_get(off, 0), begin) != 0 ||
        json_nonneg(json_array_get(off, 1), end) != 0)
        return armo_err_set(e, "%s: tensor \"%.*s\": \"data_offsets\" must be an array of "
                            "exactly two non-negative integers [begin, end]",
                            path, Q(name));
    if (*begin > *end)
        return armo_err_set(e, "%s: tensor \"%.*s\": data_offsets begin %llu > end %llu",
                            path, Q(name), (unsigned long long)*begin,
                            (unsigned long long)*end);
    if (*end > data_size)
        return armo_err_set(e, "%s: tensor \"%.*s\": data_offsets [%llu, %llu] run past the "
                            "end of the data section (%llu bytes): file truncated or corrupt",
                            path, Q(name), (unsigned long long)*begin,
                            (unsigned long long)*end, (unsigned long long)data_size);
    if (*end - *begin != nbytes) {
        char shp[160];
        st_shape_str(t, shp, sizeof shp);
        return armo_err_set(e, "%s: tensor \"%.*s\": data_offsets span %llu bytes but shape "
                            "%s of %s needs %llu bytes",
                            path, Q(name), (unsigned long long)(*end - *begin), shp,
                            armo_dtype_name(t->dtype), (unsigned long long)nbytes);
    }
    return 0;
}

static int cmp_span(const void *a, const void *b) {
    const byte_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses the header of ck->files[shard] (already mapped, size >= 8) and
 * appends its tensors to ck->tensors. */
static int parse_header(st_checkpoint *ck, int shard, armo_err *e) {
    const st_file *f = &ck->files[shard];
    const unsigned char *base = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen == 0)
        return armo_err_set(e, "%s: header length is 0: not a safetensors file", f->path);
    if (hlen > ST_MAX_HEADER_BYTES)
        return armo_err_set(e, "%s: header length %llu exceeds the limit of %u bytes: corrupt "
                            "or not a safetensors file",
                            f->path, (unsigned long long)hlen, ST_MAX_HEADER_BYTES);
    if (hlen > f->size - 8)
        return armo_err_set(e, "%s: header length %llu runs past the end of the file "
                            "(%zu bytes): file truncated or corrupt",
                            f->path, (unsigned long long)hlen, f->size);
    const unsigned char *data = base + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return armo_err_set(e, "%s: header is not valid JSON (line %d, column %d): %s", f->path,
                            jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        armo_err_set(e, "%s: header is a JSON %s, not an object: not a safetensors file",
                     f->path, json_kind(root));
        json_decref(root);
        return -1;
    }

    size_t count = json_object_size(root);
    if ((size_t)ck->ntensors + count > (size_t)INT32_MAX) {
        json_decref(root);
        return armo_err_set(e, "%s: too many tensors", f->path);
    }
    st_tensor *grown = realloc(ck->tensors, ((size_t)ck->ntensors + count + 1) * sizeof *grown);
    byte_span *spans = malloc((count + 1) * sizeof *spans);
    if (grown) ck->tensors = grown;
    if (!grown || !spans) {
        free(spans);
        json_decref(root);
        return armo_err_set(e, "%s: out of memory reading %zu header entries", f->path, count);
    }

    int rc = 0;
    size_t nspans = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue; /* ignored, whatever it holds */
        st_tensor t;
        memset(&t, 0, sizeof t);
        uint64_t begin = 0, end = 0;
        if (parse_entry(f->path, key, val, data_size, &t, &begin, &end, e) != 0) {
            rc = -1;
            break;
        }
        t.data = data + begin;
        t.shard = shard;
        t.name = strdup(key);
        if (!t.name) {
            rc = armo_err_set(e, "%s: out of memory", f->path);
            break;
        }
        ck->tensors[ck->ntensors++] = t;
        spans[nspans++] = (byte_span){begin, end, t.name};
    }

    if (rc == 0 && nspans > 1) {
        qsort(spans, nspans, sizeof *spans, cmp_span);
        const byte_span *reach = NULL; /* non-empty span reaching furthest so far */
        for (size_t i = 0; i < nspans; i++) {
            const byte_span *s = &spans[i];
            if (s->begin == s->end) continue; /* empty tensors occupy no bytes */
            if (reach && s->begin < reach->end) {
                rc = armo_err_set(e, "%s: tensors \"%.*s\" [%llu, %llu) and \"%.*s\" "
                                  "[%llu, %llu) overlap in the data section (corrupt file)",
                                  f->path, Q(reach->name), (unsigned long long)reach->begin,
                                  (unsigned long long)reach->end, Q(s->name),
                                  (unsigned long long)s->begin, (unsigned long long)s->end);
                break;
            }
            if (!reach || s->end > reach->end) reach = s;
        }
    }
    free(spans);
    json_decref(root);
    return rc;
}

/* Opens and maps `path` as a new shard of ck and parses its header. */
static int add_file(st_checkpoint *ck, const char *path, armo_err *e) {
    st_file *files = realloc(ck->files, ((size_t)ck->nfiles + 1) * sizeof *files);
    if (!files) return armo_err_set(e, "%s: out of memory", path);
    ck->files = files;
    st_file *f = &files[ck->nfiles];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return armo_err_set(e, "%s: out of memory", path);
    ck->nfiles++; /* from here on st_close releases it */

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return armo_err_set(e, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return armo_err_set(e, "cannot stat %s: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return armo_err_set(e, "%s: not a regular file (expected a .safetensors file)", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return armo_err_set(e, "%s: file is %lld bytes, shorter than the 8-byte header length: "
                            "truncated or not a safetensors file",
                            path, (long long)st.st_size);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return armo_err_set(e, "%s: file too large to map", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return armo_err_set(e, "cannot mmap %s (%lld bytes): %s", path, (long long)st.st_size,
                            strerror(map_errno));
    f->map = map;
    f->size = (size_t)st.st_size;
    return parse_header(ck, ck->nfiles - 1, e);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const st_tensor *)elem)->name);
}

/* Sorts ck->tensors by name and refuses a name that appears twice (which can
 * only happen across shards: one header's keys are unique). */
static int sort_and_check_unique(st_checkpoint *ck, armo_err *e) {
    if (ck->ntensors > 1) qsort(ck->tensors, (size_t)ck->ntensors, sizeof *ck->tensors,
                                cmp_tensor_name);
    for (int i = 1; i < ck->ntensors; i++) {
        const st_tensor *a = &ck->tensors[i - 1], *b = &ck->tensors[i];
        if (strcmp(a->name, b->name) == 0)
            return armo_err_set(e, "tensor \"%.*s\" is in two shards: %s and %s (a checkpoint "
                                "must hold each tensor once)",
                                Q(a->name), ck->files[a->shard].path, ck->files[b->shard].path);
    }
    return 0;
}

int st_open_file(st_checkpoint *ck, const char *path, armo_err *e) {
    memset(ck, 0, sizeof *ck);
    if (add_file(ck, path, e) != 0 || sort_and_check_unique(ck, e) != 0) {
        st_close(ck);
        return -1;
    }
    return 0;
}

static char *join_path(const char *dir, const char *file) {
    size_t n = strlen(dir);
    const char *sep = (n > 0 && dir[n - 1] == '/') ? "" : "/";
    char *out = NULL;
    if (asprintf(&out, "%s%s%s", dir, sep, file) < 0) return NULL;
    return out;
}

typedef struct {
    const char *file;   /* shard file name from the weight_map */
    const char *tensor; /* a tensor the index maps to it (for messages) */
} shard_ref;

static int cmp_shard_ref(const void *a, const void *b) {
    const shard_ref *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->tensor, y->tensor);
}

static int hostile_name(const char *s) {
    return s[0] == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strchr(s, '/') != NULL;
}

/* Opens the shards named by index file `ipath` (in directory `dir`). */
static int open_index(st_checkpoint *ck, const char *dir, const char *ipath, armo_err *e) {
    json_error_t jerr;
    json_t *root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return armo_err_set(e, "%s: cannot read the shard index (line %d, column %d): %s", ipath,
                            jerr.line, jerr.column, jerr.text);
    int rc = -1;
    shard_ref *refs = NULL;
    char *spath = NULL;
    const json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(root)) {
        armo_err_set(e, "%s: shard index is a JSON %s, not an object", ipath, json_kind(root));
        goto done;
    }
    if (!json_is_object(wm)) {
        armo_err_set(e, "%s: shard index has no \"weight_map\" object {tensor: shard file}",
                     ipath);
        goto done;
    }
    size_t nmap = json_object_size(wm);
    if (nmap == 0) {
        armo_err_set(e, "%s: \"weight_map\" is empty: the index names no tensors", ipath);
        goto done;
    }
    refs = malloc(nmap * sizeof *refs);
    if (!refs) {
        armo_err_set(e, "%s: out of memory", ipath);
        goto done;
    }
    size_t nrefs = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)wm, key, val) {
        if (!json_is_string(val)) {
            armo_err_set(e, "%s: weight_map entry for tensor \"%.*s\" is a JSON %s, not a shard "
                         "file name",
                         ipath, Q(key), json_kind(val));
            goto done;
        }
        const char *file = json_string_value(val);
        if (hostile_name(file)) {
            armo_err_set(e, "%s: refusing shard name \"%.*s\" for tensor \"%.*s\": shard names "
                         "must be plain file names inside the checkpoint directory",
                         ipath, Q(file), Q(key));
            goto done;
        }
        refs[nrefs++] = (shard_ref){file, key};
    }
    qsort(refs, nrefs, sizeof *refs, cmp_shard_ref);

    /* One add_file per distinct shard name; shard i of ck is the i-th distinct
     * name in sorted order. */
    for (size_t i = 0; i < nrefs; i++) {
        if (i > 0 && strcmp(refs[i].file, refs[i - 1].file) == 0) continue;
        free(spath);
        spath = join_path(dir, refs[i].file);
        if (!spath) {
            armo_err_set(e, "%s: out of memory", ipath);
            goto done;
        }
        struct stat st;
        if (stat(spath, &st) != 0 && errno == ENOENT) {
            armo_err_set(e, "missing shard %s (named by %s for tensor \"%.*s\")", spath, ipath,
                         Q(refs[i].tensor));
            goto done;
        }
        if (add_file(ck, spath, e) != 0) goto done;
    }
    if (sort_and_check_unique(ck, e) != 0) goto done;

    /* Every tensor the index maps must be in the shard it names. */
    for (size_t i = 0; i < nrefs; i++) {
        const st_tensor *t = st_find(ck, refs[i].tensor);
        const char *have = NULL;
        if (t) {
            const char *p = ck->files[t->shard].path;
            const char *slash = strrchr(p, '/');
            have = slash ? slash + 1 : p;
        }
        if (!t || strcmp(have, refs[i].file) != 0) {
            if (t)
                armo_err_set(e, "%s: tensor \"%.*s\": the index maps it to %s but %s has no "
                             "such tensor (it is in %s)",
                             ipath, Q(refs[i].tensor), refs[i].file, refs[i].file, have);
            else
                armo_err_set(e, "%s: tensor \"%.*s\": the index maps it to %s but %s has no "
                             "such tensor",
                             ipath, Q(refs[i].tensor), refs[i].file, refs[i].file);
            goto done;
        }
    }
    rc = 0;
done:
    free(spath);
    free(refs);
    json_decref(root);
    return rc;
}

int st_open_dir(st_checkpoint *ck, const char *dir, armo_err *e) {
    memset(ck, 0, sizeof *ck);
    int rc = -1;
    char *ipath = join_path(dir, "model.safetensors.index.json");
    char *fpath = join_path(dir, "model.safetensors");
    if (!ipath || !fpath) {
        armo_err_set(e, "%s: out of memory", dir);
        goto done;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        armo_err_set(e, "checkpoint directory %s: %s", dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        armo_err_set(e, "checkpoint directory %s: not a directory", dir);
        goto done;
    }
    if (stat(ipath, &st) == 0 || errno != ENOENT) {
        rc = open_index(ck, dir, ipath, e);
        if (rc == 0) goto done;
        st_close(ck);
        goto done;
    }
    if (stat(fpath, &st) == 0 || errno != ENOENT) {
        rc = st_open_file(ck, fpath, e);
        goto done;
    }
    armo_err_set(e, "no checkpoint in %s: looked for %s (sharded) and %s (single file), "
                 "found neither",
                 dir, ipath, fpath);
done:
    free(ipath);
    free(fpath);
    return rc;
}

const st_tensor *st_find(const st_checkpoint *ck, const char *name) {
    if (!ck || !name || !ck->tensors || ck->ntensors <= 0) return NULL;
    return bsearch(name, ck->tensors, (size_t)ck->ntensors, sizeof *ck->tensors, cmp_key_tensor);
}

void st_close(st_checkpoint *ck) {
    if (!ck) return;
    if (ck->tensors)
        for (int i = 0; i < ck->ntensors; i++) free(ck->tensors[i].name);
    free(ck->tensors);
    if (ck->files)
        for (int i = 0; i < ck->nfiles; i++) {
            if (ck->files[i].map) munmap(ck->files[i].map, ck->files[i].size);
            free(ck->files[i].path);
        }
    free(ck->files);
    memset(ck, 0, sizeof *ck);
}

const char *st_shape_str(const st_tensor *t, char *buf, size_t len) {
    if (!buf || len == 0) return buf;
    size_t used = 0;
    buf[0] = '\0';
    int n = snprintf(buf, len, "[");
    if (n > 0) used = (size_t)n;
    int ndim = t ? t->ndim : 0;
    if (ndim < 0) ndim = 0;
    if (ndim > ST_MAX_DIMS) ndim = ST_MAX_DIMS;
    for (int i = 0; i < ndim && used < len; i++) {
        n = snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}
