/* dtype.c — safetensors dtype names and sizes (see dtype.h). */
#include "weights/dtype.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} k_dtypes[ARMO_DT_COUNT] = {
    [ARMO_DT_INVALID] = {"INVALID", 0}, [ARMO_DT_BOOL] = {"BOOL", 1},
    [ARMO_DT_U8] = {"U8", 1},           [ARMO_DT_I8] = {"I8", 1},
    [ARMO_DT_F8_E4M3] = {"F8_E4M3", 1}, [ARMO_DT_F8_E5M2] = {"F8_E5M2", 1},
    [ARMO_DT_I16] = {"I16", 2},         [ARMO_DT_U16] = {"U16", 2},
    [ARMO_DT_F16] = {"F16", 2},         [ARMO_DT_BF16] = {"BF16", 2},
    [ARMO_DT_I32] = {"I32", 4},         [ARMO_DT_U32] = {"U32", 4},
    [ARMO_DT_F32] = {"F32", 4},         [ARMO_DT_F64] = {"F64", 8},
    [ARMO_DT_I64] = {"I64", 8},         [ARMO_DT_U64] = {"U64", 8},
};

armo_dtype armo_dtype_from_name(const char *name) {
    if (!name) return ARMO_DT_INVALID;
    for (int i = 1; i < ARMO_DT_COUNT; i++)
        if (strcmp(name, k_dtypes[i].name) == 0) return (armo_dtype)i;
    return ARMO_DT_INVALID;
}

const char *armo_dtype_name(armo_dtype dt) {
    return (dt > 0 && dt < ARMO_DT_COUNT) ? k_dtypes[dt].name : "INVALID";
}

size_t armo_dtype_size(armo_dtype dt) {
    return (dt > 0 && dt < ARMO_DT_COUNT) ? k_dtypes[dt].size : 0;
}

int armo_dtype_is_float_compute(armo_dtype dt) {
    return dt == ARMO_DT_BF16 || dt == ARMO_DT_F16 || dt == ARMO_DT_F32;
}

void armo_convert_to_f32(float *dst, const void *src, armo_dtype dt, size_t n) {
    switch (dt) {
    case ARMO_DT_F32: memcpy(dst, src, n * sizeof(float)); break;
    case ARMO_DT_BF16:
    case ARMO_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = armo_load_f32(src, dt, i);
        break;
    default:
        memset(dst, 0, n * sizeof(float));
        break;
    }
}
