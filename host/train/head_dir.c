/* head_dir.c — reads a head directory's pieces (see head_dir.h). */
#include "host/train/head_dir.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights/safetensors.h"

int armo_read_f32_tensor(const char *path, const char *name, int64_t numel, float **out,
                         armo_err *e) {
    *out = NULL;
    st_checkpoint ck;
    if (st_open_file(&ck, path, e)) return -1;
    const st_tensor *t = st_find(&ck, name);
    int rc = 0;
    if (!t)
        rc = armo_err_set(e, "%s: tensor '%s' is missing", path, name);
    else if (t->dtype != ARMO_DT_F32 || t->numel != numel)
        rc = armo_err_set(e, "%s: tensor '%s' is %s with %lld elements, expected F32 with %lld",
                          path, name, armo_dtype_name(t->dtype), (long long)t->numel,
                          (long long)numel);
    else if (!(*out = malloc((size_t)numel * sizeof(float) + 1)))
        rc = armo_err_set(e, "%s: out of memory for '%s'", path, name);
    else
        memcpy(*out, t->data, (size_t)numel * sizeof(float));
    st_close(&ck);
    return rc;
}

int armo_head_dir_load(armo_head_dir *h, const char *dir, int want_transform, armo_err *e) {
    memset(h, 0, sizeof *h);
    char path[4200];
    snprintf(path, sizeof path, "%s/regression.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return armo_err_set(e, "%s: %s (run armo train regression first)", path, je.text);
    json_t *names = json_object_get(root, "objectives");
    h->hidden = (int)json_integer_value(json_object_get(root, "hidden_size"));
    h->k = json_is_array(names) ? (int)json_array_size(names) : 0;
    int rc = -1;
    if (h->k < 1 || h->hidden < 1) {
        armo_err_set(e, "%s: needs \"objectives\" and \"hidden_size\"", path);
        goto done;
    }
    h->names = calloc((size_t)h->k, sizeof *h->names);
    for (int i = 0; h->names && i < h->k; i++) {
        const char *s = json_string_value(json_array_get(names, (size_t)i));
        h->names[i] = strdup(s ? s : "");
        if (!h->names[i]) goto done;
    }
    if (!h->names) {
        armo_err_set(e, "out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "%s/regression.safetensors", dir);
    if (armo_read_f32_tensor(path, "regression_layer.weight", (int64_t)h->k * h->hidden,
                             &h->regression, e))
        goto done;
    snprintf(path, sizeof path, "%s/debias.safetensors", dir);
    if (want_transform && armo_read_f32_tensor(path, "reward_transform_matrix",
                                               (int64_t)h->k * h->k, &h->transform, e)) {
        armo_err_prefix(e, "run armo train debias first");
        goto done;
    }
    rc = 0;
done:
    json_decref(root);
    if (rc) armo_head_dir_free(h);
    return rc;
}

void armo_head_dir_free(armo_head_dir *h) {
    for (int i = 0; h->names && i < h->k; i++) free(h->names[i]);
    free(h->names);
    free(h->regression);
    free(h->transform);
    memset(h, 0, sizeof *h);
}
