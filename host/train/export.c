/* export.c — writes an ArmoRM checkpoint from a head directory and a backbone
 * (see export.h). */
#include "host/train/export.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/train/head_dir.h"
#include "weights/model.h"
#include "weights/st_writer.h"

#define MAX_HEAD_TENSORS (2 * ARMO_MAX_GATING_LAYERS + 3)

/* The head's tensors, read from the head directory. */
typedef struct {
    armo_head_dir h;
    st_checkpoint gck;           /* gating.safetensors, mapped */
    int nl, G;
    double temperature;
    st_write_tensor t[MAX_HEAD_TENSORS];
    int nt;
} head_parts;

static int read_gating(head_parts *p, const char *dir, armo_err *e) {
    char path[4200], name[64];
    snprintf(path, sizeof path, "%s/gating.json", dir);
    json_error_t je;
    json_t *g = json_load_file(path, 0, &je);
    if (!g) return armo_err_set(e, "%s: %s (run armo train gating first)", path, je.text);
    p->temperature = json_number_value(json_object_get(g, "gating_temperature"));
    json_decref(g);
    snprintf(path, sizeof path, "%s/gating.safetensors", dir);
    if (st_open_file(&p->gck, path, e)) return -1;
    const int H = p->h.hidden, K = p->h.k;
    p->t[p->nt++] = (st_write_tensor){"regression_layer.weight", ARMO_DT_F32, 2, {K, H},
                                      p->h.regression};
    for (p->nl = 0; p->nl < ARMO_MAX_GATING_LAYERS; p->nl++) {
        snprintf(name, sizeof name, "gating.layers.%d.weight", p->nl);
        if (!st_find(&p->gck, name)) break;
    }
    int in = H;
    for (int l = 0; l < p->nl; l++) {
        for (int b = 0; b < 2; b++) {
            snprintf(name, sizeof name, "gating.layers.%d.%s", l, b ? "bias" : "weight");
            const st_tensor *t = st_find(&p->gck, name);
            int out = t && t->ndim >= 1 ? (int)t->shape[0] : -1;
            int ok = t && t->dtype == ARMO_DT_F32 && t->ndim == 2 - b && out > 0 &&
                     (b || t->shape[1] == in) && (l + 1 < p->nl || out == K);
            if (!ok)
                return armo_err_set(e, "%s: tensor '%s' is missing or not F32 [out, %d] (the "
                                       "last layer %d wide)", path, name, in, K);
            p->t[p->nt++] = (st_write_tensor){t->name, ARMO_DT_F32, t->ndim,
                                              {t->shape[0], t->ndim > 1 ? t->shape[1] : 0},
                                              t->data};
        }
        if (l == 0) p->G = (int)p->t[p->nt - 1].shape[0];
        in = (int)p->t[p->nt - 1].shape[0];
    }
    const st_tensor *ls = st_find(&p->gck, "gating.logit_scale");
    if (p->nl < 1 || !ls || ls->numel != 1 || ls->dtype != ARMO_DT_F32 || !(p->temperature > 0))
        return armo_err_set(e, "%s: no gating layers, no F32 gating.logit_scale [1], or no "
                               "gating_temperature in gating.json", path);
    p->t[p->nt++] = (st_write_tensor){"gating.logit_scale", ARMO_DT_F32, 1, {1}, ls->data};
    p->t[p->nt++] = (st_write_tensor){"reward_transform_matrix", ARMO_DT_F32, 2, {K, K},
                                      p->h.transform};
    return 0;
}

static int is_head_name(const char *n) {
    return !strncmp(n, "regression_layer.", 17) || !strncmp(n, "gating.", 7) ||
           !strcmp(n, "reward_transform_matrix") || !strncmp(n, "score.", 6);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The backbone: shard files symlinked (link) or its tensors rewritten into
 * backbone.safetensors under "model." names; every tensor into map. */
static int put_backbone(const armo_model *m, const char *out, int link, json_t *map,
                        armo_err *e) {
    const st_checkpoint *ck = &m->ck;
    char path[4200];
    if (link) {
        for (int f = 0; f < ck->nfiles; f++) {
            char real[PATH_MAX];
            if (!realpath(ck->files[f].path, real))
                return armo_err_set(e, "%s: %s", ck->files[f].path, strerror(errno));
            snprintf(path, sizeof path, "%s/%s", out, base_name(real));
            if (!strcmp(base_name(real), "head.safetensors") || symlink(real, path) != 0)
                return armo_err_set(e, "cannot link %s as %s: %s", real, path,
                                    errno ? strerror(errno) : "name taken by the head");
        }
        for (int i = 0; i < ck->ntensors; i++)
            json_object_set_new(map, ck->tensors[i].name,
                                json_string(base_name(ck->files[ck->tensors[i].shard].path)));
        return 0;
    }
    st_write_tensor *t = calloc((size_t)ck->ntensors, sizeof *t);
    char **names = calloc((size_t)ck->ntensors, sizeof *names);
    int n = 0, rc = 0;
    const size_t pl = strlen(m->prefix);
    for (int i = 0; t && names && i < ck->ntensors && !rc; i++) {
        const st_tensor *s = &ck->tensors[i];
        if (strncmp(s->name, m->prefix, pl) || is_head_name(s->name) || !strcmp(s->name, "lm_head.weight"))
            continue;
        names[n] = malloc(strlen(s->name) + 8);
        if (!names[n]) break;
        sprintf(names[n], "model.%s", s->name + pl);
        t[n] = (st_write_tensor){names[n], s->dtype, s->ndim, {0}, s->data};
        for (int d = 0; d < s->ndim && d < 4; d++) t[n].shape[d] = s->shape[d];
        json_object_set_new(map, names[n], json_string("backbone.safetensors"));
        n++;
    }
    snprintf(path, sizeof path, "%s/backbone.safetensors", out);
    if (!t || !names) rc = armo_err_set(e, "export: out of memory");
    else rc = st_write_file(path, t, n, e);
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(t);
    return rc;
}

static int write_config(const armo_model *m, const head_parts *p, const char *out, armo_err *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) return armo_err_set(e, "%s: %s", path, je.text);
    json_t *names = json_array();
    for (int k = 0; k < p->h.k; k++) json_array_append_new(names, json_string(p->h.names[k]));
    json_object_set_new(c, "architectures", json_pack("[s]", "LlamaForRewardModelWithGating"));
    json_object_set_new(c, "num_objectives", json_integer(p->h.k));
    json_object_set_new(c, "gating_hidden_dim", json_integer(p->G));
    json_object_set_new(c, "gating_n_hidden", json_integer(p->nl - 1));
    json_object_set_new(c, "gating_temperature", json_real(p->temperature));
    json_object_set_new(c, "objective_names", names);
    json_object_del(c, "num_labels");
    json_object_del(c, "id2label");
    json_object_del(c, "label2id");
    snprintf(path, sizeof path, "%s/config.json", out);
    int rc = json_dump_file(c, path, JSON_INDENT(2));
    json_decref(c);
    return rc ? armo_err_set(e, "cannot write %s", path) : 0;
}

