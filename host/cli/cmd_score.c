/* cmd_score.c — `armo score`: JSONL records in, interpretable JSONL out.
 *
 * The glue between the pieces: the model and tokenizer are loaded once; the
 * scheduler (scheduler.h) streams the input; this file's prepare callback
 * turns a line into token sequences on worker threads (record parsing, chat
 * template, tokenization, pad cut, length policy, gating position) and its
 * write callback formats the result (score_output.h), echoing the record's
 * "id" byte for byte as it was written in the input. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/engine/backend_open.h"
#include "host/text/chat_template.h"
#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/text/positions.h"
#include "host/text/records.h"
#include "host/engine/scheduler.h"
#include "host/scoring/score_output.h"
#include "host/text/tokenizer.h"
#include "weights/model.h"

typedef enum { TRUNC_NONE = 0, TRUNC_LEFT } trunc_mode;

typedef struct {
    const armo_model *model;
    armo_tokenizer *tok;         /* NULL: the model directory has no tokenizer.json */
    char text_error[ARMO_ERR_LEN]; /* why text records cannot be scored ("" if they can) */
    int32_t pattern[16];
    int plen;
    int max_length;
    trunc_mode truncate;
    unsigned tok_flags;
    int explain;
} score_ctx;

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo score --model DIR [options]\n\n"
        "Scores JSONL records with an ArmoRM (LlamaForRewardModelWithGating) or a Llama-3\n"
        "sequence-classification reward model, writing one JSON line per input record,\n"
        "in input order.\n\n"
        "Input records (one JSON object per line; \"id\" optional, echoed back as written):\n"
        "  {\"messages\":[{\"role\":\"user\",\"content\":\"...\"},{\"role\":\"assistant\",...}]}\n"
        "  {\"prompt\":\"...\", \"response\":\"...\"}\n"
        "  {\"prompt\":\"...\" | \"messages\":[...], \"chosen\":\"...\", \"rejected\":\"...\"}   a pair\n"
        "  {\"prompt\":\"...\" | \"messages\":[...], \"responses\":[\"...\", ...]}          best-of-N\n"
        "  {\"input_ids\":[...]}     already templated and tokenized (cut at the first pad id)\n\n"
        "Output: {\"id\", \"score\", \"rewards\":{objective:value}, \"gating\":{...},\n"
        "\"coefficients\":{...}, \"tokens\"} (score = sum of rewards x coefficients); pairs give\n"
        "\"chosen\", \"rejected\", \"margin\", \"preferred\" and \"explanation\" (the objectives whose\n"
        "coefficient-weighted reward difference moved the margin most); best-of-N gives\n"
        "\"responses\", \"ranking\" (best first) and \"best\".  A bad record gives\n"
        "{\"id\", \"error\"} and the run goes on.\n\n"
        "Options:\n"
        "  --model DIR             Hugging Face checkpoint directory (required)\n"
        "  --input F|-             input JSONL (default -: standard input)\n"
        "  --output F|-            output JSONL (default -: standard output)\n"
        "  --device auto|cuda|cpu  backend (default auto: CUDA when a GPU is visible)\n"
        "  --max-batch-tokens N    token budget of one packed batch (default 16384 on\n"
        "                          CUDA, 2048 on the CPU; never below --max-length,\n"
        "                          so that the longest sequence fits in one batch)\n"
        "  --max-length N          longest sequence scored, in tokens (default: the\n"
        "                          model's max_position_embeddings)\n"
        "  --truncate none|left    over-long sequences: none (default) makes them a\n"
        "                          per-record error; left drops the oldest tokens after\n"
        "                          <|begin_of_text|>, keeping the final turn and the\n"
        "                          gating pattern before it (error if even those do not fit)\n"
        "  --special-as-text       encode special-token strings found inside message\n"
        "                          content (e.g. a literal \"<|eot_id|>\") as plain text;\n"
        "                          by default they become special tokens, as Hugging\n"
        "                          Face's apply_chat_template does\n"
        "  --no-share-prefix       score every response of a pair / best-of-N record in\n"
        "                          full; by default their common prompt prefix is run\n"
        "                          through the model once and each response attends to\n"
        "                          it (same results, fewer tokens computed)\n"
        "  --explain K             objectives listed in a pair's explanation (default 3)\n"
        "  --threads N             tokenizer and CPU-backend threads (default: all cores)\n"
        "  --window N              records read ahead and length-sorted together\n"
        "                          (default 2048; bounds memory on any input size)\n"
        "  --quiet                 no progress on stderr\n"
        "  -h, --help              this text\n\n"
        "Progress goes to stderr (a live line on a terminal, a line every 10 s otherwise).\n"
        "Exit status: 0 every record scored, 1 some records failed (see their \"error\"),\n"
        "2 bad arguments or the model could not be loaded.\n");
}

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
static void finish_seq(score_ctx *c, armo_seq *s, const char *prefix, const char *which) {
    const armo_config *cfg = &c->model->cfg;
    char msg[ARMO_ERR_LEN];
    if (s->len == 0) {
        snprintf(msg, sizeof msg, "%s%sthe sequence is empty", prefix, which);
        s->error = strdup(msg);
        return;
    }
    int gpos = -1;
    if (cfg->arch == ARMO_ARCH_ARMORM) {
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
        if (c->truncate == TRUNC_NONE) {
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
    score_ctx *c = vctx;
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
    score_ctx *c = vctx;
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
        obj = armo_record_to_json(&c->model->cfg, NULL, p->kind, rs, job->nseq, c->explain);
        free(rs);
    }
    int rc = obj ? emit(out, id_json, obj) : -1;
    json_decref(obj);
    return rc;
}

/* ---- command line -------------------------------------------------------------- */

int cmd_score(int argc, char **argv) {
    const char *model_dir = NULL, *in_path = "-", *out_path = "-", *device = "auto";
    long max_batch = 0, max_length = 0, explain = 3, threads = 0, window = 2048;
    trunc_mode truncate = TRUNC_NONE;
    int quiet = 0, share_prefix = 1;
    unsigned tok_flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--no-share-prefix")) {
            share_prefix = 0;
        } else if (!strcmp(a, "--special-as-text")) {
            tok_flags |= ARMO_TOK_SPECIAL_AS_TEXT;
        } else if (!v) {
            fprintf(stderr, "armo score: unknown option or missing value: '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else {
            i++;
            if (!strcmp(a, "--model")) model_dir = v;
            else if (!strcmp(a, "--input")) in_path = v;
            else if (!strcmp(a, "--output")) out_path = v;
            else if (!strcmp(a, "--device")) device = v;
            else if (!strcmp(a, "--max-batch-tokens")) {
                if (armo_parse_long("score", a, v, 1, INT_MAX, &max_batch)) return 2;
            } else if (!strcmp(a, "--max-length")) {
                if (armo_parse_long("score", a, v, 1, INT_MAX, &max_length)) return 2;
            } else if (!strcmp(a, "--explain")) {
                if (armo_parse_long("score", a, v, 0, 64, &explain)) return 2;
            } else if (!strcmp(a, "--threads")) {
                if (armo_parse_long("score", a, v, 0, 1024, &threads)) return 2;
            } else if (!strcmp(a, "--window")) {
                if (armo_parse_long("score", a, v, 1, 1 << 24, &window)) return 2;
            } else if (!strcmp(a, "--truncate")) {
                if (!strcmp(v, "none")) truncate = TRUNC_NONE;
                else if (!strcmp(v, "left")) truncate = TRUNC_LEFT;
                else {
                    fprintf(stderr, "armo score: --truncate expects none or left, got '%s'\n", v);
                    return 2;
                }
            } else {
                fprintf(stderr, "armo score: unknown option '%s'\n\n", a);
                usage(stderr);
                return 2;
            }
        }
    }
    if (!model_dir) {
        fprintf(stderr, "armo score: --model DIR is required\n\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(device, "auto") && strcmp(device, "cuda") && strcmp(device, "cpu")) {
        fprintf(stderr, "armo score: --device expects auto, cuda or cpu, got '%s'\n", device);
        return 2;
    }

    FILE *in = stdin, *out = stdout;
    int64_t in_size = -1;
    if (strcmp(in_path, "-")) {
        in = fopen(in_path, "rb");
        if (!in) {
            fprintf(stderr, "armo score: cannot open input %s: %s\n", in_path, strerror(errno));
            return 2;
        }
        struct stat sb;
        if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) in_size = sb.st_size;
    }

    armo_err e;
    armo_model model;
    if (armo_model_open(model_dir, &model, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        if (in != stdin) fclose(in);
        return 2;
    }
    score_ctx ctx = {.model = &model, .explain = (int)explain, .tok_flags = tok_flags,
                     .truncate = truncate};
    ctx.max_length = max_length > 0 ? (int)max_length : model.cfg.max_position_embeddings;
    if (ctx.max_length > model.cfg.max_position_embeddings) {
        fprintf(stderr, "armo score: --max-length %d exceeds the model's max_position_embeddings "
                        "%d\n", ctx.max_length, model.cfg.max_position_embeddings);
        armo_model_close(&model);
        if (in != stdin) fclose(in);
        return 2;
    }
    /* the tokenizer: text records need it; input_ids records do not */
    ctx.tok = armo_tokenizer_load(model_dir, &e);
    if (!ctx.tok) {
        snprintf(ctx.text_error, sizeof ctx.text_error,
                 "text records need the model's tokenizer, which could not be loaded (%.900s); "
                 "input_ids records still work", e.msg);
    } else if (armo_chat_check(ctx.tok, &e)) {
        snprintf(ctx.text_error, sizeof ctx.text_error, "%.1000s", e.msg);
    }
    ctx.plen = 5;
    memcpy(ctx.pattern, ARMO_LLAMA3_GATING_PATTERN, sizeof ARMO_LLAMA3_GATING_PATTERN);
    if (ctx.tok) { /* the pattern as the model's own tokenizer spells it */
        armo_ids pat = {0};
        if (armo_chat_gating_pattern(ctx.tok, &pat, &e) == 0 && pat.n > 0 && pat.n <= 16) {
            memcpy(ctx.pattern, pat.ids, pat.n * sizeof(int32_t));
            ctx.plen = (int)pat.n;
        }
        armo_ids_free(&pat);
    }

    int rc = 2;
    armo_backend_opts bo = {.threads = (int)threads, .quiet = quiet, .max_seqs = 1024};
    bo.max_batch_tokens = max_batch > 0 ? max_batch : 16384; /* the CUDA backend sizes its buffers */
    if (bo.max_batch_tokens < ctx.max_length) bo.max_batch_tokens = ctx.max_length;
    armo_backend *backend = armo_backend_open(&model, device, &bo, &e);
    if (!backend) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    if (!strcmp(backend->name, "cpu") && max_batch <= 0) { /* smaller batches: steadier progress */
        bo.max_batch_tokens = 2048;
        if (bo.max_batch_tokens < ctx.max_length) bo.max_batch_tokens = ctx.max_length;
    }
    if (!quiet)
        fprintf(stderr, "armo: %s on %s, %s, batches of up to %lld tokens\n", model_dir,
                backend->device, model.cfg.arch_name, (long long)bo.max_batch_tokens);
    if (strcmp(out_path, "-")) {
        out = fopen(out_path, "wb");
        if (!out) {
            fprintf(stderr, "armo score: cannot create output %s: %s\n", out_path,
                    strerror(errno));
            out = stdout;
            goto done;
        }
    }
    armo_job_ops ops = {.prepare = prepare, .write = write_job, .release = release, .ctx = &ctx};
    armo_sched_opts so = {.max_batch_tokens = bo.max_batch_tokens,
                          .max_batch_seqs = bo.max_seqs,
                          .window = (int)window,
                          .threads = threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN),
                          .quiet = quiet,
                          .share_prefix = share_prefix};
    armo_sched_stats st;
    if (armo_schedule(in, in_size, out, backend, &ops, &so, &st, &e)) {
        fprintf(stderr, "armo score: %s\n", e.msg);
        goto done;
    }
    rc = st.errors ? 1 : 0;
    if (!quiet && st.tokens_computed < st.tokens)
        fprintf(stderr, "armo: prompt-prefix sharing ran %lld of the %lld tokens scored through "
                        "the model\n", (long long)st.tokens_computed, (long long)st.tokens);
    if (st.errors && !quiet)
        fprintf(stderr, "armo score: %lld of %lld records failed (see their \"error\" field)\n",
                (long long)st.errors, (long long)st.records);
done:
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "armo score: writing %s failed: %s\n", out_path, strerror(errno));
        rc = 2;
    }
    if (in != stdin) fclose(in);
    armo_backend_close(backend);
    armo_tokenizer_free(ctx.tok);
    armo_model_close(&model);
    return rc;
}
