/* cuda_check.h — the one family of checked calls for the CUDA runtime,
 * cuBLAS / cuBLASLt and NCCL, for the C host code and the .cu files alike.
 *
 *   ARMO_CUDA_TRY(e, call)             cudaError_t, incl. kernel launchers
 *   ARMO_CUDA_TRY_GOTO(e, label, call)
 *   ARMO_CUBLAS_TRY(e, call)           cublasStatus_t (cuBLAS and cuBLASLt)
 *   ARMO_CUBLAS_TRY_GOTO(e, label, call)
 *   ARMO_NCCL_TRY(e, call)             ncclResult_t
 *   ARMO_NCCL_TRY_GOTO(e, label, call)
 *
 * Each evaluates call once; on failure it fills the armo_err e with
 * "file:line: call failed: reason" and returns -1 from the calling function
 * (the armo error convention, base/errors.h), or jumps to label for the
 * caller's clean-up.  Use them as they are: no local short names.  A file
 * that checks cuBLAS or NCCL calls includes cublasLt.h or nccl.h itself. */
#ifndef ARMO_CUDA_CHECK_H
#define ARMO_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#include "base/errors.h"

/* The core: status type, success value and the function naming a status. */
#define ARMO_CHECKED_CALL_(e, on_failure, status_t, ok, describe, call)                     \
    do {                                                                                    \
        status_t st_ = (call);                                                              \
        if (st_ != (ok)) {                                                                  \
            armo_err_set((e), "%s:%d: %s failed: %s", __FILE__, __LINE__, #call,            \
                         describe(st_));                                                    \
            on_failure;                                                                     \
        }                                                                                   \
    } while (0)

#define ARMO_CUDA_TRY(e, call)                                                              \
    ARMO_CHECKED_CALL_(e, return -1, cudaError_t, cudaSuccess, cudaGetErrorString, call)
#define ARMO_CUDA_TRY_GOTO(e, label, call)                                                  \
    ARMO_CHECKED_CALL_(e, goto label, cudaError_t, cudaSuccess, cudaGetErrorString, call)

#define ARMO_CUBLAS_TRY(e, call)                                                            \
    ARMO_CHECKED_CALL_(e, return -1, cublasStatus_t, CUBLAS_STATUS_SUCCESS,                 \
                       cublasLtGetStatusString, call)
#define ARMO_CUBLAS_TRY_GOTO(e, label, call)                                                \
    ARMO_CHECKED_CALL_(e, goto label, cublasStatus_t, CUBLAS_STATUS_SUCCESS,                \
                       cublasLtGetStatusString, call)

#define ARMO_NCCL_TRY(e, call)                                                              \
    ARMO_CHECKED_CALL_(e, return -1, ncclResult_t, ncclSuccess, ncclGetErrorString, call)
#define ARMO_NCCL_TRY_GOTO(e, label, call)                                                  \
    ARMO_CHECKED_CALL_(e, goto label, ncclResult_t, ncclSuccess, ncclGetErrorString, call)

#endif
