/* cuda_accel.c — the CUDA backend as the engine sees it (backend_open.h's
 * armo_accel): open picks one rank (cuda_backend.c) or a tensor-parallel
 * group of ranks (tp_group.c).  Kept apart from both so that neither needs
 * the other's definitions: the group builds on the rank, and only this file
 * knows the two. */
#include <stddef.h>

#include "host/cuda/cuda_backend.h"
#include "host/cuda/gemm_ceiling.h"

armo_backend *armo_cuda_backend_create(const armo_model *m, const armo_backend_opts *o,
                                       armo_err *e) {
    if (o && o->tp > 1) { /* a TP group on devices base, base+1, ... */
        const int base = o->has_device ? o->device : 0;
        int dev[ARMO_MAX_TP];
        if (o->tp > ARMO_MAX_TP) {
            armo_err_set(e, "--tp %d: at most %d", o->tp, ARMO_MAX_TP);
            return NULL;
        }
        for (int r = 0; r < o->tp; r++) dev[r] = base + r;
        return armo_cuda_tp_group_open(m, o, dev, o->tp, e);
    }
    return armo_cuda_backend_create_rank(m, o, 1, 0, NULL, e);
}

const armo_accel armo_cuda_accel = {
    .name = "cuda",
    .open = armo_cuda_backend_create,
    .open_tp = armo_cuda_tp_group_open,
    .tp_unique_id = armo_cuda_tp_unique_id,
    .open_tp_peer = armo_cuda_tp_peer_open,
    .device_count = armo_cuda_device_count,
    .gemm_ceiling = armo_cuda_gemm_ceiling,
    .mem_info = armo_cuda_mem_info,
    .mem_info_device = armo_cuda_mem_info_device,
};
