/* serve_api.h — the request and response bodies of `armo serve`'s scoring
 * endpoints (protocols: shared/notes/protocols.md), apart from HTTP:
 *
 *   POST /score        armo score's records, one object or a list -> the
 *                      same result objects armo score writes, same order
 *                      (score_job.h's prepare / write callbacks: the code
 *                      of armo score itself).  A list answers 200 with a bad
 *                      record's per-record error object in its place; a
 *                      single bad record answers 400 with that object.
 *   POST /get_reward   OpenRLHF: {"query":[text...], "prompts", "labels"} ->
 *                      {"rewards", "scores", "extra_logs"}; each query is
 *                      templated text, tokenized with special tokens
 *                      recognised (armo_scoring_prepare_text).
 *   POST /classify     vLLM ({"model", "input": text | [text] | ids | [ids]
 *                      | "messages": [...]}) -> {"id", "object":"list",
 *                      "data":[{"index","label","probs","num_classes",...}],
 *                      "usage"}; SGLang ({"text": text | [text]}) -> one
 *                      {"embedding":[score], "meta_info"} per input (an
 *                      object for a string).  Both add armo's "score" and,
 *                      for ArmoRM, "rewards", "gating", "coefficients".
 *
 * armo_api_prepare parses and prepares a body (on the HTTP thread that
 * received it) into a request for the queue; armo_api_respond formats the
 * scored request.  Messages name the field that is wrong. */
#ifndef ARMO_SERVE_API_H
#define ARMO_SERVE_API_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "host/scoring/score_job.h"
#include "host/serve/serve_queue.h"

typedef enum {
    ARMO_EP_SCORE = 0,
    ARMO_EP_GET_REWARD,
    ARMO_EP_CLASSIFY,            /* /classify, /v1/classify */
} armo_endpoint;

typedef struct {
    armo_scoring *scoring;
    armo_job_ops ops;            /* armo_scoring_job_ops(scoring) */
    const char *model_name;      /* what /v1/models lists and /classify echoes */
    int64_t max_request_tokens;  /* more in one request: 413 */
    int max_request_records;     /* jobs the queue can hold: more is 413 */
    pthread_mutex_t write_mu;    /* the write callback counts into scoring: one at a time */
} armo_serve_api;

typedef struct {
    armo_endpoint ep;
    int single;                  /* the body held one record / one string */
    int sglang;                  /* /classify answered in SGLang's shape */
    int64_t tokens;
    armo_serve_req req;
} armo_api_call;

/* Parses body[0..len) for endpoint ep into call (jobs prepared).  Returns 0
 * when call->req is ready for the queue, else the HTTP status (400, 413)
 * with *resp a malloc'ed JSON body saying why; call is then freed. */
int armo_api_prepare(armo_serve_api *api, armo_endpoint ep, const char *body, size_t len,
                     armo_api_call *call, char **resp);

/* The response of a request the queue is done with: the HTTP status and
 * *resp, a malloc'ed JSON body (NULL only when out of memory). */
int armo_api_respond(armo_serve_api *api, armo_api_call *call, char **resp);

/* Frees the call's jobs. */
void armo_api_call_free(armo_serve_api *api, armo_api_call *call);

/* {"error": msg} as a malloc'ed string. */
char *armo_api_error_body(const char *msg);

#endif
