/* st_writer.c — see st_writer.h. */
#include "weights/st_writer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_write_file(const char *path, const st_write_tensor *t, int n, armo_err *e) {
    json_t *hdr = json_object();
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++) {
            numel *= (uint64_t)t[i].shape[d];
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        }
        uint64_t bytes = numel * armo_dtype_size(t[i].dtype);
        json_t *ent = json_object();
        json_object_set_new(ent, "dtype", json_string(armo_dtype_name(t[i].dtype)));
        json_object_set_new(ent, "shape", shape);
        json_object_set_new(ent, "data_offsets",
                            json_pack("[I, I]", (json_int_t)off, (json_int_t)(off + bytes)));
        json_object_set_new(hdr, t[i].name, ent);
        off += bytes;
    }
    char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    if (!text) return armo_err_set(e, "%s: cannot encode the safetensors header", path);
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7; /* pad with spaces to 8 bytes */
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(text);
        return armo_err_set(e, "%s: cannot create file", path);
    }
    unsigned char lenbuf[8];
    for (int b = 0; b < 8; b++) lenbuf[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    int ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t p = len; ok && p < padded; p++) ok = fputc(' ', f) != EOF;
    free(text);
    for (int i = 0; ok && i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        size_t bytes = (size_t)(numel * armo_dtype_size(t[i].dtype));
        ok = bytes == 0 || fwrite(t[i].data, 1, bytes, f) == bytes;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) return armo_err_set(e, "%s: write failed (disk full?)", path);
    return 0;
}
