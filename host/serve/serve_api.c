/* serve_api.c — request bodies to prepared jobs, scored jobs to response
 * bodies (see serve_api.h). */
#include "host/serve/serve_api.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/progress.h"
#include "host/scoring/score_output.h"

char *armo_api_error_body(const char *msg) {
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static int fail(armo_serve_api *api, armo_api_call *call, char **resp, int status,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(armo_serve_api *api, armo_api_call *call, char **resp, int status,
                const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    armo_api_call_free(api, call);
    *resp = armo_api_error_body(msg);
    return status;
}

void armo_api_call_free(armo_serve_api *api, armo_api_call *call) {
    for (int j = 0; call->req.jobs && j < call->req.njobs; j++) {
        if (api->ops.release) api->ops.release(api->ops.ctx, &call->req.jobs[j]);
        armo_job_clear(&call->req.jobs[j]);
    }
    free(call->req.jobs);
    call->req.jobs = NULL;
    call->req.njobs = 0;
}

/* ---- splitting a JSON array into its elements' raw text ------------------------ */

/* The elements of the (valid) JSON array text s[0..len): starts and lengths,
 * so that each record's "id" is echoed byte for byte as the client wrote it. */
static int split_array(const char *s, size_t len, size_t *start, size_t *elen, int max) {
    size_t i = 0;
    while (i < len && s[i] != '[') i++;
    i++;
    int n = 0, depth = 0, in_str = 0;
    size_t b = i;
    for (; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '[' || c == '{') depth++;
        else if ((c == ']' || c == '}') && depth > 0) depth--;
        else if ((c == ',' || c == ']') && depth == 0) {
            size_t a = b, z = i;
            while (a < z && strchr(" \t\r\n", s[a])) a++;
            while (z > a && strchr(" \t\r\n", s[z - 1])) z--;
            if (z > a) {
                if (n == max) return -1;
                start[n] = a;
                elen[n] = z - a;
                n++;
            }
            b = i + 1;
            if (c == ']') break;
        }
    }
    return n;
}

/* ---- preparing ------------------------------------------------------------------ */

static int alloc_jobs(armo_api_call *call, size_t n) {
    call->req.jobs = calloc(n ? n : 1, sizeof *call->req.jobs);
    call->req.njobs = 0;
    return call->req.jobs ? 0 : -1;
}

/* A record line through armo score's own prepare callback. */
static int prepare_line(armo_serve_api *api, armo_job *job, const char *text, size_t len,
                        int64_t line_no) {
    job->line = malloc(len + 1);
    if (!job->line) return -1;
    memcpy(job->line, text, len);
    job->line[len] = 0;
    job->line_len = len;
    job->line_no = line_no;
    int rc = api->ops.prepare(api->ops.ctx, job);
    free(job->line);
    job->line = NULL;
    return rc;
}

static int prepare_score(armo_serve_api *api, json_t *root, const char *body, size_t len,
                         armo_api_call *call, char **resp) {
    if (json_is_object(root)) {
        call->single = 1;
        if (alloc_jobs(call, 1)) return fail(api, call, resp, 500, "out of memory");
        call->req.njobs = 1;
        if (prepare_line(api, &call->req.jobs[0], body, len, 1))
            return fail(api, call, resp, 500, "out of memory");
        return 0;
    }
    if (!json_is_array(root))
        return fail(api, call, resp, 400, "the body must be a record (a JSON object) or a list "
                                          "of records");
    size_t n = json_array_size(root);
    if (n > (size_t)api->max_request_records)
        return fail(api, call, resp, 413, "the request has %zu records, more than the %d one "
                    "request may hold (--max-queue)", n, api->max_request_records);
    size_t *st = malloc(sizeof *st * (n ? n : 1)), *ln = malloc(sizeof *ln * (n ? n : 1));
    if (!st || !ln || alloc_jobs(call, n)) {
        free(st);
        free(ln);
        return fail(api, call, resp, 500, "out of memory");
    }
    int k = split_array(body, len, st, ln, (int)n);
    int rc = k == (int)n ? 0 : -2;
    for (int i = 0; rc == 0 && i < k; i++) {
        call->req.njobs = i + 1;
        rc = prepare_line(api, &call->req.jobs[i], body + st[i], ln[i], i + 1);
    }
    free(st);
    free(ln);
    if (rc) return fail(api, call, resp, 500, rc == -2 ? "cannot split the list" : "out of memory");
    return 0;
}

/* One templated text (OpenRLHF query, classify input) into job j. */
static int prepare_text(armo_serve_api *api, armo_api_call *call, json_t *v, const char *field,
                        size_t j) {
    char label[64];
    snprintf(label, sizeof label, "%s[%zu]", field, j);
    armo_job *job = &call->req.jobs[call->req.njobs++];
    job->line_no = (int64_t)j + 1;
    return armo_scoring_prepare_text(api->scoring, job, json_string_value(v),
                                     json_string_length(v), label);
}

/* An input_ids / messages record, built as a line and prepared as armo
 * score's own records. */
static int prepare_built(armo_serve_api *api, armo_api_call *call, const char *key, json_t *v,
                         size_t j) {
    json_t *o = json_pack("{sO}", key, v);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) return -1;
    armo_job *job = &call->req.jobs[call->req.njobs++];
    int rc = prepare_line(api, job, text, strlen(text), (int64_t)j + 1);
    free(text);
    return rc;
}

