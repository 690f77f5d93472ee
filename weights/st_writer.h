/* st_writer.h — writes safetensors files (the inverse of safetensors.h).
 *
 * Used to build random-weight models in the exact Hugging Face layout
 * without Python: the GPU engine tests' medium model and `armo bench`'s
 * ArmoRM-shaped model.  Tensors are laid out in the order given, 8-byte
 * aligned header, offsets relative to the data section as the format says. */
#ifndef ARMO_ST_WRITER_H
#define ARMO_ST_WRITER_H

#include <stdint.h>

#include "base/errors.h"
#include "weights/dtype.h"

typedef struct {
    const char *name;
    armo_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;            /* numel * dtype size bytes */
} st_write_tensor;

int st_write_file(const char *path, const st_write_tensor *t, int n, armo_err *e);

#endif
