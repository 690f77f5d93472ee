/* score_job.c — records to sequences and results to output lines (see
 * score_job.h). */
#include "host/scoring/score_job.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/scoring/score_output.h"
#include "host/text/chat_template.h"
#include "host/text/positions.h"
#include "host/text/records.h"

/* ---- preparing one record ---------------------------------------------------- */

typedef struct {
    armo_record rec;
    int parsed;
    char *raw_id;                /* the id of a record that failed to parse, if readable */
    armo_out_kind kind;
} prepared;

static char *dupmsg(const char *prefix, const char *msg) {
    size_t n = strlen(prefix) + strlen(msg) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", prefix, msg);
    return s;
}


/* Length policy, pad cut and gating position for one tokenized sequence. */
static void finish_seq(armo_scoring *c, armo_seq *s, const char *prefix, const char *which) {
    const armo_config *cfg = &c->model->cfg;
    char msg[ARMO_ERR_LEN];
    if (s->len == 0) {
        snprintf(msg, sizeof msg, "%s%sthe sequence is empty", prefix, which);
        s->error = strdup(msg);
        return;
    }
    int gpos = -1;
    if (cfg->arch != ARMO_ARCH_SEQCLS) { /* ArmoRM, and a backbone's embedding */
        gpos = armo_find_gating_pos(s->ids, s->len, c->pattern, c->plen);
        if (gpos < 0) {
            snprintf(msg, sizeof msg,
                     "%s%sToken pattern not found: the sequence has no "
                     "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n (a user turn "
                     "followed by an assistant turn), which ArmoRM's gating network reads",
                     prefix, which);
            s->error = strdup(msg);
            return;
        }
    }
    if (s->len > c->max_length) {
        if (c->truncate == ARMO_TRUNCATE_NONE) {
            snprintf(msg, sizeof msg,
                     "%s%sthe sequence has %d tokens, more than --max-length %d (use --truncate "
                     "left to drop the oldest turns)",
                     prefix, which, s->len, c->max_length);
            s->error = strdup(msg);
            return;
        }
        int keep_bos = s->ids[0] == cfg->bos_token_id ? 1 : 0;
        int cut = s->len - c->max_length; /* tokens dropped after BOS */
        if (gpos >= 0 && gpos - cut < keep_bos) {
            snprintf(msg, sizeof msg,
                     "%s%scannot truncate to %d tokens: the final assistant turn and the gating "
                     "pattern before it alone take %d tokens",
                     prefix, which, c->max_length, s->len - gpos + keep_bos);
            s->error = strdup(msg);
            return;
        }
        memmove(s->ids + keep_bos, s->ids + keep_bos + cut,
                (size_t)(s->len - keep_bos - cut) * sizeof(int32_t));
        s->len -= cut;
        if (gpos >= 0) gpos -= cut;
    }
    s->gating_pos = gpos;
}

static int prepare(void *vctx, armo_job *job) {
    armo_scoring *c = vctx;
    prepared *p = calloc(1, sizeof *p);
    if (!p) return -1;
    job->record = p;
    armo_err e;
    int rc = armo_record_parse(job->line, job->line_len, (long)job->line_no, &p->rec, &e);
    if (rc != 0) {
        job->error = strdup(e.msg);
        p->raw_id = armo_record_raw_id(job->line, job->line_len);
        return 0;
    }
    p->parsed = 1;
    armo_record *r = &p->rec;
    p->kind = r->kind == ARMO_REC_PAIR ? ARMO_OUT_PAIR
              : r->kind == ARMO_REC_BEST_OF_N ? ARMO_OUT_BEST_OF_N
                                              : ARMO_OUT_SINGLE;
    char prefix[300];
    armo_record_error_prefix(prefix, sizeof prefix, (long)job->line_no, r->id_json);
    size_t nseq = armo_record_n_sequences(r);
    if (nseq == 0) {
        job->error = dupmsg(prefix, "the record has nothing to score");
        return 0;
    }
    if (r->kind != ARMO_REC_INPUT_IDS && c->text_error[0]) {
        job->error = dupmsg(prefix, c->text_error);
        return 0;
    }
    job->seqs = calloc(nseq, sizeof *job->seqs);
    if (!job->seqs) return -1;
    job->nseq = (int)nseq;
    const armo_config *cfg = &c->model->cfg;
    for (size_t i = 0; i < nseq; i++) {
        armo_seq *s = &job->seqs[i];
        char which[48] = "";
        if (p->kind == ARMO_OUT_PAIR) snprintf(which, sizeof which, "%s: ", i ? "rejected" : "chosen");
        if (p->kind == ARMO_OUT_BEST_OF_N) snprintf(which, sizeof which, "responses[%zu]: ", i);
        if (r->kind == ARMO_REC_INPUT_IDS) {
            int n = armo_cut_at_pad(r->input_ids, (int)r->n_input_ids, cfg->pad_token_id);
            s->ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
            if (!s->ids) return -1;
            for (int k = 0; k < n; k++) {
                if (r->input_ids[k] < 0 || r->input_ids[k] >= cfg->vocab_size) {
                    char msg[ARMO_ERR_LEN];
                    snprintf(msg, sizeof msg,
                             "%sinput_ids[%d] = %d is outside the model's vocabulary (%d ids)",
                             prefix, k, r->input_ids[k], cfg->vocab_size);
                    s->error = strdup(msg);
                    break;
                }
                s->ids[k] = r->input_ids[k];
            }
            s->len = n;
        } else {
            armo_ids ids = {0};
            if (armo_record_encode(c->tok, r, i, c->tok_flags, &ids, &e)) {
                s->error = strdup(e.msg);
                armo_ids_free(&ids);
                continue;
            }
            s->ids = ids.ids; /* take ownership */
            s->len = (int)ids.n;
            if (s->len > 0 && ids.ids[s->len - 1] >= cfg->vocab_size) {
                s->error = dupmsg(prefix, "the tokenizer produced an id outside the model's "
                                          "vocabulary (tokenizer.json and config.json disagree)");
                continue;
            }
        }
        if (!s->error) finish_seq(c, s, prefix, which);
    }
    return 0;
}