static int prepare_get_reward(armo_serve_api *api, json_t *root, armo_api_call *call,
                              char **resp) {
    if (!json_is_object(root))
        return fail(api, call, resp, 400, "the body must be a JSON object {\"query\": [...], "
                                          "\"prompts\": [...], \"labels\": [...]}");
    json_t *q = json_object_get(root, "query");
    if (!q) return fail(api, call, resp, 400, "\"query\" is missing");
    if (!json_is_array(q)) return fail(api, call, resp, 400, "\"query\" must be a list of strings");
    size_t n = json_array_size(q);
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(q, i)))
            return fail(api, call, resp, 400, "query[%zu] must be a string", i);
    if (n > (size_t)api->max_request_records)
        return fail(api, call, resp, 413, "the request has %zu queries, more than the %d one "
                    "request may hold (--max-queue)", n, api->max_request_records);
    if (alloc_jobs(call, n)) return fail(api, call, resp, 500, "out of memory");
    call->req.share_across = 1;
    for (size_t i = 0; i < n; i++)
        if (prepare_text(api, call, json_array_get(q, i), "query", i))
            return fail(api, call, resp, 500, "out of memory");
    return 0;
}

static int is_id_list(json_t *v) {
    if (!json_is_array(v) || json_array_size(v) == 0) return 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!json_is_integer(x)) return 0;
    return 1;
}

static int prepare_classify(armo_serve_api *api, json_t *root, armo_api_call *call, char **resp) {
    if (!json_is_object(root))
        return fail(api, call, resp, 400, "the body must be a JSON object with \"input\", "
                                          "\"messages\" or \"text\"");
    json_t *text = json_object_get(root, "text"), *input = json_object_get(root, "input");
    json_t *msgs = json_object_get(root, "messages");
    const char *field = text ? "text" : "input";
    json_t *v = text ? text : input;
    call->sglang = text != NULL;
    call->req.share_across = 1;
    if (!v && msgs) { /* vLLM: one conversation, templated as armo score's records */
        if (!json_is_array(msgs))
            return fail(api, call, resp, 400, "\"messages\" must be a list of messages");
        call->single = 1;
        if (alloc_jobs(call, 1) || prepare_built(api, call, "messages", msgs, 0))
            return fail(api, call, resp, 500, "out of memory");
        return 0;
    }
    if (!v) return fail(api, call, resp, 400, "\"input\" (vLLM), \"messages\" (vLLM) or \"text\" "
                                              "(SGLang) is missing");
    int ids = is_id_list(v);
    if (json_is_string(v) || ids) {
        call->single = 1;
        if (alloc_jobs(call, 1)) return fail(api, call, resp, 500, "out of memory");
        int rc = ids ? prepare_built(api, call, "input_ids", v, 0) : prepare_text(api, call, v, field, 0);
        return rc ? fail(api, call, resp, 500, "out of memory") : 0;
    }
    if (!json_is_array(v))
        return fail(api, call, resp, 400, "\"%s\" must be a string, a list of strings, a list of "
                    "token ids or a list of such lists", field);
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_string(x) && !is_id_list(x))
            return fail(api, call, resp, 400, "%s[%zu] must be a string or a list of token ids",
                        field, i);
    }
    if (n > (size_t)api->max_request_records)
        return fail(api, call, resp, 413, "the request has %zu inputs, more than the %d one "
                    "request may hold (--max-queue)", n, api->max_request_records);
    if (alloc_jobs(call, n)) return fail(api, call, resp, 500, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        int rc = json_is_string(x) ? prepare_text(api, call, x, field, i)
                                   : prepare_built(api, call, "input_ids", x, i);
        if (rc) return fail(api, call, resp, 500, "out of memory");
    }
    return 0;
}

