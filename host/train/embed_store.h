/* embed_store.h — the on-disk embeddings of `armo embed`, written shard by
 * shard and read back whole by `armo train`.
 *
 * An embeddings directory holds:
 *
 *   embeddings-00000.safetensors, -00001, …  one shard per rows_per_shard records:
 *       h_last    F32 [n, S, H]   final-norm hidden state at each sequence's last token
 *       h_prompt  F32 [n, S, H]   the same at its gating position (the <|eot_id|>
 *                                 closing the last user turn)
 *       labels    F32 [n, L]      the record's label columns, NaN where missing
 *                                 (absent when L = 0)
 *       line      I64 [n]         the record's 1-based line in the input
 *   embeddings.json   {"format":"armo-embeddings/1", "model", "architecture",
 *                      "hidden_size": H, "sequences": [names of the S sequences:
 *                      ["response"] or ["chosen","rejected"]], "labels": [L names],
 *                      "rows": N, "errors": E, "shards": [{"file", "rows"}]}
 *   records.jsonl     one line per input record, in input order:
 *                      {"id":…, "line":N, "row":R, "tokens":[…]} or {"id":…, "error":…}
 *
 * Row R of the embeddings (counting across shards in order) is the R-th
 * record that was embedded; records.jsonl maps it back to the record's id. */
#ifndef ARMO_EMBED_STORE_H
#define ARMO_EMBED_STORE_H

#include <stdint.h>

#include "base/errors.h"

#define ARMO_EMBED_MAX_SEQS 2     /* a pair: chosen, rejected */
#define ARMO_EMBED_MAX_LABELS 256
#define ARMO_EMBED_INDEX "embeddings.json"

typedef struct {
    char dir[4096];
    int hidden, nseq, nlabels;   /* H, S, L */
    char *seq_names[ARMO_EMBED_MAX_SEQS];
    char *label_names[ARMO_EMBED_MAX_LABELS];
    int64_t rows_per_shard;
    /* the shard being filled */
    float *h_last, *h_prompt, *labels;
    int64_t *line;
    int64_t fill;
    /* written so far */
    int nshards;
    int64_t *shard_rows;
    int64_t rows, errors;
} armo_embed_writer;

/* Starts writing into dir (created if missing; existing embeddings files in
 * it are overwritten).  Names are copied. */
int armo_embed_writer_open(armo_embed_writer *w, const char *dir, int hidden, int nseq,
                           const char *const *seq_names, int nlabels,
                           const char *const *label_names, int64_t rows_per_shard, armo_err *e);
/* Appends one record: hidden[s] = h_last then h_prompt of sequence s (2*H
 * floats each), labels[nlabels] (NULL: all NaN), its input line. */
int armo_embed_writer_add(armo_embed_writer *w, const float *const *hidden, const float *labels,
                          int64_t line, armo_err *e);
/* Writes the last shard and embeddings.json (model / arch for the record). */
int armo_embed_writer_finish(armo_embed_writer *w, const char *model, const char *arch,
                             armo_err *e);
void armo_embed_writer_free(armo_embed_writer *w);

/* A whole embeddings directory in memory. */
typedef struct {
    int hidden, nseq, nlabels;
    int64_t rows;
    char **seq_names, **label_names;
    float *h_last;               /* [rows, nseq, hidden] */
    float *h_prompt;             /* [rows, nseq, hidden] */
    float *labels;               /* [rows, nlabels] (NULL when none) */
    int64_t *line;               /* [rows] */
} armo_embeddings;

/* Reads dir/embeddings.json and every shard it lists, checking each tensor's
 * name, dtype and shape against the index.  Errors name the file and tensor. */
int armo_embeddings_load(armo_embeddings *x, const char *dir, armo_err *e);
/* The same without h_prompt (x->h_prompt NULL): half the memory, for the
 * stages that read h_last only (regression, debias). */
int armo_embeddings_load_last(armo_embeddings *x, const char *dir, armo_err *e);
void armo_embeddings_free(armo_embeddings *x);
/* Index of label column `name`, or -1. */
int armo_embeddings_label(const armo_embeddings *x, const char *name);

#endif
