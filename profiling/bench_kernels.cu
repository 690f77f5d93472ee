/* bench_kernels.cu — microbenchmarks of every armo kernel at real Llama-3-8B
 * shapes (hidden 4096, 32 / 8 heads, head_dim 128, intermediate 14336).
 *
 * Each kernel: warm-up, then REPS timed launches between two cudaEvents;
 * prints the mean time and the achieved GB/s (memory-bound kernels: bytes
 * that must move at least once) or TFLOP/s (attention: causal FLOPs
 * 4 * Σ len²/2 * nh * hd; GEMM: 2 * n * in * out), next to the card's memory
 * bandwidth computed from its attributes and the H100 SXM reference figures
 * (3.35 TB/s, ~990 TFLOP/s dense bf16).  TFLOP/s figures also give the share
 * of this card's dense bf16 peak, looked up by its name (card_peak_tflops:
 * NVIDIA's datasheets, dense, without sparsity; "n/a" for a card not in the
 * table).  Attention runs its variants side by side at ArmoRM's shapes
 * (32 query / 8 KV heads, head_dim 128, causal) over 16384-token packs of
 * sequences of 512, 1024, 2048 and 4096 tokens: flash (the default),
 * pipelined (ARMO_ATTN=pipelined: cp.async double-buffered K/V) and, at 512
 * and 4096 only and with 2 reps, simple; then "pipelined / flash" as a ratio
 * of the same run's times.  Inputs are random bf16 in a sane range; numbers
 * are checked by tests/kernels, not here.
 * Usage: bench_kernels [reps] [--attention]   (exits 77 without a CUDA
 * device; --attention: the attention section alone). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "kernels/armo_kernels.h"

#define CK(call)                                                                              \
    do {                                                                                      \
        cudaError_t st_ = (call);                                                             \
        if (st_ != cudaSuccess) {                                                             \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,              \
                    cudaGetErrorString(st_));                                                 \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static const double H100_TBPS = 3.35, H100_TFLOPS = 990.0;
static double g_card_tbps = 0.0;
static int g_reps = 20;
static cudaEvent_t g_ev0, g_ev1;

/* Random bf16 device buffer, values uniform in [-scale, scale). */
static uint16_t *rand_bf16(size_t count, float scale, unsigned seed) {
    uint16_t *h = (uint16_t *)malloc(count * 2);
    if (!h) { fprintf(stderr, "out of host memory\n"); exit(1); }
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < count; i++) {
        s = s * 1664525u + 1013904223u;
        float f = ((float)(s >> 8) / 16777216.0f * 2.0f - 1.0f) * scale;
        uint32_t u;
        memcpy(&u, &f, 4);
        h[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    uint16_t *d;
    CK(cudaMalloc(&d, count * 2));
    CK(cudaMemcpy(d, h, count * 2, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

template <typename F> static double time_ms(F launch) {
    for (int i = 0; i < 3; i++) CK(launch());
    CK(cudaDeviceSynchronize());
    CK(cudaEventRecord(g_ev0, 0));
    for (int i = 0; i < g_reps; i++) CK(launch());
    CK(cudaEventRecord(g_ev1, 0));
    CK(cudaEventSynchronize(g_ev1));
    float ms = 0.0f;
    CK(cudaEventElapsedTime(&ms, g_ev0, g_ev1));
    return ms / g_reps;
}

static void report_bw(const char *name, double ms, double bytes) {
    const double tbps = bytes / (ms * 1e-3) / 1e12;
    printf("%-44s %9.3f ms %8.1f GB/s   %5.1f%% of card %.2f TB/s  %5.1f%% of H100 %.2f TB/s\n",
           name, ms, tbps * 1e3, g_card_tbps > 0 ? 100.0 * tbps / g_card_tbps : 0.0, g_card_tbps,
           100.0 * tbps / H100_TBPS, H100_TBPS);
}

/* dense bf16 tensor-core peak of the card, by name (datasheet figures
 * without sparsity); 0 when the card is not in the table */
static double g_card_tflops = 0.0;
static double card_peak_tflops(const char *name) {
    static const struct {
        const char *match;
        double tflops;
    } table[] = {
        {"H200", 989.0},      {"H100 PCIe", 756.0}, {"H100 NVL", 835.0},
        {"H100", 989.0},      /* SXM5 (e.g. "NVIDIA H100 80GB HBM3") */
        {"A100", 312.0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strstr(name, table[i].match)) return table[i].tflops;
    return 0.0;
}

static double report_flops(const char *name, double ms, double flops) {
    const double tflops = flops / (ms * 1e-3) / 1e12;
    char card[48];
    if (g_card_tflops > 0)
        snprintf(card, sizeof card, "%5.1f%% of card %.0f", 100.0 * tflops / g_card_tflops,
                 g_card_tflops);
    else
        snprintf(card, sizeof card, "  n/a of card (peak unknown)");
    printf("%-48s %9.3f ms %8.1f TFLOP/s   %s   %5.1f%% of H100 dense bf16 %.0f TFLOP/s\n", name,
           ms, tflops, card, 100.0 * tflops / H100_TFLOPS, H100_TFLOPS);
    return tflops;
}

int main(int argc, char **argv) {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev <= 0) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    bool attention_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--attention") == 0)
            attention_only = true;
        else if (atoi(argv[i]) > 0)
            g_reps = atoi(argv[i]);
    }
    CK(cudaSetDevice(0));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int mem_khz = 0, bus_bits = 0;
    CK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0));
    CK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0));
    g_card_tbps = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e12; /* DDR: two transfers a clock */
    printf("device: %s, %d SMs, memory %.1f GiB, bus %d bits at %.0f MHz -> %.2f TB/s theoretical\n",
           prop.name, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, bus_bits,
           mem_khz / 1e3, g_card_tbps);
    g_card_tflops = card_peak_tflops(prop.name);
    const int envv = armo_attention_env_variant();
    printf("reps %d; card dense bf16 peak %s%.0f TFLOP/s; reference: H100 SXM %.2f TB/s, %.0f "
           "TFLOP/s dense bf16; armo_attention_bf16 uses %s (ARMO_ATTN)\n\n",
           g_reps, g_card_tflops > 0 ? "" : "unknown: ", g_card_tflops, H100_TBPS, H100_TFLOPS,
           envv == ARMO_ATTN_SIMPLE ? "simple" : envv == ARMO_ATTN_PIPELINED ? "pipelined" : "flash");
    CK(cudaEventCreate(&g_ev0));
    CK(cudaEventCreate(&g_ev1));

    const int H = 4096, nh = 32, nkv = 8, hd = 128, I = 14336, vocab = 128257;
    const int n = 16384; /* tokens in a pack */
    const double bf = 2.0;

    /* ---- attention at ArmoRM's shapes: 16384-token packs of causal sequences
     * of 512 .. 4096 tokens, flash vs pipelined (vs simple at 512 and 4096) ---- */
    {
        const int seq_lens[4] = {512, 1024, 2048, 4096};
        for (int c = 0; c < 4; c++) {
            const int len = seq_lens[c], nseq = n / len;
            uint16_t *q = rand_bf16((size_t)n * nh * hd, 1.0f, 7), *k = rand_bf16((size_t)n * nkv * hd, 1.0f, 8);
            uint16_t *v = rand_bf16((size_t)n * nkv * hd, 1.0f, 9), *out;
            CK(cudaMalloc(&out, (size_t)n * nh * hd * 2));
            int32_t *cu_h = (int32_t *)malloc((size_t)(nseq + 1) * 4), *cu;
            for (int s = 0; s <= nseq; s++) cu_h[s] = s * len;
            CK(cudaMalloc(&cu, (size_t)(nseq + 1) * 4));
            CK(cudaMemcpy(cu, cu_h, (size_t)(nseq + 1) * 4, cudaMemcpyHostToDevice));
            /* causal: each sequence's len x len scores, half of them, 2 GEMMs
             * (S = Q·Kᵀ, O = P·V) of 2 FLOPs per multiply-add */
            const double flops = 4.0 * nseq * ((double)len * len / 2.0) * nh * hd;
            char name[96];
            snprintf(name, sizeof name, "attention flash %d x %d causal, 32/8 x 128", nseq, len);
            const double ms_f = time_ms([&] {
                return armo_attention_flash_bf16(out, q, k, v, cu, nseq, n, len, nh, nkv, hd, 0);
            });
            const double tf_f = report_flops(name, ms_f, flops);
            snprintf(name, sizeof name, "attention pipelined %d x %d causal, 32/8 x 128", nseq, len);
            const double ms_p = time_ms([&] {
                return armo_attention_pipelined_bf16(out, q, k, v, cu, nseq, n, len, nh, nkv, hd, 0);
            });
            const double tf_p = report_flops(name, ms_p, flops);
            printf("attention pipelined / flash %d x %d: time %.3f, TFLOP/s %.3f (same run)\n",
                   nseq, len, ms_p / ms_f, tf_p / tf_f);
            if (len == 512 || len == 4096) {
                const int saved = g_reps;
                g_reps = 2; /* the simple variant is slow by design */
                snprintf(name, sizeof name, "attention simple %d x %d causal", nseq, len);
                const double ms_s = time_ms([&] {
                    return armo_attention_simple_bf16(out, q, k, v, cu, nseq, n, len, nh, nkv, hd, 0);
                });
                report_flops(name, ms_s, flops);
                g_reps = saved;
            }
            CK(cudaFree(q)); CK(cudaFree(k)); CK(cudaFree(v)); CK(cudaFree(out)); CK(cudaFree(cu));
            free(cu_h);
        }
    }
    if (attention_only) {
        CK(cudaEventDestroy(g_ev0));
        CK(cudaEventDestroy(g_ev1));
        return 0;
    }

    /* ---- embedding ---- */
    {
        uint16_t *table = rand_bf16((size_t)vocab * H, 1.0f, 1), *out;
        int32_t *ids_h = (int32_t *)malloc((size_t)n * 4), *ids;
        for (int i = 0; i < n; i++) ids_h[i] = (int32_t)(((unsigned)i * 2654435761u) % (unsigned)vocab);
        CK(cudaMalloc(&ids, (size_t)n * 4));
        CK(cudaMemcpy(ids, ids_h, (size_t)n * 4, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&out, (size_t)n * H * 2));
        double ms = time_ms([&] { return armo_embed_bf16(out, table, ids, n, H, vocab, 0); });
        report_bw("embedding n 16384 x 4096", ms, 2.0 * n * H * bf);
        CK(cudaFree(table)); CK(cudaFree(out)); CK(cudaFree(ids)); free(ids_h);
    }

    /* ---- RMSNorm, plain and fused residual ---- */
    {
        uint16_t *x = rand_bf16((size_t)n * H, 1.0f, 2), *d = rand_bf16((size_t)n * H, 0.01f, 3);
        uint16_t *w = rand_bf16(H, 1.0f, 4), *out;
        CK(cudaMalloc(&out, (size_t)n * H * 2));
        double ms = time_ms([&] { return armo_rmsnorm_bf16(out, x, w, n, H, 1e-5f, 0); });
        report_bw("rmsnorm n 16384 x 4096", ms, 2.0 * n * H * bf);
        ms = time_ms([&] { return armo_add_rmsnorm_bf16(x, d, out, w, n, H, 1e-5f, 0); });
        report_bw("add_rmsnorm n 16384 x 4096", ms, 4.0 * n * H * bf);
        CK(cudaFree(x)); CK(cudaFree(d)); CK(cudaFree(w)); CK(cudaFree(out));
    }

    /* ---- RoPE ---- */
    {
        uint16_t *q = rand_bf16((size_t)n * nh * hd, 1.0f, 5), *k = rand_bf16((size_t)n * nkv * hd, 1.0f, 6);
        int32_t *pos_h = (int32_t *)malloc((size_t)n * 4), *pos;
        for (int i = 0; i < n; i++) pos_h[i] = i % 4096;
        float inv_h[64], *inv;
        for (int i = 0; i < 64; i++) inv_h[i] = powf(500000.0f, -2.0f * i / 128.0f);
        CK(cudaMalloc(&pos, (size_t)n * 4));
        CK(cudaMemcpy(pos, pos_h, (size_t)n * 4, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&inv, sizeof inv_h));
        CK(cudaMemcpy(inv, inv_h, sizeof inv_h, cudaMemcpyHostToDevice));
        double ms = time_ms([&] { return armo_rope_bf16(q, k, n, nh, nkv, hd, pos, inv, 0); });
        report_bw("rope n 16384, 32 + 8 heads x 128", ms, 2.0 * n * (nh + nkv) * hd * bf);
        CK(cudaFree(q)); CK(cudaFree(k)); CK(cudaFree(pos)); CK(cudaFree(inv)); free(pos_h);
    }

    /* ---- SwiGLU ---- */
    {
        uint16_t *gu = rand_bf16((size_t)n * 2 * I, 3.0f, 10), *out;
        CK(cudaMalloc(&out, (size_t)n * I * 2));
        double ms = time_ms([&] { return armo_swiglu_bf16(out, gu, n, I, 0); });
        report_bw("swiglu n 16384 x 14336", ms, 3.0 * n * I * bf);
        CK(cudaFree(gu)); CK(cudaFree(out));
    }

    /* ---- row gather + ArmoRM head (256 sequences) ---- */
    {
        const int nseq = 256, G = 1024, K = 19;
        uint16_t *x = rand_bf16((size_t)n * H, 1.0f, 11);
        int32_t *rows_h = (int32_t *)malloc(2 * (size_t)nseq * 4), *rows;
        for (int i = 0; i < 2 * nseq; i++) rows_h[i] = (i * 61) % n;
        CK(cudaMalloc(&rows, 2 * (size_t)nseq * 4));
        CK(cudaMemcpy(rows, rows_h, 2 * (size_t)nseq * 4, cudaMemcpyHostToDevice));
        float *h;
        CK(cudaMalloc(&h, 2 * (size_t)nseq * H * 4));
        double ms = time_ms([&] { return armo_gather_rows_f32(h, x, rows, 2 * nseq, H, 0); });
        report_bw("gather_rows_f32 512 rows x 4096", ms, 2.0 * nseq * H * (2.0 + 4.0));

        armo_head_params hw;
        memset(&hw, 0, sizeof hw);
        hw.hidden = H; hw.k = K; hw.nlayers = 4;
        hw.dims[0] = H; hw.dims[1] = hw.dims[2] = hw.dims[3] = G; hw.dims[4] = K;
        hw.temperature = 10.0f; hw.logit_scale = 1.0f;
        float *wbuf; /* every head weight as one zeroed buffer: timing only */
        const size_t wfloats = (size_t)K * H + (size_t)G * H + 2 * (size_t)G * G + (size_t)K * G +
                               3 * (size_t)G + K + (size_t)K * K;
        CK(cudaMalloc(&wbuf, wfloats * 4));
        CK(cudaMemset(wbuf, 0, wfloats * 4));
        float *p = wbuf;
        hw.regression = p; p += (size_t)K * H;
        for (int l = 0; l < 4; l++) {
            hw.gw[l] = p; p += (size_t)hw.dims[l + 1] * hw.dims[l];
            hw.gb[l] = p; p += hw.dims[l + 1];
        }
        hw.transform = p;
        float *outs, *scratch;
        CK(cudaMalloc(&outs, (size_t)nseq * (3 * K + 1) * 4));
        CK(cudaMalloc(&scratch, armo_head_scratch_floats(&hw, nseq) * 4));
        ms = time_ms([&] {
            return armo_gated_head_f32(&hw, h, h + (size_t)nseq * H, nseq, outs, outs + nseq * K,
                                       outs + 2 * nseq * K, outs + 3 * nseq * K, scratch, 0);
        });
        report_bw("armo gated head 256 seqs (weights read)", ms, wfloats * 4.0);
        CK(cudaFree(x)); CK(cudaFree(rows)); CK(cudaFree(h)); CK(cudaFree(wbuf));
        CK(cudaFree(outs)); CK(cudaFree(scratch)); free(rows_h);
    }

    /* ---- cuBLASLt GEMMs at the layer's shapes ---- */
    {
        armo_err e;
        armo_gemm *g;
        if (armo_gemm_create(&g, 0, &e) != 0) { fprintf(stderr, "%s\n", e.msg); return 1; }
        struct { const char *name; int n, in, out; } shapes[] = {
            {"gemm QKV      n 16384: 4096 -> 6144", n, H, (nh + 2 * nkv) * hd},
            {"gemm o_proj   n 16384: 4096 -> 4096", n, H, H},
            {"gemm gate|up  n 16384: 4096 -> 28672", n, H, 2 * I},
            {"gemm down     n 16384: 14336 -> 4096", n, I, H},
            {"gemm gate|up  n 1000:  4096 -> 28672", 1000, H, 2 * I},
            {"gemm QKV      n 7:     4096 -> 6144", 7, H, (nh + 2 * nkv) * hd},
        };
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            uint16_t *x = rand_bf16((size_t)shapes[i].n * shapes[i].in, 1.0f, 20 + (unsigned)i);
            uint16_t *w = rand_bf16((size_t)shapes[i].out * shapes[i].in, 0.02f, 40 + (unsigned)i), *y;
            CK(cudaMalloc(&y, (size_t)shapes[i].n * shapes[i].out * 2));
            double ms = time_ms([&] {
                return armo_gemm_bf16(g, y, x, w, shapes[i].n, shapes[i].in, shapes[i].out, 0, &e) == 0
                           ? cudaSuccess
                           : (fprintf(stderr, "%s\n", e.msg), cudaErrorUnknown);
            });
            report_flops(shapes[i].name, ms, 2.0 * shapes[i].n * shapes[i].in * shapes[i].out);
            CK(cudaFree(x)); CK(cudaFree(w)); CK(cudaFree(y));
        }
        armo_gemm_destroy(g);
    }
    CK(cudaEventDestroy(g_ev0));
    CK(cudaEventDestroy(g_ev1));
    return 0;
}