/* ---- a sequence given as templated text (the server's OpenRLHF / classify inputs) -- */

int armo_scoring_prepare_text(armo_scoring *c, armo_job *job, const char *text, size_t len,
                              const char *label) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s: ", label);
    if (c->text_error[0]) {
        job->error = dupmsg(prefix, c->text_error);
        return job->error ? 0 : -1;
    }
    job->seqs = calloc(1, sizeof *job->seqs);
    if (!job->seqs) return -1;
    job->nseq = 1;
    armo_seq *s = &job->seqs[0];
    armo_ids ids = {0};
    armo_err e;
    /* flags 0: the template's special-token strings become their ids; no BOS added */
    if (armo_tokenizer_encode(c->tok, text, len, 0, &ids, &e)) {
        armo_ids_free(&ids);
        s->error = dupmsg(prefix, e.msg);
        return s->error ? 0 : -1;
    }
    const armo_config *cfg = &c->model->cfg;
    s->ids = ids.ids; /* take ownership */
    s->len = armo_cut_at_pad(ids.ids, (int)ids.n, cfg->pad_token_id);
    for (int k = 0; k < s->len; k++)
        if (s->ids[k] < 0 || s->ids[k] >= cfg->vocab_size) {
            s->error = dupmsg(prefix, "the tokenizer produced an id outside the model's "
                                      "vocabulary (tokenizer.json and config.json disagree)");
            return s->error ? 0 : -1;
        }
    finish_seq(c, s, prefix, "");
    return 0;
}

static void release(void *vctx, armo_job *job) {
    (void)vctx;
    prepared *p = job->record;
    if (p) {
        if (p->parsed) armo_record_free(&p->rec);
        free(p->raw_id);
        free(p);
    }
    job->record = NULL;
}

/* Prints obj with the record's raw "id" text spliced in front. */
static int emit(FILE *out, const char *id_json, json_t *obj) {
    char *body = armo_json_line(obj);
    if (!body) return -1;
    int rc;
    if (id_json)
        rc = fprintf(out, "{\"id\":%s%s%s\n", id_json, body[1] == '}' ? "" : ",", body + 1);
    else
        rc = fprintf(out, "%s\n", body);
    free(body);
    return rc < 0 ? -1 : 0;
}

