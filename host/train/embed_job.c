/* embed_job.c — armo embed's prepare / write / release (see embed_job.h). */
#include "host/train/embed_job.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/records.h"

/* What embed keeps per job next to score_job's own record. */
typedef struct {
    void *inner;                 /* score_job's prepared record */
    char *id;                    /* raw JSON text of "id", or NULL */
    json_t *labels;              /* the record's "labels" value (NULL: none) */
    int pair;                    /* the record has "chosen" / "rejected" */
} embed_rec;

static const char *const k_single[] = {"response"};
static const char *const k_pair[] = {"chosen", "rejected"};

int armo_embed_ctx_init(armo_embed_ctx *ctx, armo_scoring *sc, const char *out_dir,
                        int64_t rows_per_shard, const char *labels, armo_err *e) {
    memset(ctx, 0, sizeof *ctx);
    ctx->scoring = sc;
    ctx->out_dir = out_dir;
    ctx->rows_per_shard = rows_per_shard;
    ctx->nlabels = -1;
    if (!labels) return 0;
    ctx->nlabels = 0;
    for (const char *p = labels; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == 0 || ctx->nlabels == ARMO_EMBED_MAX_LABELS) {
            armo_embed_ctx_free(ctx);
            return armo_err_set(e, "--labels '%s': empty name or more than %d names", labels,
                                ARMO_EMBED_MAX_LABELS);
        }
        char *s = strndup(p, n);
        if (!s) {
            armo_embed_ctx_free(ctx);
            return armo_err_set(e, "out of memory");
        }
        ctx->label_names[ctx->nlabels++] = s;
        p = c ? c + 1 : p + n;
    }
    return 0;
}

void armo_embed_ctx_free(armo_embed_ctx *ctx) {
    for (int i = 0; i < ARMO_EMBED_MAX_LABELS; i++) free(ctx->label_names[i]);
    if (ctx->writer_open) armo_embed_writer_free(&ctx->writer);
    memset(ctx, 0, sizeof *ctx);
}

static int prepare(void *vctx, armo_job *job) {
    armo_embed_ctx *ctx = vctx;
    embed_rec *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->id = armo_record_raw_id(job->line, job->line_len);
    json_t *root = json_loadb(job->line, job->line_len, 0, NULL);
    if (root) {
        r->pair = json_object_get(root, "chosen") != NULL;
        r->labels = json_incref(json_object_get(root, "labels"));
        json_decref(root);
    }
    armo_job_ops inner = armo_scoring_job_ops(ctx->scoring);
    int rc = inner.prepare(inner.ctx, job);
    r->inner = job->record;
    job->record = r;
    if (rc || job->error) return rc;
    const int H = ctx->scoring->model->cfg.hidden_size;
    for (int s = 0; s < job->nseq; s++) {
        if (job->seqs[s].error) continue;
        job->seqs[s].hidden = malloc(sizeof(float) * 2 * (size_t)H);
        if (!job->seqs[s].hidden) return -1;
    }
    return 0;
}

static void release(void *vctx, armo_job *job) {
    armo_embed_ctx *ctx = vctx;
    embed_rec *r = job->record;
    for (int s = 0; s < job->nseq; s++) {
        free(job->seqs[s].hidden);
        job->seqs[s].hidden = NULL;
    }
    if (!r) return;
    job->record = r->inner;
    armo_job_ops inner = armo_scoring_job_ops(ctx->scoring);
    inner.release(inner.ctx, job);
    free(r->id);
    json_decref(r->labels);
    free(r);
    job->record = NULL;
}

/* Prints obj as one line with the raw "id" text in front. */
static int emit(FILE *out, const char *id, json_t *obj) {
    char *body = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!body) return -1;
    int rc = id ? fprintf(out, "{\"id\":%s%s%s\n", id, body[1] == '}' ? "" : ",", body + 1)
                : fprintf(out, "%s\n", body);
    free(body);
    return rc < 0 ? -1 : 0;
}

static int emit_error(armo_embed_ctx *ctx, FILE *out, const armo_job *job, const char *msg,
                      int add_prefix) {
    const embed_rec *r = job->record;
    char buf[ARMO_ERR_LEN + 400] = "";
    if (add_prefix) armo_record_error_prefix(buf, 400, (long)job->line_no, r ? r->id : NULL);
    strncat(buf, msg, sizeof buf - strlen(buf) - 1);
    ctx->errors++;
    json_t *o = json_pack("{s:I, s:s}", "line", (json_int_t)job->line_no, "error", buf);
    int rc = o ? emit(out, r ? r->id : NULL, o) : -1;
    json_decref(o);
    return rc;
}

