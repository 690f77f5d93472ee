/* gating_net.c — the gating MLP on a batch: forward, backward, AdamW
 * (see gating_net.h). */
#include "host/train/gating_net.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/train/split.h"

float *armo_gnet_w(armo_gnet *n, int l) { return n->theta + n->w_off[l]; }
float *armo_gnet_b(armo_gnet *n, int l) { return n->theta + n->b_off[l]; }
float *armo_gnet_logit_scale(armo_gnet *n) { return n->theta + n->np - 1; }

int armo_gnet_init(armo_gnet *n, int H, int G, int n_hidden, int K, float temperature,
                   float dropout, int cap, armo_err *e) {
    memset(n, 0, sizeof *n);
    if (n_hidden < 0 || n_hidden + 1 > ARMO_GNET_MAX_LAYERS || H < 1 || G < 1 || K < 1 || cap < 1)
        return armo_err_set(e, "gating network: %d hidden layers (0..%d), hidden %d, width %d, "
                               "%d objectives", n_hidden, ARMO_GNET_MAX_LAYERS - 1, H, G, K);
    n->nl = n_hidden + 1;
    n->temperature = temperature, n->dropout = dropout, n->cap = cap;
    int widest = K > H ? K : H;
    if (G > widest) widest = G;
    for (int l = 0; l <= n->nl; l++) n->dims[l] = l == 0 ? H : l == n->nl ? K : G;
    for (int l = 0; l < n->nl; l++) {
        n->w_off[l] = n->np;
        n->np += (int64_t)n->dims[l + 1] * n->dims[l];
        n->b_off[l] = n->np;
        n->np += n->dims[l + 1];
    }
    n->np += 1; /* logit_scale */
    n->theta = calloc((size_t)n->np, sizeof(float));
    n->grad = calloc((size_t)n->np, sizeof(float));
    n->m = calloc((size_t)n->np, sizeof(float));
    n->v = calloc((size_t)n->np, sizeof(float));
    int ok = n->theta && n->grad && n->m && n->v;
    for (int l = 1; l <= n->nl && ok; l++)
        ok = (n->act[l] = malloc(sizeof(float) * (size_t)cap * n->dims[l])) != NULL;
    n->dact = malloc(sizeof(float) * (size_t)cap * widest);
    n->dtmp = malloc(sizeof(float) * (size_t)cap * widest);
    n->gate = malloc(sizeof(float) * (size_t)cap * K);
    n->score = malloc(sizeof(float) * (size_t)cap);
    if (!ok || !n->dact || !n->dtmp || !n->gate || !n->score) {
        armo_gnet_free(n);
        return armo_err_set(e, "gating network: out of memory (%lld parameters, batch %d)",
                            (long long)n->np, cap);
    }
    *armo_gnet_logit_scale(n) = 1.0f;
    return 0;
}

void armo_gnet_free(armo_gnet *n) {
    free(n->theta);
    free(n->grad);
    free(n->m);
    free(n->v);
    for (int l = 1; l <= ARMO_GNET_MAX_LAYERS; l++) free(n->act[l]); /* act[0] is borrowed */
    free(n->dact);
    free(n->dtmp);
    free(n->gate);
    free(n->score);
    memset(n, 0, sizeof *n);
}

void armo_gnet_random(armo_gnet *n, uint64_t seed) {
    uint64_t c = 0;
    for (int l = 0; l < n->nl; l++) {
        const float bound = 1.0f / sqrtf((float)n->dims[l]);
        const int64_t nw = (int64_t)n->dims[l + 1] * n->dims[l];
        float *w = armo_gnet_w(n, l), *b = armo_gnet_b(n, l);
        for (int64_t i = 0; i < nw; i++) w[i] = (float)(2.0 * armo_split_u(seed, c++) - 1.0) * bound;
        for (int i = 0; i < n->dims[l + 1]; i++)
            b[i] = (float)(2.0 * armo_split_u(seed, c++) - 1.0) * bound;
    }
    *armo_gnet_logit_scale(n) = 1.0f;
}

