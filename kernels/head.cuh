/* head.cu — row gather and the reward heads (ArmoRM gated head, single head).
 *
 * The heads run on a handful of rows per batch (two per sequence), so they
 * are written for clarity: a warp per output element computes one fp32 dot
 * product (y[s, o] = b[o] + x[s, :] · W[o, :], optional ReLU), layer after
 * layer, then one block per sequence does softmax(z / T) * logit_scale,
 * coefficients = gate @ Mᵀ and score = Σ rewards * coefficients — the same
 * order of operations as cpu_armo_head.  Head weights stay fp32 (they are F32
 * in the checkpoint; the HF reference casting them to bf16 is a known loss). */
#include "kernels/armo_kernels.h"
#include "kernels/kernel_util.cuh"

__global__ void gather_rows_bf16_kernel(uint16_t *out, const uint16_t *x, const int32_t *rows,
                                        int hidden) {
    const int r = blockIdx.x;
    const uint16_t *src = x + (size_t)rows[r] * hidden;
    uint16_t *dst = out + (size_t)r * hidden;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = src[c];
}

__global__ void gather_rows_f32_kernel(float *out, const uint16_t *x, const int32_t *rows,
                                       int hidden) {
    const int r = blockIdx.x;
    const uint16_t *src = x + (size_t)rows[r] * hidden;
    float *dst = out + (size_t)r * hidden;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = bf16_bits_to_f32(src[c]);
}

extern "C" cudaError_t armo_gather_rows_bf16(uint16_t *out, const uint16_t *x, const int32_t *rows,
                                             int m, int hidden, cudaStream_t stream) {
    if (m < 0 || hidden <= 0) return cudaErrorInvalidValue;
    if (m == 0) return cudaSuccess;
    gather_rows_bf16_kernel<<<m, 256, 0, stream>>>(out, x, rows, hidden);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_gather_rows_f32(float *out, const uint16_t *x, const int32_t *rows,
                                            int m, int hidden, cudaStream_t stream) {
    if (m < 0 || hidden <= 0) return cudaErrorInvalidValue;
    if (m == 0) return cudaSuccess;
    gather_rows_f32_kernel<<<m, 256, 0, stream>>>(out, x, rows, hidden);
    return cudaGetLastError();
}

/* y[s, o] = (bias ? bias[o] : 0) + x[s, :] · W[o, :]; ReLU if relu.
 * One warp per (s, o): 8 warps per block along o. */
#define LIN_WARPS 8
__global__ void linear_f32_kernel(float *y, const float *x, const float *w, const float *bias,
                                  int nseq, int in, int out, int relu) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int o = blockIdx.x * LIN_WARPS + warp;
    const int s = blockIdx.y;
    if (o >= out || s >= nseq) return;
    const float *xr = x + (size_t)s * in;
    const float *wr = w + (size_t)o * in;
    float acc = 0.0f;
    for (int i = lane; i < in; i += 32) acc += xr[i] * wr[i];
    acc = warp_sum(acc);
    if (lane == 0) {
        if (bias) acc += bias[o];
        if (relu) acc = fmaxf(acc, 0.0f);
        y[(size_t)s * out + o] = acc;
    }
}

static cudaError_t launch_linear(float *y, const float *x, const float *w, const float *bias,
                                 int nseq, int in, int out, int relu, cudaStream_t stream) {
    if (nseq > 65535) return cudaErrorInvalidValue; /* grid.y; heads see far fewer rows */
    dim3 grid(armo_ceil_div(out, LIN_WARPS), (unsigned)nseq);
    linear_f32_kernel<<<grid, LIN_WARPS * 32, 0, stream>>>(y, x, w, bias, nseq, in, out, relu);
    return cudaGetLastError();
}

/* One block per sequence, blockDim >= K: gate = softmax(z / T) * scale,
 * coeff[i] = Σ_j M[i][j] gate[j], score = Σ_i rewards[i] coeff[i]. */
__global__ void armo_gate_kernel(const float *z, const float *rewards, const float *transform,
                                 int k, float temperature, float logit_scale, float *gating,
                                 float *coefficients, float *score) {
    __shared__ float gate[1024];
    __shared__ float red[33];
    const int s = blockIdx.x, i = threadIdx.x;
    const float zi = i < k ? z[(size_t)s * k + i] / temperature : -INFINITY;
    /* block max via the sum helper's pattern: reuse warp_max + shared */
    float m = warp_max(zi);
    if ((i & 31) == 0) red[i >> 5] = m;
    __syncthreads();
    if (i < 32) {
        float t = i < (int)(blockDim.x >> 5) ? red[i] : -INFINITY;
        t = warp_max(t);
        if (i == 0) red[32] = t;
    }
    __syncthreads();
    m = red[32];
    __syncthreads(); /* red is reused by block_sum below */
    const float e = i < k ? expf(zi - m) : 0.0f;
    const float denom = block_sum(e, red);
    const float g = e / denom * logit_scale;
    if (i < k) {
        gate[i] = g;
        gating[(size_t)s * k + i] = g;
    }
    __syncthreads();
    float coeff = 0.0f;
    if (i < k) {
        for (int j = 0; j < k; j++) coeff += transform[(size_t)i * k + j] * gate[j];
        coefficients[(size_t)s * k + i] = coeff;
    }
    const float contrib = i < k ? rewards[(size_t)s * k + i] * coeff : 0.0f;
    const float total = block_sum(contrib, red);
    if (i == 0) score[s] = total;
}

extern "C" size_t armo_head_scratch_floats(const armo_head_dev *hw, int nseq) {
    int widest = 0;
    for (int l = 0; l <= hw->nlayers && l <= ARMO_KERNEL_MAX_GATING_LAYERS; l++)
        if (l > 0 && hw->dims[l] > widest) widest = hw->dims[l];
    return (size_t)2 * (size_t)(nseq > 0 ? nseq : 0) * (size_t)widest;
}

extern "C" cudaError_t armo_gated_head_f32(const armo_head_dev *hw, const float *h_last,
                                     const float *h_prompt, int nseq, float *rewards,
                                     float *gating, float *coefficients, float *score,
                                     float *scratch, cudaStream_t stream) {
    if (!hw || nseq < 0 || hw->k <= 0 || hw->k > 1024 || hw->hidden <= 0 || hw->nlayers <= 0 ||
        hw->nlayers > ARMO_KERNEL_MAX_GATING_LAYERS || hw->dims[0] != hw->hidden ||
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
    armo_gate_kernel<<<nseq, threads, 0, stream>>>(x, rewards, hw->transform, hw->k,
                                                   hw->temperature, hw->logit_scale, gating,
                                                   coefficients, score);
    return cudaGetLastError();
}

extern "C" cudaError_t armo_seqcls_head_f32(const float *w, int labels, int hidden,
                                            const float *h_last, int nseq, float *scores,
                                            cudaStream_t stream) {
    if (labels <= 0 || hidden <= 0 || nseq < 0) return cudaErrorInvalidValue;
    if (nseq == 0) return cudaSuccess;
    return launch_linear(scores, h_last, w, NULL, nseq, hidden, labels, 0, stream);
}