static int copy_file(const char *from, const char *to, armo_err *e) {
    FILE *in = fopen(from, "rb");
    if (!in) return errno == ENOENT ? 0 : armo_err_set(e, "%s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int bad = !out;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    if (out && fclose(out)) bad = 1;
    return bad ? armo_err_set(e, "cannot copy %s to %s", from, to) : 0;
}

static int write_index(const char *out, json_t *map, armo_err *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
    json_t *root = json_pack("{s:{}, s:O}", "metadata", "weight_map", map);
    int rc = root ? json_dump_file(root, path, JSON_INDENT(1) | JSON_SORT_KEYS) : -1;
    json_decref(root);
    return rc ? armo_err_set(e, "cannot write %s", path) : 0;
}

static int export_into(const armo_export_opts *o, const armo_model *m, head_parts *p, int link,
                       armo_err *e) {
    char path[4200], from[4200];
    json_t *map = json_object();
    int rc = -1;
    if (!map || put_backbone(m, o->out_dir, link, map, e)) goto done;
    for (int i = 0; i < p->nt; i++)
        json_object_set_new(map, p->t[i].name, json_string("head.safetensors"));
    snprintf(path, sizeof path, "%s/head.safetensors", o->out_dir);
    if (st_write_file(path, p->t, p->nt, e) || write_index(o->out_dir, map, e) ||
        write_config(m, p, o->out_dir, e))
        goto done;
    static const char *const extra[] = {"tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "generation_config.json"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        snprintf(from, sizeof from, "%s/%s", m->dir, extra[i]);
        snprintf(path, sizeof path, "%s/%s", o->out_dir, extra[i]);
        if (copy_file(from, path, e)) goto done;
    }
    rc = 0;
done:
    json_decref(map);
    return rc;
}

int armo_train_export(const armo_export_opts *o, FILE *report, armo_err *e) {
    head_parts p;
    memset(&p, 0, sizeof p);
    armo_model m, out;
    int rc = -1, m_open = 0;
    if (armo_head_dir_load(&p.h, o->head_dir, 1, e) || read_gating(&p, o->head_dir, e)) goto done;
    if (armo_model_open(o->backbone, &m, e)) goto done;
    m_open = 1;
    if (m.cfg.hidden_size != p.h.hidden) {
        armo_err_set(e, "the backbone %s has hidden size %d, the head %d", o->backbone,
                     m.cfg.hidden_size, p.h.hidden);
        goto done;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", o->out_dir);
    if ((mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) || access(path, F_OK) == 0) {
        armo_err_set(e, "%s: cannot create it, or it holds a checkpoint already", o->out_dir);
        goto done;
    }
    int link = !o->copy && !strcmp(m.prefix, "model.");
    for (int i = 0; link && i < m.ck.ntensors; i++) link = !is_head_name(m.ck.tensors[i].name);
    if (export_into(o, &m, &p, link, e)) goto done;
    /* what armo score will load: check it now */
    if (armo_model_open(o->out_dir, &out, e)) goto done;
    armo_head_params hp;
    rc = armo_model_head_params(&out, &hp, e);
    armo_model_close(&out);
    if (!rc && report)
        fprintf(report, "export: %s: %s backbone (%s) + head (%d objectives, gating %d x %d, T "
                        "%g) -> %s\n", o->out_dir, link ? "linked" : "copied", o->backbone,
                p.h.k, p.nl - 1, p.G, p.temperature, "config.json, head.safetensors, index");
done:
    if (m_open) armo_model_close(&m);
    st_close(&p.gck);
    armo_head_dir_free(&p.h);
    return rc;
}
