/* weight_scan.h — finds NaN / ±Inf in a checkpoint's weights.
 *
 * A single NaN in a norm weight or in the head turns every score into NaN;
 * armo_weights_scan finds it before any record is scored.  Two scopes:
 * ARMO_SCAN_ALL reads every floating-point tensor of the checkpoint (all
 * shards, BF16 / F16 / F32 / F64, whether the forward reads it or not; other
 * dtypes are counted as skipped) on `threads` threads, at memory speed: the
 * time is the bytes over the page cache's (or the disk's) bandwidth.
 * ARMO_SCAN_HEAD_NORMS reads only the small tensors a NaN spreads from to
 * every output: every RMSNorm weight (input / post-attention per layer, the
 * final norm) and the head (ArmoRM: regression layer, gating MLP,
 * logit_scale, reward transform; single-head RM: score) — about 0.3% of an
 * 8B checkpoint.  Results list the offending tensors in name order. */
#ifndef ARMO_WEIGHT_SCAN_H
#define ARMO_WEIGHT_SCAN_H

#include <stdint.h>

#include "base/errors.h"
#include "weights/model.h"

typedef enum {
    ARMO_SCAN_ALL = 0,           /* every float tensor of every shard */
    ARMO_SCAN_HEAD_NORMS,        /* the norm weights and the head only */
} armo_scan_scope;

typedef struct {
    const char *name;            /* the tensor's name (points into the checkpoint) */
    int64_t index;               /* flat index of its first NaN / ±Inf */
    int64_t cols;                /* its last dimension (1-D and scalars: 0) */
    int64_t count;               /* its NaN / ±Inf elements */
    float value;                 /* the first one: NaN, +Inf or -Inf */
} armo_bad_tensor;

#define ARMO_SCAN_LISTED 8

typedef struct {
    int64_t tensors;             /* tensors scanned */
    int64_t bytes;               /* their bytes */
    int64_t skipped;             /* tensors not scanned (integer / bool / fp8 dtypes) */
    int64_t bad_tensors;         /* tensors holding a NaN / ±Inf */
    int64_t bad_values;          /* NaN / ±Inf elements in all of them */
    int nlisted;                 /* min(bad_tensors, ARMO_SCAN_LISTED) */
    armo_bad_tensor listed[ARMO_SCAN_LISTED]; /* the first offending tensors, by name */
    int threads;                 /* threads used */
    double seconds;              /* wall time of the scan */
} armo_weight_scan;

/* Scans m's weights (scope above) on `threads` threads (<= 0: all cores).
 * Fills *out (zeroed first) and returns 0 whether or not anything was found
 * (out->bad_tensors says); -1 with e set only when memory runs out (a
 * thread that cannot be started leaves its share to the others). */
int armo_weights_scan(const armo_model *m, armo_scan_scope scope, int threads,
                      armo_weight_scan *out, armo_err *e);

/* "tensor 'model.norm.weight' [17] is +Inf" — then, for more tensors, the
 * next ones listed and "(N tensors, M values in all)".  Returns buf. */
const char *armo_weight_scan_message(const armo_weight_scan *s, char *buf, size_t len);

#endif
