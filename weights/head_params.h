/* head_params.h — the ArmoRM gated head as a backend computes it: sizes,
 * temperature, logit_scale and fp32 weight arrays (DESIGN §2).
 *
 * One struct for both heads: the CPU one (cpu_armo_head, host pointers) and
 * the CUDA one (armo_gated_head_f32, device pointers).  armo_model_head_params
 * (model.h) fills and checks everything but the pointers from a checkpoint;
 * each backend then points them at its own fp32 copies.  Plain C with no
 * function, so that the kernels' C++ reads it as it is. */
#ifndef ARMO_HEAD_PARAMS_H
#define ARMO_HEAD_PARAMS_H

#include "weights/config.h"

typedef struct {
    int hidden;                  /* H */
    int k;                       /* objectives K */
    int nlayers;                 /* gating layers (gating_n_hidden + 1) */
    int dims[ARMO_MAX_GATING_LAYERS + 1]; /* dims[0] = H, ..., dims[nlayers] = K */
    float temperature;           /* gating_temperature T */
    float logit_scale;           /* gating.logit_scale */
    const float *regression;     /* [K, H] */
    const float *gw[ARMO_MAX_GATING_LAYERS]; /* [dims[l+1], dims[l]] */
    const float *gb[ARMO_MAX_GATING_LAYERS]; /* [dims[l+1]] */
    const float *transform;      /* [K, K], adjusted = rewards @ M */
} armo_head_params;

#endif
