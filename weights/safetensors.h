/* safetensors.h — a defensive reader for Hugging Face safetensors files and
 * sharded checkpoints (model.safetensors.index.json).
 *
 * Files are mmap'ed read-only; tensors point into the mapping (no copy).
 * Everything taken from a file is checked before use: the 8-byte header
 * length against the file size, the JSON header (parsed with jansson), each
 * dtype, shape (non-negative, product fits), data_offsets (begin <= end,
 * inside the data section, end - begin == numel * dtype size) and that no two
 * tensors overlap.  `__metadata__` is ignored.  A malformed, truncated or
 * hostile file gives an error naming the file and the tensor — never a crash
 * and never a read outside the mapping. */
#ifndef ARMO_SAFETENSORS_H
#define ARMO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "weights/dtype.h"

#define ST_MAX_DIMS 8
/* Headers larger than this are refused (the format's own limit is 100 MB). */
#define ST_MAX_HEADER_BYTES (100u * 1024u * 1024u)

typedef struct {
    char *name;                  /* owned */
    armo_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;               /* product of shape (1 for a scalar) */
    const void *data;            /* into the shard's mapping */
    size_t nbytes;
    int shard;                   /* index into st_checkpoint.files */
} st_tensor;

typedef struct {
    char *path;                  /* owned */
    void *map;                   /* mmap of the whole file (NULL if size 0) */
    size_t size;
} st_file;

typedef struct {
    st_file *files;
    int nfiles;
    st_tensor *tensors;          /* sorted by name */
    int ntensors;
} st_checkpoint;

/* Opens one .safetensors file as a one-shard checkpoint. */
int st_open_file(st_checkpoint *ck, const char *path, armo_err *e);

/* Opens a checkpoint directory: model.safetensors.index.json if present
 * (every shard it names must exist, every tensor it maps must be found in the
 * shard it names, no tensor in two shards), else model.safetensors. */
int st_open_dir(st_checkpoint *ck, const char *dir, armo_err *e);

/* Binary search by exact name; NULL if absent. */
const st_tensor *st_find(const st_checkpoint *ck, const char *name);

/* Releases mappings and memory; safe on a zeroed or half-opened checkpoint. */
void st_close(st_checkpoint *ck);

/* "[4096, 14336]" into buf. */
const char *st_shape_str(const st_tensor *t, char *buf, size_t len);

#endif
