/* head.cuh — device code of the reward heads (ArmoRM gated head, single
 * head; launchers: head.cu).
 *
 * The heads run on a handful of rows per batch (two per sequence), so they
 * are written for clarity: a warp per output element computes one fp32 dot
 * product (y[s, o] = b[o] + x[s, :] · W[o, :], optional ReLU), layer after
 * layer, then one block per sequence does softmax(z / T) * logit_scale,
 * coefficients = gate @ Mᵀ and score = Σ rewards * coefficients — the same
 * order of operations as cpu_armo_head.  Head weights stay fp32 (they are F32
 * in the checkpoint; the HF reference casting them to bf16 is a known loss). */
#ifndef ARMO_HEAD_CUH
#define ARMO_HEAD_CUH

#include "kernels/kernel_util.cuh"

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

#endif