int armo_api_prepare(armo_serve_api *api, armo_endpoint ep, const char *body, size_t len,
                     armo_api_call *call, char **resp) {
    memset(call, 0, sizeof *call);
    call->ep = ep;
    *resp = NULL;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &je);
    if (!root)
        return fail(api, call, resp, 400, "the body is not valid JSON: %s (line %d, column %d)",
                    je.text, je.line, je.column);
    int rc = ep == ARMO_EP_SCORE        ? prepare_score(api, root, body, len, call, resp)
             : ep == ARMO_EP_GET_REWARD ? prepare_get_reward(api, root, call, resp)
                                        : prepare_classify(api, root, call, resp);
    json_decref(root);
    if (rc) return rc;
    for (int j = 0; j < call->req.njobs; j++) call->tokens += armo_serve_job_tokens(&call->req.jobs[j]);
    if (call->tokens > api->max_request_tokens)
        return fail(api, call, resp, 413, "the request has %lld tokens to score, more than "
                    "--max-request-tokens %lld", (long long)call->tokens,
                    (long long)api->max_request_tokens);
    return 0;
}

/* ---- responding ------------------------------------------------------------------ */

/* The job's error (record-level or a sequence's), or NULL. */
static const char *job_error(const armo_job *job) {
    if (job->error) return job->error;
    for (int s = 0; s < job->nseq; s++)
        if (job->seqs[s].error) return job->seqs[s].error;
    return NULL;
}

/* armo score's output line for job j (its '\n' dropped) appended to out. */
static int append_line(armo_serve_api *api, armo_job *job, FILE *out) {
    char *buf = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&buf, &len);
    if (!ms) return -1;
    pthread_mutex_lock(&api->write_mu);
    int rc = api->ops.write(api->ops.ctx, job, ms);
    pthread_mutex_unlock(&api->write_mu);
    if (fclose(ms) != 0) rc = -1;
    if (rc == 0 && len > 0 && buf[len - 1] == '\n') len--;
    if (rc == 0 && fwrite(buf, 1, len, out) != len) rc = -1;
    free(buf);
    return rc;
}

static int respond_score(armo_serve_api *api, armo_api_call *call, char **resp) {
    char *buf = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&buf, &len);
    if (!ms) return 500;
    int rc = 0;
    if (!call->single) rc |= fputc('[', ms) == EOF;
    for (int j = 0; j < call->req.njobs; j++) {
        if (j > 0) rc |= fputc(',', ms) == EOF;
        rc |= append_line(api, &call->req.jobs[j], ms) != 0;
    }
    if (!call->single) rc |= fputc(']', ms) == EOF;
    rc |= fclose(ms) != 0;
    if (rc) {
        free(buf);
        *resp = armo_api_error_body("formatting the results failed (out of memory)");
        return 500;
    }
    *resp = buf;
    /* one record that could not be scored: the client's error */
    return call->single && job_error(&call->req.jobs[0]) ? 400 : 200;
}

/* The first failed input of a text call: 400 (a bad input) or 500 (a
 * non-finite result), with its message. */