void armo_gnet_forward(armo_gnet *n, const float *x, int B, const float *d, uint64_t drop_seed) {
    const float *in = x;
    const float p = drop_seed ? n->dropout : 0.0f, keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
    n->act[0] = (float *)x; /* borrowed: backward reads layer 0's input from here */
    n->keep_scale = keep_scale;
    for (int l = 0; l < n->nl; l++) {
        const int din = n->dims[l], dout = n->dims[l + 1];
        float *z = n->act[l + 1], *b = armo_gnet_b(n, l);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, dout, din, 1.0f, in, din,
                    armo_gnet_w(n, l), din, 0.0f, z, dout);
        for (int r = 0; r < B; r++)
            for (int j = 0; j < dout; j++) z[(size_t)r * dout + j] += b[j];
        if (l + 1 < n->nl) {
            for (int64_t i = 0; i < (int64_t)B * dout; i++) {
                float a = z[i] > 0 ? z[i] : 0.0f;
                if (p > 0 && a > 0)
                    a = armo_split_u(drop_seed, ((uint64_t)l << 40) + (uint64_t)i) < p ? 0.0f
                                                                                       : a * keep_scale;
                z[i] = a;
            }
        }
        in = z;
    }
    /* softmax(z / T) in place (act[nl] then holds the probabilities), gate = s * scale */
    const int K = n->dims[n->nl];
    const float ls = *armo_gnet_logit_scale(n), T = n->temperature;
    float *s = n->act[n->nl];
    for (int r = 0; r < B; r++) {
        float *row = s + (size_t)r * K, mx = row[0] / T, sum = 0;
        for (int k = 1; k < K; k++) mx = fmaxf(mx, row[k] / T);
        for (int k = 0; k < K; k++) sum += (row[k] = expf(row[k] / T - mx));
        double sc = 0;
        for (int k = 0; k < K; k++) {
            row[k] /= sum;
            n->gate[(size_t)r * K + k] = row[k] * ls;
            if (d) sc += (double)n->gate[(size_t)r * K + k] * d[(size_t)r * K + k];
        }
        n->score[r] = (float)sc;
    }
}

/* dz (the gradient at layer l's output, [B, dims[l+1]] in n->dact) back to
 * the weights and bias of layer l, and (l > 0) to the layer's input. */
static void backward_layer(armo_gnet *n, int l, int B, float keep_scale) {
    const int din = n->dims[l], dout = n->dims[l + 1];
    const float *in = n->act[l], *dz = n->dact;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dout, din, B, 1.0f, dz, dout, in, din,
                0.0f, n->grad + n->w_off[l], din);
    float *gb = n->grad + n->b_off[l];
    for (int j = 0; j < dout; j++) gb[j] = 0;
    for (int r = 0; r < B; r++)
        for (int j = 0; j < dout; j++) gb[j] += dz[(size_t)r * dout + j];
    if (l == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, din, dout, 1.0f, dz, dout,
                armo_gnet_w(n, l), din, 0.0f, n->dtmp, din);
    for (int64_t i = 0; i < (int64_t)B * din; i++) /* ReLU and dropout: a > 0 iff kept and z > 0 */
        n->dtmp[i] = in[i] > 0 ? n->dtmp[i] * keep_scale : 0.0f;
    float *t = n->dact;
    n->dact = n->dtmp;
    n->dtmp = t;
}

double armo_gnet_backward(armo_gnet *n, int B, const float *d) {
    const int K = n->dims[n->nl];
    const float ls = *armo_gnet_logit_scale(n), T = n->temperature;
    const float *s = n->act[n->nl];
    double loss = 0, dls = 0;
    for (int r = 0; r < B; r++) {
        const double x = n->score[r];
        loss += x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
        const float dx = (float)(-1.0 / (1.0 + exp(x)) / B);
        const float *sr = s + (size_t)r * K, *dr = d + (size_t)r * K;
        float *dz = n->dact + (size_t)r * K, dot = 0;
        for (int k = 0; k < K; k++) {
            const float dg = dx * dr[k];
            dls += (double)dg * sr[k];
            dz[k] = dg * ls; /* d loss / d s_k */
            dot += sr[k] * dz[k];
        }
        for (int k = 0; k < K; k++) dz[k] = sr[k] * (dz[k] - dot) / T;
    }
    for (int l = n->nl - 1; l >= 0; l--) backward_layer(n, l, B, n->keep_scale);
    n->grad[n->np - 1] = (float)dls;
    return loss / B;
}

void armo_gnet_adamw(armo_gnet *n, double lr, double weight_decay) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    n->adam_t++;
    const double bc1 = 1.0 - pow(b1, n->adam_t), bc2s = sqrt(1.0 - pow(b2, n->adam_t));
    const float step = (float)(lr / bc1), decay = (float)(1.0 - lr * weight_decay);
    for (int64_t i = 0; i < n->np; i++) {
        const float g = n->grad[i];
        n->theta[i] *= decay;
        n->m[i] += (g - n->m[i]) * (float)(1.0 - b1);
        n->v[i] = n->v[i] * (float)b2 + g * g * (float)(1.0 - b2);
        n->theta[i] -= step * n->m[i] / (sqrtf(n->v[i]) / (float)bc2s + (float)eps);
    }
}
