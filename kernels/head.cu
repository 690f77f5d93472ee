/* head.cu — launchers of the reward heads (device code and the description:
 * head.cuh): the regression and gating layers as warp-per-output fp32 dot
 * products, then the gate kernel; the single head is one such layer. */
#include "kernels/armo_kernels.h"
#include "kernels/head.cuh"

static cudaError_t launch_linear(float *y, const float *x, const float *w, const float *bias,
                                 int nseq, int in, int out, int relu, cudaStream_t stream) {
    if (nseq > 65535) return cudaErrorInvalidValue; /* grid.y; heads see far fewer rows */
    dim3 grid(armo_ceil_div(out, LIN_WARPS), (unsigned)nseq);
    linear_f32_kernel<<<grid, LIN_WARPS * 32, 0, stream>>>(y, x, w, bias, nseq, in, out, relu);
    return cudaGetLastError();
}

extern "C" size_t armo_head_scratch_floats(const armo_head_params *hw, int nseq) {
    int widest = 0;
    for (int l = 0; l <= hw->nlayers && l <= ARMO_MAX_GATING_LAYERS; l++)
        if (l > 0 && hw->dims[l] > widest) widest = hw->dims[l];
    return (size_t)2 * (size_t)(nseq > 0 ? nseq : 0) * (size_t)widest;
}

extern "C" cudaError_t armo_gated_head_f32(const armo_head_params *hw, const float *h_last,
                                           const float *h_prompt, int nseq, float *rewards,
                                           float *gating, float *coefficients, float *score,
                                           float *scratch, cudaStream_t stream) {
    if (!hw || nseq < 0 || hw->k <= 0 || hw->k > 1024 || hw->hidden <= 0 || hw->nlayers <= 0 ||
        hw->nlayers > ARMO_MAX_GATING_LAYERS || hw->dims[0] != hw->hidden ||
        hw->dims[hw->nlayers] != hw->k || !(hw->temperature > 0.0f))
        return cudaErrorInvalidValue;
    for (int l = 1; l <= hw->nlayers; l++)
        if (hw->dims[l] <= 0) return cudaErrorInvalidValue;
    if (nseq == 0) return cudaSuccess;
    cudaError_t st = launch_linear(rewards, h_last, hw->regression, NULL, nseq, hw->hidden, hw->k,
                                   0, stream);
    if (st != cudaSuccess) return st;
    /* ping-pong between the two halves of scratch; the last layer's z lands
     * in the buffer the previous layer did not write */
    const size_t half = armo_head_scratch_floats(hw, nseq) / 2;
    const float *x = h_prompt;
    float *bufs[2] = {scratch, scratch + half};
    for (int l = 0; l < hw->nlayers; l++) {
        float *y = bufs[l & 1];
        const int relu = l + 1 < hw->nlayers;
        st = launch_linear(y, x, hw->gw[l], hw->gb[l], nseq, hw->dims[l], hw->dims[l + 1], relu,
                           stream);
        if (st != cudaSuccess) return st;
        x = y;
    }
    const int threads = (hw->k + 31) / 32 * 32;
    /* values, not hw->: a launch recorded by a stream capture keeps them */
    const float *transform = hw->transform;
    const int k = hw->k;
    const float temperature = hw->temperature, logit_scale = hw->logit_scale;
    armo_gate_kernel<<<nseq, threads, 0, stream>>>(x, rewards, transform, k, temperature,
                                                   logit_scale, gating, coefficients, score);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_seqcls_head_f32(const float *w, int labels, int hidden,
                                            const float *h_last, int nseq, float *scores,
                                            cudaStream_t stream) {
    if (labels <= 0 || hidden <= 0 || nseq < 0) return cudaErrorInvalidValue;
    if (nseq == 0) return cudaSuccess;
    return launch_linear(scores, h_last, w, NULL, nseq, hidden, labels, 0, stream);
}