static int text_call_error(armo_serve_api *api, armo_api_call *call, char **resp) {
    const armo_config *cfg = &api->scoring->model->cfg;
    for (int j = 0; j < call->req.njobs; j++) {
        const char *err = job_error(&call->req.jobs[j]);
        if (err) {
            *resp = armo_api_error_body(err);
            return 400;
        }
        char msg[700], full[800];
        if (armo_result_nonfinite_message(cfg, &call->req.jobs[j].seqs[0].result, msg, sizeof msg)) {
            snprintf(full, sizeof full, "input %d: %s", j, msg);
            *resp = armo_api_error_body(full);
            return 500;
        }
    }
    return 0;
}

/* {"rewards", "scores", "extra_logs": {objective: [reward per query]}}; the
 * objectives named as in /score's "rewards" (armo_result_to_json). */
static json_t *respond_get_reward(armo_serve_api *api, armo_api_call *call) {
    const armo_config *cfg = &api->scoring->model->cfg;
    json_t *o = json_object(), *rw = json_array(), *logs = json_object();
    for (int j = 0; j < call->req.njobs; j++) {
        const armo_result *r = &call->req.jobs[j].seqs[0].result;
        json_array_append_new(rw, json_real(r->score));
        json_t *one = armo_result_to_json(cfg, r), *rewards = json_object_get(one, "rewards");
        const char *name;
        json_t *v;
        json_object_foreach(rewards, name, v) {
            json_t *per = json_object_get(logs, name);
            if (!per) json_object_set_new(logs, name, per = json_array());
            json_array_append(per, v);
        }
        json_decref(one);
    }
    int k = json_object_size(logs) > 0;
    json_object_set_new(o, "rewards", rw);
    if (call->req.njobs > 0) json_object_set(o, "scores", rw); /* empty: {"rewards": []} */
    if (k && call->req.njobs > 0) json_object_set(o, "extra_logs", logs);
    json_decref(logs);
    return o;
}

static json_t *respond_classify(armo_serve_api *api, armo_api_call *call) {
    const armo_config *cfg = &api->scoring->model->cfg;
    json_t *data = json_array();
    int64_t tokens = 0;
    for (int j = 0; j < call->req.njobs; j++) {
        const armo_result *r = &call->req.jobs[j].seqs[0].result;
        tokens += r->n_tokens;
        json_t *vals = json_array();
        if (r->n_labels > 1)
            for (int i = 0; i < r->n_labels; i++) json_array_append_new(vals, json_real(r->labels[i]));
        else
            json_array_append_new(vals, json_real(r->score));
        json_t *item = armo_result_to_json(cfg, r);
        if (call->sglang) {
            json_object_set_new(item, "embedding", vals);
            json_object_set_new(item, "meta_info", json_pack("{s:i}", "prompt_tokens", r->n_tokens));
        } else {
            json_object_set_new(item, "index", json_integer(j));
            json_object_set_new(item, "label", json_string(r->n_labels > 1 ? "LABEL_0" : "score"));
            json_object_set_new(item, "num_classes", json_integer(json_array_size(vals)));
            json_object_set_new(item, "probs", vals);
        }
        json_array_append_new(data, item);
    }
    if (call->sglang) {
        if (!call->single) return data;
        json_t *one = json_incref(json_array_get(data, 0));
        json_decref(data);
        return one;
    }
    static atomic_long seq;
    char id[64];
    snprintf(id, sizeof id, "classify-%ld", atomic_fetch_add(&seq, 1));
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:{s:I, s:I, s:i}}", "id", id, "object", "list",
                     "created", (json_int_t)time(NULL), "model", api->model_name, "data", data,
                     "usage", "prompt_tokens", (json_int_t)tokens, "total_tokens",
                     (json_int_t)tokens, "completion_tokens", 0);
}

int armo_api_respond(armo_serve_api *api, armo_api_call *call, char **resp) {
    *resp = NULL;
    if (call->req.status) {
        *resp = armo_api_error_body(call->req.error);
        return call->req.status;
    }
    if (call->ep == ARMO_EP_SCORE) return respond_score(api, call, resp);
    int st = text_call_error(api, call, resp);
    if (st) return st;
    json_t *o = call->ep == ARMO_EP_GET_REWARD ? respond_get_reward(api, call)
                                               : respond_classify(api, call);
    *resp = o ? armo_json_line(o) : NULL; /* armo score's number format (9 digits) */
    json_decref(o);
    return *resp ? 200 : 500;
}
