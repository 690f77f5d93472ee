/* backbone_copy.h — a test helper that writes the bundled tiny ArmoRM's
 * backbone as a bare Llama checkpoint: config.json with another
 * architecture, the tokenizer files, and only its "model." tensors, under
 * their own names or with "model." dropped (a LlamaModel's layout).  For
 * the tests of armo embed / armo train export on a bare backbone
 * (tests/train/test_embed_cli.c, tests/train/test_train_e2e.c).
 * Header-only, like test_util.h, so that each test stays one source file. */
#ifndef ARMO_TEST_BACKBONE_COPY_H
#define ARMO_TEST_BACKBONE_COPY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights/safetensors.h"
#include "weights/st_writer.h"

/* dst <- src's backbone as architecture arch; strip_prefix: tensor names
 * without "model.".  0, or -1 on any failure. */
static int write_backbone_copy(const char *src, const char *dst, const char *arch,
                               int strip_prefix) {
    char p[4096];
    snprintf(p, sizeof p, "mkdir -p %s && cp %s/tokenizer*.json %s/ && sed "
             "'s/LlamaForRewardModelWithGating/%s/' %s/config.json > %s/config.json",
             dst, src, dst, arch, src, dst);
    if (system(p) != 0) return -1;
    st_checkpoint ck;
    armo_err e;
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    if (st_open_file(&ck, p, &e)) return -1;
    st_write_tensor *t = calloc((size_t)ck.ntensors, sizeof *t);
    int n = 0;
    for (int i = 0; t && i < ck.ntensors; i++) {
        const st_tensor *s = &ck.tensors[i];
        if (strncmp(s->name, "model.", 6)) continue;
        t[n] = (st_write_tensor){.name = s->name + (strip_prefix ? 6 : 0), .dtype = s->dtype,
                                 .ndim = s->ndim, .data = s->data};
        for (int d = 0; d < s->ndim; d++) t[n].shape[d] = s->shape[d];
        n++;
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    int rc = t ? st_write_file(p, t, n, &e) : -1;
    free(t);
    st_close(&ck);
    return rc;
}

#endif
