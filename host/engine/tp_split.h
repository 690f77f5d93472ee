/* tp_split.h — the tensor-parallel split of a Llama layer's weights: the
 * one definition the CPU backend's sharded arithmetic (cpu_backend.h,
 * armo_cpu_set_tp) and the CUDA backend's TP ranks (over NCCL) both use.
 *
 * With tp ranks (tp divides the KV-head count, hence the query heads, and
 * the intermediate size), rank r holds:
 *   - attention by heads: rows of q_proj for query heads
 *     [r*nh/tp, (r+1)*nh/tp), rows of k_proj and v_proj for KV heads
 *     [r*nkv/tp, (r+1)*nkv/tp) (column-split: each rank computes its heads'
 *     q, k, v; the GQA grouping stays inside the rank), and the matching
 *     columns of o_proj (row-split: each rank's o_proj gives a partial
 *     [tokens, hidden] sum);
 *   - the MLP by intermediate columns: rows [r*I/tp, (r+1)*I/tp) of
 *     gate_proj and up_proj (column-split), the same columns of down_proj
 *     (row-split: a partial sum);
 *   - embedding, norms and the head replicated.
 * The partial sums after o_proj and after down_proj are all-reduced: added
 * in rank order 0, 1, ..., tp-1, the fixed order every armo communicator
 * (the fake one of the emulator included) uses.
 *
 * Row shards are contiguous in the checkpoint, so they are views; column
 * shards are not, so o_proj's and down_proj's are copied once (same dtype,
 * same bits) at set-up (the CPU) or one weight at a time while uploading
 * (CUDA: armo_tp_column_shard into a staging copy). */
#ifndef ARMO_TP_SPLIT_H
#define ARMO_TP_SPLIT_H

#include "base/errors.h"
#include "weights/model.h"

typedef struct {
    int tp;                      /* ranks (>= 1) */
    int nh, nkv, inter;          /* per rank: query heads, KV heads, intermediate columns */
    armo_weight *wo, *wdown;     /* [layer * tp + rank]: the column shards (copies) */
    void *storage;               /* their data */
} armo_tp_shards;

/* Checks that tp divides the model's KV heads and intermediate size (else
 * an error saying so) and copies the column shards. */
int armo_tp_shards_init(armo_tp_shards *t, const armo_model *m, int tp, armo_err *e);
void armo_tp_shards_free(armo_tp_shards *t);

/* Checks tp against the model (divides its KV heads and its intermediate
 * size), else an error saying so. */
int armo_tp_check(const armo_config *c, int tp, armo_err *e);

/* Columns [rank*cols/tp, (rank+1)*cols/tp) of w copied into dst (w->rows *
 * w->cols / tp elements of w's dtype): the view it returns is that column
 * shard, contiguous. */
armo_weight armo_tp_column_shard(const armo_weight *w, int rank, int tp, void *dst);

/* Rows [rank*rows/tp, (rank+1)*rows/tp) of w, as a view (a row shard). */
armo_weight armo_tp_rows(const armo_weight *w, int rank, int tp);

#endif