/* The label columns from the first embedded record (no --labels). */
static int columns_from(armo_embed_ctx *ctx, json_t *labels) {
    ctx->nlabels = 0;
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        (void)v;
        if (ctx->nlabels == ARMO_EMBED_MAX_LABELS) return -1;
        if (!(ctx->label_names[ctx->nlabels++] = strdup(k))) return -1;
    }
    return 0;
}

/* The record's labels in column order; a message when they do not fit. */
static int labels_of(const armo_embed_ctx *ctx, json_t *labels, float *out, char *why,
                     size_t len) {
    for (int l = 0; l < ctx->nlabels; l++) out[l] = NAN;
    if (!labels || json_is_null(labels)) return 0;
    if (!json_is_object(labels)) return snprintf(why, len, "\"labels\" must be an object"), -1;
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        int col = -1;
        for (int l = 0; l < ctx->nlabels && col < 0; l++)
            if (!strcmp(ctx->label_names[l], k)) col = l;
        if (col < 0)
            return snprintf(why, len, "label \"%.100s\" is not one of the %d label columns (set "
                                      "them with --labels)", k, ctx->nlabels), -1;
        if (json_is_null(v)) continue;
        if (!json_is_number(v))
            return snprintf(why, len, "label \"%.100s\" must be a number or null", k), -1;
        out[col] = (float)json_number_value(v);
    }
    return 0;
}

static int open_writer(armo_embed_ctx *ctx, int kind, json_t *labels) {
    if (ctx->nlabels < 0 && (json_is_object(labels) ? columns_from(ctx, labels) : (ctx->nlabels = 0)))
        return armo_err_set(&ctx->err, "out of memory or more than %d labels",
                            ARMO_EMBED_MAX_LABELS);
    ctx->kind = kind;
    if (armo_embed_writer_open(&ctx->writer, ctx->out_dir, ctx->scoring->model->cfg.hidden_size,
                               kind, kind == 2 ? k_pair : k_single, ctx->nlabels,
                               (const char *const *)ctx->label_names, ctx->rows_per_shard,
                               &ctx->err))
        return -1;
    ctx->writer_open = 1;
    return 0;
}

static int write_job(void *vctx, armo_job *job, FILE *out) {
    armo_embed_ctx *ctx = vctx;
    embed_rec *r = job->record;
    const char *err = job->error;
    for (int s = 0; !err && s < job->nseq; s++) err = job->seqs[s].error;
    if (err) return emit_error(ctx, out, job, err, 0);
    const int kind = r->pair && job->nseq == 2 ? 2 : job->nseq == 1 ? 1 : 0;
    if (!kind)
        return emit_error(ctx, out, job, "armo embed takes one conversation or a chosen / "
                                         "rejected pair per record (split best-of-N into pairs)", 1);
    for (int s = 0; s < job->nseq; s++)
        if (job->seqs[s].result.nonfinite != ARMO_NF_NONE)
            return emit_error(ctx, out, job, "the backbone's hidden state is not finite", 1);
    if (!ctx->writer_open && open_writer(ctx, kind, r->labels)) return -1;
    if (kind != ctx->kind)
        return emit_error(ctx, out, job, kind == 2 ? "a pair, but these embeddings hold one "
                                                     "conversation per record (the first record's kind)"
                                                   : "one conversation, but these embeddings hold "
                                                     "pairs (the first record's kind)", 1);
    float labels[ARMO_EMBED_MAX_LABELS];
    char why[300];
    if (labels_of(ctx, r->labels, labels, why, sizeof why)) return emit_error(ctx, out, job, why, 1);
    const float *hidden[ARMO_EMBED_MAX_SEQS] = {0};
    for (int s = 0; s < job->nseq; s++) hidden[s] = job->seqs[s].hidden;
    const int64_t row = ctx->writer.rows;
    if (armo_embed_writer_add(&ctx->writer, hidden, labels, job->line_no, &ctx->err)) return -1;
    json_t *tokens = json_array();
    for (int s = 0; s < job->nseq; s++) json_array_append_new(tokens, json_integer(job->seqs[s].len));
    json_t *o = json_pack("{s:I, s:I, s:o}", "line", (json_int_t)job->line_no, "row",
                          (json_int_t)row, "tokens", tokens);
    int rc = o ? emit(out, r->id, o) : -1;
    json_decref(o);
    return rc;
}

int armo_embed_ctx_finish(armo_embed_ctx *ctx, armo_err *e) {
    if (!ctx->writer_open && open_writer(ctx, 1, NULL)) {
        *e = ctx->err;
        return -1;
    }
    ctx->writer.errors = ctx->errors;
    const armo_model *m = ctx->scoring->model;
    return armo_embed_writer_finish(&ctx->writer, m->dir, m->cfg.arch_name, e);
}

armo_job_ops armo_embed_job_ops(armo_embed_ctx *ctx) {
    return (armo_job_ops){.prepare = prepare, .write = write_job, .release = release, .ctx = ctx};
}
