/* cuda_backend.h — the CUDA backend: the whole model through kernels/ on
 * packed variable-length batches (DESIGN §4).  Built into armo_cuda only
 * when nvcc is present; executables register it with
 * armo_backend_register_cuda(armo_cuda_backend_create, armo_cuda_device_count). */
#ifndef ARMO_CUDA_BACKEND_H
#define ARMO_CUDA_BACKEND_H

#include "host/engine/backend.h"

/* Uploads the weights (fused QKV and gate|up, backbone bf16, head f32) to the
 * current device through pinned staging buffers, with a progress line, and
 * allocates activations for o->max_batch_tokens tokens / o->max_seqs
 * sequences.  The environment variable ARMO_CUDA_DEVICE picks the device. */
armo_backend *armo_cuda_backend_create(const armo_model *m, const armo_backend_opts *o,
                                       armo_err *e);

/* Number of CUDA devices (0 when no driver or device). */
int armo_cuda_device_count(void);

#endif