static int write_job(void *vctx, armo_job *job, FILE *out) {
    armo_scoring *c = vctx;
    prepared *p = job->record;
    const char *id_json = !p ? NULL : p->parsed ? p->rec.id_json : p->raw_id;
    const char *err = job->error;
    for (int s = 0; !err && s < job->nseq; s++) err = job->seqs[s].error;
    json_t *obj;
    if (err) {
        obj = armo_error_to_json(NULL, err);
    } else {
        armo_result *rs = malloc(sizeof *rs * (size_t)(job->nseq ? job->nseq : 1));
        if (!rs) return -1;
        for (int s = 0; s < job->nseq; s++) rs[s] = job->seqs[s].result;
        char nf[ARMO_ERR_LEN - 300], msg[ARMO_ERR_LEN];
        if (armo_record_nonfinite(&c->model->cfg, p->kind, rs, job->nseq, nf, sizeof nf)) {
            /* an error record, named like the others ("line N (id X): ...") */
            armo_record_error_prefix(msg, 300, (long)job->line_no, id_json);
            strncat(msg, nf, sizeof msg - strlen(msg) - 1);
            obj = armo_error_to_json(NULL, msg);
            c->nonfinite_records++;
        } else {
            obj = armo_record_to_json(&c->model->cfg, NULL, p->kind, rs, job->nseq, c->explain);
        }
        free(rs);
    }
    int rc = obj ? emit(out, id_json, obj) : -1;
    json_decref(obj);
    return rc;
}

/* ---- binding to a model -------------------------------------------------------- */

int armo_scoring_init(armo_scoring *s, const armo_model *m, const armo_scoring_opts *o,
                      armo_err *e) {
    memset(s, 0, sizeof *s);
    s->model = m;
    s->explain = o->explain;
    s->tok_flags = o->tok_flags;
    s->truncate = o->truncate;
    s->max_length = o->max_length > 0 ? o->max_length : m->cfg.max_position_embeddings;
    if (s->max_length > m->cfg.max_position_embeddings)
        return armo_err_set(e, "--max-length %d exceeds the model's max_position_embeddings %d",
                            s->max_length, m->cfg.max_position_embeddings);
    /* the tokenizer: text records need it; input_ids records do not */
    s->tok = armo_tokenizer_load(m->dir, e);
    if (!s->tok) {
        snprintf(s->text_error, sizeof s->text_error,
                 "text records need the model's tokenizer, which could not be loaded (%.900s)",
                 e->msg);
    } else if (armo_chat_check(s->tok, e)) {
        snprintf(s->text_error, sizeof s->text_error, "%.1000s", e->msg);
    }
    if (s->text_error[0] && !o->input_ids_only) { /* refused at load, not record by record */
        armo_err_set(e, "%.880s (to score input_ids records with this model, pass "
                        "--input-ids-only)", s->text_error);
        armo_tokenizer_free(s->tok);
        s->tok = NULL;
        return -1;
    }
    s->plen = 5;
    memcpy(s->pattern, ARMO_LLAMA3_GATING_PATTERN, sizeof ARMO_LLAMA3_GATING_PATTERN);
    if (s->tok) { /* the pattern as the model's own tokenizer spells it */
        armo_ids pat = {0};
        if (armo_chat_gating_pattern(s->tok, &pat, e) == 0 && pat.n > 0 && pat.n <= 16) {
            memcpy(s->pattern, pat.ids, pat.n * sizeof(int32_t));
            s->plen = (int)pat.n;
        }
        armo_ids_free(&pat);
    }
    return 0;
}

void armo_scoring_free(armo_scoring *s) {
    armo_tokenizer_free(s->tok);
    s->tok = NULL;
}

armo_job_ops armo_scoring_job_ops(armo_scoring *s) {
    return (armo_job_ops){.prepare = prepare, .write = write_job, .release = release, .ctx = s};
}

/* ---- --resume: the lines an earlier run wrote ---------------------------------- */

int armo_output_line_valid(const char *out, size_t len, int *is_error) {
    json_error_t je;
    json_t *v = json_loadb(out, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    int ok = json_is_object(v);
    *is_error = ok && json_object_get(v, "error") != NULL;
    json_decref(v);
    return ok;
}

/* "id X" / "no id", X cut at 60 bytes. */
static void describe_id(char *buf, size_t len, const char *id) {
    if (!id)
        snprintf(buf, len, "no id");
    else
        snprintf(buf, len, "id %.60s%s", id, strlen(id) > 60 ? "..." : "");
}

int armo_output_line_matches(const char *line, size_t line_len, const char *out, size_t len,
                             char *why, size_t why_len) {
    /* write_job echoes the raw id of the line, parsed or not (records.h) */
    char *want = armo_record_raw_id(line, line_len);
    char *got = armo_record_raw_id(out, len);
    int same = (!want && !got) || (want && got && !strcmp(want, got));
    if (!same) {
        char w[96], g[96];
        describe_id(w, sizeof w, want);
        describe_id(g, sizeof g, got);
        snprintf(why, why_len, "has %s, the record has %s", g, w);
    }
    free(want);
    free(got);
    return same;
}
