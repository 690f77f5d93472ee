/* head_dir.h — reading back the pieces a head directory accumulates, stage
 * by stage (regression.h, debias.h): the objective names and the fp32
 * tensors each stage wrote. */
#ifndef ARMO_TRAIN_HEAD_DIR_H
#define ARMO_TRAIN_HEAD_DIR_H

#include <stdint.h>

#include "base/errors.h"

typedef struct {
    int k, hidden;
    char **names;                /* [k] objective names (regression.json) */
    float *regression;           /* [k, hidden] regression_layer.weight */
    float *transform;            /* [k, k] reward_transform_matrix; NULL before debias */
} armo_head_dir;

/* Reads dir/regression.json and dir/regression.safetensors, and
 * dir/debias.safetensors when want_transform (an error if missing). */
int armo_head_dir_load(armo_head_dir *h, const char *dir, int want_transform, armo_err *e);
void armo_head_dir_free(armo_head_dir *h);

/* Reads one F32 tensor of the expected element count from a safetensors file into a
 * malloc'ed array (*out); errors name the file and tensor. */
int armo_read_f32_tensor(const char *path, const char *name, int64_t numel, float **out,
                         armo_err *e);

#endif
