/* bench_dp.h — `armo bench`'s data-parallel rows: workload w through armo
 * score's worker pool (scheduler.h, armo_score_groups_workers).
 * CPU: a direct run, the pool with 1 worker (its overhead as a ratio), and
 * 2 workers with the threads split (against 1).  CUDA: 1, 2, 4, ...,
 * `visible` devices, each against N x one device's throughput, and TP 2, 4
 * against one device.  Prints the
 * rows and returns them as a JSON array; a failed run sets *failed. */
#ifndef ARMO_BENCH_DP_H
#define ARMO_BENCH_DP_H

#include <jansson.h>

#include "host/cli/bench_run.h"
#include "host/engine/backend.h"
#include "weights/model.h"

json_t *bench_dp_report(const armo_model *m, const char *kind, armo_backend *b0, int threads,
                        int visible, const bench_workload *w, const bench_pack_opts *po,
                        int *failed);

#endif
