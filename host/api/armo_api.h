/* armo_api.h — armo's stable C API, the one header of libarmo.so: open a
 * model once, score records in memory, get back the JSON `armo score`
 * writes.  For front ends in other languages (python/ calls it through
 * ctypes) and any program that links libarmo.
 *
 * Records and results are JSON text, exactly as `armo score` reads and
 * writes them (README "Scoring"): the input is one record object or an
 * array of them (messages, prompt+response, pairs, best-of-N, input_ids;
 * "id" optional, echoed back byte for byte); the output is the result
 * object of each record — the same objects `armo score` writes for the
 * same records, in the same order, an array for an array, one object for
 * one object.  A bad record gives {"id":…, "error":"line N (id X): …"}
 * where N is its 1-based position, and the others are still scored.
 *
 * Threads: one handle scores one call at a time (concurrent calls on the
 * same handle wait for each other); different handles are independent.
 * Errors: a function that fails returns NULL (or -1) and
 * armo_api_last_error() gives the message, per calling thread.
 *
 * Only the functions below are exported from libarmo.so; everything else
 * in it is hidden.  ARMO_API_VERSION grows when this header changes in a
 * way a caller would notice. */
#ifndef ARMO_API_H
#define ARMO_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ARMO_API __attribute__((visibility("default")))
#else
#define ARMO_API
#endif

#define ARMO_API_VERSION 1

typedef struct armo_handle armo_handle;

/* The version of this API the library implements (ARMO_API_VERSION). */
ARMO_API int armo_api_version(void);

/* Opens the Hugging Face checkpoint directory model_dir as `armo score
 * --model model_dir` does: checks the config, the tensors and (as `armo
 * score` by default) the norm weights and the head for NaN / Inf, loads the
 * tokenizer and refuses a chat template armo does not render, then opens
 * the backend.  device: "auto" (CUDA when the library was built with it and
 * a GPU is visible, else the CPU; NULL means "auto"), "cuda" or "cpu".
 * threads: tokenizer and CPU-backend threads (<= 0: all cores).
 * max_batch_tokens: token budget of one packed batch (<= 0: 16384 on CUDA,
 * 2048 on the CPU, as `armo score`).  No progress is printed.  Returns the
 * handle, or NULL (armo_api_last_error says why). */
ARMO_API armo_handle *armo_api_open(const char *model_dir, const char *device, int threads,
                                    long long max_batch_tokens);

/* Scores the records in json[0..len) (one JSON object or an array of
 * objects).  Returns the results as a NUL-terminated JSON text, malloc'ed
 * (free it with armo_api_free), or NULL when the text is not JSON, is not
 * an object or an array, or scoring failed as a whole (a backend failure):
 * armo_api_last_error says why.  A bad record is not a failure: it gets its
 * error object. */
ARMO_API char *armo_api_score(armo_handle *h, const char *json, size_t len);

/* The model and the backend as a JSON object: {"model": dir, "arch":
 * "LlamaForRewardModelWithGating", "device": "cpu"|"cuda", "device_name",
 * "objectives": [names] (ArmoRM; [] otherwise), "num_labels",
 * "max_batch_tokens", "max_length", "threads"}.  malloc'ed (armo_api_free);
 * NULL on failure. */
ARMO_API char *armo_api_info(armo_handle *h);

/* Frees a text returned by this API (NULL: nothing). */
ARMO_API void armo_api_free(char *text);

/* Closes the backend and the model (NULL: nothing). */
ARMO_API void armo_api_close(armo_handle *h);

/* The message of the last failure of an armo_api_* call on this thread
 * ("" when none); valid until this thread's next call. */
ARMO_API const char *armo_api_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
