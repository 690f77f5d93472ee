/* cuda_check.h — checked CUDA runtime calls, for the C host code and the .cu
 * files alike: on failure the armo_err gets "file:line: call failed: reason"
 * and the caller returns -1 or jumps to its clean-up label. */
#ifndef ARMO_CUDA_CHECK_H
#define ARMO_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#include "base/errors.h"

#define ARMO_CUDA_RETURN_ON_ERROR(e, call)                                                  \
    do {                                                                                    \
        cudaError_t st_ = (call);                                                           \
        if (st_ != cudaSuccess)                                                             \
            return armo_err_set((e), "%s:%d: %s failed: %s", __FILE__, __LINE__, #call,    \
                                cudaGetErrorString(st_));                                   \
    } while (0)

#define ARMO_CUDA_GOTO_ON_ERROR(e, label, call)                                             \
    do {                                                                                    \
        cudaError_t st_ = (call);                                                           \
        if (st_ != cudaSuccess) {                                                           \
            armo_err_set((e), "%s:%d: %s failed: %s", __FILE__, __LINE__, #call,            \
                         cudaGetErrorString(st_));                                          \
            goto label;                                                                     \
        }                                                                                   \
    } while (0)

#endif
